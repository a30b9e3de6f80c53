"""Training speed of the shipped config on this machine: clips/s per stage and the epoch time it implies.

    python bench/train.py [--steps 5] [--args config/grid-s1.args] [--threads 2] [--batch-size 16]

Times a few real training steps (sampling + collate, augmentation, forward + backward + AdamW)
and the per-epoch validation (forward, greedy and the default decoder) on clips from the crop
cache the config names (read only; without a cache it prepares a few clips in a temporary
folder), then extrapolates one epoch and the whole run. Numbers taken while another job uses the
CPU are slower than the machine can do: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from training.cli import build_parser, config_from_args  # noqa: E402
from training.data import VOCABULARY  # noqa: E402
from training.dataset import SampleMaker, augment, collate  # noqa: E402
from training.distill import Teachers  # noqa: E402
from training.evaluation import decoder_settings, evaluate, make_app_decoder  # noqa: E402
from training.model import LipNet  # noqa: E402
from training.prepare import cache_dir, prepare  # noqa: E402
from training.readers import read_data  # noqa: E402
from training.runfiles import machine_description  # noqa: E402
from training.split import load_items  # noqa: E402
from training.step import amp_dtype, fit_batch, make_trainee  # noqa: E402


def timed(fn: object, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--args",
        default="config/grid-s1.args",
        help="the run's @file (default: stage 1 of the shipped model)",
    )
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--threads", type=int, help="torch threads (default: the config's)")
    parser.add_argument("--batch-size", type=int, help="clips per step (default: the config's)")
    parser.add_argument("--clips", type=int, default=32, help="cached clips to draw samples from")
    args = parser.parse_args()
    cfg = config_from_args(build_parser().parse_args([f"@{args.args}"]))
    cfg = replace(cfg, threads=args.threads or cfg.threads, batch_size=args.batch_size or cfg.batch_size)
    torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    corpus = read_data(cfg.data)
    folder = cache_dir(Path(cfg.cache), cfg.crop, cfg.fps)
    clips = [c for c in corpus.clips if (folder / f"{c.clip_id}.npz").exists()][: args.clips]
    if len(clips) < args.clips:
        folder = Path(tempfile.mkdtemp(prefix="bench-train-"))
        clips = list(corpus.clips[: min(args.clips, 8)])
        print(f"no crop cache for {cfg.data}: preparing {len(clips)} clips in {folder}")
        clips = [c for c in clips if c.clip_id not in prepare(clips, folder, cfg.crop, cfg.fps, cfg.workers)]
    items = load_items(clips, folder)

    maker, rng, gen = SampleMaker(items, cfg.crop, cfg.fps, cfg.samples), random.Random(0), torch.Generator()
    torch.manual_seed(cfg.seed)
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY))).to(device)
    trainee = make_trainee(model, maker.words, cfg).to(device)  # with the word layer when the config has one
    teachers = Teachers(cfg.teachers, cfg, device) if cfg.distill_weight else None  # and its teachers
    opt = torch.optim.AdamW(trainee.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(cfg, device) == torch.float16)
    draw = lambda: collate([maker(rng.randrange(len(items)), rng) for _ in range(cfg.batch_size)], cfg.crop)  # noqa: E731
    batch = draw()

    def augment_only() -> None:
        augment(batch["video"].float() / 255.0, batch["points"], batch["lengths"], cfg.augment, gen)

    t_sample = timed(draw, args.steps)
    t_augment = timed(augment_only, args.steps)
    t_step = timed(lambda: fit_batch(trainee, opt, scaler, draw(), cfg, gen, device, teachers), args.steps)
    val = items[: min(len(items), 32)]
    t_eval = timed(lambda: evaluate(model, val, cfg.crop, cfg.mean, cfg.std, device), 1)
    settings = decoder_settings(cfg.decoder, corpus.kind, (), cfg.beam_width, cfg.word_score)
    decoder = make_app_decoder(settings)
    t_eval_dec = timed(lambda: evaluate(model, val, cfg.crop, cfg.mean, cfg.std, device, decoder), 1)

    left_out = (
        json.loads((folder / "problems.json").read_text()) if (folder / "problems.json").exists() else {}
    )
    usable = len([c for c in corpus.clips if c.clip_id not in left_out])
    n_val = max(1, round(usable * cfg.val_fraction))
    n_train, steps = usable - n_val, math.ceil((usable - n_val) / cfg.batch_size)
    epoch = steps * t_step + n_val * t_eval_dec / len(val)
    b = cfg.batch_size
    print(
        f"training speed: {args.args} (batch {b}, {cfg.threads} torch threads, {device}), "
        f"{args.steps} timed steps"
    )
    print(
        f"machine: {machine_description(device)}, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f} (busy CPUs make every number slower)"
    )
    print(f"{'stage':<46} {'ms / batch':>10} {'clips/s':>9}")
    rows = [
        ("sample + collate", t_sample, b),
        ("augment", t_augment, b),
        ("train step (the above + forward/backward/AdamW)", t_step, b),
        (f"validate, greedy ({len(val)} clips)", t_eval, len(val)),
        (f"validate, greedy + {settings.kind} decoder", t_eval_dec, len(val)),
    ]
    for name, seconds, clips_in in rows:
        print(f"{name:<46} {seconds * 1000:>10.0f} {clips_in / seconds:>9.1f}")
    print(f"epoch: {n_train} training clips = {steps} steps + {n_val} validation clips = {epoch:.0f} s")
    print(
        f"run: {cfg.epochs} epochs = {cfg.epochs * epoch / 3600:.1f} h "
        "(extrapolated; early stopping may end it sooner)"
    )


if __name__ == "__main__":
    main()
