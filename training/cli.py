"""`lipreader-train`: raw videos with transcripts to an exported, evaluated ONNX model in one command.

    lipreader-train --data ../shared/grid/s1 --out runs/grid-s1          # prepare, fit, evaluate, export
    lipreader-train @config/grid-s1.args                                  # the shipped model's config
    lipreader-train fit @config/grid-s1.args --epochs 40                  # later arguments override
    torchrun --nproc_per_node 2 -m training.cli fit @config/grid-s1.args  # DDP, one process per GPU

Stages: all (default), prepare (cache crops), fit (resumes from <out>/last.pt unless --no-resume),
resume (fit, insisting on a checkpoint), evaluate (the best checkpoint on the validation split),
export (models/<name>.onnx and its model card models/<name>.md), nose-range (the face proportions
of the training clips into an exported model, `--onnx`, and a checkpoint, `--checkpoint`:
training/nose_range.py; `all` ends with it). `@file` arguments hold one
argument per line (`--epochs=36` or `--epochs 36`); blank lines and # comments are ignored, and an
`@file` named in one is looked for beside it first, then in the working folder. A stage that
resumes a run takes its config from <out>/last.pt, as evaluate and export take theirs from the
checkpoint: flags given change it. A new run takes its recipe from `--config-from CHECKPOINT` the
same way (the shipped model's: `--config-from models/grid-s1.resume.pt`, no config/ files needed).
With $LIPREADER_PROGRESS set, progress goes to stdout too, one line per clip, step and export
(training/progress.py).

Flags are TrainConfig's fields (`--batch-size`, `--val-speakers s2,s3`) and, prefixed with the
field holding them, the nested options (`--crop-height`, `--model-hidden`, `--augment-mirror`).
The model's input size follows the crop spec. The namespace only builds a TrainConfig.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import math
import re
import sys
import typing
from pathlib import Path

from training import progress
from training.checkpoint import resume_config, saved_config
from training.config import (
    DERIVED,
    MACHINE_FIELDS,
    NESTED,
    RUN_FIELDS,
    TrainConfig,
    _verify_config,
    model_for_crop,
)
from training.export import ExportOptions, evaluate_run, export_run, load_checkpoint, read_contract

log = logging.getLogger("lipreader")

STAGES = ("all", "prepare", "fit", "resume", "evaluate", "export", "nose-range")
FITTING = ("all", "fit", "resume")  # the stages that train (resuming from <out>/last.pt)
_COMMENT = re.compile(r"^\s+(\w+):.*?#\s*(.+)$")
_CONTINUED = re.compile(r"^\s+#\s*(.+)$")  # a field comment going on in a line of its own
_TRAILING_COMMENT = re.compile(r"(^|\s+)#.*$")  # in an @file: a comment line, or one after a space
_FLAG_VALUE = re.compile(r"^(--[^\s=]+)\s+(.+)$")  # an @file line `--workers 1`: two arguments


class _Parser(argparse.ArgumentParser):
    """argparse with `@file` arguments that may hold comments, blank lines, `--flag value` lines and
    `@files` of their own, named relative to the file naming them (see `_args_file`).

    The files are expanded here, not by argparse (`fromfile_prefix_chars`), which reads an `@file`
    named in another from the working folder."""

    def parse_known_args(
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's, on the arguments with their `@files` expanded."""
        given = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._expand(given, Path()), namespace)

    def _expand(self, args: list[str], folder: Path) -> list[str]:
        """`args` with each `@file` replaced by the arguments it holds; `folder` holds the file
        naming them (the working folder for the command line's own)."""
        expanded = []
        for arg in args:
            if not arg.startswith("@"):
                expanded.append(arg)
                continue
            path = _args_file(arg[1:], folder)
            try:
                lines = path.read_text().splitlines()
            except OSError as e:
                self.error(f"cannot read arguments file {path}: {e.strerror or e}")
            held = [a for line in lines for a in self.convert_arg_line_to_args(line)]
            expanded += self._expand(held, path.parent)
        return expanded

    def convert_arg_line_to_args(self, arg_line: str) -> list[str]:
        """The arguments on one line of an `@file`: none for a blank or comment line; a trailing
        comment (` # ...`) dropped; `--flag value` split in two, as the command line would."""
        line = _TRAILING_COMMENT.sub("", arg_line).strip()
        if not line:
            return []
        flag_value = _FLAG_VALUE.match(line)
        return list(flag_value.groups()) if flag_value else [line]


