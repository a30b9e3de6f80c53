"""WordLog: a stream's words, each utterance's live words replaced by its revision. (Revisions in a
live stream are tested with the stream, in test_streaming.py.)"""

import numpy as np

from core.revision import WordLog
from core.streaming import CaptionWord, LiveUpdate
from core.types import Frame, LipCrop, TrackStatus


def test_a_word_log_keeps_live_words_until_their_utterance_is_revised():
    def update(final=(), end=False, revised=None) -> LiveUpdate:
        frame = Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8))
        crop = LipCrop(
            0, 0.0, np.zeros((1, 1), np.uint8), np.zeros((40, 2)), np.eye(2, 3), TrackStatus.TRACKED
        )
        words = lambda text: tuple(CaptionWord(t, 0, 1, True) for t in text.split())  # noqa: E731
        revision = None if revised is None else words(revised)
        return LiveUpdate(frame, crop, words(final), (), end, None, {}, 1, revision)

    log = WordLog()
    log.add(update("bin blue"))
    log.add(update("at two now", end=True))  # closed with no revision: the live words stand
    log.add(update("set red"))
    assert [w.text for w in log.words] == "bin blue at two now set red".split()
    log.add(update("by", end=True, revised="set red by z"))
    log.add(update("lay", end=True, revised=""))  # revised to nothing
    assert [w.text for w in log.words] == "bin blue at two now set red by z".split()
    assert [w.text for w in log.live] == "bin blue at two now set red by lay".split()
