"""The train/val split of a run's clips (seeded random or by speaker) and loading their cached crops."""

from __future__ import annotations

import random
from pathlib import Path

from training.config import TrainConfig
from training.data import Clip
from training.dataset import Item
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


def drop_long(items: list[Item], max_frames: int) -> tuple[list[Item], dict[str, str]]:
    """Items short enough to be used whole (longer ones would lose frames but keep their text)."""
    keep = [it for it in items if len(it.data.crops) <= max_frames]
    long = {
        it.clip.clip_id: f"{it.clip.video}: {len(it.data.crops)} frames, longer than max_frames {max_frames}"
        for it in items
        if len(it.data.crops) > max_frames
    }
    return keep, long
