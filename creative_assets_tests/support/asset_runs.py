"""Builders for asset unit tests: a tiny generated data root, smoke settings, and an asset invoked directly
with its upstream values handed in memory (what it yields, sorted into output, checks and observations)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from creative_assets.demo.synthetic import generate_demo_data
from creative_assets.partitions import BRAND_PARTITIONS_NAME, brand_object_key
from creative_assets.resources.model_store import LocalModelStore
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets_tests.support.smoke_objects import SMOKE_SETTINGS

BRAND = "acme"


def tiny_data_root(root: Path, brands: tuple[str, ...] = (BRAND,), impressions: bool = True) -> Path:
    """A generated data root: 14 labelled stills, 2 unlabelled, one labelled 2 s video per brand."""
    generate_demo_data(
        root,
        seed=0,
        brands=brands,
        labelled_images=14,
        unlabelled_images=2,
        labelled_videos=1,
        unlabelled_videos=0,
        image_size=(128, 96),
        video_seconds=2.0,
        impressions=impressions,
    )
    (root / "creative_assets.yaml").write_text(SMOKE_SETTINGS)
    return root


def smoke_settings(root: Path, **overrides: object) -> SettingsResource:
    """The settings resource of `root` with the smoke profile (explicit, so the environment does not matter)."""
    return SettingsResource(data_root=str(root), profile="smoke", overrides=dict(overrides))


def model_store(root: Path) -> LocalModelStore:
    """The local model store of `root`."""
    return LocalModelStore(data_root=str(root))


def instance_with_brands(*brands: str) -> dg.DagsterInstance:
    """An ephemeral instance that knows the brand partitions (a dynamic key must exist before a run)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, list(brands))
    return instance


def brand_context(brand: str = BRAND) -> dg.AssetExecutionContext:
    """A context for direct invocation of a brand asset."""
    return dg.build_asset_context(partition_key=brand)


def pair_context(brand: str, object_name: str) -> dg.AssetExecutionContext:
    """A context for direct invocation of a brand × object asset, keyed like `acme|branding`."""
    return dg.build_asset_context(partition_key=brand_object_key(brand, object_name))


@dataclass
class Invocation:
    """What one direct invocation of an asset yielded."""

    outputs: dict[str, dg.Output] = field(default_factory=dict)
    checks: dict[str, dg.AssetCheckResult] = field(default_factory=dict)
    observations: list[dg.AssetObservation] = field(default_factory=list)

    @property
    def output(self) -> dg.Output:
        """The only output of a single-output asset."""
        (only,) = self.outputs.values()
        return only

    @property
    def value(self) -> object:
        """The value of the only output."""
        return self.output.value

    def meta(self, key: str) -> object:
        """The plain value of one metadata entry of the only output, as the UI shows it."""
        entry = self.output.metadata[key]
        return getattr(entry, "value", entry)


def invoke(asset: dg.AssetsDefinition, context: dg.AssetExecutionContext, **kwargs: object) -> Invocation:
    """Call `asset` directly with `context`, resources and upstream values; sort what it yields or returns."""
    result = asset(context=context, **kwargs)
    events = [result] if isinstance(result, (dg.Output, dg.AssetCheckResult, dg.AssetObservation)) else result
    seen = Invocation()
    for event in events:
        if isinstance(event, dg.Output):
            seen.outputs[event.output_name] = event
        elif isinstance(event, dg.AssetCheckResult):
            seen.checks[event.check_name] = event
        elif isinstance(event, dg.AssetObservation):
            seen.observations.append(event)
        else:
            raise TypeError(f"{asset.key.to_user_string()} yielded {type(event).__name__}")
    return seen


def ingest_in_memory(root: Path, brand: str = BRAND) -> dict[str, pd.DataFrame]:
    """creative_manifest, video_frames and labels of `brand`, materialised in one in-memory run."""
    from creative_assets.assets.datasets import labels
    from creative_assets.assets.ingest import creative_manifest, video_frames

    result = dg.materialize_to_memory(
        [creative_manifest, video_frames, labels],
        partition_key=brand,
        instance=instance_with_brands(brand),
        resources={"settings": smoke_settings(root)},
    )
    assert result.success
    return {name: result.asset_value(name) for name in ("creative_manifest", "video_frames", "labels")}


def train_in_memory(
    root: Path, labels: pd.DataFrame, object_name: str = "branding"
) -> dict[str, pd.DataFrame]:
    """coco_datasets, grid_search and chosen_model of (BRAND, object) by direct invocation on the smoke grid."""
    from creative_assets.assets.datasets import coco_datasets
    from creative_assets.assets.training import chosen_model, grid_search

    settings = smoke_settings(root)
    datasets = invoke(coco_datasets, pair_context(BRAND, object_name), settings=settings, labels=labels).value
    trials = invoke(
        grid_search, pair_context(BRAND, object_name), settings=settings, coco_datasets=datasets
    ).value
    chosen = invoke(
        chosen_model,
        pair_context(BRAND, object_name),
        settings=settings,
        model_store=model_store(root),
        grid_search=trials,
        coco_datasets=datasets,
    ).value
    return {"coco_datasets": datasets, "grid_search": trials, "chosen_model": chosen}
