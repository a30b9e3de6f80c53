"""The self-test's generated clip: a drawn cartoon face whose mouth opens and closes (MediaPipe's
FaceLandmarker finds it), so the installation can be checked without a camera or any data."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

CLIP_SIZE = (288, 360)  # generated clip: height, width (GRID's)
CLIP_FPS = 30.0  # not the model's 25, so that resampling is exercised
SYLLABLE_PERIOD = 0.6  # seconds per open-close cycle of the drawn mouth
MOUTH_WIDTH = 52  # pixels, drawn


def mouth_opening(t: float) -> float:
    """How open the drawn mouth is at `t` seconds: 0 (closed) .. 1 (wide open)."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * t / SYLLABLE_PERIOD)


def mouth_centre(t: float, size: tuple[int, int] = CLIP_SIZE) -> tuple[float, float]:
    """Pixel (x, y) of the drawn mouth at `t`: the head sways a little from side to side."""
    h, w = size
    return w / 2 + 4.0 * math.sin(2 * math.pi * t / 2.0), h / 2 + 48.0


def draw_face(t: float, size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """A cartoon face at `t` seconds: BGR uint8, shape (H, W, 3)."""
    h, w = size
    mx, my = mouth_centre(t, size)
    cx, cy = int(round(mx)), int(round(my - 48))
    image = np.full((h, w, 3), (200, 190, 180), np.uint8)
    cv2.rectangle(image, (cx - 35, cy + 80), (cx + 35, h), (130, 160, 205), -1)  # neck
    cv2.ellipse(image, (cx, cy - 20), (85, 100), 0, 180, 360, (40, 50, 70), -1)  # hair
    cv2.ellipse(image, (cx, cy), (75, 100), 0, 0, 360, (150, 180, 225), -1)  # skin
    for dx in (-30, 30):
        cv2.ellipse(image, (cx + dx, cy - 20), (14, 7), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(image, (cx + dx, cy - 20), 5, (60, 40, 30), -1)
        cv2.circle(image, (cx + dx, cy - 20), 2, (0, 0, 0), -1)
        cv2.ellipse(image, (cx + dx, cy - 38), (16, 4), 0, 180, 360, (40, 50, 70), 3)  # brow
    nose = np.array([[cx, cy - 15], [cx - 10, cy + 18], [cx + 10, cy + 18]], np.int32)
    cv2.polylines(image, [nose], False, (110, 140, 190), 2)
    cv2.ellipse(image, (cx, cy + 18), (12, 5), 0, 0, 180, (110, 140, 190), 2)
    gap = int(round(2 + 14 * mouth_opening(t)))
    cv2.ellipse(image, (cx, int(my)), (MOUTH_WIDTH // 2, gap + 4), 0, 0, 360, (90, 90, 190), -1)  # lips
    cv2.ellipse(image, (cx, int(my)), (MOUTH_WIDTH // 2 - 6, gap), 0, 0, 360, (40, 30, 80), -1)
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def write_face_clip(path: str | Path, seconds: float = 3.0, fps: float = CLIP_FPS) -> Path:
    """Write the cartoon-face clip to `path` (.mp4: mp4v, .avi: MJPG). Raises OSError if it cannot."""
    path = Path(path)
    h, w = CLIP_SIZE
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}: OpenCV has no {path.suffix} encoder here")
    for i in range(int(round(seconds * fps))):
        writer.write(draw_face(i / fps))
    writer.release()
    return path
