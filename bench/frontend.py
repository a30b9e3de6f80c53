"""Front-end cost per frame on GRID clips: decode, landmarks, crop (median / p90 ms), and how far
crops made other ways are from the first way's: MediaPipe following the face or detecting it on
every frame (CropSpec.follow_face), on every frame or on every Nth only (optical flow between).

    python bench/frontend.py [--clips 10] [--data ../shared/grid/s1] [--landmarks follow detect]
                             [--landmark-every 1 2]

Runs single-threaded (OMP/OpenCV threads 1); MediaPipe's own graph threads are left as they are.
Each clip goes through every setting in turn, so load changes hit them alike. Deviation columns
compare with the first --landmarks way on every frame, on the same frames: the 40 lip points in
crop pixels (mean / p90 of the point distances), the crop centre in frame pixels (mean) and the
crops' mean absolute grey difference (0-255). With MediaPipe on half the frames the per-frame cost
is bimodal, so its median says little: the mean is the throughput.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.crop import CropSpec  # noqa: E402
from core.frontend import FrontEnd  # noqa: E402
from core.types import LipCrop  # noqa: E402
from core.video import VideoFileSource  # noqa: E402

STAGES = ("decode", "landmarks", "crop", "total")


def _centre(crop: LipCrop, spec: CropSpec) -> np.ndarray:
    """The crop's centre in frame pixels."""
    m = np.vstack([crop.transform, [0, 0, 1]])
    return (np.linalg.inv(m) @ [spec.width / 2, spec.height / 2, 1])[:2]


def _cell(values: list[float]) -> str:
    return f"{np.median(values):.2f} / {np.percentile(values, 90):.2f}"


WAYS = {"follow": True, "detect": False}  # --landmarks names -> CropSpec.follow_face


def run_clip(video: Path, spec: CropSpec, every: int) -> tuple[dict[str, list[float]], list[LipCrop], int]:
    """Per-stage ms per frame, the crops, and how many frames MediaPipe ran on."""
    times: dict[str, list[float]] = {name: [] for name in STAGES}
    crops = []
    with FrontEnd(spec, landmark_every=every) as front:
        # decode includes the upside-down check of the first frames (and their wait, held back)
        frames = front.upright.frames(VideoFileSource(video))
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            crops.append(front(frame))
            t2 = time.perf_counter()
            stage = front.last_times
            for name, ms in zip(
                STAGES, ((t1 - t0) * 1000, stage.landmarks_ms, stage.crop_ms, (t2 - t0) * 1000), strict=True
            ):
                times[name].append(ms)
        detected = front.tracker.detected
    return times, crops, detected


def deviation(crops: list[LipCrop], reference: list[LipCrop], spec: CropSpec) -> dict[str, np.ndarray]:
    """Per frame with a face in both: lip point distances (F, 40) in crop px, centre distance (F,) in
    frame px, crop mean |difference| (F,), landmarks ms (F,) and whether optical flow made it (F,)."""
    pairs = [(c, r) for c, r in zip(crops, reference, strict=True) if c.landmarks and r.landmarks]
    return {
        "lips": np.array([np.linalg.norm(c.lip_points - r.lip_points, axis=1) for c, r in pairs]),
        "centre": np.array([np.linalg.norm(_centre(c, spec) - _centre(r, spec)) for c, r in pairs]),
        "pixels": np.array([np.abs(c.image.astype(np.float32) - r.image).mean() for c, r in pairs]),
        "flow": np.array([c.landmarks.flow for c, _ in pairs], bool),
    }


def _deviation_cells(dev: dict[str, np.ndarray], mask: np.ndarray) -> str:
    lips = dev["lips"][mask].ravel()
    return (
        f"{lips.mean():>4.2f} / {np.percentile(lips, 90):.2f} {dev['centre'][mask].mean():>9.2f} "
        f"{dev['pixels'][mask].mean():>8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/grid/s1")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument(
        "--landmarks",
        nargs="+",
        choices=list(WAYS),
        default=list(WAYS),
        help="ways to compare; the first is the reference",
    )
    parser.add_argument("--landmark-every", type=int, nargs="+", default=[1, 2], help="settings to compare")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    ways = list(dict.fromkeys(args.landmarks))
    settings = list(itertools.product(ways, sorted({1, *args.landmark_every})))
    reference = settings[0]
    specs = {way: dataclasses.replace(CropSpec(), follow_face=WAYS[way]) for way in ways}
    videos = sorted((Path(args.data) / "video").glob("*.mp4"))[:: max(1, 900 // args.clips)][: args.clips]
    times = {n: {name: [] for name in STAGES} for n in settings}
    detected = dict.fromkeys(settings, 0)
    dev: dict[tuple[str, int], list[dict[str, np.ndarray]]] = {n: [] for n in settings}
    flow_ms: dict[tuple[str, int], list[float]] = {n: [] for n in settings}
    found = 0
    for video in videos:
        crops = {}
        for n in settings:
            clip_times, crops[n], clip_detected = run_clip(video, specs[n[0]], n[1])
            detected[n] += clip_detected
            for name in STAGES:
                times[n][name] += clip_times[name]
            flow = [c.landmarks is not None and c.landmarks.flow for c in crops[n]]
            flow_ms[n] += [ms for ms, f in zip(clip_times["landmarks"], flow, strict=True) if f]
            dev[n].append(deviation(crops[n], crops[reference], specs[reference[0]]))
        found += sum(c.landmarks is not None for c in crops[reference])
    n_frames = len(times[reference]["total"])
    print(
        f"front end on {len(videos)} GRID clips, {n_frames} frames, face found on {found / n_frames:.1%}; "
        f"ms per frame median / p90 and mean; deviations from {reference[0]} on every frame"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}, opencv {cv2.__version__}"
    )
    print(
        f"{'way':>6} {'every':>5} {'mediapipe':>9} {'decode':>13} {'landmarks':>13} {'crop':>13} "
        f"{'total':>13} {'mean':>6} {'lips px':>11} {'centre px':>9} {'crop |Δ|':>8}"
    )
    merged = {n: {k: np.concatenate([d[k] for d in dev[n]]) for k in dev[n][0]} for n in settings}
    for n in settings:
        everywhere = np.ones_like(merged[n]["flow"])
        print(
            f"{n[0]:>6} {n[1]:>5} {detected[n] / n_frames:>9.1%} "
            + " ".join(f"{_cell(times[n][name]):>13}" for name in STAGES)
            + f" {np.mean(times[n]['total']):>6.2f} {_deviation_cells(merged[n], everywhere)}"
        )
    for n in settings:
        if flow_ms[n]:
            print(
                f"{n[0]}, landmark_every {n[1]}, the {len(flow_ms[n])} optical-flow frames only: landmarks "
                f"{_cell(flow_ms[n])} ms, deviations {_deviation_cells(merged[n], merged[n]['flow'])}"
            )


if __name__ == "__main__":
    main()
