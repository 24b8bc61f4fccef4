"""Extract the test brand's video frames in their own process, so a test can kill it mid-video.

Usage: python frames_in_subprocess.py DATA_ROOT STRIDE
"""

from __future__ import annotations

import sys
from pathlib import Path

from creative_assets.layout import DataRoot
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives


def main(argv: list[str]) -> None:
    """Scan brand `acme` and extract every STRIDE-th frame, as the video_frames asset does."""
    data_root, stride = argv
    root = DataRoot(Path(data_root))
    manifest, _ = scan_creatives(root, "acme")
    extract_video_frames(root, "acme", manifest, stride=int(stride))


if __name__ == "__main__":
    main(sys.argv[1:])
