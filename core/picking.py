"""The face the user picks when several are in view, and where MediaPipe looks for it.

The app's video view (any thread) sets a FaceChoice; the stream's LandmarkDetector asks its
FacePicker, once per frame, which square of the frame to read: the whole frame for the automatic
choice, else a square of REGION_SIDE face sizes around the picked face, moved and resized with
it. A pick is resolved with BlazeFace boxes: the face whose box holds the picked point. The
picked face's centre is written back to the FaceChoice, so a new stream (a seek, or captioning
the whole file) looks for it where it was last seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REGION_SIDE = 2.5  # the square read around a picked face, in face sizes (BlazeFace box / landmark extent)
LOST_FRAMES = 25  # frames the picked face may be out of its square before the choice is automatic again
MISSED, LOST = "missed", "lost"  # why a pick ended: no face at the point picked; the face left


class FaceChoice:
    """The face to read: a point in frame pixels, or None for the automatic choice (the largest
    face). Set from any thread; each stream's FacePicker applies a change at its next frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._point: tuple[float, float] | None = None
        self._version = 0
        self._ended: str | None = None  # MISSED or LOST, until taken

    def pick(self, x: float, y: float) -> None:
        """Read the face at (x, y), frame pixels, from the next frame on."""
        with self._lock:
            self._point, self._version = (float(x), float(y)), self._version + 1

    def automatic(self) -> None:
        """Back to the automatic choice."""
        with self._lock:
            self._point, self._version = None, self._version + 1

    @property
    def point(self) -> tuple[float, float] | None:
        """Where the picked face was last seen (frame pixels), None for the automatic choice."""
        with self._lock:
            return self._point

    def since(self, version: int) -> tuple[int, tuple[float, float] | None] | None:
        """(version, point) when the choice changed after `version`, else None."""
        with self._lock:
            return (self._version, self._point) if self._version != version else None

    def seen_at(self, version: int, x: float, y: float) -> None:
        """The face picked in `version` is now centred at (x, y) (ignored if another pick followed)."""
        with self._lock:
            if version == self._version:
                self._point = (float(x), float(y))

    def end(self, version: int, reason: str) -> None:
        """The pick of `version` ended (MISSED or LOST): the choice is automatic again, unless
        another pick followed."""
        with self._lock:
            if version == self._version:
                self._point, self._ended = None, reason

    def take_ended(self) -> str | None:
        """MISSED or LOST when a pick ended since the last call, else None."""
        with self._lock:
            ended, self._ended = self._ended, None
            return ended


@dataclass(frozen=True)
class Region:
    """The square of the frame MediaPipe reads, frame pixels."""

    origin: np.ndarray  # int, shape (2,): its top-left corner (x, y), may lie outside the frame
    side: int


class FacePicker:
    """One stream's side of a FaceChoice. Per frame: `changed()` (True: the landmarker must forget
    the face it followed), `region(rgb)`, the square to read, then `seen(faces)` with the faces
    found in it.

    find_boxes(rgb) gives BlazeFace's face boxes (x0, y0, x1, y1) in an RGB image, its pixels.
    """

    def __init__(self, choice: FaceChoice, find_boxes: Callable[[np.ndarray], list[np.ndarray]]) -> None:
        self.choice, self._find_boxes = choice, find_boxes
        self._version = 0
        self._target: np.ndarray | None = None  # a picked point whose face is not found yet
        self._centre: np.ndarray | None = None  # the picked face's centre, once found
        self._size = 0.0  # its size (pixels)
        self._lost = 0  # frames since it was last seen
        self._restart = False  # the picked face was lost: back to the whole frame
        # BlazeFace's boxes in the whole frame this call, if it ran
        self.boxes: list[np.ndarray] | None = None

    @property
    def pending(self) -> bool:
        """Whether the next frame is read another way (a new choice, or a picked face lost)."""
        return self._restart or self.choice.since(self._version) is not None

    def changed(self) -> bool:
        """Apply a new choice, if any; True when the way frames are read changes."""
        restart, self._restart = self._restart, False
        change = self.choice.since(self._version)
        if change is None:
            return restart
        self._version, point = change
        self._target = None if point is None else np.array(point, np.float32)
        self._centre, self._lost = None, 0
        return True

    def region(self, rgb: np.ndarray) -> Region | None:
        """The square to read in `rgb` (H, W, 3), None for the whole frame."""
        self.boxes = None
        if self._target is not None:
            self._resolve(rgb)
        if self._centre is None:
            return None
        side = max(2, int(round(REGION_SIDE * self._size)))
        return Region(np.round(self._centre - side / 2).astype(int), side)

    def seen(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """Of the faces (478, 2 points each, frame pixels) found in the region, the picked one: the
        nearest its last centre, if within its size of it ([] when it is not there)."""
        near = [f for f in faces if np.linalg.norm(f.mean(axis=0) - self._centre) <= self._size]
        if not near:
            self._lost += 1
            if self._lost > LOST_FRAMES:
                self._centre, self._restart = None, True
                self.choice.end(self._version, LOST)
            return []
        face = min(near, key=lambda f: float(np.linalg.norm(f.mean(axis=0) - self._centre)))
        self._lost, self._centre = 0, face.mean(axis=0)
        self._size = float(np.max(np.ptp(face, axis=0)))
        self.choice.seen_at(self._version, *self._centre)
        return [face]

    def _resolve(self, rgb: np.ndarray) -> None:
        """Look for the face at the picked point: in the whole frame, else in a square of half the
        frame's smaller side around it (a face too small for BlazeFace in the whole frame is larger
        there). No face in view: the pick waits; faces elsewhere only: it is missed."""
        boxes = self.boxes = self._find_boxes(rgb)
        inside = [b for b in boxes if contains(b, self._target)]
        if not inside:
            side = min(rgb.shape[:2]) // 2
            origin = np.round(self._target - side / 2).astype(int)
            near = [b + np.tile(origin, 2) for b in self._find_boxes(square(rgb, origin, side))]
            near = [b for b in near if not any(contains(w, (b[:2] + b[2:]) / 2) for w in boxes)]  # new ones
            inside, boxes = [b for b in near if contains(b, self._target)], boxes + near
        if inside:
            box = min(inside, key=lambda b: float(np.linalg.norm((b[:2] + b[2:]) / 2 - self._target)))
            self._centre, self._size = (box[:2] + box[2:]) / 2, float(np.max(box[2:] - box[:2]))
            self._target = None
        elif boxes:
            self._target = None
            self.choice.end(self._version, MISSED)


def contains(box: np.ndarray, point: np.ndarray) -> bool:
    """Whether `point` (x, y) is in `box` (x0, y0, x1, y1)."""
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def square(rgb: np.ndarray, origin: np.ndarray, side: int) -> np.ndarray:
    """The side x side square of `rgb` (H, W, 3) whose top-left corner is `origin` (x, y), black
    where it leaves the image."""
    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), np.uint8)
    x0, y0 = int(origin[0]), int(origin[1])
    a, b = max(0, -x0), max(0, -y0)
    x1, y1 = min(w, x0 + side), min(h, y0 + side)
    if x1 > x0 + a and y1 > y0 + b:
        out[b : y1 - y0, a : x1 - x0] = rgb[y0 + b : y1, x0 + a : x1]
    return out
