"""ONNX graphs of a LipNet: tracing, and the streaming split (encoder + head + tail) with its parity checks.

Live captioning runs the model on overlapping windows (e.g. 60 frames every 2). Most of the work is
the per-frame front end, so export also writes graphs beside the full model:

- `<name>.encoder.onnx`: "video" float32 (N, T, H, W) + "points" (N, T, 80 or 120) -> "features"
  (N, T, F), everything before the GRU (`LipNet.encode`). Its temporal convolutions (the stem's
  kernel of 5, and 3 in each trunk block with --model-trunk-time=3) are zero-padded, so the
  features of a chunk's first and last `LipNet.context` frames (2, or 4) equal the whole clip's
  only when the chunk carries that many frames of real context there.
- `<name>.head.onnx`: "features" (N, T, F) -> "log_probs" (N, T, C), the BiGRU and the output
  layer (`LipNet.decode_features`).
- `<name>.encoder-tail.onnx`: the encoder with no padding before a chunk (`write_tail`, an edit of
  the encoder graph): the features of the chunk's frames from `context` on only, which is what a
  live window in mid-stream needs, for about two thirds of the encoder's work.

The encoder and head are traced like the full model (TorchScript exporter, dynamic batch and time
axes); all three are checked against torch before anything is renamed into place and carry the
split's id in their metadata, so the app never pairs them with another export's model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from core.contract import STREAM_METADATA_KEY, StreamGraphs
from core.inference import build_session
from training.config import TrainConfig
from training.model import LipNet

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger("lipreader")

INPUTS, OUTPUT, FEATURES = ("video", "points"), "log_probs", "features"
ENCODER_SUFFIX, HEAD_SUFFIX, TAIL_SUFFIX = ".encoder.onnx", ".head.onnx", ".encoder-tail.onnx"
TAIL_TOLERANCE = 1e-4  # largest |tail - encoder| on the same frames for the tail to be kept
EXPORTER_NOISE = (  # warnings torch.onnx.export raises about what we chose on purpose
    (".*legacy TorchScript-based ONNX export", DeprecationWarning),
    (".*feature will be removed", DeprecationWarning),
    (".*batch_size other than 1", UserWarning),
    (".*Converting a tensor to a Python boolean", torch.jit.TracerWarning),  # GRU's constant shape checks
)


class Encoder(nn.Module):
    """LipNet.encode as a module: video (N, T, H, W[, C]) + points (N, T, 80|120) -> features (N, T, F)."""

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
    """Random model inputs: video (n, t, H, W[, 3]) normal, points (n, t, F) uniform in [-1, 1] (F:
    the model's lip-point features, 80 or 120 with depth)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, t, cfg.crop.height, cfg.crop.width) + (() if cfg.crop.grayscale else (3,))
    points = (n, t, cfg.model.num_points)
    return torch.randn(shape, generator=gen), torch.rand(points, generator=gen) * 2 - 1


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


def ort_session(path: Path) -> InferenceSession:
    """A one-thread CPU session for parity checks, built where the app builds its own."""
    return build_session(path, provider="cpu", threads=1)


@dataclass(frozen=True)
class StreamExport:
    """The split written to temporary files, checked, waiting to be renamed into place."""

    graphs: StreamGraphs  # what the contract says about it
    files: tuple[tuple[Path, Path], ...]  # (temporary file, final path) of the encoder, head (and tail)
    diff: float  # largest |ONNX Runtime - torch| over the parity checks


def stream_paths(path: Path) -> tuple[Path, Path]:
    """Where the encoder and head of the model file `path` go: <name>.encoder.onnx, <name>.head.onnx
    (the tail: `tail_path`)."""
    stem = path.name.removesuffix(".onnx")
    return path.with_name(stem + ENCODER_SUFFIX), path.with_name(stem + HEAD_SUFFIX)


def tail_path(path: Path) -> Path:
    """Where the tail encoder of the model file `path` goes: <name>.encoder-tail.onnx."""
    return path.with_name(path.name.removesuffix(".onnx") + TAIL_SUFFIX)


def write_tail(encoder: Path, out: Path, context: int, split_id: str) -> bool:
    """Write the tail of a stamped encoder graph to `out`: each temporal convolution loses its
    padding before the first frame, so the graph computes only what the features of a chunk's
    frames from `context` on need (the live windows encode `context` frames of real context
    before the frames they keep). The frame count of the final reshape becomes T - context and the
    lip points skip their first `context` frames. False (nothing written, logged) when the graph is
    not the shape this edits: the caller goes without a tail."""
    import onnx

    proto = onnx.load(str(encoder))
    try:
        why = _cut_tail(proto, context)
        if why is None:
            onnx.helper.set_model_props(
                proto, {STREAM_METADATA_KEY: json.dumps({"id": split_id, "part": "tail"})}
            )
            onnx.checker.check_model(proto)
    except Exception as e:  # onnx's own exception types: a graph this does not know
        why = f"{type(e).__name__}: {e}"
    if why is not None:
        log.info("no tail cut from %s: %s", encoder.name, why)
        return False
    onnx.save(proto, str(out))
    return True


def _cut_tail(proto, context: int) -> str | None:  # proto: onnx.ModelProto, edited in place
    """Edit the encoder graph into its tail; returns why it cannot (then `proto` is spoilt), or None."""
    import onnx
    from onnx import helper

    graph = proto.graph
    trimmed = 0
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: a for a in node.attribute}
        kernel = attrs["kernel_shape"].ints
        if len(kernel) != 3 or kernel[0] == 1:
            continue
        if any(attrs[k].ints[0] != 1 for k in ("strides", "dilations") if k in attrs):
            return f"{node.name} strides or dilates time"
        trimmed += attrs["pads"].ints[0]
        attrs["pads"].ints[0] = 0
    # the final reshape takes its frame count from the video's shape: Gather(Shape(..), 1)
    makers = {o: n for n in graph.node for o in n.output}
    frames = [
        n
        for n in graph.node
        if n.op_type == "Gather"
        and makers.get(n.input[0]) is not None
        and makers[n.input[0]].op_type == "Shape"
        and makers.get(n.input[1]) is not None
        and makers[n.input[1]].op_type == "Constant"
        and onnx.numpy_helper.to_array(makers[n.input[1]].attribute[0].t).tolist() == 1
    ]
    if trimmed != context:
        return f"the temporal padding before a chunk adds up to {trimmed} frames, not {context}"
    if len(frames) != 1 or not any(INPUTS[1] in n.input for n in graph.node):
        return "not one frame count taken from the video's shape, or no lip points"
    t_out = frames[0].output[0]
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array(context, np.int64), "tail/context"),
            onnx.numpy_helper.from_array(np.array([context], np.int64), "tail/starts"),
            onnx.numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "tail/ends"),
            onnx.numpy_helper.from_array(np.array([1], np.int64), "tail/axes"),
        ]
    )
    for node in graph.node:  # every user of T and of the points gets the trimmed one
        for i, name in enumerate(node.input):
            if name == t_out:
                node.input[i] = "tail/frames"
            elif name == INPUTS[1]:
                node.input[i] = "tail/points"
    graph.node.extend(
        [
            helper.make_node("Sub", [t_out, "tail/context"], ["tail/frames"], name="tail/Sub"),
            helper.make_node(
                "Slice",
                [INPUTS[1], "tail/starts", "tail/ends", "tail/axes"],
                ["tail/points"],
                name="tail/Slice",
            ),
        ]
    )
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    ordered = [
        onnx.NodeProto.FromString(n.SerializeToString()) for n in _topological(list(graph.node), known)
    ]
    del graph.node[:]
    graph.node.extend(ordered)
    for value in graph.output:  # fewer frames out than in
        if value.name == FEATURES:
            value.type.tensor_type.shape.dim[1].dim_param = "T_tail"
    return None


