"""The lip crop: one implementation, used by training's data preparation and by the app.

An affine transform built from the landmarks (mouth corners level, centred on the lips) cuts a
fixed-size crop. Its horizontal scale comes from the distance between the outer eye corners; its
vertical scale is the same (square pixels), except for a face that is flatter or taller than the
ones a model learnt (another person, a camera looking up at the face, a stretched picture): with
CropSpec.nose_low and nose_high, the faces whose eye-line-to-nose-bottom distance lies outside
that range of eye-corner distances are cut to its nearest end, so every crop has proportions the
model learnt. With CropSpec.depth the lip points carry MediaPipe's depth of each point too, in
crop pixels. Its parameters are smoothed over time with a One Euro filter so the crop does not
jitter; short gaps with no face are bridged by holding the last transform.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from core.landmarks import EYE_OUTER_CORNERS, LIP_INDICES, MOUTH_CORNERS, NOSE_BOTTOM
from core.types import FaceLandmarks, Frame, LipCrop, TrackStatus

NUM_LIP_POINTS = len(LIP_INDICES)
# the version of the crops and lip points this front end cuts: bump it with any change that cuts
# different ones from the same video, so training's crop caches (keyed by it) are cut again
CROP_VERSION = 1


@dataclass(frozen=True)
class CropSpec:
    """How a lip crop is cut; a model declares the spec it was trained with in its metadata."""

    height: int = 48  # crop height in pixels
    width: int = 96  # crop width in pixels
    grayscale: bool = True  # grey (H, W) crops if True, BGR (H, W, 3) otherwise
    span: float = 1.1  # the crop's width, in units of the outer-eye-corner distance
    min_cutoff: float = 1.0  # One Euro filter: cut-off frequency (Hz) at rest; lower is steadier
    beta: float = 0.05  # One Euro filter: how fast the cut-off rises with motion; higher lags less
    max_gap: int = 12  # frames with no face bridged by holding the last transform
    follow_face: bool = False  # MediaPipe follows one face between frames instead of detecting each frame
    nose_low: float = 0.0  # with nose_high, the eye-line-to-nose-bottom distances, in eye-corner
    nose_high: float = 0.0  # distances, of the faces the model learnt (0, 0: any; GRID s1 0.539-0.631).
    # A face outside the range is scaled vertically to its nearest end; within it, pixels are square
    depth: bool = False  # lip points carry MediaPipe's depth too (x, y, z), in crop pixels

    @property
    def landmark_way(self) -> str:
        """How MediaPipe finds the landmarks the crops are cut from, in words (cards, logs, dialogs)."""
        return "following one face" if self.follow_face else "detecting faces on every frame"

    @property
    def scale_way(self) -> str:
        """Where the crop's scale comes from, in words (cards, dialogs)."""
        scale = "scaled by the outer eye corners' distance"
        if not self.nose_high:
            return scale
        span = f"{self.nose_low:g}-{self.nose_high:g}"
        return f"{scale}, a face whose nose is outside {span} of it scaled into that"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CropSpec:
        return verify_spec(cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values}))


def verify_spec(spec: CropSpec) -> CropSpec:
    """`spec`, or ValueError naming what is out of range."""
    if not (8 <= spec.height <= 512 and 8 <= spec.width <= 512):
        raise ValueError(f"crop size {spec.height}x{spec.width} is out of range 8..512")
    if spec.span <= 0 or spec.min_cutoff <= 0 or spec.beta < 0 or spec.max_gap < 0:
        raise ValueError(f"invalid crop spec {spec}")
    if (spec.nose_low, spec.nose_high) != (0, 0) and not 0 < spec.nose_low <= spec.nose_high:
        raise ValueError(f"nose_low and nose_high must be 0 and 0 or 0 < low <= high, not {spec}")
    return spec


