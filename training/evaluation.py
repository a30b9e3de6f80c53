"""Validation: CER/WER of a model on whole clips, greedy and with the decoder the app will use.

The app decodes with `core.decoding` (for GRID: lexicon beam search constrained by the GRID
grammar). Training reports both numbers every epoch; the decoder is optional here, so a missing
`core.decoding` or flashlight leaves the greedy numbers only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from core.contract import DecoderSettings
from core.crop import CropSpec
from training.data import GRID_GRAMMAR, VOCABULARY
from training.dataset import Item, collate, normalise
from training.metrics import error_rates, greedy_text

log = logging.getLogger("lipreader")

DECODER_KINDS = ("auto", "greedy", "beam", "lexicon", "grammar")
EVAL_BATCH = 32  # clips per forward pass


@dataclass(frozen=True)
class Evaluation:
    """Error rates on a validation set."""

    cer: float  # greedy character error rate
    wer: float  # greedy word error rate
    decoder: str  # kind of the app's decoder ("" when it was not available)
    decoded_cer: float | None  # error rates with that decoder (None when not available)
    decoded_wer: float | None
    samples: tuple[tuple[str, str, str], ...]  # (reference, greedy, decoded) per clip, in order

    def to_dict(self) -> dict:
        """The numbers (no samples), with the key names used in run histories and model metadata."""
        return {
            "val_cer": self.cer,
            "val_wer": self.wer,
            "decoder": self.decoder,
            "val_cer_decoded": self.decoded_cer,
            "val_wer_decoded": self.decoded_wer,
        }


def decoder_settings(
    kind: str, data_kind: str, words: Iterable[str] = (), beam_width: int = 10, word_score: float = 0.0
) -> DecoderSettings:
    """The decoding a model ships with. kind "auto": the GRID grammar for GRID data, else a lexicon
    of the training words. "grammar" always means the GRID grammar (lexicon = its words)."""
    if kind not in DECODER_KINDS:
        raise ValueError(f"unknown decoder {kind!r}: choose one of {', '.join(DECODER_KINDS)}")
    if kind == "auto":
        kind = "grammar" if data_kind == "grid" else "lexicon"
    if kind == "grammar":
        lexicon = tuple(dict.fromkeys(w for slot in GRID_GRAMMAR for w in slot))
        return DecoderSettings(
            kind="grammar",
            beam_width=beam_width,
            grammar=GRID_GRAMMAR,
            lexicon=lexicon,
            word_score=word_score,
        )
    if kind == "lexicon":
        return DecoderSettings(
            kind="lexicon", beam_width=beam_width, lexicon=tuple(sorted(set(words))), word_score=word_score
        )
    return DecoderSettings(kind=kind, beam_width=beam_width, word_score=word_score)


def make_app_decoder(settings: DecoderSettings) -> object | None:
    """core.decoding's decoder for `settings`, or None (with a warning) when it cannot be built."""
    try:
        from core.decoding import make_decoder
    except ImportError as e:
        log.warning("decoder %s unavailable (%s): reporting greedy CER/WER only", settings.kind, e)
        return None
    try:
        return make_decoder(VOCABULARY, 0, settings)
    except (ImportError, ValueError, RuntimeError) as e:
        log.warning("cannot build the %s decoder (%s): reporting greedy CER/WER only", settings.kind, e)
        return None


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    items: list[Item],
    spec: CropSpec,
    mean: float,
    std: float,
    device: torch.device | str = "cpu",
    decoder: object | None = None,
) -> Evaluation:
    """Greedy and decoded (CER, WER) of `model` on whole clips (model left in training mode)."""
    model.eval()
    refs, greedy, decoded = [], [], []
    try:
        for i in range(0, len(items), EVAL_BATCH):
            chunk = items[i : i + EVAL_BATCH]
            batch = collate([(it.data.crops, it.data.lip_points, it.clip.text) for it in chunk], spec)
            video = normalise(batch["video"], mean, std).to(device)
            out = model(video, batch["points"].to(device), batch["lengths"]).float().cpu().numpy()
            for j, it in enumerate(chunk):
                log_probs = np.ascontiguousarray(out[j, : int(batch["lengths"][j])])
                refs.append(it.clip.text)
                greedy.append(greedy_text(log_probs, VOCABULARY))
                if decoder is not None:
                    decoded.append(" ".join(w.text for w in decoder.decode(log_probs)))
    finally:
        model.train()
    cer, wer = error_rates(greedy, refs)
    d_cer, d_wer = error_rates(decoded, refs) if decoder is not None else (None, None)
    kind = getattr(decoder, "kind", "") if decoder is not None else ""
    rows = zip(refs, greedy, decoded if decoder is not None else [""] * len(refs), strict=True)
    return Evaluation(cer, wer, kind, d_cer, d_wer, tuple(rows))


def samples_markdown(evaluation: Evaluation, count: int = 8) -> str:
    """A Markdown table of the first validation decodes (for TensorBoard and logs)."""
    name = evaluation.decoder or "decoded"
    lines = [f"| reference | greedy | {name} |", "|---|---|---|"]
    lines += [f"| {r} | {g} | {d} |" for r, g, d in evaluation.samples[:count]]
    return "\n".join(lines)
