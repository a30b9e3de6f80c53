"""The ONNX model: one place builds ONNX Runtime sessions; `LipModel` runs crops through one.

Everything about a model (vocabulary, crop, normalisation, fps, window, decoder) comes from the
contract in its metadata (`core/contract.py`); nothing here is specific to one model. When the
contract names a streaming split (encoder + head files beside the model) and both files are
there, `LipModel.encode` / `decode_features` run them (and `encode_tail` the split's tail, the
encoder without padding before a chunk, when it is there too); without them live captioning
falls back to the full model per window.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from core.contract import METADATA_KEY, STREAM_METADATA_KEY, ContractError, ModelContract
from core.crop import CROP_VERSION, NUM_LIP_POINTS, normalise_points, point_columns, point_features

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger("lipreader")

PROVIDERS = ("auto", "cuda", "cpu")
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
MODEL_NAME = "grid-s1.onnx"  # the model shipped with the app, in models/
MODEL_ENV_VAR = "LIPREADER_MODEL"  # path to a model file, overriding the default
ORT_QUIET = 3  # ONNX Runtime log severity: errors only
NO_SPINNING = "session.intra_op.allow_spinning"  # session config key, "0" = off
ORT_SILENT = 4  # fatal only: while CUDA is probed, whose failure to load is expected and handled
CUDA_LIBRARY = "*onnxruntime_providers_cuda*"  # ONNX Runtime's CUDA provider library (.so, .dll)


class ModelError(RuntimeError):
    """A model cannot be used; the message is one line naming the file."""


class ProviderError(ModelError):
    """The model is fine but cannot run on the provider asked for (CUDA where it cannot load)."""


def default_model_path() -> Path:
    """The shipped model: $LIPREADER_MODEL, else models/grid-s1.onnx from source or in the bundle."""
    override = os.environ.get(MODEL_ENV_VAR)
    if override:
        return Path(override)
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models" / MODEL_NAME
    return Path(__file__).resolve().parent.parent / "models" / MODEL_NAME


def _import_ort() -> ModuleType:
    """onnxruntime, with its telemetry events off (it is loaded with its telemetry off: see core/__init__)."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ModelError("ONNX Runtime is not installed: pip install onnxruntime") from e
    disable = getattr(onnxruntime, "disable_telemetry_events", None)  # not in every build or version
    if disable is not None:
        disable()
    return onnxruntime


def has_cuda_library() -> bool:
    """Whether this ONNX Runtime has its CUDA provider library (in onnxruntime/capi/).

    A CPU-only build of the app leaves it out (build.spec), yet ONNX Runtime still lists CUDA among its
    available providers there: without the library CUDA can never load.
    """
    capi = Path(_import_ort().__file__).parent / "capi"
    return any(capi.glob(CUDA_LIBRARY))


