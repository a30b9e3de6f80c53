"""One optimisation step: the losses (CTC, quiet frames, words, distillation), automatic mixed
precision, the learning-rate schedule, and what the optimiser trains (the model or a WordReader)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.data import BLANK, CHAR_INDEX
from training.dataset import augment
from training.distill import Teachers, distill_loss
from training.model import LipNet, WordReader

CTC = torch.nn.CTCLoss(blank=0, zero_infinity=True)  # mean over the batch of per-character losses


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (bfloat16 where supported, else float16) on CUDA with cfg.amp; None otherwise."""
    if not (cfg.amp and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def lr_at(step: float, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate at optimiser step `step`: linear warm-up over cfg.warmup_epochs, then a
    cosine decay to 2 % of cfg.lr at cfg.epochs."""
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit_batch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: dict,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    teachers: Teachers | None = None,
) -> float:
    """One optimisation step on a collated batch (augmented on the CPU first); returns the loss (CTC,
    plus the quiet-frame loss when cfg.quiet_weight is set, the word loss when `net` is a WordReader
    and the distillation loss from `teachers`).

    batch: training.dataset.collate's dict (video uint8 (N, T, H, W[, C]), points (N, T, 80|120), ...)."""
    video, points = augment(
        batch["video"].float() / 255.0, batch["points"], batch["lengths"], cfg.augment, gen
    )
    video, points = ((video - cfg.mean) / cfg.std).to(device), points.to(device)
    dtype = amp_dtype(cfg, device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        logp = net(video, points, batch["lengths"])
        taught = teachers(video, points, batch["lengths"]) if teachers is not None else None
    logp, word_logits = logp if isinstance(logp, tuple) else (logp, None)  # a WordReader's two outputs
    loss = CTC(
        logp.float().transpose(0, 1),
        batch["targets"].to(device),
        batch["lengths"].to(device),
        batch["target_lengths"].to(device),
    )
    if cfg.quiet_weight and batch["quiet"].any():
        quiet = batch["quiet"].to(device)
        # log P(blank or separator), summed over a sample's quiet frames (a mean would let a word's
        # letters stay on one of them cheaply, which is all it takes to hold a live caption back)
        silent = torch.logsumexp(logp.float()[..., [CHAR_INDEX[BLANK], CHAR_INDEX[" "]]], dim=-1)
        loss = loss - cfg.quiet_weight * silent[quiet].sum() / len(quiet)
    if word_logits is not None:
        said = batch["words"].to(device)
        named = said >= 0
        # cross-entropy of the word said, averaged over the batch's frames inside words; a batch with
        # none still touches the layer, as DDP expects a gradient for every parameter on every rank
        words = (
            F.cross_entropy(word_logits.float()[named], said[named]) if named.any() else 0 * word_logits.sum()
        )
        loss = loss + cfg.word_weight * words
    if taught is not None:
        loss = loss + cfg.distill_weight * distill_loss(logp.float(), taught, batch["lengths"].to(device))
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    params = [p for group in opt.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
    scaler.step(opt)
    scaler.update()
    return loss.item()


def make_trainee(model: LipNet, words: list[str], cfg: TrainConfig) -> torch.nn.Module:
    """What the optimiser trains: `model`, or with cfg.word_weight a WordReader around it that names
    `words` (the word loss; only `model` is validated and exported)."""
    if not cfg.word_weight:
        return model
    if not words:
        raise ValueError(
            "word_weight needs word timings (such as GRID's alignments); no training clip has them: "
            "train with --word-weight=0"
        )
    return WordReader(model, len(words), cfg.word_source)
