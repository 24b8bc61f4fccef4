"""decode_bytes on real encoded images: the pixel budget, reduced JPEG decoding, truncation, orientation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from creative_assets.media.decode import ImageDecodeError, decode_bytes, read_header
from creative_assets_tests.hostile.generator import jpeg_with_orientation, png_header_only, png_of_zeros


def _jpeg(width: int, height: int) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)  # left half red (BGR)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def test_an_image_within_the_budget_decodes_whole_as_bgr() -> None:
    decoded = decode_bytes(_jpeg(64, 48), max_megapixels=1)
    assert decoded.image.shape == (48, 64, 3) and (decoded.scale_x, decoded.scale_y) == (1.0, 1.0)
    assert decoded.image[24, 10].tolist() == pytest.approx([0, 0, 254], abs=3)


@pytest.mark.parametrize(("budget_mp", "shape", "scale"), [(0.08, (240, 320), 2.0), (0.005, (60, 80), 8.0)])
def test_a_jpeg_over_the_budget_decodes_reduced_to_fit(budget_mp, shape, scale) -> None:
    decoded = decode_bytes(_jpeg(640, 480), max_megapixels=budget_mp)
    assert decoded.image.shape[:2] == shape and decoded.scale_x == decoded.scale_y == scale
    assert (decoded.header.width, decoded.header.height) == (640, 480)
    assert decoded.image.shape[0] * decoded.image.shape[1] <= budget_mp * 1e6


def test_a_jpeg_too_large_even_at_one_eighth_is_refused() -> None:
    with pytest.raises(
        ImageDecodeError, match=r"640x480 \(0.3 MP\) is over the pixel budget of 0.001 MP even at 1/8"
    ):
        decode_bytes(_jpeg(640, 480), max_megapixels=0.001)


def test_a_png_over_the_budget_is_refused_from_its_header() -> None:
    assert (read_header(png_header_only(70_000, 70_000)).width, 70_000) == (70_000, 70_000)
    with pytest.raises(ImageDecodeError, match="4900.0 MP.*only JPEG can be decoded reduced"):
        decode_bytes(png_header_only(70_000, 70_000))


def test_a_png_within_the_budget_that_was_built_row_by_row_decodes() -> None:
    decoded = decode_bytes(png_of_zeros(300, 200))
    assert decoded.image.shape == (200, 300, 3) and not decoded.image.any()


def test_truncated_jpeg_is_refused_not_grey_filled() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", noise)[1].tobytes()
    with pytest.raises(ImageDecodeError, match="truncated image"):
        decode_bytes(data[: len(data) // 2])


def test_exif_orientation_is_applied_and_reported_in_the_header() -> None:
    decoded = decode_bytes(jpeg_with_orientation((40, 20), 6))
    assert decoded.image.shape[:2] == (40, 20)
    assert (decoded.header.width, decoded.header.height) == (20, 40)
