"""Reading training checkpoints: back into the network they stand for (export, distillation, CLI),
and checked against a run that resumes from one (resume_config, resume_checkpoint, check_val_clips,
check_teacher_digests) or starts from another run's weights (initial_weights, a StartingPoint)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from training.config import TrainConfig, config_args, config_from_dict
from training.data import VOCABULARY, Clip
from training.model import LipNet, model_weights, resize_input, to_colour, to_depth, to_temporal

log = logging.getLogger("lipreader")

DIGEST_SHOWN = 12  # hex digits of a sha256 named in an error message
SPLIT_FIELDS = ("split", "seed", "val_fraction", "val_speakers")  # TrainConfig fields choosing the split


def load_checkpoint(path: Path) -> tuple[LipNet, dict, TrainConfig]:
    """(model in eval mode, the checkpoint dict, its TrainConfig). Raises RuntimeError in one line."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = config_from_dict(ck["config"])
    except (OSError, RuntimeError, KeyError, TypeError, EOFError) as e:
        raise RuntimeError(f"cannot read checkpoint {path}: {e}") from e
    if tuple(ck["vocabulary"]) != VOCABULARY:
        raise RuntimeError(f"checkpoint {path} has another vocabulary than training.data.VOCABULARY")
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY)))
    model.load_state_dict(model_weights(ck))
    return model.eval(), ck, cfg


