"""Front-end cost per frame on GRID clips: decode, landmarks, crop (median and p90 ms).

    python bench/frontend.py [--clips 10] [--data ../shared/grid/s1]

Runs single-threaded (OMP/OpenCV threads 1); MediaPipe's own graph threads are left as they are.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.crop import CropSpec, LipCropper  # noqa: E402
from core.landmarks import LandmarkDetector  # noqa: E402
from core.video import VideoFileSource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/grid/s1")
    parser.add_argument("--clips", type=int, default=10)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    videos = sorted((Path(args.data) / "video").glob("*.mp4"))[:: max(1, 900 // args.clips)][: args.clips]
    stages: dict[str, list[float]] = {"decode": [], "landmarks": [], "crop": [], "total": []}
    found = 0
    for video in videos:
        frames = iter(VideoFileSource(video))
        with LandmarkDetector() as detector:
            cropper = LipCropper(CropSpec())
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                landmarks = detector(frame)
                t2 = time.perf_counter()
                cropper(frame, landmarks)
                t3 = time.perf_counter()
                found += landmarks is not None
                for name, ms in zip(stages, ((t1 - t0), (t2 - t1), (t3 - t2), (t3 - t0)), strict=True):
                    stages[name].append(ms * 1000)
    n = len(stages["total"])
    print(f"front end on {len(videos)} GRID clips, {n} frames, landmarks on {found / n:.1%} of frames")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, opencv {cv2.__version__}"
    )
    print(f"{'stage':<10} {'median ms':>10} {'p90 ms':>8}")
    for name, values in stages.items():
        print(f"{name:<10} {np.median(values):>10.2f} {np.percentile(values, 90):>8.2f}")


if __name__ == "__main__":
    main()
