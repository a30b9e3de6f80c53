"""The training loop: one script for single-process and torchrun runs.

`prepare_data` reads the data set and caches crops with core's front end, `split_data` makes the
seeded random or by-speaker train/val split, and `train` fits with per-epoch validation (greedy and
the app's decoder), TensorBoard logs, early stopping on val WER and atomic checkpoints every epoch;
it resumes from <out>/last.pt. Under torchrun each rank trains on its shard of every epoch (DDP);
rank 0 prepares data, evaluates, logs and writes the run folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from training import distributed
from training.config import TrainConfig, _verify_config, config_from_dict
from training.data import Clip
from training.dataset import BLANK, CHAR_INDEX, VOCABULARY, Item, SampleMaker, augment, collate
from training.distill import Teachers, distill_loss
from training.evaluation import Evaluation, decoder_settings, evaluate, make_app_decoder, samples_markdown
from training.model import LipNet, WordReader, model_weights, resize_input, to_colour, to_temporal
from training.prepare import PreparedData, load_cached, prepare_data

__all__ = [
    "PreparedData",
    "TrainConfig",
    "config_from_dict",
    "load_items",
    "prepare_data",
    "split_data",
    "train",
]

log = logging.getLogger("lipreader")

CTC = torch.nn.CTCLoss(blank=0, zero_infinity=True)  # mean over the batch of per-character losses
FILE_MODE = 0o644  # run files are shared like any other (mkstemp makes them private)


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file beside `path`, flushed to disk, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def write_json_atomic(values: object, path: Path) -> None:
    write_text_atomic(json.dumps(values, indent=1), path)


def split_clips(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Seeded random train/val split."""
    order = sorted(clips, key=lambda c: c.clip_id)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * fraction))
    return order[n_val:], order[:n_val]


def split_by_speaker(clips: list[Clip], val_speakers: tuple[str, ...]) -> tuple[list[Clip], list[Clip]]:
    """Train on every speaker but `val_speakers`, validate on theirs."""
    known = {c.speaker for c in clips}
    missing = [s for s in val_speakers if s not in known]
    if missing:
        raise ValueError(
            f"validation speakers {', '.join(missing)} not in the data ({', '.join(sorted(known))})"
        )
    held = set(val_speakers)
    order = sorted(clips, key=lambda c: c.clip_id)
    return [c for c in order if c.speaker not in held], [c for c in order if c.speaker in held]


def split_data(cfg: TrainConfig, clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    """The run's train/val split (see TrainConfig.split); raises ValueError when a side is empty."""
    if cfg.split == "speaker":
        train_clips, val_clips = split_by_speaker(clips, cfg.val_speakers)
    else:
        train_clips, val_clips = split_clips(clips, cfg.val_fraction, cfg.seed)
    if not train_clips or not val_clips:
        raise ValueError(
            f"the split leaves {len(train_clips)} training and {len(val_clips)} validation clips"
        )
    return train_clips, val_clips


def load_items(clips: list[Clip], folder: Path) -> list[Item]:
    return [Item(c, load_cached(folder / f"{c.clip_id}.npz")) for c in clips]


def drop_long(items: list[Item], max_frames: int) -> tuple[list[Item], dict[str, str]]:
    """Items short enough to be used whole (longer ones would lose frames but keep their text)."""
    keep = [it for it in items if len(it.data.crops) <= max_frames]
    long = {
        it.clip.clip_id: f"{it.clip.video}: {len(it.data.crops)} frames, longer than max_frames {max_frames}"
        for it in items
        if len(it.data.crops) > max_frames
    }
    return keep, long


def write_val_manifest(clips: list[Clip], path: Path) -> None:
    """The validation clips as a `video,transcript` manifest (paths relative to its folder), so that
    `lipreader eval RUN/val.csv` scores the app on exactly the held-out clips."""
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["video", "transcript"])
    for clip in clips:
        writer.writerow([os.path.relpath(Path(clip.video).resolve(), path.parent.resolve()), clip.text])
    write_text_atomic(rows.getvalue(), path)


