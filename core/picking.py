"""The face the user picks when several are in view, and where MediaPipe looks for it.

The app's video view (any thread) sets a FaceChoice; the stream's LandmarkDetector asks its
FacePicker, once per frame, which square of the frame to read: the whole frame for the automatic
choice, else a square of REGION_SIDE face sizes around the picked face, moved and resized with
it. A pick is resolved with BlazeFace boxes: the face whose box holds the picked point. The
picked face's centre is written back to the FaceChoice, so a new stream (a seek, or captioning
the whole file) looks for it where it was last seen.

A FaceChoice's points are in the source's picture as a player shows it: an upside-down picture the
front end turns upright (core.orientation, Frame.turned) is another picture, where the point
(x, y) of a W x H picture is at (W - x, H - y) (`turned_over`). The FacePicker moves the point to
the frames it is given, turned or not, and writes back where a face is seen in the source's
picture; a click on a picture shown turned is moved back before it is picked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

REGION_SIDE = 2.5  # the square read around a picked face, in face sizes (BlazeFace box / landmark extent)
LOST_FRAMES = 25  # frames the picked face may be out of its square before the choice is automatic again
MISSED, LOST = "missed", "lost"  # why a pick ended: no face at the point picked; the face left


class FaceChoice:
    """The face to read: a point in pixels of the source's picture (before an upside-down one is
    turned upright), or None for the automatic choice (the largest face). Set from any thread; each
    stream's FacePicker applies a change at its next frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._point: tuple[float, float] | None = None
        self._version = 0
        self._ended: str | None = None  # MISSED or LOST, until taken

    def pick(self, x: float, y: float) -> None:
        """Read the face at (x, y), pixels of the source's picture, from the next frame on."""
        with self._lock:
            self._point, self._version = (float(x), float(y)), self._version + 1

    def automatic(self) -> None:
        """Back to the automatic choice."""
        with self._lock:
            self._point, self._version = None, self._version + 1

    @property
    def point(self) -> tuple[float, float] | None:
        """Where the picked face was last seen (pixels of the source's picture), None for the
        automatic choice."""
        with self._lock:
            return self._point

    def since(self, version: int) -> tuple[int, tuple[float, float] | None] | None:
        """(version, point) when the choice changed after `version`, else None."""
        with self._lock:
            return (self._version, self._point) if self._version != version else None

    def seen_at(self, version: int, x: float, y: float) -> None:
        """The face picked in `version` is now centred at (x, y), pixels of the source's picture
        (ignored if another pick followed)."""
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
    the face it followed), `region(rgb, turned)`, the square to read, then `seen(faces)` with the
    faces found in it. Points and boxes are in frame pixels, those of the FaceChoice in the
    source's picture: a turned frame (Frame.turned) has them turned over.

    find_boxes(rgb) gives BlazeFace's face boxes (x0, y0, x1, y1) in an RGB image, its pixels.
    """

    def __init__(self, choice: FaceChoice, find_boxes: Callable[[np.ndarray], list[np.ndarray]]) -> None:
        self.choice, self._find_boxes = choice, find_boxes
        self._version = 0
        self._target: np.ndarray | None = None  # a picked point whose face is not found yet (the
        # source's picture)
        self._centre: np.ndarray | None = None  # the picked face's centre, once found (frame pixels)
        self._size = 0.0  # its size (pixels)
        self._lost = 0  # frames since it was last seen
        self._restart = False  # the picked face was lost: back to the whole frame
        self._turned = False  # the frames are the source's picture turned upright (Frame.turned)
        self._shape: tuple[int, ...] = (0, 0)  # their shape (H, W, 3)
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

    def region(self, rgb: np.ndarray, turned: bool = False) -> Region | None:
        """The square to read in `rgb` (H, W, 3), None for the whole frame. turned: the frame is the
        source's picture turned upright (Frame.turned); a face found in frames that were not is
        turned with them."""
        self.boxes = None
        self._shape = rgb.shape
        if turned != self._turned:
            self._turned = turned
            if self._centre is not None:
                self._centre = turned_over(self._centre, rgb.shape)
        if self._target is not None:
            self._resolve(rgb)
        if self._centre is None:
            return None
        side = max(2, int(round(REGION_SIDE * self._size)))
        return Region(np.round(self._centre - side / 2).astype(int), side)

    def seen(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """Of the faces (478 points each: x, y in frame pixels, then any more columns) found in the
        region, the picked one: the nearest its last centre, if within its size of it ([] when it
        is not there)."""
        near = [f for f in faces if np.linalg.norm(_centre(f) - self._centre) <= self._size]
        if not near:
            self._lost += 1
            if self._lost > LOST_FRAMES:
                self._centre, self._restart = None, True
                self.choice.end(self._version, LOST)
            return []
        face = min(near, key=lambda f: float(np.linalg.norm(_centre(f) - self._centre)))
        self._lost, self._centre = 0, _centre(face)
        self._size = float(np.max(np.ptp(face[:, :2], axis=0)))
        self.choice.seen_at(self._version, *self._across(self._centre))
        return [face]

    def _across(self, point: np.ndarray) -> np.ndarray:
        """`point` of the frame at its place in the source's picture, or one of the source's
        picture at its place in the frame (turning over twice is no turn)."""
        return turned_over(point, self._shape) if self._turned else point

    def _resolve(self, rgb: np.ndarray) -> None:
        """Look for the face at the picked point: in the whole frame, else in a square of half the
        frame's smaller side around it (a face too small for BlazeFace in the whole frame is larger
        there). No face in view: the pick waits; faces elsewhere only: it is missed."""
        target = self._across(self._target)  # the picked point in this frame
        boxes = self.boxes = self._find_boxes(rgb)
        inside = [b for b in boxes if contains(b, target)]
        if not inside:
            side = min(rgb.shape[:2]) // 2
            origin = np.round(target - side / 2).astype(int)
            near = [b + np.tile(origin, 2) for b in self._find_boxes(square(rgb, origin, side))]
            near = [b for b in near if not any(contains(w, (b[:2] + b[2:]) / 2) for w in boxes)]  # new ones
            inside, boxes = [b for b in near if contains(b, target)], boxes + near
        if inside:
            box = min(inside, key=lambda b: float(np.linalg.norm((b[:2] + b[2:]) / 2 - target)))
            self._centre, self._size = (box[:2] + box[2:]) / 2, float(np.max(box[2:] - box[:2]))
            self._target = None
        elif boxes:
            self._target = None
            self.choice.end(self._version, MISSED)


def turned_over(point: Sequence[float] | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Where the point (x, y) of a picture of `shape` (H, W, ...) is once the picture is turned over
    (180 degrees): (W - x, H - y). Turning over twice is no turn: the same function maps back."""
    return np.array([shape[1], shape[0]], np.float32) - np.asarray(point, np.float32)


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


def _centre(face: np.ndarray) -> np.ndarray:
    """The mean x, y of a face's points (478, 2 or more columns)."""
    return face[:, :2].mean(axis=0)
