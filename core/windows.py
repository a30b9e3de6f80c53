"""Sliding windows of a live stream: the frames of the current face run, and the model run on the
window that ends at the newest frame.

With a streaming split (`LipModel.streams`) every frame is encoded about once: a run encodes the
frames whose features are not final yet, with `context` frames of real context before them, and
caches the features; the head then runs on the last `window` features. A frame's features are
final once `context` newer frames exist: the newest `context` frames are encoded with zero padding
after them (exactly what the full model sees at a window's right edge) and encoded again, with
real context, by the next run. So the split adds no latency, and a window that starts where the
face run starts gives the full model's log-probs. In a sliding window the first `context` frames'
features see the real frames before the window instead of the full model's zero padding: the
outputs differ a little, mostly near that left edge, which the stitcher trusts least anyway.

Without the split every run is the full model on the window's frames. `job()` takes what a run
needs (cheap, in the frame thread); `run(job)` may go to a worker thread; `merge(output)` keeps
its features (frame thread again), so the buffers are only ever touched by the frame thread.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.inference import LipModel


@dataclass(frozen=True)
class WindowJob:
    """What one model run needs, taken from the buffers in the frame thread."""

    run: int  # the face run it belongs to (outputs of an earlier run are never merged)
    start: int  # frame index of the window's first frame
    newest: int  # frame index of the window's last frame
    crops: np.ndarray = field(repr=False)  # uint8 (K, H, W): the window (full model) or the chunk to encode
    points: np.ndarray = field(repr=False)  # float32 (K, 40, 2|3), the lip points of `crops`
    skip: int = 0  # leading frames of `crops` that are only context (their features are not kept)
    cached: np.ndarray | None = field(default=None, repr=False)  # float32 (J, F): final features of the
    # window's first J frames (None: run the full model)


@dataclass(frozen=True)
class WindowOutput:
    """The result of a run."""

    job: WindowJob
    log_probs: np.ndarray = field(repr=False)  # float32 (T, C) for frames job.start .. job.newest
    features: np.ndarray | None = field(repr=False)  # float32 (K - skip, F): frames newest-K+skip+1 .. newest
    timings: dict[str, float]  # ms: "encoder", "head" and "model" (the whole run)


class WindowRunner:
    """The frames of one stream's current face run and the model runs over them.

    Push frames with `append`; `reset` starts a new run (after the face was lost). One job at a
    time: merge a job's output before taking the next.
    """

    def __init__(self, model: LipModel, window: int, split: bool = True) -> None:
        self.model = model
        self.window = window
        self.split = split and model.streams  # use the encoder + head (else the full model per window)
        self.context = model.contract.stream.context if self.split else 0
        self._crops: deque[np.ndarray] = deque(maxlen=window + self.context)
        self._points: deque[np.ndarray] = deque(maxlen=window + self.context)
        self._run = -1
        self.reset(0)

    def reset(self, start: int) -> None:
        """Forget every frame; the next frame appended is frame `start`, the first of a new run."""
        self._crops.clear()
        self._points.clear()
        self._run += 1
        self.run_start = start  # first frame of the run (a true edge: nothing before it is seen)
        self.newest = start - 1  # last frame appended
        self._features = np.zeros((0, self.model.contract.stream.features if self.split else 0), np.float32)
        self._features_start = start  # frame index of _features[0]
        self._final = start  # frames before this have final features

    def __len__(self) -> int:
        """Frames buffered."""
        return len(self._crops)

    def append(self, crop: np.ndarray, lip_points: np.ndarray) -> None:
        """The next frame: crop uint8 (H, W) or (H, W, 3), lip_points float32 (40, 2|3) crop pixels."""
        self._crops.append(crop)
        self._points.append(lip_points)
        self.newest += 1

    def _frames(self, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Buffered crops and points from frame `first` to the newest."""
        skip = first - (self.newest - len(self._crops) + 1)
        crops = np.stack(list(itertools.islice(self._crops, skip, None)))
        return crops, np.stack(list(itertools.islice(self._points, skip, None)))

    def job(self) -> WindowJob:
        """The run for the window ending at the newest frame (at least one frame is buffered)."""
        n = self.newest
        start = max(self.run_start, n - self.window + 1)
        if not self.split:
            crops, points = self._frames(start)
            return WindowJob(self._run, start, n, crops, points)
        encode_from = max(self._final, start)  # features before it are cached and final
        lo = start - self._features_start
        if lo < 0 or lo + encode_from - start > len(self._features):  # not cached: encode them again
            encode_from = start
        first = max(self.run_start, encode_from - self.context)
        crops, points = self._frames(first)
        cached = self._features[lo : lo + encode_from - start]
        return WindowJob(self._run, start, n, crops, points, encode_from - first, cached)

    def run(self, job: WindowJob) -> WindowOutput:
        """Run the model for `job` (safe in a worker thread: it touches no buffer)."""
        t0 = time.perf_counter()
        if job.cached is None:
            log_probs = self.model(job.crops, job.points)
            ms = (time.perf_counter() - t0) * 1000
            return WindowOutput(job, log_probs, None, {"encoder": 0.0, "head": 0.0, "model": ms})
        # the skipped frames are only context: the tail does not encode them for themselves
        if job.skip == self.context and self.model.has_tail:
            features = self.model.encode_tail(job.crops, job.points)
        else:
            features = self.model.encode(job.crops, job.points)[job.skip :]
        t1 = time.perf_counter()
        log_probs = self.model.decode_features(np.concatenate([job.cached, features]))
        t2 = time.perf_counter()
        timings = {"encoder": (t1 - t0) * 1000, "head": (t2 - t1) * 1000, "model": (t2 - t0) * 1000}
        return WindowOutput(job, log_probs, features, timings)

    def merge(self, output: WindowOutput) -> None:
        """Keep the features a run encoded (frame thread; ignored for a run of an earlier face run)."""
        job = output.job
        if output.features is None or job.run != self._run:
            return
        encoded_from = job.newest - len(output.features) + 1
        cached_end = self._features_start + len(self._features)
        if self._features_start <= encoded_from <= cached_end:
            keep = self._features[: encoded_from - self._features_start]
            self._features = np.concatenate([keep, output.features])
        else:  # a gap (the runs fell a window behind): start the cache afresh
            self._features, self._features_start = output.features, encoded_from
        drop = max(0, job.start - self._features_start)  # later windows never start before this one
        self._features = self._features[drop:]
        self._features_start += drop
        self._final = max(self._final, job.newest - self.context + 1)
