"""CTC decoding: greedy, lexicon-free beam search, and lexicon beam search with a word LM.

Every decoder turns log-probs (T, C) into words with frame timings taken from the CTC path it
chose: a word spans from the first frame of its first character to the last frame of its last
one. The vocabulary, blank and word separator (" ") come from the model's contract. Beam search
is flashlight-text's; word LMs are KenLM models read from ARPA text (`core/grammar.py` writes one
for a slot grammar such as GRID's).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.contract import DecoderSettings
from core.grammar import UNK, arpa_words, grammar_arpa

__all__ = ["DecodedWord", "Decoder", "make_decoder", "grammar_arpa", "words_from_path", "KINDS", "WORD_GAP"]

log = logging.getLogger("lipreader")

KINDS = ("greedy", "beam", "lexicon", "grammar")
SEPARATOR = " "  # the vocabulary entry that separates words
BEAM_THRESHOLD = 25.0  # hypotheses scoring this far below the best are pruned
SIL_SCORE = 0.0  # score added when the separator is emitted
IMPOSSIBLE = -1e4  # log-prob standing for "never" in synthetic frames (finite: no NaN in sums)
WORD_GAP = 10  # in a stream: frames of silence between two characters that end a word without a separator
_KENLM_UNIGRAMS = "assumes at least a bigram model"  # what KenLM says of an ARPA file of 1-grams only
_KENLM_BYTE = re.compile(r"\s*Byte: \d+\s*$")  # where in the file KenLM stopped, ending its messages


@dataclass(frozen=True)
class DecodedWord:
    """A decoded word and the frames it spans."""

    text: str
    start: int  # first frame
    end: int  # one past the last frame


def words_from_path(
    path: Sequence[int],
    vocabulary: Sequence[str],
    blank: int,
    separator: int | None,
    gap: int | None = None,
) -> list[DecodedWord]:
    """Words of a CTC path (one token per frame): repeats merge, blanks vanish, separators split.

    A pause of `gap` frames or more between two characters also splits (in a stream, utterances are
    not separated by a space: "now" ... silence ... "set" is two words); None: only separators split.
    """
    words: list[DecodedWord] = []
    chars: list[str] = []
    start = end = 0
    prev = blank
    for t, token in enumerate(int(x) for x in path):
        if token == prev:
            if token not in (blank, separator) and chars:
                end = t + 1  # the same character held over several frames
            continue
        prev = token
        if token == blank:
            continue
        if token == separator:
            if chars:
                words.append(DecodedWord("".join(chars), start, end))
                chars = []
            continue
        if chars and gap is not None and t - end >= gap:
            words.append(DecodedWord("".join(chars), start, end))
            chars = []
        if not chars:
            start = t
        chars.append(vocabulary[token])
        end = t + 1
    if chars:
        words.append(DecodedWord("".join(chars), start, end))
    return words


class Decoder:
    """Turns log-probs into timed words. Build with `make_decoder`."""

    kind = "greedy"
    pauses_split = True  # whether decode(..., pause=N) splits words at pauses

    def __init__(self, vocabulary: Sequence[str], blank: int) -> None:
        self.vocabulary = tuple(vocabulary)
        self.blank = blank
        self.separator = self.vocabulary.index(SEPARATOR) if SEPARATOR in self.vocabulary else None

    def decode(self, log_probs: np.ndarray, pause: int | None = None) -> list[DecodedWord]:
        """log_probs: float32, shape (T, C), log-softmax over the vocabulary.

        pause: for a stream that runs over several utterances, a run of this many frames without a
        character also ends a word. None, for one utterance or clip: only the separator does, since a
        bidirectional model may write a clip's first letters on its first frames and the rest where
        the word is said (on held-out GRID clips "pla", 17 blanks, "ce").
        """
        log_probs = self._check(log_probs)
        if len(log_probs) == 0:
            return []
        gap = pause if self.pauses_split else None
        return words_from_path(self._path(log_probs), self.vocabulary, self.blank, self.separator, gap)

    def _check(self, log_probs: np.ndarray) -> np.ndarray:
        if log_probs.ndim != 2 or log_probs.shape[1] != len(self.vocabulary):
            raise ValueError(f"log_probs has shape {log_probs.shape}, expected (T, {len(self.vocabulary)})")
        return log_probs

    def _path(self, log_probs: np.ndarray) -> np.ndarray:
        return np.argmax(log_probs, axis=1)


class _FlashlightDecoder(Decoder):
    """Shared by the beam decoders: runs flashlight on the frames plus one closing separator frame.

    The closing frame lets the last word end like every other one (its spelling ends with the
    separator), so a sentence without a trailing space still yields its last word.
    """

    def __init__(self, vocabulary: Sequence[str], blank: int) -> None:
        super().__init__(vocabulary, blank)
        if self.separator is None:
            raise ValueError("beam decoding needs a word separator ' ' in the vocabulary")
        self._decoder = None
        self._lock = threading.Lock()  # a flashlight decoder holds its beams: one decode at a time

    def _path(self, log_probs: np.ndarray) -> np.ndarray:
        t, c = log_probs.shape
        emissions = np.full((t + 1, c), IMPOSSIBLE, np.float32)
        emissions[:t] = log_probs
        emissions[t, self.separator] = 0.0
        with self._lock:
            results = self._decoder.decode(emissions.ctypes.data, t + 1, c)
        if not results:
            return np.full(t, self.blank)
        # tokens: the start state, one token per frame (ours plus the closing one), the end state
        return np.asarray(results[0].tokens[1 : t + 1])


class BeamDecoder(_FlashlightDecoder):
    """Lexicon-free beam search over characters (no LM)."""

    kind = "beam"

    def __init__(self, vocabulary: Sequence[str], blank: int, beam_width: int) -> None:
        super().__init__(vocabulary, blank)
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
            ZeroLM,
        )

        options = LexiconFreeDecoderOptions(
            beam_size=beam_width,
            beam_size_token=len(self.vocabulary),
            beam_threshold=BEAM_THRESHOLD,
            lm_weight=0.0,
            sil_score=SIL_SCORE,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        self._lm = ZeroLM()
        self._decoder = LexiconFreeDecoder(options, self._lm, self.separator, self.blank, [])


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native writes to fd 2 meanwhile (KenLM prints a progress bar while it reads an ARPA
    file; MediaPipe and TFLite chatter there), then restore it."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LexiconDecoder(_FlashlightDecoder):
    """Beam search over the words of a lexicon, scored by a KenLM word LM (or none)."""

    kind = "lexicon"
    pauses_split = False  # every spelling ends with the separator: words never need splitting by pauses

    def __init__(
        self,
        vocabulary: Sequence[str],
        blank: int,
        words: Sequence[str],
        arpa: str | None,
        arpa_path: str | Path | None,
        settings: DecoderSettings,
        beam_width: int,
    ) -> None:
        super().__init__(vocabulary, blank)
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconDecoderOptions,
            SmearingMode,
            Trie,
            ZeroLM,
        )
        from flashlight.lib.text.decoder import LexiconDecoder as FlLexiconDecoder
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        spellable = [w for w in dict.fromkeys(words) if w and all(ch in self.vocabulary for ch in w)]
        if len(spellable) < len(set(words)):
            log.warning(
                "%d lexicon words cannot be spelled with the model's vocabulary; ignored",
                len(set(words)) - len(spellable),
            )
        if not spellable:
            raise ValueError("the lexicon has no word the model can spell")
        self.words = tuple(spellable)
        self._word_dict = Dictionary([*spellable, UNK])
        self._word_dict.set_default_index(self._word_dict.get_index(UNK))
        if arpa_path is not None:
            self._lm = self._load_kenlm(KenLM, Path(arpa_path))
        elif arpa:
            with tempfile.TemporaryDirectory(prefix="lipreader-lm-") as tmp:
                path = Path(tmp) / "lm.arpa"
                path.write_text(arpa)
                self._lm = self._load_kenlm(KenLM, path)
        else:
            self._lm = ZeroLM()
        self._trie = Trie(len(self.vocabulary), self.separator)
        start = self._lm.start(False)
        for word in spellable:
            index = self._word_dict.get_index(word)
            score = self._lm.score(start, index)[1]
            spelling = [self.vocabulary.index(ch) for ch in word] + [self.separator]
            self._trie.insert(spelling, index, score)
        self._trie.smear(SmearingMode.MAX)
        options = LexiconDecoderOptions(
            beam_size=beam_width,
            beam_size_token=len(self.vocabulary),
            beam_threshold=BEAM_THRESHOLD,
            lm_weight=settings.lm_weight,
            word_score=settings.word_score,
            unk_score=settings.unk_score,
            sil_score=SIL_SCORE,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        self._decoder = FlLexiconDecoder(
            options,
            self._trie,
            self._lm,
            self.separator,
            self.blank,
            self._word_dict.get_index(UNK),
            [],
            False,
        )

    def _load_kenlm(self, kenlm_class: type, path: Path) -> object:
        if not path.is_file():
            raise ValueError(f"language model {path} does not exist")
        try:
            with quiet_native_stderr():
                return kenlm_class(str(path), self._word_dict)
        except (RuntimeError, UnicodeDecodeError) as e:  # the latter: a message quoting binary bytes
            raise ValueError(f"cannot read language model {path}: {_kenlm_reason(e)}") from e


def _kenlm_reason(error: Exception) -> str:
    """Why KenLM could not load a file, from the exception flashlight-text raised, in one line a user
    understands: KenLM's own words without the C++ source place and signature before them."""
    text = str(error) if isinstance(error, RuntimeError) else ""
    reason = _KENLM_BYTE.sub("", text.split("Exception.", 1)[-1]).strip().rstrip(".")
    reason = " ".join(reason.split())
    if _KENLM_UNIGRAMS in reason:
        return "KenLM needs at least a bigram model (this ARPA file has only 1-grams)"
    return "not a valid ARPA or KenLM file" + (f" (KenLM: {reason})" if reason else "")


