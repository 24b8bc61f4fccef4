"""Decoding one image file safely: from bytes, header first, within a pixel budget, truncation refused.

Every stage that opens a still image or an extracted frame goes through `decode_file`:
- The file is read as bytes and decoded by Pillow. No path is ever handed to OpenCV: `cv2.imread` on a file
  name with non-UTF-8 bytes crashed the whole process (signal 11) instead of failing one file.
- The header gives the size before any pixel is decoded. An image over the pixel budget is decoded reduced
  when its format can do that without the full-size buffer (JPEG's DCT scaling via `Image.draft`, by 1/2,
  1/4 or 1/8); any other format over the budget is refused. A 1.2 MB 20000×20000 PNG would otherwise need
  1.2 GB for its pixels alone, and several times that in the decoders' working buffers.
- Truncation errors stay on: a JPEG or PNG cut short raises instead of being grey-filled and then scored.
  A PNG's chunk checksums are verified too (noise compresses to stored blocks, so flipped bytes there decode
  without any zlib error). JPEG has no checksum: damage inside its entropy-coded data cannot be told apart.
- Pillow's own decompression-bomb guard is replaced by the budget (it would refuse large JPEGs before the
  reduced decode could run), so it is switched off when this module is imported.

Failures are `ImageDecodeError` with a one-line reason; callers turn them into errors rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Our pixel budget is checked on the header before decoding; Pillow's global guard would only get in its way.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_MEGAPIXELS = 50.0
REDUCTIONS = (2, 4, 8)  # what JPEG's DCT scaling offers
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class ImageDecodeError(ValueError):
    """An image that cannot be decoded within the rules; the message is the errors-row reason."""


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: format and size as displayed (after EXIF orientation)."""

    format: str
    width: int
    height: int
    orientation: int = 1  # EXIF orientation (1: stored as displayed)

    @property
    def megapixels(self) -> float:
        """Width × height in millions of pixels."""
        return self.width * self.height / 1e6


@dataclass(frozen=True)
class DecodedPixels:
    """A decoded BGR uint8 image and the factor from its pixels back to the full-size image's."""

    image: np.ndarray
    header: ImageHeader
    scale_x: float = 1.0
    scale_y: float = 1.0


def budget_pixels(max_megapixels: float) -> int:
    """The budget in pixels."""
    if not max_megapixels > 0:
        raise ValueError(f"the pixel budget must be positive, got {max_megapixels}")
    return int(max_megapixels * 1_000_000)


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageDecodeError for an unreadable or empty file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise ImageDecodeError("empty file")
    return data


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageDecodeError("not a recognised image format (corrupt or not an image)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode the image header: {exc}") from None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation from the header alone. `getexif()` is not used: for a PNG it decodes the whole
    image to look for an eXIf chunk after the pixels, which is exactly what the budget check must precede."""
    raw = image.info.get("exif")
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not stop the decode; orientation then stays as stored
        return 1


def _header(image: Image.Image) -> ImageHeader:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"the header gives an empty size {width}x{height}")
    orientation = _orientation(image)
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(str(image.format or "unknown"), int(width), int(height), orientation)


def read_header(data: bytes) -> ImageHeader:
    """Format and displayed size from the header alone (no pixels decoded)."""
    with _open(data) as image:
        return _header(image)


def _reduction(header: ImageHeader, budget: int) -> int:
    """1 if the image fits the budget, else the smallest JPEG reduction that fits; ImageDecodeError if none."""
    pixels = header.width * header.height
    if pixels <= budget:
        return 1
    over = (
        f"{header.width}x{header.height} ({header.megapixels:.1f} MP) is over the pixel budget of "
        f"{budget / 1e6:g} MP"
    )
    if header.format != "JPEG":
        raise ImageDecodeError(f"{over}; only JPEG can be decoded reduced, so it is not decoded")
    for factor in REDUCTIONS:
        if -(-header.width // factor) * -(-header.height // factor) <= budget:
            return factor
    raise ImageDecodeError(f"{over} even at 1/{REDUCTIONS[-1]} size, so it is not decoded")


def decode_bytes(data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> DecodedPixels:
    """Decode image bytes to BGR uint8 within the pixel budget; ImageDecodeError with the reason otherwise."""
    budget = budget_pixels(max_megapixels)
    image = _open(data)
    try:
        header = _header(image)
        factor = _reduction(header, budget)
        if factor > 1:
            stored_w, stored_h = image.size
            image.draft("RGB", (-(-stored_w // factor), -(-stored_h // factor)))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            if "truncated" in reason:
                raise ImageDecodeError(f"truncated image: {reason}") from None
            raise ImageDecodeError(f"corrupt image: {reason}") from None
        oriented = ImageOps.exif_transpose(image) if header.orientation != 1 else image
        rgb = oriented if oriented.mode == "RGB" else oriented.convert("RGB")
        pixels = np.asarray(rgb)[:, :, ::-1].copy()  # RGB → BGR, the layout every model here expects
    finally:
        image.close()
    if header.format == "PNG":
        _verify_checksums(data)
    height, width = pixels.shape[:2]
    return DecodedPixels(pixels, header, header.width / width, header.height / height)


def _verify_checksums(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises several types here (SyntaxError, OSError, struct.error)
        raise ImageDecodeError(f"corrupt image: {exc}") from None


def decode_file(path: Path, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> DecodedPixels:
    """Read and decode one image file (see the module docstring); ImageDecodeError with the reason otherwise."""
    return decode_bytes(read_bytes(path), max_megapixels)
