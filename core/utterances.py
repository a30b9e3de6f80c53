"""Whole utterances: the frames of one utterance, run through the full model at once when it closes.

Offline captioning has no latency to keep. Instead of stitching sliding windows (`core/stitching.py`)
and finalising words early at a window's edge, `WholeUtterances` keeps every frame of the current
utterance and, when the utterance closes (the mouth went still, the face was lost, the source
ended), runs the full model on all of them and decodes them at once: the bidirectional model sees
the whole utterance, as in training, and the decoder's LM the whole sentence. Frames where the face
was lost belong to no utterance; stillness after a still mouth closed an utterance is dropped
unless the mouth moves again (decoding it would only read the last word's tail a second time).
An utterance closed by a still mouth ends half-way through that stillness; the rest of it begins
the next utterance. Word timings are kept within the frames where the mouth moved (`within_motion`),
and neighbouring words meet half-way between their CTC spans (`meet_halfway`).

An utterance longer than `max_decode` frames is decoded in chunks of at most that many frames, as
soon as they are buffered: each chunk ends at the quietest frame (least lip motion) of the second
half of the pending frames, so a cut falls in a pause when there is one, and memory and the cost of
one model run stay bounded. While the mouth has not moved yet, only the newest `lead_in` frames are
kept: a long still face before speech is not decoded.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.decoding import DecodedWord, Decoder
from core.inference import LipModel
from core.stitching import MouthActivity
from core.types import LipCrop, TrackStatus

CUT_SMOOTH = 5  # frames over which lip motion is averaged to find the quietest frame for a chunk cut


@dataclass(frozen=True)
class DecodedSpan:
    """One model run and decode over consecutive frames of an utterance."""

    start: int  # frame index of the first frame
    words: tuple[DecodedWord, ...]  # timed in absolute frame indices of the stream
    log_probs: np.ndarray = field(repr=False)  # float32 (T, C) of frames start .. start + T - 1
    timings: dict[str, float]  # ms: "model" (the full model's run) and "decode"


@dataclass(frozen=True)
class PendingSpan:
    """Consecutive frames of an utterance taken to be run through the full model and decoded."""

    start: int  # frame index of the first frame
    crops: np.ndarray = field(repr=False)  # (T, H, W[, C]) uint8
    points: np.ndarray = field(repr=False)  # (T, 40, 2|3) lip points
    moving: np.ndarray = field(repr=False)  # (T,) bool: the mouth moved at the frame


def decode_span(model: LipModel, decoder: Decoder, pending: PendingSpan) -> DecodedSpan:
    """Run the full model on `pending`'s frames and decode them as one utterance (a pause never
    splits a word: Decoder.decode), word timings kept within the mouth's motion."""
    t0 = time.perf_counter()
    log_probs = model(pending.crops, pending.points)
    t1 = time.perf_counter()
    words = meet_halfway(within_motion(decoder.decode(log_probs), pending.moving))
    t2 = time.perf_counter()
    start = pending.start
    return DecodedSpan(
        start,
        tuple(DecodedWord(w.text, w.start + start, w.end + start) for w in words),
        log_probs,
        {"model": (t1 - t0) * 1000, "decode": (t2 - t1) * 1000},
    )


def joined(spans: list[DecodedSpan]) -> DecodedSpan | None:
    """Consecutive spans (a full chunk, then the utterance's end at the same frame) as one."""
    if len(spans) < 2:
        return spans[0] if spans else None
    log_probs = np.concatenate([s.log_probs for s in spans])
    timings = {k: sum(s.timings[k] for s in spans) for k in spans[0].timings}
    return DecodedSpan(spans[0].start, sum((s.words for s in spans), ()), log_probs, timings)


def within_motion(words: list[DecodedWord], moving: np.ndarray) -> list[DecodedWord]:
    """Words with their frame spans clamped to the frames from the first to the last where the mouth
    moved (moving: bool per frame, words timed in the same frames).

    A bidirectional CTC model emits an utterance's first word early, into the still lead-in, and its
    last word late, into the silence after it: on 51 GRID training clips read right, the first word
    started a median 0.52 s early and the last ended 1.04 s late; clamped, 0.24 s and 0.08 s. A word
    starts no earlier than the one before it ends, where it can. A CTC word spans the frames where
    its characters were emitted, often only 1 or 2. Unchanged when the mouth never moved."""
    if not moving.any():
        return words
    on, off = int(np.argmax(moving)), len(moving) - int(np.argmax(moving[::-1]))
    out: list[DecodedWord] = []
    for w in words:
        end = max(min(w.end, off), on + 1)
        start = min(max(w.start, on, out[-1].end if out else on), end - 1)
        out.append(DecodedWord(w.text, start, end))
    return out


MEET_FRAMES = 6  # the most a word's timing is stretched towards a neighbour (a longer gap is a pause)


