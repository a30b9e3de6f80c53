"""Decoders on hand-made log-probs: greedy, beam, lexicon + LM, and the GRID grammar."""

import dataclasses
import math

import numpy as np
import pytest

from core.contract import DecoderSettings
from core.decoding import WORD_GAP, DecodedWord, make_decoder, words_from_path
from core.grammar import arpa_words, grammar_arpa
from tests.conftest import GRID_GRAMMAR, GRID_VOCABULARY

V = GRID_VOCABULARY
SENTENCE = "__bb_iin__ _bll_uee_ _aat_ _ff_ _ttwoo_ _nnow___"  # one character per frame, "_" = blank
GRAMMAR = DecoderSettings(kind="grammar", grammar=GRID_GRAMMAR)


def log_probs(frames: str, confusions: dict[int, str] | None = None, sure: float = 5.0) -> np.ndarray:
    """(T, 28) log-softmax: each frame's character gets logit `sure`; a confusion gets a bit more."""
    logits = np.zeros((len(frames), len(V)), np.float32)
    for t, ch in enumerate(frames):
        logits[t, V.index(" " if ch == " " else ch)] = sure
    for t, wrong in (confusions or {}).items():
        logits[t, V.index(wrong)] = sure + 0.7
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def texts(words: list[DecodedWord]) -> str:
    return " ".join(w.text for w in words)


def test_words_from_path_merges_repeats_and_splits_on_spaces():
    path = [V.index(c) for c in "_hh_e_ll_l_o_ _w"]
    words = words_from_path(path, V, blank=0, separator=1)
    assert words == [DecodedWord("hello", 1, 12), DecodedWord("w", 15, 16)]


def test_greedy_text_and_timings():
    words = make_decoder(V, 0, GRAMMAR, kind="greedy").decode(log_probs(SENTENCE))
    assert texts(words) == "bin blue at f two now"
    assert [(w.start, w.end) for w in words] == [(2, 8), (12, 19), (22, 25), (28, 30), (33, 38), (41, 45)]


@pytest.mark.parametrize("kind", ["beam", "grammar"])
def test_beam_decoders_agree_with_greedy_on_clean_input(kind):
    greedy = make_decoder(V, 0, GRAMMAR, kind="greedy").decode(log_probs(SENTENCE))
    decoder = make_decoder(V, 0, GRAMMAR, kind=kind)
    assert decoder.kind == kind
    assert decoder.decode(log_probs(SENTENCE)) == greedy  # same words, same frame spans


def test_grammar_corrects_what_greedy_gets_wrong():
    # some frames look like other letters: greedy reads words that are not in the grammar
    noisy = log_probs(SENTENCE, {16: "m", 29: "e", 35: "v", 42: "m"})
    assert texts(make_decoder(V, 0, GRAMMAR, kind="greedy").decode(noisy)) == "bin blme at fe tvo nmow"
    assert texts(make_decoder(V, 0, GRAMMAR, kind="beam").decode(noisy)) != "bin blue at f two now"
    assert texts(make_decoder(V, 0, GRAMMAR).decode(noisy)) == "bin blue at f two now"


def test_grammar_prefers_the_slot_order():
    # after a colour comes a preposition: a faint 't' makes "at" rather than the letter "a"
    frames = "_bb_lluuee_ _aa_tt_ _"
    faint = log_probs(frames, sure=6.0)
    p = np.full(len(V), 0.03 / 26)
    p[0], p[V.index("t")] = 0.6, 0.37
    faint[16:18] = np.log(p)
    assert texts(make_decoder(V, 0, GRAMMAR, kind="greedy").decode(faint)) == "blue a"
    no_lm = dataclasses.replace(GRAMMAR, lm_weight=0.0)  # the lexicon alone accepts both
    assert texts(make_decoder(V, 0, no_lm).decode(faint)) == "blue a"
    assert texts(make_decoder(V, 0, GRAMMAR).decode(faint)) == "blue at"


