"""Drawing primitives for the synthetic demo creatives: backgrounds, clutter and the five brand objects.

Every object is drawn inside an integer box `(x0, y0, x1, y1)` (pixels `x0 … x1-1`) and fills it tightly, so the
box is the label. Geometry is continuous (a pixel covers `[i, i+1)`) and drawn with OpenCV's fixed-point
`shift` so small objects keep their shape. All randomness comes from the numpy Generator passed in.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

CATEGORIES: tuple[str, ...] = ("logo", "product", "brand_cue", "face", "smile")

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
Colour = tuple[int, int, int]  # BGR

_SHIFT = 4
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA

# Aspect ratio (width / height) of each drawn kind; a brand cue band picks its own per instance.
_ASPECT = {"disc_triangle": 1.0, "square_ring_dot": 1.0, "diamond_bar": 1.0, "bottle": 0.42, "carton": 0.72}
FACE_ASPECT = 0.78
CUE_ASPECT_RANGE = (2.4, 3.4)

# Size of an object as sqrt(area) over the image's short side.
SIZE_RANGE = {
    "logo": (0.15, 0.40),
    "product": (0.18, 0.45),
    "brand_cue": (0.18, 0.45),
    "face": (0.22, 0.45),
}

SKIN_TONES: tuple[Colour, ...] = (
    (185, 205, 242),
    (150, 185, 228),
    (120, 160, 212),
    (85, 125, 175),
    (60, 90, 130),
)
_INK: Colour = (25, 25, 30)
_WHITE: Colour = (250, 250, 250)
_WORDS = ("SALE", "NEW", "NOW", "50%", "OFFER", "BUY", "WIN", "LIMITED", "FRESH", "2 FOR 1")


@dataclass(frozen=True)
class BrandStyle:
    """How one brand's logo, product and brand cue look."""

    logo_kind: str
    logo_colour: Colour
    logo_accent: Colour
    product_kind: str
    product_colour: Colour
    product_band: Colour
    cue_kind: str
    cue_colours: tuple[Colour, Colour]


_FIXED_STYLES = {
    # A bold red disc with a white triangle; a maroon bottle; yellow/black hazard stripes.
    "acme": BrandStyle(
        logo_kind="disc_triangle",
        logo_colour=(35, 30, 225),
        logo_accent=_WHITE,
        product_kind="bottle",
        product_colour=(60, 40, 140),
        product_band=(215, 240, 250),
        cue_kind="stripes",
        cue_colours=((0, 215, 255), (20, 20, 20)),
    ),
    # A blue square ring around a dot; a teal carton with a yellow band; a green/white checker.
    "globex": BrandStyle(
        logo_kind="square_ring_dot",
        logo_colour=(200, 80, 15),
        logo_accent=_WHITE,
        product_kind="carton",
        product_colour=(130, 115, 0),
        product_band=(40, 220, 250),
        cue_kind="checker",
        cue_colours=((50, 175, 40), (245, 250, 245)),
    ),
}


def _saturated(rng: np.random.Generator) -> Colour:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(200, 256), rng.integers(150, 241)]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])  # type: ignore[return-value]


def brand_style(brand: str) -> BrandStyle:
    """The look of `brand`: fixed for acme and globex, derived from the name (stably) for any other."""
    if brand in _FIXED_STYLES:
        return _FIXED_STYLES[brand]
    rng = np.random.default_rng(zlib.crc32(brand.encode("utf-8")))
    kinds = ("disc_triangle", "square_ring_dot", "diamond_bar")
    return BrandStyle(
        logo_kind=kinds[int(rng.integers(len(kinds)))],
        logo_colour=_saturated(rng),
        logo_accent=_WHITE,
        product_kind=("bottle", "carton")[int(rng.integers(2))],
        product_colour=_saturated(rng),
        product_band=_saturated(rng),
        cue_kind=("stripes", "checker", "dots")[int(rng.integers(3))],
        cue_colours=(_saturated(rng), (20, 20, 20)),
    )


