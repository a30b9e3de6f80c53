"""The vision front end: frames -> landmarks -> aligned lip crops, for live streams and whole clips."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.crop import CropSpec, LipCropper, nose_ratio
from core.orientation import Upright
from core.picking import FaceChoice
from core.tracking import LandmarkTracker, TrackOptions
from core.types import Frame, LipCrop, TrackStatus
from core.video import VideoError, VideoFileSource, resample

# a clip with the face found (TrackStatus.TRACKED) on fewer of its frames is left out of training
# (training.prepare) and a take of "Adapt to my face" refused (core.recording)
MIN_FACE_RATIO = 0.9


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent on one frame by each front-end stage."""

    landmarks_ms: float
    crop_ms: float


class FrontEnd:
    """Landmarks and lip crop for one stream. Call it on frames in time order, as `upright` gives
    them (`upright.frames(source)`: a few held back at the start, see core.orientation); close it after.

    landmark_every: run MediaPipe on every Nth frame only and follow the face with optical flow on
    the frames between (see core.tracking); 1, the default, runs it on every frame. face_choice:
    the face the user picked when several are in view (None: the largest). turned: whether the
    picture is upside down, when already known (None: found from the first frames with a face).
    """

    def __init__(
        self,
        spec: CropSpec | None = None,
        landmarker_path: str | None = None,
        landmark_every: int = 1,
        face_choice: FaceChoice | None = None,
        turned: bool | None = None,
    ) -> None:
        self.spec = spec or CropSpec()
        self.tracker = LandmarkTracker(
            landmarker_path,
            TrackOptions(landmark_every=landmark_every),
            follow_face=self.spec.follow_face,
            face_choice=face_choice,
        )
        self.cropper = LipCropper(self.spec)
        self.last_times = StageTimes(0.0, 0.0)
        # an upside-down picture is turned upright before it is read: frames go through it first, so
        # that what is shown (and where a face is clicked) is the picture read
        self.upright = Upright(landmarker_path, turned)

    def __call__(self, frame: Frame) -> LipCrop:
        t0 = time.perf_counter()
        landmarks = self.tracker(frame)
        t1 = time.perf_counter()
        crop = self.cropper(frame, landmarks)
        self.last_times = StageTimes((t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
        return crop

    def iter_crops(self, frames: Iterable[Frame]) -> Iterator[LipCrop]:
        for frame in self.upright.frames(frames):
            yield self(frame)

    def close(self) -> None:
        self.tracker.close()
        self.upright.close()

    def __enter__(self) -> FrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ClipCrops:
    """The front end's output for a whole clip, resampled to `fps`."""

    crops: np.ndarray = field(repr=False)  # uint8, shape (T, H, W) grey or (T, H, W, 3)
    lip_points: np.ndarray = field(repr=False)  # float32, shape (T, 40, 2), crop pixels ((T, 40, 3)
    # with depth: CropSpec.depth)
    status: np.ndarray = field(repr=False)  # uint8 TrackStatus, shape (T,)
    fps: float
    max_faces: int  # most faces seen in any frame
    nose_ratios: np.ndarray = field(repr=False)  # float32, shape (T,): core.crop.nose_ratio, NaN: no face

    @property
    def face_ratio(self) -> float:
        """Fraction of frames where the face was found."""
        return float(np.mean(self.status == TrackStatus.TRACKED)) if len(self.status) else 0.0


def _between(source: VideoFileSource, start: float, end: float | None) -> Iterator[Frame]:
    """The source's frames with start <= timestamp < end (seeking to `start` first)."""
    if start > 0:
        source.seek(start)
    frames = iter(source)
    try:
        for frame in frames:
            if end is not None and frame.timestamp >= end - 1e-6:
                break
            if frame.timestamp >= start - 1e-6:
                yield frame
    finally:
        frames.close()


def extract_clip(
    path: str | Path,
    spec: CropSpec,
    fps: float = 25.0,
    landmarker_path: str | None = None,
    start: float = 0.0,
    end: float | None = None,
    landmark_every: int = 1,
) -> ClipCrops:
    """Lip crops of a video file at `fps`, of the seconds [start, end) only when given (end None: to
    the end; the file's seconds as players play it, VideoFileSource.delay included), with MediaPipe
    on every `landmark_every`-th frame (see FrontEnd). Raises VideoError for unreadable input or an
    empty span."""
    source = VideoFileSource(path)
    crops, points, status, noses, max_faces = [], [], [], [], 0
    with FrontEnd(spec, landmarker_path, landmark_every) as front:
        late = source.delay  # a video that starts after its sound: its frames' times start there
        frames = _between(source, max(0.0, start - late), None if end is None else end - late)
        for crop in front.iter_crops(resample(frames, fps)):
            crops.append(crop.image)
            points.append(crop.lip_points)
            status.append(crop.status)
            noses.append(math.nan if crop.landmarks is None else nose_ratio(crop.landmarks.points))
            if crop.landmarks is not None:
                max_faces = max(max_faces, crop.landmarks.num_faces)
    if not crops:
        until = "the end" if end is None else f"{end:.2f} s"
        span = "" if start <= 0 and end is None else f" from {start:.2f} s to {until}"
        raise VideoError(f"cannot read video {path}: no frame could be decoded{span}")
    status_array, nose_array = np.array(status, np.uint8), np.array(noses, np.float32)
    return ClipCrops(np.stack(crops), np.stack(points), status_array, fps, max_faces, nose_array)
