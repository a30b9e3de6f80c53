"""Stitching overlapping windows into words, and mouth activity, on synthetic sequences."""

import numpy as np
import pytest

from core.contract import DecoderSettings
from core.decoding import make_decoder
from core.stitching import MouthActivity, Stitcher
from tests.conftest import GRID_GRAMMAR, GRID_VOCABULARY

V = GRID_VOCABULARY
SENTENCES = [
    "__bb_iin_ _bll_uee_ _aat_ _ff_ _ttwoo_ _nnow________",
    "___ss_eet_ _rred_ _bby_ _zz_ _nniine_ _sso_oon_________",
    "__ll_aay_ _gg_rree_en_ _wwiith_ _kk_ _tthhree_e_ _aa_gaain____",
]
TEXT = "bin blue at f two now set red by z nine soon lay green with k three again"
WINDOW, HOP, EDGE, MARGIN = 75, 10, 4, 6


def oracle(frames: str) -> np.ndarray:
    """(T, C) log-probs: each frame's character is sure."""
    logits = np.zeros((len(frames), len(V)), np.float32)
    for t, ch in enumerate(frames):
        logits[t, V.index(ch)] = 8.0
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def window_output(
    truth: np.ndarray, start: int, stop: int, left_open: bool, right_open: bool, rng: np.random.Generator
) -> np.ndarray:
    """What a bidirectional model might say on frames [start, stop): right in the middle, garbage
    (confident random tokens) within EDGE frames of an edge with unseen context beyond it."""
    out = truth[start:stop].copy()
    n = stop - start
    bad = np.zeros(n, bool)
    if left_open:
        bad[:EDGE] = True
    if right_open:
        bad[n - EDGE :] = True
    for t in np.flatnonzero(bad):
        logits = np.zeros(len(V), np.float32)
        logits[rng.integers(1, len(V))] = 8.0  # any letter or the separator
        out[t] = logits - np.log(np.exp(logits).sum())
    return out


def run_stream(frames: str, stitcher: Stitcher, seed: int = 0):
    """Feed windows every HOP frames as the live stream does.

    Returns [(final word, frame at which it was emitted)], [(frame, partial words)].
    """
    truth = oracle(frames)
    rng = np.random.default_rng(seed)
    finals, partials = [], []
    for newest in range(HOP - 1, len(frames), HOP):
        start = max(0, newest + 1 - WINDOW)
        stitcher.add_window(start, window_output(truth, start, newest + 1, start > 0, True, rng), start > 0)
        result = stitcher.step()
        finals += [(w, newest) for w in result.final]
        partials.append((newest, result.partial))
    start = max(0, len(frames) - WINDOW)  # the end of the stream: its right edge is a real end
    stitcher.add_window(
        start, window_output(truth, start, len(frames), start > 0, False, rng), start > 0, False
    )
    finals += [(w, len(frames)) for w in stitcher.close()]
    return finals, partials


@pytest.fixture(scope="module")
def grammar_decoder():
    return make_decoder(V, 0, DecoderSettings(kind="grammar", grammar=GRID_GRAMMAR))


@pytest.mark.parametrize("kind", ["greedy", "grammar"])
def test_overlapping_windows_give_each_word_once(kind, grammar_decoder):
    decoder = grammar_decoder if kind == "grammar" else make_decoder(V, 0, DecoderSettings(), kind="greedy")
    frames = "".join(SENTENCES)
    finals, partials = run_stream(frames, Stitcher(decoder, len(V), MARGIN, 4 * WINDOW))
    assert " ".join(w.text for w, _ in finals) == TEXT  # no repeat, no drop, no edge garbage
    # each final word came out soon after it ended, and no partial word overlaps a final one
    # (edge garbage glued to a word being said can hold it back one more hop)
    lags = [at - w.end for w, at in finals[:-1]]
    assert np.median(lags) <= MARGIN + HOP and max(lags) <= MARGIN + 2 * HOP
    for newest, partial in partials:
        done = [w for w, at in finals if at <= newest]
        if done and partial:
            assert partial[0].start >= done[-1].end


def test_finalising_at_the_edge_would_fail(grammar_decoder):
    """The test above can fail: words finalised inside the unreliable right edge are wrong."""
    finals, _ = run_stream("".join(SENTENCES), Stitcher(grammar_decoder, len(V), 0, 4 * WINDOW))
    assert " ".join(w.text for w, _ in finals) != TEXT


def test_a_word_read_the_same_twice_survives_edge_garbage(grammar_decoder):
    """Garbage at the right edge differs from window to window: asking two decodes in a row to agree
    on a word keeps it out even with no margin at all, for one more hop of lag."""
    stitcher = Stitcher(grammar_decoder, len(V), 0, 4 * WINDOW, stable_frames=HOP)
    finals, _ = run_stream("".join(SENTENCES), stitcher)
    assert " ".join(w.text for w, _ in finals) == TEXT
    lags = [at - w.end for w, at in finals[:-1]]
    assert np.median(lags) <= 2 * HOP


