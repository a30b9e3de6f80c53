"""Export a checkpoint to ONNX with its whole contract in the metadata, and write its model card.

The model is traced (TorchScript exporter, opset 17) with dynamic batch and time axes: inputs
"video" float32 (N, T, H, W) and "points" float32 (N, T, 80), output "log_probs" float32 (N, T, C).
ONNX Runtime's output is checked against torch at two batch sizes and lengths before the file is
renamed into place. The metadata key "lipreader.contract" holds `core.contract.ModelContract` as
JSON: vocabulary, blank, crop spec, fps, window, hop, normalisation, default decoder, the training
config, the data and split, and validation metrics (greedy and with the default decoder).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.contract import METADATA_KEY, DecoderSettings, ModelContract
from training.card import model_card
from training.config import TrainConfig, config_args, config_from_dict
from training.dataset import VOCABULARY
from training.evaluation import Evaluation, decoder_settings, evaluate, make_app_decoder
from training.model import LipNet
from training.prepare import cache_dir
from training.readers import read_data
from training.train import FILE_MODE, load_items, machine_description

log = logging.getLogger("lipreader")

INPUTS, OUTPUT = ("video", "points"), "log_probs"
MAX_LEFT_OUT_LISTED = 100  # left-out clips named in the metadata (the count is always given)
EXPORTER_NOISE = (  # warnings torch.onnx.export raises about what we chose on purpose
    (".*legacy TorchScript-based ONNX export", DeprecationWarning),
    (".*feature will be removed", DeprecationWarning),
    (".*batch_size other than 1", UserWarning),
    (".*Converting a tensor to a Python boolean", torch.jit.TracerWarning),  # GRU's constant shape checks
)


@dataclass(frozen=True)
class ExportOptions:
    """How a model is exported."""

    window: int = 75  # frames per live sliding window the app runs the model on
    hop: int = 10  # frames between successive live windows
    opset: int = 17  # ONNX opset
    tolerance: float = 1e-4  # largest |ONNX Runtime - torch| accepted by the parity check
    check_shapes: tuple[tuple[int, int], ...] = ((1, 75), (3, 40))  # (batch, frames) of parity inputs


def _verify_export_options(opt: ExportOptions) -> ExportOptions:
    if opt.window < 1 or not 0 < opt.hop <= opt.window:
        raise ValueError(f"window {opt.window} and hop {opt.hop} must be positive with hop <= window")
    if opt.opset < 14 or opt.tolerance <= 0 or not opt.check_shapes:
        raise ValueError("opset must be >= 14, tolerance positive, check_shapes non-empty")
    return opt


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
    model.load_state_dict(ck["model"])
    return model.eval(), ck, cfg


def _inputs(cfg: TrainConfig, n: int, t: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (n, t, cfg.crop.height, cfg.crop.width) + (() if cfg.crop.grayscale else (3,))
    return torch.randn(shape, generator=gen), torch.rand((n, t, 80), generator=gen) * 2 - 1


def parity(model: LipNet, cfg: TrainConfig, onnx_path: Path, shapes: tuple[tuple[int, int], ...]) -> float:
    """Largest |ONNX Runtime - torch| over random inputs of each (batch, frames) shape."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for n, t in shapes:
        video, points = _inputs(cfg, n, t, seed=n * 1000 + t)
        with torch.no_grad():
            expected = model(video, points).numpy()
        (got,) = session.run([OUTPUT], {"video": video.numpy(), "points": points.numpy()})
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != torch {expected.shape} for input {n}x{t}")
        diff = float(np.max(np.abs(got - expected)))
        log.info("parity batch %d x %d frames: max abs diff %.2e", n, t, diff)
        worst = max(worst, diff)
    return worst


def export_onnx(
    model: LipNet,
    cfg: TrainConfig,
    path: Path,
    contract: ModelContract,
    options: ExportOptions = ExportOptions(),
) -> float:
    """Write `model` to `path` (atomically) with `contract` in its metadata; returns the parity
    check's max abs diff. Raises RuntimeError when ONNX Runtime disagrees with torch."""
    import onnx

    _verify_export_options(options)
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    axes = {0: "N", 1: "T"}
    try:
        with warnings.catch_warnings():  # the legacy exporter is what we ask for; GRU h0 is not an input
            for message, category in EXPORTER_NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            torch.onnx.export(
                model,
                _inputs(cfg, 1, options.window),
                str(tmp),
                dynamo=False,
                opset_version=options.opset,
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes={name: axes for name in (*INPUTS, OUTPUT)},
            )
        diff = parity(model, cfg, tmp, options.check_shapes)
        if not diff <= options.tolerance:
            raise RuntimeError(
                f"ONNX export of {path.name} differs from torch by {diff:.2e} (> {options.tolerance:.0e})"
            )
        proto = onnx.load(str(tmp))
        metrics = {**contract.metrics, "parity_max_abs_diff": diff}
        onnx.helper.set_model_props(proto, {METADATA_KEY: replace(contract, metrics=metrics).to_json()})
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return diff


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
    settings = decoder_settings(cfg.decoder, corpus.kind, words, cfg.beam_width)
    decoder = make_app_decoder(settings) if settings.kind != "greedy" else None
    evaluation = evaluate(model, items, cfg.crop, cfg.mean, cfg.std, "cpu", decoder)
    left_out = split.get("left_out", {})
    data = {
        "dataset": Path(cfg.data).name,
        "path": cfg.data,
        "kind": corpus.kind,
        "speakers": sorted({c.speaker for c in corpus.clips}),
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
    cfg: TrainConfig, state: dict, run: RunEvaluation, options: ExportOptions
) -> ModelContract:
    """The contract of a model: I/O, preprocessing, decoder, training config, data, metrics.
    state: the run's training state (last.pt's: epochs run, history, machine)."""
    metrics = {
        "epochs": state["epoch"],
        "steps": state["step"],
        "best_epoch": state["best"].get("epoch"),
        "wall_seconds": round(sum(r.get("seconds", 0.0) for r in state["history"]), 1),
        "machine": state.get("machine") or f"{machine_description(torch.device('cpu'))} (export machine)",
        "train_loss": state["best"].get("loss"),
        "reproduce": " ".join(["lipreader-train", *config_args(cfg)]),
    }
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
    )


def export_run(
    checkpoint: Path, models_dir: Path, name: str | None = None, options: ExportOptions = ExportOptions()
) -> tuple[Path, Path]:
    """Evaluate a run's checkpoint and write models/<name>.onnx and its model card models/<name>.md.

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
        settings = decoder_settings(cfg.decoder, split.get("kind", "grid"), (), cfg.beam_width)
        data = {
            "dataset": Path(cfg.data).name,
            "path": cfg.data,
            "seed": cfg.seed,
            "train_clips": len(split.get("train", [])),
            "val_clips": len(split.get("val", [])),
        }
        result = RunEvaluation(None, data, settings)
    state = ck["state"]
    if (run / "last.pt").is_file() and checkpoint.resolve() != (run / "last.pt").resolve():
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)["state"]
    contract = build_contract(cfg, state, result, options)
    onnx_path = Path(models_dir) / f"{name}.onnx"
    diff = export_onnx(model, cfg, onnx_path, contract, options)
    print(
        f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); "
        f"ONNX Runtime vs torch max abs diff {diff:.2e}"
    )
    card = onnx_path.with_suffix(".md")
    card.write_text(
        model_card(
            read_contract(onnx_path), name, checkpoint, onnx_path, sum(p.numel() for p in model.parameters())
        )
    )
    return onnx_path, card
