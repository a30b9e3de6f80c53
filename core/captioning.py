"""Offline captioning of whole files, and its evaluation: error rates, one clip decoded every way.

`caption_video` captions a video file through `iter_captions` (`core/streaming.py`), not paced and
with the model in the calling thread, by default in whole utterances (`core/utterances.py`).
`evaluate_clip` runs the front end once, then the model on the whole clip (as in training), the
stream in whole utterances (what `caption_video` does) and the live stitching path on the same
crops (its words as they were first made final, and after each utterance's revision), so the
results differ only in how they decode.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.decoding import make_decoder
from core.engine import CaptionEngine
from core.frontend import extract_clip
from core.picking import LOST, FaceChoice
from core.revision import WordLog
from core.streaming import CaptionStream, CaptionWord, iter_captions
from core.types import Frame, LipCrop, TrackStatus
from core.video import VideoError, VideoFileSource

# whole clip greedy, whole clip default decoder, stream in whole utterances (caption_video), live
# windows (each word as it was first made final), live windows after each utterance's revision
METHODS = ("greedy", "default", "utterances", "stream", "revised")
# seconds with more than one face in view before caption_video says which it read: a face counted
# for a frame or two (a passer-by, a detector's slip) is not worth a warning
CROWD_SECONDS = 0.5
# seconds shorter than the shortest spoken word (GRID's "a" and "at" take 0.2-0.3 s): a reading of
# no word in a video, or with a face in view, for less than this is put down to that (why_unread)
WORD_SECONDS = 0.2
# a reading of no word with a face in fewer of its frames than this is put down to that
FEW_FACES = 0.5
# fewest clips over which `lipreader eval` gives the WER's resampled range (wer_interval): with
# fewer, resampling them says little
INTERVAL_CLIPS = 10
RESAMPLE_BLOCK = 1000  # resamplings drawn at once by wer_interval

# what is said of a picture the front end turned upright (core.orientation)
UPSIDE_DOWN = "the picture is upside down (no rotation metadata?): it was turned upright to read the lips"

log = logging.getLogger("lipreader")


class Cancelled(Exception):
    """caption_video was cancelled by its progress callback."""


@dataclass(frozen=True)
class Transcript:
    """The captions of a whole video."""

    text: str  # the words joined by spaces
    words: tuple[CaptionWord, ...]  # every word, final, timed in seconds of the file as players play it
    provider: str  # the ONNX Runtime provider that ran the model
    seconds: float  # processing time
    duration: float  # seconds of video processed
    face_ratio: float  # fraction of frames where the face was found
    warnings: tuple[str, ...] = ()  # what the user should know about this reading (also logged)
    unread: str = ""  # when no word was read: why, as far as can be told (why_unread); else ""


def caption_video(
    path: str | Path,
    engine: CaptionEngine,
    progress: Callable[[float, float], bool] | None = None,
    landmarker_path: str | Path | None = None,
    face: tuple[float, float] | None = None,
    strict_face: bool = True,
) -> Transcript:
    """Caption a video file (not paced: as fast as it runs; the model runs in the calling thread, so
    the result does not depend on timing). Each utterance is decoded whole when it closes, unless
    the engine's `whole_utterances` option is False: then through the live windows, each utterance's
    words replaced by its revision (decoded whole as well) unless the `revise` option is False.

    progress(done_seconds, total_seconds) is called per frame; returning False cancels (raises
    Cancelled). face: read the face at this point of the first frame with a face, not the largest
    (core.picking): (x, y), pixels of the picture as a player shows it (an upside-down picture turned
    upright to be read has the face at (W - x, H - y)); when no face is there, raise (strict_face) or
    read the largest with a warning. Raises VideoError for unreadable files, for videos where no face is
    ever found, and for files cut short (ending before their declared duration) where a face but no
    word was read; one cut short with words read gets a warning. A reading of no word says why it may
    be (Transcript.unread).
    """
    t0 = time.perf_counter()
    source = VideoFileSource(path, warn_truncated=False)
    total, delay = source.duration, source.delay  # times told a user are the file's: frames' + delay
    words = WordLog()
    frames = tracked = 0
    whole = engine.offline_whole_utterances
    choice, warnings, turned = None, [], False
    most, first, crowded = 1, 0.0, 0  # most faces in a frame; when first more than one; frames with more
    seen: float | None = None  # when the picked face was last in view (seconds, the end of its frame)
    if face is not None:
        choice = FaceChoice()
        choice.pick(*face)
    for update in iter_captions(
        source,
        engine,
        landmarker_path,
        background=False,
        whole_utterances=whole,
        face_choice=choice,
    ):
        words.add(update)
        if update.frame.turned and not turned:
            turned = True
            warnings.append(f"video {path}: {UPSIDE_DOWN}")
            log.warning("%s", warnings[-1])
        if update.crop.landmarks is not None and update.crop.landmarks.chosen:
            seen = delay + update.frame.timestamp + 1 / engine.fps  # the picked face was in view until then
        ended = choice.take_ended() if choice is not None else None
        if ended is not None:
            at = f"({face[0]:.0f}, {face[1]:.0f})"
            height, width = update.frame.image.shape[:2]
            if not (0 <= face[0] < width and 0 <= face[1] < height):
                at += f", outside the {width}x{height} frame,"
            if ended != LOST and strict_face:
                raise VideoError(f"cannot caption video {path}: no face at {at.rstrip(',')}")
            when = "left the view" if ended == LOST else "was not found"
            gone = seen if ended == LOST and seen is not None else delay + update.frame.timestamp
            at_time = f"{gone:.1f} s"
            warnings.append(
                f"video {path}: the face at {at} {when} at {at_time}: read the largest face from then on"
            )
            log.warning("%s", warnings[-1])
        if update.frame.index >= frames:  # the closing update repeats the last frame
            frames = update.frame.index + 1
            tracked += update.crop.status == TrackStatus.TRACKED
            if update.num_faces > 1:
                first = first if crowded else delay + update.frame.timestamp
                most, crowded = max(most, update.num_faces), crowded + 1
        if progress is not None and progress(update.frame.timestamp, total) is False:
            raise Cancelled(f"captioning {path} was cancelled")
    if tracked == 0:  # whether or not the file was cut short: no face is the cause to name
        raise VideoError(f"cannot caption video {path}: no face found in {_frames(frames)}")
    if source.ended_early is not None and not words.words:
        raise VideoError(f"cannot caption video {path}: it {source.ended_early} and no word was read")
    if source.ended_early is not None:
        warnings.append(f"video {path} {source.ended_early}")
        log.warning("%s", warnings[-1])
    if crowded >= CROWD_SECONDS * engine.fps and face is None:
        warnings.append(
            f"video {path}: up to {most} faces in view (first at {first:.1f} s, {crowded / engine.fps:.1f} s "
            "in all): read the largest; --face X,Y (or a click in the app) reads another"
        )
        log.warning("%s", warnings[-1])
    return Transcript(
        " ".join(w.text for w in words.words),
        tuple(dataclasses.replace(w, start=delay + w.start, end=delay + w.end) for w in words.words),
        engine.provider,
        time.perf_counter() - t0,
        frames / engine.fps,
        tracked / frames,
        tuple(warnings),
        "" if words.words else why_unread(frames, tracked, engine.fps),
    )


def why_unread(frames: int, tracked: int, fps: float) -> str:
    """Why a reading of `frames` frames, the face found on `tracked` of them, read no word, as far as
    can be told."""
    if frames / fps < WORD_SECONDS:
        return "the video is shorter than a spoken word"
    if tracked / fps < WORD_SECONDS:
        return f"a face was in view for only {tracked / fps:.2f} s"
    if tracked < FEW_FACES * frames:
        return f"a face was in view for {tracked / fps:.2f} s ({tracked / frames:.0%} of the frames)"
    return "the mouth did not move, or the model could not read it"


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


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
    word_edits, words = word_errors(hyps, refs)
    return char_edits / max(1, sum(len(r) for r in refs)), float(word_edits.sum() / max(1, words.sum()))


def word_errors(hyps: Sequence[str], refs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: (word edits, reference words), int arrays of shape (N,)."""
    edits = [edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True)]
    return np.array(edits, int), np.array([len(r.split()) for r in refs], int)


