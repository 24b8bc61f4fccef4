"""Ingest: the creative manifest and the frames extracted from videos (brand partitions)."""

import dagster as dg
import pandas as pd

from creative_assets.assets.metadata import error_metadata, preview, write_errors
from creative_assets.assets.progress import stage_progress
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives
from creative_assets.partitions import brand_partitions
from creative_assets.resources.settings_resource import SettingsResource

OWNERS = ["team:data-engineering"]


@dg.asset(
    partitions_def=brand_partitions,
    group_name="ingest",
    kinds={"python", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
)
def creative_manifest(context: dg.AssetExecutionContext, settings: SettingsResource) -> pd.DataFrame:
    """Every creative of the brand: id, media type, size, duration, fps, bytes, sha256."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    context.log.info(f"profile {cfg.profile}, data root {root.root}")
    manifest, errors = scan_creatives(
        root, brand, progress=stage_progress(context, f"{brand}: scan", "files")
    )
    errors_path = write_errors(root, "creative_manifest_errors", brand, errors)
    counts = manifest["media_type"].value_counts().to_dict() if len(manifest) else {}
    context.add_output_metadata(
        {
            "profile": cfg.profile,
            "creatives": len(manifest),
            "images": int(counts.get("image", 0)),
            "videos": int(counts.get("video", 0)),
            "total_mb": float(manifest["bytes"].sum() / 1e6) if len(manifest) else 0.0,
            "preview": preview(manifest),
            **error_metadata(errors, errors_path),
        }
    )
    return manifest


@dg.asset(
    partitions_def=brand_partitions,
    group_name="ingest",
    kinds={"opencv", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
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
    result = extract_video_frames(
        root,
        brand,
        creative_manifest,
        stride=cfg.frame_stride,
        jpeg_quality=cfg.jpeg_quality,
        progress=stage_progress(context, f"{brand}: frames", "videos"),
    )
    errors_path = write_errors(root, "video_frames_errors", brand, result.errors)
    fps = result.frames_written / result.seconds if result.seconds > 0 else 0.0
    yield dg.Output(
        result.frames,
        metadata={
            "stride": cfg.frame_stride,
            "frames": len(result.frames),
            "videos_extracted": result.videos_extracted,
            "videos_skipped_unchanged": result.videos_skipped,
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
