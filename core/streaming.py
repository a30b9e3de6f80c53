"""Live captioning: frames -> lip crops -> sliding windows -> model -> stitched, decoded words.

`iter_captions(source, engine)` is the one generator behind the GUI's live view, the CLI, subtitle
export and the tests. It resamples the source to the model's frame rate, runs the front end on
each frame and yields one `LiveUpdate` per frame. `CaptionStream` holds the per-stream state
(ring buffer, stitcher, mouth activity) and can be fed crops directly, without MediaPipe.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.decoding import KINDS, DecodedWord, make_decoder
from core.frontend import FrontEnd
from core.inference import LipModel
from core.stitching import MouthActivity, Stitcher
from core.types import Frame, LipCrop, TrackStatus
from core.video import VideoError, VideoFileSource, resample

log = logging.getLogger("lipreader")


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is windowed, decoded and cut into utterances; None means the model's value."""

    window: int | None = None  # frames per model window (None: the contract's window)
    hop: int | None = None  # frames between model runs (None: the contract's hop)
    decoder: str | None = None  # "greedy", "beam", "lexicon" or "grammar" (None: the contract's)
    beam_width: int | None = None  # beams kept by beam decoders (None: the contract's)
    lm: str | None = None  # path of an ARPA/KenLM word LM replacing the contract's (lexicon, grammar)
    final_margin: int = 3  # frames at a window's right edge too unreliable to finalise a word on
    word_pause: int = 8  # frames of silence that complete a word when the model shows no separator
    still_motion: float = 0.0026  # lip motion (crop widths per frame) below which the mouth is still
    still_frames: int = 8  # still frames after speech that close an utterance
    max_decode: int | None = None  # most frames decoded at once (None: 4 windows)
    background_model: bool = True  # run the model in a worker thread so frames never wait for it


def _verify_options(options: StreamOptions) -> StreamOptions:
    o = options
    if o.window is not None and o.window < 2:
        raise ValueError(f"window must be at least 2 frames, not {o.window}")
    if o.hop is not None and o.hop < 1:
        raise ValueError(f"hop must be positive, not {o.hop}")
    if o.decoder is not None and o.decoder not in KINDS:
        raise ValueError(f"unknown decoder {o.decoder!r}: choose one of {', '.join(KINDS)}")
    if o.beam_width is not None and o.beam_width < 1:
        raise ValueError(f"beam width must be positive, not {o.beam_width}")
    if o.final_margin < 0 or o.still_frames < 1 or o.still_motion < 0 or o.word_pause < 1:
        raise ValueError("final_margin and still_motion must be >= 0, still_frames and word_pause >= 1")
    if o.max_decode is not None and o.max_decode < 1:
        raise ValueError(f"max_decode must be positive, not {o.max_decode}")
    if o.lm is not None and not Path(o.lm).is_file():
        raise ValueError(f"language model {o.lm} does not exist")
    return o


@dataclass(frozen=True)
class CaptionWord:
    """A captioned word, timed in seconds of the (resampled) stream."""

    text: str
    start: float
    end: float
    final: bool


@dataclass(frozen=True)
class LiveUpdate:
    """What happened at one processed frame of the resampled stream.

    After the last frame one closing update repeats it, with every pending word final.
    """

    frame: Frame  # the frame processed
    crop: LipCrop  # the crop the model saw (crop.landmarks has the 478 points when tracked)
    final: tuple[CaptionWord, ...]  # words that became final with this update (only the new ones)
    partial: tuple[CaptionWord, ...]  # the current unstable tail (replaces the previous partial)
    utterance_end: bool  # an utterance was closed at this frame (mouth went still / face lost)
    probs: np.ndarray | None = field(repr=False)  # (T, C) probabilities of the window that landed here
    timings: dict[str, float]  # ms per stage: "landmarks", "crop", "model" (of the window whose
    # result landed here; with a background model it ran in parallel with the frames), "decode"
    num_faces: int  # faces in view (0 when none)


class CaptionEngine:
    """A model, its decoder and the stream options: shared by the streams of one session.

    Several streams may use one engine at once (ONNX Runtime sessions are thread-safe; the decoder
    serialises its decodes).
    """

    def __init__(self, model: LipModel, options: StreamOptions | None = None) -> None:
        options = _verify_options(options or StreamOptions())
        c = model.contract
        self.model = model
        self.contract = c
        self.window = options.window or c.window
        self.hop = min(options.hop or c.hop, self.window)
        self.options = dataclasses.replace(
            options, window=self.window, hop=self.hop, max_decode=options.max_decode or 4 * self.window
        )
        self.decoder = make_decoder(
            c.vocabulary,
            c.blank,
            c.decoder,
            kind=options.decoder,
            beam_width=options.beam_width,
            lm_path=options.lm,
        )

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        provider: str = "auto",
        threads: int = 2,
        options: StreamOptions | None = None,
    ) -> CaptionEngine:
        """Load a model (see LipModel.load), warm it up, and build the engine."""
        model = LipModel.load(model_path, provider=provider, threads=threads)
        engine = cls(model, options)
        model.warm_up()
        return engine

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.contract.vocabulary

    @property
    def fps(self) -> float:
        return self.contract.fps

    @property
    def provider(self) -> str:
        return self.model.provider


