"""Register written COCO splits with detectron2's DatasetCatalog and MetadataCatalog.

detectron2 is optional (installed from its public source, see README); nothing here imports it at module load.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "detectron2 is not importable; install it from its public source (see README) "
    "or use the torchvision backend"
)


def detectron2_available() -> bool:
    """True when `detectron2.data` imports."""
    try:
        import detectron2.data  # noqa: F401
    except Exception:  # a half-built install fails with OSError/AttributeError as often as ImportError
        return False
    return True


def register_splits(
    name: str, split_jsons: Mapping[str, Path], image_root: Path, metadata: Mapping[str, Any]
) -> list[str]:
    """Register `<name>_<split>` for each COCO file (idempotent); returns the dataset names in order."""
    try:
        from detectron2.data import DatasetCatalog, MetadataCatalog
        from detectron2.data.datasets import register_coco_instances
    except ImportError as err:
        raise ImportError(f"register_splits needs detectron2: {INSTALL_HINT}") from err

    extra = _detectron2_metadata(metadata)
    root = str(Path(image_root).resolve())
    names = []
    for split, json_path in split_jsons.items():
        dataset = f"{name}_{split}"
        json_file = str(Path(json_path).resolve())
        if dataset in DatasetCatalog.list():
            existing = MetadataCatalog.get(dataset)
            same = (
                getattr(existing, "json_file", None) == json_file
                and getattr(existing, "image_root", None) == root
                and list(getattr(existing, "thing_classes", [])) == extra["thing_classes"]
            )
            if same:
                names.append(dataset)
                continue
            # MetadataCatalog refuses to overwrite a set attribute with a new value: start from scratch.
            DatasetCatalog.remove(dataset)
            MetadataCatalog.remove(dataset)
        register_coco_instances(dataset, extra, json_file, root)
        names.append(dataset)
    return names


def _detectron2_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """thing_classes and the id map with int keys (a JSON round trip turns them into strings)."""
    classes = [str(c) for c in metadata["thing_classes"]]
    id_map = metadata.get("thing_dataset_id_to_contiguous_id") or {i + 1: i for i in range(len(classes))}
    return {
        "thing_classes": classes,
        "thing_dataset_id_to_contiguous_id": {int(k): int(v) for k, v in id_map.items()},
    }