def saved_config(path: Path) -> TrainConfig:
    """The TrainConfig saved in checkpoint `path` (any run's best.pt, last.pt or a model's
    .resume.pt: `--config-from`). Raises RuntimeError in one line when it cannot be read."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        return config_from_dict(ck["config"])
    except Exception as e:  # missing, truncated or foreign: one line
        raise RuntimeError(f"cannot read the config of checkpoint {path}: {e}") from e


def _read_resumed(path: Path) -> tuple[dict, TrainConfig]:
    """(checkpoint `path`, a run's last.pt, and its TrainConfig). Raises RuntimeError in one line."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        return ck, config_from_dict(ck["config"])
    except Exception as e:  # a truncated or foreign file: say so in one line
        raise RuntimeError(f"cannot resume from {path}: {e}; use --no-resume to start over") from e


def resume_config(path: Path) -> TrainConfig:
    """The config of the run whose checkpoint `path` (its last.pt) a run resumes from: what the CLI's
    flags change. Raises RuntimeError in one line when it cannot be read."""
    return _read_resumed(path)[1]


def resume_checkpoint(path: Path, cfg: TrainConfig) -> dict | None:
    """The checkpoint `path` (a run's last.pt) to resume run `cfg` from, or None when there is none.

    Raises RuntimeError in one line when it cannot be read or was trained with another model, crop,
    --ema, word loss or distillation setting (other data is for check_val_clips to judge)."""
    if not path.exists():
        return None
    ck, old = _read_resumed(path)
    if Path(old.data).resolve() != Path(cfg.data).resolve():  # the same clips elsewhere, or others
        log.warning(
            "resuming %s, trained on --data %s, on %s (its validation clips are checked where recorded)",
            path,
            old.data,
            cfg.data,
        )
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


def check_val_clips(path: Path, ck: dict | None, cfg: TrainConfig, val_clips: list[Clip]) -> None:
    """Raise RuntimeError in one line when run `cfg`, resuming from checkpoint `ck` (read from `path`;
    None: a fresh run), validates on other clips than those it recorded (`val_clips` of its state;
    absent from checkpoints written before they were kept: those of the run's split.json, if any,
    else nothing to check): best.pt would then compare WERs over different sets. The message names
    the split flags that changed, if any."""
    recorded = None if ck is None else ck["state"].get("val_clips")
    split = path.parent / "split.json"
    if ck is not None and recorded is None and split.is_file():  # an older checkpoint: its run's split
        recorded = json.loads(split.read_text()).get("val")
    if recorded is None or set(recorded) == {c.clip_id for c in val_clips}:
        return
    given = config_args(cfg, config_from_dict(ck["config"]))  # what differs from the run's config
    changed = [arg for arg in given if arg.split("=")[0][2:].replace("-", "_") in SPLIT_FIELDS]
    what = f"the split ({', '.join(changed)})" if changed else f"the clips of {cfg.data}"
    raise RuntimeError(
        f"cannot resume from {path}: {what} changed since the run started, so it would validate on "
        "other clips than its best.pt was chosen on; use --no-resume or another --out"
    )


def check_teacher_digests(path: Path, recorded: dict[str, str], digests: dict[str, str]) -> None:
    """Raise RuntimeError in one line when the teachers differ from those the run of checkpoint `path`
    started with. recorded: teacher path -> sha256 hex the checkpoint holds (empty in checkpoints
    written before they were kept: nothing to check); digests: the same for the teachers loaded now.
    The files are compared by content alone (as multisets of digests): a teacher may be named
    another way or moved, not replaced, changed, added or dropped."""
    if not recorded:
        return
    gone, new = _unmatched(recorded, digests), _unmatched(digests, recorded)
    if gone == new and len(gone) == 1:  # the same name, another content
        teacher = gone[0]
        was, now = recorded[teacher], digests[teacher]
        raise RuntimeError(
            f"cannot resume from {path}: teacher {teacher} changed since the run started (sha256 "
            f"{was[:DIGEST_SHOWN]}, now {now[:DIGEST_SHOWN]}); restore it, --no-resume or another --out"
        )
    if gone or new:
        changes = [f"{t} (sha256 {recorded[t][:DIGEST_SHOWN]}) is gone" for t in gone]
        changes += [f"{t} (sha256 {digests[t][:DIGEST_SHOWN]}) is new" for t in new]
        raise RuntimeError(
            f"cannot resume from {path}: the teachers changed since the run started: {', '.join(changes)}; "
            "use the same --teachers, --no-resume or another --out"
        )


def _unmatched(these: dict[str, str], those: dict[str, str]) -> list[str]:
    """The names in `these` whose digest is not matched by one in `those`, each used once."""
    left = Counter(those.values())
    names = []
    for name, digest in these.items():
        if left[digest] > 0:
            left[digest] -= 1
        else:
            names.append(name)
    return names


@dataclass(frozen=True)
class StartingPoint:
    """The checkpoint a run starts from (init_from), read once: its weights, carried over to the
    run's model, and the clips its run held out for validation."""

    path: Path
    weights: dict = field(repr=False)  # state dict for the run's model
    held_out: frozenset[str]  # clip ids: from the checkpoint's `val_clips`, else its run's split.json
    same_data: bool  # its run read the data this run reads (the same path)

    def check_held_out(self, train_clips: set[str], clips: set[str]) -> None:
        """Raise RuntimeError when clips this run trains on were validation clips of the run that
        wrote the checkpoint: its validation figures, and this run's, would mean nothing. Warn when
        it read the same data but none of those is among this run's `clips` (all its clip ids,
        named otherwise since): then nothing was checked. Other data (adapting the model to new
        videos) has other clips: nothing to check."""
        if self.same_data and self.held_out and self.held_out.isdisjoint(clips):
            log.warning(
                "%s: its run read this data, yet none of its %d validation clips is among this run's "
                "clips (named otherwise since?): whether this run trains on them cannot be checked",
                self.path,
                len(self.held_out),
            )
        overlap = sorted(train_clips & self.held_out)
        if overlap:
            raise RuntimeError(
                f"cannot start from {self.path}: {len(overlap)} of this run's training clips "
                f"({', '.join(overlap[:3])}{', ...' if len(overlap) > 3 else ''}) were its validation "
                "clips; keep its split (--seed, --val-fraction, --split, the same data and crops)"
            )


def _held_out(ck: dict, path: Path) -> frozenset[str]:
    """The validation clips of the run that wrote checkpoint `ck` (read from `path`)."""
    held = ck.get("state", {}).get("val_clips")
    split_file = path.parent / "split.json"
    if held is None and split_file.is_file():
        held = json.loads(split_file.read_text()).get("val", [])
    return frozenset(held or ())


def initial_weights(path: Path, cfg: TrainConfig) -> StartingPoint:
    """The model weights of checkpoint `path` (init_from), checked against the run's model and crop,
    with the clips its run held out."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        old, weights = config_from_dict(ck["config"]), model_weights(ck)
    except Exception as e:  # missing, truncated or foreign: one line
        raise RuntimeError(f"cannot start from {path}: {e}") from e
    # dropout may change, the crop size (not its shape), grey to colour, trunk blocks to ones that
    # see more frames and lip points to ones with depth: the weights are carried over to them; and
    # the landmark mode, the span of face the crop covers and where its vertical scale comes from:
    # fine-tuning on crops cut the other way is how a model moves to them
    colour = old.crop.grayscale and not cfg.crop.grayscale
    temporal = old.model.trunk_time < cfg.model.trunk_time
    depth = cfg.crop.depth and not old.crop.depth
    net = replace(old.model, dropout=0, height=cfg.model.height, width=cfg.model.width)
    net = replace(net, in_channels=cfg.model.in_channels) if colour else net
    net = replace(net, trunk_time=cfg.model.trunk_time) if temporal else net
    net = replace(net, num_points=cfg.model.num_points) if depth else net
    new_net = replace(cfg.model, dropout=0)
    crop = replace(
        old.crop,
        height=cfg.crop.height,
        width=cfg.crop.width,
        span=cfg.crop.span,
        follow_face=cfg.crop.follow_face,
        nose_low=cfg.crop.nose_low,
        nose_high=cfg.crop.nose_high,
    )
    crop = replace(crop, grayscale=False) if colour else crop
    crop = replace(crop, depth=True) if depth else crop
    if (net, crop, old.fps, old.mean, old.std) != (new_net, cfg.crop, cfg.fps, cfg.mean, cfg.std):
        raise RuntimeError(f"cannot start from {path}: it was trained with another model or crop config")
    if old.crop.follow_face != cfg.crop.follow_face:
        log.info(
            "%s was trained on crops from landmarks %s; this run's are %s",
            path,
            old.crop.landmark_way,
            cfg.crop.landmark_way,
        )
    if old.crop.span != cfg.crop.span:
        log.info(
            "%s was trained on crops %g eye-corner distances wide; this run's are %g",
            path,
            old.crop.span,
            cfg.crop.span,
        )
    if old.crop.scale_way != cfg.crop.scale_way:
        old_way, new_way = old.crop.scale_way, cfg.crop.scale_way
        log.info("%s was trained on crops %s; this run's are %s", path, old_way, new_way)
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
    if depth:
        log.info("%s takes the lip points without their depth: carried over to points with depth", path)
        weights = to_depth(weights, cfg.model.num_points)
    split_of = lambda c: tuple(getattr(c, name) for name in SPLIT_FIELDS)  # noqa: E731
    same_data = Path(old.data).resolve() == Path(cfg.data).resolve()
    if split_of(old) != split_of(cfg) and same_data:
        log.warning("%s was split differently: its training clips may be in this run's validation set", path)
    return StartingPoint(path, weights, _held_out(ck, path), same_data)