def _args_file(name: str, folder: Path) -> Path:
    """The `@file` `name` named in a file in `folder`: beside that file when it is there, else
    (as argparse had it, so that files naming `@config/...` from the repository's root still work)
    from the working folder."""
    beside = folder / name
    return beside if beside.is_file() else Path(name)


def _comments(cls: type) -> dict[str, str]:
    """Each field's trailing comment in the class source: the help text stays the documentation."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    field = None  # the field whose comment goes on in lines of their own ("    # ...")
    for line in source.splitlines():
        if m := _COMMENT.match(line):
            field = m.group(1)
            comments[field] = m.group(2)
        elif field and (more := _CONTINUED.match(line)):
            comments[field] += " " + more.group(1)
        else:
            field = None
    return comments


def _converter(kind: object) -> typing.Callable[[str], object]:
    if kind in (tuple[int, int, int], tuple[int, ...]):
        return lambda text: tuple(int(x) for x in text.split(","))
    if kind == tuple[str, ...]:
        return lambda text: tuple(x.strip() for x in text.split(",") if x.strip())
    return {int: int, float: _number, str: str}[kind]


def _number(text: str) -> float:
    """A float field's value: a finite number, else an error saying so (a NaN passes every range
    check, then trains on nothing but NaN)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _add_fields(group: argparse._ArgumentGroup, cls: type, prefix: str = "", skip: tuple = ()) -> None:
    """One flag per dataclass field; dest is 'prefix.field' so the config can be rebuilt."""
    hints, docs, defaults = typing.get_type_hints(cls), _comments(cls), cls()
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name in NESTED:
            continue
        flag = "--" + "-".join(filter(None, [prefix, f.name])).replace("_", "-")
        dest = f"{prefix}.{f.name}" if prefix else f.name
        default = getattr(defaults, f.name)
        shown = default if default != "" else "none"
        text = f"{docs.get(f.name, f.name)} (default: {shown})".replace("%", "%%")
        if hints[f.name] is bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            group.add_argument(
                flag,
                dest=dest,
                type=_converter(hints[f.name]),
                default=None,
                help=text,
                metavar="A,B" if isinstance(default, tuple) else type(default).__name__.upper(),
            )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lipreader-train",
        description="Train, evaluate and export a LipReader model.",
        epilog="Arguments may come from files: lipreader-train @config/grid-s1.args",
    )
    parser.add_argument("stage", nargs="?", choices=STAGES, default="all", help="what to run (default: all)")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit continues from <out>/last.pt when it exists (default: yes)",
    )
    run.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint to evaluate/export (default: <out>/best.pt); nose-range: one to write it into",
    )
    run.add_argument("--onnx", type=Path, help="nose-range: the exported model to write the range into")
    run.add_argument(
        "--config-from",
        type=Path,
        metavar="CHECKPOINT",
        help="start from the config saved in CHECKPOINT, another run's recipe (model, crop, samples, "
        "augmentation, optimiser, losses; not its data, out, cache, init-from or teachers), which the "
        "flags given change; a run resuming from <out>/last.pt takes that one's instead",
    )
    run.add_argument("--models-dir", type=Path, default=Path("models"), help="where export writes")
    run.add_argument("--name", help="exported model name (default: the run folder's name)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="export may replace <models-dir>/<name>.onnx and its files, e.g. the shipped model "
        "(without it, a model there is kept and export writes to the run folder)",
    )
    live = ExportOptions()
    run.add_argument(
        "--window", type=int, help=f"live window in frames, for the metadata (default: {live.window})"
    )
    run.add_argument("--hop", type=int, help=f"live hop in frames, for the metadata (default: {live.hop})")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_fields(parser.add_argument_group("training (TrainConfig)"), TrainConfig)
    for name in NESTED:
        cls = type(getattr(TrainConfig(), name))
        _add_fields(parser.add_argument_group(f"{name} ({cls.__name__})"), cls, name, DERIVED.get(name, ()))
    return parser


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The TrainConfig the flags describe: `base` (default TrainConfig()) with the given flags replaced."""
    base = base or TrainConfig()
    values = {k: v for k, v in vars(args).items() if v is not None}
    nested = {}
    for name in NESTED:
        given = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f"{name}.")}
        nested[name] = dataclasses.replace(getattr(base, name), **given)
    nested["model"] = model_for_crop(nested["model"], nested["crop"])
    top = {f.name: values[f.name] for f in dataclasses.fields(TrainConfig) if f.name in values}
    return _verify_config(dataclasses.replace(base, **top, **nested))


_handlers: list[logging.Handler] = []  # what _setup_logging added to the "lipreader" logger


def _remove_handlers() -> None:
    for handler in _handlers:
        log.removeHandler(handler)
        handler.close()
    _handlers.clear()


def _setup_logging(out: Path, verbose: bool, create: bool = True) -> None:
    """Log to stderr, and on the master process to <out>/train.log too, creating the run folder
    (unless not `create`: then only when it exists). Raises RuntimeError in one line when it cannot."""
    from training.distributed import env_rank

    master = env_rank() == 0
    _remove_handlers()
    _handlers.append(logging.StreamHandler(sys.stderr))
    if master and (create or out.is_dir()):
        try:
            out.mkdir(parents=True, exist_ok=True)
            _handlers.append(logging.FileHandler(out / "train.log"))
        except OSError as e:  # a file of that name, a read-only folder: said in one line
            raise RuntimeError(f"cannot create run folder {out}: {e.strerror or e}") from e
    for handler in _handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO if master else logging.WARNING)


def _resumes(args: argparse.Namespace) -> bool:
    """Whether the stage fits and goes on from <out>/last.pt when it exists."""
    return args.stage in FITTING and (args.resume or args.stage == "resume")


def _resumed_config(args: argparse.Namespace) -> TrainConfig | None:
    """The config the flags change: when the stage resumes a run, the one in its <out>/last.pt (as
    evaluate and export take theirs from their checkpoint) but for its step limit and device
    (MACHINE_FIELDS, the defaults), so `resume --out RUN` goes on as the run was set up; else None
    (the defaults). Raises RuntimeError in one line when it cannot be read."""
    out = args.out or TrainConfig().out
    last = Path(out) / "last.pt"
    if not _resumes(args) or not last.exists():
        return None
    machine = {name: getattr(TrainConfig(), name) for name in MACHINE_FIELDS}
    return dataclasses.replace(resume_config(last), out=out, **machine)  # the run may have been moved


def _recipe_config(args: argparse.Namespace) -> TrainConfig | None:
    """The config the flags change when no run is resumed: --config-from's checkpoint's, but for
    RUN_FIELDS and MACHINE_FIELDS (the defaults); None without --config-from (the defaults). Raises
    RuntimeError in one line when it cannot be read."""
    if args.config_from is None:
        return None
    defaults = TrainConfig()
    kept = {name: getattr(defaults, name) for name in (*RUN_FIELDS, *MACHINE_FIELDS)}
    return dataclasses.replace(saved_config(args.config_from), **kept)


def run(stage: str, cfg: TrainConfig, args: argparse.Namespace) -> int:
    """Run one stage (or all); returns the exit status."""
    from training.distributed import env_rank

    out = Path(cfg.out)
    if stage == "prepare":
        from training.prepare import prepare_data

        if env_rank() == 0:
            data = prepare_data(cfg)
            print(
                f"{len(data.clips)} clips cached in {data.folder}; {len(data.left_out)} left out, "
                f"{len(data.skipped)} skipped"
            )
        return 0
    if stage == "nose-range":
        return _nose_range(cfg, args)
    if stage in FITTING:
        from training.train import train

        if stage == "resume" and not (out / "last.pt").exists():
            raise RuntimeError(f"nothing to resume: {out / 'last.pt'} does not exist")
        best = train(cfg, resume=_resumes(args))
        if env_rank() != 0:
            return 0
        print(
            f"best epoch {best.get('epoch')}: val CER {best.get('val_cer', float('nan')):.4f} "
            f"WER {best.get('val_wer', float('nan')):.4f}"
        )
        if stage != "all":
            return 0
    if env_rank() != 0:
        return 0
    checkpoint = args.checkpoint or out / "best.pt"
    if stage == "evaluate":
        model, _, run_cfg = load_checkpoint(checkpoint)
        result = evaluate_run(run_cfg, model, checkpoint.parent).evaluation
        _print_rates(f"{checkpoint}: {len(result.samples)} validation clips", result.to_dict())
        return 0
    live = {k: v for k, v in (("window", args.window), ("hop", args.hop)) if v is not None}
    models_dir = _export_folder(
        args.models_dir, args.name or checkpoint.parent.name, checkpoint.parent, args.overwrite
    )
    progress.report("export", 0, 1)
    onnx_path, card = export_run(checkpoint, models_dir, args.name, ExportOptions(**live))
    progress.report("export", 1, 1, model=str(onnx_path))
    if stage == "all" and not cfg.crop.nose_high:  # a model trained on ranged crops keeps its range
        _range_after_export(cfg, onnx_path)
    metrics = read_contract(onnx_path).metrics
    _print_rates(
        f"wrote {onnx_path} and {card}",
        {
            "val_cer": metrics.get("val_cer_greedy"),
            "val_wer": metrics.get("val_wer_greedy"),
            "decoder": metrics.get("decoder"),
            "val_cer_decoded": metrics.get("val_cer"),
            "val_wer_decoded": metrics.get("val_wer"),
        },
    )
    return 0


def _range_after_export(cfg: TrainConfig, onnx_path: Path) -> None:
    """`all` ends with the nose range of the training clips in the exported model and its resume
    checkpoint; when it cannot be measured the model is kept as exported, with a warning."""
    from training.nose_range import nose_range_stage

    resume = onnx_path.with_suffix(".resume.pt")
    try:
        nose = nose_range_stage(cfg, onnx_path, resume if resume.is_file() else None)
    except (RuntimeError, ValueError, OSError) as e:
        log.warning("%s keeps square crops for every face: %s", onnx_path, e)
        return
    print(f"nose range {nose.low:g}-{nose.high:g} eye-corner distances written into {onnx_path}")


def _nose_range(cfg: TrainConfig, args: argparse.Namespace) -> int:
    from training.nose_range import nose_range_stage

    if args.onnx is None:
        raise ValueError("nose-range needs --onnx MODEL, the exported model to write the range into")
    nose = nose_range_stage(cfg, args.onnx, args.checkpoint)
    written = f"{args.onnx}" + (f" and {args.checkpoint}" if args.checkpoint else "")
    print(
        f"nose range {nose.low:g}-{nose.high:g} eye-corner distances ({nose.frames} frames of "
        f"{nose.clips} training clips) written into {written}"
    )
    return 0


def _export_folder(models_dir: Path, name: str, run: Path, overwrite: bool) -> Path:
    """Where export writes: `models_dir`, unless a model of that name is there already (the shipped
    one, for the stages' configs and the plain `--out runs/grid-s1`) and not `overwrite`: then the
    run's folder, with a warning."""
    if (models_dir / f"{name}.onnx").exists() and not overwrite:
        log.warning(
            "%s exists and is kept (--overwrite replaces it): exporting to %s instead",
            models_dir / f"{name}.onnx",
            run,
        )
        return run
    return models_dir


def _print_rates(title: str, rates: dict) -> None:
    """A small table of greedy and decoded validation CER/WER (keys as in Evaluation.to_dict)."""

    def cell(value: float | None) -> str:
        return f"{value:8.4f}" if value is not None else f"{'n/a':>8}"

    print(title)
    print(f"{'decoding':<12} {'CER':>8} {'WER':>8}")
    print(f"{'greedy':<12} {cell(rates['val_cer'])} {cell(rates['val_wer'])}")
    if rates.get("val_wer_decoded") is not None:
        print(f"{rates['decoder']:<12} {cell(rates['val_cer_decoded'])} {cell(rates['val_wer_decoded'])}")


def _failed(error: Exception) -> int:
    """Report a failure in one line (the traceback with --verbose); returns the exit status."""
    log.debug("failure", exc_info=True)
    print(f"lipreader-train: error: {error}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        base = _resumed_config(args) or _recipe_config(args)
    except RuntimeError as e:  # an unreadable last.pt or --config-from
        return _failed(e)
    try:
        cfg = config_from_args(args, base)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    try:
        # evaluate, export and nose-range read a run: one that is not there is not created for their log
        reads = args.stage in ("evaluate", "export", "nose-range")
        _setup_logging(Path(cfg.out), args.verbose, create=not reads)
        return run(args.stage, cfg, args)
    except (RuntimeError, ValueError, OSError) as e:
        return _failed(e)
    except KeyboardInterrupt:
        print("lipreader-train: interrupted (resume with the same command)", file=sys.stderr)
        return 130
    finally:
        _remove_handlers()


if __name__ == "__main__":
    sys.exit(main())
