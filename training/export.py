"""Export a checkpoint to ONNX with its whole contract in the metadata, and write its model card.

The model is traced (TorchScript exporter, opset 17) with dynamic batch and time axes: inputs
"video" float32 (N, T, H, W) and "points" float32 (N, T, 80; 120 with depth), output "log_probs"
float32 (N, T, C).
ONNX Runtime's output is checked against torch at two batch sizes and lengths before the file is
renamed into place. The metadata key "lipreader.contract" holds `core.contract.ModelContract` as
JSON: vocabulary, blank, crop spec, fps, window, hop, normalisation, default decoder, the training
config, the data and split, and validation metrics (greedy and with the default decoder).
Beside the model go its streaming encoder and head (`training/graphs.py`), named in the contract.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.contract import METADATA_KEY, DecoderSettings, ModelContract
from core.crop import CROP_VERSION
from core.subtitles import FILE_MODE, write_atomic
from core.transcripts import folder_name
from training.card import model_card
from training.checkpoint import load_checkpoint
from training.config import TrainConfig, config_args
from training.data import VOCABULARY
from training.evaluation import Evaluation, decoder_settings, evaluate, make_app_decoder
from training.graphs import (
    INPUTS,
    OUTPUT,
    export_stream,
    ort_session,
    random_inputs,
    stream_paths,
    temp_beside,
    trace,
)
from training.model import LipNet
from training.prepare import cache_dir
from training.readers import read_data
from training.runfiles import machine_description, save_atomic
from training.split import load_items

log = logging.getLogger("lipreader")

MAX_LEFT_OUT_LISTED = 100  # left-out clips named in the metadata (the count is always given)


@dataclass(frozen=True)
class ExportOptions:
    """How a model is exported."""

    window: int = 75  # frames per live sliding window the app runs the model on
    hop: int = 2  # frames between successive live windows (smaller: less lag, more model runs; 2 took
    # the shipped model's live final-word lag under 300 ms, see README's Performance)
    opset: int = 17  # ONNX opset
    tolerance: float = 1e-4  # largest |ONNX Runtime - torch| accepted by the parity check
    check_shapes: tuple[tuple[int, int], ...] = ((1, 75), (3, 40))  # (batch, frames) of parity inputs
    stream: bool = True  # also write the streaming split: <name>.encoder.onnx, .head.onnx, .encoder-tail.onnx


def _verify_export_options(opt: ExportOptions) -> ExportOptions:
    if opt.window < 1 or not 0 < opt.hop <= opt.window:
        raise ValueError(f"window {opt.window} and hop {opt.hop} must be positive with hop <= window")
    if opt.opset < 14 or opt.tolerance <= 0 or not opt.check_shapes:
        raise ValueError("opset must be >= 14, tolerance positive, check_shapes non-empty")
    return opt


def parity(model: LipNet, cfg: TrainConfig, onnx_path: Path, shapes: tuple[tuple[int, int], ...]) -> float:
    """Largest |ONNX Runtime - torch| over random inputs of each (batch, frames) shape."""
    session = ort_session(onnx_path)
    worst = 0.0
    for n, t in shapes:
        video, points = random_inputs(cfg, n, t, seed=n * 1000 + t)
        with torch.no_grad():
            expected = model(video, points).numpy()
        (got,) = session.run([OUTPUT], {"video": video.numpy(), "points": points.numpy()})
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != torch {expected.shape} for input {n}x{t}")
        diff = float(np.max(np.abs(got - expected)))
        log.info("parity batch %d x %d frames: max abs diff %.2e", n, t, diff)
        worst = max(worst, diff)
    return worst


def _check_parity(path: Path, diff: float, tolerance: float) -> None:
    if not diff <= tolerance:
        raise RuntimeError(f"ONNX export of {path.name} differs from torch by {diff:.2e} (> {tolerance:.0e})")


def export_onnx(
    model: LipNet,
    cfg: TrainConfig,
    path: Path,
    contract: ModelContract,
    options: ExportOptions = ExportOptions(),
) -> float:
    """Write `model` to `path` (atomically) with `contract` in its metadata; with `options.stream`
    also its streaming encoder and head beside it, named in the contract's `stream`. Returns the
    full model's parity check's max abs diff (the split's is in the metrics). Raises RuntimeError
    when ONNX Runtime disagrees with torch; then nothing is written."""
    import onnx

    _verify_export_options(options)
    model = model.eval()
    tmp = temp_beside(path)
    split = None
    try:
        trace(model, random_inputs(cfg, 1, options.window), tmp, list(INPUTS), [OUTPUT], options.opset)
        diff = parity(model, cfg, tmp, options.check_shapes)
        _check_parity(path, diff, options.tolerance)
        metrics = {**contract.metrics, "parity_max_abs_diff": diff}
        if options.stream:
            split = export_stream(model, cfg, path, options.window, options.opset, options.check_shapes)
            _check_parity(stream_paths(path)[0], split.diff, options.tolerance)
            metrics["stream_parity_max_abs_diff"] = split.diff
        proto = onnx.load(str(tmp))
        contract = replace(contract, metrics=metrics, stream=split.graphs if split else None)
        onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        # the parts first: the model that names them appears last (their shared id guards the rest)
        for part, final in [*(split.files if split else ()), (tmp, path)]:
            os.chmod(part, FILE_MODE)
            os.replace(part, final)
    finally:
        for part, _ in [*(split.files if split else ()), (tmp, path)]:
            part.unlink(missing_ok=True)
    return diff


def rewrite_contract(path: Path, change: Callable[[ModelContract], ModelContract]) -> None:
    """Replace the contract in the metadata of the ONNX file `path` by change(contract), atomically;
    the graph and the split's files are untouched (they carry the contract's stream id)."""
    import onnx

    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    contract = change(ModelContract.from_json(props[METADATA_KEY]))
    onnx.helper.set_model_props(proto, {**props, METADATA_KEY: contract.to_json()})
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_contract(path: Path) -> ModelContract:
    """The contract stored in an ONNX file's metadata."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return ModelContract.from_json(props[METADATA_KEY])


