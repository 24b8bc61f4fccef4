"""Declarative automation: which assets follow their inputs by themselves, and which wait to be launched.

- Ingestion, detection and the tables follow any upstream update (`follow_upstream`): a creative added,
  changed or removed under `raw/<brand>/creatives/` (a new data version of `raw_creatives`), a changed label
  file (`raw_labels`) or impressions file (`raw_impressions`) reruns that brand's assets downstream of it, in
  one run per brand. The assets themselves skip what is already done (committed detection batches, extracted
  frames of unchanged videos), so a run costs what changed.
- Training (`coco_datasets → grid_search → chosen_model → optimal_thresholds`) costs hours on the `full`
  profile and never starts by itself unless `automation.train` is on. Off, a changed label set only marks the
  datasets and models stale in the UI. On, each step reruns when an input's *data version* changed, so an
  added creative that leaves the labels as they were retrains nothing.
- `labelling_queue` and everything not listed stay on demand.

The conditions are attached in `definitions.py`, where settings are read; this module reads none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg

FOLLOW_UPSTREAM_ASSETS = (
    "creative_manifest",
    "video_frames",
    "labels",
    "detections",
    "creative_features",
    "mmm_features",
    "mmm_panel",
    "mmm_unmatched_creatives",
)
TRAINING_ASSETS = ("coco_datasets", "grid_search", "chosen_model", "optimal_thresholds")
AUTOMATION_SENSOR = "creative_automation"


def follow_upstream() -> dg.AutomationCondition:
    """Run after any dependency updated (or will update this tick), once none is missing or in progress.

    `eager()` without its "newly missing" branch: a new brand's partitions are ingested by the brand-folder
    sensor, and a pair that was never trained must not be started here.
    """
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("follow_upstream")


def retrain_on_new_data() -> dg.AutomationCondition:
    """Run after a dependency's data version changed: new resolved labels, not merely a re-read of the same."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
        .with_label("any_deps_data_changed")
        .since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("retrain_on_new_data")


def conditions(train: bool) -> dict[str, dg.AutomationCondition]:
    """The automation condition of each automated asset; training assets only when `train` is on."""
    out = {name: follow_upstream() for name in FOLLOW_UPSTREAM_ASSETS}
    if train:
        out.update({name: retrain_on_new_data() for name in TRAINING_ASSETS})
    return out


def with_automation(
    assets: Iterable[dg.AssetsDefinition | dg.SourceAsset], by_name: Mapping[str, dg.AutomationCondition]
) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    """`assets` with the conditions of `by_name` attached to the specs of those names (others unchanged)."""

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = by_name.get(spec.key.to_user_string())
        return spec.replace_attributes(automation_condition=condition) if condition else spec

    return [a.map_asset_specs(attach) if isinstance(a, dg.AssetsDefinition) else a for a in assets]


def automation_sensor(minimum_interval_seconds: int = 30) -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's condition; running by default (stop it in the UI to pause automation)."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Reruns ingestion, detection and the tables when raw files change; training only "
        "with automation.train on.",
    )
