"""Reading a training checkpoint back into the network it stands for (export, distillation, CLI)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from training.config import TrainConfig, config_from_dict
from training.dataset import VOCABULARY
from training.model import LipNet, model_weights


def load_checkpoint(path: Path) -> tuple[LipNet, dict, TrainConfig]:
    """(model in eval mode, the checkpoint dict, its TrainConfig). Raises RuntimeError in one line."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = config_from_dict(ck["config"])
    except (OSError, RuntimeError, KeyError, TypeError, EOFError) as e:
        raise RuntimeError(f"cannot read checkpoint {path}: {e}") from e
    if tuple(ck["vocabulary"]) != VOCABULARY:
        raise RuntimeError(f"checkpoint {path} has another vocabulary than training.dataset.VOCABULARY")
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY)))
    model.load_state_dict(model_weights(ck))
    return model.eval(), ck, cfg