def object_aspect(category: str, style: BrandStyle, rng: np.random.Generator) -> float:
    """Width / height of a new `category` object of this brand."""
    if category == "logo":
        return _ASPECT[style.logo_kind]
    if category == "product":
        return _ASPECT[style.product_kind]
    if category == "brand_cue":
        return float(rng.uniform(*CUE_ASPECT_RANGE))
    if category == "face":
        return FACE_ASPECT
    raise ValueError(f"{category!r} is not drawn on its own")


# ---------------------------------------------------------------------------------------------------------
# fixed-point helpers


def _pt(x: float, y: float) -> tuple[int, int]:
    # Continuous coordinate u sits at OpenCV pixel coordinate u - 0.5 (pixel centres are integers there).
    return int(round((x - 0.5) * _ONE)), int(round((y - 0.5) * _ONE))


def _len(v: float) -> int:
    return max(1, int(round(v * _ONE)))


def _poly(img: np.ndarray, points: list[tuple[float, float]], colour: Colour) -> None:
    pts = np.array([_pt(x, y) for x, y in points], np.int32)
    cv2.fillPoly(img, [pts], colour, _AA, _SHIFT)


def _ellipse(
    img: np.ndarray,
    centre: tuple[float, float],
    axes: tuple[float, float],
    colour: Colour,
    thickness: int = -1,
    start: float = 0,
    end: float = 360,
) -> None:
    cv2.ellipse(
        img, _pt(*centre), (_len(axes[0]), _len(axes[1])), 0, start, end, colour, thickness, _AA, _SHIFT
    )


def _line(img: np.ndarray, a: tuple[float, float], b: tuple[float, float], colour: Colour, t: int) -> None:
    cv2.line(img, _pt(*a), _pt(*b), colour, max(1, t), _AA, _SHIFT)


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------
# background and clutter


def _muted(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(0, 110), rng.integers(90, 241)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted two-colour gradient in a random direction with soft blobs and grain (BGR uint8)."""
    c0, c1 = _muted(rng), _muted(rng)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    short = min(width, height)
    # Soft blobs are blurred at quarter resolution: the result is smooth anyway and 16x cheaper.
    small = (max(1, width // 4), max(1, height // 4))
    for _ in range(int(rng.integers(0, 4))):
        blob = np.zeros((small[1], small[0]), np.float32)
        centre = (int(rng.integers(0, small[0])), int(rng.integers(0, small[1])))
        cv2.circle(blob, centre, max(1, int(rng.uniform(0.05, 0.15) * short)), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), sigmaX=max(0.5, 0.0375 * short))
        blob = cv2.resize(blob, (width, height), interpolation=cv2.INTER_LINEAR)[..., None] * 0.5
        img = img * (1 - blob) + _muted(rng)[None, None, :] * blob
    return add_grain(np.clip(img, 0, 255).astype(np.uint8), rng, float(rng.uniform(0.0, 6.0)))


def draw_clutter(img: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Lines, blocks, triangles and words in random colours: busy, but none of them is a category."""
    height, width = img.shape[:2]
    short = min(width, height)
    for _ in range(count):
        kind = int(rng.integers(4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == 0:
            a = (rng.uniform(0, width), rng.uniform(0, height))
            b = (rng.uniform(0, width), rng.uniform(0, height))
            _line(img, a, b, colour, int(rng.integers(1, 4)))  # type: ignore[arg-type]
        elif kind == 1:
            w, h = rng.uniform(0.05, 0.25, 2) * short
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            _poly(img, [(x, y), (x + w, y), (x + w, y + h), (x, y + h)], colour)  # type: ignore[arg-type]
        elif kind == 2:
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.04, 0.15) * short
            pts = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in rng.uniform(0, 2 * math.pi, 3)]
            _poly(img, pts, colour)  # type: ignore[arg-type]
        else:
            word = _WORDS[int(rng.integers(len(_WORDS)))]
            scale = rng.uniform(0.25, 0.6) * short / 100
            org = (int(rng.uniform(0, width * 0.7)), int(rng.uniform(height * 0.15, height)))
            cv2.putText(img, word, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(scale * 2)), _AA)