def faint_letter() -> np.ndarray:
    """SENTENCE's log-probs with the model unsure of the letter: blank wins its every frame."""
    faint = log_probs(SENTENCE)
    p = np.full(len(V), 0.05 / 25)
    p[0], p[V.index("f")] = 0.6, 0.35
    faint[27:31] = np.log(p)
    return faint


def test_a_word_score_keeps_a_faint_letter():
    faint = faint_letter()  # greedy drops the letter, and so does the grammar without a word score
    assert texts(make_decoder(V, 0, GRAMMAR, kind="greedy").decode(faint)) == "bin blue at two now"
    assert texts(make_decoder(V, 0, GRAMMAR).decode(faint)) == "bin blue at two now"  # a slot skipped
    scored = dataclasses.replace(GRAMMAR, word_score=2.0)
    assert texts(make_decoder(V, 0, scored).decode(faint)) == "bin blue at f two now"


def test_grammar_accepts_partial_sentences():
    # a live timeline may start and end mid-sentence
    noisy = log_probs("__gg_rree_en_ _wwiithh_ _kk__", {7: "a"})
    assert texts(make_decoder(V, 0, GRAMMAR, kind="greedy").decode(noisy)) == "graeen with k"
    assert texts(make_decoder(V, 0, GRAMMAR).decode(noisy)) == "green with k"


def test_grammar_reads_two_sentences_in_one_utterance():
    frames = SENTENCE + " __ss_eet_ _rred_ _bby_ _zz_ _nniine_ _sso_oon__"
    noisy = log_probs(frames, {62: "a", 89: "a"})
    assert "rad" in texts(make_decoder(V, 0, GRAMMAR, kind="greedy").decode(noisy))
    words = make_decoder(V, 0, GRAMMAR).decode(noisy)
    assert texts(words) == "bin blue at f two now set red by z nine soon"


def test_grammar_arpa_is_a_normalised_bigram_model():
    arpa = grammar_arpa(GRID_GRAMMAR)
    lines = arpa.splitlines()
    assert lines[0] == "\\data\\"
    counts = {
        int(line.split()[1].split("=")[0]): int(line.split("=")[1])
        for line in lines
        if line.startswith("ngram")
    }
    bigrams = [line.split("\t") for line in lines[lines.index("\\2-grams:") + 1 :] if "\t" in line]
    assert len(bigrams) == counts[2]
    totals: dict[str, float] = {}
    for logp, pair in bigrams:
        history = pair.split()[0]
        totals[history] = totals.get(history, 0.0) + 10 ** float(logp)
    assert all(math.isclose(t, 1.0, abs_tol=1e-4) for t in totals.values()), totals
    assert sorted(arpa_words(arpa)) == sorted({w for slot in GRID_GRAMMAR for w in slot})


def test_lexicon_decoder_with_arpa_text_and_file(tmp_path):
    arpa = grammar_arpa([("bin", "set"), ("blue", "red")])
    noisy = log_probs("_bb_iin_ _bbluuee__", {12: "o"})  # greedy: "bin boue"
    from_text = make_decoder(V, 0, DecoderSettings(kind="lexicon", arpa=arpa))
    assert from_text.kind == "lexicon"
    assert texts(from_text.decode(noisy)) == "bin blue"
    lm = tmp_path / "lm.arpa"
    lm.write_text(arpa)
    from_file = make_decoder(V, 0, DecoderSettings(), kind="lexicon", lm_path=lm)
    assert texts(from_file.decode(noisy)) == "bin blue"


def test_lexicon_without_lm_restricts_to_its_words():
    settings = DecoderSettings(kind="lexicon", lexicon=("bin", "blue"))
    assert (
        texts(make_decoder(V, 0, settings).decode(log_probs("_bb_iin_ _bbluuee__", {12: "o"}))) == "bin blue"
    )


