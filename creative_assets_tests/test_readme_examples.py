"""The README's terminal examples, run as written from a fresh shell on a tiny generated data root.

Every shell block of README.md (```bash, sh, shell, console) is named in its info string:
```` ```bash example=<name> ````. Each runs with `bash -e -o pipefail` in its own process, in a scratch folder
standing for the repository root, with an environment a new terminal would have: no `CREATIVE_ASSETS_*` or
`DAGSTER_HOME` variables (what the block exports, it exports itself), the project's commands on PATH, and the
smoke profile (`CREATIVE_ASSETS_PROFILE=smoke`) so training takes seconds. Examples build on each other (a
brand and its model before its labelling queue), so those in FIRST run first, in that order, then every other
one in README order: a new example runs unless EXCLUDED names it with a reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from creative_assets_tests.conftest import make_tiny_demo

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(?P<info>[^`\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NAME = re.compile(r"\bexample=(?P<name>[a-z0-9-]+)")

# What cannot run in the suite's time or on a machine without a network, and why.
EXCLUDED = {
    "make-demo-and-test": "`make demo` is the whole graph on the demo profile (about 11 min); `make test` is this suite",
    "install-without-make": "creates a virtual environment and installs from the package index (network, minutes)",
    "make-ui": "starts the `dagster dev` server, which runs until stopped; test_ui.py drives it in a browser",
    "install-detectron2": "builds detectron2 from source (network, 4-6 min); CI installs a built wheel instead",
    "backfill": "queues runs for the daemon of a running `dagster dev`; test_ui.py runs it against one",
    "ray": "needs the Ray cluster RAY_ADDRESS names; execution/ tests run the same assets on a local Ray",
    "development": "the whole suite, ruff over the tree and benchmarks (minutes each)",
}
FIRST = ("single-assets", "labelling-queue", "retrain")
# Files an example leaves behind when it really ran (relative to the scratch repository root).
LEAVES = {
    "single-assets": ["data/warehouse/chosen_model/brand=acme/object=logo", "data/models/acme/logo/chosen"],
    "labelling-queue": ["data/warehouse/labelling_queue/brand=acme/object=logo"],
    "retrain": ["data/warehouse/optimal_thresholds/brand=acme/object=logo"],
}
SHELL_VARIABLES_OF_THE_PROJECT = ("CREATIVE_ASSETS_", "DAGSTER_HOME", "RAY_ADDRESS")


@dataclass(frozen=True)
class Example:
    """One shell block of the README."""

    name: str | None
    language: str
    body: str
    line: int


def shell_examples(text: str) -> list[Example]:
    """Every fenced shell block of `text`, in order."""
    out = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        language = info.split(maxsplit=1)[0] if info else ""
        if language not in SHELL_LANGUAGES:
            continue
        name = NAME.search(info)
        line = text.count("\n", 0, match.start()) + 1
        out.append(Example(name["name"] if name else None, language, match["body"], line))
    return out


EXAMPLES = shell_examples(README.read_text(encoding="utf-8"))


def run_order(examples: list[Example]) -> list[Example]:
    """FIRST in its order, then every other example not EXCLUDED, in README order."""
    by_name = {e.name: e for e in examples}
    rest = [e for e in examples if e.name not in FIRST and e.name not in EXCLUDED]
    return [by_name[n] for n in FIRST] + rest


def test_every_shell_example_has_a_unique_name() -> None:
    unnamed = [e.line for e in EXAMPLES if e.name is None]
    assert unnamed == [], f"README.md shell blocks without `example=<name>` at lines {unnamed}"
    names = [e.name for e in EXAMPLES]
    assert len(names) == len(set(names)), f"duplicate example names: {names}"


def test_exclusions_and_the_run_order_name_examples_that_exist() -> None:
    names = {e.name for e in EXAMPLES}
    assert set(EXCLUDED) <= names and set(FIRST) <= names and set(LEAVES) <= names
    assert not set(FIRST) & set(EXCLUDED)


def test_the_parser_finds_named_shell_blocks_only() -> None:
    text = "x\n```bash example=one\necho 1\n```\n```python\nprint(1)\n```\n```sh\nls\n```\n"
    found = shell_examples(text)
    assert [(e.name, e.language, e.body, e.line) for e in found] == [
        ("one", "bash", "echo 1\n", 2),
        (None, "sh", "ls\n", 8),
    ]


def fresh_shell_environment() -> dict[str, str]:
    """A new terminal's environment: none of the project's variables, the venv's commands first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SHELL_VARIABLES_OF_THE_PROJECT)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(REPO)  # this checkout's package, even where another copy is installed
    env["CREATIVE_ASSETS_PROFILE"] = "smoke"
    return env


@pytest.fixture(scope="module")
def scratch_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing for the repository root, with the tiny demo data under ./data (default objects)."""
    root = tmp_path_factory.mktemp("readme_examples")
    (root / "workspace.yaml").write_text((REPO / "workspace.yaml").read_text())
    make_tiny_demo(root / "data")
    (root / "data" / "creative_assets.yaml").unlink()  # the default objects the README's examples name
    return root


def test_readme_terminal_examples_work_from_a_fresh_shell(scratch_repository: Path) -> None:
    env = fresh_shell_environment()
    for example in run_order(EXAMPLES):
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", example.body],
            cwd=scratch_repository,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = (done.stdout + done.stderr)[-4000:]
        assert done.returncode == 0, f"README example {example.name} (line {example.line}) failed:\n{output}"
        for path in LEAVES.get(example.name or "", []):
            assert (scratch_repository / path).exists(), f"{example.name} did not produce {path}:\n{output}"
