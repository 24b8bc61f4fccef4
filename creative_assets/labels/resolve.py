"""Turn a brand's label files into validated label tables: which known image each label names, and its boxes.

Reference resolution. A label names an image by a path or a URL; only the brand's known images count — still
image creatives from the manifest and frames from the frames table — and only their table metadata is used
(no image file is opened; sizes come from the tables). The reference is reduced to posix path parts: the
scheme prefix is stripped (`AmlDatastore://<store>/`, `azureml://…/paths/`, `http(s)://host/`, `file:`), a
URL's query is dropped, `%xx` escapes are decoded once and `\\` becomes `/`. A `..` part, a NUL, or an
absolute path outside the data root is refused ("path escapes the data root") and never touched. Then:

1. an exact match wins: the path relative to the data root, the creative_id (path under `creatives/`) of a
   still image, or `<creative_id>/<frame:06d>.jpg` of a frame;
2. otherwise paths are compared component by component from the end against each image's name (its
   creative_id, or `<creative_id>/<frame:06d>.jpg`): every component present in both must match. The
   reference may carry extra leading components (a datastore's folders) or be a bare file name. Of the images
   that match, the one matching the most components wins if it is the only one; several → "ambiguous".
   No match while an image of that file name exists in another folder (`images_old/x.jpg` against
   `images/x.jpg`) → "conflicting folder", never a silent attach; no such file name → "no such image".

Validation (`build_label_set`). Labels are assumed exhaustive: every labelled image is labelled for every
category, so an image with no boxes is a negative example and stays in the images table. Per box: a category
outside `categories` is an error and the box is dropped; a crowd box is dropped with a note (crowd regions are
not used for training); normalised boxes are scaled with the image size from the tables; boxes are clipped to
the image. A box left with no area (fully outside, or degenerate) rejects its whole image: an image is imported
whole or not at all, so one that lost a box never becomes a wrongly labelled (or negative) example; the
errors row names the box. Per image: pixel
boxes from a label whose stated width/height differ from the real image are untrustworthy, so the image is an
error and skipped (normalised boxes do not depend on the stated size). An image labelled again — in another
file or another record — is skipped silently when its boxes match the first record within a pixel, and is an
error for the later record otherwise; files are read in sorted order, so the first one wins deterministically.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pandas as pd

from creative_assets.labels.importers import LabelBox, LabelImage, load_label_file
from creative_assets.layout import LABEL_EXTENSIONS, DataRoot, PathEscapeError

STAGE = "labels"
LABEL_IMAGE_DTYPES = {
    "brand": "string",
    "image_path": "string",
    "creative_id": "string",
    "frame_index": "Int64",
    "width": "int64",
    "height": "int64",
    "source_file": "string",
}
LABEL_IMAGE_COLUMNS = list(LABEL_IMAGE_DTYPES)
ANNOTATION_DTYPES = {
    "brand": "string",
    "image_path": "string",
    "category": "string",
    "x_min": "float64",
    "y_min": "float64",
    "x_max": "float64",
    "y_max": "float64",
    "source_file": "string",
    "record": "string",
}
ANNOTATION_COLUMNS = list(ANNOTATION_DTYPES)
LABEL_ERROR_COLUMNS = ["brand", "file", "record", "stage", "reason"]
ESCAPES_ROOT = "path escapes the data root"
# Two records of one image agree when every box matches within this many pixels (exports round differently).
DUPLICATE_TOLERANCE_PX = 1.0
_AMBIGUOUS_LISTED = 5


class UnresolvedReference(ValueError):
    """A label's image reference that names no single known image; the message is the reason."""


@dataclass(frozen=True)
class KnownImage:
    """An image labels may name: a still creative or an extracted frame, with its size from the tables."""

    image_path: str
    creative_id: str
    frame_index: int | None
    width: int | None
    height: int | None

    @property
    def key(self) -> str:
        """The creative_id of a still, `<creative_id>/<frame:06d>.jpg` of a frame."""
        if self.frame_index is None:
            return self.creative_id
        return f"{self.creative_id}/{self.frame_index:06d}.jpg"