class OneEuroFilter:
    """One Euro filter (Casiez et al. 2012) over a small vector, driven by timestamps in seconds."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = max(t - self._t, 1e-3)
        self._t = t
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * (x - self._x) / dt + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        tau = 1.0 / (2 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()

    def reset(self) -> None:
        self._x = None


MAX_STRETCH = 1.5  # the most a face outside the nose range is stretched or squeezed vertically

# The filter runs on (centre x px, centre y px, angle * ANGLE_UNITS, log(eye distance) * SCALE_UNITS,
# log(nose distance) * SCALE_UNITS), so that one unit is roughly one pixel of crop motion in every
# coordinate.
ANGLE_UNITS = 50.0
SCALE_UNITS = 50.0


def pose_from_landmarks(points: np.ndarray) -> np.ndarray:
    """(cx, cy, angle, log eye distance, log nose distance) of a face: the lips' centre, the mouth
    corners' angle, the outer eye corners' distance and the nose bottom's distance from the line
    through them. points: float32, shape (478, 2), pixels."""
    lips = points[list(LIP_INDICES)]
    centre = lips.mean(axis=0)
    left, right = points[MOUTH_CORNERS[0]], points[MOUTH_CORNERS[1]]
    angle = math.atan2(right[1] - left[1], right[0] - left[0])
    eye_left, eye_right = points[EYE_OUTER_CORNERS[0]], points[EYE_OUTER_CORNERS[1]]
    eye_dist = max(float(np.linalg.norm(eye_right - eye_left)), 1.0)
    across = (eye_right - eye_left) / eye_dist
    below = points[NOSE_BOTTOM] - (eye_left + eye_right) / 2
    nose_dist = abs(float(across[0] * below[1] - across[1] * below[0]))
    return np.array([centre[0], centre[1], angle, math.log(eye_dist), math.log(max(nose_dist, 1.0))])


def nose_ratio(points: np.ndarray) -> float:
    """The eye-line-to-nose-bottom distance of a face, in outer-eye-corner distances (CropSpec.nose_low).
    points: float32, shape (478, 2), pixels."""
    pose = pose_from_landmarks(points)
    return math.exp(pose[4] - pose[3])


def transform_from_pose(pose: np.ndarray, spec: CropSpec) -> np.ndarray:
    """The (2, 3) affine matrix taking frame pixels to crop pixels for a pose."""
    cx, cy, angle, log_eye, log_nose = pose
    sx = spec.width / (spec.span * math.exp(log_eye))
    sy = sx
    if spec.nose_high:  # the nose ratio held within the range learnt: the vertical scale makes up the rest
        ratio = math.exp(log_nose - log_eye)
        stretch = min(max(ratio, spec.nose_low), spec.nose_high) / ratio
        sy = sx * min(max(stretch, 1 / MAX_STRETCH), MAX_STRETCH)  # not by a landmark gone astray
    cos, sin = math.cos(angle), math.sin(angle)
    # crop = diag(sx, sy) @ R(-angle) @ (p - c) + (W/2, H/2)
    return np.array(
        [
            [sx * cos, sx * sin, spec.width / 2 - sx * (cos * cx + sin * cy)],
            [-sy * sin, sy * cos, spec.height / 2 + sy * (sin * cx - cos * cy)],
        ]
    )


def vertical_stretch(matrix: np.ndarray) -> float:
    """How much more a crop's (2, 3) transform scales a face down than across: 1 with square
    pixels (and for the blank crop's zero matrix), above 1 for a face flatter than the nose range."""
    across, down = np.linalg.norm(matrix[0, :2]), np.linalg.norm(matrix[1, :2])
    return float(down / across) if across > 0 else 1.0


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped through a (2, 3) affine matrix, as float32."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


class LipCropper:
    """Cuts smoothed, aligned lip crops from frames of one stream, in time order."""

    def __init__(self, spec: CropSpec | None = None) -> None:
        self.spec = verify_spec(spec or CropSpec())
        self._filter = OneEuroFilter(self.spec.min_cutoff, self.spec.beta)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (transform, lip points)
        self._gap = 0

    def __call__(self, frame: Frame, landmarks: FaceLandmarks | None) -> LipCrop:
        spec = self.spec
        if landmarks is not None:
            pose = pose_from_landmarks(landmarks.points)
            units = np.array([1.0, 1.0, ANGLE_UNITS, SCALE_UNITS, SCALE_UNITS])
            smoothed = self._filter(pose * units, frame.timestamp) / units
            matrix = transform_from_pose(smoothed, spec)
            lip_points = apply_transform(matrix, landmarks.points[list(LIP_INDICES)])
            if spec.depth:
                lip_points = np.column_stack([lip_points, lip_depth(matrix, landmarks)])
            self._last, self._gap, status = (matrix, lip_points), 0, TrackStatus.TRACKED
        else:
            self._gap += 1
            if self._last is not None and self._gap <= spec.max_gap:
                matrix, lip_points = self._last
                status = TrackStatus.HELD
            else:
                self._last = None
                self._filter.reset()
                return self._blank(frame)
        image = cv2.warpAffine(
            frame.image,
            matrix,
            (spec.width, spec.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if spec.grayscale:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return LipCrop(frame.index, frame.timestamp, image, lip_points, matrix, status, landmarks)

    def _blank(self, frame: Frame) -> LipCrop:
        spec = self.spec
        shape = (spec.height, spec.width) if spec.grayscale else (spec.height, spec.width, 3)
        return LipCrop(
            frame.index,
            frame.timestamp,
            np.zeros(shape, np.uint8),
            np.zeros((NUM_LIP_POINTS, point_columns(spec)), np.float32),
            np.zeros((2, 3)),
            TrackStatus.MISSING,
        )


def lip_depth(matrix: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
    """The lips' depth (MediaPipe's z) in crop pixels: float32, shape (40,); zeros when the
    landmarks carry none. matrix: the crop's (2, 3) transform, its first row the horizontal scale."""
    if landmarks.depth is None:
        return np.zeros(NUM_LIP_POINTS, np.float32)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    return (landmarks.depth[list(LIP_INDICES)] * scale).astype(np.float32)


def point_columns(spec: CropSpec) -> int:
    """Values per lip point in crops cut by `spec`: x, y (and depth)."""
    return 3 if spec.depth else 2


def point_features(spec: CropSpec) -> int:
    """Lip-point features per frame a model of `spec` takes: x, y (and depth) of the 40 points."""
    return NUM_LIP_POINTS * point_columns(spec)


def normalise_points(lip_points: np.ndarray, spec: CropSpec) -> np.ndarray:
    """Lip points as model input: crop pixels to [-1, 1] (depth on x's scale).
    (…, 40, 2) -> float32 (…, 80): x0, y0, x1, …; with spec.depth (…, 40, 3) -> (…, 120): the same,
    then the 40 depths."""
    columns = point_columns(spec)
    if lip_points.shape[-2:] != (NUM_LIP_POINTS, columns):
        raise ValueError(f"lip points of shape {lip_points.shape[-2:]}, not (…, {NUM_LIP_POINTS}, {columns})")
    scale = np.array([spec.width / 2, spec.height / 2], np.float32)
    xy = (lip_points[..., :2].astype(np.float32) - scale) / scale
    out = xy.reshape(*lip_points.shape[:-2], NUM_LIP_POINTS * 2)
    if not spec.depth:
        return out
    return np.concatenate([out, lip_points[..., 2].astype(np.float32) / scale[0]], axis=-1)
