"""Training samples from cached crops: whole clips, sub-windows cut at word boundaries, splices of
two clips, stretches of a clip's leading or trailing silence (so the model also works on a
sliding window over a continuous stream, where a window may hold no word at all) and sentences
shuffled word by word across clips, each sample with the frames known to be silence; plus batched
augmentation on tensors."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from core.crop import NUM_LIP_POINTS, CropSpec, normalise_points, point_features
from training.data import BLANK, CHAR_INDEX, Clip, Word
from training.prepare import CachedClip

# mirror image of the 40 lip points: upper rings run corner to corner (k <-> 10-k), lower rings
# run between the corners (k <-> 30-k), for the outer (0..19) and inner (20..39) ring alike
_RING = [10 - k for k in range(11)] + [30 - k for k in range(11, 20)]
MIRROR_POINTS = np.array(_RING + [20 + k for k in _RING])


MIN_SILENCE = 4  # shortest silence sample, frames
SHUFFLE_SLACK = 1  # most frames of slack around a word cut for a shuffled sentence
WARP_KNOT = 8  # frames (of the sample) between the knots of a time warp's speed curve


def encode(text: str) -> list[int]:
    """Text to class indices; characters outside the vocabulary are dropped."""
    return [CHAR_INDEX[c] for c in text.lower() if c in CHAR_INDEX and c != BLANK]


@dataclass(frozen=True)
class SampleOptions:
    """How training samples are drawn."""

    whole: float = 0.5  # share of samples that are whole clips
    splice: float = 0.25  # share that join the tail of one clip to the head of another
    silence: float = 0.0  # share that are silence before or after a clip's words (empty transcript)
    shuffle: float = 0.0  # share that are sentences built word by word from random clips.
    # Each word comes from another random clip, at its place in the sentence: each word in a context
    # it was never said in, read where it is
    # (tried in config/experiments/grid-s1-stage10-shuffle.args: it did not help)
    margin: int = 3  # frames of random slack kept around a cut word boundary
    partial: float = 0.0  # chance that a cut sample's open end stops inside a word left unsaid
    # (the next or previous word, partly seen, is not in the transcript): live windows end mid-word,
    # and the model should not guess at a word it has not seen whole
    max_frames: int = 100  # most frames a sample is cut from (slowed by speed or warp, it shows them on more)
    quiet_slack: int = 8  # frames next to a clip's words never counted as its silence.
    # See quiet_frames: alignments are approximate, and the model says a word's last letters after
    # its end (3 frames, with a mean over frames as the loss then, lost the "ase" of "please":
    # config/experiments/grid-s1-stage10-quiet3.args)
    speed: float = 0.1  # speed perturbation: factor drawn from [1 - speed, 1 + speed]
    warp: float = 0.0  # time warp: the speed also changes within the sample, by up to this fraction
    # either way, smoothly (drawn every WARP_KNOT frames): a word said faster than its neighbours


@dataclass
class Item:
    """One clip in memory."""

    clip: Clip
    data: CachedClip


def _frame_span(words: tuple[Word, ...], fps: float, total: int) -> tuple[int, int]:
    """Frames [a, b) from the first word's start to the last word's end, within the clip's `total`."""
    a = min(total, max(0, math.floor(words[0].start * fps)))
    return a, max(a, min(total, math.ceil(words[-1].end * fps)))


def _cut(
    item: Item,
    first: int,
    last: int,
    fps: float,
    margin: int,
    rng: random.Random,
    to_start: bool = False,
    to_end: bool = False,
    partial: float = 0.0,
) -> tuple[slice, list[Word]]:
    """Frames covering words[first..last] with slack; to_start/to_end extend to the clip's edges.

    With `partial` odds, each open end instead stops strictly inside the neighbouring word (not in
    the returned words), so that word is seen in part; a neighbour under 2 frames long is not cut.
    """
    words = item.clip.words[first : last + 1]
    total = len(item.data.crops)
    a, b = _frame_span(words, fps, total)
    a = 0 if to_start else max(0, a - rng.randint(0, margin))
    b = total if to_end else min(total, b + rng.randint(0, margin))
    if partial and not to_start and first > 0 and rng.random() < partial:
        a = _inside(item, first - 1, fps, rng, a)
    if partial and not to_end and last + 1 < len(item.clip.words) and rng.random() < partial:
        b = _inside(item, last + 1, fps, rng, b)
    return slice(a, b), list(words)


