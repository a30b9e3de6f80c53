"""A picture upside down (a video without its rotation metadata, a webcam mounted the wrong way up),
found from the first frames with a face and turned upright: those frames are held back until it is
decided (2 frames' wait at the start of a stream), so that no frame is read the wrong way up.

MediaPipe's landmarker cannot tell: it fits an upright face mesh onto an upside-down face (its eyes
where the chin is) and finds it on few frames (20 of 75 on a GRID clip turned over), so the lips
were read as nonsense. Its face detector (BlazeFace, in the same bundle) is surer of a face the
right way up: 0.95-0.97 on the first frames of GRID clips, 0.53-0.76 on the same frames turned
over. A face on its side needs nothing: the crop is aligned by the landmarks, which MediaPipe finds
on such a face (75 of 75).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from core.assets import landmarker_path
from core.landmarks import face_detector_model
from core.types import Frame, Idle

PROBE_FRAMES = 3  # frames with a face the decision is made on (their detector scores averaged)
MAX_PROBES = 125  # frames probed (5 s at 25 fps) before a picture with no face is taken as it is
# frames held back at most while deciding: from the first frame with a face, the decision is made by
# the time this many are held (on the faces among them, when fewer than PROBE_FRAMES), so the first
# waits 3 frames (120 ms at 25 fps) at most, PROBE_FRAMES - 1 (80 ms) with a face in each
MAX_HELD = 4
# a probe counts when the detector finds a face this sure, either way up: real faces score 0.918 or
# more the right way up (1st percentile over 300 GRID clips), while noise frames scored up to 0.77
# and a face partly in view (coming in from below) 0.57-0.68 turned over, which would turn it
MIN_SCORE = 0.85
TURN_MARGIN = 0.15  # the detector must be this much surer of the face turned over to turn it
# probes of larger pictures are scaled down to this longest side first (pixels): 6.5 instead of 11
# ms a probe at 1080p here, the same scores
PROBE_SIDE = 640


class Upright:
    """Turns one stream's frames upright when the first frames with a face show it upside down.

    Push frames in time order: they come back in order, each turned over (Frame.turned) once the
    picture is found upside down. None is read the wrong way up: from the first frame with a face
    until the way up is decided, frames are held back and come back together then (turned when
    need be); frames before any face come back at once, as they are (no face to read in them).
    `flush()` at the end of the stream gives those still held. `turned` says what was decided (None
    while undecided), `known` whether that was from faces; given, nothing is probed or held (another
    stream of a file whose way up was found: a seek). A picture with no face in its first MAX_PROBES
    frames is taken as it is, but not known: a later stream of it (a seek) probes again.
    """

    def __init__(self, model_path: str | None = None, turned: bool | None = None) -> None:
        self._model_path = str(model_path or landmarker_path())
        self._detector = None  # BlazeFace while deciding, created at the first probe
        self._scores: list[tuple[float, float]] = []  # (as it is, turned over) of probes with a face
        self._probes = 0
        self._held: list[Frame] = []  # frames since the first with a face, while undecided
        self.turned = turned
        self.known = turned is not None  # the way up was given, or found from faces (not for want of one)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (a frame's image, it turned over)

    def push(self, frame: Frame) -> list[Frame]:
        """The frames that are ready, the right way up, in order: `frame` alone once decided or
        before any face; [] while it is held; the frames held and `frame` when it decides."""
        if self.turned is not None:
            return [self._turn(frame)]
        face = self._probe(frame)
        if not face and not self._held:  # no face yet: nothing to read the wrong way up
            if self._probes >= MAX_PROBES:
                self._decide()  # upright: no face to tell by
            return [frame]
        self._held.append(frame)
        if len(self._scores) >= PROBE_FRAMES or len(self._held) >= MAX_HELD or self._probes >= MAX_PROBES:
            return self._decide()
        return []

    def flush(self) -> list[Frame]:
        """At the end of the stream: the frames still held, decided on the faces probed so far."""
        return self._decide() if self._held else []

    def frames(self, source: Iterable[Frame | Idle]) -> Iterator[Frame | Idle]:
        """`source`'s frames through `push`, then `flush`; IDLE (a paused source) passes at once."""
        for item in source:
            if isinstance(item, Idle):
                yield item
            else:
                yield from self.push(item)
        yield from self.flush()

    def _turn(self, frame: Frame) -> Frame:
        if not self.turned:
            return frame
        if self._last is None or self._last[0] is not frame.image:  # a repeated frame: the same image
            self._last = (frame.image, cv2.rotate(frame.image, cv2.ROTATE_180))
        return dataclasses.replace(frame, image=self._last[1], turned=True)

    def _decide(self) -> list[Frame]:
        """Decide on the probes with a face (none: upright); the held frames, the right way up."""
        upright, over = np.mean(self._scores, axis=0) if self._scores else (1.0, 0.0)
        self.turned = bool(over > upright + TURN_MARGIN)
        self.known = bool(self._scores)
        self.close()
        held, self._held = self._held, []
        return [self._turn(f) for f in held]

    def _probe(self, frame: Frame) -> bool:
        """Score `frame` both ways up (about 2 ms each at 360x288 here); whether it shows a face."""
        self._probes += 1
        image = frame.image
        if (scale := PROBE_SIDE / max(image.shape[:2])) < 1:  # BlazeFace reads 128x128: no loss
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        scores = (self._score(image), self._score(cv2.rotate(image, cv2.ROTATE_180)))
        if max(scores) >= MIN_SCORE:
            self._scores.append(scores)
            return True
        return False

    def _score(self, image: np.ndarray) -> float:
        """How sure BlazeFace is of the face it is surest of in `image` (BGR); 0 when none."""
        import mediapipe as mp

        if self._detector is None:
            from mediapipe.tasks.python import BaseOptions, vision

            self._detector = vision.FaceDetector.create_from_options(
                vision.FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_buffer=face_detector_model(self._model_path)),
                    running_mode=vision.RunningMode.IMAGE,
                    min_detection_confidence=0.1,
                )
            )
        rgb = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return max((d.categories[0].score for d in self._detector.detect(rgb).detections), default=0.0)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
