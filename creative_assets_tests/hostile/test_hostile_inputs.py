"""The hostile-input suite: every generated bad medium, label file and settings file gets a clear error or an
errors row, the other creatives are unaffected, and nothing outside the data root is read or written."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from creative_assets.detection.image_loader import decode_image
from creative_assets.labels.resolve import build_label_set
from creative_assets.layout import IMAGE_EXTENSIONS, DataRoot
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives
from creative_assets.settings import SettingsError, load_settings
from creative_assets_tests.hostile.generator import (
    BRAND,
    GOOD_IMAGE,
    GOOD_VIDEO,
    LABEL_CASES,
    LABELLED_PATH,
    MEDIA_CASES,
    SETTINGS_CASES,
    Case,
    build_label_sandbox,
    build_sandbox,
    outside,
)

# ------------------------------------------------------------------------------ reads and writes outside

_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    # Every file Python opens or lists (builtins, PIL, numpy, json, yaml) is seen here, resolved.
    if _opened is None or event not in ("open", "os.scandir", "os.listdir"):
        return
    target = args[0] if args else None
    if isinstance(target, (str, bytes, os.PathLike)):
        _opened.append(os.path.realpath(os.fsdecode(target)))


sys.addaudithook(_audit)


def _state(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@contextmanager
def confined(sandbox: Path) -> Iterator[None]:
    """Fail if anything under `<sandbox>/outside` is opened or listed, changed, or a file appears beside the
    data root."""
    global _opened
    bait = outside(sandbox).resolve()
    before, top = _state(bait), sorted(p.name for p in sandbox.iterdir())
    _opened = []
    try:
        yield
    finally:
        opened, _opened = _opened, None
    touched = [p for p in opened if p == str(bait) or p.startswith(f"{bait}{os.sep}")]
    assert touched == [], f"read outside the data root: {touched}"
    assert _state(bait) == before
    assert sorted(p.name for p in sandbox.iterdir()) == top


# ------------------------------------------------------------------------------------------------ media


def _one_error_for(errors: pd.DataFrame, file: str, phrase: str) -> None:
    assert list(errors["file"]) == [file], errors.to_dict("records")
    reason = str(errors["reason"].iloc[0])
    assert phrase in reason, reason
    assert reason == reason.strip() and "\n" not in reason and "Traceback" not in reason


@pytest.mark.parametrize("case", MEDIA_CASES, ids=str)
def test_bad_media_gets_an_errors_row_and_leaves_the_other_creatives_alone(
    case: Case, tmp_path: Path
) -> None:
    build_sandbox(tmp_path)
    root = DataRoot(tmp_path / "data")
    file = case.write(tmp_path)

    with confined(tmp_path):
        manifest, errors = scan_creatives(root, BRAND)
        # every stage that opens a creative: the detection loader on every listed image, frames on videos
        listed = manifest.reset_index(drop=True)
        decoded = [decode_image(root, p, i) for i, p in enumerate(listed["path"]) if not p.endswith(".mp4")]
        frames = extract_video_frames(root, BRAND, manifest, stride=10)
        late = None
        path = root.root / file
        if case.outcome.reason and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            late = decode_image(root, file, 0)  # a file that went bad after the manifest was taken

    rows = listed.set_index("creative_id")
    assert rows.loc[GOOD_IMAGE, ["width", "height"]].tolist() == [40, 30]
    assert rows.loc[GOOD_VIDEO, ["width", "height", "frame_count"]].tolist() == [64, 48, 25]
    assert all(d.error is None for d in decoded)
    assert frames.errors.empty and frames.frames["frame_index"].tolist() == [0, 10, 20]
    if case.outcome.reason:
        _one_error_for(errors, file, case.outcome.reason)
        assert set(errors["stage"]) == {"manifest"}
        assert len(listed) == 2
        if late is not None:
            assert late.image is None and late.error
    elif case.outcome.skipped:
        assert errors.empty and len(listed) == 2
    else:
        assert errors.empty
        accepted = rows.loc[file.split("/creatives/", 1)[1]]
        assert {k: accepted[k] for k in case.outcome.accepted} == case.outcome.accepted


# ----------------------------------------------------------------------------------------------- labels


@pytest.mark.parametrize("case", LABEL_CASES, ids=str)
def test_bad_labels_get_an_errors_row_and_leave_the_other_labels_alone(case: Case, tmp_path: Path) -> None:
    build_label_sandbox(tmp_path)
    root = DataRoot(tmp_path / "data")
    file = case.write(tmp_path)
    manifest, manifest_errors = scan_creatives(root, BRAND)
    frames = extract_video_frames(root, BRAND, manifest, stride=10).frames
    assert manifest_errors.empty

    with confined(tmp_path):
        labels = build_label_set(root, BRAND, manifest, frames, ["logo", "product"])

    mine = labels.errors[labels.errors["file"] == file]
    assert len(mine) >= 1 and all(mine["stage"] == "labels")
    assert any(case.outcome.reason in r for r in mine["reason"]), mine["reason"].tolist()
    assert set(labels.errors["file"]) == {file}  # the good label file has no errors
    good = labels.annotations[labels.annotations["image_path"] == f"raw/{BRAND}/creatives/{GOOD_IMAGE}"]
    assert good[["category", "x_min", "y_min", "x_max", "y_max"]].values.tolist() == [["logo", 2, 3, 12, 11]]
    boxes_of_labelled = labels.annotations[labels.annotations["image_path"] == LABELLED_PATH]
    assert boxes_of_labelled.empty  # no box of a rejected record or file is ever used
    if case.name != "unknown category":  # a box of a category no object uses says nothing about logos
        assert LABELLED_PATH not in set(labels.images["image_path"])


# --------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("case", SETTINGS_CASES, ids=str)
def test_bad_settings_are_a_clear_error_naming_the_key(case: Case, tmp_path: Path) -> None:
    build_sandbox(tmp_path)
    case.write(tmp_path)
    with confined(tmp_path), pytest.raises(SettingsError) as raised:
        load_settings(tmp_path / "data", env={})
    message = str(raised.value)
    assert case.outcome.reason in message, message
    assert message.startswith("invalid settings") and "Traceback" not in message


def test_a_data_root_that_does_not_exist_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    from creative_assets.resources.settings_resource import SettingsResource

    missing = tmp_path / "mistyped"
    with pytest.raises(SettingsError, match=r"the data root .*mistyped does not exist"):
        SettingsResource(data_root=str(missing), profile="smoke").load()
    assert not missing.exists()


def test_every_kind_is_counted() -> None:
    assert len(MEDIA_CASES) + len(LABEL_CASES) + len(SETTINGS_CASES) + 1 >= 40
    names = [c.name for c in MEDIA_CASES + LABEL_CASES + SETTINGS_CASES]
    assert len(set(names)) == len(names)