def wer_interval(
    edits: np.ndarray, words: np.ndarray, level: float = 0.95, draws: int = 20_000, seed: int = 0
) -> tuple[float, float]:
    """The `level` percentile interval of the corpus WER over `draws` resamplings of the clips with
    replacement (per clip word edits and reference words, as word_errors gives them): how far the
    figure could move on another set of clips like these. Seeded: the same clips, the same interval."""
    rng, rates = np.random.default_rng(seed), []
    for start in range(0, draws, RESAMPLE_BLOCK):  # in blocks: memory stays bounded for many clips
        picks = rng.integers(0, len(words), size=(min(RESAMPLE_BLOCK, draws - start), len(words)))
        rates.append(edits[picks].sum(axis=1) / np.maximum(1, words[picks].sum(axis=1)))
    rates = np.concatenate(rates)
    tail = (1 - level) / 2
    return float(np.quantile(rates, tail)), float(np.quantile(rates, 1 - tail))


@dataclass(frozen=True)
class ClipResult:
    """The hypotheses for one clip, by method (see METHODS)."""

    video: Path
    greedy: str
    default: str
    utterances: str  # "" when the engine's option turns whole utterances off
    stream: str
    revised: str  # the stream's words after each utterance's revision (as stream without revisions)
    face_ratio: float

    def text(self, method: str) -> str:
        return getattr(self, method)


