"""The training loop on a tiny model: it learns, logs, checkpoints, and resumes exactly after a stop."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.crop import CropSpec
from tests.conftest import REPO, tiny_train_config
from training.config import TrainConfig, _verify_config, config_from_dict
from training.data import VOCABULARY, Clip, Word
from training.dataset import (
    MIN_SILENCE,
    MIRROR_POINTS,
    AugmentOptions,
    Item,
    Sample,
    SampleMaker,
    SampleOptions,
    augment,
    collate,
    quiet_frames,
    warped,
    word_frames,
)
from training.distill import Teachers, distill_loss
from training.export import load_checkpoint
from training.model import (
    GREY_FROM_BGR,
    TRUNK_FIRST_CONVS,
    LipNet,
    ModelConfig,
    WordReader,
    resize_input,
    to_colour,
    to_depth,
    to_temporal,
)
from training.prepare import CachedClip
from training.split import split_by_speaker, split_clips, split_data
from training.step import fit_batch, make_trainee
from training.train import train

# a network small enough to run in a test
SMALL_NET = ModelConfig(height=16, width=32, channels=(4, 4, 8), visual_dim=16, points_dim=8, hidden=8)
NO_AUGMENT = AugmentOptions(
    mirror=0, scale=0, shift=0, rotate=0, brightness=0, contrast=0, time_mask=0, point_noise=0
)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def adam_steps(checkpoint: dict) -> list[int]:
    return sorted({int(s["step"]) for s in checkpoint["optimizer"]["state"].values()})


def test_tiny_model_overfits_two_clips(mini_grid, tmp_path):
    cfg = tiny_train_config(
        mini_grid,
        tmp_path / "run",
        val_fraction=0.5,
        epochs=20,
        lr=3e-3,
        patience=100,
        augment=NO_AUGMENT,
        samples=SampleOptions(whole=1.0, splice=0.0, speed=0.0),
        decoder="greedy",
    )
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.0))
    train(cfg)
    history = load(tmp_path / "run" / "last.pt")["state"]["history"]
    losses = [h["loss"] for h in history]
    assert len(losses) == 20  # 2 training clips, batch 2: one step per epoch
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses


def test_tiny_run_records_both_decodings(tiny_run):
    state = load(tiny_run / "last.pt")["state"]
    record = state["history"][-1]
    assert state["epoch"] == 2 and state["step"] == 4 and state["world_size"] == 1
    assert record["decoder"] == "grammar" and 0 <= record["val_wer_decoded"] <= 1.5
    assert 0 <= record["val_cer"] <= 1.5 and record["seconds"] > 0
    assert (tiny_run / "best.pt").is_file() and not list(tiny_run.glob(".tmp-*"))


def test_tensorboard_scalars_and_samples(mini_grid, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_train_config(mini_grid, tmp_path / "run", epochs=1, tensorboard=True))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/cer", "val/wer", "val/cer_grammar", "val/wer_grammar"} <= scalars
    assert len(events.Scalars("train/loss")) == 2  # one per step
    assert "val/samples/text_summary" in events.Tags()["tensors"]


@pytest.mark.parametrize(("ema", "words"), [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5)])
def test_resume_goes_on_exactly_as_without_the_stop(mini_grid, tmp_path, ema, words):
    cfg = tiny_train_config(
        mini_grid, tmp_path / "whole", epochs=3, decoder="greedy", ema=ema, word_weight=words
    )
    train(cfg)
    stopped = replace(cfg, out=str(tmp_path / "stopped"))
    train(replace(stopped, max_steps=2))  # stops after epoch 1 (3 training clips, batch 2: 2 steps)
    first = load(tmp_path / "stopped" / "last.pt")
    assert (first["state"]["epoch"], first["state"]["step"], adam_steps(first)) == (1, 2, [2])
    with pytest.raises(RuntimeError, match="--ema; use the same setting"):
        train(replace(stopped, ema=0.0 if ema else 0.9))
    with pytest.raises(RuntimeError, match="--word-weight/--word-source; use the same setting"):
        train(replace(stopped, word_weight=0.0 if words else 0.9))
    if words:  # as the shipped resume.pt of stage 12: written before checkpoints kept the word list
        assert "bin" in first["word_list"] and len(first["word_list"]) == len(first["words"]["bias"])
        del first["word_list"]
        torch.save(first, tmp_path / "stopped" / "last.pt")
    train(stopped)  # resumes from last.pt
    resumed, whole = load(tmp_path / "stopped" / "last.pt"), load(tmp_path / "whole" / "last.pt")
    assert (resumed["state"]["epoch"], resumed["state"]["step"]) == (3, 6)
    assert adam_steps(resumed) == [6]  # the optimizer state was restored, not restarted
    assert [h["epoch"] for h in resumed["state"]["history"]] == [1, 2, 3]
    for name, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
        if ema:
            assert torch.equal(whole["ema"][name], resumed["ema"][name]), name  # the average too
    assert ("words" in whole) == (words > 0)  # the word layer is trained on too, and resumed
    for name, value in whole.get("words", {}).items():
        assert torch.equal(value, resumed["words"][name]) and not torch.equal(value, first["words"][name])
    exported = load_checkpoint(tmp_path / "whole" / "last.pt")[0].state_dict()
    if ema:  # the average is what export (and --init-from) take, not the last step's weights
        assert all(torch.equal(exported[k], v) for k, v in whole["ema"].items())
        assert not torch.equal(whole["ema"]["head.weight"], whole["model"]["head.weight"])
    else:
        assert "ema" not in whole and all(torch.equal(exported[k], v) for k, v in whole["model"].items())
    train(replace(stopped, epochs=4), resume=False)  # --no-resume starts over
    assert load(tmp_path / "stopped" / "last.pt")["state"]["history"][0]["epoch"] == 1


def test_resume_after_a_kill(mini_grid, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_train_config(mini_grid, out, epochs=500, batch_size=1)
    args = [
        sys.executable,
        "-m",
        "training.cli",
        "fit",
        f"--data={cfg.data}",
        f"--cache={cfg.cache}",
        f"--out={out}",
        "--threads=1",
        "--workers=1",
        "--model-channels=8,8,8",
        "--model-hidden=16",
        "--model-visual-dim=16",
        "--batch-size=1",
        "--val-fraction=0.25",
        "--epochs=500",
        "--decoder=greedy",
        "--no-tensorboard",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "last.pt").exists(), "no checkpoint written"
        time.sleep(0.3)  # let it get into the next epoch (or a checkpoint write)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    before = load(out / "last.pt")["state"]  # loads: checkpoints are written atomically
    assert before["epoch"] >= 1 and before["step"] == 3 * before["epoch"]
    train(replace(cfg, epochs=before["epoch"] + 1))
    after = load(out / "last.pt")["state"]
    assert (after["epoch"], after["step"]) == (before["epoch"] + 1, before["step"] + 3)
    assert not list(out.glob(".tmp-*"))


def test_resume_refuses_another_model(mini_grid, tiny_run, tmp_path):
    import shutil

    shutil.copytree(tiny_run, tmp_path / "run")
    cfg = tiny_train_config(mini_grid, tmp_path / "run", epochs=3)
    with pytest.raises(RuntimeError, match="another model or crop config; use --no-resume"):
        train(replace(cfg, model=replace(cfg.model, hidden=24)))


def test_init_from_starts_a_new_run_from_another_runs_weights(mini_grid, tiny_run, tmp_path):
    cfg = tiny_train_config(mini_grid, tmp_path / "ft", epochs=1, max_steps=1, lr=1e-9, warmup_epochs=0)
    cfg = replace(cfg, init_from=str(tiny_run / "best.pt"), model=replace(cfg.model, dropout=0.1))
    train(cfg)
    start, tuned = load(tiny_run / "best.pt"), load(tmp_path / "ft" / "last.pt")
    assert tuned["state"]["step"] == 1 and adam_steps(tuned) == [1]  # a fresh optimiser and schedule
    for name, weight in start["model"].items():  # lr 1e-9: one step leaves the weights where they were
        if "running_" not in name and weight.is_floating_point():  # batch-norm statistics move
            assert torch.allclose(tuned["model"][name], weight, atol=1e-6), name
    with pytest.raises(RuntimeError, match="another model or crop config"):
        train(replace(cfg, out=str(tmp_path / "other"), model=replace(cfg.model, hidden=24)))
    missing = replace(cfg, out=str(tmp_path / "none"), cache=str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="cannot start from .*missing.pt"):
        train(replace(missing, init_from=str(tmp_path / "missing.pt")))
    assert not (tmp_path / "cache").exists()  # said before minutes of crop preparation, not after


def test_init_from_refuses_a_run_whose_validation_clips_this_one_trains_on(mini_grid, tiny_run, tmp_path):
    held = load(tiny_run / "best.pt")["state"]["val_clips"]  # recorded in every checkpoint
    assert held == json.loads((tiny_run / "split.json").read_text())["val"] and len(held) == 1
    cfg = tiny_train_config(
        mini_grid, tmp_path / "ft", epochs=1, max_steps=1, init_from=str(tiny_run / "best.pt")
    )
    split = json.loads((tiny_run / "split.json").read_text())
    clips = [Clip(name, Path(f"{name}.mp4")) for name in split["train"] + split["val"]]
    seed = next(s for s in range(100) if split_clips(clips, 0.25, s)[1][0].clip_id != held[0])
    with pytest.raises(
        RuntimeError, match=f"1 of this run's training clips \\({held[0]}\\) were its validation"
    ):
        train(replace(cfg, seed=seed))
    assert not (tmp_path / "ft" / "last.pt").exists()
    train(cfg)  # the same split: fine
    assert (tmp_path / "ft" / "last.pt").is_file()


def test_a_starting_point_whose_validation_clips_are_not_in_the_data_says_nothing_was_checked(caplog):
    from training.checkpoint import StartingPoint

    start = StartingPoint(Path("run/best.pt"), {}, frozenset({"s1_a", "s1_b"}), same_data=True)
    start.check_held_out({"s1_c"}, {"s1_a", "s1_c"})  # its clips are there, none trained on: quiet
    assert caplog.records == []
    replace(start, same_data=False).check_held_out({"me_1"}, {"me_1", "me_2"})  # adapting it to new videos
    assert caplog.records == []
    start.check_held_out({"_c"}, {"_a", "_c"})  # the same data, its clips named otherwise
    (record,) = caplog.records
    assert record.getMessage().startswith("run/best.pt: its run read this data, yet none of its 2 validation")


def test_init_from_carries_the_weights_over_to_another_crop_size_and_span(mini_grid, tiny_run, tmp_path):
    small = CropSpec(height=32, width=64, span=1.6, follow_face=True)  # the span and landmark way too
    cfg = tiny_train_config(mini_grid, tmp_path / "ft", cache=str(tmp_path / "cache"), crop=small)
    cfg = replace(cfg, model=replace(cfg.model, height=32, width=64), init_from=str(tiny_run / "best.pt"))
    cfg = replace(cfg, epochs=1, max_steps=1, lr=1e-9, warmup_epochs=0)
    train(cfg)
    start, tuned = load(tiny_run / "best.pt")["model"], load(tmp_path / "ft" / "last.pt")["model"]
    assert tuned["visual.1.weight"].shape == (16, 8 * 4 * 8) != start["visual.1.weight"].shape
    # the convolutions as they were
    assert torch.allclose(tuned["stem.0.weight"], start["stem.0.weight"], atol=1e-6)
    with pytest.raises(RuntimeError, match="another model or crop config"):  # not the smoothing
        train(replace(cfg, out=str(tmp_path / "other"), crop=replace(small, min_cutoff=2.0)))
    square = replace(cfg, crop=CropSpec(height=64, width=64), model=replace(cfg.model, height=64, width=64))
    with pytest.raises(RuntimeError, match="48x96 crops have another shape"):  # a taller part of the face
        train(replace(square, out=str(tmp_path / "square")))


def test_init_from_carries_a_grey_model_over_to_colour_crops(mini_grid, tiny_run, tmp_path):
    cfg = tiny_train_config(
        mini_grid, tmp_path / "ft", cache=str(tmp_path / "cache"), crop=CropSpec(grayscale=False)
    )
    cfg = replace(cfg, model=replace(cfg.model, in_channels=3), init_from=str(tiny_run / "best.pt"))
    train(replace(cfg, epochs=1, max_steps=1, lr=1e-9, warmup_epochs=0))
    start, tuned = load(tiny_run / "best.pt")["model"], load(tmp_path / "ft" / "last.pt")["model"]
    assert tuned["stem.0.weight"].shape[1] == 3 and start["stem.0.weight"].shape[1] == 1
    # the grey kernel, split over B, G and R
    assert torch.allclose(tuned["stem.0.weight"].sum(1, keepdim=True), start["stem.0.weight"], atol=1e-5)
    assert torch.allclose(tuned["trunk.0.0.weight"], start["trunk.0.0.weight"], atol=1e-6)
    back = tiny_train_config(mini_grid, tmp_path / "back", init_from=str(tmp_path / "ft" / "last.pt"))
    with pytest.raises(RuntimeError, match="another model or crop config"):  # not from colour to grey
        train(back)


def test_init_from_carries_per_frame_trunk_blocks_over_to_temporal_ones(mini_grid, tiny_run, tmp_path):
    cfg = tiny_train_config(mini_grid, tmp_path / "ft", cache=str(tmp_path / "cache"))
    cfg = replace(cfg, model=replace(cfg.model, trunk_time=3), init_from=str(tiny_run / "best.pt"))
    train(replace(cfg, epochs=1, max_steps=1, lr=1e-9, warmup_epochs=0))
    start, tuned = load(tiny_run / "best.pt")["model"], load(tmp_path / "ft" / "last.pt")["model"]
    for key in TRUNK_FIRST_CONVS:  # the 2-D kernel in the middle frame, the others (nearly) 0
        assert tuned[key].shape == (*start[key].shape[:2], 3, 3, 3)
        assert torch.allclose(tuned[key][:, :, 1], start[key], atol=1e-6)
        assert tuned[key][:, :, [0, 2]].abs().max() < 1e-6
    back = tiny_train_config(mini_grid, tmp_path / "back", init_from=str(tmp_path / "ft" / "last.pt"))
    with pytest.raises(RuntimeError, match="another model or crop config"):  # not back to per frame
        train(back)


def test_init_from_carries_a_model_over_to_lip_points_with_depth(mini_grid, tiny_run, tmp_path):
    from core.inference import LipModel
    from training.export import export_run
    from training.prepare import cache_dir, load_cached

    deep = CropSpec(depth=True)
    cfg = tiny_train_config(mini_grid, tmp_path / "ft", cache=str(tmp_path / "cache"), crop=deep)
    cfg = replace(cfg, model=replace(cfg.model, num_points=120), init_from=str(tiny_run / "best.pt"))
    train(replace(cfg, epochs=1, max_steps=1, lr=1e-9, warmup_epochs=0))
    start, tuned = load(tiny_run / "best.pt")["model"], load(tmp_path / "ft" / "last.pt")["model"]
    assert start["points.0.weight"].shape[1] == 80 and tuned["points.0.weight"].shape[1] == 120
    assert torch.allclose(tuned["points.0.weight"][:, :80], start["points.0.weight"], atol=1e-6)
    assert tuned["points.0.weight"][:, 80:].abs().max() < 1e-6  # the depths start unused
    clip = load_cached(cache_dir(tmp_path / "cache", deep, cfg.fps) / "s1_bbaf2n.npz")
    assert clip.lip_points.shape[1:] == (40, 3) and clip.lip_points[..., 2].std() > 0
    # the app reads the export with the depths: the contract says so, the input has 120 features
    onnx_path, card = export_run(tmp_path / "ft" / "last.pt", tmp_path / "models", "deep")
    app = LipModel.load(onnx_path, provider="cpu", threads=1)
    assert app.contract.crop.depth and "(N, T, 120)" in card.read_text()
    assert app(clip.crops, clip.lip_points).shape == (len(clip.crops), len(VOCABULARY))
    back = tiny_train_config(mini_grid, tmp_path / "back", init_from=str(tmp_path / "ft" / "last.pt"))
    with pytest.raises(RuntimeError, match="another model or crop config"):  # not back without depth
        train(back)


def test_a_model_carried_over_to_depth_computes_what_it_did_whatever_the_depths():
    torch.manual_seed(0)
    flat, deep = LipNet(SMALL_NET).eval(), LipNet(replace(SMALL_NET, num_points=120)).eval()
    deep.load_state_dict(to_depth(flat.state_dict(), 120))
    video, points = torch.randn(2, 9, 16, 32), torch.randn(2, 9, 80)
    with torch.no_grad():
        expected = flat(video, points)
        for depths in (torch.zeros(2, 9, 40), torch.randn(2, 9, 40)):
            assert torch.allclose(deep(video, torch.cat([points, depths], -1)), expected, atol=1e-6)


def test_temporal_trunk_blocks_carried_over_compute_what_per_frame_ones_did():
    torch.manual_seed(0)
    cfg = SMALL_NET
    per_frame, temporal = LipNet(cfg).eval(), LipNet(replace(cfg, trunk_time=3)).eval()
    temporal.load_state_dict(to_temporal(per_frame.state_dict(), 3))
    video, points = torch.randn(2, 9, 16, 32), torch.randn(2, 9, 80)
    wider = LipNet(replace(cfg, trunk_time=5)).eval()  # and on from 3 frames to 5
    wider.load_state_dict(to_temporal(temporal.state_dict(), 5))
    with torch.no_grad():
        assert torch.allclose(temporal(video, points), per_frame(video, points), atol=1e-5)
        assert torch.allclose(wider(video, points), per_frame(video, points), atol=1e-5)
    assert (per_frame.context, temporal.context, wider.context) == (2, 4, 6)


def test_carried_over_weights_read_a_face_at_the_new_scale_alike():
    old, new = ModelConfig(height=32, width=64), ModelConfig(height=48, width=96)
    torch.manual_seed(0)
    layer = torch.nn.Linear(64 * 4 * 8, 256)
    carried = resize_input({"visual.1.weight": layer.weight.detach()}, old, new)["visual.1.weight"]
    assert carried.shape == (256, 64 * 6 * 12)

    def conv_map(h: int, w: int) -> torch.Tensor:
        """A conv map that changes smoothly over the face, sampled at the centres of an h x w grid."""
        ys, xs = ((torch.arange(n) + 0.5) / n * 2 - 1 for n in (h, w))
        return torch.stack([torch.cos(c / 8 + ys[:, None] + xs[None, :] / 2) for c in range(64)])

    at_old, at_new = layer.weight @ conv_map(4, 8).flatten(), carried @ conv_map(6, 12).flatten()
    assert (at_old - at_new).abs().max() < 0.1 * at_old.abs().max()


def test_a_grey_model_carried_over_to_colour_reads_a_colour_crop_as_its_grey():
    torch.manual_seed(0)
    grey_cfg = SMALL_NET
    colour_cfg = replace(grey_cfg, in_channels=3)
    grey_net, colour_net = LipNet(grey_cfg).eval(), LipNet(colour_cfg).eval()
    colour_net.load_state_dict(to_colour(grey_net.state_dict()))
    bgr = torch.rand(2, 6, 16, 32, 3)
    grey = (bgr * torch.tensor(GREY_FROM_BGR)).sum(-1)
    points = torch.rand(2, 6, 80)
    with torch.no_grad():
        # normalised the way training does, with one mean and divisor for every channel
        expected = grey_net((grey - 0.45) / 0.2, points)
        got = colour_net((bgr - 0.45) / 0.2, points)
    assert torch.allclose(got, expected, atol=1e-5)


def test_grey_augmentation_is_pinned():
    """The same draws and the same output as before colour crops were supported (the digest was
    taken with that code), so grey runs resume and reproduce."""
    video = torch.rand(3, 8, 12, 20, generator=torch.Generator().manual_seed(0))
    points = torch.rand(3, 8, 80, generator=torch.Generator().manual_seed(1)) * 2 - 1
    opt = AugmentOptions(
        mirror=0.5, scale=0.1, shift=0.1, rotate=5, brightness=0.1, contrast=0.2, time_mask=3, point_drop=0.5
    )
    out, moved = augment(video, points, torch.tensor([8, 6, 5]), opt, torch.Generator().manual_seed(5))
    # rounded: the last bits of float arithmetic may differ between CPUs
    digest = hashlib.sha256(out.numpy().round(4).tobytes() + moved.numpy().round(4).tobytes()).hexdigest()
    assert digest[:16] == "5b64e6c1f4ef3c85"


def test_a_stretch_moves_pixels_and_points_alike():
    """A bright row drawn at a lip point's height stays under that point after a vertical stretch,
    and the stretch changes the height only."""
    n, t, h, w = 8, 2, 32, 64
    video = torch.zeros(n, t, h, w)
    video[:, :, 24, :] = 1.0  # row 24's centre is at y = (24.5 / 32) * 2 - 1
    row_y = (24.5 / h) * 2 - 1
    points = torch.zeros(n, t, 40, 2)
    points[..., 0] = torch.linspace(-0.5, 0.5, 40)
    points[..., 1] = row_y
    opt = replace(NO_AUGMENT, stretch=0.3)
    out, moved = augment(
        video, points.reshape(n, t, 80), torch.full((n,), t), opt, torch.Generator().manual_seed(3)
    )
    moved = moved.reshape(n, t, 40, 2)
    assert torch.allclose(moved[..., 0], points[..., 0], atol=1e-5)  # x untouched
    heights = moved[:, 0, 0, 1]
    assert heights.std() > 0.02 and (heights / row_y).min() >= math.exp(-0.3) - 1e-4
    assert (heights / row_y).max() <= math.exp(0.3) + 1e-4
    for i in range(n):
        brightest = int(out[i, 0, :, w // 2].argmax())
        assert abs((brightest + 0.5) / h * 2 - 1 - heights[i]) <= 2 / h  # within a pixel


@pytest.mark.parametrize("colour", [False, True])
def test_gamma_and_noise_change_pixels_only_when_asked(colour):
    n, t, h, w = 6, 3, 8, 16
    shape = (n, t, h, w, *((3,) if colour else ()))
    video = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    points, lengths = torch.rand(n, t, 80) * 2 - 1, torch.full((n,), t)
    same, same_points = augment(video.clone(), points, lengths, NO_AUGMENT, torch.Generator())
    assert torch.allclose(same, video, atol=1e-4) and torch.allclose(same_points, points, atol=1e-5)
    gamma, gamma_points = augment(
        video.clone(), points, lengths, replace(NO_AUGMENT, gamma=0.5), torch.Generator().manual_seed(1)
    )
    exponents = (gamma.log() / video.log()).reshape(n, -1)  # one gamma per sample, every channel alike
    assert torch.allclose(exponents, exponents[:, :1].expand_as(exponents), atol=1e-3)
    assert exponents.min() >= math.exp(-0.5) - 1e-3 and exponents.max() <= math.exp(0.5) + 1e-3
    assert exponents[:, 0].std() > 0.05 and torch.allclose(gamma_points, points, atol=1e-5)
    grey = torch.full(shape, 0.5)  # mid-grey: the clamp never bites at these sigmas
    noisy, noisy_points = augment(
        grey.clone(), points, lengths, replace(NO_AUGMENT, noise=0.1), torch.Generator().manual_seed(2)
    )
    offsets = (noisy - grey).reshape(n, -1)
    sigmas = offsets.std(dim=1)  # one sigma per sample, uniform in [0, 0.1]: they differ
    assert (sigmas < 0.1 * 1.1).all() and sigmas.min() < 0.06
    assert offsets.mean(dim=1).abs().max() < 0.02  # noise per pixel, not one offset per sample
    assert torch.allclose(noisy_points, points, atol=1e-5)


def test_negative_augmentation_strengths_are_refused():
    with pytest.raises(ValueError, match="stretch"):
        _verify_config(TrainConfig(augment=replace(AugmentOptions(), stretch=-0.1)))


@pytest.mark.parametrize("colour", [False, True])
def test_cutout_fills_one_rectangle_per_sample_with_its_mean(colour):
    n, t, h, w = 6, 5, 16, 32
    video = torch.rand(n, t, h, w, *((3,) if colour else ()), generator=torch.Generator().manual_seed(0))
    points, lengths = torch.zeros(n, t, 80), torch.full((n,), t)
    opt = replace(NO_AUGMENT, cutout=1.0)
    out, _ = augment(video.clone(), points, lengths, opt, torch.Generator().manual_seed(1))
    for i in range(n):
        mean = video[i].mean()
        # (T, H, W); the identity warp leaves float rounding behind
        changed = ((out[i] - video[i]).abs() > 1e-4).reshape(t, h, w, -1).any(-1)
        assert torch.equal(changed, changed[:1].expand_as(changed))  # the same place on every frame
        rows, cols = changed[0].any(1).nonzero().flatten(), changed[0].any(0).nonzero().flatten()
        box = changed[0][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and changed[0].sum() == box.numel()  # one rectangle
        assert 0.2 * h - 1 <= len(rows) <= 0.5 * h and 0.2 * w - 1 <= len(cols) <= 0.5 * w
        assert torch.allclose(out[i][changed], mean.expand(int(changed.sum()), *((3,) if colour else ())))
    none, _ = augment(video.clone(), points, lengths, replace(opt, cutout=0.0), torch.Generator())
    assert torch.allclose(none, video, atol=1e-4)


def test_colour_crops_are_augmented_as_grey_ones_are():
    """Each colour channel moves as a grey crop does under the same draws: geometry, photometry and
    time masks alike."""
    n, t, h, w = 3, 8, 12, 20
    grey = torch.rand(n, t, h, w)
    colour = torch.stack([grey, grey, grey], dim=-1)
    points, lengths = torch.rand(n, t, 80) * 2 - 1, torch.tensor([8, 6, 5])
    opt = AugmentOptions(
        mirror=0.5, scale=0.1, shift=0.1, rotate=5, brightness=0.1, contrast=0.2, time_mask=3
    )
    grey_out, grey_points = augment(grey, points, lengths, opt, torch.Generator().manual_seed(1))
    colour_out, colour_points = augment(colour, points, lengths, opt, torch.Generator().manual_seed(1))
    assert colour_out.shape == (n, t, h, w, 3)
    for channel in range(3):
        assert torch.allclose(colour_out[..., channel], grey_out, atol=1e-6)
    assert torch.equal(colour_points, grey_points)
    # and the channels stay apart: a crop that is only red stays only red
    red = torch.zeros(n, t, h, w, 3)
    red[..., 2] = grey
    red_out, _ = augment(
        red, points, lengths, replace(opt, brightness=0, contrast=0, time_mask=0), torch.Generator()
    )
    assert red_out[..., :2].abs().max() == 0 and red_out[..., 2].abs().max() > 0.5


def clip(clip_id: str, speaker: str) -> Clip:
    return Clip(clip_id, Path(f"{clip_id}.mp4"), (Word("bin", 0.0, 0.2),), speaker)


def test_splits():
    clips = [clip(f"{s}_{i}", s) for s in ("s1", "s2", "s3") for i in range(10)]
    train_clips, val_clips = split_by_speaker(clips, ("s2",))
    assert {c.speaker for c in val_clips} == {"s2"} and len(train_clips) == 20
    cfg = TrainConfig(split="speaker", val_speakers=("s2", "s3"))
    assert {c.speaker for c in split_data(cfg, clips)[1]} == {"s2", "s3"}
    with pytest.raises(ValueError, match="validation speakers s9 not in the data"):
        split_data(replace(cfg, val_speakers=("s9",)), clips)
    with pytest.raises(ValueError, match="leaves 0 training"):
        split_data(replace(cfg, val_speakers=("s1", "s2", "s3")), clips)
    a, b = split_data(TrainConfig(seed=7), clips), split_data(TrainConfig(seed=7), clips[::-1])
    assert [c.clip_id for c in a[1]] == [c.clip_id for c in b[1]] and len(a[1]) == 3
    assert [c.clip_id for c in split_data(TrainConfig(seed=8), clips)[1]] != [c.clip_id for c in a[1]]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"split": "speaker"}, "needs val_speakers"),
        ({"split": "folds"}, "unknown split"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"decoder": "magic"}, "unknown decoder"),
        ({"batch_size": 0}, "must be positive"),
        ({"ema": 1.0}, "ema must be in"),
        ({"quiet_weight": -1.0}, "quiet_weight, word_weight and quiet_slack must be"),
        ({"samples": SampleOptions(quiet_slack=-1)}, "quiet_weight, word_weight and quiet_slack must be"),
        ({"word_weight": -0.5}, "quiet_weight, word_weight and quiet_slack must be"),
        ({"word_source": "lips"}, "unknown word_source"),
        ({"samples": SampleOptions(whole=0.8, splice=0.1, silence=0.2)}, "add up to <= 1"),
        ({"samples": SampleOptions(whole=0.5, splice=0.2, shuffle=0.4)}, "add up to <= 1"),
        ({"augment": AugmentOptions(point_drop=30)}, "probabilities in"),
        ({"samples": SampleOptions(partial=1.5)}, "probabilities in"),
        ({"augment": AugmentOptions(cutout=-0.1)}, "probabilities in"),
        ({"model": replace(TrainConfig().model, trunk_time=2)}, "trunk_time must be odd"),
        ({"model": replace(TrainConfig().model, trunk_time=0)}, "trunk_time must be odd"),
        ({"samples": SampleOptions(speed=1.0)}, "speed and warp must be in"),
        ({"samples": SampleOptions(warp=-0.1)}, "speed and warp must be in"),
    ],
)
def test_verify_config(changes, message):
    with pytest.raises(ValueError, match=message):
        _verify_config(replace(TrainConfig(), **changes))


def test_silence_samples_hold_no_word():
    fps, words = 25.0, (Word("bin", 0.6, 0.9), Word("blue", 0.9, 1.2))
    crops = np.arange(75, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 8), np.uint8)
    item = Item(
        Clip("c", Path("c.mp4"), words), CachedClip(crops, np.zeros((75, 40, 2), np.float32), crops[:, 0, 0])
    )
    maker = SampleMaker(
        [item], CropSpec(), fps, SampleOptions(whole=0, splice=0, silence=1, margin=3, speed=0)
    )
    rng = random.Random(0)
    frames = set()
    for _ in range(200):
        video, points, text, *_ = maker(0, rng)
        assert text == "" and len(video) >= MIN_SILENCE == 4 and len(points) == len(video)
        frames |= set(video[:, 0, 0].tolist())
    # words span frames 15..30; 3 frames of margin keep frames 12..32 out; both silences are drawn
    assert frames == set(range(0, 12)) | set(range(33, 75))
    # a clip whose silences are too short gives a cut sample instead
    spoken = (Word("bin", 0.04, 0.4), Word("blue", 0.4, 0.76))  # frames 1..19 of 20
    short = Item(
        Clip("d", Path("d.mp4"), spoken),
        CachedClip(crops[:20], np.zeros((20, 40, 2), np.float32), crops[:20, 0, 0]),
    )
    assert SampleMaker([short], CropSpec(), fps, maker.opt)(0, rng)[2] != ""


@pytest.mark.parametrize("splice", [0.0, 1.0])
def test_partial_samples_end_inside_a_word_left_out_of_the_transcript(splice):
    fps = 25.0
    names = ("bin", "blue", "at", "f", "two", "now")
    # frames 10..58
    words = tuple(Word(w, (10 + 8 * i) / fps, (18 + 8 * i) / fps) for i, w in enumerate(names))
    crops = np.arange(75, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 8), np.uint8)
    item = Item(
        Clip("c", Path("c.mp4"), words), CachedClip(crops, np.zeros((75, 40, 2), np.float32), crops[:, 0, 0])
    )
    span = {w.text: range(round(w.start * fps), round(w.end * fps)) for w in words}

    def cut_words(partial):
        """Words seen only in part in 300 samples; checks every transcript holds the words seen whole."""
        options = SampleOptions(whole=0, splice=splice, silence=0, margin=0, speed=0, partial=partial)
        maker, rng, cut = SampleMaker([item], CropSpec(), fps, options), random.Random(1), 0
        for _ in range(300):
            video, _, text, *_ = maker(0, rng)
            frames = video[:, 0, 0].astype(int)
            runs = [set(r.tolist()) for r in np.split(frames, np.flatnonzero(np.diff(frames) != 1) + 1)]
            assert len(runs) == (2 if splice else 1)  # a splice: the clip's tail, then its head
            said = text.split()
            assert said == [n for run in runs for n in names if set(span[n]) <= run]
            if partial == 1 and not splice:  # a cut's open ends are inside the neighbouring words
                start, stop = names.index(said[0]), names.index(said[-1])
                for k in [start - 1] * (start > 0) + [stop + 1] * (stop + 1 < len(names)):
                    assert 0 < len(runs[0] & set(span[names[k]])) < len(span[names[k]])
            cut += sum(1 for run in runs for n in names if run & set(span[n]) and not set(span[n]) <= run)
        return cut

    assert cut_words(1.0) > 150
    # no slack (margin 0): without partial samples a word is cut only where a splice is cut short at
    # max_frames (100; the transcripts were checked above)
    cut = cut_words(0.0)
    assert (0 < cut < 30) if splice else cut == 0


def test_shuffled_samples_take_each_word_from_some_clip_at_its_place():
    fps, names = 32.0, ("bin", "blue", "at", "f", "two", "now")  # 32: word times exact in binary
    items, spans = [], {}
    for c, first in enumerate((10, 13, 16, 19)):  # clip c's frames are numbered 100 * c + frame
        words = tuple(
            Word(f"{w}{c}", (first + 8 * i) / fps, (first + 8 * i + 8) / fps) for i, w in enumerate(names)
        )
        crops = (100 * c + np.arange(75))[:, None, None] * np.ones((1, 2, 2), np.int64)
        data = CachedClip(crops, np.zeros((75, 40, 2), np.float32), crops[:, 0, 0])
        items.append(Item(Clip(str(c), Path(str(c)), words), data))
        spans |= {w.text: (100 * c + first + 8 * i, 100 * c + first + 8 * i + 8) for i, w in enumerate(words)}
    options = SampleOptions(whole=0, splice=0, silence=0, shuffle=1, speed=0)
    maker, rng, mixed = SampleMaker(items, CropSpec(), fps, options), random.Random(2), 0
    for _ in range(200):
        video, points, text, *_ = maker(rng.randrange(4), rng)
        frames = video[:, 0, 0].tolist()
        said = text.split()
        assert [w[:-1] for w in said] == list(names) and len(points) == len(frames)
        mixed += len({w[-1] for w in said}) > 1
        runs = np.split(np.array(frames), np.flatnonzero(np.diff(frames) != 1) + 1)
        # one run of frames per word, or per neighbours from one clip
        pieces = list(said)
        for run in runs:
            covered = [w for w in pieces if spans[w][0] >= run[0] - 1 and spans[w][1] <= run[-1] + 2]
            assert covered and covered == pieces[: len(covered)]
            pieces = pieces[len(covered) :]
            # at most one frame of slack around the words, or the clip's silence at the ends
            lo, hi = spans[covered[0]][0], spans[covered[-1]][1]
            assert lo - run[0] <= 1 or (covered[0] == said[0] and run[0] % 100 == 0)
            assert run[-1] + 1 - hi <= 1 or (covered[-1] == said[-1] and run[-1] % 100 == 74)
        assert not pieces
    assert mixed > 150  # most sentences mix clips


def test_samples_mark_the_silence_around_their_clips_words():
    fps, names = 32.0, ("bin", "blue", "at", "f", "two", "now")  # 32: word times exact in binary
    items = []
    for c, first in enumerate(
        (15, 20)
    ):  # clip c: words on frames first.. (8 each) of 75, numbered 100 * c + frame
        words = tuple(Word(w, (first + 8 * i) / fps, (first + 8 + 8 * i) / fps) for i, w in enumerate(names))
        crops = (100 * c + np.arange(75))[:, None, None] * np.ones((1, 2, 2), np.int64)
        data = CachedClip(crops, np.zeros((75, 40, 2)), crops[:, 0, 0])
        items.append(Item(Clip(str(c), Path(str(c)), words), data))
    # `slack` frames next to the words are not silence: with 3, frames 0..11 and 66..74 of clip 0 are
    assert np.flatnonzero(quiet_frames(items[0], fps, 3)).tolist() == list(range(12)) + list(range(66, 75))
    untimed = Item(Clip("u", Path("u"), (Word("bin", math.nan, math.nan),)), items[0].data)
    assert not untimed.clip.timed and not quiet_frames(untimed, fps, 3).any()
    options = SampleOptions(whole=0.3, splice=0.3, silence=0.1, shuffle=0.1, speed=0.1, quiet_slack=3)
    maker, rng, seen = SampleMaker(items, CropSpec(), fps, options), random.Random(5), set()
    silent = {0: (12, 66), 1: (17, 71)}  # each clip's frames [a, b) are not silence
    for _ in range(300):
        sample = maker(rng.randrange(2), rng)
        clips, frames = sample.crops[:, 0, 0] // 100, sample.crops[:, 0, 0] % 100
        expected = [not silent[c][0] <= f < silent[c][1] for c, f in zip(clips, frames, strict=True)]
        assert sample.quiet.tolist() == expected
        seen |= {int(c) for c, q in zip(clips, sample.quiet, strict=True) if q}
    assert seen == {0, 1}
    batch = collate([maker(0, rng), (items[0].data.crops, items[0].data.lip_points, "bin")], CropSpec())
    assert batch["quiet"].shape == batch["video"].shape[:2] and not batch["quiet"][1].any()


def _loss_of(
    net: torch.nn.Module,
    batch: dict,
    cfg: TrainConfig,
    opt: torch.optim.Optimizer | None = None,
    teachers: Teachers | None = None,
) -> float:
    """fit_batch's loss on `batch` at a learning rate of 0 (the weights stay as they are)."""
    opt = opt or torch.optim.SGD(net.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    return fit_batch(net, opt, scaler, batch, cfg, torch.Generator(), torch.device("cpu"), teachers)


def test_quiet_loss_is_the_silence_log_prob_summed_over_quiet_frames():
    torch.manual_seed(0)
    tiny = ModelConfig(channels=(8, 8, 8), hidden=16, visual_dim=16, dropout=0.0, height=32, width=64)
    cfg = TrainConfig(model=tiny, augment=NO_AUGMENT)
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY)))
    crops = np.random.default_rng(0).integers(0, 255, (20, 32, 64), np.uint8)
    points = np.full((20, 40, 2), 16, np.float32)
    # two samples of different lengths: quiet frames 12.. of the first, 0..2 of the second (then padding)
    samples = [
        Sample(crops, points, "bin", np.arange(20) >= 12),
        Sample(crops[:9], points[:9], "at", np.arange(9) < 3),
    ]
    batch = collate(samples, CropSpec(32, 64))
    losses = [_loss_of(copy.deepcopy(model), batch, replace(cfg, quiet_weight=w)) for w in (0.0, 2.0)]
    video = (batch["video"].float() / 255 - cfg.mean) / cfg.std
    with torch.no_grad():
        logp = model(video, batch["points"], batch["lengths"])  # training mode, as in fit_batch
    silent = torch.logsumexp(logp[..., :2], dim=-1)  # blank and separator
    per_sample = (silent[0, 12:].sum() + silent[1, :3].sum()).item() / 2  # summed, averaged over the batch
    assert per_sample < -0.01 and losses[1] == pytest.approx(losses[0] - 2.0 * per_sample, rel=1e-4)


