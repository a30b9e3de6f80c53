"""Offline evaluation: error rates, and one clip decoded whole (greedy and default) and streamed.

`evaluate_clip` runs the front end once, then the model on the whole clip (as in training), the
stream in whole utterances (what `caption_video` does) and the live stitching path on the same
crops, so the results differ only in how they decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.decoding import make_decoder
from core.frontend import extract_clip
from core.streaming import CaptionEngine, CaptionStream
from core.types import Frame, LipCrop, TrackStatus
from core.video import VideoError

# whole clip greedy, whole clip default decoder, stream in whole utterances (caption_video), live windows
METHODS = ("greedy", "default", "utterances", "stream")


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rates(hyps: Sequence[str], refs: Sequence[str]) -> tuple[float, float]:
    """(CER, WER) over a corpus: total edits / total reference length."""
    char_edits = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
    word_edits = sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True))
    chars = max(1, sum(len(r) for r in refs))
    words = max(1, sum(len(r.split()) for r in refs))
    return char_edits / chars, word_edits / words


@dataclass(frozen=True)
class ClipResult:
    """The hypotheses for one clip, by method (see METHODS)."""

    video: Path
    greedy: str
    default: str
    utterances: str  # "" when the engine's option turns whole utterances off
    stream: str
    face_ratio: float

    def text(self, method: str) -> str:
        return getattr(self, method)


def stream_crops(
    engine: CaptionEngine,
    crops: np.ndarray,
    lip_points: np.ndarray,
    status: np.ndarray,
    whole_utterances: bool = False,
) -> str:
    """The stream's final text for a clip's crops (T, H, W), points (T, 40, 2), status (T,), in live
    windows or (with whole_utterances) in whole utterances."""
    stream = CaptionStream(engine, background=False, whole_utterances=whole_utterances)
    words = []
    blank = np.zeros((1, 1, 3), np.uint8)
    no_transform = np.zeros((2, 3))
    for i, (image, points, st) in enumerate(zip(crops, lip_points, status, strict=True)):
        t = i / engine.fps
        crop = LipCrop(i, t, image, points, no_transform, TrackStatus(int(st)))
        words += stream.push(Frame(i, t, blank), crop).final
    closing = stream.finish()
    if closing is not None:
        words += closing.final
    return " ".join(w.text for w in words)


def evaluate_clip(
    path: str | Path,
    engine: CaptionEngine,
    landmarker_path: str | Path | None = None,
) -> ClipResult:
    """Decode one clip in every way of METHODS. Raises VideoError when unreadable or when no face is
    found."""
    c = engine.contract
    landmarker = str(landmarker_path) if landmarker_path else None
    clip = extract_clip(path, c.crop, c.fps, landmarker, landmark_every=engine.options.landmark_every)
    if clip.face_ratio == 0:
        raise VideoError(f"cannot evaluate video {path}: no face found in {len(clip.status)} frames")
    log_probs = engine.model(clip.crops, clip.lip_points)
    greedy = make_decoder(c.vocabulary, c.blank, c.decoder, kind="greedy")
    utterances = ""
    if engine.offline_whole_utterances:
        utterances = stream_crops(engine, clip.crops, clip.lip_points, clip.status, whole_utterances=True)
    return ClipResult(
        Path(path),
        " ".join(w.text for w in greedy.decode(log_probs)),
        " ".join(w.text for w in engine.decoder.decode(log_probs)),
        utterances,
        stream_crops(engine, clip.crops, clip.lip_points, clip.status),
        clip.face_ratio,
    )