class ImageIndex:
    """A brand's known images, indexed by exact names and by every path suffix for reference lookup."""

    def __init__(self, root: DataRoot, brand: str, manifest: pd.DataFrame, frames: pd.DataFrame) -> None:
        self.root = root
        self.brand = brand
        self.images = list(_known_images(brand, manifest, frames))
        self._exact: dict[tuple[str, ...], list[int]] = {}
        self._by_name: dict[str, list[int]] = {}
        self._keys = [PurePosixPath(image.key).parts for image in self.images]
        for i, image in enumerate(self.images):
            parts = PurePosixPath(image.image_path).parts
            for name in {parts, self._keys[i]}:
                self._exact.setdefault(name, []).append(i)
            self._by_name.setdefault(parts[-1], []).append(i)

    def _matching(self, parts: tuple[str, ...]) -> list[int]:
        """Images whose name agrees with `parts` on every component both have (from the end), best first."""
        scored = []
        for i in self._by_name.get(parts[-1], []):
            key = self._keys[i]
            k = min(len(parts), len(key))
            if parts[-k:] == key[-k:]:
                scored.append((k, i))
        if not scored:
            return []
        best = max(k for k, _ in scored)
        return [i for k, i in scored if k == best]

    def resolve(self, reference: str) -> KnownImage:
        """The one known image `reference` names; UnresolvedReference with the reason otherwise."""
        parts = reference_parts(reference, self.root)
        hits = self._exact.get(parts) or self._matching(parts)
        if not hits:
            same_name = sorted(self.images[i].key for i in self._by_name.get(parts[-1], []))
            if same_name:
                listed = ", ".join(same_name[:_AMBIGUOUS_LISTED]) + (
                    ", …" if len(same_name) > _AMBIGUOUS_LISTED else ""
                )
                raise UnresolvedReference(
                    f"conflicting folder: {'/'.join(parts)} names a folder no image of that name is in "
                    f"(images called {parts[-1]!r}: {listed})"
                )
            raise UnresolvedReference(f"no such image in brand {self.brand} (frames must be extracted first)")
        if len(hits) > 1:
            names = sorted(self.images[i].image_path for i in hits)
            listed = ", ".join(names[:_AMBIGUOUS_LISTED]) + (", …" if len(names) > _AMBIGUOUS_LISTED else "")
            raise UnresolvedReference(f"ambiguous: matches {len(names)} images ({listed})")
        return self.images[hits[0]]


def reference_parts(reference: str, root: DataRoot) -> tuple[str, ...]:
    """The posix path parts a label reference names, relative to whatever base it had; refuses escapes."""
    text = reference.strip()
    lowered = text.lower()
    if lowered.startswith("amldatastore://"):
        # AmlDatastore://<store>/<path>: the store is a name, not a folder of the data root.
        path, absolute = unquote(text[len("amldatastore://") :].partition("/")[2]), False
    elif lowered.startswith("azureml://"):
        rest = urlsplit(text).path
        marker = rest.find("/paths/")
        path = unquote(rest[marker + len("/paths/") :] if marker >= 0 else rest)
        absolute = False
    elif lowered.startswith(("http://", "https://")):
        path, absolute = unquote(urlsplit(text).path), False
    elif lowered.startswith("file:"):
        path = unquote(urlsplit(text).path)
        absolute = path.startswith("/")
    else:
        path = unquote(text)
        absolute = path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":")
    path = path.replace("\\", "/")
    if "\x00" in path:
        raise UnresolvedReference("the reference contains a NUL character")
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnresolvedReference(ESCAPES_ROOT)
    if absolute:
        # A lexical check suffices: with no `..` left, an absolute path is inside the root iff it starts
        # with the root's parts. A drive-letter path never does (the root is a posix path).
        root_parts = PurePosixPath(root.root.as_posix()).parts[1:]
        if not path.startswith("/") or parts[: len(root_parts)] != root_parts:
            raise UnresolvedReference(ESCAPES_ROOT)
        parts = parts[len(root_parts) :]
    if not parts:
        raise UnresolvedReference("the reference names no file")
    return parts


