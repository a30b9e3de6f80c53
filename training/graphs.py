"""ONNX graphs of a LipNet: tracing, and the streaming split (encoder + head) with its parity checks.

Live captioning runs the model on overlapping windows (75 frames every 8). Most of the work is
the per-frame front end, so export also writes two graphs beside the full model:

- `<name>.encoder.onnx`: "video" float32 (N, T, H, W) + "points" (N, T, 80) -> "features"
  (N, T, F), everything before the GRU (`LipNet.encode`). The stem's temporal kernel of 5 is
  zero-padded by CONTEXT = 2 frames on each side, so the features of a chunk's first and last 2
  frames equal the whole clip's only when the chunk carries 2 frames of real context there.
- `<name>.head.onnx`: "features" (N, T, F) -> "log_probs" (N, T, C), the BiGRU and the output
  layer (`LipNet.decode_features`).

Both are traced like the full model (TorchScript exporter, dynamic batch and time axes) and
checked against torch before anything is renamed into place; both carry the split's id in their
metadata so the app never pairs them with another export's model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.contract import STREAM_METADATA_KEY, StreamGraphs
from training.config import TrainConfig
from training.model import LipNet

log = logging.getLogger("lipreader")

INPUTS, OUTPUT, FEATURES = ("video", "points"), "log_probs", "features"
ENCODER_SUFFIX, HEAD_SUFFIX = ".encoder.onnx", ".head.onnx"
EXPORTER_NOISE = (  # warnings torch.onnx.export raises about what we chose on purpose
    (".*legacy TorchScript-based ONNX export", DeprecationWarning),
    (".*feature will be removed", DeprecationWarning),
    (".*batch_size other than 1", UserWarning),
    (".*Converting a tensor to a Python boolean", torch.jit.TracerWarning),  # GRU's constant shape checks
)


class Encoder(nn.Module):
    """LipNet.encode as a module: video (N, T, H, W[, C]) + points (N, T, 80) -> features (N, T, F)."""

    def __init__(self, model: LipNet) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)  # the exporter restores the wrapper's mode on the whole model

    def forward(self, video: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.model.encode(video, points)


class Head(nn.Module):
    """LipNet.decode_features as a module: features (N, T, F) -> log-probs (N, T, C)."""

    def __init__(self, model: LipNet) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)  # the exporter restores the wrapper's mode on the whole model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.decode_features(features)


def random_inputs(cfg: TrainConfig, n: int, t: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random model inputs: video (n, t, H, W[, 3]) normal, points (n, t, 80) uniform in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, t, cfg.crop.height, cfg.crop.width) + (() if cfg.crop.grayscale else (3,))
    return torch.randn(shape, generator=gen), torch.rand((n, t, 80), generator=gen) * 2 - 1


def temp_beside(path: Path) -> Path:
    """A new empty temporary file in `path`'s folder (renamed onto `path` once complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    return Path(name)


def trace(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], opset: int
) -> None:
    """Trace `module` on `args` to ONNX at `path`, every input and output with axes 0, 1 = N, T."""
    with warnings.catch_warnings():  # the legacy exporter is what we ask for; GRU h0 is not an input
        for message, category in EXPORTER_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "N", 1: "T"} for name in (*inputs, *outputs)},
        )