def stream_crops(
    engine: CaptionEngine,
    crops: np.ndarray,
    lip_points: np.ndarray,
    status: np.ndarray,
    whole_utterances: bool = False,
) -> tuple[str, str]:
    """The stream's final text for a clip's crops (T, H, W), points (T, 40, 2|3), status (T,), in live
    windows or (with whole_utterances) in whole utterances: (each word as it was first made final,
    the words after each utterance's revision); the same without revisions."""
    stream = CaptionStream(engine, background=False, whole_utterances=whole_utterances)
    log = WordLog()
    blank = np.zeros((1, 1, 3), np.uint8)
    no_transform = np.zeros((2, 3))
    for i, (image, points, st) in enumerate(zip(crops, lip_points, status, strict=True)):
        t = i / engine.fps
        crop = LipCrop(i, t, image, points, no_transform, TrackStatus(int(st)))
        log.add(stream.push(Frame(i, t, blank), crop))
    closing = stream.finish()
    if closing is not None:
        log.add(closing)
    return " ".join(w.text for w in log.live), " ".join(w.text for w in log.words)


def evaluate_clip(
    path: str | Path,
    engine: CaptionEngine,
    landmarker_path: str | Path | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> ClipResult:
    """Decode one clip, the seconds [start, end) of the video (end None: to its end), in every way
    of METHODS. Raises VideoError when unreadable or when no face is found."""
    c = engine.contract
    landmarker = str(landmarker_path) if landmarker_path else None
    every = engine.options.landmark_every
    clip = extract_clip(path, c.crop, c.fps, landmarker, start, end, landmark_every=every)
    if clip.face_ratio == 0:
        raise VideoError(f"cannot evaluate video {path}: no face found in {_frames(len(clip.status))}")
    log_probs = engine.model(clip.crops, clip.lip_points)
    greedy = make_decoder(c.vocabulary, c.blank, c.decoder, kind="greedy")
    utterances = ""
    if engine.offline_whole_utterances:
        utterances = stream_crops(engine, clip.crops, clip.lip_points, clip.status, whole_utterances=True)[0]
    return ClipResult(
        Path(path),
        " ".join(w.text for w in greedy.decode(log_probs)),
        " ".join(w.text for w in engine.decoder.decode(log_probs)),
        utterances,
        *stream_crops(engine, clip.crops, clip.lip_points, clip.status),
        clip.face_ratio,
    )
