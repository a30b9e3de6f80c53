"""Live utterances read again whole: what a live stream's history shows once a sentence ends.

Live windows make words final early, each from a window that saw little of what comes after it.
`Reviser` keeps the frames of the utterance in progress as well (`core/utterances.py`), and when
the utterance closes it is decoded whole, as `caption_video` decodes it: those words replace the
live ones (`LiveUpdate.revised` in `core/streaming.py`). It has a mouth-activity detector of its
own that sees the same lip points as the live windows' and so closes utterances on the same
frames. The full model runs once per utterance (and once per `max_decode` frames of a longer one),
in the stream's model worker when it has one, so the frame loop never waits for it: a revision
then lands on a later update than its utterance's end and names the utterance it replaces.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.decoding import DecodedWord, Decoder
from core.inference import LipModel
from core.stitching import MouthActivity
from core.types import LipCrop, TrackStatus
from core.utterances import DecodedSpan, PendingSpan, WholeUtterances, decode_span

if TYPE_CHECKING:  # core.streaming imports this module
    from core.streaming import CaptionWord, LiveUpdate

# runs a decode (in a worker thread, or at once) and returns its future
Submit = Callable[[Callable[[], DecodedSpan]], Future]


@dataclass(frozen=True)
class Revised:
    """A closed utterance decoded again whole, as the reviser hands it out."""

    utterance: int  # the stream's number of the utterance (LiveUpdate.utterance)
    words: tuple[DecodedWord, ...]  # timed in the stream's frame indices
    ms: float  # the model's and decoder's time for it


class Reviser:
    """One live stream's utterances, each decoded again whole when it closes.

    Push every frame's crop in order; `push` says whether an utterance closed there with a
    revision to come, `seal` gives that utterance its number, and `ready` hands out the revisions
    whose decodes are done, in order.
    """

    def __init__(
        self,
        model: LipModel,
        decoder: Decoder,
        activity: MouthActivity,
        max_decode: int,
        lead_in: int,
        submit: Submit,
    ) -> None:
        self.utterances = WholeUtterances(model, decoder, activity, max_decode, lead_in)
        self.submit = submit
        self._spans: list[Future] = []  # the decodes of the utterance in progress
        self._sealed: deque[tuple[int, list[Future]]] = deque()  # closed utterances' decodes, by number

    def push(self, index: int, crop: LipCrop) -> bool:
        """Frame `index` and its crop; True when an utterance closed here with a revision to come
        (`seal` it)."""
        moved = self.utterances.moved  # before the push: a face lost or changed ends the utterance as it was
        due, closed = self.utterances.take(index, crop)
        self._start(due, moved or not (crop.status == TrackStatus.MISSING or crop.switched))
        return closed and bool(self._spans)

    def finish(self) -> bool:
        """At the end of the stream; True when the last utterance has a revision to come (`seal` it)."""
        moved = self.utterances.moved  # before taking the rest, which ends the utterance
        self._start(self.utterances.take_rest(), moved)
        return bool(self._spans)

    def seal(self, utterance: int) -> None:
        """The utterance that closed at the latest push (or finish) is the stream's number `utterance`."""
        self._sealed.append((utterance, self._spans))
        self._spans = []

    def ready(self, wait: bool = False) -> list[Revised]:
        """The sealed utterances whose decodes are done (with `wait`: all, once done), oldest first;
        each is handed out once."""
        out = []
        while self._sealed and (wait or all(s.done() for s in self._sealed[0][1])):
            utterance, spans = self._sealed.popleft()
            if any(s.cancelled() for s in spans):  # the stream was closed
                continue
            decoded = [s.result() for s in spans]
            words = tuple(w for s in decoded for w in s.words)
            out.append(Revised(utterance, words, sum(sum(s.timings.values()) for s in decoded)))
        return out

    def _start(self, due: list[PendingSpan], moved: bool) -> None:
        """Decode the spans due here (a chunk or the end of an utterance), through `submit`.

        `moved`: the mouth moved in the spans' utterance. A lost face or the end of the stream
        closes one where it never did, and only its newest `lead_in` frames were kept: no revision
        then, the live words stand (they may cover more than those frames).
        """
        if not moved:
            return
        u = self.utterances
        for pending in due:
            self._spans.append(self.submit(lambda p=pending: decode_span(u.model, u.decoder, p)))


class WordLog:
    """The words of a stream so far, from its updates: each utterance's live final words, replaced by
    the utterance's revision when one comes (`LiveUpdate.revised`)."""

    def __init__(self) -> None:
        self._utterances: dict[int, list[CaptionWord]] = {}  # by the stream's utterance number
        self.live: list[CaptionWord] = []  # every final word as it was first made final, unrevised

    def add(self, update: LiveUpdate) -> None:
        self._utterances.setdefault(update.utterance, []).extend(update.final)
        self.live.extend(update.final)
        for revision in update.revised:
            self._utterances[revision.utterance] = list(revision.words)

    @property
    def words(self) -> list[CaptionWord]:
        return [w for n in sorted(self._utterances) for w in self._utterances[n]]