def _known_images(brand: str, manifest: pd.DataFrame, frames: pd.DataFrame) -> Iterable[KnownImage]:
    stills = manifest[(manifest["brand"] == brand) & (manifest["media_type"] == "image")]
    for row in stills.itertuples(index=False):
        yield KnownImage(str(row.path), str(row.creative_id), None, _size(row.width), _size(row.height))
    for row in frames[frames["brand"] == brand].itertuples(index=False):
        yield KnownImage(
            str(row.path), str(row.creative_id), int(row.frame_index), _size(row.width), _size(row.height)
        )


def _size(value: object) -> int | None:
    return None if pd.isna(value) or int(value) <= 0 else int(value)


# ---------------------------------------------------------------------------------------------- label set


@dataclass
class LabelSet:
    """A brand's validated labels: images (negatives included), their boxes in pixels, and the errors."""

    images: pd.DataFrame
    annotations: pd.DataFrame
    errors: pd.DataFrame


@dataclass(frozen=True)
class _PixelBox:
    category: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    record: str
    iscrowd: bool

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return (self.x_min, self.y_min, self.x_max, self.y_max)


@dataclass
class _Accepted:
    image: KnownImage
    source_file: str
    record: str
    boxes: list[_PixelBox]


def build_label_set(
    root: DataRoot, brand: str, manifest: pd.DataFrame, frames: pd.DataFrame, categories: Collection[str]
) -> LabelSet:
    """Read every label file of `brand`, resolve each image against the tables and validate every box."""
    index = ImageIndex(root, brand, manifest, frames)
    known_categories = set(categories)
    errors: list[dict[str, str]] = []

    def error(file: str, record: str, reason: str) -> None:
        errors.append({"brand": brand, "file": file, "record": record, "stage": STAGE, "reason": reason})

    accepted: dict[str, _Accepted] = {}
    for path, rel in _label_files(root, brand, error):
        parsed = load_label_file(path)
        for err in parsed.errors:
            error(rel, err.record, err.reason)
        for label in parsed.images:
            try:
                image = index.resolve(label.reference)
            except UnresolvedReference as err:
                error(rel, label.record, f"{err} (reference {label.reference[:200]!r})")
                continue
            if image.width is None or image.height is None:
                error(rel, label.record, f"{image.image_path} has no known size in the tables; image skipped")
                continue
            reason = _size_conflict(label, image)
            if reason:
                error(rel, label.record, reason)
                continue
            boxes = [_to_pixels(box, image) for box in label.boxes]
            first = accepted.get(image.image_path)
            if first is not None:
                if not _same_boxes(first.boxes, boxes):
                    error(
                        rel,
                        label.record,
                        f"{image.image_path} is already labelled differently by {first.source_file} "
                        f"{first.record}; this record is skipped",
                    )
                continue
            accepted[image.image_path] = _Accepted(image, rel, label.record, boxes)

    image_rows, annotation_rows = [], []
    for item in sorted(accepted.values(), key=lambda a: a.image.image_path):
        image = item.image
        rejected = [
            box for box in item.boxes if _clipped(box, image) is None and box.category in known_categories
        ]
        if rejected:
            for box in rejected:
                x0, y0, x1, y1 = box.corners
                error(
                    item.source_file,
                    box.record,
                    f"box {box.category} ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the "
                    f"{image.width}x{image.height} image or has no area; {image.image_path} is left "
                    "out of the datasets (an image is imported whole or not at all)",
                )
            continue
        image_rows.append(
            {
                "brand": brand,
                "image_path": image.image_path,
                "creative_id": image.creative_id,
                "frame_index": image.frame_index,
                "width": image.width,
                "height": image.height,
                "source_file": item.source_file,
            }
        )
        for box in item.boxes:
            if box.category not in known_categories:
                known = ", ".join(sorted(known_categories)) or "none"
                error(
                    item.source_file,
                    box.record,
                    f"unknown category {box.category!r} (known: {known}); box skipped",
                )
                continue
            if box.iscrowd:
                error(
                    item.source_file, box.record, "note: crowd box skipped (crowd regions are not trained on)"
                )
                continue
            cx0, cy0, cx1, cy1 = _clipped(box, image)  # type: ignore[misc]  (rejected images left above)
            annotation_rows.append(
                {
                    "brand": brand,
                    "image_path": image.image_path,
                    "category": box.category,
                    "x_min": cx0,
                    "y_min": cy0,
                    "x_max": cx1,
                    "y_max": cy1,
                    "source_file": item.source_file,
                    "record": box.record,
                }
            )
    return LabelSet(
        images=_frame(image_rows, LABEL_IMAGE_COLUMNS, LABEL_IMAGE_DTYPES),
        annotations=_frame(annotation_rows, ANNOTATION_COLUMNS, ANNOTATION_DTYPES),
        errors=_frame(errors, LABEL_ERROR_COLUMNS, dict.fromkeys(LABEL_ERROR_COLUMNS, "string")),
    )


