"""Error rates of readings against references (core.captioning); caption_video itself is tested
with the stream it runs, in test_streaming.py."""

from core.captioning import error_rates, wer_interval, word_errors

REF = "bin blue at f two now"


def test_word_errors_are_per_clip_and_add_up_to_the_corpus_wer():
    hyps, refs = ["bin blue at f two now", "bin blue in f two", "place"], [REF, REF, "place red"]
    edits, words = word_errors(hyps, refs)
    assert edits.tolist() == [0, 2, 1] and words.tolist() == [6, 6, 2]
    assert error_rates(hyps, refs)[1] == edits.sum() / words.sum()


def test_wer_interval_spans_the_corpus_wer_and_narrows_with_more_clips():
    refs = [REF] * 10
    hyps = [REF] * 8 + ["bin blue in f two now", "bin blue at e two now"]
    wer = error_rates(hyps, refs)[1]
    low, high = wer_interval(*word_errors(hyps, refs))
    assert low < wer < high and 0 <= low and high < 0.1
    assert wer_interval(*word_errors(hyps, refs)) == (low, high)  # seeded: the same clips, the same range
    many_low, many_high = wer_interval(*word_errors(hyps * 10, refs * 10))
    assert low <= many_low < wer < many_high < high
    assert wer_interval(*word_errors(refs, refs)) == (0.0, 0.0)
