"""The live display state: what the panels show, fed by the stream worker, redrawn by a timer.

The worker's signals only store the latest update here (cheap); a QTimer at REDRAW_HZ emits
`changed` when something new arrived, and the panels redraw from the state. Once a second
`rates_changed` carries the frame rates and the mean latencies of that second.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

if TYPE_CHECKING:
    from core.streaming import CaptionWord, LiveUpdate, Revision
    from core.types import Frame, LipCrop

REDRAW_HZ = 60  # redraw timer rate; panels redraw only when a new update arrived (<= 1 per frame)
RATE_PERIOD_S = 1.0  # how often rates and latencies are averaged and reported
NO_FACE_FRAMES = 10  # consecutive frames without a face before "no face in view" is reported
FACE_FOUND_FRAMES = 10  # frames with a face before a stream counts as showing one (fewer: false detections)
STAGES = ("landmarks", "crop", "model", "decode")
MODEL_STAGES = ("model", "decode")  # these run once per hop, not per frame


@dataclass(frozen=True)
class Delivered:
    """One LiveUpdate as the stream worker hands it to the GUI thread."""

    update: LiveUpdate
    captured: float  # time.monotonic() when the frame was captured (or due, for a paced file)
    position: float  # seconds into the source (seek offset + the frame's stream timestamp)
    stream: int = 0  # which stream produced it; deliveries of a stopped stream are ignored


@dataclass(frozen=True)
class Rates:
    """Frame rates and mean latencies over the last RATE_PERIOD_S."""

    processed_fps: float  # updates received from the worker per second
    redraw_fps: float  # panel redraws per second
    lag_ms: float  # mean time from frame capture to its first redraw
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean ms per stage (model, decode: per run)


@dataclass(frozen=True)
class Utterance:
    """A finished utterance for the history list."""

    start: float  # seconds into the source
    end: float
    text: str
    words: tuple[CaptionWord, ...] = ()  # its words, timed in seconds into the source
    live_text: str = ""  # what the live view read before the utterance was read again, when that
    # reading differs ("" otherwise)


class LiveState(QObject):
    """Latest frame, crop, probabilities and the running transcript of the current stream."""

    changed = Signal()  # something new to draw (at most REDRAW_HZ times a second)
    rates_changed = Signal(object)  # Rates, once per RATE_PERIOD_S while a stream runs
    face_lost = Signal(bool)  # True when no face was seen for NO_FACE_FRAMES frames, False when back

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.vocabulary: tuple[str, ...] = ()
        self.blank = 0
        self.window = 0  # frames per model window of the current stream (0: unknown)
        self.reset()
        self._timer = QTimer(self)
        self._timer.setInterval(round(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    def reset(self, offset: float = 0.0, keep_history: bool = False) -> None:
        """Forget the current stream; `offset` is where in the source the next one starts (seconds).

        With `keep_history` past utterances stay (a seek within the same file).
        """
        history = list(getattr(self, "history", ())) if keep_history else []
        self.frame: Frame | None = None
        self.crop: LipCrop | None = None
        self.probs: np.ndarray | None = None  # (T, C) probabilities of the latest window
        self.num_faces = 0
        self.face_frames = 0  # frames of this stream in which a face was found
        self.position = offset  # seconds into the source of the latest frame
        self.offset = offset
        self.current: list[CaptionWord] = []  # final words of the utterance in progress
        self.partial: tuple[CaptionWord, ...] = ()
        self.history: list[Utterance] = history
        self._stream_start = len(history)  # where this stream's utterances begin in the history
        self._earlier = list(history)  # the history before this stream, whole (see _supersede)
        self._closed: dict[int, Utterance | None] = {}  # this stream's closed utterances by number
        # (None: nothing read), to be replaced by their revisions
        self.last_read: Utterance | None = None  # this stream's utterance closed last, as revised
        # (None: none yet, or it was read as nothing)
        self._last_number: int | None = None  # the stream's number of that utterance
        self.caption_version = getattr(self, "caption_version", 0) + 1  # bumped when the captions change
        self.probs_version = getattr(self, "probs_version", 0) + 1  # bumped when new probabilities arrive
        self.frames_processed = 0
        self.lags: deque[float] = deque(maxlen=10_000)  # ms, capture -> redraw, for the benchmark
        self._dirty = True  # the panels redraw what is left (the history, or nothing)
        self._pending_capture: float | None = None
        self._no_face_run = 0
        self._face_lost = False
        self._start_rate_window(time.monotonic())

    @property
    def caption_text(self) -> str:
        """The utterance in progress as plain text: its final words, then its partial ones."""
        return " ".join(w.text for w in [*self.current, *self.partial])

    def set_vocabulary(self, vocabulary: tuple[str, ...], blank: int) -> None:
        self.vocabulary, self.blank = tuple(vocabulary), blank

    # -- fed by the worker ----------------------------------------------------------------------
    def on_delivered(self, d: Delivered) -> None:
        """Store one update (called in the GUI thread for every processed frame)."""
        u = d.update
        self.frame, self.crop, self.num_faces, self.position = u.frame, u.crop, u.num_faces, d.position
        if u.probs is not None:
            self.probs = u.probs
            self.probs_version += 1
        if u.final or u.partial != self.partial:
            self.current.extend(u.final)
            self.partial = u.partial
            self.caption_version += 1
        if u.utterance_end:
            self._close_utterance(u.utterance)
        for revision in u.revised:
            self._revise(revision)
        self._dirty = True
        if u.idle:  # paused: no frame was processed, only what the model finished meanwhile
            return
        ran = u.probs is not None  # model and decoder times count for the frames where they ran
        for stage in STAGES:
            if stage in u.timings and (ran or stage not in MODEL_STAGES):
                self._window_stages[stage].append(u.timings[stage])
        self._track_face(u.num_faces)
        self.face_frames += u.num_faces > 0
        self.frames_processed += 1
        self._window_updates += 1
        if self._pending_capture is None:
            self._pending_capture = d.captured
        else:  # the previous frame was never drawn: measure lag from the newest one
            self._pending_capture = max(self._pending_capture, d.captured)

    def _close_utterance(self, number: int | None = None) -> None:
        """The utterance in progress (the stream's number `number`) joins the history."""
        words = [*self.current, *self.partial]
        entry = self._history_entry(words) if words else None
        if entry is not None:
            self.history.append(entry)
            self._supersede()
        if number is not None:
            self._closed[number] = entry
        self.last_read, self._last_number = entry, number
        self.current, self.partial = [], ()
        self.caption_version += 1

    def _revise(self, revision: Revision) -> None:
        """A closed utterance, read again whole, replaces its live reading in the history (it may
        land after later utterances closed)."""
        old = self._closed.get(revision.utterance)
        at = next((i for i, h in enumerate(self.history) if h is old), None) if old is not None else None
        if at is not None:
            del self.history[at]
        new = self._history_entry(list(revision.words), old.text if old else "") if revision.words else None
        if new is not None:
            if at is None:  # nothing was read live: it goes where its time puts it in this stream
                at = len(self.history)
                while at > self._stream_start and self.history[at - 1].start > new.start:
                    at -= 1
            self.history.insert(at, new)
        self._closed[revision.utterance] = new
        if revision.utterance == self._last_number:  # the one closed last was read again
            self.last_read = new
        self._supersede()  # a revision may span less than the live reading it replaces
        self.caption_version += 1

    def _supersede(self) -> None:
        """A stretch played again (a seek back, a replay) is read again: the lines of earlier
        passes lose their words within the spans of this stream's lines, and go if none is left,
        as in `words`. Made again from the lines as they were each time: a revision may give back
        what a live reading took."""
        spans = sorted((u.start, u.end) for u in self.history[self._stream_start :])
        starts = [start for start, _ in spans]
        reach = list(itertools.accumulate((end for _, end in spans), max))  # the furthest end so far

        def covered(w: CaptionWord) -> bool:  # a span that starts before the word ends, ends after it starts
            before = bisect.bisect_left(starts, w.end)
            return before > 0 and reach[before - 1] > w.start

        kept: list[Utterance] = []
        for old in self._earlier:
            words = [w for w in old.words if not covered(w)]
            if len(words) == len(old.words):
                kept.append(old)
            elif words:
                text = " ".join(w.text for w in words)
                kept.append(Utterance(words[0].start, words[-1].end, text, tuple(words)))
        self.history[: self._stream_start] = kept
        self._stream_start = len(kept)

    def _history_entry(self, words: list[CaptionWord], live_text: str = "") -> Utterance:
        """A history line of `words` (stream time); `live_text`: what the live view read before the
        utterance was read again."""
        text = " ".join(w.text for w in words)
        timed = tuple(self._in_source(words, final=True))
        return Utterance(timed[0].start, timed[-1].end, text, timed, "" if live_text == text else live_text)

    def _track_face(self, num_faces: int) -> None:
        self._no_face_run = self._no_face_run + 1 if num_faces == 0 else 0
        lost = self._no_face_run >= NO_FACE_FRAMES
        if lost != self._face_lost:
            self._face_lost = lost
            self.face_lost.emit(lost)

    def finish(self) -> None:
        """The stream ended: the utterance in progress joins the history, no face is tracked any
        more (the last frame stays, without landmarks) and no more rates are reported for it."""
        self._close_utterance()
        self.crop = None
        self._start_rate_window(time.monotonic())
        self._dirty = True

    # -- read by the panels ---------------------------------------------------------------------
    @property
    def face_found(self) -> bool:
        """Whether this stream showed a face (in FACE_FOUND_FRAMES frames or more; a stream shorter
        than that, in all but one of its frames)."""
        return self.face_frames >= min(FACE_FOUND_FRAMES, max(1, self.frames_processed - 1))

    def words(self) -> list[CaptionWord]:
        """Every word of the history, then of the utterance in progress (partial ones included),
        timed in seconds into the source: what *Save transcript…* writes. A stretch played twice
        (a seek back) keeps its latest reading: of an utterance, the words that overlap in time a
        later utterance's span are left out, the others are kept."""
        current = self._in_source([*self.current, *self.partial])
        spans = [list(u.words) for u in self.history]
        if current:
            spans.append(current)
        later: list[tuple[float, float]] = []  # spans (start, end) of the later utterances
        kept: list[CaptionWord] = []
        for words in reversed(spans):  # newest first
            kept += [w for w in words if not any(w.start < end and start < w.end for start, end in later)]
            if words:
                later.append((words[0].start, words[-1].end))
        return sorted(kept, key=lambda w: w.start)

    def _in_source(self, words: list[CaptionWord], **changes: object) -> list[CaptionWord]:
        """`words` of the stream timed in seconds into the source (and with `changes`)."""
        return [
            dataclasses.replace(w, start=self.offset + w.start, end=self.offset + w.end, **changes)
            for w in words
        ]

    def transcript(self) -> str:
        """Everything said so far: past utterances, then the current one (partial words included)."""
        parts = [u.text for u in self.history]
        current = " ".join(w.text for w in [*self.current, *self.partial])
        return " ".join(p for p in [*parts, current] if p)

    # -- the redraw clock -----------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = time.monotonic()
        if self._dirty:
            self._dirty = False
            self.changed.emit()
            self._window_redraws += 1
            if self._pending_capture is not None:
                lag = (time.monotonic() - self._pending_capture) * 1000
                self._window_lags.append(lag)
                self.lags.append(lag)
                self._pending_capture = None
        elapsed = now - self._window_start
        if elapsed >= RATE_PERIOD_S:
            if self._window_updates:  # a redraw alone (after the stream ended, a seek) is no rate
                self.rates_changed.emit(self._rates(elapsed))
            self._start_rate_window(now)

    def _start_rate_window(self, now: float) -> None:
        """Count rates and latencies afresh from `now` (time.monotonic())."""
        self._window_start = now
        self._window_updates = self._window_redraws = 0
        self._window_lags: list[float] = []
        self._window_stages: dict[str, list[float]] = {s: [] for s in STAGES}

    def _rates(self, elapsed: float) -> Rates:
        stages = {s: float(np.mean(v)) for s, v in self._window_stages.items() if v}
        lag = float(np.mean(self._window_lags)) if self._window_lags else float("nan")
        return Rates(self._window_updates / elapsed, self._window_redraws / elapsed, lag, stages)
