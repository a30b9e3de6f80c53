"""The nose range a model learnt, measured on its training clips and written into its files.

A crop's horizontal scale comes from the outer eye corners; a face flatter or taller than the ones
a model learnt then reaches it as a flatter or taller mouth (bench/face_shape.py). CropSpec's
nose_low and nose_high name the eye-line-to-nose-bottom distances (in eye-corner distances) of the
faces learnt; a face outside them is scaled vertically into them, one inside is cut as before
(core.crop). `lipreader-train nose-range` measures them on the run's training clips, its 1st to
99th percentile of frames, and writes them into an exported model's contract and, when given, the
checkpoint a fine-tune starts from, so that *Adapt to my face* cuts the user's crops the same way.
The model's weights are untouched: the frames of its training faces inside the range are cut as
they were when it learnt them, the 2 % outside it a little closer to it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.crop import CropSpec
from core.frontend import extract_clip
from core.inference import LipModel
from core.video import VideoError
from training.config import TrainConfig
from training.data import Clip
from training.export import rewrite_contract
from training.readers import read_data
from training.runfiles import save_atomic
from training.split import split_data

log = logging.getLogger("lipreader")

NOSE_CLIPS = 60  # training clips measured (about 4,500 frames of GRID; 42 s on 2 cores)
PERCENTILES = (1.0, 99.0)  # of the measured frames: the range learnt, its outliers left out
MIN_FRAMES = 50  # frames with a face below which no range is taken


@dataclass(frozen=True)
class NoseRange:
    """The nose range measured on a run's training clips."""

    low: float  # the PERCENTILES of the frames' nose ratios (core.crop.nose_ratio)
    high: float
    frames: int  # frames with a face measured
    clips: int  # clips read


def measure_nose_range(
    clips: list[Clip], spec: CropSpec, fps: float, seed: int, count: int = NOSE_CLIPS
) -> NoseRange:
    """The PERCENTILES of the nose ratio over the frames of `count` of `clips` (seeded), cut with
    `spec`'s landmark way. Raises RuntimeError with fewer than MIN_FRAMES frames with a face."""
    chosen = sorted(clips, key=lambda c: c.clip_id)
    random.Random(seed).shuffle(chosen)
    ratios, read = [], 0
    for clip in tqdm(chosen[:count], desc="nose range", unit="clip"):
        try:
            result = extract_clip(clip.video, spec, fps, start=clip.start, end=clip.end)
        except (VideoError, OSError) as e:
            log.warning("nose range: %s", e)
            continue
        read += 1
        ratios.append(result.nose_ratios[np.isfinite(result.nose_ratios)])
    found = np.concatenate(ratios) if ratios else np.zeros(0)
    if len(found) < MIN_FRAMES:
        raise RuntimeError(
            f"cannot measure the nose range: a face on {len(found)} frames of the {read} clips read "
            f"(at least {MIN_FRAMES} needed)"
        )
    low, high = (float(np.percentile(found, q)) for q in PERCENTILES)
    return NoseRange(round(low, 3), round(high, 3), len(found), read)


def _without_range(crop: CropSpec) -> CropSpec:
    return replace(crop, nose_low=0.0, nose_high=0.0)


def _saved_crop(checkpoint: Path) -> tuple[dict, CropSpec]:
    """A checkpoint and the crop its config holds; RuntimeError naming it when it has none."""
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        return saved, CropSpec.from_dict(saved["config"]["crop"])
    except Exception as e:  # missing, truncated, foreign: one line
        raise RuntimeError(f"cannot read checkpoint {checkpoint}: {type(e).__name__}: {e}") from e


def nose_range_stage(cfg: TrainConfig, onnx: Path, checkpoint: Path | None) -> NoseRange:
    """`lipreader-train nose-range`: measure on the training clips of `cfg`'s data and split (cut
    as `cfg` says) and write the range into the contract of `onnx` and the config of `checkpoint`.
    Both files are read and checked against `cfg` first; nothing is written when one does not fit."""
    contract = LipModel.load(onnx, provider="cpu", stream=False).contract
    crop, square = contract.crop, _without_range(cfg.crop)  # square: the faces as they are
    if _without_range(crop) != square:
        raise RuntimeError(f"cannot write a nose range into {onnx}: its crops are not this config's")
    if CropSpec.from_dict(contract.training.get("crop", {})).nose_high:  # measured again, it would differ
        raise RuntimeError(f"{onnx} was trained on crops cut to a nose range: it keeps that one")
    saved = None
    if checkpoint is not None:
        saved, saved_crop = _saved_crop(checkpoint)
        if _without_range(saved_crop) != square:
            raise RuntimeError(f"checkpoint {checkpoint} was not trained on the crops of {onnx}")
    train_clips, _ = split_data(cfg, read_data(cfg.data).clips)
    nose = measure_nose_range(train_clips, square, cfg.fps, cfg.seed)
    rewrite_contract(onnx, lambda c: replace(c, crop=replace(crop, nose_low=nose.low, nose_high=nose.high)))
    if saved is not None:
        saved["config"]["crop"] = replace(crop, nose_low=nose.low, nose_high=nose.high).to_dict()
        save_atomic(saved, checkpoint)
    return nose
