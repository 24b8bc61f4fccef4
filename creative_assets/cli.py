"""The `creative-assets` command: demo data, the whole demo, adding a brand, backfilling a brand."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from creative_assets.settings import (
    DATA_ENV,
    PROFILE_ENV,
    PROFILES,
    SettingsError,
    load_settings,
    require_data_root,
    validate_brand,
)


class CliError(Exception):
    """A user error: printed as one line with a hint, exit status 2."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def _data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get(DATA_ENV) or "data").expanduser().resolve()


def _instance():
    """The persistent Dagster instance (DAGSTER_HOME, default ./.dagster_home), so the UI sees CLI runs."""
    import dagster as dg

    from creative_assets.instance_config import ensure_dagster_home

    ensure_dagster_home(Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve()))))
    return dg.DagsterInstance.get()


def _settings(data: Path, profile: str | None):
    if profile is not None and profile not in PROFILES:
        raise CliError(f"unknown profile {profile!r}", f"choose one of: {', '.join(PROFILES)}")
    try:
        return load_settings(data, profile)
    except SettingsError as err:
        raise CliError(str(err).splitlines()[0], "\n".join(str(err).splitlines()[1:]) or "") from None


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Generate the synthetic demo data."""
    from creative_assets.demo.synthetic import generate_demo_data

    data = _data_root(args.data)
    summary = generate_demo_data(data, seed=args.seed, overwrite=args.overwrite)
    print(f"demo data written to {data}")
    print(summary)
    return 0


def add_brand(name: str, data: Path, *, create_folder: bool = True) -> None:
    """Validate `name`, create raw/<name>/ and add the brand partition to the instance."""
    try:
        validate_brand(name)
    except ValueError as err:
        raise CliError(str(err), "example: creative-assets add-brand acme") from None
    from creative_assets.partition_keys import BRAND_PARTITIONS_NAME

    if create_folder:
        (data / "raw" / name / "creatives").mkdir(parents=True, exist_ok=True)
        (data / "raw" / name / "labels").mkdir(parents=True, exist_ok=True)
    instance = _instance()
    if not instance.has_dynamic_partition(BRAND_PARTITIONS_NAME, name):
        instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [name])


def _existing_data_root(arg: str | None) -> Path:
    """The data root of a command that must not create one."""
    data = _data_root(arg)
    try:
        return require_data_root(data)
    except SettingsError as err:
        raise CliError(str(err), "create it with `creative-assets demo-data`, or fix the path") from None


def cmd_add_brand(args: argparse.Namespace) -> int:
    """Add a brand partition (and its folders) by hand; optionally ingest it now."""
    data = _existing_data_root(args.data)
    add_brand(args.name, data)
    print(f"brand {args.name!r} added (raw folder: {data / 'raw' / args.name})")
    if args.ingest:
        from creative_assets.pipeline_runs import run_ingest

        run_ingest(_instance(), _settings(data, args.profile), [args.name])
    return 0


def _known_brands(data: Path, wanted: str | None) -> list[str]:
    from creative_assets.layout import DataRoot

    available = DataRoot(data).brands()
    if not wanted:
        return available
    brands = [b.strip() for b in wanted.split(",") if b.strip()]
    unknown = [b for b in brands if b not in available]
    if unknown:
        raise CliError(
            f"unknown brand {', '.join(unknown)} under {data / 'raw'}",
            f"known brands: {', '.join(available) or 'none'}; add one with creative-assets add-brand NAME",
        )
    return brands


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate demo data if missing, then materialise the whole graph for every brand."""
    from creative_assets.demo.synthetic import generate_demo_data
    from creative_assets.pipeline_runs import print_summary, run_everything

    data = _data_root(args.data)
    os.environ[DATA_ENV] = str(data)
    if args.profile:
        os.environ[PROFILE_ENV] = args.profile
    os.environ.setdefault("CREATIVE_ASSETS_PROGRESS", "tqdm")
    cfg = _settings(data, args.profile)
    if not (data / "raw").is_dir() or not any((data / "raw").iterdir()):
        print(f"no data under {data / 'raw'}: generating the demo data (seed {args.seed})")
        generate_demo_data(data, seed=args.seed)
    brands = _known_brands(data, args.brands)
    instance = _instance()
    print(
        f"profile {cfg.profile} · data root {data} · brands {', '.join(brands)} · DAGSTER_HOME {os.environ['DAGSTER_HOME']}"
    )
    start = time.monotonic()
    run_everything(instance, cfg, brands)
    print_summary(cfg, brands)
    print(f"done in {time.monotonic() - start:.0f} s")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Launch a backfill of train_job over every object of a brand (needs the daemon, e.g. `dagster dev`)."""
    data = _existing_data_root(args.data)
    brand = _known_brands(data, args.brand)[0]
    cfg = _settings(data, args.profile)
    add_brand(brand, data, create_folder=False)
    objects = args.objects.split(",") if args.objects else cfg.object_names
    keys = ",".join(f"{brand}|{o}" for o in objects)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    workspace = Path(args.workspace).resolve()
    if not workspace.is_file():
        raise CliError(
            f"no workspace file at {workspace}", "run from the repository root or pass --workspace"
        )
    # The workspace names the code location `creative_assets`, as `dagster dev` does; `-m` would name it
    # after the module and the daemon could not find the backfill's location.
    cmd = [dagster, "job", "backfill", "-w", str(workspace), "-l", "creative_assets", "-j", "train_job",
           "--partitions", keys, "--noprompt"]  # fmt: skip
    env = {**os.environ, DATA_ENV: str(data)}
    if args.profile:
        env[PROFILE_ENV] = args.profile
    print(" ".join(cmd))
    return subprocess.call(cmd, env=env)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    p = argparse.ArgumentParser(
        prog="creative-assets",
        description="Find brand objects in marketing creatives and build tables for marketing-mix models.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int], settings: bool = True):
        """A sub-command; `settings`: it takes --data and --profile."""
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(func=func)
        sp.add_argument("--data", help=f"data root (default ${DATA_ENV} or ./data)")
        if settings:
            sp.add_argument(
                "--profile", help=f"settings profile: {', '.join(PROFILES)} (default ${PROFILE_ENV} or demo)"
            )
        return sp

    d = command("demo", "generate demo data if missing and materialise the whole graph", cmd_demo)
    d.add_argument("--brands", help="comma-separated brands (default: every brand under raw/)")
    d.add_argument("--seed", type=int, default=0, help="seed of the generated demo data")

    g = command(
        "demo-data", "write the synthetic demo creatives, labels and impressions", cmd_demo_data, False
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--overwrite", action="store_true", help="replace existing demo brands")

    a = command("add-brand", "add a brand partition and its raw/<brand>/ folders", cmd_add_brand)
    a.add_argument("name", help="brand name: lower-case letters, digits, '_' and '-'")
    a.add_argument("--ingest", action="store_true", help="also run its ingestion now")

    b = command("backfill", "backfill every object of a brand (train_job; needs the daemon)", cmd_backfill)
    b.add_argument("--brand", required=True)
    b.add_argument("--objects", help="comma-separated objects (default: all)")
    b.add_argument("--workspace", default="workspace.yaml", help="the workspace file dagster dev runs")

    r = command("retrain", "re-read a brand's labels and retrain one brand × object", cmd_retrain)
    r.add_argument("--brand", required=True)
    r.add_argument("--object", required=True, dest="object_name", help="the object to retrain, e.g. logo")
    return p


def cmd_retrain(args: argparse.Namespace) -> int:
    """Labels, then datasets, grid, chosen model and thresholds of one pair, in this process (no daemon)."""
    data = _data_root(args.data)
    brand = _known_brands(data, args.brand)[0]
    os.environ[DATA_ENV] = str(data)  # object partitions are read from this root's settings
    if args.profile:
        os.environ[PROFILE_ENV] = args.profile
    cfg = _settings(data, args.profile)
    if args.object_name not in cfg.object_names:
        raise CliError(f"unknown object {args.object_name!r}", f"objects: {', '.join(cfg.object_names)}")
    from creative_assets.pipeline_runs import print_summary, run_retrain

    add_brand(brand, data, create_folder=False)
    print(f"retraining {brand}|{args.object_name} · profile {cfg.profile} · data root {data}")
    start = time.monotonic()
    run_retrain(_instance(), cfg, brand, args.object_name)
    print_summary(cfg, [brand])
    print(f"done in {time.monotonic() - start:.0f} s; detections of {brand} are now stale (detect_job)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors are one line plus a hint, exit status 2."""
    args = build_parser().parse_args(argv)
    from creative_assets.selection_parser import installed_runtime_version, selection_parser_problem

    problem = selection_parser_problem(installed_runtime_version())
    if problem is not None:  # our own runs never parse selection strings; Dagster's CLI and UI do
        print(f"warning: {problem}", file=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return 2
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        print("hint: pass --overwrite, or choose another --data folder", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