def build_session(model_path: str | Path, provider: str = "auto", threads: int = 2) -> InferenceSession:
    """An ONNX Runtime InferenceSession for `model_path`; the ONE place sessions are made.

    provider: "auto" (CUDA if this build has it and it loads, else CPU), "cuda" (CUDA or an error) or
    "cpu".
    threads: intra-op threads (they sleep when idle), so that MediaPipe and the GUI keep CPU.
    After creation, `session.get_providers()` tells which providers are really used.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    if threads < 1:
        raise ValueError(f"threads must be positive, not {threads}")
    ort = _import_ort()
    path = Path(model_path)
    if path.is_dir():
        raise ModelError(f"cannot load model {path}: it is a folder, not a model file (.onnx)")
    if not path.is_file():
        raise ModelError(f"cannot load model {path}: no such file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle pool threads sleep instead of spinning: the model shares the CPU with MediaPipe and the
    # GUI, and runs in short bursts (a spinning pool made a window 3x slower on 2 busy cores)
    options.add_session_config_entry(NO_SPINNING, "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = ORT_QUIET
    available = ort.get_available_providers()
    if provider == "cuda" and CUDA not in available:
        raise ProviderError(
            f"cannot use CUDA for {path}: this ONNX Runtime has no CUDA provider "
            f"(available: {', '.join(available)})"
        )
    # CUDA is never asked for where it cannot be: in a CPU-only build, which lists it all the same
    cuda = provider in ("auto", "cuda") and CUDA in available and has_cuda_library()
    if provider == "cuda" and not cuda:
        raise ProviderError(
            f"cannot use CUDA for {path}: this is a CPU-only build (no CUDA provider library); "
            "install the GPU build (onnxruntime-gpu), or use the cpu or auto provider"
        )
    providers = [CUDA, CPU] if cuda else [CPU]
    # A CUDA provider that is listed but cannot load (no GPU, missing libraries) logs errors and
    # falls back to CPU; we check get_providers() instead of printing those logs.
    ort.set_default_logger_severity(ORT_SILENT if CUDA in providers else ORT_QUIET)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # ORT raises its own exception types (InvalidProtobuf, Fail, ...)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"cannot load model {path}: not a valid ONNX model ({why[:200]})") from e
    finally:
        ort.set_default_logger_severity(ORT_QUIET)
    used = session.get_providers()
    if CUDA in providers and CUDA not in used:
        if provider == "cuda":
            raise ProviderError(
                f"cannot use CUDA for {path}: the CUDA provider failed to load "
                "(no GPU, or CUDA/cuDNN libraries missing); use the cpu or auto provider"
            )
        log.info("CUDA is listed but cannot load here; running %s on the CPU", path.name)
    return session


def _stream_sessions(
    path: Path, contract: ModelContract, provider: str, threads: int
) -> tuple[InferenceSession, InferenceSession, InferenceSession | None] | None:
    """The encoder, head and tail (None when the contract names none, or it is missing or not this
    export's: logged) sessions of the split the contract names, or None (logged) when the encoder or
    head is missing or belongs to another export. Raises ModelError when a file is not a valid model."""
    split = contract.stream
    if split is None:
        return None
    files = (path.with_name(split.encoder), path.with_name(split.head))
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        log.warning(
            "%s: its streaming parts %s are not beside it; running the full model on every window (slower)",
            path.name,
            ", ".join(missing),
        )
        return None
    sessions = (build_session(files[0], provider, threads), build_session(files[1], provider, threads))
    for session, file, part in zip(sessions, files, ("encoder", "head"), strict=True):
        if not _stamped(session, split.id, part):
            log.warning(
                "%s is not the %s exported with %s; running the full model", file.name, part, path.name
            )
            return None
    tail = None
    if split.tail:
        file = path.with_name(split.tail)
        if not file.is_file():
            log.warning("%s: %s missing; encoding each window's context frames in full", path.name, file.name)
        elif not _stamped(session := build_session(file, provider, threads), split.id, "tail"):
            log.warning("%s is not the tail exported with %s; going without it", file.name, path.name)
        else:
            tail = session
    return (*sessions, tail)


def _stamped(session: InferenceSession, split_id: str, part: str) -> bool:
    """Whether a split file's metadata names this split and part."""
    try:
        stamp = json.loads(session.get_modelmeta().custom_metadata_map.get(STREAM_METADATA_KEY, "{}"))
    except ValueError:
        return False
    return stamp == {"id": split_id, "part": part}


class LipModel:
    """A loaded lip-reading model: call it on a window of crops to get per-frame log-probs."""

    def __init__(
        self,
        session: InferenceSession,
        path: Path,
        contract: ModelContract,
    ) -> None:
        self.session = session
        self.path = path
        self.contract = contract
        self.provider = session.get_providers()[0]
        self._encoder = self._head = self._tail = None  # the streaming split, when load finds it
        self._check_graph(self.session, self.path, *self._io())

    @classmethod
    def load(
        cls, path: str | Path, provider: str = "auto", threads: int = 2, stream: bool = True
    ) -> LipModel:
        """Load a model file and its contract (and with `stream` its streaming encoder, head and tail when
        the contract names them and they are there). Raises ModelError naming the file."""
        path = Path(path)
        session = build_session(path, provider, threads)
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ModelError(
                f"cannot load model {path}: it has no '{METADATA_KEY}' metadata (not a LipReader model?)"
            )
        try:
            contract = ModelContract.from_json(meta[METADATA_KEY])
        except ContractError as e:
            raise ModelError(f"cannot load model {path}: {e}") from e
        if contract.crop_version != CROP_VERSION:
            log.warning(
                "model %s was trained on crops cut by version %d of the front end, this one cuts version %d: "
                "it may read worse",
                path.name,
                contract.crop_version,
                CROP_VERSION,
            )
        model = cls(session, path, contract)  # the model itself is checked before its parts are looked for
        parts = _stream_sessions(path, contract, provider, threads) if stream else None
        if parts:
            model._use_parts(*parts)
        return model

    @property
    def streams(self) -> bool:
        """Whether the streaming encoder and head are loaded (`encode`, `decode_features` work)."""
        return self._encoder is not None

    @property
    def has_tail(self) -> bool:
        """Whether the split's tail encoder is loaded (`encode_tail` works)."""
        return self._tail is not None

    @property
    def files(self) -> tuple[Path, ...]:
        """The files this model runs: the model, then its encoder and head, and tail, when loaded."""
        split = self.contract.stream
        extra = (split.encoder, split.head) if self.streams and split else ()
        extra += (split.tail,) if self.has_tail and split else ()
        return (self.path, *(self.path.with_name(name) for name in extra))

    def _io(self) -> tuple[dict, dict]:
        """The graph's inputs and output {name: shape, None = any} that the contract names."""
        c = self.contract
        frame = (c.crop.height, c.crop.width) if c.crop.grayscale else (c.crop.height, c.crop.width, 3)
        inputs = {c.video_input: (None, None, *frame)}
        if c.points_input:
            inputs[c.points_input] = (None, None, point_features(c.crop))
        return inputs, {c.output: (None, None, len(c.vocabulary))}

    def _use_parts(
        self, encoder: InferenceSession, head: InferenceSession, tail: InferenceSession | None
    ) -> None:
        """Run the streaming split's sessions from now on, once their graphs are checked."""
        self._encoder, self._head, self._tail = encoder, head, tail
        inputs, log_probs = self._io()
        encoder, head, *tail = self.files[1:]
        stream = self.contract.stream
        features = {stream.feature_name: (None, None, stream.features)}
        self._check_graph(self._encoder, encoder, inputs, features)
        self._check_graph(self._head, head, features, log_probs)
        if tail:
            self._check_graph(self._tail, tail[0], inputs, features)

    @staticmethod
    def _check_graph(session: InferenceSession, path: Path, inputs: dict, outputs: dict) -> None:
        """Raise ModelError unless the graph has these inputs and outputs {name: shape, None = any}."""
        have = {i.name: i.shape for i in session.get_inputs()} | {
            o.name: o.shape for o in session.get_outputs()
        }
        missing = [name for name in (*inputs, *outputs) if name not in have]
        if missing:
            raise ModelError(
                f"cannot load model {path}: its contract names inputs/outputs "
                f"{', '.join(missing)} that the graph lacks (graph inputs: "
                f"{', '.join(i.name for i in session.get_inputs())})"
            )
        for name, want in (*inputs.items(), *outputs.items()):
            shape = have[name]
            ok = len(shape) == len(want) and all(
                w is None or not isinstance(s, int) or s == w for s, w in zip(shape, want, strict=False)
            )
            if not ok:
                shown = "x".join("?" if w is None else str(w) for w in want)
                raise ModelError(
                    f"cannot load model {path}: '{name}' has shape {shape}, the contract needs {shown}"
                )

    def _feeds(self, crops: np.ndarray, lip_points: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of one window, batch of 1: normalised video and points."""
        c = self.contract
        video = (crops.astype(np.float32) * np.float32(1 / 255) - np.float32(c.mean)) / np.float32(c.std)
        feeds = {c.video_input: video[None]}
        if c.points_input:
            feeds[c.points_input] = normalise_points(lip_points, c.crop)[None]
        return feeds

    def _run(self, session: InferenceSession, output: str, feeds: dict, shape: tuple) -> np.ndarray:
        try:
            (out,) = session.run([output], feeds)
        except Exception as e:  # ORT's own exception types
            raise ModelError(f"model {self.path.name} failed on input {shape}: {e}") from e
        return out[0]

    def __call__(self, crops: np.ndarray, lip_points: np.ndarray) -> np.ndarray:
        """Log-probs of one window.

        crops: uint8, shape (T, H, W) grey or (T, H, W, 3); lip_points: float32, shape (T, 40, 2)
        in crop pixels ((T, 40, 3) with depth for a model whose crop spec has it). Returns float32,
        shape (T, C).
        """
        return self._run(self.session, self.contract.output, self._feeds(crops, lip_points), crops.shape)

    def encode(self, crops: np.ndarray, lip_points: np.ndarray) -> np.ndarray:
        """Per-frame features of a chunk (the streaming encoder; needs `streams`).

        crops and lip_points as for calling the model. Returns float32, shape (T, F). The first and
        last `contract.stream.context` frames see zero padding beyond the chunk.
        """
        if self._encoder is None:
            raise ModelError(f"model {self.path.name} has no streaming encoder loaded")
        feeds = self._feeds(crops, lip_points)
        return self._run(self._encoder, self.contract.stream.feature_name, feeds, crops.shape)

    def encode_tail(self, crops: np.ndarray, lip_points: np.ndarray) -> np.ndarray:
        """The features of a chunk's frames from `contract.stream.context` on (the tail encoder;
        needs `has_tail`): encode(crops, lip_points)[context:] at about two thirds of the cost, as
        the first frames are only context. Returns float32, shape (T - context, F)."""
        if self._tail is None:
            raise ModelError(f"model {self.path.name} has no tail encoder loaded")
        feeds = self._feeds(crops, lip_points)
        return self._run(self._tail, self.contract.stream.feature_name, feeds, crops.shape)

    def decode_features(self, features: np.ndarray) -> np.ndarray:
        """Log-probs of a window of features (the streaming head; needs `streams`).

        features: float32, shape (T, F). Returns float32, shape (T, C).
        """
        if self._head is None:
            raise ModelError(f"model {self.path.name} has no streaming head loaded")
        feeds = {self.contract.stream.feature_name: np.ascontiguousarray(features, np.float32)[None]}
        return self._run(self._head, self.contract.output, feeds, features.shape)

    def warm_up(self) -> None:
        """Run one window of zeros (through the split too) so the first real window is not slow."""
        c = self.contract
        frame = (c.crop.height, c.crop.width) if c.crop.grayscale else (c.crop.height, c.crop.width, 3)
        columns = point_columns(c.crop)  # x, y (and depth)
        crops, points = (
            np.zeros((c.window, *frame), np.uint8),
            np.zeros((c.window, NUM_LIP_POINTS, columns), np.float32),
        )
        self(crops, points)
        if self.streams:
            self.decode_features(self.encode(crops, points))
        if self.has_tail:  # it needs more than `context` frames
            more = max(c.window, c.stream.context + 1)
            self.encode_tail(
                np.zeros((more, *frame), np.uint8), np.zeros((more, NUM_LIP_POINTS, columns), np.float32)
            )
