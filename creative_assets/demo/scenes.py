"""Synthetic scenes: which objects a creative holds, where they move, and how a frame is drawn.

Everything is a pure function of the Generator it is given (`rng_for` seeds one per brand, kind and index), so
one creative does not change when counts or brands change elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from creative_assets.demo.render import (
    SIZE_RANGE,
    SKIN_TONES,
    Box,
    BrandStyle,
    Colour,
    add_grain,
    adjust_tone,
    draw_brand_cue,
    draw_clutter,
    draw_face,
    draw_logo,
    draw_product,
    object_aspect,
    render_background,
)

# Stills planned to hold each object, as a share of all stills (labelled and unlabelled planned apart).
# Non-empty stills that draw nothing get one object more, which lifts each share to about 25-30 %
# (faces ~30 %, smiles ~70 % of faces); 15 % stay empty so presence models see negatives.
NEGATIVE_SHARE = 0.15
PRESENCE_SHARE = {"logo": 0.2, "product": 0.2, "brand_cue": 0.2, "face": 0.24}
SMILE_SHARE = 0.7
SECOND_INSTANCE_SHARE = 0.1
MAX_OVERLAP = 0.08  # intersection over the smaller box

Geometry = tuple[float, float, float, float]  # cx, cy, w, h


def lerp(a: Geometry, b: Geometry, t: float) -> Geometry:
    return tuple(u + (v - u) * t for u, v in zip(a, b, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class Track:
    """One object in a scene: a box moving linearly from `start` to `end` (cx, cy, w, h) while visible."""

    category: str
    start: Geometry
    end: Geometry
    first: int
    last: int
    skin: Colour | None = None
    smiling: bool = False

    def geometry(self, t: float) -> Geometry:
        return lerp(self.start, self.end, t)

    def box(self, frame: int, n_frames: int, width: int, height: int) -> Box:
        t = frame / (n_frames - 1) if n_frames > 1 else 0.0
        cx, cy, w, h = self.geometry(t)
        x0, y0 = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
        x1, y1 = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
        return x0, y0, x1, y1


@dataclass(frozen=True)
class Scene:
    """A creative's look: background (with clutter), moving objects, global tone."""

    background: np.ndarray
    tracks: tuple[Track, ...]
    contrast: float
    brightness: float
    grain: float
    blur: bool


def rng_for(seed: int, brand_key: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, brand_key, kind, index]))


def plan_stills(rng: np.random.Generator, n: int) -> list[list[str]]:
    """Categories of each of `n` stills, about 15 % empty; "smile" marks a smiling face."""
    if n == 0:
        return []
    order = rng.permutation(n)
    negatives = set(order[: int(round(NEGATIVE_SHARE * n))].tolist())
    positives = [i for i in range(n) if i not in negatives]
    plans: list[list[str]] = [[] for _ in range(n)]
    for category, share in PRESENCE_SHARE.items():
        k = min(len(positives), int(round(share * n)))
        for i in rng.choice(positives, size=k, replace=False) if k else []:
            plans[int(i)].append(category)
    for i in positives:
        if not plans[i]:
            plans[i].append(list(PRESENCE_SHARE)[int(rng.integers(len(PRESENCE_SHARE)))])
    faces = [i for i in range(n) if "face" in plans[i]]
    for i in rng.choice(faces, size=int(round(SMILE_SHARE * len(faces))), replace=False) if faces else []:
        plans[int(i)].append("smile")
    for plan in plans:
        for category in ("logo", "product"):
            if category in plan and rng.random() < SECOND_INSTANCE_SHARE:
                plan.append(category)
    return plans


def plan_video(rng: np.random.Generator) -> list[str]:
    """Two to four objects (logos likely, so most videos show the brand); "smile" marks a smiling face."""
    plan = [
        c
        for c, p in (("logo", 0.75), ("product", 0.55), ("brand_cue", 0.5), ("face", 0.6))
        if rng.random() < p
    ]
    while len(plan) < 2:
        extra = list(PRESENCE_SHARE)[int(rng.integers(len(PRESENCE_SHARE)))]
        if extra not in plan:
            plan.append(extra)
    if "face" in plan and rng.random() < SMILE_SHARE:
        plan.append("smile")
    return plan


def _overlap(a: Geometry, b: Geometry) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw / 2, bx + bw / 2) - max(ax - aw / 2, bx - bw / 2))
    iy = max(0.0, min(ay + ah / 2, by + bh / 2) - max(ay - ah / 2, by - bh / 2))
    return ix * iy / max(1e-6, min(aw * ah, bw * bh))


