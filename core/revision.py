"""Live utterances read again whole: what a live stream's history shows once a sentence ends.

Live windows make words final early, each from a window that saw little of what comes after it.
`Reviser` keeps the frames of the utterance in progress as well (`core/utterances.py`), and when
the utterance closes it has been decoded whole, as `caption_video` decodes it: those words replace
the live ones (`LiveUpdate.revised` in `core/streaming.py`). It has a mouth-activity detector of
its own that sees the same lip points as the live windows' and so closes utterances on the same
frames. The full model runs in the calling thread, once per utterance (and once per `max_decode`
frames of a longer one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.decoding import DecodedWord, Decoder
from core.inference import LipModel
from core.stitching import MouthActivity
from core.types import LipCrop, TrackStatus
from core.utterances import DecodedSpan, WholeUtterances

if TYPE_CHECKING:  # core.streaming imports this module
    from core.streaming import CaptionWord, LiveUpdate


class Reviser:
    """One live stream's utterances, each decoded again whole when it closes.

    Push every frame's crop in order; `push` says whether an utterance closed there with a
    revision to take, `take` hands it out (words timed in the stream's frame indices).
    """

    def __init__(
        self,
        model: LipModel,
        decoder: Decoder,
        activity: MouthActivity,
        max_decode: int,
        lead_in: int,
    ) -> None:
        self.utterances = WholeUtterances(model, decoder, activity, max_decode, lead_in)
        self._words: list[DecodedWord] | None = None  # the utterance in progress, decoded so far
        self.ms = 0.0  # time the model and decoder took in the latest push or finish

    def push(self, index: int, crop: LipCrop) -> bool:
        """Frame `index` and its crop; True when an utterance closed here with a revision to take."""
        moved = self.utterances.moved  # before the push: a lost face closes the utterance as it was
        span, closed = self.utterances.push(index, crop)
        self._keep(span, moved or crop.status != TrackStatus.MISSING)
        return closed and self._words is not None

    def finish(self) -> bool:
        """At the end of the stream; True when the last utterance left a revision to take."""
        moved = self.utterances.moved
        self._keep(self.utterances.finish(), moved)
        return self._words is not None

    def take(self) -> tuple[DecodedWord, ...] | None:
        """The closed utterance's words (None when there is no revision), forgotten once taken."""
        words, self._words = self._words, None
        return None if words is None else tuple(words)

    def _keep(self, span: DecodedSpan | None, moved: bool) -> None:
        """Keep the words of a span decoded here (a chunk or the end of an utterance).

        `moved`: the mouth moved in the span's utterance. A lost face or the end of the stream
        closes one where it never did, and only its newest `lead_in` frames were kept: no revision
        then, the live words stand (they may cover more than those frames).
        """
        self.ms = 0.0 if span is None else sum(span.timings.values())
        if span is not None and moved:
            self._words = [*(self._words or ()), *span.words]


class WordLog:
    """The words of a stream so far, from its updates: each utterance's live final words, replaced by
    the utterance's revision when one comes (`LiveUpdate.revised`)."""

    def __init__(self) -> None:
        self.done: list[CaptionWord] = []  # the words of closed utterances
        self.current: list[CaptionWord] = []  # the final words of the utterance in progress
        self.live: list[CaptionWord] = []  # every final word as it was first made final, unrevised

    def add(self, update: LiveUpdate) -> None:
        self.current.extend(update.final)
        self.live.extend(update.final)
        if update.utterance_end:
            self.done.extend(self.current if update.revised is None else update.revised)
            self.current = []

    @property
    def words(self) -> list[CaptionWord]:
        return [*self.done, *self.current]