def test_samples_name_the_word_said_on_each_frame():
    fps, names = 32.0, ("bin", "blue", "at", "f", "two", "now")  # 32: word times exact in binary
    items = []
    for c, first in enumerate((15, 20)):  # clip c: words on frames first.. (8 each), numbered 100 * c + frame
        words = tuple(Word(w, (first + 8 * i) / fps, (first + 8 + 8 * i) / fps) for i, w in enumerate(names))
        crops = (100 * c + np.arange(75))[:, None, None] * np.ones((1, 2, 2), np.int64)
        items.append(
            Item(Clip(str(c), Path(str(c)), words), CachedClip(crops, np.zeros((75, 40, 2)), crops[:, 0, 0]))
        )
    options = SampleOptions(whole=0.3, splice=0.3, silence=0.1, shuffle=0.1, speed=0.1)
    maker, rng = SampleMaker(items, CropSpec(), fps, options), random.Random(5)
    assert maker.words == sorted(names)
    said = word_frames(items[1], fps, {"blue": 0, "now": 1})  # words not in the list are not named
    assert said.tolist() == [-1] * 28 + [0] * 8 + [-1] * 24 + [1] * 8 + [-1] * 7
    for _ in range(300):
        sample = maker(rng.randrange(2), rng)
        clips, frames = sample.crops[:, 0, 0] // 100, sample.crops[:, 0, 0] % 100
        expected = [
            maker.words.index(names[(f - first) // 8]) if 0 <= f - first < 48 else -1
            for c, f in zip(clips, frames, strict=True)
            for first in [(15, 20)[c]]
        ]
        assert sample.words.tolist() == expected
    batch = collate(
        [maker(0, rng), (items[0].data.crops[:5], items[0].data.lip_points[:5], "bin")], CropSpec()
    )
    assert batch["words"].shape == batch["video"].shape[:2] and (batch["words"][1] == -1).all()


@pytest.mark.parametrize("source", ["states", "features"])
def test_word_loss_is_the_cross_entropy_of_the_words_said(source):
    torch.manual_seed(0)
    tiny = ModelConfig(channels=(8, 8, 8), hidden=16, visual_dim=16, dropout=0.0, height=32, width=64)
    cfg = TrainConfig(model=tiny, augment=NO_AUGMENT)
    reader = WordReader(LipNet(replace(cfg.model, num_classes=len(VOCABULARY))), 3, source)
    assert reader.words.in_features == (32 if source == "states" else reader.net.feature_dim)
    crops = np.random.default_rng(0).integers(0, 255, (20, 32, 64), np.uint8)
    points = np.full((20, 40, 2), 16, np.float32)
    said = np.full(20, -1)
    said[4:9], said[12:15] = 2, 0
    batch = collate([Sample(crops, points, "bin", np.zeros(20, bool), said)], CropSpec(32, 64))
    losses = [_loss_of(reader.net, batch, cfg), _loss_of(reader, batch, replace(cfg, word_weight=2.0))]
    video = (batch["video"].float() / 255 - cfg.mean) / cfg.std
    with torch.no_grad():
        logp, logits = reader(video, batch["points"], batch["lengths"])
    assert torch.allclose(logp, reader.net(video, batch["points"], batch["lengths"]))  # the same CTC output
    named = torch.cat([logits[0, 4:9, 2], logits[0, 12:15, 0]]) - logits[
        0, [*range(4, 9), *range(12, 15)]
    ].logsumexp(-1)
    assert losses[1] == pytest.approx(losses[0] - 2.0 * named.mean().item(), rel=1e-4)
    # a batch with no frame inside a word: no word loss, but the layer still has a gradient (DDP)
    silent = collate([Sample(crops, points, "", np.zeros(20, bool), np.full(20, -1))], CropSpec(32, 64))
    opt = torch.optim.SGD(reader.parameters(), lr=0.0)  # zeroes the word layer's gradient first
    alone = _loss_of(reader.net, silent, cfg, opt)
    both = _loss_of(reader, silent, replace(cfg, word_weight=2.0), opt)
    assert both == pytest.approx(alone, rel=1e-5) and reader.words.weight.grad is not None


def test_word_loss_needs_word_timings():
    model = LipNet(replace(TrainConfig().model, num_classes=len(VOCABULARY)))
    cfg = TrainConfig(word_weight=0.5)
    assert make_trainee(model, [], replace(cfg, word_weight=0.0)) is model
    assert make_trainee(model, ["bin", "blue"], cfg).words.out_features == 2
    with pytest.raises(ValueError, match="needs word timings"):
        make_trainee(model, [], cfg)  # e.g. a manifest or subtitles: no clip has word timings
    with pytest.raises(ValueError, match="unknown word source"):
        WordReader(model, 2, "lips")


def _checkpoint(path: Path, cfg: TrainConfig, model: LipNet) -> str:
    """A checkpoint of `model` as training writes one (config, vocabulary, weights)."""
    torch.save({"config": cfg.to_dict(), "vocabulary": list(VOCABULARY), "model": model.state_dict()}, path)
    return str(path)


def test_distillation_loss_is_the_kl_from_the_teachers_mean(tmp_path):
    torch.manual_seed(0)
    tiny = ModelConfig(channels=(8, 8, 8), hidden=16, visual_dim=16, dropout=0.0, height=32, width=64)
    cfg = TrainConfig(model=tiny, augment=NO_AUGMENT, crop=CropSpec(32, 64))
    nets = [LipNet(replace(tiny, num_classes=len(VOCABULARY))) for _ in range(3)]
    paths = tuple(_checkpoint(tmp_path / f"t{i}.pt", cfg, net) for i, net in enumerate(nets[1:]))
    teachers = Teachers(paths, cfg, torch.device("cpu"))
    crops = np.random.default_rng(0).integers(0, 255, (20, 32, 64), np.uint8)
    points = np.full((20, 40, 2), 16, np.float32)
    samples = [
        Sample(crops, points, "bin", np.zeros(20, bool)),
        Sample(crops[:9], points[:9], "at", np.zeros(9, bool)),
    ]
    batch = collate(samples, CropSpec(32, 64))
    taught = replace(cfg, teachers=paths, distill_weight=2.0)
    losses = [_loss_of(nets[0], batch, cfg), _loss_of(nets[0], batch, taught, teachers=teachers)]
    video = (batch["video"].float() / 255 - cfg.mean) / cfg.std
    with torch.no_grad():
        student = nets[0](video, batch["points"], batch["lengths"])
        probs = [net.eval()(video, batch["points"], batch["lengths"]).exp() for net in nets[1:]]
    mean = torch.stack(probs).mean(0)
    kl = [(mean[i, :n] * (mean[i, :n].log() - student[i, :n])).sum(-1) for i, n in enumerate((20, 9))]
    expected = torch.cat(kl).mean().item()  # over the batch's 29 frames, the padding left out
    assert expected > 0.01 and losses[1] == pytest.approx(losses[0] + 2.0 * expected, rel=1e-4)
    assert distill_loss(student, student, batch["lengths"]).item() == pytest.approx(0.0, abs=1e-6)
    ruled_out = student.clone()
    ruled_out[..., 5] = -math.inf  # a character the teachers give no chance: no NaN, it adds nothing
    assert torch.isfinite(distill_loss(student, ruled_out, batch["lengths"]))


def test_teachers_must_read_the_same_inputs(tmp_path):
    cfg = TrainConfig()
    net = LipNet(replace(cfg.model, num_classes=len(VOCABULARY)))
    other = _checkpoint(tmp_path / "other.pt", replace(cfg, mean=0.5), net)
    with pytest.raises(RuntimeError, match="other.pt: it reads other crops"):
        Teachers((other,), cfg, torch.device("cpu"))
    with pytest.raises(RuntimeError, match="cannot teach with .*missing.pt"):
        Teachers((str(tmp_path / "missing.pt"),), cfg, torch.device("cpu"))
    for changes in (
        {"distill_weight": 1.0},
        {"teachers": (other,)},
        {"teachers": (other,), "distill_weight": -1.0},
    ):
        with pytest.raises(ValueError, match="distill_weight"):
            _verify_config(replace(cfg, **changes))


def test_a_run_taught_by_a_finished_run(mini_grid, tiny_run, tmp_path, caplog):
    teacher = str(tiny_run / "best.pt")
    cfg = tiny_train_config(
        mini_grid, tmp_path / "taught", teachers=(teacher,), distill_weight=1.0, max_steps=2
    )
    with caplog.at_level("INFO", logger="lipreader"):
        train(cfg)
    assert f"taught by 1 model(s): {teacher}" in caplog.text
    with pytest.raises(RuntimeError, match="--teachers/--distill-weight; use the same setting"):
        train(replace(cfg, teachers=(), distill_weight=0.0, max_steps=4))  # resuming it untaught
    assert load_checkpoint(tmp_path / "taught" / "last.pt")[2].teachers == (teacher,)


def test_a_taught_run_resumes_exactly_as_without_the_stop(mini_grid, tiny_run, tmp_path):
    cfg = tiny_train_config(
        mini_grid,
        tmp_path / "whole",
        teachers=(str(tiny_run / "best.pt"),),
        distill_weight=1.0,
        decoder="greedy",
        epochs=2,
    )
    train(cfg)
    stopped = replace(cfg, out=str(tmp_path / "stopped"))
    train(replace(stopped, max_steps=2))  # stops after epoch 1
    train(stopped)
    resumed, whole = load(tmp_path / "stopped" / "last.pt"), load(tmp_path / "whole" / "last.pt")
    assert resumed["state"]["step"] == whole["state"]["step"] == 4
    for name, value in whole["model"].items():  # loading the teachers again drew no dropout number
        assert torch.equal(value, resumed["model"][name]), name


def test_a_resumed_run_refuses_a_teacher_file_that_changed(mini_grid, tiny_run, tmp_path):
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes((tiny_run / "best.pt").read_bytes())
    sha256 = lambda: hashlib.sha256(teacher.read_bytes()).hexdigest()  # noqa: E731
    cfg = tiny_train_config(
        mini_grid,
        tmp_path / "taught",
        teachers=(str(teacher),),
        distill_weight=1.0,
        decoder="greedy",
        epochs=4,
    )
    last, started = tmp_path / "taught" / "last.pt", sha256()
    train(replace(cfg, max_steps=1))
    assert load(last)["state"]["teacher_digests"] == {str(teacher): started}
    train(replace(cfg, max_steps=2))  # the same teacher: resumes
    assert load(last)["state"]["step"] == 2
    changed = load(teacher)
    changed["model"]["head.bias"] += 1.0  # another target
    torch.save(changed, teacher)
    with pytest.raises(RuntimeError) as refused:
        train(replace(cfg, max_steps=3))
    assert str(refused.value) == (
        f"cannot resume from {last}: teacher {teacher} changed since the run started "
        f"(sha256 {started[:12]}, now {sha256()[:12]}); restore it, --no-resume or another --out"
    )
    assert load(last)["state"]["step"] == 2  # refused before a step
    other = tmp_path / "other.pt"  # another teacher file in its place (the changed one, copied)
    other.write_bytes(teacher.read_bytes())
    with pytest.raises(RuntimeError) as refused:
        train(replace(cfg, teachers=(str(other),), max_steps=3))
    assert str(refused.value) == (
        f"cannot resume from {last}: the teachers changed since the run started: {teacher} (sha256 "
        f"{started[:12]}) is gone, {other} (sha256 {sha256()[:12]}) is new; use the same --teachers, "
        "--no-resume or another --out"
    )
    assert load(last)["state"]["step"] == 2
    older = load(last)  # as checkpoints written before the digests were kept: resumes as it did
    del older["state"]["teacher_digests"]
    torch.save(older, last)
    train(replace(cfg, max_steps=3))
    assert load(last)["state"]["teacher_digests"] == {str(teacher): sha256()}
    train(replace(cfg, teachers=(str(other),), max_steps=4))  # the same file by another name: resumes
    resumed = load(last)["state"]
    assert resumed["step"] == 4 and resumed["teacher_digests"] == {str(other): sha256()}


def test_a_time_warp_changes_speed_smoothly_within_its_bounds():
    at = warped(75, 1.1, 0.2, random.Random(3))
    steps = np.diff(at)
    assert at[0] == 0 and at[-1] < 75 and at[-1] + steps.max() >= 75 - 1e-9  # reads the sample to its end
    assert steps.min() >= 1.1 * 0.8 - 1e-9 and steps.max() <= 1.1 * 1.2 + 1e-9
    assert steps.max() - steps.min() > 0.1  # the speed changes within the sample...
    assert np.abs(np.diff(steps)).max() <= 2 * 0.2 * 1.1 / 8 + 1e-9  # ...by at most a knot's change per frame
    assert np.array_equal(at, warped(75, 1.1, 0.2, random.Random(3)))  # seeded


def numbered_clip(fps: float = 25.0) -> Item:
    """A 75-frame clip of "bin blue at f two now" (frames 10-52) whose crops hold their frame number."""
    names = ("bin", "blue", "at", "f", "two", "now")
    words = tuple(Word(w, (10 + 7 * i) / fps, (17 + 7 * i) / fps) for i, w in enumerate(names))
    crops = np.arange(75, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    return Item(
        Clip("a", Path("a"), words), CachedClip(crops, np.zeros((75, 40, 2), np.float32), crops[:, 0, 0])
    )


def test_warped_samples_keep_their_frames_in_order():
    fps, item = 25.0, numbered_clip()
    names = tuple(w.text for w in item.clip.words)
    options = SampleOptions(whole=1.0, splice=0.0, speed=0.1, warp=0.3)
    maker, rng = SampleMaker([item], CropSpec(), fps, options), random.Random(5)
    lengths = set()
    for _ in range(20):
        video, _, text, *_ = maker(0, rng)
        frames = video[:, 0, 0].astype(int)
        assert text == " ".join(names) and np.all(np.diff(frames) >= 0) and frames[0] == 0
        assert frames[-1] >= 72 and np.diff(frames).max() <= 2  # the whole clip, none of it skipped far
        lengths.add(len(frames))
    assert len(lengths) > 5  # each sample at its own speeds


def test_a_slowed_sample_shows_all_of_its_frames():
    """max_frames bounds the frames a sample is cut from; slowed (speed or warp), it shows them all on
    more frames, as the shipped stages were trained (its transcript names every word in them)."""
    options = SampleOptions(whole=1.0, splice=0.0, speed=0.1, warp=0.3, max_frames=80)
    maker, rng = SampleMaker([numbered_clip()], CropSpec(), 25.0, options), random.Random(5)
    samples = [maker(0, rng)[0][:, 0, 0].astype(int) for _ in range(30)]
    assert max(map(len, samples)) > 80 and min(map(len, samples)) < 75
    assert all(frames[-1] >= 72 and np.all(np.diff(frames) >= 0) for frames in samples)


def test_sample_stream_is_pinned():
    """The samples a seeded SampleMaker draws (whole, spliced, cut, silent, speed-perturbed) are pinned
    by a digest taken with the code that trained the shipped stages (commit efd0837): a change to how
    samples are drawn changes what a committed config trains on. Change the digest only on purpose."""
    fps, names = 25.0, ("bin", "blue", "at", "f", "two", "now")
    items = []
    for name, n, first in (("a", 6, 10), ("b", 6, 14), ("c", 5, 20)):
        starts = [first + 7 * i for i in range(n)]  # frames; 7 a word
        words = tuple(Word(w, t / fps, (t + 7) / fps) for w, t in zip(names, starts, strict=False))
        crops = (np.arange(75, dtype=np.uint8) + first)[:, None, None] * np.ones((1, 2, 2), np.uint8)
        data = CachedClip(crops, np.zeros((75, 40, 2), np.float32), crops[:, 0, 0])
        items.append(Item(Clip(name, Path(name), words), data))
    # max_frames 200: no splice is cut short (what the fix of such cuts changed)
    options = SampleOptions(whole=0.3, splice=0.3, silence=0.1, margin=3, max_frames=200, speed=0.1)
    maker, rng = SampleMaker(items, CropSpec(), fps, options), random.Random(7)
    drawn = [
        (video[:, 0, 0].tolist(), text) for video, _, text, *_ in (maker(k % 3, rng) for k in range(400))
    ]
    assert hashlib.sha256(repr(drawn).encode()).hexdigest()[:16] == "3c24cae5be27f38f"


def spoken_clip(name: str, lengths: list[int], base: int, fps: float = 32.0) -> tuple[Item, dict[str, set]]:
    """A clip of words w0, w1... `lengths` frames long, 4 frames apart, the first at frame 10, 12
    frames of silence after the last; its crops hold `base` + their frame number. Also each word's
    frames (numbered so)."""
    words, spans, at = [], {}, 10
    for k, n in enumerate(lengths):
        words.append(Word(f"w{k}", at / fps, (at + n) / fps))  # fps 32: word times exact in binary
        spans[f"w{k}"] = set(range(base + at, base + at + n))
        at += n + 4
    total = at + 8
    crops = (base + np.arange(total))[:, None, None] * np.ones((1, 2, 2), np.int64)
    data = CachedClip(crops, np.zeros((total, 40, 2), np.float32), crops[:, 0, 0])
    return Item(Clip(name, Path(name), tuple(words)), data), spans


@pytest.mark.parametrize("overlong", [None, 11])
def test_a_clip_longer_than_max_frames_gives_only_cuts_of_whole_words_that_fit(overlong):
    """A timed clip longer than max_frames is never used whole nor spliced: every sample of it is one
    run of at most max_frames frames, whose transcript is exactly the words it holds whole (and a
    word longer than max_frames is never cut); every other word is trained on."""
    fps, most = 32.0, 40
    lengths = [50 if k == overlong else 8 for k in range(24)]
    long, spans = spoken_clip("long", lengths, 0)  # 300 frames or more
    short, _ = spoken_clip("short", [6, 6], 1000)
    assert len(long.data.crops) > 3 * most and len(short.data.crops) <= most
    options = SampleOptions(
        whole=0.3, splice=0.3, silence=0.1, shuffle=0.1, partial=0.3, margin=3, speed=0, max_frames=most
    )
    maker, rng, said, silent = (
        SampleMaker([long, short], CropSpec(), fps, options),
        random.Random(4),
        set(),
        0,
    )
    for k in range(1000):
        video, _, text, *_ = maker(k % 2, rng)
        frames = video[:, 0, 0].astype(int)
        if k % 2:  # the short clip never splices in the long one
            assert frames.min() >= 1000
            continue
        assert len(frames) <= most and np.all(np.diff(frames) == 1)
        words = text.split()
        assert words == [w for w, frames_of in spans.items() if frames_of <= set(frames.tolist())]
        said |= set(words)
        silent += not words
    assert said == set(spans) - {f"w{overlong}"} and silent > 20


def test_clips_longer_than_max_frames_are_trained_on(mini_grid, tmp_path, caplog):
    cfg = tiny_train_config(mini_grid, tmp_path / "run", max_steps=1)
    cfg = replace(cfg, samples=replace(cfg.samples, max_frames=74))  # every 75-frame clip is longer
    with caplog.at_level(logging.INFO, logger="lipreader"):
        train(cfg)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 3 and not split["left_out"]
    assert "clips longer than 74 frames, trained on through cuts of their words: 3" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_depths_are_mirrored_zoomed_and_held_with_their_points():
    n, t = 8, 5
    xy, z = torch.rand(n, t, 80) * 2 - 1, torch.rand(n, t, 40) - 0.5
    lengths = torch.full((n,), t)
    video = torch.rand(n, t, 8, 16)
    for options in (replace(NO_AUGMENT, mirror=1.0), replace(NO_AUGMENT, scale=0.3)):
        plain = augment(video, xy, lengths, options, torch.Generator().manual_seed(1))[1]
        deep = augment(video, torch.cat([xy, z], -1), lengths, options, torch.Generator().manual_seed(1))[1]
        assert deep.shape == (n, t, 120) and torch.allclose(deep[..., :80], plain, atol=1e-6)
        if options.mirror:  # a point's depth goes where the point goes
            assert torch.equal(deep[..., 80:], z[:, :, torch.from_numpy(MIRROR_POINTS)])
        else:  # zoomed like x: no rotation or shift, so x scales by the zoom alone
            zoom = plain[..., 0] / xy[..., 0]
            assert torch.allclose(deep[..., 80:] / z, zoom[..., None].expand(n, t, 40), rtol=1e-4)
    held = augment(
        video, torch.cat([xy, z], -1), lengths, replace(NO_AUGMENT, point_drop=1.0), torch.Generator()
    )[1]
    assert torch.allclose(held[..., 80:], z.mean(1, keepdim=True).expand(n, t, 40), atol=1e-6)


@pytest.mark.parametrize("drop", [0.0, 0.5, 1.0])
def test_point_drop_holds_chosen_samples_still_on_their_own_frames(drop):
    gen = torch.Generator().manual_seed(3)
    n, t = 64, 6
    video, points = torch.rand(n, t, 8, 16), torch.rand(n, t, 80)
    lengths = torch.randint(2, t + 1, (n,), generator=gen)
    _, out = augment(video, points, lengths, replace(NO_AUGMENT, point_drop=drop), gen)
    held = 0
    for p, q, length in zip(points, out, lengths.tolist(), strict=True):
        if torch.equal(q, p):
            continue
        held += 1
        assert torch.allclose(q[:length], p[:length].mean(0).expand(length, 80), atol=1e-6)
        assert torch.equal(q[length:], p[length:])  # padding untouched
    if drop == 0:
        assert held == 0
    elif drop == 1:
        assert held == n
    else:
        assert 16 < held < 48


def test_model_must_match_the_crop():
    cfg = TrainConfig()
    with pytest.raises(ValueError, match="does not match the crop spec"):
        _verify_config(replace(cfg, crop=replace(cfg.crop, height=64)))


def test_config_from_dict_round_trip_and_old_checkpoints():
    cfg = replace(TrainConfig(epochs=36, val_speakers=("s2",)), model=replace(TrainConfig().model, hidden=8))
    assert config_from_dict(cfg.to_dict()) == cfg
    old = TrainConfig(epochs=36).to_dict()
    for key in ("split", "val_speakers", "decoder", "beam_width", "device", "amp", "tensorboard"):
        del old[key]  # a checkpoint written before these fields existed
    assert config_from_dict(old) == TrainConfig(epochs=36)