def _inside(item: Item, k: int, fps: float, rng: random.Random, otherwise: int) -> int:
    """A random frame strictly inside word k of the clip (`otherwise` if it is under 2 frames long)."""
    lo, hi = _frame_span(item.clip.words[k : k + 1], fps, len(item.data.crops))
    return rng.randint(lo + 1, hi - 1) if hi - lo >= 2 else otherwise


def _silence(item: Item, fps: float, margin: int, rng: random.Random) -> slice | None:
    """A random stretch (at least MIN_SILENCE frames) of the clip's silence before its first word or
    after its last, kept `margin` frames clear of the words; None when there is none that long."""
    total = len(item.data.crops)
    a, b = _frame_span(item.clip.words, fps, total)
    spans = [(lo, hi) for lo, hi in ((0, a - margin), (b + margin, total)) if hi - lo >= MIN_SILENCE]
    if not spans:
        return None
    lo, hi = rng.choice(spans)
    start = rng.randint(lo, hi - MIN_SILENCE)
    return slice(start, rng.randint(start + MIN_SILENCE, hi))


def word_spans(item: Item, fps: float) -> list[tuple[int, int]]:
    """Frames [a, b) of each of the clip's words (see _frame_span)."""
    total = len(item.data.crops)
    return [_frame_span((w,), fps, total) for w in item.clip.words]


def cuttable(item: Item, fps: float, max_frames: int) -> bool:
    """True when a cut of the clip can hold at least one of its words whole in `max_frames` frames
    (it has word timings and a word no longer than that): what a clip longer than max_frames is
    trained on (SampleMaker)."""
    return item.clip.timed and any(b - a <= max_frames for a, b in word_spans(item, fps))