def test_empty_input_and_bad_shapes():
    decoder = make_decoder(V, 0, GRAMMAR)
    assert decoder.decode(np.zeros((0, len(V)), np.float32)) == []
    with pytest.raises(ValueError, match="shape"):
        decoder.decode(np.zeros((5, 7), np.float32))


@pytest.mark.parametrize(
    ("settings", "kind", "message"),
    [
        (GRAMMAR, "viterbi", "unknown decoder"),
        (DecoderSettings(), "grammar", "no grammar"),
        (DecoderSettings(), "lexicon", "needs a lexicon, a grammar or an ARPA"),
        (DecoderSettings(kind="lexicon", lexicon=("ünïcode",)), None, "no word the model can spell"),
    ],
)
def test_decoder_errors(settings, kind, message):
    with pytest.raises(ValueError, match=message):
        make_decoder(V, 0, settings, kind=kind)


def test_bad_language_model_file(tmp_path):
    bad = tmp_path / "lm.arpa"
    bad.write_text("this is not an ARPA file\n")
    with pytest.raises(ValueError, match="cannot read language model"):
        make_decoder(V, 0, GRAMMAR, lm_path=bad)
    with pytest.raises(ValueError, match="does not exist"):
        make_decoder(V, 0, GRAMMAR, lm_path=tmp_path / "missing.arpa")


UNIGRAMS = "\\data\\\nngram 1=3\n\n\\1-grams:\n-0.5\t<s>\n-0.5\t</s>\n-0.5\tbin\n\n\\end\\\n"


@pytest.mark.parametrize(("settings", "kind"), [(GRAMMAR, None), (DecoderSettings(), "lexicon")])
def test_a_unigram_language_model_is_refused_with_kenlm_s_reason(tmp_path, settings, kind):
    lm = tmp_path / "lm.arpa"
    lm.write_text(UNIGRAMS)
    assert arpa_words(UNIGRAMS) == ["bin"]  # a valid ARPA file: KenLM alone refuses it
    with pytest.raises(ValueError) as refused:
        make_decoder(V, 0, settings, kind=kind, lm_path=lm)
    assert str(refused.value) == (
        f"cannot read language model {lm}: KenLM needs at least a bigram model "
        "(this ARPA file has only 1-grams)"
    )


def test_a_malformed_language_model_says_what_kenlm_found(tmp_path):
    cut = tmp_path / "cut.arpa"
    cut.write_text("\\data\\\nngram 1=5\nngram 2=1\n\n\\1-grams:\n-0.5\t<s>\n")
    with pytest.raises(ValueError) as refused:
        make_decoder(V, 0, GRAMMAR, lm_path=cut)
    assert str(refused.value).startswith(
        f"cannot read language model {cut}: not a valid ARPA or KenLM file (KenLM: End of file"
    )
    assert "Byte:" not in str(refused.value) and "\n" not in str(refused.value)


def test_a_long_pause_splits_words_in_a_stream():
    frames = "_nnow" + "_" * 12 + "sset_"
    greedy = make_decoder(V, 0, GRAMMAR, kind="greedy")
    assert texts(greedy.decode(log_probs(frames), pause=WORD_GAP)) == "now set"
    assert texts(make_decoder(V, 0, GRAMMAR).decode(log_probs(frames), pause=WORD_GAP)) == "now set"
    assert texts(greedy.decode(log_probs("_nnow____sset_"), pause=WORD_GAP)) == "nowset"


def test_a_pause_never_splits_a_word_of_one_utterance():
    # a bidirectional model writes the opening letters of a clip's first word on its first frames
    split_word = "plaa" + "_" * 17 + "ce  red_"
    greedy = make_decoder(V, 0, GRAMMAR, kind="greedy").decode(log_probs(split_word))
    assert [(w.text, w.start, w.end) for w in greedy] == [("place", 0, 23), ("red", 25, 28)]
    for pause in (None, WORD_GAP):  # the lexicon's spellings end with the separator: pauses never split
        assert texts(make_decoder(V, 0, GRAMMAR).decode(log_probs(split_word), pause=pause)) == "place red"
