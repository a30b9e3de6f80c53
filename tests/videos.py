"""Generated test videos (nothing is downloaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: float, lossless: bool = False) -> Path:
    """Write BGR frames to an .mp4 (mp4v) or .avi (MJPG, or FFV1 when `lossless`: read back exactly
    as written) file."""
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix != ".avi" else "FFV1" if lossless else "MJPG"))
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


def upside_down(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames turned over (180 degrees), as a phone video without its rotation metadata."""
    return [cv2.rotate(f, cv2.ROTATE_180) for f in frames]


def noise_frames(n: int, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[np.ndarray]:
    """Frames of smooth random colour blobs: no face anywhere."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (n, size[0] // 16, size[1] // 16, 3), dtype=np.uint8)
    return [cv2.resize(s, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for s in small]


def two_faces(grid_dir: Path, shift: int = 0, room: int = 40) -> tuple[np.ndarray, tuple[float, float]]:
    """A GRID face on the left of a grey frame and a copy at 0.6 scale on its right, `shift` px
    further right, `room` px of grey beyond it; and the small face's centre (x, y)."""
    image = read_frames(grid_dir / "video" / "bbaf2n.mp4", 20)[-1]
    small = cv2.resize(image, None, fx=0.6, fy=0.6)
    h, w = small.shape[:2]
    canvas = np.full((288, 360 + w + room, 3), 120, np.uint8)
    canvas[:, :360] = image
    canvas[:h, 360 + shift : 360 + shift + w] = small
    return canvas, (360 + shift + w / 2, h / 2)


def two_speakers(grid_dir: Path, left: str, right: str) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Frames of GRID clip `left` on the left and clip `right` at 0.6 scale on its right, both
    speaking; and the small face's centre (x, y)."""
    big, small = (
        read_frames(grid_dir / "video" / f"{left}.mp4"),
        read_frames(grid_dir / "video" / f"{right}.mp4"),
    )
    frames = []
    for a, b in zip(big, small, strict=False):
        b = cv2.resize(b, None, fx=0.6, fy=0.6)
        canvas = np.full((288, 360 + b.shape[1] + 40, 3), 120, np.uint8)
        canvas[:, :360] = a
        canvas[: b.shape[0], 360 : 360 + b.shape[1]] = b
        frames.append(canvas)
    h, w = frames[0].shape[0] * 0.6, 360 * 0.6
    return frames, (360 + w / 2, h / 2)


def mpeg_clip(clip: Path, path: Path) -> Path:
    """`clip` as MPEG-1 video with LPCM sound, both starting together, in an MPEG program stream
    (`path`: .mpg), as a program stream holds it (FFmpeg's holds no H.264)."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(clip), "-c:v", "mpeg1video", "-q:v", "2"]
        + ["-c:a", "pcm_s16be", str(path)],
        check=True,
        timeout=60,
    )
    return path


def late_video(clip: Path, path: Path, delay: float = 1.0, audio_codec: str = "aac") -> Path:
    """`clip`'s frames as a video track that starts `delay` seconds after a silent sound track, in
    the container `path`'s suffix names. (AAC in Matroska starts its sound with the encoder's
    priming samples, which moves the video ~23 ms later still: FLAC has none.)"""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=d=5", "-itsoffset", str(delay)]
        + ["-i", str(clip), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-c:a", audio_codec]
        + ["-t", "4", str(path)],
        check=True,
        timeout=60,
    )
    return path
