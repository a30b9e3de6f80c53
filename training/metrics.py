"""Error rates and greedy CTC decoding for training-time evaluation (torch-free)."""

from __future__ import annotations

import numpy as np


def edit_distance(a: list | str, b: list | str) -> int:
    """Levenshtein distance between two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rates(hyps: list[str], refs: list[str]) -> tuple[float, float]:
    """(CER, WER) summed over a corpus: edits / reference length."""
    char_edits = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
    word_edits = sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True))
    chars = max(1, sum(len(r) for r in refs))
    words = max(1, sum(len(r.split()) for r in refs))
    return char_edits / chars, word_edits / words


def greedy_text(log_probs: np.ndarray, vocabulary: tuple[str, ...], blank: int = 0) -> str:
    """Best path: argmax per frame, repeats merged, blanks removed. log_probs: (T, C)."""
    best = log_probs.argmax(-1)
    keep = np.concatenate([[True], best[1:] != best[:-1]]) & (best != blank)
    return " ".join("".join(vocabulary[i] for i in best[keep]).split())