def adjust_tone(img: np.ndarray, contrast: float, brightness: float) -> np.ndarray:
    """`img * contrast + brightness`, clipped to uint8."""
    return cv2.convertScaleAbs(img, alpha=contrast, beta=brightness)


def add_grain(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian grain of standard deviation `sigma` grey levels."""
    if sigma <= 0:
        return img
    noisy = rng.standard_normal(img.shape, dtype=np.float32)
    noisy *= sigma
    noisy += img
    return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------
# objects


def draw_logo(img: np.ndarray, box: Box, style: BrandStyle) -> None:
    """The brand's emblem filling `box`."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = x0 + w / 2, y0 + h / 2
    if style.logo_kind == "disc_triangle":
        r = min(w, h) / 2
        _ellipse(img, (cx, cy), (r, r), style.logo_colour)
        tr = 0.62 * r
        _poly(
            img,
            [
                (cx + tr * math.cos(a), cy + tr * math.sin(a))
                for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
            ],
            style.logo_accent,
        )
    elif style.logo_kind == "square_ring_dot":
        _poly(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], style.logo_colour)
        m = 0.2 * min(w, h)
        _poly(
            img, [(x0 + m, y0 + m), (x1 - m, y0 + m), (x1 - m, y1 - m), (x0 + m, y1 - m)], style.logo_accent
        )
        r = 0.15 * min(w, h)
        _ellipse(img, (cx, cy), (r, r), style.logo_colour)
    elif style.logo_kind == "diamond_bar":
        _poly(img, [(cx, y0), (x1, cy), (cx, y1), (x0, cy)], style.logo_colour)
        bh = 0.12 * h
        _poly(
            img,
            [
                (cx - 0.3 * w, cy - bh),
                (cx + 0.3 * w, cy - bh),
                (cx + 0.3 * w, cy + bh),
                (cx - 0.3 * w, cy + bh),
            ],
            style.logo_accent,
        )
    else:
        raise ValueError(f"unknown logo kind {style.logo_kind!r}")