def _fit(s: slice, a: int, b: int, max_frames: int) -> slice:
    """Slice `s` (holding the words on frames [a, b), b - a <= max_frames) shortened to at most
    `max_frames` frames by trimming its slack on either side of the words, half of the room each
    when both sides have more."""
    room = max_frames - (b - a)
    before, after = a - s.start, s.stop - b
    if before + after <= room:
        return s
    before = min(before, max(room // 2, room - after))
    return slice(a - before, b + min(after, room - before))


class Sample(NamedTuple):
    """A training sample: crops, lip points and transcript, and which frames are known silence."""

    crops: np.ndarray  # uint8 (T, H, W[, C])
    points: np.ndarray  # float32 (T, 40, 2), crop pixels ((T, 40, 3) with depth)
    text: str
    quiet: np.ndarray  # bool (T,): silence before or after its clip's words (see quiet_frames)
    words: np.ndarray | None = None  # int64 (T,): the word said on each frame, -1: none (see word_frames)


def quiet_frames(item: Item, fps: float, slack: int) -> np.ndarray:
    """bool (T,), one per frame of the clip: silence before its first word or after its last, more
    than `slack` frames from them (no frame of a clip without word timings)."""
    total = len(item.data.crops)
    quiet = np.zeros(total, bool)
    if item.clip.timed and item.clip.words:
        a, b = _frame_span(item.clip.words, fps, total)
        quiet[: max(0, a - slack)] = True
        quiet[min(total, b + slack) :] = True
    return quiet


def word_list(items: list[Item]) -> list[str]:
    """The words of the items' timed transcripts, sorted: the classes of the word loss."""
    return sorted({w.text for it in items if it.clip.timed for w in it.clip.words})


def word_frames(item: Item, fps: float, index: dict[str, int]) -> np.ndarray:
    """int64 (T,), one per frame of the clip: the index in `index` of the word said on it (its
    aligned span), -1 between words, on words not in `index` and on clips without word timings.

    A sample's frames keep their clip's labels, so the few slack frames a cut sample keeps of a
    neighbouring word (SampleOptions.margin) name that word though its transcript leaves it out:
    what the lips show there is that word's edge.
    """
    total = len(item.data.crops)
    said = np.full(total, -1, np.int64)
    if item.clip.timed:
        for w in item.clip.words:
            if w.text in index:
                a, b = _frame_span((w,), fps, total)
                said[a:b] = index[w.text]
    return said


class SampleMaker:
    """Draws samples (`Sample`) from items.

    A clip longer than max_frames that can be cut (`cuttable`) gives only cuts of consecutive whole
    words that fit in max_frames, and stretches of its silence: never the whole clip, never part of
    a splice or a shuffled sentence. Other clips that long are not to be given (training/split.py
    drop_long leaves them out): they would be drawn as shorter ones are, cut short at max_frames.
    """

    def __init__(self, items: list[Item], spec: CropSpec, fps: float, options: SampleOptions) -> None:
        self.items, self.spec, self.fps, self.opt = items, spec, fps, options
        self.words = word_list(items)
        self._index = {w: i for i, w in enumerate(self.words)}
        # item index -> its words' frame spans, for the clips used through cuts only
        self._long = {
            k: word_spans(it, fps)
            for k, it in enumerate(items)
            if len(it.data.crops) > options.max_frames and cuttable(it, fps, options.max_frames)
        }

    def shuffled(self, item: Item, rng: random.Random) -> tuple[list[tuple[Item, slice]], list[Word]]:
        """A sentence as long as `item`'s whose k-th word is cut (with at most one frame of slack)
        from a random clip with a timed k-th word; the first and last words may keep their clip's
        leading or trailing silence. Words past max_frames are left out."""
        n = len(item.clip.words)
        pieces, words, length = [], [], 0
        for k in range(n):
            j = rng.randrange(len(self.items))
            other = self.items[j]
            if not other.clip.timed or len(other.clip.words) <= k or j in self._long:
                other = item
            to_start = k == 0 and rng.random() < 0.5
            to_end = k == n - 1 == len(other.clip.words) - 1 and rng.random() < 0.5
            s, w = _cut(other, k, k, self.fps, SHUFFLE_SLACK, rng, to_start=to_start, to_end=to_end)
            length += s.stop - s.start
            if words and length > self.opt.max_frames:
                break
            pieces.append((other, s))
            words += w
        return pieces, words

    def __call__(self, index: int, rng: random.Random) -> Sample:
        item = self.items[index]
        r = rng.random()
        n = len(item.clip.words)
        shared = self.opt.whole + self.opt.splice
        p = self.opt.partial
        stretch = None
        if n and item.clip.timed and shared <= r < shared + self.opt.silence:
            stretch = _silence(item, self.fps, self.opt.margin, rng)
        mixed = shared + self.opt.silence
        if stretch is not None:
            pieces, text = [(item, stretch)], ""
        elif index in self._long:  # any other draw: a cut that fits (the clip is too long for the rest)
            pieces, text = self._fitting_cut(item, self._long[index], rng)
        elif r < self.opt.whole or n < 2 or not item.clip.timed:  # cuts need word timings
            pieces, text = [(item, slice(None))], item.clip.text
        elif mixed <= r < mixed + self.opt.shuffle:
            pieces, words = self.shuffled(item, rng)
            text = " ".join(w.text for w in words)
        elif r < self.opt.whole + self.opt.splice:
            j = rng.randrange(len(self.items))
            other = self.items[j]
            if not other.clip.timed or len(other.clip.words) < 2 or j in self._long:
                other = item
            first = rng.randrange(1, n)
            last = rng.randrange(0, len(other.clip.words) - 1)
            s1, w1 = _cut(item, first, n - 1, self.fps, self.opt.margin, rng, to_end=True, partial=p)
            s2, w2 = _cut(other, 0, last, self.fps, self.opt.margin, rng, to_start=True, partial=p)
            pieces = [(item, s1), (other, s2)]
            # the join may be cut short at max_frames below: a word of the head it cuts is not seen whole
            room = self.opt.max_frames - (s1.stop - s1.start) + s2.start
            w2 = [w for w in w2 if math.ceil(w.end * self.fps) <= room]
            text = " ".join(w.text for w in w1 + w2)
        else:
            first = rng.randrange(0, n)
            s, w = self._cut_words(item, first, rng.randrange(first, n), rng)
            pieces, text = [(item, s)], " ".join(x.text for x in w)
        total = sum(len(range(*s.indices(len(it.data.crops)))) for it, s in pieces)
        idx = np.arange(min(total, self.opt.max_frames))
        if self.opt.speed > 0 or self.opt.warp > 0:
            factor = rng.uniform(1 - self.opt.speed, 1 + self.opt.speed) if self.opt.speed > 0 else 1.0
            if self.opt.warp > 0:
                at = warped(len(idx), factor, self.opt.warp, rng)
            else:
                at = np.arange(0, len(idx), factor)
            idx = idx[np.clip(np.round(at).astype(int), 0, len(idx) - 1)]
        return self._gather(pieces, idx, text)

    def _fitting_cut(
        self, item: Item, spans: list[tuple[int, int]], rng: random.Random
    ) -> tuple[list[tuple[Item, slice]], str]:
        """A cut of consecutive whole words of `item` (a clip longer than max_frames; `spans`: its
        words' frames) in at most max_frames frames: the first word drawn among those that fit, the
        last among those that fit with it, the slack as for other cuts, trimmed to fit."""
        n, most = len(spans), self.opt.max_frames
        first = rng.choice([k for k, (a, b) in enumerate(spans) if b - a <= most])
        last = first
        while last + 1 < n and spans[last + 1][1] - spans[first][0] <= most:
            last += 1
        last = rng.randint(first, last)
        s, w = self._cut_words(item, first, last, rng)
        return [(item, _fit(s, spans[first][0], spans[last][1], most))], " ".join(x.text for x in w)

    def _cut_words(self, item: Item, first: int, last: int, rng: random.Random) -> tuple[slice, list[Word]]:
        """`item`'s words `first` to `last` with the slack of a cut (_cut), reaching to the clip's
        start or end half the time when they are its first or last words."""
        n = len(item.clip.words)
        return _cut(
            item,
            first,
            last,
            self.fps,
            self.opt.margin,
            rng,
            to_start=first == 0 and rng.random() < 0.5,
            to_end=last == n - 1 and rng.random() < 0.5,
            partial=self.opt.partial,
        )

    def _gather(self, pieces: list[tuple[Item, slice]], idx: np.ndarray, text: str) -> Sample:
        """The sample made of `pieces` (clips' frame slices, in order), frames `idx` of their join."""

        def join(part: Callable[[Item], np.ndarray]) -> np.ndarray:
            return np.concatenate([part(it)[s] for it, s in pieces])[idx]

        return Sample(
            join(lambda it: it.data.crops),
            join(lambda it: it.data.lip_points),
            text,
            join(lambda it: quiet_frames(it, self.fps, self.opt.quiet_slack)),
            join(lambda it: word_frames(it, self.fps, self._index)),
        )


def warped(n: int, factor: float, warp: float, rng: random.Random) -> np.ndarray:
    """Where each frame of a time-warped sample reads `n` source frames: float positions, shape (M,),
    in [0, n) from 0, increasing by `factor` times a speed in [1 - warp, 1 + warp] that is drawn
    every WARP_KNOT frames and changes linearly in between. M is about n / factor, up to
    n / (factor * (1 - warp)) + 1: more than `n` when the sample is slowed, as with speed alone."""
    frames = math.ceil(n / (factor * (1 - warp))) + 1  # enough for the slowest curve
    knots = [1 + warp * rng.uniform(-1, 1) for _ in range(frames // WARP_KNOT + 2)]
    speed = np.interp(np.arange(frames), np.arange(len(knots)) * WARP_KNOT, knots)
    at = np.concatenate([[0.0], np.cumsum(factor * speed)])
    return at[at < n]


def collate(
    samples: list[Sample | tuple[np.ndarray, np.ndarray, str]], spec: CropSpec
) -> dict[str, torch.Tensor]:
    """Pad a list of samples (`Sample`s, or (crops, points, text) with no frame known quiet) into a batch.

    Returns video uint8 (N, T, H, W[, C]), points float32 (N, T, F) (F: core.crop.point_features,
    80, or 120 with depth), quiet bool (N, T), words int64
    (N, T) (-1 where unknown or padded), lengths (N,), targets (sum L,), target_lengths (N,).
    """
    t_max = max(len(sample[0]) for sample in samples)
    n = len(samples)
    video = np.zeros((n, t_max, *samples[0][0].shape[1:]), np.uint8)
    points = np.zeros((n, t_max, point_features(spec)), np.float32)
    quiet = np.zeros((n, t_max), bool)
    words = np.full((n, t_max), -1, np.int64)
    lengths, targets, target_lengths = [], [], []
    for i, (c, p, text, *rest) in enumerate(samples):
        video[i, : len(c)] = c
        points[i, : len(c)] = normalise_points(p, spec)
        if rest:
            quiet[i, : len(c)] = rest[0]
        if len(rest) > 1 and rest[1] is not None:
            words[i, : len(c)] = rest[1]
        lengths.append(len(c))
        labels = encode(text)
        targets.extend(labels)
        target_lengths.append(len(labels))
    return {
        "video": torch.from_numpy(video),
        "points": torch.from_numpy(points),
        "quiet": torch.from_numpy(quiet),
        "words": torch.from_numpy(words),
        "lengths": torch.tensor(lengths),
        "targets": torch.tensor(targets, dtype=torch.long),
        "target_lengths": torch.tensor(target_lengths),
    }


@dataclass(frozen=True)
class AugmentOptions:
    """Batched augmentation strengths (0 turns one off)."""

    mirror: float = 0.5  # probability of a horizontal flip
    scale: float = 0.08  # random zoom in [1 - scale, 1 + scale]
    shift: float = 0.06  # random shift, as a fraction of the crop size
    rotate: float = 6.0  # random rotation, degrees
    brightness: float = 0.15  # additive brightness on [0, 1] pixels
    contrast: float = 0.2  # multiplicative contrast in [1 - contrast, 1 + contrast]
    time_mask: int = 8  # longest span of frames masked to the mean
    point_noise: float = 0.01  # Gaussian noise on normalised lip points
    point_drop: float = 0.0  # probability that a sample's lip points are held still at their mean, so
    # the model must read the motion from the pixels too (why: models/grid-s1.notes.md, stage 5)
    cutout: float = 0.0  # probability that a rectangle of the crop (CUTOUT_SIZE of its height and
    # width each), the same on every frame of the sample, is filled with the sample's mean level (over
    # its frames as padded in the batch and over its channels, as time_mask fills)
    stretch: float = 0.0  # random vertical stretch of pixels and points alike: height times exp(u), u
    # uniform in [-stretch, stretch] (another face's mouth is taller or flatter for its width)
    gamma: float = 0.0  # random gamma exp(u), u uniform in [-gamma, gamma], on [0, 1] pixels
    noise: float = 0.0  # Gaussian pixel noise on [0, 1] pixels, its sigma uniform in [0, noise] per sample


CUTOUT_SIZE = (0.2, 0.5)  # a cutout's height and width, as fractions of the crop's, drawn in this range


def normalise(video: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 crops -> float32 model input: (video / 255 - mean) / std."""
    return (video.float() / 255.0 - mean) / std


def augment(
    video: torch.Tensor,
    points: torch.Tensor,
    lengths: torch.Tensor,
    opt: AugmentOptions,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch. video float (N, T, H, W) or (N, T, H, W, C) in [0, 1]; points (N, T, 80) in
    [-1, 1] as core.crop.normalise_points makes them, or (N, T, 120) with the 40 depths after them
    (mirrored and scaled with the points, held still and jittered with them)."""
    n, t, h, w = video.shape[:4]
    c = video.shape[4] if video.dim() == 5 else 1
    rand = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    # the same similarity transform for every frame of a sample, on pixels and points alike
    flip = torch.where(rand(n) < opt.mirror, -1.0, 1.0)
    scale = 1 + (rand(n) * 2 - 1) * opt.scale
    angle = (rand(n) * 2 - 1) * math.radians(opt.rotate)
    tx, ty = (rand(n) * 2 - 1) * opt.shift * 2, (rand(n) * 2 - 1) * opt.shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = h / w
    # a stretch by k shows input row y / k at output row y; no draw at 0: earlier configs keep their
    # random stream
    squash = torch.exp(-(rand(n) * 2 - 1) * opt.stretch) if opt.stretch > 0 else torch.ones(n)
    # theta maps output coords to input coords (normalised [-1, 1], x then y)
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin * aspect, tx], 1),
            torch.stack([sin / aspect * flip, cos, ty], 1) * squash.view(n, 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    frames = video.reshape(n, t, h, w, c).permute(0, 1, 4, 2, 3).reshape(n, t * c, h, w).contiguous()
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out.view(n, t, c, h, w).permute(0, 1, 3, 4, 2).reshape(video.shape)
    # the inverse map for points: p_out = A^-1 (p_in - b)
    pts = points[..., : 2 * NUM_LIP_POINTS].reshape(n, t, NUM_LIP_POINTS, 2)
    mirror = torch.from_numpy(MIRROR_POINTS)
    flipped = torch.where(flip.view(n, 1, 1, 1) < 0, pts[:, :, mirror], pts)
    a = theta[:, :, :2]
    b = theta[:, :, 2]
    a_inv = torch.linalg.inv(a)
    moved = torch.einsum("nij,ntkj->ntki", a_inv, flipped - b.view(n, 1, 1, 2))
    depth = points.shape[-1] > 2 * NUM_LIP_POINTS
    if depth:  # as a third coordinate: mirrored and zoomed like x
        z = points[..., 2 * NUM_LIP_POINTS :]
        z = torch.where(flip.view(n, 1, 1) < 0, z[:, :, mirror], z) * scale.view(n, 1, 1)
        moved = torch.cat([moved, z.unsqueeze(-1)], dim=-1)
    if opt.point_drop > 0:  # no draw at 0: earlier configs keep their random stream
        # held before the noise: a still mouth as MediaPipe would report it, jitter and all
        moved = _hold_still(moved, lengths, rand(n) < opt.point_drop)
    moved = moved + torch.randn(moved.shape, generator=gen) * opt.point_noise
    # photometric
    per_sample = (n,) + (1,) * (out.dim() - 1)
    contrast = 1 + (rand(per_sample) * 2 - 1) * opt.contrast
    bright = (rand(per_sample) * 2 - 1) * opt.brightness
    mean = out.mean(dim=tuple(range(1, out.dim())), keepdim=True)
    out = ((out - mean) * contrast + mean + bright).clamp(0, 1)
    if opt.gamma > 0:  # no draw at 0, as above
        out = out ** torch.exp((rand(per_sample) * 2 - 1) * opt.gamma)
    if opt.noise > 0:  # no draw at 0, as above
        sigma = rand(per_sample) * opt.noise
        out = (out + torch.randn(out.shape, generator=gen) * sigma).clamp(0, 1)
    if opt.cutout > 0:  # no draw at 0: earlier configs keep their random stream
        out = _cut_out(out, rand(n) < opt.cutout, rand(n, 4))
    # temporal mask
    if opt.time_mask > 0:
        for i in range(n):
            span = int(torch.randint(0, opt.time_mask + 1, (1,), generator=gen))
            if span and lengths[i] > span:
                s = int(torch.randint(0, int(lengths[i]) - span, (1,), generator=gen))
                out[i, s : s + span] = out[i].mean()
    if depth:
        xy = moved[..., :2].reshape(n, t, 2 * NUM_LIP_POINTS)
        return out, torch.cat([xy, moved[..., 2]], dim=-1)
    return out, moved.reshape(n, t, 2 * NUM_LIP_POINTS)


def _cut_out(video: torch.Tensor, chosen: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """video (N, T, H, W[, C]) with, in the `chosen` (bool, (N,)) samples, one rectangle filled with
    the sample's mean level (over all of its padded frames and channels) on every frame; draws
    (N, 4) uniform in [0, 1): height, width, top, left."""
    n, _, h, w = video.shape[:4]
    low, high = CUTOUT_SIZE
    size = low + (high - low) * draws[:, :2]
    hh, ww = (size[:, 0] * h).long().clamp(min=1), (size[:, 1] * w).long().clamp(min=1)
    y0, x0 = (draws[:, 2] * (h - hh + 1)).long(), (draws[:, 3] * (w - ww + 1)).long()
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside_y = (ys >= y0.view(n, 1, 1)) & (ys < (y0 + hh).view(n, 1, 1))
    inside_x = (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ww).view(n, 1, 1))
    box = (inside_y & inside_x & chosen.view(n, 1, 1)).view(n, 1, h, w, *([1] * (video.dim() - 4)))
    mean = video.mean(dim=tuple(range(1, video.dim())), keepdim=True)
    return torch.where(box, mean, video)


def _hold_still(points: torch.Tensor, lengths: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """points (N, T, 40, 2 or 3) with the `chosen` (bool, (N,)) samples' points replaced, on their valid
    frames (t < lengths, (N,)), by their mean over those frames: the mouth's shape stays, its motion
    goes."""
    n, t = points.shape[:2]
    valid = (torch.arange(t).view(1, t) < lengths.view(n, 1)).view(n, t, 1, 1)
    mean = (points * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)
    return torch.where(valid & chosen.view(n, 1, 1, 1), mean.expand_as(points), points)
