"""Raw inputs as observable source assets: each brand's creatives and label files, and the impressions file.

Their data versions (creative_assets.raw_versions) change when a file is added, changed or removed. The
raw-files sensor records them every 30 s; "Observe" in the UI records them at once. A new version makes the
assets that read the files stale and, through declarative automation, reruns them.
"""

import dagster as dg

from creative_assets.partition_keys import BRAND_PARTITIONS_NAME, brand_partitions
from creative_assets.raw_versions import creatives_version, impressions_version, labels_version
from creative_assets.resources.settings_resource import SettingsResource

GROUP = "raw"


def _known_brands(context) -> list[str]:
    return list(context.instance.get_dynamic_partitions(BRAND_PARTITIONS_NAME))


@dg.observable_source_asset(partitions_def=brand_partitions, group_name=GROUP)
def raw_creatives(context, settings: SettingsResource) -> dg.DataVersionsByPartition:
    """Files under raw/<brand>/creatives/ (path, size, modification time); unversioned while unreadable."""
    root = settings.root()
    versions = {b: creatives_version(root, b) for b in _known_brands(context)}
    return dg.DataVersionsByPartition({b: dg.DataVersion(v) for b, v in versions.items() if v})


@dg.observable_source_asset(partitions_def=brand_partitions, group_name=GROUP)
def raw_labels(context, settings: SettingsResource) -> dg.DataVersionsByPartition:
    """Label files under raw/<brand>/labels/ (COCO, Azure ML exports)."""
    root = settings.root()
    return dg.DataVersionsByPartition(
        {b: dg.DataVersion(labels_version(root, b)) for b in _known_brands(context)}
    )


@dg.observable_source_asset(group_name=GROUP)
def raw_impressions(settings: SettingsResource) -> dg.DataVersion:
    """raw/impressions.csv or .parquet ("absent" without one)."""
    return dg.DataVersion(impressions_version(settings.root()))


RAW_ASSETS = [raw_creatives, raw_labels, raw_impressions]
