"""Face landmarks with MediaPipe Tasks FaceLandmarker in VIDEO mode."""

from __future__ import annotations

import ctypes
import functools
import zipfile
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.assets import AssetError, landmarker_path
from core.picking import FaceChoice, FacePicker, contains, square
from core.types import FaceLandmarks, Frame

if TYPE_CHECKING:
    import mediapipe as mp

# MediaPipe face-mesh indices of the lips (outer ring, then inner ring), 40 points.
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_INDICES = LIPS_OUTER + LIPS_INNER
MOUTH_CORNERS = (61, 291)
EYE_OUTER_CORNERS = (33, 263)
NOSE_BOTTOM = 2  # where the nose meets the upper lip's skin (subnasale): fixed on the face, above the lips
UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
NUM_POINTS = 478
MAX_FACES = 3  # faces MediaPipe reports when detecting on every frame
SAME_FACE = 0.5  # a face found less than this many face widths from the one read before is the same
COUNT_EVERY = 12  # following one face: calls (frames MediaPipe runs on) between two counts of the faces
# while one is in view (with several, they are counted on every call: their boxes are drawn)
DETECTOR_MEMBER = "face_detector.tflite"  # BlazeFace, inside the face_landmarker.task bundle


class LandmarkDetector:
    """FaceLandmarker for one stream: call it on frames in time order; close it when done.

    Two ways, and a model declares the one its crops were cut with (CropSpec.follow_face):
    - detect (follow=False): MediaPipe reports up to MAX_FACES faces, so its face detector runs
      on every frame. With several in view it follows the largest at first, then the one nearest
      the previous position.
    - follow (follow=True): MediaPipe reports one face and tracks it from frame to frame, running
      its detector only when the face is lost (13-16 % less time here; README, Performance). With
      several in view it follows the one its detector is surest of (in practice the largest) and
      sticks to it while tracking; once lost, the face found next may be another. The faces in view
      are counted with the bundle's own BlazeFace detector every COUNT_EVERY calls, whenever the
      face is found again and on every call while several are in view (about 1.7 ms each here), so
      a second face is noticed within COUNT_EVERY - 1 calls and its box (`others`) follows it (on
      the frames MediaPipe runs on: core.tracking's optical-flow frames keep the last ones).

    face_choice: the face the user picks (core.picking): while a face is picked, MediaPipe reads a
    square around it only and the faces in view are counted with BlazeFace in both ways.
    """

    def __init__(
        self, model_path: str | None = None, follow: bool = False, face_choice: FaceChoice | None = None
    ) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp, self._vision, self._follow = mp, vision, follow
        path = str(model_path or landmarker_path())
        detector_model = face_detector_model(path) if follow or face_choice is not None else None
        self._options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=path),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1 if follow else MAX_FACES,
            min_face_detection_confidence=0.5,
            min_face_presence_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(self._options)
        self._picker = None if face_choice is None else FacePicker(face_choice, self._face_boxes)
        self._counter = None
        if detector_model is not None:
            try:
                self._counter = vision.FaceDetector.create_from_options(
                    vision.FaceDetectorOptions(
                        base_options=BaseOptions(model_asset_buffer=detector_model),
                        running_mode=vision.RunningMode.IMAGE,
                        min_detection_confidence=0.5,
                    )
                )
            except BaseException:
                self._landmarker.close()
                raise
        self._since_count = COUNT_EVERY
        self._boxes: list[np.ndarray] = []  # BlazeFace's faces at the last count
        self._several = False  # others than the followed face were in view at the last frame
        self._had_face = False
        self._changed = False  # the face to read changed, and no face was found since
        self._changed_from: np.ndarray | None = None  # then: the centre of the face read before, if any
        self._last_ms = -1
        self._last_centre: np.ndarray | None = None

    @property
    def choice_pending(self) -> bool:
        """Whether the face to read changes at the next frame (a pick, or the automatic choice)."""
        return self._picker is not None and self._picker.pending

    def __call__(self, frame: Frame) -> FaceLandmarks | None:
        """Landmarks of the followed face in `frame`, or None when no face is found."""
        if self._picker is not None and self._picker.changed():  # MediaPipe forgets the face it followed
            self._landmarker.close()
            self._landmarker = self._vision.FaceLandmarker.create_from_options(self._options)
            if not self._changed:  # several changes before a face is found: the face read before them
                self._changed, self._changed_from = True, self._last_centre
            self._last_centre = None
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        region = self._picker.region(rgb, frame.turned) if self._picker is not None else None
        fresh = self._picker is not None and self._picker.boxes is not None  # BlazeFace ran on the frame
        if fresh:
            self._boxes = self._picker.boxes
        if region is None:
            faces = self._detect(self._image(rgb), frame.timestamp)
        else:
            inside = self._detect(self._image(square(rgb, region.origin, region.side)), frame.timestamp)
            offset = np.append(region.origin, 0).astype(np.float32)  # x, y; the depth stays
            faces = self._picker.seen([f + offset for f in inside])
        if not faces:
            self._had_face = False
            return None
        counted = self._follow or region is not None  # BlazeFace counts; else MediaPipe found them all
        if counted:
            self._count(rgb, fresh)
        face = self._pick(faces)
        points = face[:, :2].copy()
        self._last_centre = points.mean(axis=0)
        if counted:  # the followed face may be one BlazeFace missed (too small in the whole frame)
            others = tuple(b for b in self._boxes if not contains(b, self._last_centre))
            self._several = bool(others)
        else:
            others = tuple(
                np.concatenate([f[:, :2].min(axis=0), f[:, :2].max(axis=0)]) for f in faces if f is not face
            )
        chosen = region is not None
        switched = False
        if self._changed:  # another face, unless it is where the one before was
            before, self._changed = self._changed_from, False
            width = float(np.ptp(points[:, 0]))
            switched = before is None or np.linalg.norm(self._last_centre - before) > SAME_FACE * width
        return FaceLandmarks(
            points=points,
            num_faces=1 + len(others),
            depth=face[:, 2].copy(),
            chosen=chosen,
            others=others,
            switched=switched,
        )

    def _image(self, rgb: np.ndarray) -> mp.Image:
        return self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)

    def _detect(self, image: mp.Image, timestamp: float) -> list[np.ndarray]:
        """MediaPipe's faces in `image`: (478, 3) float32 points each, x, y and depth in its pixels
        (MediaPipe's z is on about x's scale)."""
        ms = max(int(round(timestamp * 1000)), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        scale = np.array([image.width, image.height, image.width], np.float32)
        faces = _raw_landmarks(self._landmarker, image, ms)
        if faces is None:  # MediaPipe's own API: the same numbers, 1-2 ms slower
            result = self._landmarker.detect_for_video(image, ms)
            faces = [np.array([(p.x, p.y, p.z) for p in face], np.float32) for face in result.face_landmarks]
        return [face * scale for face in faces]

    def _face_boxes(self, rgb: np.ndarray) -> list[np.ndarray]:
        """BlazeFace's face boxes (x0, y0, x1, y1) in `rgb` (H, W, 3), its pixels."""
        found = [d.bounding_box for d in self._counter.detect(self._image(rgb)).detections]
        return [
            np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height]) for b in found
        ]

    def _count(self, rgb: np.ndarray, fresh: bool) -> None:
        """The faces in view by BlazeFace (`_boxes`), found again every COUNT_EVERY calls with a
        face, on every call while others than the followed one are in view and when the followed
        face is found again (`fresh`: they were just found)."""
        self._since_count += 1
        due = not self._had_face or self._since_count >= COUNT_EVERY or self._several
        if due and not fresh:
            self._boxes = self._face_boxes(rgb)
        if due or fresh:
            self._since_count = 0
        self._had_face = True

    def _pick(self, faces: list[np.ndarray]) -> np.ndarray:
        """The face to read of `faces` ((478, 3) each: x, y, depth)."""
        if len(faces) == 1:
            return faces[0]
        if self._last_centre is None:
            sizes = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
            return faces[int(np.argmax(sizes))]
        dists = [np.linalg.norm(f[:, :2].mean(axis=0) - self._last_centre) for f in faces]
        return faces[int(np.argmin(dists))]

    def close(self) -> None:
        self._landmarker.close()
        if self._counter is not None:
            self._counter.close()

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _c_result_layout() -> tuple[type, int, int, int, int] | None:
    """MediaPipe's C result type for FaceLandmarker, and a landmark's size and x, y, z offsets in
    float32 units; None when this MediaPipe does not have them (then its API is used)."""
    try:
        from mediapipe.tasks.python.components.containers.landmark_c import MpNormalizedLandmarkC
        from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC
    except ImportError:
        return None
    step = ctypes.sizeof(MpNormalizedLandmarkC) // 4
    x, y, z = (getattr(MpNormalizedLandmarkC, name).offset // 4 for name in "xyz")
    return MpFaceLandmarkerResultC, step, x, y, z


def _raw_landmarks(landmarker: object, image: mp.Image, ms: int) -> list[np.ndarray] | None:
    """FaceLandmarker.detect_for_video's faces as (478, 3) float32 arrays of normalised x, y, z, read
    straight from MediaPipe's C result: its Python API makes an object of each of the 478 points
    (about 1.4 ms a frame here, an eighth of the front end). None when this MediaPipe's internals
    are not the ones this reads (then use the API)."""
    layout = _c_result_layout()
    try:
        lib, handle, pointer = landmarker._lib, landmarker._handle, image._image_ptr  # type: ignore[attr-defined]
    except AttributeError:
        return None
    if layout is None:
        return None
    result_type, step, x, y, z = layout
    result = result_type()
    lib.MpFaceLandmarkerDetectForVideo(handle, pointer, None, ms, ctypes.byref(result))
    try:
        faces = []
        for i in range(result.face_landmarks_count):
            face = result.face_landmarks[i]
            n = face.landmarks_count
            if n == 0:
                continue
            raw = ctypes.cast(face.landmarks, ctypes.POINTER(ctypes.c_float * (n * step))).contents
            table = np.frombuffer(raw, np.float32).reshape(n, step)
            faces.append(table[:, [x, y, z]])  # a copy: the result is freed below
        return faces
    finally:
        lib.MpFaceLandmarkerCloseResult(ctypes.byref(result))


def face_detector_model(path: str) -> bytes:
    """The BlazeFace model inside the face_landmarker.task bundle at `path`."""
    try:
        with zipfile.ZipFile(path) as bundle:
            return bundle.read(DETECTOR_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise AssetError(f"cannot read the face detector in landmark model {path}: {e}") from e
