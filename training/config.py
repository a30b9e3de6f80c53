"""The training configuration: one frozen dataclass, validated in one place, saved in checkpoints.

The CLI builds it from flags and `@file` arguments (training/cli.py); export rebuilds it from a
checkpoint's `config` dict with `config_from_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace

from core.crop import CropSpec, point_features, verify_spec
from training.dataset import AugmentOptions, SampleOptions
from training.evaluation import DECODER_KINDS
from training.model import WORD_SOURCES, ModelConfig

SPLITS = ("random", "speaker")
# what a resumed run takes from its command line (or the defaults), not from its checkpoint: a
# smoke test's step limit would end it after a step, another machine's device may not be here
MACHINE_FIELDS = ("max_steps", "device")
# what --config-from does not take from the checkpoint it names (the defaults, or the flags given):
# where that run read and wrote, and what it started from, which another run's recipe has no use for
RUN_FIELDS = ("data", "out", "cache", "init_from", "teachers", "distill_weight")
NESTED = ("crop", "model", "samples", "augment")  # TrainConfig fields holding option dataclasses
# ModelConfig fields that follow the crop spec (model_for_crop) or the vocabulary
DERIVED = {"model": ("height", "width", "in_channels", "num_points", "num_classes")}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved in every checkpoint and reused by export."""

    data: str = "../shared/grid/s1"  # data set: GRID folder, manifest (.csv/.jsonl) or subtitled videos
    out: str = "runs/grid-s1"  # run folder: checkpoints, split, logs
    cache: str = "cache"  # crop cache root
    crop: CropSpec = field(default_factory=CropSpec)  # how crops are cut
    fps: float = 25.0  # model frame rate
    model: ModelConfig = field(default_factory=ModelConfig)  # network sizes
    samples: SampleOptions = field(default_factory=SampleOptions)  # how samples are drawn
    augment: AugmentOptions = field(default_factory=AugmentOptions)  # augmentation strengths
    mean: float = 0.45  # input normalisation: (crop / 255 - mean) / std
    std: float = 0.2  # divisor of that normalisation
    val_fraction: float = 0.1  # share of clips held out for validation
    seed: int = 1337  # split and sampling seed
    epochs: int = 60  # epochs of the cosine schedule
    batch_size: int = 16  # clips per step (per process under torchrun)
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_epochs: float = 2.0  # linear warm-up length
    clip_grad: float = 5.0  # gradient-norm clipping
    patience: int = 15  # early stopping: epochs without a better val WER
    threads: int = 2  # torch CPU threads
    workers: int = 2  # processes for crop preparation
    max_steps: int = 0  # stop after this many steps (0: no limit; for tests)
    split: str = "random"  # "random": seeded val_fraction split; "speaker": val_speakers held out
    val_speakers: tuple[str, ...] = ()  # the speakers held out for validation with split "speaker"
    decoder: str = "auto"  # decoder scored beside greedy (as the app decodes): auto/grammar/lexicon/beam
    beam_width: int = 10  # beam width of that decoder
    word_score: float = 0.0  # that decoder's score per emitted word (> 0 keeps hard words from being dropped)
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"
    amp: bool = True  # mixed precision (torch.autocast) on CUDA; ignored on CPU
    tensorboard: bool = True  # TensorBoard scalars and sample decodes in <out>/tensorboard
    init_from: str = ""  # checkpoint whose weights start the run (fine-tuning: new optimiser, schedule)
    ema: float = 0.0  # per-step decay of a weight average that is validated and exported (0: off)
    quiet_weight: float = 0.0  # weight of a loss for blanks on the silence around a clip's words.
    # Per sample, it asks for a blank or a word separator on the silence before and after a clip's
    # words (0: off): CTC alone lets the model put a sentence's first letters anywhere in the
    # silence before it and its last ones anywhere after it, and it learnt to put them at the
    # sample's ends, which holds a live caption back until the window has moved past
    # (models/grid-s1.notes.md, stage 10)
    word_weight: float = 0.0  # weight of a second loss that names the word said on each frame of a
    # word (from the alignments), read by a layer used in training only (from word_source; 0: off).
    # CTC asks for one frame of a letter to name it; this asks all of them (stage 12's notes). Every
    # word of the timed training transcripts is a class (GRID: 51): thousands cost as many outputs
    word_source: str = "states"  # what that layer reads: "states" (the BiGRU's, which see the whole
    # sample) or "features" (the per-frame features before the BiGRU, which see a few frames either
    # side: the word must then be read from the lips where it is said, not from its sentence)
    teachers: tuple[str, ...] = ()  # checkpoints of trained models whose per-frame character
    # probabilities, averaged, the model is taught to match (training.distill), beside CTC
    distill_weight: float = 0.0  # weight of that distillation loss (0: off; > 0 needs teachers)

    def to_dict(self) -> dict:
        return asdict(self)


