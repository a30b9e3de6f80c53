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


def joined(first: DecodedSpan | None, second: DecodedSpan | None) -> DecodedSpan | None:
    """Two consecutive spans (a full chunk, then the utterance's end at the same frame) as one."""
    if first is None or second is None:
        return first or second
    log_probs = np.concatenate([first.log_probs, second.log_probs])
    timings = {k: first.timings[k] + second.timings[k] for k in first.timings}
    return DecodedSpan(first.start, first.words + second.words, log_probs, timings)


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
    `activity` decides when the mouth is still (it is reset when the face is lost).
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
        if crop.status == TrackStatus.MISSING:  # the face was lost: whatever was said is over
            span = self._close()
            closed = span is not None or self.activity.active
            self.restart(index + 1)
            self.activity.reset()
            return span, closed
        if not len(self):
            self.restart(index)
        still = self.activity(crop.lip_points)
        moving = self.activity.active
        self._quiet &= not moving
        self.moved |= moving
        self._crops.append(crop.image)
        self._points.append(crop.lip_points)
        self._motion.append(self.activity.motion)
        span = None
        if not self.moved and len(self) > self.lead_in:
            self._pop(1)
        elif len(self) >= self.max_decode:
            motion = np.convolve(np.asarray(self._motion), np.ones(CUT_SMOOTH) / CUT_SMOOTH, mode="same")
            half = self.max_decode // 2
            span = self._decode(half + int(np.argmin(motion[half:])) + 1)
        if still:
            # the utterance ends half-way through the stillness that closed it; the rest stays pending
            # as the next one's lead-in: the detector lags speech, so the next word may have begun
            # in it (live stitching keeps it all: its last word's output often lies in the silence)
            carried = self.activity.still_frames // 2
            span = joined(span, self._close(keep=min(len(self), carried)))
            self._quiet = True
        return span, still

    def finish(self) -> DecodedSpan | None:
        """At the end of the source: decode what is pending (None when nothing is)."""
        return self._close()

    def _close(self, keep: int = 0) -> DecodedSpan | None:
        """Decode every pending frame but the newest `keep` unless they are stillness after a closed
        utterance; the next utterance starts after them, with the `keep` frames as its lead-in."""
        n = len(self) - keep
        span = self._decode(n) if n > 0 and not self._quiet else None
        if span is None and n > 0:
            self._pop(n)
        self.moved = False
        return span

    def _pop(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Remove the oldest n pending frames; returns their crops (n, H, W) and points (n, 40, 2)."""
        crops = [self._crops.popleft() for _ in range(n)]
        points = [self._points.popleft() for _ in range(n)]
        for _ in range(n):
            self._motion.popleft()
        self.start += n
        return np.stack(crops), np.stack(points)

    def _decode(self, n: int) -> DecodedSpan:
        """Run the full model on the oldest n pending frames and decode them; they are no longer pending."""
        start = self.start
        motion = np.asarray(list(self._motion)[:n], np.float32)
        crops, points = self._pop(n)
        t0 = time.perf_counter()
        log_probs = self.model(crops, points)
        t1 = time.perf_counter()
        moving = motion >= self.activity.still_motion
        # one utterance (it closes at a still mouth): a pause never splits a word (Decoder.decode)
        words = meet_halfway(within_motion(self.decoder.decode(log_probs), moving))
        t2 = time.perf_counter()
        return DecodedSpan(
            start,
            tuple(DecodedWord(w.text, w.start + start, w.end + start) for w in words),
            log_probs,
            {"model": (t1 - t0) * 1000, "decode": (t2 - t1) * 1000},
        )