def meet_halfway(words: list[DecodedWord], max_stretch: int = MEET_FRAMES) -> list[DecodedWord]:
    """Words whose spans are stretched to meet their neighbours half-way, `max_stretch` frames at most.

    A CTC word spans only the frames where its characters were emitted, often 1 or 2, so subtitle
    cues from the raw spans flash by with gaps between them. What it does to the timings against
    GRID's alignments is measured in README (Limitations: word timings).
    """
    out = list(words)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        gap = b.start - a.end
        if gap > 0:
            stretch = min(gap // 2, max_stretch)
            out[i] = DecodedWord(a.text, a.start, a.end + stretch)
            out[i + 1] = DecodedWord(b.text, b.start - min(gap - stretch, max_stretch), b.end)
    return out


class WholeUtterances:
    """One stream's utterances, each decoded whole by the full model when it closes.

    Push every frame's crop in order: `push` returns what was decoded at that frame (None when
    nothing was) and whether an utterance closed there; `finish` decodes what is pending at the end.
    `activity` decides when the mouth is still (it is reset when the face is lost). `take` and
    `take_rest` do the same without running the model: they hand out the frames due for decoding
    (`decode_span` decodes them), so that the model can run elsewhere (`core/revision.py`).
    """

    def __init__(
        self, model: LipModel, decoder: Decoder, activity: MouthActivity, max_decode: int, lead_in: int
    ) -> None:
        if max_decode < 1 or lead_in < 0:
            raise ValueError("max_decode must be >= 1 and lead_in >= 0")
        self.model = model
        self.decoder = decoder
        self.activity = activity
        self.max_decode = max_decode  # most frames run through the model at once
        self.lead_in = lead_in  # still frames kept before the mouth first moves
        self._crops: deque[np.ndarray] = deque()
        self._points: deque[np.ndarray] = deque()
        self._motion: deque[float] = deque()
        self._quiet = False  # a still mouth closed the last utterance and has not moved since
        self.restart(0)

    def restart(self, frame: int) -> None:
        """Forget the pending frames; the next frame pushed is frame `frame`."""
        self._crops.clear()
        self._points.clear()
        self._motion.clear()
        self.start = frame  # frame index of the first pending frame
        self.moved = False  # the mouth moved in this utterance

    def __len__(self) -> int:
        """Frames pending."""
        return len(self._crops)

    def push(self, index: int, crop: LipCrop) -> tuple[DecodedSpan | None, bool]:
        """Frame `index` and its crop: (what was decoded here or None, an utterance closed here)."""
        due, closed = self.take(index, crop)
        return self._decode_all(due), closed

    def finish(self) -> DecodedSpan | None:
        """At the end of the source: decode what is pending (None when nothing is)."""
        return self._decode_all(self.take_rest())

    def take(self, index: int, crop: LipCrop) -> tuple[list[PendingSpan], bool]:
        """Frame `index` and its crop: (the frames due for decoding here, oldest first, an
        utterance closed here)."""
        if crop.status == TrackStatus.MISSING:  # the face was lost
            return self._face_gone(index + 1)
        due, closed = self._face_gone(index) if crop.switched and len(self) else ([], False)
        if not len(self):
            self.restart(index)
        still = self.activity(crop.lip_points)
        moving = self.activity.active
        self._quiet &= not moving
        self.moved |= moving
        self._crops.append(crop.image)
        self._points.append(crop.lip_points)
        self._motion.append(self.activity.motion)
        if not self.moved and len(self) > self.lead_in:
            self._pop(1)
        elif len(self) >= self.max_decode:
            motion = np.convolve(np.asarray(self._motion), np.ones(CUT_SMOOTH) / CUT_SMOOTH, mode="same")
            half = self.max_decode // 2
            due.append(self._take(half + int(np.argmin(motion[half:])) + 1))
        if still:
            # the utterance ends half-way through the stillness that closed it; the rest stays pending
            # as the next one's lead-in: the detector lags speech, so the next word may have begun
            # in it (live stitching keeps it all: its last word's output often lies in the silence)
            carried = self.activity.still_frames // 2
            due += self._close(keep=min(len(self), carried))
            self._quiet = True
        return due, still or closed

    def _face_gone(self, start: int) -> tuple[list[PendingSpan], bool]:
        """The face read is gone (lost, or another one read from now on): whatever it said is over.
        Returns (the frames due for decoding, an utterance closed); the next starts at frame `start`."""
        due = self._close()
        closed = bool(due) or self.activity.active
        self.restart(start)
        self.activity.reset()
        return due, closed

    def take_rest(self) -> list[PendingSpan]:
        """At the end of the source: the frames due for decoding (none, or one span)."""
        return self._close()

    def _close(self, keep: int = 0) -> list[PendingSpan]:
        """Take every pending frame but the newest `keep` unless they are stillness after a closed
        utterance; the next utterance starts after them, with the `keep` frames as its lead-in."""
        n = len(self) - keep
        due = [self._take(n)] if n > 0 and not self._quiet else []
        if not due and n > 0:
            self._pop(n)
        self.moved = False
        return due

    def _pop(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Remove the oldest n pending frames; returns their crops (n, H, W) and points (n, 40, 2|3)."""
        crops = [self._crops.popleft() for _ in range(n)]
        points = [self._points.popleft() for _ in range(n)]
        for _ in range(n):
            self._motion.popleft()
        self.start += n
        return np.stack(crops), np.stack(points)

    def _take(self, n: int) -> PendingSpan:
        """The oldest n pending frames, due for decoding; they are no longer pending."""
        start = self.start
        moving = np.asarray(list(self._motion)[:n], np.float32) >= self.activity.still_motion
        crops, points = self._pop(n)
        return PendingSpan(start, crops, points, moving)

    def _decode_all(self, due: list[PendingSpan]) -> DecodedSpan | None:
        """`due` decoded here, as one span (None when nothing was due)."""
        return joined([decode_span(self.model, self.decoder, p) for p in due])