@dataclass(frozen=True)
class RunEvaluation:
    """A run's validation result and what the contract says about its data."""

    evaluation: Evaluation | None  # None when the data or crops were not available
    data: dict  # data set, split and sizes
    decoder: DecoderSettings  # the default decoding the model ships with


def evaluate_run(cfg: TrainConfig, model: LipNet, run: Path) -> RunEvaluation:
    """Greedy and default-decoder error rates on the run's validation clips, and the data record.

    Reads <run>/split.json, the data set and the crop cache. Raises RuntimeError when one is missing.
    """
    try:
        split = json.loads((run / "split.json").read_text())
        corpus = read_data(cfg.data)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot evaluate run {run}: {e}") from e
    by_id = {c.clip_id: c for c in corpus.clips}
    missing = [i for i in split["val"] if i not in by_id]
    if missing:
        raise RuntimeError(f"cannot evaluate run {run}: {len(missing)} validation clips not in {cfg.data}")
    folder = cache_dir(Path(cfg.cache), cfg.crop, cfg.fps)
    try:
        items = load_items([by_id[i] for i in split["val"]], folder)
    except OSError as e:
        raise RuntimeError(f"cannot evaluate run {run}: crops not cached in {folder} ({e})") from e
    words = (w.text for i in split["train"] if i in by_id for w in by_id[i].words)
    settings = decoder_settings(cfg.decoder, corpus.kind, words, cfg.beam_width, cfg.word_score)
    decoder = make_app_decoder(settings) if settings.kind != "greedy" else None
    evaluation = evaluate(model, items, cfg.crop, cfg.mean, cfg.std, "cpu", decoder)
    left_out = split.get("left_out", {})
    data = {
        "dataset": folder_name(cfg.data),
        "path": cfg.data,
        "kind": corpus.kind,
        "speakers": sorted({c.speaker for c in corpus.clips} - {""}),  # unnamed: no folder or column
        "clips": len(split["train"]) + len(split["val"]),
        "train_clips": len(split["train"]),
        "val_clips": len(split["val"]),
        "split": split.get("split", "random"),
        "seed": split.get("seed", cfg.seed),
        "val_fraction": cfg.val_fraction,
        "val_speakers": split.get("val_speakers", []),
        "left_out_count": len(left_out),
        "left_out": dict(list(left_out.items())[:MAX_LEFT_OUT_LISTED]),
        "skipped_count": len(split.get("skipped", corpus.problems)),
    }
    return RunEvaluation(evaluation, data, settings)


