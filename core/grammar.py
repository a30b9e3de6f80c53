"""Word-level language models as ARPA text: a slot grammar (GRID's) turned into a bigram LM.

A slot grammar lists, in order, the words allowed in each position of a sentence. `grammar_arpa`
writes it as an ARPA bigram model that KenLM reads, built to suit live captioning:

- after a word of slot p the next slot's words are likely; skipping one slot (a word the model
  missed) is possible; any other word is possible but unlikely;
- after the last slot a new sentence may start (utterances can hold several sentences);
- a sentence may start mid-grammar (`<s>` -> any word, with a penalty): the live stream decodes
  timelines that may begin after the first word was finalised or missed;
- a sentence may end before the last slot (`</s>` after any word, with a penalty): partial
  hypotheses of a sentence still being said end mid-grammar.

Every bigram is listed explicitly, so the model never backs off (except to `<unk>`). When slots
share a word, its successors are the mixture over its slots (bigrams cannot count positions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

START, END, UNK = "<s>", "</s>", "<unk>"

# Probability mass of each kind of successor. Each row of the table sums to 1.
P_START_FIRST = 0.75  # <s> -> a word of the first slot
P_START_ANY = 0.25  # <s> -> any word (a sentence picked up mid-way)
P_NEXT = 0.85  # a word -> a word of the next slot
P_SKIP = 0.03  # a word -> a word two slots on (one word missed)
P_END_MID = 0.08  # a word before the last slot -> </s> (a sentence cut short)
P_OTHER = 0.04  # a word -> any word (off-grammar)
P_END_LAST = 0.6  # a word of the last slot -> </s>
P_RESTART = 0.36  # a word of the last slot -> a word of the first slot (a new sentence)
P_UNK_UNIGRAM = 1e-6  # unigram probability of <unk>, the only n-gram reached by backing off


def _log10(p: float) -> str:
    return f"{math.log10(p):.6f}"


def _verify_grammar(grammar: Sequence[Sequence[str]]) -> list[list[str]]:
    slots = [[w.strip().lower() for w in slot] for slot in grammar]
    if len(slots) < 1 or any(not slot for slot in slots):
        raise ValueError("a grammar needs at least one slot and no empty slot")
    for slot in slots:
        for word in slot:
            if not word or any(c.isspace() for c in word) or word in (START, END, UNK):
                raise ValueError(f"invalid grammar word {word!r}")
    return slots


def _successors(slots: list[list[str]], position: int, words: list[str]) -> dict[str, float]:
    """P(next | a word in slot `position`) over words and END."""
    dist = dict.fromkeys([*words, END], 0.0)

    def spread(mass: float, targets: Sequence[str]) -> None:
        for w in targets:
            dist[w] += mass / len(targets)

    last = len(slots) - 1
    if position == last:
        dist[END] += P_END_LAST
        spread(P_RESTART, slots[0])
        spread(1.0 - P_END_LAST - P_RESTART, words)
        return dist
    dist[END] += P_END_MID
    spread(P_OTHER, words)
    if position + 2 <= last:
        spread(P_NEXT, slots[position + 1])
        spread(P_SKIP, slots[position + 2])
    else:
        spread(P_NEXT + P_SKIP, slots[position + 1])
    return dist


def grammar_arpa(grammar: Sequence[Sequence[str]]) -> str:
    """An ARPA bigram LM for a slot grammar (see the module docstring). grammar: words per slot."""
    slots = _verify_grammar(grammar)
    words = list(dict.fromkeys(w for slot in slots for w in slot))
    positions = {w: [p for p, slot in enumerate(slots) if w in slot] for w in words}

    rows: dict[str, dict[str, float]] = {}
    first = dict.fromkeys([*words, END], 0.0)
    for w in slots[0]:
        first[w] += P_START_FIRST / len(slots[0])
    for w in words:
        first[w] += P_START_ANY / len(words)
    rows[START] = first
    for w in words:
        mixed = dict.fromkeys([*words, END], 0.0)
        for p in positions[w]:
            for nxt, prob in _successors(slots, p, words).items():
                mixed[nxt] += prob / len(positions[w])
        rows[w] = mixed

    bigrams = [
        f"{_log10(p)}\t{history} {w}" for history, row in rows.items() for w, p in row.items() if p > 0
    ]
    unigram = (1.0 - P_UNK_UNIGRAM) / (len(words) + 1)
    lines = ["\\data\\", f"ngram 1={len(words) + 3}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines.append(f"-99\t{START}\t0")
    lines.append(f"{_log10(unigram)}\t{END}")
    lines.append(f"{_log10(P_UNK_UNIGRAM)}\t{UNK}")
    lines += [f"{_log10(unigram)}\t{w}\t0" for w in words]
    lines += ["", "\\2-grams:", *bigrams, "", "\\end\\", ""]
    return "\n".join(lines)


def arpa_words(arpa: str) -> list[str]:
    """The words of an ARPA LM's unigram section, without <s>, </s> and <unk>."""
    words, in_unigrams = [], False
    for line in arpa.splitlines():
        line = line.strip()
        if line.startswith("\\"):
            in_unigrams = line == "\\1-grams:"
            continue
        parts = line.split()
        if in_unigrams and len(parts) >= 2 and parts[1] not in (START, END, UNK):
            words.append(parts[1])
    return words
