"""Loading the code location imports no model or image library: every Dagster process pays that import.

Checked in a fresh interpreter (this test process has long imported torch through other tests); the
probe also names the package it loaded, so a stray installed copy cannot make the test pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import creative_assets

REPO = Path(creative_assets.__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "cv2")
PROBE = """
import json, sys
import creative_assets, creative_assets.definitions
print(json.dumps({"package": creative_assets.__file__, "modules": sorted(sys.modules)}))
"""


def _modules_after_importing_definitions() -> tuple[str, set[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return probe["package"], set(probe["modules"])


def test_importing_definitions_loads_neither_torch_torchvision_nor_opencv() -> None:
    package, modules = _modules_after_importing_definitions()
    assert Path(package).resolve() == Path(creative_assets.__file__).resolve()
    assert (
        "dagster" in modules and "creative_assets.assets.detection" in modules
    )  # the probe saw real imports
    assert sorted(m for m in HEAVY if m in modules) == []