def build_scene(
    rng: np.random.Generator, plan: list[str], style: BrandStyle, width: int, height: int, n_frames: int
) -> Scene:
    short = min(width, height)
    background = render_background(rng, width, height)
    clutter = int(rng.integers(2, 8) * max(0.4, width * height / (320 * 240)))
    draw_clutter(background, rng, max(1, clutter))
    moving = n_frames > 1
    samples = (0.0, 0.25, 0.5, 0.75, 1.0) if moving else (0.0,)
    tracks: list[Track] = []
    for category in plan:
        if category == "smile":
            continue  # a smile is drawn as part of its face
        aspect = object_aspect(category, style, rng)
        lo, hi = SIZE_RANGE[category]
        fraction = float(rng.uniform(lo, hi))
        placed: tuple[Geometry, Geometry] | None = None
        for _round in range(4):
            size = fraction * short
            w0, h0 = size * math.sqrt(aspect), size / math.sqrt(aspect)
            fit = min(1.0, (width - 4) / w0, (height - 4) / h0)
            w0, h0 = w0 * fit, h0 * fit
            for _ in range(40):
                start, end = _candidate(rng, w0, h0, width, height, moving)
                if all(
                    _overlap(lerp(start, end, t), other.geometry(t)) <= MAX_OVERLAP
                    for other in tracks
                    for t in samples
                ):
                    placed = start, end
                    break
            if placed is not None:
                break
            fraction *= 0.8
        if placed is None:
            continue  # no room left: the object is simply not in this creative (and not labelled)
        first, last = 0, n_frames - 1
        if moving and rng.random() < 0.3:
            first = int(rng.integers(1, max(2, n_frames // 2)))
        elif moving and rng.random() < 0.25:
            last = int(rng.integers(n_frames // 2, n_frames - 1))
        skin, smiling = None, False
        if category == "face":
            skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
            smiling = "smile" in plan
        tracks.append(Track(category, placed[0], placed[1], first, last, skin, smiling))
    return Scene(
        background=background,
        tracks=tuple(tracks),
        contrast=float(rng.uniform(0.75, 1.25)),
        brightness=float(rng.uniform(-30, 30)),
        grain=float(rng.uniform(0.0, 5.0)),
        blur=bool(rng.random() < 0.15),
    )


def _candidate(
    rng: np.random.Generator, w0: float, h0: float, width: int, height: int, moving: bool
) -> tuple[Geometry, Geometry]:
    """A box of size (w0, h0) inside the image and, when moving, an end box shifted and rescaled."""

    def centre(w: float, h: float) -> tuple[float, float]:
        return float(rng.uniform(w / 2 + 1, width - w / 2 - 1)), float(
            rng.uniform(h / 2 + 1, height - h / 2 - 1)
        )

    cx, cy = centre(w0, h0)
    start = (cx, cy, w0, h0)
    if not moving:
        return start, start
    scale = float(rng.uniform(0.85, 1.15))
    w1, h1 = w0 * scale, h0 * scale
    fit = min(1.0, (width - 4) / w1, (height - 4) / h1)
    w1, h1 = w1 * fit, h1 * fit
    ex = float(np.clip(cx + rng.uniform(-0.35, 0.35) * width, w1 / 2 + 1, width - w1 / 2 - 1))
    ey = float(np.clip(cy + rng.uniform(-0.25, 0.25) * height, h1 / 2 + 1, height - h1 / 2 - 1))
    return start, (ex, ey, w1, h1)


def render_frame(
    scene: Scene, style: BrandStyle, frame: int, n_frames: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[str, Box]]]:
    """Draw the scene at `frame`; returns the BGR image and the boxes of what was drawn."""
    height, width = scene.background.shape[:2]
    img = scene.background.copy()
    found: list[tuple[str, Box]] = []
    for track in scene.tracks:
        if not track.first <= frame <= track.last:
            continue
        box = track.box(frame, n_frames, width, height)
        if track.category == "logo":
            draw_logo(img, box, style)
        elif track.category == "product":
            draw_product(img, box, style)
        elif track.category == "brand_cue":
            draw_brand_cue(img, box, style)
        elif track.category == "face":
            smile = draw_face(img, box, track.skin or SKIN_TONES[0], track.smiling)
            found.append(("face", box))
            if smile is not None:
                found.append(("smile", smile))
            continue
        found.append((track.category, box))
    if scene.blur:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.6)
    img = adjust_tone(img, scene.contrast, scene.brightness)
    return add_grain(img, rng, scene.grain), found


def render_frames(
    scene: Scene, style: BrandStyle, n_frames: int, rng: np.random.Generator, drawn: dict[int, list]
) -> Iterator[np.ndarray]:
    """Render the scene frame by frame, recording each frame's boxes in `drawn`."""
    for index in range(n_frames):
        img, drawn[index] = render_frame(scene, style, index, n_frames, rng)
        yield img
