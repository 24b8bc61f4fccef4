"""Running the models on decoded images and collecting their detections as the rows of one batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from creative_assets.detection.backend import Detector, Predictions
from creative_assets.detection.batches import ModelDescriptor
from creative_assets.detection.image_loader import DecodedImage
from creative_assets.detection.model_threads import ModelThreads
from creative_assets.detection.tiling import TiledDetector
from creative_assets.tables.schemas import DETECTIONS


@dataclass(frozen=True)
class LoadedModel:
    """One object's chosen model, ready to run: its detector and per-class score thresholds."""

    object_name: str
    model_id: str
    detector: Detector
    thresholds: dict[str, float]
    beats_baseline: bool = True  # chosen_model's test-split verdict; fakes and benchmarks have no baseline

    def describe(self) -> ModelDescriptor:
        """This model as plain data."""
        inference = self.detector.inference if isinstance(self.detector, TiledDetector) else {}
        return ModelDescriptor(
            self.object_name,
            self.model_id,
            self.detector.backend,
            tuple(self.detector.classes),
            self.thresholds,
            inference,
            self.beats_baseline,
        )


@dataclass(frozen=True)
class DeferredModels:
    """Models known by their descriptors and loaded only when a batch has to run, so a run with nothing to do
    (every batch committed) never loads a checkpoint or imports torch. `load` must return models that
    describe themselves exactly as `descriptors` (checked)."""

    descriptors: tuple[ModelDescriptor, ...]
    load: Callable[[], list[LoadedModel]]

    def loaded(self) -> list[LoadedModel]:
        """The loaded models; ValueError when a checkpoint does not match its descriptor."""
        models = self.load()
        described = tuple(m.describe() for m in models)
        if described != self.descriptors:
            for expected, got in zip(self.descriptors, described, strict=False):
                if expected != got:
                    raise ValueError(
                        f"model {expected.object_name}/{expected.model_id} loads as {got}, not as {expected} "
                        "(re-materialise chosen_model)"
                    )
            raise ValueError(f"{len(models)} models loaded for {len(self.descriptors)} described")
        return models


def described_models(models: Sequence[LoadedModel] | DeferredModels) -> list[ModelDescriptor]:
    """The descriptors of loaded or deferred models."""
    if isinstance(models, DeferredModels):
        return list(models.descriptors)
    return [m.describe() for m in models]


class BatchRows:
    """Detections of one batch, kept as column arrays until the batch is committed."""

    def __init__(self, models: Sequence[LoadedModel], score_floor: float) -> None:
        self.models = models
        self.score_floor = score_floor
        self.n_classes = [len(m.detector.classes) for m in models]
        offsets = np.cumsum([0, *self.n_classes])
        self.offsets = offsets[:-1]
        self.classes = np.array([c for m in models for c in m.detector.classes], dtype=object)
        self.thresholds = np.array([float(m.thresholds[c]) for m in models for c in m.detector.classes])
        self.positions: list[np.ndarray] = []
        self.model_index: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.area: list[np.ndarray] = []

    def add(self, image: DecodedImage, model_index: int, pred: Predictions) -> None:
        scores = np.asarray(pred.scores, dtype=np.float64).reshape(-1)
        keep = scores >= self.score_floor
        if not keep.any():
            return
        boxes = np.asarray(pred.boxes, dtype=np.float64).reshape(-1, 4)[keep]
        if image.scale_x != 1.0 or image.scale_y != 1.0:
            # decoded reduced (over the pixel budget): report boxes in full-size pixels
            boxes = boxes * np.array([image.scale_x, image.scale_y, image.scale_x, image.scale_y])
        labels = np.asarray(pred.labels, dtype=np.int64).reshape(-1)[keep]
        if labels.min() < 0 or labels.max() >= self.n_classes[model_index]:
            model = self.models[model_index]
            raise ValueError(
                f"model {model.object_name}/{model.model_id} returned label {int(labels.max())} "
                f"outside its {self.n_classes[model_index]} classes"
            )
        height, width = image.image.shape[:2]  # type: ignore[union-attr]
        height, width = height * image.scale_y, width * image.scale_x  # full-size, like the boxes
        box_area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
        k = len(labels)
        self.positions.append(np.full(k, image.position, dtype=np.int64))
        self.model_index.append(np.full(k, model_index, dtype=np.int64))
        self.labels.append(labels)
        self.scores.append(scores[keep])
        self.boxes.append(boxes)
        self.area.append(box_area / float(width * height))

    def table(self, items: pd.DataFrame, batch_key: str) -> pa.Table:
        """The batch's rows as the detections part is written: Arrow with `DETECTIONS`' schema, built from the
        column arrays without a pandas frame in between (that and its cast took ~5 ms a batch)."""
        schema = DETECTIONS.arrow_schema()
        if not self.positions:
            return schema.empty_table()
        positions = np.concatenate(self.positions)
        model_index = np.concatenate(self.model_index)
        flat = self.offsets[model_index] + np.concatenate(self.labels)
        scores = np.concatenate(self.scores)
        boxes = np.concatenate(self.boxes)
        thresholds = self.thresholds[flat]
        meta = items.iloc[positions]

        def per_model(values: list) -> np.ndarray:
            return np.asarray(values, dtype=object)[model_index]

        columns = {
            "brand": meta["brand"],
            "creative_id": meta["creative_id"],
            "media_type": meta["media_type"],
            "frame_index": meta["frame_index"],
            "timestamp_s": meta["timestamp_s"],
            "object": per_model([m.object_name for m in self.models]),
            "class_name": self.classes[flat],
            "score": scores,
            "x_min": boxes[:, 0],
            "y_min": boxes[:, 1],
            "x_max": boxes[:, 2],
            "y_max": boxes[:, 3],
            "box_area_frac": np.concatenate(self.area),
            "above_threshold": scores >= thresholds,
            "threshold": thresholds,
            "model_id": per_model([m.model_id for m in self.models]),
            "model_beats_baseline": np.array([m.beats_baseline for m in self.models], dtype=bool)[
                model_index
            ],
            "backend": per_model([m.detector.backend for m in self.models]),
            "batch": np.full(len(scores), batch_key, dtype=object),
        }
        arrays = [pa.array(columns[f.name], type=f.type, from_pandas=True) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)


def detect_chunk(
    chunk: list[DecodedImage],
    rows: BatchRows,
    failed: list[DecodedImage],
    threads: ModelThreads | None = None,
) -> None:
    """Every model of `rows` on one decoded chunk of images (at its score floor, on `threads`, else one after
    another here), the detections added to `rows` and the images that could not be decoded to `failed`."""
    start_chunk(chunk, rows, failed, threads or ModelThreads(1))()


def start_chunk(
    chunk: list[DecodedImage], rows: BatchRows, failed: list[DecodedImage], threads: ModelThreads
) -> Callable[[], None]:
    """`detect_chunk` started on `threads`; call the result to wait for the models and add their rows (chunks
    must be finished in the order they were started, so the rows keep their order)."""
    good = [d for d in chunk if d.image is not None]
    failed.extend(d for d in chunk if d.image is None)
    if not good:
        return lambda: None
    images = [d.image for d in good]
    result = threads.submit([m.detector for m in rows.models], images, rows.score_floor)

    def finish() -> None:
        for index, (model, predictions) in enumerate(zip(rows.models, result(), strict=True)):
            if len(predictions) != len(images):
                raise RuntimeError(
                    f"model {model.object_name}/{model.model_id} returned {len(predictions)} results "
                    f"for {len(images)} images"
                )
            for decoded, pred in zip(good, predictions, strict=True):
                rows.add(decoded, index, pred)

    return finish