def build_contract(
    cfg: TrainConfig, state: dict, run: RunEvaluation, options: ExportOptions, name_args: tuple[str, ...] = ()
) -> ModelContract:
    """The contract of a model: I/O, preprocessing, decoder, training config, data, metrics.
    state: the run's training state (last.pt's: epochs run, history, machine, teacher digests);
    name_args: the `--name` the export was given, for the command that reproduces it."""
    default = ExportOptions()
    live = [
        f"--{k}={getattr(options, k)}"
        for k in ("window", "hop")
        if getattr(options, k) != getattr(default, k)
    ]
    metrics = {
        "epochs": state["epoch"],
        "steps": state["step"],
        "best_epoch": state["best"].get("epoch"),
        "wall_seconds": round(sum(r.get("seconds", 0.0) for r in state["history"]), 1),
        "machine": state.get("machine") or f"{machine_description(torch.device('cpu'))} (export machine)",
        "train_loss": state["best"].get("loss"),
        "reproduce": " ".join(["lipreader-train", *config_args(cfg), *live, *name_args]),
    }
    if state.get("teacher_digests"):  # distillation's teacher files as the run loaded them
        metrics["teacher_sha256"] = state["teacher_digests"]
    evaluation = run.evaluation
    if evaluation is not None:
        metrics.update(
            {
                "val_cer_greedy": evaluation.cer,
                "val_wer_greedy": evaluation.wer,
                "decoder": evaluation.decoder,
                "val_cer": evaluation.decoded_cer,
                "val_wer": evaluation.decoded_wer,
                "val_clips": len(evaluation.samples),
            }
        )
    else:  # no data to evaluate on: the greedy numbers the checkpoint recorded
        metrics.update(
            {"val_cer_greedy": state["best"].get("val_cer"), "val_wer_greedy": state["best"].get("val_wer")}
        )
    return ModelContract(
        vocabulary=VOCABULARY,
        blank=0,
        crop=cfg.crop,
        fps=cfg.fps,
        window=options.window,
        hop=options.hop,
        mean=cfg.mean,
        std=cfg.std,
        video_input=INPUTS[0],
        points_input=INPUTS[1],
        output=OUTPUT,
        decoder=run.decoder,
        training=cfg.to_dict(),
        data=run.data,
        metrics=metrics,
        crop_version=CROP_VERSION,
    )


def export_run(
    checkpoint: Path, models_dir: Path, name: str | None = None, options: ExportOptions = ExportOptions()
) -> tuple[Path, Path]:
    """Evaluate a run's checkpoint and write models/<name>.onnx and its model card models/<name>.md
    (ending with models/<name>.notes.md, hand-written findings that survive re-exports, if it exists).

    name defaults to the run folder's name. Without the data or crop cache the metadata gets the
    checkpoint's recorded greedy numbers (a warning says so).
    """
    model, ck, cfg = load_checkpoint(checkpoint)
    run = checkpoint.parent
    name = name or run.name
    try:
        result = evaluate_run(cfg, model, run)
    except RuntimeError as e:
        log.warning("%s: the model gets the checkpoint's greedy numbers only", e)
        split_file = run / "split.json"
        split = json.loads(split_file.read_text()) if split_file.is_file() else {}
        settings = decoder_settings(
            cfg.decoder, split.get("kind", "grid"), (), cfg.beam_width, cfg.word_score
        )
        data = {
            "dataset": folder_name(cfg.data),
            "path": cfg.data,
            "seed": cfg.seed,
            "train_clips": len(split.get("train", [])),
            "val_clips": len(split.get("val", [])),
        }
        result = RunEvaluation(None, data, settings)
    state = ck["state"]
    if (run / "last.pt").is_file() and checkpoint.resolve() != (run / "last.pt").resolve():
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)["state"]
    contract = build_contract(cfg, state, result, options, (f"--name={name}",) if name != run.name else ())
    onnx_path = Path(models_dir) / f"{name}.onnx"
    diff = export_onnx(model, cfg, onnx_path, contract, options)
    print(
        f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); "
        f"ONNX Runtime vs torch max abs diff {diff:.2e}"
    )
    if (run / "last.pt").is_file():
        resume = onnx_path.with_suffix(".resume.pt")
        write_resume_checkpoint(run / "last.pt", resume)
        print(f"wrote {resume} ({resume.stat().st_size / 1e6:.1f} MB): copy it to {run}/last.pt to train on")
    card = onnx_path.with_suffix(".md")
    text = model_card(
        read_contract(onnx_path), name, checkpoint, onnx_path, sum(p.numel() for p in model.parameters())
    )
    notes = onnx_path.with_suffix(".notes.md")  # hand-written findings, kept across exports
    if notes.is_file():
        text += "\n" + notes.read_text()
    write_atomic(card, text, overwrite=True)
    return onnx_path, card


def write_resume_checkpoint(last: Path, path: Path) -> None:
    """A small copy of a run's `last.pt` to ship beside the model: the same checkpoint with the
    optimizer's moment estimates and the weight average (--ema) stored as bfloat16 (half their size;
    loading them casts back to the parameters' float32; the exported model is the ONNX file, not
    this). Written atomically."""
    ck = torch.load(last, map_location="cpu", weights_only=False)
    for state in [*ck["optimizer"]["state"].values(), ck.get("ema", {})]:
        for key, value in state.items():
            if torch.is_tensor(value) and value.is_floating_point() and value.dim() > 0:
                state[key] = value.to(torch.bfloat16)
    save_atomic(ck, path)