def _verify_config(cfg: TrainConfig) -> TrainConfig:
    for name, value in _numbers(cfg):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.threads < 1 or cfg.workers < 1 or cfg.max_steps < 0:
        raise ValueError("epochs, batch_size, threads and workers must be positive, max_steps >= 0")
    if cfg.lr <= 0 or cfg.weight_decay < 0 or cfg.warmup_epochs < 0 or cfg.clip_grad <= 0 or cfg.std <= 0:
        raise ValueError("lr, clip_grad and std must be positive; weight_decay, warmup_epochs >= 0")
    if cfg.split not in SPLITS:
        raise ValueError(f"unknown split {cfg.split!r}: choose one of {', '.join(SPLITS)}")
    if cfg.split == "random" and not 0 < cfg.val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), not {cfg.val_fraction}")
    if cfg.split == "speaker" and not cfg.val_speakers:
        raise ValueError("split 'speaker' needs val_speakers (e.g. --val-speakers s2,s3)")
    if cfg.split != "speaker" and cfg.val_speakers:  # else they would be trained on, unsaid
        raise ValueError("val_speakers needs split 'speaker' (--split speaker --val-speakers ...)")
    if cfg.decoder not in DECODER_KINDS:
        raise ValueError(f"unknown decoder {cfg.decoder!r}: choose one of {', '.join(DECODER_KINDS)}")
    shares = (cfg.samples.whole, cfg.samples.splice, cfg.samples.silence, cfg.samples.shuffle)
    if min(shares) < 0 or sum(shares) > 1:
        raise ValueError(
            f"sample shares (whole, splice, silence, shuffle) {shares} must be >= 0 and add up to <= 1"
        )
    m, c = cfg.model, verify_spec(cfg.crop)
    if (m.height, m.width, m.in_channels) != (c.height, c.width, 1 if c.grayscale else 3):
        raise ValueError(f"model input {m.height}x{m.width}x{m.in_channels} does not match the crop spec")
    if m.num_points != point_features(c):
        raise ValueError(
            f"model takes {m.num_points} lip-point features, the crop spec gives {point_features(c)}"
        )
    if m.height % 8 or m.width % 8:
        raise ValueError(f"crop size {m.height}x{m.width} must be a multiple of 8")
    if m.trunk_time < 1 or m.trunk_time % 2 == 0:
        raise ValueError(f"model trunk_time must be odd and >= 1, not {m.trunk_time}")
    if not (0 <= cfg.samples.speed < 1 and 0 <= cfg.samples.warp < 1):
        raise ValueError(f"speed and warp must be in [0, 1), not {cfg.samples.speed} and {cfg.samples.warp}")
    odds = (cfg.augment.mirror, cfg.augment.point_drop, cfg.augment.cutout, cfg.samples.partial)
    if not all(0 <= p <= 1 for p in odds):
        raise ValueError(f"mirror, point_drop, cutout and partial are probabilities in [0, 1], not {odds}")
    negative = [f.name for f in fields(cfg.augment) if getattr(cfg.augment, f.name) < 0]
    if negative:
        raise ValueError(f"augmentation strengths must be >= 0, not {', '.join(negative)}")
    if min(cfg.quiet_weight, cfg.word_weight, cfg.samples.quiet_slack) < 0:
        raise ValueError(
            "quiet_weight, word_weight and quiet_slack must be >= 0, not "
            f"{cfg.quiet_weight}, {cfg.word_weight}, {cfg.samples.quiet_slack}"
        )
    if cfg.distill_weight < 0 or bool(cfg.distill_weight) != bool(cfg.teachers):
        raise ValueError(
            f"distill_weight ({cfg.distill_weight}) must be > 0 with teachers and 0 without "
            f"({len(cfg.teachers)} given)"
        )
    if cfg.word_source not in WORD_SOURCES:
        raise ValueError(f"unknown word_source {cfg.word_source!r}: choose one of {', '.join(WORD_SOURCES)}")
    if not 0 <= cfg.ema < 1:
        raise ValueError(f"ema must be in [0, 1), not {cfg.ema}")
    if cfg.fps <= 0 or cfg.patience < 1 or cfg.beam_width < 1:
        raise ValueError("fps, patience and beam_width must be positive")
    return cfg


def _numbers(options: object, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(name, value) of every float field of the dataclass `options` and of the options nested in it
    (named as their flags are: `augment_scale`)."""
    for f in fields(options):
        value = getattr(options, f.name)
        if is_dataclass(value):
            yield from _numbers(value, f"{prefix}{f.name}_")
        elif isinstance(value, float):
            yield f"{prefix}{f.name}", value


def model_for_crop(model: ModelConfig, crop: CropSpec) -> ModelConfig:
    """`model` with the input fields that follow the crop spec (DERIVED) set from `crop`."""
    channels = 1 if crop.grayscale else 3
    return replace(
        model, height=crop.height, width=crop.width, in_channels=channels, num_points=point_features(crop)
    )


def config_from_dict(values: dict) -> TrainConfig:
    """A TrainConfig from `to_dict()` output (e.g. a checkpoint's); missing keys take defaults."""
    nested = {"crop": CropSpec, "model": ModelConfig, "samples": SampleOptions, "augment": AugmentOptions}
    kwargs = {}
    for f in fields(TrainConfig):
        if f.name not in values:
            continue
        value = values[f.name]
        if f.name in nested:
            cls = nested[f.name]
            value = cls(
                **{
                    k: tuple(v) if isinstance(v, list) else v
                    for k, v in value.items()
                    if k in cls.__dataclass_fields__
                }
            )
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return TrainConfig(**kwargs)


def _arg(name: str, value: object) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return f"{flag}={value}"


def config_args(cfg: TrainConfig, base: TrainConfig | None = None) -> list[str]:
    """The `lipreader-train` arguments turning `base` (default: TrainConfig()) into `cfg`, one per item
    (`--crop-height=64`), as an `@file` holds them. The CLI parses them back to `cfg`."""
    base = base or TrainConfig()
    args = []
    for f in fields(TrainConfig):
        value, default = getattr(cfg, f.name), getattr(base, f.name)
        if f.name in NESTED:
            skip = DERIVED.get(f.name, ())
            args += [
                _arg(f"{f.name}_{g.name}", getattr(value, g.name))
                for g in fields(value)
                if g.name not in skip and getattr(value, g.name) != getattr(default, g.name)
            ]
        elif value != default:
            args.append(_arg(f.name, value))
    return args
