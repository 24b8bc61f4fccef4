"""Decode images ahead of the detectors with a torch DataLoader.

Each image is decoded once (BGR uint8, from bytes, within the pixel budget: `media.decode`) however many
models look at it. A file that cannot be read is returned as a `DecodedImage` carrying the reason instead of
raising, so the caller can record an error row and carry on with the rest of the chunk. An image over the
budget that was decoded reduced carries the factor back to full-size pixels, so boxes are reported in the
same pixels as the manifest's width and height and the labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from creative_assets.layout import DataRoot, PathEscapeError
from creative_assets.media.decode import DEFAULT_MAX_MEGAPIXELS, ImageDecodeError, decode_file

if TYPE_CHECKING:  # torch loads when detection runs, not when the code location imports this module
    from torch.utils.data import DataLoader

# Chunks each worker decodes ahead: enough to keep the model busy, small enough to bound memory.
PREFETCH_CHUNKS = 2


@dataclass(frozen=True)
class DecodedImage:
    """One decoded image (or why it could not be decoded), with its row position in the work items."""

    position: int
    image: np.ndarray | None
    error: str | None = None
    scale_x: float = 1.0  # full-size pixels per decoded pixel (> 1 when decoded reduced)
    scale_y: float = 1.0


def decode_image(
    root: DataRoot, relative_path: str, position: int, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> DecodedImage:
    """Read the image at `relative_path` under the data root as BGR uint8; failures become `error`."""
    try:
        path = root.resolve_inside(relative_path)
    except PathEscapeError as exc:
        return DecodedImage(position, None, str(exc))
    if not path.is_file():
        return DecodedImage(position, None, "file not found")
    try:
        decoded = decode_file(path, max_megapixels)
    except ImageDecodeError as exc:
        return DecodedImage(position, None, str(exc))
    return DecodedImage(position, decoded.image, None, decoded.scale_x, decoded.scale_y)


class ImageFiles:
    """Images by position: item `i` is the decoded file `relative_paths[i]`.

    A map-style dataset as `DataLoader` takes it (`__len__` + `__getitem__`); it does not subclass torch's
    `Dataset`, so defining it needs no torch.
    """

    def __init__(
        self, root: DataRoot, relative_paths: Sequence[str], max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    ) -> None:
        self.root = root
        self.relative_paths = list(relative_paths)
        self.max_megapixels = max_megapixels

    def __len__(self) -> int:
        return len(self.relative_paths)

    def __getitem__(self, position: int) -> DecodedImage:
        return decode_image(self.root, self.relative_paths[position], position, self.max_megapixels)


def _as_list(items: list[DecodedImage]) -> list[DecodedImage]:
    # Images of different sizes cannot be stacked; detectors take a list.
    return list(items)


def image_chunks(dataset: ImageFiles, chunks: Iterable[list[int]], workers: int) -> DataLoader:
    """Iterate `dataset` one chunk (list of positions) at a time, decoded ahead by `workers` processes."""
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        batch_sampler=list(chunks),
        num_workers=workers,
        collate_fn=_as_list,
        persistent_workers=False,
        prefetch_factor=PREFETCH_CHUNKS if workers > 0 else None,
    )
