"""Ingest: the creative manifest and the frames extracted from videos (brand partitions)."""

import dagster as dg
import pandas as pd

from creative_assets.assets.declare import table_assets
from creative_assets.assets.metadata import error_metadata, preview, table_version, write_errors
from creative_assets.assets.progress import stage_progress
from creative_assets.layout import DataRoot
from creative_assets.locks import partition_lock
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives
from creative_assets.media.removals import (
    CONFIRM_REMOVAL_TAG,
    REMOVALS_ASSET,
    confirmed_removals,
    judge_removals,
    prune_removed_frames,
    removals_table,
    unseen_ids,
)
from creative_assets.partitions import brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.settings import Settings
from creative_assets.tables.warehouse import read_table, write_part

OWNERS = ["team:data-engineering"]
asset = table_assets("ingest", OWNERS, {"opencv", "parquet"})


def _confirmation(cfg: Settings, tags: dict[str, str]) -> str:
    """What confirms a large removal in this run, or ""."""
    if cfg.removal.confirm:
        return "setting removal.confirm"
    if str(tags.get(CONFIRM_REMOVAL_TAG, "")).strip().lower() in {"1", "true", "yes"}:
        return f"run tag {CONFIRM_REMOVAL_TAG}"
    return ""


def _committed_manifest(root: DataRoot, brand: str) -> pd.DataFrame | None:
    """The manifest committed by the last materialisation, or None if there is none."""
    folder = root.warehouse("creative_manifest", brand)
    if not any(folder.glob("part-*.parquet")):
        return None
    return read_table(folder)


@asset(
    "creative_manifest",
    brand_partitions,
    kinds={"python", "parquet"},
    deps=["raw_creatives"],
    check_specs=[
        dg.AssetCheckSpec(
            "no_unconfirmed_removals",
            asset="creative_manifest",
            blocking=True,
            description="the manifest did not lose more than removal.max_shrink_fraction of its creatives "
            f"since its last materialisation, or the removal was confirmed ({CONFIRM_REMOVAL_TAG}=true)",
        )
    ],
)
def creative_manifest(context: dg.AssetExecutionContext, settings: SettingsResource):
    """Every creative of the brand: id, media type, size, duration, fps, bytes, sha256."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    context.log.info(f"profile {cfg.profile}, data root {root.root}")
    committed = _committed_manifest(root, brand)
    manifest, errors = scan_creatives(
        root,
        brand,
        progress=stage_progress(context, f"{brand}: scan", "files"),
        max_megapixels=cfg.media.max_megapixels,
        previous=None if cfg.media.rehash_all else committed,
    )
    errors_path = write_errors(root, "creative_manifest_errors", brand, errors)
    removals_folder = root.warehouse(REMOVALS_ASSET, brand)
    known = read_table(removals_folder) if any(removals_folder.glob("part-*.parquet")) else removals_table()
    verdict = judge_removals(
        brand,
        None if committed is None else committed["creative_id"].astype(str).tolist(),
        manifest["creative_id"].astype(str),
        unseen_ids(errors, root.creatives(brand).relative_to(root.root).as_posix()),
        known,
        cfg.removal.max_shrink_fraction,
        _confirmation(cfg, context.run.tags),
    )
    write_part(removals_folder / "part-00000.parquet", verdict.removals)
    if verdict.newly_removed:
        context.log.info(f"{brand}: {len(verdict.newly_removed)} creatives removed since the last manifest")
    counts = manifest["media_type"].value_counts().to_dict() if len(manifest) else {}
    yield dg.Output(
        manifest,
        data_version=table_version(manifest),
        metadata={
            "profile": cfg.profile,
            "creatives": len(manifest),
            "images": int(counts.get("image", 0)),
            "videos": int(counts.get("video", 0)),
            "total_mb": float(manifest["bytes"].sum() / 1e6) if len(manifest) else 0.0,
            "removed": len(verdict.newly_removed),
            "preview": preview(manifest),
            **error_metadata(errors, errors_path),
        },
    )
    yield dg.AssetCheckResult(
        check_name="no_unconfirmed_removals",
        passed=verdict.passed,
        description=None
        if verdict.passed
        else (
            f"{verdict.pending} of {verdict.before} creatives ({verdict.fraction:.0%}) are gone since the last "
            f"manifest, more than removal.max_shrink_fraction {verdict.max_fraction:g}; nothing downstream "
            f"deletes their data until the removal is confirmed: re-run with the run tag "
            f"{CONFIRM_REMOVAL_TAG}=true or the setting removal.confirm"
        ),
        metadata={
            "newly_removed": len(verdict.newly_removed),
            "unconfirmed": verdict.pending,
            "fraction": round(verdict.fraction, 4),
            "max_shrink_fraction": verdict.max_fraction,
            "confirmed_by": verdict.confirmed_by or "-",
            "removed_examples": ", ".join(verdict.newly_removed[:20]),
        },
    )


@asset(
    "video_frames",
    brand_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            "frames_for_every_video", asset="video_frames", description="every readable video has frames"
        )
    ],
)
def video_frames(
    context: dg.AssetExecutionContext, settings: SettingsResource, creative_manifest: pd.DataFrame
):
    """Every Nth frame (default 10) of each video as JPEG under frames/, with frame_index and timestamp_s."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    # Two runs of one brand must not extract into (and prune) the same frame folders at once.
    with partition_lock(root.work("locks", "video_frames", brand), log=context.log.info):
        result = extract_video_frames(
            root,
            brand,
            creative_manifest,
            stride=cfg.frame_stride,
            jpeg_quality=cfg.jpeg_quality,
            progress=stage_progress(context, f"{brand}: frames", "videos"),
        )
        removed = confirmed_removals(read_table(root.warehouse(REMOVALS_ASSET, brand)))
        pruned = prune_removed_frames(root.frames(brand), removed, set(creative_manifest["creative_id"]))
    if pruned:
        context.log.info(f"{brand}: deleted the frames of {len(pruned)} removed videos")
    errors_path = write_errors(root, "video_frames_errors", brand, result.errors)
    fps = result.frames_written / result.seconds if result.seconds > 0 else 0.0
    yield dg.Output(
        result.frames,
        data_version=table_version(result.frames),
        metadata={
            "stride": cfg.frame_stride,
            "frames": len(result.frames),
            "videos_extracted": result.videos_extracted,
            "videos_skipped_unchanged": result.videos_skipped,
            "removed_videos_pruned": len(pruned),
            "frames_written": result.frames_written,
            "frames_written_per_s": round(fps, 1),
            "preview": preview(result.frames),
            **error_metadata(result.errors, errors_path),
        },
    )
    is_video = creative_manifest["media_type"] == "video"
    unreadable = creative_manifest["path"].isin(set(result.errors["file"]))
    videos = set(creative_manifest.loc[is_video & ~unreadable, "creative_id"])
    missing = sorted(videos - set(result.frames["creative_id"]))
    yield dg.AssetCheckResult(
        check_name="frames_for_every_video",
        passed=not missing,
        metadata={
            "readable_videos": len(videos),
            "unreadable": int((is_video & unreadable).sum()),
            "without_frames": len(missing),
            "missing": ", ".join(missing[:20]),
        },
    )
