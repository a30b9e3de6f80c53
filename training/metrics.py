"""Greedy CTC decoding for training-time evaluation (torch-free); error rates are core's."""

from __future__ import annotations

import numpy as np

from core.captioning import edit_distance, error_rates

__all__ = ["edit_distance", "error_rates", "greedy_text"]


def greedy_text(log_probs: np.ndarray, vocabulary: tuple[str, ...], blank: int = 0) -> str:
    """Best path: argmax per frame, repeats merged, blanks removed. log_probs: (T, C)."""
    best = log_probs.argmax(-1)
    keep = np.concatenate([[True], best[1:] != best[:-1]]) & (best != blank)
    return " ".join("".join(vocabulary[i] for i in best[keep]).split())
