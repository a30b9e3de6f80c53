"""Distillation: trained models (teachers) whose per-frame character probabilities, averaged, are a
second target for the model being trained (TrainConfig.teachers and distill_weight).

The teachers read the same augmented batch as the model, in evaluation mode (no dropout). Their
averaged output carries what one-hot CTC targets do not: how alike two letters look to models
that learnt them ("g" and "t"), and where in a word each character is seen. Each teacher file's
sha256 is kept in the run's checkpoints: a resumed run refuses a teacher that changed meanwhile.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from core.assets import sha256_of
from training.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.model import LipNet


class Teachers:
    """The teacher networks of checkpoints `paths`; call them on a normalised batch. `digests` maps
    each path to the sha256 hex of the file as it was loaded."""

    def __init__(self, paths: tuple[str, ...], cfg: TrainConfig, device: torch.device) -> None:
        with torch.random.fork_rng(devices=[]):  # building them draws no number the run's dropout would
            self.nets = [_teacher(Path(p), cfg).requires_grad_(False).to(device) for p in paths]
        self.digests = {p: sha256_of(Path(p)) for p in paths}

    @torch.no_grad()
    def __call__(self, video: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log of the teachers' mean character probabilities, float32 (N, T, C)."""
        logps = torch.stack([net(video, points, lengths).float() for net in self.nets])
        return torch.logsumexp(logps, dim=0) - math.log(len(self.nets))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of each frame's character distribution, averaged over the batch's
    frames (padding left out). student, teacher: log-probs (N, T, C); lengths: frames (N,)."""
    frames = torch.arange(student.shape[1], device=student.device)[None, :] < lengths[:, None]
    p = teacher.exp()
    kl = (torch.special.xlogy(p, p) - p * student).sum(dim=-1)  # a character the teachers rule out adds 0
    return kl[frames].mean()


def _teacher(path: Path, cfg: TrainConfig) -> LipNet:
    """The network of checkpoint `path` in evaluation mode, checked to read the run's inputs."""
    try:
        net, _, old = load_checkpoint(path)
    except RuntimeError as e:  # missing, truncated, foreign or another vocabulary: one line
        raise RuntimeError(f"cannot teach with {path}: {e}") from e
    if (old.crop, old.fps, old.mean, old.std) != (cfg.crop, cfg.fps, cfg.mean, cfg.std):
        raise RuntimeError(
            f"cannot teach with {path}: it reads other crops "
            "(size, colour, landmarks, depth or normalisation)"
        )
    return net
