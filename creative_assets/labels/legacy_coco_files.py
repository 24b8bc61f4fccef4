"""COCO files left under `warehouse/coco_datasets/` by the layout before `datasets/<brand>/<object>/`.

They made the warehouse folder unreadable as a Parquet dataset (`train.json: Parquet magic bytes not found`),
and `coco_datasets` now writes its COCO files under `datasets/`. They are derived files with a current copy
elsewhere, so the pair's next `coco_datasets` run removes those of its own partition and lists them.
"""

from __future__ import annotations

from creative_assets.layout import DataRoot


def remove_legacy_coco_files(root: DataRoot, brand: str, object_name: str) -> list[str]:
    """Delete the `*.json` files under the pair's `warehouse/coco_datasets/` partition; their data-root paths."""
    folder = root.warehouse("coco_datasets", brand, object_name)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob("*.json")):
        if path.is_file() and not path.is_symlink():
            removed.append(root.relative(path))
            path.unlink()
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(sub.iterdir()):
            sub.rmdir()
    return removed
