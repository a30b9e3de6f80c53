"""Screen capture: what a grab costs (mss, BGRA -> BGR) by region size, and a ScreenSource's pace.

    DISPLAY=:98 python bench/screen.py [--grabs 200] [--seconds 3]

Needs an X display (Xvfb will do: `Xvfb :98 -screen 0 1280x800x24 &`). The grab table times
MssGrabber.grab plus the BGR copy the source hands on, per frame; the pace line runs a ScreenSource
of 640x480 at 25 fps for --seconds and counts the frames it gave and the ticks it skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.screen import MssGrabber, ScreenSource, _bgr  # noqa: E402

SIZES = ((320, 240), (640, 480), (1280, 720))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grabs", type=int, default=200, help="grabs timed per region size")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the pace run lasts")
    args = parser.parse_args()
    grabber = MssGrabber()
    try:
        _, _, screen_w, screen_h = grabber.monitors()[0].rect
        print(f"screen {screen_w}x{screen_h}\n")
        print(f"{'region':>10} {'median ms':>10} {'p95 ms':>8}")
        for width, height in SIZES:
            if width > screen_w or height > screen_h:
                continue
            rect = (0, 0, width, height)
            _bgr(grabber.grab(rect))  # the first grab sets up shared memory
            times = []
            for _ in range(args.grabs):
                t0 = time.perf_counter()
                _bgr(grabber.grab(rect))
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"{f'{width}x{height}':>10} {statistics.median(times):>10.2f} {p95:>8.2f}")
    finally:
        grabber.close()
    source = ScreenSource((0, 0, 640, 480), fps=25)
    start, frames = time.monotonic(), 0
    for _ in source:
        frames += 1
        if time.monotonic() - start >= args.seconds:
            break
    elapsed = time.monotonic() - start
    print(f"\npace: 640x480 at 25 fps for {elapsed:.2f} s: {frames} frames, {source.skipped} ticks skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
