"""How the model's error rates change when the lip crops look different: light, contrast, gamma,
blur, resolution, noise.

    python bench/robustness.py [--data config/grid-s1-val.csv] [--model models/grid-s1.onnx]
                               [--limit N] [--threads 2]

Runs the front end once per clip (MediaPipe, the model's crop), then, for each appearance change
below, changes the crops, runs the model on the whole clip and decodes it with the model's
default decoder, and prints CER/WER per change. The lip points stay those of the recorded video,
so this measures the model alone; how MediaPipe copes with the same changes is another question.
A stand-in for what another camera, room or face would do, not a measurement of them. The last
row blanks the crops (every pixel mid-grey): what the lip points alone carry. A clip that cannot
be read is reported in one line and left out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.captioning import error_rates  # noqa: E402
from core.engine import CaptionEngine  # noqa: E402
from core.frontend import extract_clip  # noqa: E402
from core.inference import default_model_path  # noqa: E402
from core.transcripts import read_references  # noqa: E402
from core.video import VideoError  # noqa: E402


def _levels(crops: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.clip(fn(crops.astype(np.float32)), 0, 255).astype(np.uint8)


def _about_mean(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Contrast scaled by `factor` about each crop's mean."""

    def change(crops: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, crops.ndim))
        return _levels(
            crops,
            lambda c: (c - c.mean(axis=axes, keepdims=True)) * factor + c.mean(axis=axes, keepdims=True),
        )

    return change


def _gamma(gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda crops: _levels(crops, lambda c: 255 * (c / 255) ** gamma)


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda crops: np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in crops])


def _resolution(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Down to `factor` of the size and back: a face further away or a poorer camera."""

    def change(crops: np.ndarray) -> np.ndarray:
        h, w = crops.shape[1:3]
        small = (max(1, round(w * factor)), max(1, round(h * factor)))
        return np.stack(
            [cv2.resize(cv2.resize(c, small, interpolation=cv2.INTER_AREA), (w, h)) for c in crops]
        )

    return change


def _noise(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(crops: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        return _levels(crops, lambda c: c + rng.normal(0, sigma, c.shape))

    return change


CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as recorded": lambda crops: crops,
    "darker (-50 levels)": lambda crops: _levels(crops, lambda c: c - 50),
    "brighter (+50 levels)": lambda crops: _levels(crops, lambda c: c + 50),
    "contrast x0.5": _about_mean(0.5),
    "contrast x1.5": _about_mean(1.5),
    "gamma 0.6 (lifted shadows)": _gamma(0.6),
    "gamma 1.6 (deeper shadows)": _gamma(1.6),
    "blur, sigma 1 px": _blur(1.0),
    "half resolution": _resolution(0.5),
    "quarter resolution": _resolution(0.25),
    "noise, sigma 8 levels": _noise(8.0),
    "blanked (lip points only)": lambda crops: np.full_like(crops, 128),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="config/grid-s1-val.csv", help="GRID folder or manifest")
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate this many clips (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default 2)")
    args = parser.parse_args()

    refs, _ = read_references(args.data)
    if args.limit:
        refs = refs[: args.limit]
    model = args.model or default_model_path()
    engine = CaptionEngine.load(model, threads=args.threads)
    c = engine.contract
    t0 = time.perf_counter()
    clips, read = [], []
    for ref in refs:
        try:
            clips.append(extract_clip(ref.video, c.crop, c.fps, landmark_every=engine.options.landmark_every))
            read.append(ref)
        except VideoError as e:
            print(f"left out: {e}", file=sys.stderr)
    refs = read
    front = time.perf_counter() - t0
    print(
        f"LipReader robustness: {len(refs)} clips of {args.data}, model {model} on {engine.provider}, "
        f"decoder {engine.decoder.kind} (whole clip), {os.cpu_count()} CPUs; front end {front:.0f} s"
    )
    print(f"\n{'crops':<30}{'CER':>8}{'WER':>8}")
    for name, change in CHANGES.items():
        hyps = []
        for clip in clips:
            log_probs = engine.model(change(clip.crops), clip.lip_points)
            hyps.append(" ".join(w.text for w in engine.decoder.decode(log_probs)))
        cer, wer = error_rates(hyps, [r.text for r in refs])
        print(f"{name:<30}{cer:8.3f}{wer:8.3f}")


if __name__ == "__main__":
    main()
