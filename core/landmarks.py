"""Face landmarks with MediaPipe Tasks FaceLandmarker in VIDEO mode."""

from __future__ import annotations

import zipfile

import numpy as np

from core.assets import landmarker_path
from core.types import FaceLandmarks, Frame

# MediaPipe face-mesh indices of the lips (outer ring, then inner ring), 40 points.
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_INDICES = LIPS_OUTER + LIPS_INNER
MOUTH_CORNERS = (61, 291)
EYE_OUTER_CORNERS = (33, 263)
UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
NUM_POINTS = 478
COUNT_EVERY = 12  # frames between two counts of the faces in view (a count costs ~1.6 ms)
DETECTOR_MEMBER = "face_detector.tflite"  # BlazeFace, inside the face_landmarker.task bundle


class LandmarkDetector:
    """FaceLandmarker for one stream: call it on frames in time order; close it when done.

    The landmarker follows one face (num_faces=1: with more, MediaPipe would run its face detector on
    every frame, doubling the cost): the one its detector found first, in practice the largest, and it
    sticks to it while tracking. The faces in view are counted every COUNT_EVERY frames, and whenever
    the face is found or lost, with the bundle's own BlazeFace detector, so several faces are noticed.
    """

    def __init__(self, model_path: str | None = None, count_every: int = COUNT_EVERY) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        path = str(model_path or landmarker_path())
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=path),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=0.5,
            min_face_presence_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        with zipfile.ZipFile(path) as bundle:
            detector_model = bundle.read(DETECTOR_MEMBER)
        self._counter = vision.FaceDetector.create_from_options(
            vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_buffer=detector_model),
                running_mode=vision.RunningMode.IMAGE,
                min_detection_confidence=0.5,
            )
        )
        self._count_every = count_every
        self._frames_since_count = count_every
        self._faces = 0
        self._had_face = False
        self._last_ms = -1

    def __call__(self, frame: Frame) -> FaceLandmarks | None:
        """Landmarks of the followed face in `frame`, or None when no face is found."""
        h, w = frame.image.shape[:2]
        rgb = np.ascontiguousarray(frame.image[:, :, ::-1])
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        ms = max(int(round(frame.timestamp * 1000)), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        result = self._landmarker.detect_for_video(image, ms)
        found = bool(result.face_landmarks)
        self._frames_since_count += 1
        if found != self._had_face or self._frames_since_count >= self._count_every:
            self._faces = len(self._counter.detect(image).detections)
            self._frames_since_count = 0
        self._had_face = found
        if not found:
            return None
        face = result.face_landmarks[0]
        points = np.array([(p.x * w, p.y * h) for p in face], dtype=np.float32)
        return FaceLandmarks(points=points, num_faces=max(1, self._faces))

    def close(self) -> None:
        self._landmarker.close()
        self._counter.close()

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