def ort_session(path: Path):  # -> onnxruntime.InferenceSession
    """A one-thread CPU session for parity checks."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class StreamExport:
    """The split written to temporary files, checked, waiting to be renamed into place."""

    graphs: StreamGraphs  # what the contract says about it
    files: tuple[tuple[Path, Path], ...]  # (temporary file, final path) of the encoder and the head
    diff: float  # largest |ONNX Runtime - torch| over the parity checks


def stream_paths(path: Path) -> tuple[Path, Path]:
    """Where the encoder and head of the model file `path` go: <name>.encoder.onnx, <name>.head.onnx."""
    stem = path.name.removesuffix(".onnx")
    return path.with_name(stem + ENCODER_SUFFIX), path.with_name(stem + HEAD_SUFFIX)


def _max_diff(got: np.ndarray, expected: np.ndarray, what: str) -> float:
    if got.shape != expected.shape:
        raise RuntimeError(f"{what}: ONNX output shape {got.shape} != torch {expected.shape}")
    return float(np.max(np.abs(got - expected)))


def stream_parity(
    model: LipNet, cfg: TrainConfig, encoder: Path, head: Path, shapes: tuple[tuple[int, int], ...]
) -> float:
    """Largest |ONNX Runtime - torch| of the split: encoder features, head log-probs, head(encoder)
    against the full model at each (batch, frames) shape, and a chunk encoded with `context`
    frames either side against the same frames of the whole clip's features."""
    enc, dec = ort_session(encoder), ort_session(head)
    ctx = model.context
    worst = 0.0
    for n, t in shapes:
        video, points = random_inputs(cfg, n, t, seed=n * 1000 + t)
        with torch.no_grad():
            features = model.encode(video, points)
            expected = model.decode_features(features).numpy()
        (got_features,) = enc.run([FEATURES], {INPUTS[0]: video.numpy(), INPUTS[1]: points.numpy()})
        (from_torch,) = dec.run([OUTPUT], {FEATURES: features.numpy()})
        (from_onnx,) = dec.run([OUTPUT], {FEATURES: got_features})
        diffs = (
            _max_diff(got_features, features.numpy(), f"encoder {n}x{t}"),
            _max_diff(from_torch, expected, f"head {n}x{t}"),
            _max_diff(from_onnx, expected, f"encoder + head {n}x{t}"),
        )
        log.info("stream parity %d x %d frames: encoder %.2e, head %.2e, both %.2e", n, t, *diffs)
        worst = max(worst, *diffs)
        a, b = t // 3, 2 * t // 3  # a chunk in the middle, with real context either side
        if a >= ctx and b + ctx <= t and b > a:
            chunk = {
                INPUTS[0]: video[:, a - ctx : b + ctx].numpy(),
                INPUTS[1]: points[:, a - ctx : b + ctx].numpy(),
            }
            (part,) = enc.run([FEATURES], chunk)
            diff = _max_diff(part[:, ctx : part.shape[1] - ctx], features[:, a:b].numpy(), f"chunk {a}:{b}")
            log.info("stream parity: frames %d:%d encoded with %d frames of context: %.2e", a, b, ctx, diff)
            worst = max(worst, diff)
    return worst


def _stamp(path: Path, split_id: str, part: str, features: int) -> None:
    """Write the split's id into a part's metadata, and F into its "features" shape (the tracer
    leaves the concatenated size symbolic)."""
    import onnx

    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):
        if value.name == FEATURES:
            value.type.tensor_type.shape.dim[2].dim_value = features
    onnx.helper.set_model_props(proto, {STREAM_METADATA_KEY: json.dumps({"id": split_id, "part": part})})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def export_stream(
    model: LipNet, cfg: TrainConfig, path: Path, window: int, opset: int, shapes: tuple[tuple[int, int], ...]
) -> StreamExport:
    """Trace the encoder and head of `model` (in eval mode) for the model file `path` into temporary
    files beside it and check them against torch. The caller renames them into place (before the
    main model, whose contract names them) and deletes them on failure."""
    encoder_path, head_path = stream_paths(path)
    files: list[tuple[Path, Path]] = []
    try:
        files.append((temp_beside(encoder_path), encoder_path))
        files.append((temp_beside(head_path), head_path))
        (enc_tmp, _), (head_tmp, _) = files
        video, points = random_inputs(cfg, 1, window)
        trace(Encoder(model), (video, points), enc_tmp, list(INPUTS), [FEATURES], opset)
        with torch.no_grad():
            features = model.encode(video, points)
        trace(Head(model), (features,), head_tmp, [FEATURES], [OUTPUT], opset)
        graphs = StreamGraphs(
            encoder=encoder_path.name,
            head=head_path.name,
            context=model.context,
            features=model.feature_dim,
            feature_name=FEATURES,
            id=uuid.uuid4().hex,
        )
        _stamp(enc_tmp, graphs.id, "encoder", graphs.features)
        _stamp(head_tmp, graphs.id, "head", graphs.features)
        diff = stream_parity(model, cfg, enc_tmp, head_tmp, shapes)
    except BaseException:
        for tmp, _ in files:
            tmp.unlink(missing_ok=True)
        raise
    return StreamExport(graphs, tuple(files), diff)
