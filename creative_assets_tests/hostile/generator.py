"""A generator of hostile inputs: bad media, bad labels and bad settings, each with the outcome it must get.

Every case writes its input into a sandbox laid out as

    <sandbox>/data/       the data root (raw/acme/creatives, raw/acme/labels, creative_assets.yaml)
    <sandbox>/outside/    bait files next to the root that hostile inputs point at; never read or written

and says what the pipeline must answer: an errors row whose reason contains a phrase, a clear exception, or
(for inputs that look odd but are valid) an accepted row with the values it must have.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

BRAND = "acme"
GOOD_IMAGE = "good/still.png"  # 40×30, present in every media and label case
GOOD_VIDEO = "good/spot.mp4"  # 64×48, 25 frames at 10 fps


@dataclass(frozen=True)
class Outcome:
    """What a case must get: an errors row (`reason` phrase), an exception (`raises`), or an accepted row."""

    reason: str = ""
    raises: type[BaseException] | None = None
    accepted: dict = field(default_factory=dict)  # manifest column → value, for inputs that are valid
    skipped: bool = False  # neither a row nor an error (hidden files, a folder met twice)


@dataclass(frozen=True)
class Case:
    """One hostile input: `write(sandbox)` puts it in place and returns the data-root path it concerns."""

    name: str
    write: Callable[[Path], str]
    outcome: Outcome

    def __str__(self) -> str:
        return self.name


# ----------------------------------------------------------------------------------------------- bytes


def encoded(ext: str, size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    """A small noisy image in the format `ext` names."""
    width, height = size
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid black RGB PNG of any size, built row by row (a 20000×20000 one is 1.2 MB, made in seconds)."""
    compressor = zlib.compressobj(6)
    row = b"\x00" + bytes(3 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` and holds (almost) no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 8))
    )


def jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    """A JPEG stored `size` (w, h) with an EXIF orientation tag."""
    from io import BytesIO

    from PIL import Image

    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def write_video(path: Path, frames: int = 25, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> Path:
    """An mp4v video of flat grey frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (9 * i) % 256, np.uint8))
    writer.release()
    return path


# --------------------------------------------------------------------------------------------- sandbox


def creatives(sandbox: Path) -> Path:
    """The brand's creatives folder in the sandbox."""
    return sandbox / "data" / "raw" / BRAND / "creatives"


def outside(sandbox: Path) -> Path:
    """The bait folder next to the data root."""
    return sandbox / "outside"


def build_sandbox(sandbox: Path) -> None:
    """A data root with one good image and one good video, and bait files outside it."""
    folder = creatives(sandbox)
    (folder / "good").mkdir(parents=True, exist_ok=True)
    (folder / GOOD_IMAGE).write_bytes(encoded(".png", (40, 30)))
    write_video(folder / GOOD_VIDEO)
    (sandbox / "data" / "raw" / BRAND / "labels").mkdir(parents=True, exist_ok=True)
    bait = outside(sandbox)
    (bait / "folder").mkdir(parents=True, exist_ok=True)
    (bait / "secret.jpg").write_bytes(encoded(".jpg", (16, 16), seed=9))
    (bait / "folder" / "inner.png").write_bytes(encoded(".png", (16, 16), seed=8))
    (bait / "labels.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))


def _file(rel: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], str]:
    def write(sandbox: Path) -> str:
        path = creatives(sandbox) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data() if callable(data) else data)
        return f"raw/{BRAND}/creatives/{rel}"

    return write


def _cut(ext: str, keep: float) -> Callable[[], bytes]:
    def data() -> bytes:
        whole = encoded(ext, (64, 48))
        return whole[: int(len(whole) * keep)]

    return data


def _flip_middle(ext: str) -> Callable[[], bytes]:
    def data() -> bytes:
        raw = bytearray(encoded(ext, (64, 48)))
        for i in range(len(raw) // 2, len(raw) // 2 + 64):
            raw[i] ^= 0xFF
        return bytes(raw)

    return data


def _symlink(rel: str, target: Callable[[Path], Path]) -> Callable[[Path], str]:
    def write(sandbox: Path) -> str:
        path = creatives(sandbox) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target(sandbox))
        return f"raw/{BRAND}/creatives/{rel}"

    return write


def _non_utf8_name(sandbox: Path) -> str:
    folder = os.fsencode(creatives(sandbox))
    with open(folder + b"/caf\xe9.jpg", "wb") as fh:  # latin-1 é: not UTF-8
        fh.write(encoded(".jpg"))
    return f"raw/{BRAND}/creatives/caf\\xe9.jpg"


def _fifo(sandbox: Path) -> str:
    os.mkfifo(creatives(sandbox) / "pipe.jpg")
    return f"raw/{BRAND}/creatives/pipe.jpg"


def _folder_loop(sandbox: Path) -> str:
    (creatives(sandbox) / "loop").symlink_to(creatives(sandbox))
    return f"raw/{BRAND}/creatives/loop"


def _video_cut(sandbox: Path) -> str:
    path = write_video(creatives(sandbox) / "cut.mp4", frames=30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return f"raw/{BRAND}/creatives/cut.mp4"


BIG_PNG_SIDE = 20000


MEDIA_CASES: list[Case] = [
    Case("empty jpg", _file("empty.jpg", b""), Outcome("empty file")),
    Case("empty png", _file("empty.png", b""), Outcome("empty file")),
    Case(
        "random bytes as jpg",
        _file("noise.jpg", np.random.default_rng(1).bytes(4000)),
        Outcome("not a recognised image"),
    ),
    Case(
        "text as png",
        _file("note.png", b"just some words, not pixels\n" * 20),
        Outcome("not a recognised image"),
    ),
    Case(
        "html as jpg", _file("page.jpg", b"<html><body>404</body></html>"), Outcome("not a recognised image")
    ),
    Case("jpeg cut in half", _file("half.jpg", _cut(".jpg", 0.5)), Outcome("truncated image")),
    Case("jpeg without its end marker", _file("noeoi.jpg", _cut(".jpg", 0.995)), Outcome("truncated image")),
    Case("png cut in half", _file("half.png", _cut(".png", 0.5)), Outcome("truncated image")),
    Case("png cut before IEND", _file("noiend.png", _cut(".png", 0.97)), Outcome("truncated image")),
    Case("png with flipped bytes", _file("flipped.png", _flip_middle(".png")), Outcome("corrupt image")),
    Case("webp cut in half", _file("half.webp", _cut(".webp", 0.5)), Outcome("image")),
    Case("bmp cut in half", _file("half.bmp", _cut(".bmp", 0.5)), Outcome("image")),
    Case("jpeg header only", _file("header.jpg", _cut(".jpg", 0.1)), Outcome("image")),
    Case(
        f"{BIG_PNG_SIDE}x{BIG_PNG_SIDE} png (400 MP)",
        _file("huge.png", lambda: png_of_zeros(BIG_PNG_SIDE, BIG_PNG_SIDE)),
        Outcome("over the pixel budget of 50 MP"),
    ),
    Case(
        "png header claiming 100000x100000",
        _file("claims.png", lambda: png_header_only(100_000, 100_000)),
        Outcome("over the pixel budget"),
    ),
    Case("png with zero width", _file("zero.png", lambda: png_header_only(0, 10)), Outcome("image")),
    Case("file name not UTF-8", _non_utf8_name, Outcome("not valid UTF-8")),
    Case(
        "broken symlink",
        _symlink("gone.jpg", lambda s: s / "data" / "nowhere.jpg"),
        Outcome("broken symlink"),
    ),
    Case(
        "broken symlink to an unmounted share",
        _symlink("share.jpg", lambda s: Path("/mnt/creative-assets-not-mounted/x.jpg")),
        Outcome("broken symlink"),
    ),
    Case(
        "symlink to a file outside",
        _symlink("bait.jpg", lambda s: outside(s) / "secret.jpg"),
        Outcome("outside the data root"),
    ),
    Case(
        "symlink to a folder outside",
        _symlink("baitdir", lambda s: outside(s) / "folder"),
        Outcome("outside the data root"),
    ),
    Case(
        "symlink to /etc/passwd",
        _symlink("passwd.jpg", lambda s: Path("/etc/passwd")),
        Outcome("outside the data root"),
    ),
    Case("folder symlink loop", _folder_loop, Outcome(skipped=True)),
    Case("named pipe as jpg", _fifo, Outcome("not a regular file")),
    Case("gif", _file("anim.gif", b"GIF89a" + bytes(20)), Outcome("unsupported extension .gif")),
    Case("no extension", _file("README", b"hello"), Outcome("unsupported extension (none)")),
    Case("empty mp4", _file("empty.mp4", b""), Outcome("empty file")),
    Case(
        "random bytes as mp4",
        _file("noise.mp4", np.random.default_rng(2).bytes(5000)),
        Outcome("unreadable video"),
    ),
    Case("mp4 cut in half", _video_cut, Outcome("unreadable video")),
    Case(
        "png named jpg",
        _file("really_png.jpg", lambda: encoded(".png", (20, 10))),
        Outcome(accepted={"width": 20, "height": 10}),
    ),
    Case(
        "1x1 image",
        _file("dot.png", lambda: encoded(".png", (1, 1))),
        Outcome(accepted={"width": 1, "height": 1}),
    ),
    Case(
        "exif-rotated jpeg",
        _file("rotated.jpg", lambda: jpeg_with_orientation((40, 20), 6)),
        Outcome(accepted={"width": 20, "height": 40}),
    ),
    Case(
        "grey 16-bit png",
        _file("grey16.png", lambda: cv2.imencode(".png", np.full((12, 24), 40000, np.uint16))[1].tobytes()),
        Outcome(accepted={"width": 24, "height": 12}),
    ),
    Case(
        "png with alpha",
        _file("alpha.png", lambda: cv2.imencode(".png", np.full((10, 30, 4), 128, np.uint8))[1].tobytes()),
        Outcome(accepted={"width": 30, "height": 10}),
    ),
    Case(
        "unicode and spaces in the name",
        _file("sommer 2024 ☀ banner.png", lambda: encoded(".png")),
        Outcome(accepted={"width": 40}),
    ),
    Case("hidden file", _file(".secret.png", lambda: encoded(".png")), Outcome(skipped=True)),
]

# --------------------------------------------------------------------------------------------- labels

LABELLED = "img/a.jpg"  # 64×48, the image every label case names
LABELLED_PATH = f"raw/{BRAND}/creatives/{LABELLED}"


def coco(file_name: str, bbox: object, category: str = "logo", **image: object) -> dict:
    """A one-image, one-box COCO document."""
    return {
        "images": [{"id": 1, "file_name": file_name, "width": 64, "height": 48, **image}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox, "iscrowd": 0}],
        "categories": [{"id": 1, "name": category}, {"id": 2, "name": "product"}],
    }


def build_label_sandbox(sandbox: Path) -> None:
    """The media sandbox plus the image every label case names, two images called twin.jpg, and a good
    label file that labels the good image (its labels must survive every case)."""
    build_sandbox(sandbox)
    folder = creatives(sandbox)
    for rel, seed in ((LABELLED, 3), ("x/twin.jpg", 4), ("y/twin.jpg", 5)):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(encoded(".jpg", (64, 48), seed=seed))
    good = coco(GOOD_IMAGE, [2, 3, 10, 8])
    good["images"][0].update(width=40, height=30)
    (sandbox / "data" / "raw" / BRAND / "labels" / "good.json").write_text(json.dumps(good))


def _label(name: str, content: object) -> Callable[[Path], str]:
    def write(sandbox: Path) -> str:
        path = sandbox / "data" / "raw" / BRAND / "labels" / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
        return f"raw/{BRAND}/labels/{name}"

    return write


def _label_link(sandbox: Path) -> str:
    (sandbox / "data" / "raw" / BRAND / "labels" / "linked.json").symlink_to(outside(sandbox) / "labels.json")
    return f"raw/{BRAND}/labels/linked.json"


LABEL_CASES: list[Case] = [
    Case(
        "box outside the image",
        _label("l.json", coco(LABELLED, [100, 100, 10, 10])),
        Outcome("lies outside the 64x48 image"),
    ),
    Case("box without area", _label("l.json", coco(LABELLED, [5, 5, 0, 0])), Outcome("has no area")),
    Case("negative box size", _label("l.json", coco(LABELLED, [5, 5, -3, 4])), Outcome("has no area")),
    Case(
        "NaN coordinate",
        _label(
            "l.json",
            '{"images":[{"id":1,"file_name":"img/a.jpg","width":64,"height":48}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[NaN,1,2,2]}],"categories":[{"id":1,"name":"logo"}]}',
        ),
        Outcome("image skipped"),
    ),
    Case("huge coordinate", _label("l.json", coco(LABELLED, [1e300, 1, 2, 2])), Outcome("image skipped")),
    Case(
        "string coordinates", _label("l.json", coco(LABELLED, ["1", "2", "3", "4"])), Outcome("image skipped")
    ),
    Case("bbox of three numbers", _label("l.json", coco(LABELLED, [1, 2, 3])), Outcome("image skipped")),
    Case(
        "unknown category",
        _label("l.json", coco(LABELLED, [1, 1, 5, 5], category="tree")),
        Outcome("unknown category 'tree'"),
    ),
    Case(
        "parent-folder reference",
        _label("l.json", coco("../../../outside/secret.jpg", [1, 1, 5, 5])),
        Outcome("path escapes the data root"),
    ),
    Case(
        "absolute path outside",
        _label("l.json", coco("/etc/passwd", [1, 1, 5, 5])),
        Outcome("path escapes the data root"),
    ),
    Case(
        "file URL outside",
        _label("l.json", coco("file:///etc/hosts", [1, 1, 5, 5])),
        Outcome("path escapes the data root"),
    ),
    Case(
        "encoded parent folder",
        _label("l.json", coco("img/%2e%2e/%2e%2e/x.jpg", [1, 1, 5, 5])),
        Outcome("path escapes the data root"),
    ),
    Case("NUL in the reference", _label("l.json", coco("img/a.jpg\u0000.png", [1, 1, 5, 5])), Outcome("NUL")),
    Case(
        "image that does not exist",
        _label("l.json", coco("img/missing.jpg", [1, 1, 5, 5])),
        Outcome("no such image"),
    ),
    Case(
        "conflicting folder",
        _label("l.json", coco("images_old/a.jpg", [1, 1, 5, 5])),
        Outcome("conflicting folder"),
    ),
    Case("ambiguous bare name", _label("l.json", coco("twin.jpg", [1, 1, 5, 5])), Outcome("ambiguous")),
    Case(
        "stated size differs",
        _label("l.json", coco(LABELLED, [1, 1, 5, 5], width=640, height=480)),
        Outcome("differs from the image's actual size"),
    ),
    Case("invalid JSON", _label("l.json", '{"images": [,]}'), Outcome("not valid JSON")),
    Case("JSON list instead of object", _label("l.json", "[1, 2, 3]"), Outcome("must hold an object")),
    Case("nested ten thousand deep", _label("l.json", "[" * 10000 + "]" * 10000), Outcome("not valid JSON")),
    Case("label file not UTF-8", _label("l.json", b'{"images": "\xff\xfe"}'), Outcome("not UTF-8")),
    Case("empty label file", _label("l.json", b""), Outcome("JSON")),
    Case(
        "annotation of an unknown image id",
        _label("l.json", {**coco(LABELLED, [1, 1, 5, 5]), "images": []}),
        Outcome("image"),
    ),
    Case(
        "jsonl with a broken line",
        _label("l.jsonl", "{broken\n"),
        Outcome("JSON"),
    ),
    Case("label file linked from outside", _label_link, Outcome("path escapes the data root")),
]

# ------------------------------------------------------------------------------------------- settings


def _settings_file(content: str | bytes) -> Callable[[Path], str]:
    def write(sandbox: Path) -> str:
        path = sandbox / "data" / "creative_assets.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return "creative_assets.yaml"

    return write


SETTINGS_CASES: list[Case] = [
    Case("not YAML", _settings_file("grid: [1, 2\n"), Outcome("not valid YAML")),
    Case(
        "python object tag",
        _settings_file("grid: !!python/object/apply:os.system ['echo hi']\n"),
        Outcome("not valid YAML"),
    ),
    Case("a list, not a mapping", _settings_file("- 1\n- 2\n"), Outcome("must hold a mapping")),
    Case("settings file not UTF-8", _settings_file(b"profile: caf\xe9\n"), Outcome("not UTF-8")),
    Case("unknown key", _settings_file("frame_strid: 5\n"), Outcome("frame_strid")),
    Case("data_root in the file", _settings_file("data_root: /etc\n"), Outcome("data_root")),
    Case("unknown profile", _settings_file("profile: turbo\n"), Outcome("turbo")),
    Case("zero frame stride", _settings_file("frame_stride: 0\n"), Outcome("frame_stride")),
    Case("jpeg quality 10", _settings_file("jpeg_quality: 10\n"), Outcome("jpeg_quality")),
    Case(
        "split not summing to one",
        _settings_file("split: {train: 0.5, valid: 0.1, test: 0.1}\n"),
        Outcome("must be 1"),
    ),
    Case(
        "empty grid",
        _settings_file("grid: {max_iter: [], batch_size_per_image: [16]}\n"),
        Outcome("grid.max_iter"),
    ),
    Case("object named twice", _settings_file("objects: [{name: logo}, {name: logo}]\n"), Outcome("unique")),
    Case(
        "category in two objects",
        _settings_file("objects: [{name: a, categories: [x]}, {name: b, categories: [x]}]\n"),
        Outcome("one object only"),
    ),
    Case(
        "object name with a slash", _settings_file("objects: [{name: 'logo/../x'}]\n"), Outcome("object name")
    ),
    Case("confidence of 1.5", _settings_file("confidences: [0.5, 1.5]\n"), Outcome("confidences")),
    Case(
        "thresholds start after stop",
        _settings_file("thresholds: {start: 0.9, stop: 0.2}\n"),
        Outcome("thresholds need"),
    ),
    Case("zero batch size", _settings_file("detection: {batch_size: 0}\n"), Outcome("detection.batch_size")),
    Case(
        "zero pixel budget", _settings_file("media: {max_megapixels: 0}\n"), Outcome("media.max_megapixels")
    ),
    Case(
        "shrink fraction of 2",
        _settings_file("removal: {max_shrink_fraction: 2}\n"),
        Outcome("removal.max_shrink_fraction"),
    ),
    Case("unknown backend", _settings_file("train: {backend: tensorflow}\n"), Outcome("train.backend")),
]