class CaptionStream:
    """The state of one live stream: push crops in frame order, get one LiveUpdate each.

    With `background` the model runs in a worker thread: the frame loop hands it a window and
    goes on; the result lands on a later update. A window that falls due while the previous one
    still runs waits until it is done (the hop stretches), so a slow model never stalls the frames.
    """

    def __init__(self, engine: CaptionEngine, background: bool | None = None) -> None:
        self.engine = engine
        o = engine.options
        self._crops: deque[np.ndarray] = deque(maxlen=engine.window)
        self._points: deque[np.ndarray] = deque(maxlen=engine.window)
        self._context_start = 0  # first frame of the current run of frames with a face
        self._since_run = 0  # frames pushed since the model last ran
        self._partial: tuple[CaptionWord, ...] = ()
        self._last: tuple[Frame, LipCrop] | None = None
        self.stitcher = Stitcher(
            engine.decoder, len(engine.vocabulary), o.final_margin, o.max_decode, o.word_pause
        )
        self.activity = MouthActivity(engine.contract.crop.width, o.still_motion, o.still_frames)
        background = o.background_model if background is None else background
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lipreader-model") if background else None
        self._job: tuple[Future, int, bool, bool] | None = None  # (result, start, left_open, right_open)

    def _words(self, words: Iterable[DecodedWord], final: bool) -> tuple[CaptionWord, ...]:
        fps = self.engine.fps
        return tuple(CaptionWord(w.text, w.start / fps, w.end / fps, final) for w in words)

    def _infer(self, crops: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        log_probs = self.engine.model(crops, points)
        return log_probs, (time.perf_counter() - t0) * 1000

    def _launch(self, newest: int, right_open: bool, wait: bool) -> tuple[np.ndarray, float] | None:
        """Run the model on the buffered frames ending at frame `newest` (in the background unless
        `wait`); returns the merged (T, C) log-probs and the ms it took when it ran here."""
        crops, points = np.stack(self._crops), np.stack(self._points)
        start = newest - len(crops) + 1
        self._since_run = 0
        if self._pool is None or wait:
            log_probs, ms = self._infer(crops, points)
            self.stitcher.add_window(start, log_probs, start > self._context_start, right_open)
            return log_probs, ms
        self._job = (
            self._pool.submit(self._infer, crops, points),
            start,
            start > self._context_start,
            right_open,
        )
        return None

    def _collect(self, wait: bool) -> tuple[np.ndarray, float] | None:
        """Merge the background window's result if it is ready (or, with `wait`, once it is)."""
        if self._job is None or not (wait or self._job[0].done()):
            return None
        future, start, left_open, right_open = self._job
        self._job = None
        log_probs, ms = future.result()
        self.stitcher.add_window(start, log_probs, left_open, right_open)
        return log_probs, ms

    def _close(self, newest: int, right_open: bool) -> tuple[CaptionWord, ...]:
        """End the utterance whose last buffered frame is `newest`, after the model has seen every
        frame up to it; `right_open`: the stream goes on after it (not a lost face or the end)."""
        self._collect(wait=True)
        if self._since_run and self._crops:
            self._launch(newest, right_open, wait=True)
        self._partial = ()
        return self._words(self.stitcher.close(), final=True)

    def push(self, frame: Frame, crop: LipCrop, timings: dict[str, float] | None = None) -> LiveUpdate:
        """Process one frame (in order) and its crop."""
        timings = {"landmarks": 0.0, "crop": 0.0, **(timings or {}), "model": 0.0, "decode": 0.0}
        final: tuple[CaptionWord, ...] = ()
        probs, closed = None, False
        if crop.status == TrackStatus.MISSING:
            if self._crops:  # the face was lost: whatever was said is over
                final = self._close(self._last[0].index, right_open=False)
                closed = bool(final) or self.activity.active
            self._crops.clear()
            self._points.clear()
            self._since_run = 0
            self.activity.reset()
            self.stitcher.restart(frame.index + 1)
        else:
            if not self._crops:
                self._context_start = frame.index
                self.stitcher.restart(frame.index)
            self._crops.append(crop.image)
            self._points.append(crop.lip_points)
            self._since_run += 1
            still = self.activity(crop.lip_points)
            landed = self._collect(wait=False)
            if self._since_run >= self.engine.hop and self._job is None:
                landed = self._launch(frame.index, right_open=True, wait=False) or landed
            if landed is not None:
                t0 = time.perf_counter()
                result = self.stitcher.step()
                timings["model"], timings["decode"] = landed[1], (time.perf_counter() - t0) * 1000
                probs = np.exp(landed[0])
                final = self._words(result.final, final=True)
                self._partial = self._words(result.partial, final=False)
            if still:
                t0 = time.perf_counter()
                final += self._close(frame.index, right_open=True)
                timings["decode"] += (time.perf_counter() - t0) * 1000
                closed = True
        self._last = (frame, crop)
        faces = crop.landmarks.num_faces if crop.landmarks is not None else 0
        return LiveUpdate(frame, crop, final, self._partial, closed, probs, timings, faces)

    def finish(self) -> LiveUpdate | None:
        """At the end of the source: everything still pending becomes final.

        Returns one closing update repeating the last frame (None if nothing was pushed).
        """
        try:
            if self._last is None:
                return None
            frame, crop = self._last
            t0 = time.perf_counter()
            pending = bool(self._crops)
            final = self._close(frame.index, right_open=False) if pending else ()
            timings = {
                "landmarks": 0.0,
                "crop": 0.0,
                "model": 0.0,
                "decode": (time.perf_counter() - t0) * 1000,
            }
            faces = crop.landmarks.num_faces if crop.landmarks is not None else 0
            return LiveUpdate(frame, crop, final, (), pending, None, timings, faces)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background worker (pushing afterwards runs the model in the calling thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def iter_captions(
    source: Iterable[Frame],
    engine: CaptionEngine,
    landmarker_path: str | Path | None = None,
    *,
    background: bool | None = None,
) -> Iterator[LiveUpdate]:
    """Live captions of a frame source: one LiveUpdate per frame of the source resampled to the
    model's fps, then one closing update (repeating the last frame) that finalises every word.

    A resampled frame that repeats the previous image (a slower source, or frames a camera dropped
    while the pipeline was busy) reuses the previous crop instead of running the front end again,
    so a pipeline that fell behind catches up instead of falling further behind. background:
    run the model in a worker thread (None: the engine's `background_model` option).
    """
    stream = CaptionStream(engine, background)
    try:
        with FrontEnd(engine.contract.crop, str(landmarker_path) if landmarker_path else None) as front:
            previous: tuple[np.ndarray, LipCrop] | None = None
            for frame in resample(source, engine.fps):
                if previous is not None and frame.image is previous[0]:
                    crop = dataclasses.replace(previous[1], index=frame.index, timestamp=frame.timestamp)
                    times = {"landmarks": 0.0, "crop": 0.0}
                else:
                    crop = front(frame)
                    times = {"landmarks": front.last_times.landmarks_ms, "crop": front.last_times.crop_ms}
                previous = (frame.image, crop)
                yield stream.push(frame, crop, times)
            closing = stream.finish()
    finally:
        stream.close()
    if closing is not None:
        yield closing


class Cancelled(Exception):
    """caption_video was cancelled by its progress callback."""


@dataclass(frozen=True)
class Transcript:
    """The captions of a whole video."""

    text: str  # the words joined by spaces
    words: tuple[CaptionWord, ...]  # every word, final, timed in seconds
    provider: str  # the ONNX Runtime provider that ran the model
    seconds: float  # processing time
    duration: float  # seconds of video processed
    face_ratio: float  # fraction of frames where the face was found


def caption_video(
    path: str | Path,
    engine: CaptionEngine,
    progress: Callable[[float, float], bool] | None = None,
    landmarker_path: str | Path | None = None,
) -> Transcript:
    """Caption a video file with the live pipeline (not paced: as fast as it runs; the model runs
    in the calling thread, so the result does not depend on timing).

    progress(done_seconds, total_seconds) is called per frame; returning False cancels (raises
    Cancelled). Raises VideoError for unreadable files and for videos where no face is ever found.
    """
    t0 = time.perf_counter()
    source = VideoFileSource(path)
    total = source.duration
    words: list[CaptionWord] = []
    frames = tracked = 0
    for update in iter_captions(source, engine, landmarker_path, background=False):
        words.extend(update.final)
        if update.frame.index >= frames:  # the closing update repeats the last frame
            frames = update.frame.index + 1
            tracked += update.crop.status == TrackStatus.TRACKED
        if progress is not None and progress(update.frame.timestamp, total) is False:
            raise Cancelled(f"captioning {path} was cancelled")
    if tracked == 0:
        raise VideoError(f"cannot caption video {path}: no face found in {frames} frames")
    return Transcript(
        " ".join(w.text for w in words),
        tuple(words),
        engine.provider,
        time.perf_counter() - t0,
        frames / engine.fps,
        tracked / frames,
    )
