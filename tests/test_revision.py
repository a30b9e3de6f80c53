"""WordLog: a stream's words, each utterance's live words replaced by its revision. (Revisions in a
live stream are tested with the stream, in test_streaming.py.)"""

import numpy as np

from core.revision import WordLog
from core.streaming import CaptionWord, LiveUpdate, Revision
from core.types import Frame, LipCrop, TrackStatus


def test_a_word_log_keeps_live_words_until_their_utterance_is_revised():
    def update(utterance: int, final="", end=False, revised: dict[int, str] | None = None) -> LiveUpdate:
        frame = Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8))
        crop = LipCrop(
            0, 0.0, np.zeros((1, 1), np.uint8), np.zeros((40, 2)), np.eye(2, 3), TrackStatus.TRACKED
        )
        words = lambda text: tuple(CaptionWord(t, 0, 1, True) for t in text.split())  # noqa: E731
        revisions = tuple(Revision(n, words(text)) for n, text in (revised or {}).items())
        return LiveUpdate(frame, crop, words(final), (), end, None, {}, 1, revisions, utterance)

    log = WordLog()
    log.add(update(0, "bin blue"))
    log.add(update(0, "at two now", end=True))  # closed with no revision: the live words stand
    log.add(update(1, "set red"))
    assert [w.text for w in log.words] == "bin blue at two now set red".split()
    log.add(update(1, "by", end=True, revised={1: "set red by z"}))  # revised as it closes
    log.add(update(2, "lay", end=True))
    log.add(update(3, "place"))
    assert [w.text for w in log.words] == "bin blue at two now set red by z lay place".split()
    log.add(update(3, "green", revised={2: ""}))  # a later revision: utterance 2 read as nothing
    assert [w.text for w in log.words] == "bin blue at two now set red by z place green".split()
    assert [w.text for w in log.live] == "bin blue at two now set red by lay place green".split()
