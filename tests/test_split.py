"""Which training clips drop_long keeps: those longer than max_frames only when they can be cut."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from training.data import Clip, Word
from training.dataset import Item, cuttable
from training.prepare import CachedClip
from training.split import drop_long

FPS = 32.0  # word times exact in binary


def item(name: str, frames: int, words: list[tuple[int, int]], timed: bool = True) -> Item:
    """A clip `frames` long whose words w0, w1... are on frames [a, b) (no times when not `timed`)."""
    said = tuple(
        Word(f"w{k}", a / FPS, b / FPS) if timed else Word(f"w{k}", math.nan, math.nan)
        for k, (a, b) in enumerate(words)
    )
    crops = np.zeros((frames, 2, 2), np.uint8)
    return Item(
        Clip(name, Path(f"{name}.mp4"), said), CachedClip(crops, np.zeros((frames, 40, 2)), crops[:, 0, 0])
    )


def test_a_long_clip_is_left_out_only_when_no_cut_of_it_fits():
    most = 40
    items = [
        item("short", 30, [(5, 12), (12, 20)]),
        item("short-untimed", 30, [(5, 12)], timed=False),
        item("long", 120, [(5, 12), (12, 20), (30, 90), (95, 110)]),  # one word of 60 frames: cut without it
        item("long-untimed", 120, [(5, 12), (12, 20)], timed=False),
        item("long-words", 120, [(5, 50), (60, 110)]),  # 45 and 50 frames: no word fits
    ]
    assert [cuttable(it, FPS, most) for it in items] == [True, False, True, False, False]
    keep, left = drop_long(items, most, FPS)
    assert [it.clip.clip_id for it in keep] == ["short", "short-untimed", "long"]
    too_long = "120 frames, longer than max_frames 40"
    assert left == {
        "long-untimed": f"long-untimed.mp4: {too_long}; no word timings to cut it at",
        "long-words": f"long-words.mp4: {too_long}; none of its 2 words fits in 40 frames",
    }
    # a word exactly max_frames long fits
    assert [it.clip.clip_id for it in drop_long([item("edge", 120, [(10, 50)])], most, FPS)[0]] == ["edge"]