def lr_at(step: float, cfg: TrainConfig, steps_per_epoch: int) -> float:
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def machine_description(device: torch.device, world: int = 1) -> str:
    """CPU model and cores, or the GPU, for run records and model cards."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    where = f"{cpu}, {os.cpu_count()} cores"
    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)} ({where})"
    return f"{where} x {world} processes" if world > 1 else where


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


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (bfloat16 where supported, else float16) on CUDA with cfg.amp; None otherwise."""
    if not (cfg.amp and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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
    and the distillation loss from `teachers`)."""
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
            "word_weight needs word timings (such as GRID's alignments); no training clip has them"
        )
    return WordReader(model, len(words), cfg.word_source)


def _resume_checkpoint(path: Path, cfg: TrainConfig) -> dict | None:
    if not path.exists():
        return None
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say so in one line
        raise RuntimeError(f"cannot resume from {path}: {e}; use --no-resume to start over") from e
    old = config_from_dict(ck["config"])
    if (old.model, old.crop) != (cfg.model, cfg.crop):
        raise RuntimeError(
            f"cannot resume from {path}: it was trained with another model or crop config; "
            "use --no-resume or another --out"
        )
    for flag, was, now in (
        ("--ema", old.ema > 0, cfg.ema > 0),
        (
            "--word-weight/--word-source",
            old.word_weight and old.word_source,
            cfg.word_weight and cfg.word_source,
        ),
        (
            "--teachers/--distill-weight",
            old.teachers and old.distill_weight,
            cfg.teachers and cfg.distill_weight,
        ),
    ):
        if was != now:
            raise RuntimeError(
                f"cannot resume from {path}: it was trained {'with' if was else 'without'} {flag}; "
                "use the same setting, --no-resume or another --out"
            )
    return ck


def _initial_weights(path: Path, cfg: TrainConfig) -> dict:
    """The model weights of checkpoint `path` (init_from), checked against the run's model and crop."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        old, weights = config_from_dict(ck["config"]), model_weights(ck)
    except Exception as e:  # missing, truncated or foreign: one line
        raise RuntimeError(f"cannot start from {path}: {e}") from e
    # dropout may change, the crop size (not its shape), grey to colour and trunk blocks to ones
    # that see more frames: the weights are carried over to them, and the landmark mode: fine-tuning on
    # crops cut the other way is how a model moves to it
    colour = old.crop.grayscale and not cfg.crop.grayscale
    temporal = old.model.trunk_time < cfg.model.trunk_time
    net = replace(old.model, dropout=0, height=cfg.model.height, width=cfg.model.width)
    net = replace(net, in_channels=cfg.model.in_channels) if colour else net
    net = replace(net, trunk_time=cfg.model.trunk_time) if temporal else net
    new_net = replace(cfg.model, dropout=0)
    crop = replace(old.crop, height=cfg.crop.height, width=cfg.crop.width, follow_face=cfg.crop.follow_face)
    crop = replace(crop, grayscale=False) if colour else crop
    if (net, crop, old.fps, old.mean, old.std) != (new_net, cfg.crop, cfg.fps, cfg.mean, cfg.std):
        raise RuntimeError(f"cannot start from {path}: it was trained with another model or crop config")
    if old.crop.follow_face != cfg.crop.follow_face:
        log.info(
            "%s was trained on crops from landmarks %s; this run's are %s",
            path,
            old.crop.landmark_way,
            cfg.crop.landmark_way,
        )
    old_size, new_size = (old.crop.height, old.crop.width), (cfg.crop.height, cfg.crop.width)
    if old_size != new_size:
        if old_size[0] * new_size[1] != new_size[0] * old_size[1]:  # another part of the face
            shape = "x".join(map(str, old_size))
            raise RuntimeError(f"cannot start from {path}: its {shape} crops have another shape")
        log.info("%s was trained on %dx%d crops: carried over to %dx%d", path, *old_size, *new_size)
        weights = resize_input(weights, old.model, cfg.model)
    if colour:
        log.info("%s was trained on grey crops: carried over to colour", path)
        weights = to_colour(weights)
    if temporal:
        log.info(
            "%s has trunk blocks over %d frame(s): carried over to %d",
            path,
            old.model.trunk_time,
            cfg.model.trunk_time,
        )
        weights = to_temporal(weights, cfg.model.trunk_time)
    split_of = lambda c: (c.split, c.seed, c.val_fraction, c.val_speakers)  # noqa: E731
    if split_of(old) != split_of(cfg) and Path(old.data).resolve() == Path(cfg.data).resolve():
        log.warning("%s was split differently: its training clips may be in this run's validation set", path)
    return weights


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
    ck = _resume_checkpoint(out / "last.pt", cfg) if resume else None
    # checked before preparing crops (which can take minutes), used once the model is built
    initial = _initial_weights(Path(cfg.init_from), cfg) if ck is None and cfg.init_from else None
    if master:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".tmp-*"):  # left by a run killed while it wrote a checkpoint
            stale.unlink()
        data = prepare_data(cfg)
    distributed.barrier(dist)  # the others wait for rank 0's crops, then find them cached
    if not master:
        data = prepare_data(cfg, report=False)
    train_clips, val_clips = split_data(cfg, list(data.clips))
    train_items, long_train = drop_long(load_items(train_clips, data.folder), cfg.samples.max_frames)
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
        model.load_state_dict(initial)
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
        log.info("taught by %d model(s): %s", len(teachers.nets), ", ".join(cfg.teachers))
    steps_per_epoch = math.ceil(len(distributed.shard(list(range(len(train_items))), dist)) / cfg.batch_size)
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


def _decoded(result: Evaluation) -> str:
    if result.decoded_wer is None:
        return ""
    return f", {result.decoder} CER {result.decoded_cer:.4f} WER {result.decoded_wer:.4f}"
