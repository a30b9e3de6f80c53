"""Landmarks on every Nth frame only: MediaPipe on those, Lucas-Kanade optical flow in between.

On a frame between two MediaPipe runs, pyramidal Lucas-Kanade flow (on the grey face region of the
previous frame and this one) moves the previous frame's outer lip ring (which holds the mouth
corners), outer eye corners and the bottom of the nose (the crop's points: core.crop). The inner
lip ring follows the affine motion of the outer ring: tracked directly, its points slip when the
mouth opens and the teeth or the dark inside show. The other face points follow the median
motion. A point whose forward-backward flow error is too large is lost and moves with the affine
(lips) or the median (eyes, nose); when too many are lost, MediaPipe runs on the frame instead.
The points' depth (FaceLandmarks.depth) is the last MediaPipe frame's: flow sees no depth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from core.landmarks import EYE_OUTER_CORNERS, LIP_INDICES, LIPS_OUTER, NOSE_BOTTOM, LandmarkDetector
from core.picking import FaceChoice
from core.types import FaceLandmarks, Frame

FLOW_INDICES = LIPS_OUTER + EYE_OUTER_CORNERS + (NOSE_BOTTOM,)  # the points optical flow moves
_FLOW = np.array(FLOW_INDICES)
_LIPS = np.array(LIP_INDICES)
_OUTER = len(LIPS_OUTER)  # the outer lip ring comes first in FLOW_INDICES


@dataclass(frozen=True)
class TrackOptions:
    """When MediaPipe runs and how optical flow follows the face in between."""

    landmark_every: int = 1  # MediaPipe on every Nth frame, optical flow on the others (1: every frame)
    window: int = 21  # Lucas-Kanade window side, pixels (on GRID 31 and 41 were hardly closer, and slower)
    levels: int = 2  # pyramid levels above full resolution (motion up to ~window * 2**levels / 2 px)
    max_error: float = 2.0  # forward-backward flow error (px) beyond which a point counts as lost
    min_found: float = 0.8  # fraction of points the flow must keep, else MediaPipe runs on the frame
    margin: float = 0.5  # the flow's region: the points' box grown by this times its larger side + window


def _verify_track_options(options: TrackOptions) -> TrackOptions:
    o = options
    every = o.landmark_every
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"landmark_every must be a positive integer, not {every!r}")
    if o.window < 3 or o.window % 2 == 0 or o.levels < 0:
        raise ValueError(f"the flow window must be odd and >= 3 and levels >= 0, not {o.window}, {o.levels}")
    if o.max_error <= 0 or not 0 <= o.min_found <= 1 or o.margin < 0:
        raise ValueError(f"invalid tracking options {o}")
    return o


@dataclass(frozen=True)
class _Previous:
    """The last frame's face, kept for the flow: its landmarks and grey face region."""

    landmarks: FaceLandmarks
    grey: np.ndarray  # uint8, shape (h, w): the face region of the frame
    origin: np.ndarray  # float32, shape (2,): the region's top-left corner, frame pixels
    frame_shape: tuple[int, ...]  # the whole frame's shape, to notice a source of another size


class LandmarkTracker:
    """Landmarks for one stream from MediaPipe on every `landmark_every`-th frame and optical flow on
    the frames between; call it on frames in time order, close it after. With landmark_every 1 it
    is the detector alone.

    Landmarks moved by the flow are marked `flow=True`. `detected` and `followed` count the frames
    whose landmarks came from MediaPipe and from the flow; `fallbacks` the frames where the flow lost
    the face and MediaPipe ran instead.
    """

    def __init__(
        self,
        landmarker_path: str | None = None,
        options: TrackOptions | None = None,
        follow_face: bool = False,
        face_choice: FaceChoice | None = None,
    ) -> None:
        self.options = _verify_track_options(options or TrackOptions())
        self.detector = LandmarkDetector(landmarker_path, follow=follow_face, face_choice=face_choice)
        self.detected = self.followed = self.fallbacks = 0
        self._previous: _Previous | None = None
        self._since_detection = 0  # frames followed by flow since MediaPipe last ran

    def __call__(self, frame: Frame) -> FaceLandmarks | None:
        """Landmarks of the followed face in `frame`, or None when no face is found."""
        every = self.options.landmark_every
        if every == 1:
            self.detected += 1
            return self.detector(frame)
        landmarks = None
        if self.detector.choice_pending:  # the flow follows the face that was read before
            self._previous = None
        if self._previous is not None and self._since_detection < every - 1:
            landmarks = self._follow(frame, self._previous)
            self.fallbacks += landmarks is None
        if landmarks is None:
            landmarks = self.detector(frame)
            self.detected += 1
            self._since_detection = 0
        else:
            self.followed += 1
            self._since_detection += 1
        needed = landmarks is not None and self._since_detection < every - 1
        self._previous = self._keep(frame, landmarks) if needed else None
        return landmarks

    def _region(self, points: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the box around `points` (N, 2) grown by the margin, inside the frame."""
        low, high = points.min(axis=0), points.max(axis=0)
        grow = self.options.margin * float(np.max(high - low)) + self.options.window
        h, w = frame_shape[:2]
        x0, y0 = (max(0, int(v - grow)) for v in low)
        x1, y1 = min(w, int(high[0] + grow) + 1), min(h, int(high[1] + grow) + 1)
        return x0, y0, x1, y1

    def _keep(self, frame: Frame, landmarks: FaceLandmarks) -> _Previous | None:
        x0, y0, x1, y1 = self._region(landmarks.points[_FLOW], frame.image.shape)
        if x1 - x0 < 2 or y1 - y0 < 2:  # the face is off the frame
            return None
        grey = cv2.cvtColor(frame.image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        return _Previous(landmarks, grey, np.array([x0, y0], np.float32), frame.image.shape)

    def _follow(self, frame: Frame, previous: _Previous) -> FaceLandmarks | None:
        """The previous landmarks moved by optical flow into `frame`, or None if the flow lost them."""
        if frame.image.shape != previous.frame_shape:
            return None
        o = self.options
        h, w = previous.grey.shape
        x0, y0 = (int(v) for v in previous.origin)
        grey = cv2.cvtColor(frame.image[y0 : y0 + h, x0 : x0 + w], cv2.COLOR_BGR2GRAY)
        old = previous.landmarks.points
        before = (old[_FLOW] - previous.origin).reshape(-1, 1, 2)
        lk = dict(
            winSize=(o.window, o.window),
            maxLevel=o.levels,
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
        )
        after, found, _ = cv2.calcOpticalFlowPyrLK(previous.grey, grey, before, None, **lk)
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(grey, previous.grey, after, None, **lk)
        error = np.linalg.norm((back - before).reshape(-1, 2), axis=1)
        good = (found.ravel() == 1) & (found_back.ravel() == 1) & (error < o.max_error)
        if good[:_OUTER].sum() < 3 or good.mean() < o.min_found:
            return None
        start = old[_FLOW]
        end = start + (after - before).reshape(-1, 2)
        lips, _ = cv2.estimateAffine2D(
            start[:_OUTER][good[:_OUTER]], end[:_OUTER][good[:_OUTER]], method=cv2.LMEDS
        )
        if lips is None:
            return None
        points = old + np.median(end[good] - start[good], axis=0)  # the face: the median motion
        points[_LIPS] = old[_LIPS] @ lips[:, :2].T + lips[:, 2]  # the lips: the outer ring's affine motion
        points[_FLOW[good]] = end[good]  # the points the flow followed
        return replace(previous.landmarks, points=points.astype(np.float32), flow=True, switched=False)

    def close(self) -> None:
        self.detector.close()