def _label_files(
    root: DataRoot, brand: str, error: Callable[[str, str, str], None]
) -> list[tuple[Path, str]]:
    """The brand's label files in name order with their data-root paths; links leaving the root are errors."""
    folder = root.labels(brand)
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in LABEL_EXTENSIONS:
            continue
        try:
            rel = root.relative(path)
        except PathEscapeError:
            error(path.relative_to(root.root).as_posix(), "", f"{ESCAPES_ROOT}; not read")
            continue
        if path.is_file():
            files.append((path, rel))
    return files


def _clipped(box: _PixelBox, image: KnownImage) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, or None if nothing of it is left."""
    x0, y0, x1, y1 = box.corners
    cx0, cy0 = min(max(x0, 0.0), image.width), min(max(y0, 0.0), image.height)
    cx1, cy1 = min(max(x1, 0.0), image.width), min(max(y1, 0.0), image.height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return cx0, cy0, cx1, cy1


def _size_conflict(label: LabelImage, image: KnownImage) -> str | None:
    if not any(not box.normalised for box in label.boxes):
        return None
    stated = (label.width, label.height)
    if stated[0] is None and stated[1] is None:
        return None
    if (label.width is not None and label.width != image.width) or (
        label.height is not None and label.height != image.height
    ):
        return (
            f"label size {label.width}x{label.height} differs from the image's actual size "
            f"{image.width}x{image.height} ({image.image_path}); pixel boxes cannot be placed, image skipped"
        )
    return None


def _to_pixels(box: LabelBox, image: KnownImage) -> _PixelBox:
    sx, sy = (image.width, image.height) if box.normalised else (1, 1)
    return _PixelBox(
        box.category, box.x_min * sx, box.y_min * sy, box.x_max * sx, box.y_max * sy, box.record, box.iscrowd
    )


def _same_boxes(a: list[_PixelBox], b: list[_PixelBox]) -> bool:
    """Same categories and corners within DUPLICATE_TOLERANCE_PX, in any order."""
    if len(a) != len(b):
        return False

    def order(box: _PixelBox) -> tuple:
        return (box.category, box.iscrowd, *(round(v) for v in box.corners))

    return all(
        (p.category, p.iscrowd) == (q.category, q.iscrowd)
        and all(abs(u - v) <= DUPLICATE_TOLERANCE_PX for u, v in zip(p.corners, q.corners, strict=True))
        for p, q in zip(sorted(a, key=order), sorted(b, key=order), strict=True)
    )


def _frame(rows: list[dict], columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns).astype(dtypes)
