"""Seeking in a long MPEG transport stream: seconds from `VideoFileSource.seek` to the first frame,
and what it costs OpenCV to seek there itself or to decode there from the file's start.

    python bench/seek.py [--clip ../shared/grid/s1/video/bbaf2n.mp4] [--minutes 10] [--at 5 540]
                         [--files A.ts B.ts] [--keep DIR]

Without --files, two transport streams of the clip looped for --minutes are made with FFmpeg
(libx264 -preset veryfast, AAC): one with x264's keyframes (every 10 s at most), one with a single
keyframe, where OpenCV's seek finds no frame. Each time is the best of two runs; the frame columns
say where the frame read lies (seconds from the first frame), to be checked against the time sought.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402

from core.video import VideoFileSource, _capture, _read_to, _seek  # noqa: E402

KEYFRAMES = {  # x264's settings, by the file's name
    "keyframes.ts": [],
    "one-keyframe.ts": ["-x264-params", "keyint=infinite:scenecut=0"],
}
RUNS = 2


def make(clip: Path, folder: Path, minutes: float) -> list[Path]:
    """The clip looped for `minutes`, once per KEYFRAMES setting, as MPEG-TS files in `folder`."""
    loops = max(1, round(minutes * 60 / 3)) - 1  # GRID clips last 3 s
    made = []
    for name, settings in KEYFRAMES.items():
        path = folder / name
        if not path.exists():
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops), "-i", str(clip)]
                + ["-c:v", "libx264", "-preset", "veryfast", *settings]
                + ["-c:a", "aac", "-f", "mpegts", str(path)],
                check=True,
            )
        made.append(path)
    return made


def best(run, *args) -> tuple[float, float]:
    """(the least seconds of RUNS calls of `run(*args)`, the frame time it gave: -1 for none)."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        found = run(*args)
        times.append(time.perf_counter() - start)
    return min(times), found


def via_source(path: Path, seconds: float) -> float:
    source = VideoFileSource(path)
    source.seek(seconds)
    frames = iter(source)
    try:
        return next(frames).timestamp
    finally:
        frames.close()


def via(path: Path, seconds: float, how) -> float:
    cap = _capture(path)
    try:
        ok, _ = how(cap, seconds, cap.get(cv2.CAP_PROP_FPS))
        return cap.get(cv2.CAP_PROP_POS_MSEC) / 1000 if ok else -1.0
    finally:
        cap.release()


def decoding_rate(path: Path, frames: int = 3000) -> tuple[float, float]:
    """Frames a second decoded by grab() (no colour conversion) and by read()."""
    rates = []
    for grab in (True, False):
        cap, start, n = _capture(path), time.perf_counter(), 0
        while n < frames and (cap.grab() if grab else cap.read()[0]):
            n += 1
        rates.append(n / (time.perf_counter() - start))
        cap.release()
    return rates[0], rates[1]


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--clip", type=Path, default=Path("../shared/grid/s1/video/bbaf2n.mp4"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--at", type=float, nargs="+", default=[5.0, 540.0], help="seconds sought")
    parser.add_argument("--files", type=Path, nargs="+", help="transport streams to seek in instead")
    parser.add_argument("--keep", type=Path, help="folder to make the files in and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = args.files or make(args.clip, folder, args.minutes)
        print(f"{'file':18} {'sought':>7} | {'source s':>8} {'frame':>8} | {'OpenCV s':>8} {'frame':>8} | "
              f"{'decode s':>8} {'frame':>8}")  # fmt: skip
        for path in files:
            for seconds in args.at:
                source = best(via_source, path, seconds)
                opencv = best(via, path, seconds, _seek)
                decode = best(via, path, seconds, _read_to)
                print(
                    f"{path.name:18} {seconds:7.1f} | {source[0]:8.2f} {source[1]:8.2f} | "
                    f"{opencv[0]:8.2f} {opencv[1]:8.2f} | {decode[0]:8.2f} {decode[1]:8.2f}"
                )
        grab, read = decoding_rate(files[0])
        print(f"\ndecoding {files[0].name}: grab() {grab:.0f} frames/s, read() {read:.0f} frames/s")


if __name__ == "__main__":
    main()