def draw_product(img: np.ndarray, box: Box, style: BrandStyle) -> None:
    """The brand's product (bottle or carton) filling `box`, with a label band."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = x0 + w / 2
    body = style.product_colour
    if style.product_kind == "bottle":
        cap_w, neck_w = 0.32 * w, 0.4 * w
        _poly(
            img,
            [
                (cx - cap_w / 2, y0),
                (cx + cap_w / 2, y0),
                (cx + cap_w / 2, y0 + 0.1 * h),
                (cx - cap_w / 2, y0 + 0.1 * h),
            ],
            _shade(body, 0.45),
        )
        _poly(
            img,
            [
                (cx - neck_w / 2, y0 + 0.1 * h),
                (cx + neck_w / 2, y0 + 0.1 * h),
                (cx + neck_w / 2, y0 + 0.28 * h),
                (x1, y0 + 0.42 * h),
                (x1, y1),
                (x0, y1),
                (x0, y0 + 0.42 * h),
                (cx - neck_w / 2, y0 + 0.28 * h),
            ],
            body,
        )
        band = (y0 + 0.55 * h, y0 + 0.78 * h)
    elif style.product_kind == "carton":
        lid = 0.14 * h
        _poly(img, [(x0 + 0.12 * w, y0), (x1, y0), (x1, y0 + lid), (x0, y0 + lid)], _shade(body, 1.5))
        _poly(img, [(x0, y0 + lid), (x1, y0 + lid), (x1, y1), (x0, y1)], body)
        band = (y0 + 0.45 * h, y0 + 0.68 * h)
    else:
        raise ValueError(f"unknown product kind {style.product_kind!r}")
    _poly(img, [(x0, band[0]), (x1, band[0]), (x1, band[1]), (x0, band[1])], style.product_band)
    bh = band[1] - band[0]
    t = max(1, int(round(0.12 * bh)))
    _line(img, (x0 + 0.2 * w, band[0] + 0.38 * bh), (x1 - 0.2 * w, band[0] + 0.38 * bh), _INK, t)
    _line(img, (x0 + 0.3 * w, band[0] + 0.7 * bh), (x1 - 0.3 * w, band[0] + 0.7 * bh), _INK, t)


def draw_brand_cue(img: np.ndarray, box: Box, style: BrandStyle) -> None:
    """The brand's pattern band filling `box`."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    a, b = (np.array(c, np.uint8) for c in style.cue_colours)
    ys, xs = np.mgrid[0:h, 0:w]
    if style.cue_kind == "stripes":
        period = max(4.0, 0.55 * h)
        on = ((xs + ys) / period) % 1.0 < 0.5
    elif style.cue_kind == "checker":
        cell = max(2.0, h / 3)
        on = ((xs // cell + ys // cell) % 2) == 0
    elif style.cue_kind == "dots":
        cell = max(4.0, h / 2.5)
        dx, dy = (xs % cell) - cell / 2, (ys % cell) - cell / 2
        on = dx * dx + dy * dy > (0.3 * cell) ** 2
    else:
        raise ValueError(f"unknown brand cue kind {style.cue_kind!r}")
    patch = np.where(on[..., None], a, b)
    edge = max(1, int(round(0.06 * h)))
    patch[:edge], patch[-edge:], patch[:, :edge], patch[:, -edge:] = b, b, b, b
    img[y0:y1, x0:x1] = patch


def draw_face(img: np.ndarray, box: Box, skin: Colour, smiling: bool) -> Box | None:
    """A frontal cartoon face filling `box`; returns the smile's box when `smiling`, else None."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def at(u: float, v: float) -> tuple[float, float]:
        return x0 + u * w, y0 + v * h

    _ellipse(img, at(0.5, 0.5), (w / 2, h / 2), skin)
    dark = _shade(skin, 0.35)
    brow_t = max(1, int(round(0.045 * h)))
    for side in (-1, 1):
        ex = 0.5 + side * 0.18
        _ellipse(img, at(ex, 0.41), (0.1 * w, 0.06 * h), _WHITE)
        _ellipse(img, at(ex, 0.41), (0.055 * w, 0.055 * w), _INK)
        _line(img, at(0.5 + side * 0.08, 0.29), at(0.5 + side * 0.29, 0.27), dark, brow_t)
    _poly(img, [at(0.5, 0.45), at(0.56, 0.6), at(0.44, 0.6)], _shade(skin, 0.72))
    if not smiling:
        _line(img, at(0.37, 0.76), at(0.63, 0.76), _INK, max(1, int(round(0.035 * h))))
        return None
    # A wide open smile: dark lower half-ellipse, a row of teeth, a dark outline.
    cx, cy = at(0.5, 0.66)
    ax, ay = 0.24 * w, 0.2 * h
    _ellipse(img, (cx, cy), (ax, ay), (40, 25, 110), -1, 0, 180)
    _poly(
        img,
        [
            (cx - 0.8 * ax, cy),
            (cx + 0.8 * ax, cy),
            (cx + 0.8 * ax, cy + 0.32 * ay),
            (cx - 0.8 * ax, cy + 0.32 * ay),
        ],
        _WHITE,
    )
    t = max(1, int(round(0.03 * h)))
    _ellipse(img, (cx, cy), (ax, ay), _INK, t, 0, 180)
    _line(img, (cx - ax, cy), (cx + ax, cy), _INK, t)
    half_t = t / 2
    smile = (
        int(math.floor(cx - ax - half_t)),
        int(math.floor(cy - half_t)),
        int(math.ceil(cx + ax + half_t)),
        int(math.ceil(cy + ay + half_t)),
    )
    return max(smile[0], x0), max(smile[1], y0), min(smile[2], x1), min(smile[3], y1)
