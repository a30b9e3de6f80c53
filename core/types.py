"""Small frozen dataclasses that the pipeline stages hand to each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame."""

    index: int  # position in the source (after resampling: position in the resampled stream)
    timestamp: float  # seconds since the start of the source
    image: np.ndarray = field(repr=False)  # BGR uint8, shape (H, W, 3)
    turned: bool = False  # turned upright by the front end: the source's picture is upside down


@dataclass(frozen=True)
class Idle:
    """What a paused source yields now and then in place of a frame (a VideoFileSource playing in
    real time): whoever reads the source may hand out what finished meanwhile, e.g. a sentence read
    again whole, without waiting for play to resume."""


IDLE = Idle()


@dataclass(frozen=True)
class FaceLandmarks:
    """The 478 MediaPipe face points of the face being followed, in pixels of the frame."""

    points: np.ndarray = field(repr=False)  # float32, shape (478, 2): x, y in pixels
    num_faces: int  # faces in view, the followed one included (following a face: as last counted)
    flow: bool = False  # True: moved from the previous frame by optical flow (core.tracking), not detected
    chosen: bool = False  # True: the face the user picked (core.picking.FaceChoice), not the automatic one
    switched: bool = False  # True: the first found since the face to read changed (a pick, a return to
    # the largest face): maybe another person, so what the face before said is over
    others: tuple[np.ndarray, ...] = field(default=(), repr=False)  # the other faces in view: boxes
    # (x0, y0, x1, y1), frame pixels (core.landmarks.LandmarkDetector says when they are found)
    depth: np.ndarray | None = field(default=None, repr=False)  # float32, shape (478,): MediaPipe's z,
    # in x's pixels, from its face origin (smaller is nearer the camera); None when not known


class TrackStatus(enum.IntEnum):
    """Where a crop's transform came from."""

    TRACKED = 0  # landmarks were found in this frame
    HELD = 1  # no face in this frame; the last transform was held to bridge a short gap
    MISSING = 2  # no face for too long (or never): the crop is blank and carries no information


@dataclass(frozen=True)
class LipCrop:
    """The mouth region the model sees for one frame."""

    index: int  # index of the frame it was cut from
    timestamp: float  # seconds, as in the frame
    image: np.ndarray = field(repr=False)  # uint8, shape (H, W) grey or (H, W, 3) BGR
    lip_points: np.ndarray = field(repr=False)  # float32, shape (40, 2), crop pixels: lip points
    # (40, 3) with their depth when the crop spec asks for it (CropSpec.depth)
    transform: np.ndarray = field(repr=False)  # float64, shape (2, 3): frame pixels -> crop pixels
    status: TrackStatus
    landmarks: FaceLandmarks | None = field(default=None, repr=False)  # the source points if tracked

    @property
    def switched(self) -> bool:
        """The first crop of a face read since the face to read changed (FaceLandmarks.switched)."""
        return self.landmarks is not None and self.landmarks.switched
