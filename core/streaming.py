"""Live captioning: frames -> lip crops -> sliding windows -> model -> stitched, decoded words.

`iter_captions(source, engine)` is the one generator behind the GUI's live view, the CLI, subtitle
export and the tests. It resamples the source to the model's frame rate, runs the front end on
each frame and yields one `LiveUpdate` per frame. `CaptionStream` holds the per-stream state
(window runner, stitcher, mouth activity) and can be fed crops directly, without MediaPipe.
With a model that ships its streaming encoder and head, each frame is encoded once and only the
head runs per window (`core/windows.py`). With `whole_utterances` (what `caption_video` in
`core/captioning.py` does by default) there are no windows: each utterance is run through the full
model and decoded whole when it closes (`core/utterances.py`), more accurate but with no word final
before its utterance ends. Live streams have both (`StreamOptions.revise`): words final early from
the windows, and when an utterance closes, the same utterance decoded whole, sent to replace them
(`LiveUpdate.revised`, decoded in the model's worker thread: it lands a few frames later and names
the utterance it replaces; `core.revision.WordLog` keeps a stream's words that way). The engine the
streams share and its `StreamOptions` are `core/engine.py`'s.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.decoding import DecodedWord
from core.engine import CaptionEngine, StreamOptions
from core.frontend import FrontEnd
from core.picking import FaceChoice
from core.revision import Reviser
from core.stitching import MouthActivity, Stitcher
from core.types import Frame, Idle, LipCrop, TrackStatus
from core.utterances import DecodedSpan, WholeUtterances
from core.video import resample
from core.windows import WindowJob, WindowOutput, WindowRunner

# with core/engine.py's engine and options, named here too: the API of a live stream in one place
__all__ = [
    "CaptionEngine",
    "CaptionStream",
    "CaptionWord",
    "LiveUpdate",
    "Revision",
    "StreamOptions",
    "iter_captions",
    "NO_MODEL_TIMES",
    "STILL_MOTION",
]

log = logging.getLogger("lipreader")

NO_MODEL_TIMES = {"model": 0.0, "encoder": 0.0, "head": 0.0}  # the timings of a frame where no window landed
# lip motion (crop widths per frame) below which the mouth counts as still, by CropSpec.follow_face: the
# followed face's points move less than every-frame detection's; each chosen on training clips (0.0026
# with follow-face crops cut "soon" off sentences: 2.44 % whole-utterance WER on 300 of them, 1.39 % at
# 0.0018, 1.33 % at 0.0015; the higher keeps a margin over noisier landmarks than GRID's)
STILL_MOTION = {False: 0.0026, True: 0.0018}


@dataclass(frozen=True)
class CaptionWord:
    """A captioned word, timed in seconds of the (resampled) stream."""

    text: str
    start: float
    end: float
    final: bool


@dataclass(frozen=True)
class Revision:
    """A closed utterance of a live stream decoded again whole: final words that replace its live ones."""

    utterance: int  # which utterance of the stream (LiveUpdate.utterance of its updates)
    words: tuple[CaptionWord, ...]


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
    probs: np.ndarray | None = field(repr=False)  # (T, C) probabilities of the window that landed
    # here (with whole utterances: of the utterance or chunk decoded here)
    timings: dict[str, float]  # ms per stage: "landmarks", "crop", "model" (of the window whose
    # result landed here; with a background model it ran in parallel with the frames) = "encoder"
    # + "head" (0 without the streaming split), "decode"; "revise" where revisions landed (the full
    # model's and the decoder's time for them; with a background model they ran in parallel)
    num_faces: int  # faces in view (0 when none)
    revised: tuple[Revision, ...] = ()  # live streams with StreamOptions.revise: closed utterances
    # decoded again whole, landed here (at their utterance_end without a background model, on a
    # later update with one; in order, each once). An utterance with no revision keeps its live words
    utterance: int = 0  # the stream's number (0, 1, ...) of the utterance this update's final words
    # belong to: at utterance_end, the one that closed here
    idle: bool = False  # no frame was processed (the source is paused): the last frame again, with
    # what the model's worker finished meanwhile (CaptionStream.poll)
    upside_down: bool | None = None  # the stream's picture is upside down (core.orientation), as
    # found by this update from faces (iter_captions); None while undecided, or taken as it is for want
    # of a face (core.orientation.Upright.known)


class CaptionStream:
    """The state of one live stream: push crops in frame order, get one LiveUpdate each.

    With `background` the model runs in a worker thread: the frame loop hands it a window and
    goes on; the result lands on a later update. A window that falls due while the previous one
    still runs waits until it is done (the hop stretches), so a slow model never stalls the frames.
    With `whole_utterances` (None: the engine's option, else no) each utterance is decoded whole
    when it closes, in the calling thread; updates then carry no partial words.
    """

    def __init__(
        self, engine: CaptionEngine, background: bool | None = None, whole_utterances: bool | None = None
    ) -> None:
        self.engine = engine
        o = engine.options
        self.windows = WindowRunner(engine.model, engine.window, o.split_model)
        self._since_run = 0  # frames pushed since the model last ran
        self._partial: tuple[CaptionWord, ...] = ()
        self._last: tuple[Frame, LipCrop] | None = None
        self.stitcher = Stitcher(
            engine.live_decoder,
            len(engine.vocabulary),
            o.final_margin,
            o.max_decode,
            o.word_pause,
            o.stable_frames,
            echo=engine.window,
        )
        self._quiet_since_close = False  # an utterance was closed by a still mouth, which has not moved since
        self._utterance = 0  # the number of the utterance in progress
        still = STILL_MOTION[engine.contract.crop.follow_face] if o.still_motion is None else o.still_motion
        self.activity = MouthActivity(engine.contract.crop.width, still, o.still_frames)
        background = o.background_model if background is None else background
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lipreader-model") if background else None
        self._job: tuple[Future, WindowJob, bool] | None = None  # (its WindowOutput, the run, right_open)
        whole = o.whole_utterances if whole_utterances is None else whole_utterances
        self.utterance = (
            WholeUtterances(engine.model, engine.decoder, self.activity, o.max_decode, engine.lead_in)
            if whole
            else None
        )
        # live: each utterance decoded again whole as well (core/revision.py), in the model's worker
        self.reviser = (
            Reviser(
                engine.model,
                engine.decoder,
                MouthActivity(engine.contract.crop.width, still, o.still_frames),
                o.max_decode,
                engine.lead_in,
                self._submit,
            )
            if o.revise and not whole
            else None
        )

    def _words(self, words: Iterable[DecodedWord], final: bool) -> tuple[CaptionWord, ...]:
        fps = self.engine.fps
        return tuple(CaptionWord(w.text, w.start / fps, w.end / fps, final) for w in words)

    def _decoded(
        self, span: DecodedSpan | None, timings: dict[str, float]
    ) -> tuple[tuple[CaptionWord, ...], np.ndarray | None]:
        """The final words and (T, C) probabilities of a whole utterance (or chunk) decoded here;
        its timings go into `timings`."""
        if span is None:
            return (), None
        timings.update(span.timings)
        return self._words(span.words, final=True), np.exp(span.log_probs)

    def _revisions(self, sealed: bool, timings: dict[str, float], wait: bool = False) -> tuple[Revision, ...]:
        """The revisions that landed here (with `wait`: every one still to come, once done).
        `sealed`: an utterance closed here with a revision to come. The revisions' model and decoder
        time goes into `timings` as "revise"."""
        if self.reviser is None:
            return ()
        if sealed:
            self.reviser.seal(self._utterance)
        landed = self.reviser.ready(wait)
        if landed:
            timings["revise"] = sum(r.ms for r in landed)
        return tuple(Revision(r.utterance, self._words(r.words, final=True)) for r in landed)

    def _submit(self, run: Callable[[], DecodedSpan]) -> Future:
        """Run a revision's decode in the model's worker (in the calling thread without one, or once
        it is closed)."""
        if self._pool is not None:
            return self._pool.submit(run)
        done: Future = Future()
        done.set_result(run())
        return done

    def _merge(self, output: WindowOutput, right_open: bool) -> tuple[np.ndarray, dict[str, float]]:
        job = output.job
        self.windows.merge(output)
        self.stitcher.add_window(job.start, output.log_probs, job.start > self.windows.run_start, right_open)
        return output.log_probs, output.timings

    def _launch(self, right_open: bool, wait: bool) -> tuple[np.ndarray, dict[str, float]] | None:
        """Run the model on the window ending at the newest frame (in the background unless `wait`);
        returns the merged (T, C) log-probs and the run's timings when it ran here."""
        job: WindowJob = self.windows.job()
        self._since_run = 0
        if self._pool is None or wait:
            return self._merge(self.windows.run(job), right_open)
        self._job = (self._pool.submit(self.windows.run, job), job, right_open)
        return None

    def _collect(self, wait: bool) -> tuple[np.ndarray, dict[str, float]] | None:
        """Merge the background window's result if it is ready (or, with `wait`, once it is: a
        window still queued behind a revision in the worker runs here instead, so that the frame
        loop never waits for a revision)."""
        if self._job is None or not (wait or self._job[0].done()):
            return None
        future, job, right_open = self._job
        self._job = None
        return self._merge(self.windows.run(job) if future.cancel() else future.result(), right_open)

    def _close(self, right_open: bool) -> tuple[CaptionWord, ...]:
        """End the utterance at the newest buffered frame, after the model has seen every frame up
        to it; `right_open`: the stream goes on after it (not a lost face or the end)."""
        self._collect(wait=True)
        if self._since_run and len(self.windows):
            self._launch(right_open, wait=True)
        self._partial = ()
        return self._words(self.stitcher.close(), final=True)

    def push(self, frame: Frame, crop: LipCrop, timings: dict[str, float] | None = None) -> LiveUpdate:
        """Process one frame (in order) and its crop."""
        timings = {"landmarks": 0.0, "crop": 0.0, **(timings or {}), **NO_MODEL_TIMES, "decode": 0.0}
        final: tuple[CaptionWord, ...] = ()
        probs, closed, sealed = None, False, False
        if self.utterance is not None:  # whole utterances: what was decoded here, all final
            span, closed = self.utterance.push(frame.index, crop)
            final, probs = self._decoded(span, timings)
        else:
            final, probs, closed = self._live(frame, crop, timings)
            if self.reviser is not None:
                # the two detectors close on the same frames, but a lost face closes the live
                # windows only when they held words or a moving mouth
                sealed = self.reviser.push(frame.index, crop)
                closed |= sealed
        self._last = (frame, crop)
        return self._update(frame, crop, final, self._partial, closed, probs, timings, sealed)

    def _update(
        self,
        frame: Frame,
        crop: LipCrop,
        final: tuple[CaptionWord, ...],
        partial: tuple[CaptionWord, ...],
        closed: bool,
        probs: np.ndarray | None,
        timings: dict[str, float],
        sealed: bool,
        wait: bool = False,
        idle: bool = False,
    ) -> LiveUpdate:
        """The update of one frame (`idle`: of none, the source paused), with the revisions that
        landed here; numbers the utterances."""
        faces = crop.landmarks.num_faces if crop.landmarks is not None else 0
        revised = self._revisions(sealed, timings, wait)
        number = self._utterance
        self._utterance += closed
        return LiveUpdate(frame, crop, final, partial, closed, probs, timings, faces, revised, number, idle)

    def _live(
        self, frame: Frame, crop: LipCrop, timings: dict[str, float]
    ) -> tuple[tuple[CaptionWord, ...], np.ndarray | None, bool]:
        """The live windows' part of `push`: (words final here, probabilities of a window that
        landed here or None, an utterance closed here)."""
        final: tuple[CaptionWord, ...] = ()
        probs, closed = None, False
        if crop.status == TrackStatus.MISSING:  # the face was lost
            final, closed = self._face_gone(frame.index + 1)
        else:
            if crop.switched and len(self.windows):  # another face read from here
                final, closed = self._face_gone(frame.index)
            if not len(self.windows):
                self.windows.reset(frame.index)
                self.stitcher.restart(frame.index)
            self.windows.append(crop.image, crop.lip_points)
            self._since_run += 1
            still = self.activity(crop.lip_points)
            if self.activity.active:
                self._quiet_since_close = False
            landed = self._collect(wait=False)
            if self._since_run >= self.engine.hop and self._job is None:
                landed = self._launch(right_open=True, wait=False) or landed
            if landed is not None:
                words, probs = self._step(landed, timings)
                final += words
            if still:
                t0 = time.perf_counter()
                final += self._close(right_open=True)
                timings["decode"] += (time.perf_counter() - t0) * 1000
                closed = True
                self._quiet_since_close = True
        return final, probs, closed

    def _step(
        self, landed: tuple[np.ndarray, dict[str, float]], timings: dict[str, float]
    ) -> tuple[tuple[CaptionWord, ...], np.ndarray]:
        """Decode the stitched windows once a window `landed` (its merged log-probs and timings):
        the words final here and the window's probabilities; the partial words are kept."""
        t0 = time.perf_counter()
        result = self.stitcher.step()
        timings.update(landed[1])
        timings["decode"] = (time.perf_counter() - t0) * 1000
        self._partial = self._words(result.partial, final=False)
        return self._words(result.final, final=True), np.exp(landed[0])

    def poll(self) -> LiveUpdate | None:
        """While the source waits (paused): what the model's worker finished since the last update
        (a window's words, sentences read again whole) on an `idle` update repeating the last frame;
        None when it finished nothing."""
        if self._last is None or self._pool is None:
            return None
        timings = {"landmarks": 0.0, "crop": 0.0, **NO_MODEL_TIMES, "decode": 0.0}
        landed = self._collect(wait=False) if self.utterance is None else None
        final, probs = self._step(landed, timings) if landed is not None else ((), None)
        frame, crop = self._last
        update = self._update(frame, crop, final, self._partial, False, probs, timings, False, idle=True)
        return update if final or probs is not None or update.revised else None

    def _face_gone(self, start: int) -> tuple[tuple[CaptionWord, ...], bool]:
        """The face read is gone (lost, or another one read from now on): whatever it said is over.
        Returns (the words final here, an utterance closed); the windows start again at frame `start`."""
        final, closed = (), False
        if len(self.windows):
            final = self._close(right_open=False)
            closed = bool(final) or self.activity.active
        self.windows.reset(start)
        self._since_run = 0
        self.activity.reset()
        self.stitcher.restart(start)
        return final, closed

    def finish(self) -> LiveUpdate | None:
        """At the end of the source: everything still pending becomes final.

        Returns one closing update repeating the last frame (None if nothing was pushed).
        """
        try:
            if self._last is None:
                return None
            frame, crop = self._last
            t0 = time.perf_counter()
            timings = {"landmarks": 0.0, "crop": 0.0, **NO_MODEL_TIMES, "decode": 0.0}
            sealed = False
            if self.utterance is not None:
                span = self.utterance.finish()
                (final, probs), pending = self._decoded(span, timings), span is not None
            else:
                # after a still mouth closed the last utterance, frames where it never moved again
                # are silence: decoding them would only read the last word's tail a second time
                pending, probs = bool(len(self.windows)), None
                final = self._close(right_open=False) if pending and not self._quiet_since_close else ()
                timings["decode"] = (time.perf_counter() - t0) * 1000
                sealed = self.reviser is not None and self.reviser.finish()
                pending |= sealed
            return self._update(frame, crop, final, (), pending, probs, timings, sealed, wait=True)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background worker (pushing afterwards runs the model in the calling thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _not_switched(crop: LipCrop) -> LipCrop:
    """`crop`, its face not marked as one read since the face to read changed (FaceLandmarks.switched)."""
    if not crop.switched:
        return crop
    return dataclasses.replace(crop, landmarks=dataclasses.replace(crop.landmarks, switched=False))


def iter_captions(
    source: Iterable[Frame | Idle],
    engine: CaptionEngine,
    landmarker_path: str | Path | None = None,
    *,
    background: bool | None = None,
    whole_utterances: bool | None = None,
    face_choice: FaceChoice | None = None,
    turned: bool | None = None,
) -> Iterator[LiveUpdate]:
    """Live captions of a frame source: one LiveUpdate per frame of the source resampled to the
    model's fps, then one closing update (repeating the last frame) that finalises every word. While
    a paused source yields IDLE, an `idle` update carries what the model's worker finished meanwhile.

    A resampled frame that repeats the previous image (a slower source, or frames a camera dropped
    while the pipeline was busy) reuses the previous crop instead of running the front end again,
    so a pipeline that fell behind catches up instead of falling further behind. background:
    run the model in a worker thread (None: the engine's `background_model` option);
    whole_utterances: decode each utterance whole when it closes (None: the engine's option, else no);
    face_choice: the face the user picked when several are in view (None: the largest); turned:
    the picture is upside down (None: found from its first frames with a face, core.orientation,
    which wait until it is: their updates come 2 frames late; each update says what was found,
    LiveUpdate.upside_down).
    """
    stream = CaptionStream(engine, background, whole_utterances)
    try:
        with FrontEnd(
            engine.contract.crop,
            str(landmarker_path) if landmarker_path else None,
            engine.options.landmark_every,
            face_choice,
            turned,
        ) as front:
            upright = front.upright

            def decided(update: LiveUpdate) -> LiveUpdate:
                """`update` with the way up found so far from faces (a new stream of the file need not
                probe); None while not found, or taken as it is for want of a face."""
                return dataclasses.replace(update, upside_down=upright.turned if upright.known else None)

            previous: tuple[np.ndarray, LipCrop] | None = None
            # the update carries the picture as read: turned upright when need be, the first frames
            # with a face held back until that is known (core.orientation)
            for frame in upright.frames(resample(source, engine.fps)):
                if isinstance(frame, Idle):  # a paused source: what the model finished meanwhile
                    if (update := stream.poll()) is not None:
                        yield decided(update)
                    continue
                if previous is not None and frame.image is previous[0]:
                    crop = dataclasses.replace(previous[1], index=frame.index, timestamp=frame.timestamp)
                    times = {"landmarks": 0.0, "crop": 0.0}
                else:
                    crop = front(frame)
                    times = {"landmarks": front.last_times.landmarks_ms, "crop": front.last_times.crop_ms}
                previous = (frame.image, _not_switched(crop))  # a repeat is the same face, not a new one
                yield decided(stream.push(frame, crop, times))
            closing = stream.finish()
    finally:
        stream.close()
    if closing is not None:
        yield decided(closing)
