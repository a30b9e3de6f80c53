"""The training loop: one script for single-process and torchrun runs."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.crop import CropSpec
from training.data import Clip, read_grid
from training.dataset import (
    VOCABULARY, AugmentOptions, Item, SampleMaker, SampleOptions, augment, collate, normalise,
)
from training.metrics import error_rates, greedy_text
from training.model import LipNet, ModelConfig
from training.prepare import cache_dir, load_cached, prepare

log = logging.getLogger("lipreader")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved in every checkpoint and reused by export."""

    data: str = "../shared/grid/s1"  # data folder (GRID layout)
    out: str = "runs/grid-s1"  # run folder: checkpoints, split, logs
    cache: str = "cache"  # crop cache root
    crop: CropSpec = field(default_factory=CropSpec)  # how crops are cut
    fps: float = 25.0  # model frame rate
    model: ModelConfig = field(default_factory=ModelConfig)  # network sizes
    samples: SampleOptions = field(default_factory=SampleOptions)  # how samples are drawn
    augment: AugmentOptions = field(default_factory=AugmentOptions)  # augmentation strengths
    mean: float = 0.45  # input normalisation: (crop / 255 - mean) / std
    std: float = 0.2
    val_fraction: float = 0.1  # share of clips held out for validation
    seed: int = 1337  # split and sampling seed
    epochs: int = 60  # epochs of the cosine schedule
    batch_size: int = 16  # clips per step
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_epochs: float = 2.0  # linear warm-up length
    clip_grad: float = 5.0  # gradient-norm clipping
    patience: int = 15  # early stopping: epochs without a better val WER
    threads: int = 2  # torch CPU threads
    workers: int = 2  # processes for crop preparation
    max_steps: int = 0  # stop after this many steps (0: no limit; for tests)

    def to_dict(self) -> dict:
        return asdict(self)


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_clips(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Seeded random train/val split."""
    order = sorted(clips, key=lambda c: c.clip_id)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * fraction))
    return order[n_val:], order[:n_val]


def load_items(clips: list[Clip], folder: Path) -> list[Item]:
    return [Item(c, load_cached(folder / f"{c.clip_id}.npz")) for c in clips]


def lr_at(step: float, cfg: TrainConfig, steps_per_epoch: int) -> float:
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(model: LipNet, items: list[Item], cfg: TrainConfig) -> tuple[float, float, list[tuple[str, str]]]:
    """Greedy (CER, WER) on whole clips, and (hypothesis, reference) pairs."""
    model.eval()
    hyps, refs = [], []
    for i in range(0, len(items), 32):
        chunk = items[i:i + 32]
        batch = collate([(it.data.crops, it.data.lip_points, it.clip.text) for it in chunk], cfg.crop)
        out = model(normalise(batch["video"], cfg.mean, cfg.std), batch["points"], batch["lengths"])
        for j, it in enumerate(chunk):
            hyps.append(greedy_text(out[j, : batch["lengths"][j]].numpy(), VOCABULARY))
            refs.append(it.clip.text)
    model.train()
    cer, wer = error_rates(hyps, refs)
    return cer, wer, list(zip(hyps, refs))


def train(cfg: TrainConfig, resume: bool = True) -> dict:
    """Prepare, fit and checkpoint; returns the best validation metrics."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clips, problems = read_grid(Path(cfg.data))
    for p in problems:
        log.warning("skipped: %s", p)
    folder = cache_dir(Path(cfg.cache), cfg.crop, cfg.fps)
    bad = prepare(clips, folder, cfg.crop, cfg.fps, cfg.workers)
    clips = [c for c in clips if c.clip_id not in bad]
    train_clips, val_clips = split_clips(clips, cfg.val_fraction, cfg.seed)
    (out / "split.json").write_text(json.dumps(
        {"seed": cfg.seed, "train": [c.clip_id for c in train_clips], "val": [c.clip_id for c in val_clips],
         "left_out": bad}, indent=1))
    train_items, val_items = load_items(train_clips, folder), load_items(val_clips, folder)
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    state = {"epoch": 0, "step": 0, "best_wer": float("inf"), "best": {}, "stale": 0, "history": []}
    last = out / "last.pt"
    if resume and last.exists():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        random.setstate(ck["py_rng"])
        log.info("resumed from %s at epoch %d", last, state["epoch"])
    rng = random.Random(cfg.seed + state["epoch"])
    gen = torch.Generator().manual_seed(cfg.seed + state["epoch"])
    maker = SampleMaker(train_items, cfg.crop, cfg.fps, cfg.samples)
    steps_per_epoch = math.ceil(len(train_items) / cfg.batch_size)
    while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
        t0 = time.time()
        order = list(range(len(train_items)))
        rng.shuffle(order)
        losses = []
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"epoch {state['epoch'] + 1}", leave=False)
        for b in bar:
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], cfg, steps_per_epoch)
            batch = collate([maker(i, rng) for i in order[b:b + cfg.batch_size]], cfg.crop)
            video, points = augment(batch["video"].float() / 255.0, batch["points"], batch["lengths"],
                                    cfg.augment, gen)
            video = (video - cfg.mean) / cfg.std
            logp = model(video, points, batch["lengths"])
            loss = ctc(logp.transpose(0, 1), batch["targets"], batch["lengths"], batch["target_lengths"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            losses.append(loss.item())
            state["step"] += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        cer, wer, pairs = evaluate(model, val_items, cfg)
        state["epoch"] += 1
        record = {"epoch": state["epoch"], "loss": float(np.mean(losses)), "val_cer": cer, "val_wer": wer,
                  "seconds": time.time() - t0, "lr": opt.param_groups[0]["lr"]}
        state["history"].append(record)
        log.info("epoch %d loss %.3f val CER %.4f WER %.4f (%.0f s) | %s -> %s", state["epoch"],
                 record["loss"], cer, wer, record["seconds"], pairs[0][1], pairs[0][0])
        checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state,
                      "config": cfg.to_dict(), "vocabulary": VOCABULARY, "py_rng": random.getstate()}
        if wer < state["best_wer"]:
            state["best_wer"], state["best"], state["stale"] = wer, record, 0
            save_atomic({**checkpoint, "state": state}, out / "best.pt")
        else:
            state["stale"] += 1
        save_atomic({**checkpoint, "state": state}, last)
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            break
    return state["best"]
