"""The train/val split of a run's clips (seeded random or by speaker) and loading their cached crops."""

from __future__ import annotations

import random
from pathlib import Path

from training.config import TrainConfig
from training.data import Clip
from training.dataset import Item, cuttable
from training.prepare import load_cached


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
    """The clips with their crops and lip points read from the crop cache `folder` (OSError if missing)."""
    return [Item(c, load_cached(folder / f"{c.clip_id}.npz")) for c in clips]


def drop_long(items: list[Item], max_frames: int, fps: float) -> tuple[list[Item], dict[str, str]]:
    """The items training can use, and why each other one is left out (clip id -> its video and why).

    A clip longer than `max_frames` would lose frames but keep its text if it were used whole: one
    with word timings is kept and trained on through cuts of its words that fit (see SampleMaker),
    one without, or whose every word is longer than `max_frames` on its own, is left out.
    """
    keep, long = [], {}
    for it in items:
        frames = len(it.data.crops)
        if frames <= max_frames or cuttable(it, fps, max_frames):
            keep.append(it)
            continue
        why = (
            f"none of its {len(it.clip.words)} words fits in {max_frames} frames"
            if it.clip.timed and it.clip.words
            else "no word timings to cut it at"
        )
        long[it.clip.clip_id] = (
            f"{it.clip.video}: {frames} frames, longer than max_frames {max_frames}; {why}"
        )
    return keep, long
