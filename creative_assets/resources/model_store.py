"""The model store: the chosen checkpoint and its config per brand × object, under `models/<b>/<o>/chosen/`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from creative_assets.atomic import atomic_path, atomic_write_json
from creative_assets.checksums import sha256_file
from creative_assets.layout import DataRoot
from creative_assets.settings import load_settings

CHECKPOINT = "model.pth"
CONFIG = "config.json"


class LocalModelStore(dg.ConfigurableResource):
    """Keeps chosen models on the local file system under the data root (swap for an object store)."""

    data_root: str | None = Field(default=None, description="data root; default $CREATIVE_ASSETS_DATA")

    def _root(self) -> DataRoot:
        return DataRoot(Path(self.data_root) if self.data_root else load_settings().data_root)

    def folder(self, brand: str, object_name: str) -> Path:
        """Where the chosen model of (brand, object) lives."""
        return self._root().models(brand, object_name) / "chosen"

    def publish(
        self, brand: str, object_name: str, checkpoint: Path, config: dict[str, Any]
    ) -> dict[str, Any]:
        """Copy `checkpoint` in atomically, write its config; returns the record with model_id and paths."""
        folder = self.folder(brand, object_name)
        target = folder / CHECKPOINT
        with atomic_path(target) as tmp:
            shutil.copyfile(checkpoint, tmp)
        model_id = sha256_file(target)[:16]
        record = {**config, "model_id": model_id, "checkpoint": self._root().relative(target)}
        atomic_write_json(folder / CONFIG, record)
        return record

    def checkpoint(self, brand: str, object_name: str) -> Path:
        """The chosen checkpoint's path; FileNotFoundError if none was published."""
        path = self.folder(brand, object_name) / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(
                f"no chosen model for {brand}|{object_name}; materialise chosen_model first"
            )
        return path

    def config(self, brand: str, object_name: str) -> dict[str, Any]:
        """The chosen model's config record."""
        return json.loads((self.folder(brand, object_name) / CONFIG).read_text(encoding="utf-8"))