def test_stability_counts_frames_and_starts_afresh_with_each_utterance(grammar_decoder):
    stitcher = Stitcher(grammar_decoder, len(V), final_margin=2, max_decode=4 * WINDOW, stable_frames=8)
    first = oracle("__bb_iin_ _bll_uee_ _aat_ ___")
    stitcher.add_window(0, first[:14], False, True)
    assert stitcher.step().final == ()  # "bin" is complete, but no earlier decode has read it
    stitcher.add_window(0, first[:18], False, True)
    assert stitcher.step().final == ()  # one has, but only 4 frames ago
    stitcher.add_window(0, first[:22], False, True)  # a decode 8 frames ago read it: it holds
    assert [w.text for w in stitcher.step().final] == ["bin"]
    stitcher.close()
    second, start = oracle("___ss_eet_ _rred_ _____"), stitcher.end
    stitcher.add_window(start, second[:14], False, True)
    assert stitcher.step().final == ()  # the last utterance's decodes vouch for nothing here
    stitcher.add_window(start, second, False, True)  # a slow model: the next decode 9 frames on
    assert [w.text for w in stitcher.step().final] == ["set"]  # "red" was "r" then


def test_a_word_still_being_said_is_not_final(grammar_decoder):
    # "pl" of "please" reads as the letters "p" and "l": no separator after "p" yet, so it waits
    stitcher = Stitcher(grammar_decoder, len(V), final_margin=2, max_decode=4 * WINDOW)
    stitcher.add_window(0, oracle("__bb_iin_ _pp__ll___"), False, True)
    result = stitcher.step()
    assert [w.text for w in result.final] == ["bin"]
    assert [w.text for w in result.partial] == ["p", "l"]
    stitcher.add_window(0, oracle("__bb_iin_ _pp__ll__ee_aa_ss_ee_ ___"), False, True)
    result = stitcher.step()
    assert [w.text for w in result.final] == ["please"]


def test_close_finalises_the_utterance_and_restarts(grammar_decoder):
    stitcher = Stitcher(grammar_decoder, len(V), MARGIN, 4 * WINDOW)
    first = oracle(SENTENCES[0])
    stitcher.add_window(0, first, False, True)
    assert " ".join(w.text for w in stitcher.close()) == "bin blue at f two now"
    assert stitcher.close() == ()  # nothing new
    second = oracle(SENTENCES[1])
    stitcher.add_window(len(first), second, False, False)
    words = stitcher.close()
    assert " ".join(w.text for w in words) == "set red by z nine soon"
    assert words[0].start >= len(first)  # absolute frame indices


@pytest.mark.parametrize("echo", [0, WINDOW])
def test_a_closed_utterances_last_word_read_again_after_it_is_a_repeat(grammar_decoder, echo):
    """A window that still sees a closed utterance may emit its last word again, in the silence after
    the close (a bidirectional model places its last word freely there)."""
    stitcher = Stitcher(grammar_decoder, len(V), MARGIN, 4 * WINDOW, echo=echo)
    first = SENTENCES[0]  # ends "now" and 8 frames of silence
    stitcher.add_window(0, oracle(first), False, True)
    assert " ".join(w.text for w in stitcher.close()) == "bin blue at f two now"
    late = "_" * 10 + "_nnow_" + "_" * 4 + SENTENCES[1]  # "now" again, 10 frames after the close
    stitcher.add_window(len(first), oracle(late), False, False)
    words = " ".join(w.text for w in stitcher.close())
    assert words == ("set red by z nine soon" if echo else "now set red by z nine soon")


def test_restart_forgets_and_late_windows_are_clipped(grammar_decoder):
    stitcher = Stitcher(grammar_decoder, len(V), MARGIN, 4 * WINDOW)
    stitcher.add_window(0, oracle(SENTENCES[0]), False, False)
    stitcher.restart(100)
    stitcher.add_window(90, oracle("_" * 10 + SENTENCES[1]), False, False)  # frames < 100 are gone
    assert stitcher.timeline().shape == (len(SENTENCES[1]), len(V))
    assert " ".join(w.text for w in stitcher.close()) == "set red by z nine soon"


def test_decoding_is_bounded_by_max_decode(grammar_decoder):
    stitcher = Stitcher(grammar_decoder, len(V), MARGIN, max_decode=30)
    stitcher.add_window(0, oracle("_" * 200 + SENTENCES[0][:20]), False, True)
    result = stitcher.step()
    assert all(w.start >= 190 for w in result.final + result.partial)
    assert len(stitcher.timeline()) <= 30  # a long silence does not pile up rows


def moving_lips(n: int, amplitude: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 70, (40, 2)).astype(np.float32)
    return [base + rng.normal(0, amplitude, base.shape).astype(np.float32) for _ in range(n)]


def test_mouth_activity_closes_after_speech_then_stillness():
    activity = MouthActivity(crop_width=96, still_motion=0.0026, still_frames=8)
    closes = [activity(p) for p in moving_lips(20, 0.05)]  # a face at rest: sensor noise only
    assert not any(closes)
    closes = [activity(p) for p in moving_lips(30, 1.5, seed=1)]  # talking
    assert not any(closes) and activity.active
    closes = [activity(p) for p in moving_lips(20, 0.05, seed=2)]
    assert closes.count(True) == 1
    assert 8 <= closes.index(True) <= 10  # after still_frames (plus smoothing)
    assert not activity.active


def test_mouth_activity_ignores_missing_faces():
    activity = MouthActivity(crop_width=96, still_motion=0.0026, still_frames=8)
    for p in moving_lips(10, 1.5):
        activity(p)
    assert activity(None) is False
    assert activity.active  # the stream decides what a lost face means