class GrammarDecoder(LexiconDecoder):
    """Lexicon beam search where the lexicon and LM come from a slot grammar."""

    kind = "grammar"


def make_decoder(
    vocabulary: Sequence[str],
    blank: int,
    settings: DecoderSettings,
    kind: str | None = None,
    beam_width: int | None = None,
    lm_path: str | Path | None = None,
    word_score: float | None = None,
) -> Decoder:
    """A decoder of `kind` (default: the settings' kind) configured from the model's settings.

    kind: "greedy", "beam" (lexicon-free), "lexicon" (settings.lexicon, else the grammar's words,
    else the words of the LM; scored by settings.arpa or the ARPA/KenLM file `lm_path`, if any),
    "grammar" (settings.grammar as lexicon and bigram LM; settings.arpa or `lm_path`, when given,
    replaces the grammar's LM). word_score, when given, replaces the settings' score per word.
    Raises ValueError when the settings cannot make that kind.
    """
    if word_score is not None:
        settings = replace(settings, word_score=word_score)
    kind = kind or settings.kind
    beam_width = beam_width or settings.beam_width
    if kind not in KINDS:
        raise ValueError(f"unknown decoder {kind!r}: choose one of {', '.join(KINDS)}")
    if beam_width < 1:
        raise ValueError(f"beam width must be positive, not {beam_width}")
    if kind == "greedy":
        return Decoder(vocabulary, blank)
    if kind == "beam":
        return BeamDecoder(vocabulary, blank, beam_width)
    if kind == "grammar":
        if not settings.grammar:
            raise ValueError("the model declares no grammar: use another decoder")
        words = [w for slot in settings.grammar for w in slot]
        arpa = settings.arpa or (None if lm_path else grammar_arpa(settings.grammar))
        return GrammarDecoder(vocabulary, blank, words, arpa, lm_path, settings, beam_width)
    words = list(settings.lexicon) or [w for slot in settings.grammar for w in slot]
    if not words and lm_path is not None:
        words = arpa_words(_read_text(Path(lm_path)))
    elif not words and settings.arpa:
        words = arpa_words(settings.arpa)
    if not words:
        raise ValueError("the lexicon decoder needs a lexicon, a grammar or an ARPA language model (--lm)")
    return LexiconDecoder(vocabulary, blank, words, settings.arpa or None, lm_path, settings, beam_width)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise ValueError(f"cannot read language model {path}: {e.strerror or e}") from e
