"""The training loop: one script for single-process and torchrun runs.

`train` prepares the data (training/prepare.py), splits it (training/split.py) and fits with
per-epoch validation (greedy and the app's decoder), TensorBoard logs, early stopping on val WER and
atomic checkpoints every epoch (training/runfiles.py); one optimisation step is training/step.py.
It resumes from <out>/last.pt, checked by training/checkpoint.py (the same model, crop and losses,
and distillation's teacher files unchanged: their sha256 is kept in every checkpoint's state).
Under torchrun each rank trains on its shard of every epoch (DDP); rank 0 prepares data,
evaluates, logs and writes the run folder.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from training import distributed, progress
from training.checkpoint import check_teacher_digests, check_val_clips, initial_weights, resume_checkpoint
from training.config import TrainConfig, _verify_config
from training.data import VOCABULARY
from training.dataset import SampleMaker, collate
from training.distill import Teachers
from training.evaluation import Evaluation, decoder_settings, evaluate, make_app_decoder, samples_markdown
from training.model import LipNet
from training.prepare import PreparedData, prepare_data
from training.runfiles import machine_description, save_atomic, write_json_atomic, write_val_manifest
from training.split import drop_long, load_items, split_data
from training.step import amp_dtype, fit_batch, lr_at, make_trainee

__all__ = ["train"]

log = logging.getLogger("lipreader")

MIN_CLIPS = 2  # usable clips a run needs: one to train on, one to validate on


class _Board:
    """TensorBoard scalars and text on the master process (a no-op when tensorboard is missing)."""

    def __init__(self, folder: Path, enabled: bool) -> None:
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed (pip install tensorboard): no TensorBoard logs")
                return
            self.writer = SummaryWriter(str(folder))

    def scalars(self, step: int, **values: float | None) -> None:
        if self.writer is not None:
            for name, value in values.items():
                if value is not None:
                    self.writer.add_scalar(name.replace("__", "/"), value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(cfg: TrainConfig, resume: bool = True) -> dict:
    """Prepare, split, fit and checkpoint; returns the best validation record."""
    _verify_config(cfg)
    torch.set_num_threads(cfg.threads)
    dist = distributed.setup(cfg.device)
    try:
        return _train(cfg, resume, dist)
    finally:
        distributed.cleanup(dist)


def _train(cfg: TrainConfig, resume: bool, dist: distributed.Dist) -> dict:
    out, device, master = Path(cfg.out), dist.device, dist.master
    ck = resume_checkpoint(out / "last.pt", cfg) if resume else None
    # checked before preparing crops (which can take minutes), used once the model is built
    initial = initial_weights(Path(cfg.init_from), cfg) if ck is None and cfg.init_from else None
    if master:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".tmp-*"):  # left by a run killed while it wrote a checkpoint
            stale.unlink()
        data = prepare_data(cfg)
    distributed.barrier(dist)  # the others wait for rank 0's crops, then find them cached
    if not master:
        data = prepare_data(cfg, report=False)
    _check_enough_clips(data, cfg.data)
    train_clips, val_clips = split_data(cfg, list(data.clips))
    check_val_clips(out / "last.pt", ck, cfg, val_clips)  # before split.json is written over
    if initial is not None:
        initial.check_held_out({c.clip_id for c in train_clips}, {c.clip_id for c in data.clips})
    most = cfg.samples.max_frames
    train_items, long_train = drop_long(load_items(train_clips, data.folder), most, cfg.fps)
    if master:
        for problem in long_train.values():
            log.warning("left out of training: %s (--samples-max-frames takes longer ones)", problem)
        cut_only = sum(len(it.data.crops) > most for it in train_items)
        if cut_only:
            log.info(
                "training clips longer than %d frames, trained on through cuts of their words: %d",
                most,
                cut_only,
            )
    val_items = load_items(val_clips, data.folder)
    if not train_items:
        raise ValueError(f"no training clip left in {cfg.data} (all too long or left out)")
    if master:
        write_json_atomic(
            {
                "seed": cfg.seed,
                "split": cfg.split,
                "val_speakers": list(cfg.val_speakers),
                "data": cfg.data,
                "kind": data.kind,
                "train": [it.clip.clip_id for it in train_items],
                "val": [c.clip_id for c in val_clips],
                "left_out": {**data.left_out, **long_train},
                "skipped": list(data.skipped),
            },
            out / "split.json",
        )
        write_val_manifest(val_clips, out / "val.csv")
    maker = SampleMaker(train_items, cfg.crop, cfg.fps, cfg.samples)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every rerun
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY))).to(device)
    trainee = make_trainee(model, maker.words, cfg).to(device)
    if dist.distributed:
        torch.manual_seed(cfg.seed + 1 + dist.rank)  # but other dropout masks on every rank
    opt = torch.optim.AdamW(trainee.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "step": 0, "best_wer": float("inf"), "best": {}, "stale": 0, "history": []}
    if initial is not None:
        model.load_state_dict(initial.weights)
        fresh = ", a new word layer" if trainee is not model else ""
        log.info("weights from %s (fine-tuning: new optimiser and schedule%s)", cfg.init_from, fresh)
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        if cfg.ema
        else None
    )
    if ck is not None:
        model.load_state_dict(ck["model"])
        if trainee is not model:
            kept = ck.get("word_list")  # absent from checkpoints written before it was kept: the size tells
            if (kept != maker.words) if kept is not None else len(ck["words"]["bias"]) != len(maker.words):
                raise RuntimeError(
                    f"cannot resume from {out / 'last.pt'}: its word loss names other words (the data or "
                    "split changed); use --no-resume or another --out"
                )
            trainee.words.load_state_dict(ck["words"])
        opt.load_state_dict(ck["optimizer"])
        if ema is not None and "ema" in ck:
            ema.module.load_state_dict(ck["ema"])
            ema.n_averaged.fill_(ck["state"]["step"])
        state = ck["state"]
        log.info("resumed from %s at epoch %d, step %d", out / "last.pt", state["epoch"], state["step"])
    state["machine"], state["world_size"] = machine_description(device, dist.world), dist.world
    # initial_weights reads them when a run starts from this one's checkpoints
    state["val_clips"] = [c.clip_id for c in val_clips]
    net = distributed.wrap_model(trainee, dist)
    # one process: one sampling stream, one augmentation generator and torch's (dropout) generator
    # running through the epochs, saved in checkpoints, so a resumed run goes on exactly as if it had
    # never stopped; torchrun: sampling streams derived from (seed, epoch, rank) at every epoch
    rng = random.Random(cfg.seed + state["epoch"])
    gen = torch.Generator().manual_seed(cfg.seed + state["epoch"])
    if ck is not None and not dist.distributed and "torch_rng" in state:
        rng.setstate(ck["py_rng"])
        gen.set_state(state["torch_rng"])
        torch.set_rng_state(state["dropout_rng"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(cfg, device) == torch.float16)
    settings = decoder_settings(
        cfg.decoder, data.kind, (w.text for c in train_clips for w in c.words), cfg.beam_width, cfg.word_score
    )
    decoder = make_app_decoder(settings) if master and settings.kind != "greedy" else None
    board = _Board(out / "tensorboard", master and cfg.tensorboard)
    teachers = Teachers(cfg.teachers, cfg, device) if cfg.distill_weight else None
    if teachers is not None:
        # a resumed run's teachers must be the files it started with (a fresh run has none recorded)
        check_teacher_digests(out / "last.pt", state.get("teacher_digests", {}), teachers.digests)
        state["teacher_digests"] = teachers.digests
        log.info("taught by %d model(s): %s", len(teachers.nets), ", ".join(cfg.teachers))
    steps_per_epoch = math.ceil(len(distributed.shard(list(range(len(train_items))), dist)) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    total_steps = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps
    if master:
        progress.report("fit", state["step"], total_steps, epoch=state["epoch"] + 1, epochs=cfg.epochs)
    while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
        t0 = time.time()
        order = list(range(len(train_items)))
        if dist.distributed:
            random.Random(f"{cfg.seed}-order-{state['epoch']}").shuffle(order)
            order = distributed.shard(order, dist)
            rng = random.Random(f"{cfg.seed}-samples-{state['epoch']}-{dist.rank}")
            gen.manual_seed(cfg.seed + 1009 * state["epoch"] + dist.rank)
        else:
            rng.shuffle(order)
        losses = []
        bar = tqdm(
            range(0, len(order), cfg.batch_size),
            desc=f"epoch {state['epoch'] + 1}",
            leave=False,
            disable=not master,
        )
        for b in bar:
            lr = lr_at(state["step"], cfg, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = collate([maker(i, rng) for i in order[b : b + cfg.batch_size]], cfg.crop)
            loss = fit_batch(net, opt, scaler, batch, cfg, gen, device, teachers)
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss)
            state["step"] += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if master:
                epoch = state["epoch"] + 1
                progress.report("fit", state["step"], total_steps, epoch=epoch, epochs=cfg.epochs)
            board.scalars(state["step"], train__loss=losses[-1], train__lr=lr)
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        epoch_loss = distributed.mean_over_ranks(float(np.mean(losses)), dist)
        record = None
        if master:
            judged = ema.module if ema is not None else model
            result = evaluate(judged, val_items, cfg.crop, cfg.mean, cfg.std, device, decoder)
            record = {
                "epoch": state["epoch"] + 1,
                "loss": epoch_loss,
                **result.to_dict(),
                "seconds": time.time() - t0,
                "lr": opt.param_groups[0]["lr"],
            }
            log.info(
                "epoch %d loss %.3f val CER %.4f WER %.4f%s (%.0f s) | %s -> %s",
                record["epoch"],
                epoch_loss,
                result.cer,
                result.wer,
                _decoded(result),
                record["seconds"],
                *result.samples[0][:2],
            )
            board.scalars(
                state["step"],
                train__epoch_loss=epoch_loss,
                val__cer=result.cer,
                val__wer=result.wer,
                **{
                    f"val__cer_{result.decoder}": result.decoded_cer,
                    f"val__wer_{result.decoder}": result.decoded_wer,
                },
            )
            board.text("val/samples", samples_markdown(result), state["step"])
        record = distributed.broadcast(record, dist)
        state["epoch"] += 1
        state["history"].append(record)
        improved = record["val_wer"] < state["best_wer"]
        if improved:
            state["best_wer"], state["best"], state["stale"] = record["val_wer"], record, 0
        else:
            state["stale"] += 1
        if master:
            state["torch_rng"], state["dropout_rng"] = gen.get_state(), torch.get_rng_state()
            py_rng = rng.getstate() if not dist.distributed else random.getstate()
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "state": state,
                "config": cfg.to_dict(),
                "vocabulary": VOCABULARY,
                "py_rng": py_rng,
            }
            if ema is not None:
                checkpoint["ema"] = ema.module.state_dict()
            if trainee is not model:
                checkpoint["words"], checkpoint["word_list"] = trainee.words.state_dict(), maker.words
            if improved:
                save_atomic(checkpoint, out / "best.pt")
            save_atomic(checkpoint, out / "last.pt")
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            break
    board.close()
    # the others wait for rank 0's last checkpoint: a rank that tore its process group down while
    # rank 0 still wrote it was once aborted by gloo ("terminate called without an active exception")
    distributed.barrier(dist)
    return state["best"]


def _check_enough_clips(data: PreparedData, where: str) -> None:
    """Raise ValueError in one line, with the first reason each kind of bad clip gave, when `data`
    (read from `where`) has too few usable clips to train on one and validate on another."""
    if len(data.clips) >= MIN_CLIPS:
        return
    why = [f"{len(data.skipped)} skipped ({data.skipped[0]})"] if data.skipped else []
    if data.left_out:
        why.append(f"{len(data.left_out)} left out ({next(iter(data.left_out.values()))})")
    raise ValueError(
        f"{len(data.clips)} usable clips in {where}, {MIN_CLIPS} needed at least (one to train on, one "
        f"to validate on){': ' if why else ''}{'; '.join(why)}"
    )


def _decoded(result: Evaluation) -> str:
    if result.decoded_wer is None:
        return ""
    return f", {result.decoder} CER {result.decoded_cer:.4f} WER {result.decoded_wer:.4f}"