def _tail_matches(encoder: Path, tail: Path, cfg: TrainConfig, context: int) -> bool:
    """Whether the tail gives encoder(x)[:, context:] on a random chunk (a graph write_tail misread
    would not): False, logged, when it does not."""
    video, points = random_inputs(cfg, 2, 3 * context + 5, seed=7)
    feeds = {INPUTS[0]: video.numpy(), INPUTS[1]: points.numpy()}
    try:
        (want,) = ort_session(encoder).run([FEATURES], feeds)
        (got,) = ort_session(tail).run([FEATURES], feeds)
        diff = _max_diff(got, want[:, context:], "tail")
    except Exception as e:  # ORT's own exception types, or a shape mismatch
        diff, why = float("inf"), str(e).splitlines()[0] if str(e) else type(e).__name__
    else:
        why = f"max abs diff {diff:.2e}"
    if diff > TAIL_TOLERANCE:
        log.warning("the tail cut from the encoder does not match it (%s): exported without a tail", why)
        return False
    return True


def _topological(nodes: list, known: set[str]) -> list:
    """`nodes` in an order where each node comes after the nodes that make its inputs."""
    done, order, pending = set(known), [], list(nodes)
    while pending:
        ready = [n for n in pending if all(not i or i in done for i in n.input)]
        if not ready:
            raise RuntimeError("the encoder graph has a cycle or a missing input")
        for n in ready:
            order.append(n)
            done.update(n.output)
        taken = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in taken]
    return order


def _max_diff(got: np.ndarray, expected: np.ndarray, what: str) -> float:
    if got.shape != expected.shape:
        raise RuntimeError(f"{what}: ONNX output shape {got.shape} != torch {expected.shape}")
    return float(np.max(np.abs(got - expected)))


def stream_parity(
    model: LipNet,
    cfg: TrainConfig,
    encoder: Path,
    head: Path,
    shapes: tuple[tuple[int, int], ...],
    tail: Path | None = None,
) -> float:
    """Largest |ONNX Runtime - torch| of the split: encoder features, head log-probs, head(encoder)
    against the full model at each (batch, frames) shape, and a chunk encoded with `context`
    frames either side (by the encoder, and by the tail when given) against the same frames of the
    whole clip's features."""
    enc, dec = ort_session(encoder), ort_session(head)
    end = ort_session(tail) if tail is not None else None
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
            if end is not None:
                (part,) = end.run([FEATURES], chunk)
                diff = _max_diff(part[:, : b - a], features[:, a:b].numpy(), f"tail chunk {a}:{b}")
                log.info("stream parity: the tail on frames %d:%d: %.2e", a, b, diff)
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
    """Trace the encoder and head of `model` (in eval mode), and cut the encoder's tail, for the
    model file `path` into temporary files beside it and check them against torch. The caller
    renames them into place (before the main model, whose contract names them) and deletes them on
    failure."""
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
        tail_final = tail_path(path)
        files.append((temp_beside(tail_final), tail_final))
        if write_tail(enc_tmp, files[-1][0], model.context, graphs.id) and _tail_matches(
            enc_tmp, files[-1][0], cfg, model.context
        ):
            graphs = replace(graphs, tail=tail_final.name)
        else:
            files.pop()[0].unlink(missing_ok=True)
        diff = stream_parity(model, cfg, enc_tmp, head_tmp, shapes, files[-1][0] if graphs.tail else None)
    except BaseException:
        for tmp, _ in files:
            tmp.unlink(missing_ok=True)
        raise
    return StreamExport(graphs, tuple(files), diff)
