"""The Haar-cascade baseline for `face` and `smile`: what the trained detectors must beat.

OpenCV's bundled cascades: `haarcascade_frontalface_default.xml` finds faces; `haarcascade_smile.xml` runs
inside the lower half of every detected face, the usual way to use it (on a whole image it fires on any
mouth-like texture, and the mouth sits in the lower half of a frontal face). Cascades give no score, so every
detection scores 1.0 and any threshold in (0, 1] gives the same presence metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from creative_assets.detection.backend import Predictions
from creative_assets.detection.evaluation import GroundTruth, PresenceMetrics, max_scores, presence_metrics

if TYPE_CHECKING:  # OpenCV loads when a baseline runs, not when the code location imports this module
    import cv2

HAAR_CASCADES = {"face": "haarcascade_frontalface_default.xml", "smile": "haarcascade_smile.xml"}

# Large creatives are shrunk before detection (boxes are mapped back): cascades scale with pixels.
MAX_SIDE = 1024
_FACE_PARAMS = {"scaleFactor": 1.1, "minNeighbors": 5, "minSize": (24, 24)}
_SMILE_PARAMS = {"scaleFactor": 1.7, "minNeighbors": 20}


class HaarCascadeMissingError(RuntimeError):
    """OpenCV lacks the cascade (OpenCV 5 ships none and moved CascadeClassifier to contrib)."""


def load_cascade(class_name: str) -> cv2.CascadeClassifier:
    """Load the bundled cascade for `face` or `smile`; a clear error if this OpenCV build has none."""
    import cv2

    if class_name not in HAAR_CASCADES:
        raise ValueError(f"no Haar cascade for {class_name!r}; available: {sorted(HAAR_CASCADES)}")
    hint = f"OpenCV {cv2.__version__} has no {HAAR_CASCADES[class_name]}: install opencv-python-headless<5"
    data = getattr(cv2, "data", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        raise HaarCascadeMissingError(hint)
    path = Path(data.haarcascades) / HAAR_CASCADES[class_name]
    if not path.is_file():
        raise HaarCascadeMissingError(hint)
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise HaarCascadeMissingError(f"{path} did not load: install opencv-python-headless<5")
    return cascade


def _detect(
    gray: np.ndarray, class_name: str, faces: cv2.CascadeClassifier, smiles: cv2.CascadeClassifier | None
) -> list[tuple[int, int, int, int]]:
    found = faces.detectMultiScale(gray, **_FACE_PARAMS)
    boxes = [(x, y, x + w, y + h) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
    if class_name == "face":
        return boxes
    out = []
    for x0, y0, x1, y1 in boxes:
        top = y0 + (y1 - y0) // 2
        mouth = gray[top:y1, x0:x1]
        for x, y, w, h in np.asarray(smiles.detectMultiScale(mouth, **_SMILE_PARAMS)).reshape(-1, 4):
            out.append((x0 + x, top + y, x0 + x + w, top + y + h))
    return out


def haar_predictions(
    gt: GroundTruth,
    image_root: Path,
    class_name: str,
    max_side: int = MAX_SIDE,
    cascade: str | None = None,
) -> dict[int, Predictions]:
    """Cascade detections on every image of `gt` (score 1.0, label = `class_name`'s index in gt.classes).

    `cascade` names the HAAR_CASCADES entry to run ("face" or "smile"); by default the class name itself, so a
    label category called e.g. "person_face" can still be scored with `cascade="face"`. Images are read from
    `image_root / file_name`; a file that escapes `image_root` or cannot be decoded raises, because the split
    was validated when it was written.
    """
    import cv2

    label = gt.class_index(class_name)
    kind = class_name if cascade is None else cascade
    # Smiles are searched inside faces, so every kind needs the face cascade.
    smiles = None if kind == "face" else load_cascade(kind)
    faces = load_cascade("face")
    root = Path(image_root).resolve()
    out: dict[int, Predictions] = {}
    for image_id, file_name in zip(gt.image_ids, gt.file_names, strict=True):
        path = (root / file_name).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"{file_name!r} leaves the image root {root}")
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot decode image {path}")
        scale = min(1.0, max_side / max(image.shape[:2]))
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # Equalising makes the cascades less sensitive to exposure, as in OpenCV's own samples.
        boxes = _detect(cv2.equalizeHist(image), kind, faces, smiles)
        n = len(boxes)
        out[int(image_id)] = Predictions(
            boxes=(np.asarray(boxes, dtype=np.float32).reshape(n, 4) / scale).astype(np.float32),
            scores=np.ones(n, dtype=np.float32),
            labels=np.full(n, label, dtype=np.int64),
        )
    return out


def haar_baseline(
    gt: GroundTruth, image_root: Path, class_name: str, threshold: float = 0.5, cascade: str | None = None
) -> PresenceMetrics:
    """Presence metrics of the Haar cascade (`cascade`, default `class_name`) for `class_name` on `gt`."""
    k = gt.class_index(class_name)
    scores = max_scores(gt, haar_predictions(gt, image_root, class_name, cascade=cascade))
    return presence_metrics(gt.presence[:, k], scores[:, k], threshold)
