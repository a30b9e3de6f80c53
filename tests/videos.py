"""Generated test videos (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write BGR frames to an .mp4 (mp4v) or .avi (MJPG) file."""
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decoded BGR frames of a video."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def noise_frames(n: int, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[np.ndarray]:
    """Frames of smooth random colour blobs: no face anywhere."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (n, size[0] // 16, size[1] // 16, 3), dtype=np.uint8)
    return [cv2.resize(s, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for s in small]
