"""The ONNX model: one place builds ONNX Runtime sessions; `LipModel` runs crops through one.

Everything about a model (vocabulary, crop, normalisation, fps, window, decoder) comes from the
contract in its metadata (`core/contract.py`); nothing here is specific to one model.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from core.contract import METADATA_KEY, ContractError, ModelContract
from core.crop import NUM_LIP_POINTS, normalise_points

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger("lipreader")

PROVIDERS = ("auto", "cuda", "cpu")
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
MODEL_NAME = "grid-s1.onnx"  # the model shipped with the app, in models/
MODEL_ENV_VAR = "LIPREADER_MODEL"  # path to a model file, overriding the default
ORT_QUIET = 3  # ONNX Runtime log severity: errors only
ORT_SILENT = 4  # fatal only: while CUDA is probed, whose failure to load is expected and handled


class ModelError(RuntimeError):
    """A model cannot be used; the message is one line naming the file."""


def default_model_path() -> Path:
    """The shipped model: $LIPREADER_MODEL, else models/grid-s1.onnx from source or in the bundle."""
    override = os.environ.get(MODEL_ENV_VAR)
    if override:
        return Path(override)
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models" / MODEL_NAME
    return Path(__file__).resolve().parent.parent / "models" / MODEL_NAME


def _import_ort() -> ModuleType:
    try:
        import onnxruntime
    except ImportError as e:
        raise ModelError("ONNX Runtime is not installed: pip install onnxruntime") from e
    return onnxruntime


def build_session(model_path: str | Path, provider: str = "auto", threads: int = 2) -> InferenceSession:
    """An ONNX Runtime InferenceSession for `model_path`; the ONE place sessions are made.

    provider: "auto" (CUDA if it loads, else CPU), "cuda" (CUDA or an error) or "cpu".
    threads: intra-op threads, so that MediaPipe and the GUI keep CPU. After creation,
    `session.get_providers()` tells which providers are really used.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    if threads < 1:
        raise ValueError(f"threads must be positive, not {threads}")
    ort = _import_ort()
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"cannot load model {path}: no such file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = ORT_QUIET
    available = ort.get_available_providers()
    wants_cuda = provider in ("auto", "cuda")
    if provider == "cuda" and CUDA not in available:
        raise ModelError(
            f"cannot use CUDA for {path}: this ONNX Runtime has no CUDA provider "
            f"(available: {', '.join(available)})"
        )
    providers = [CUDA, CPU] if wants_cuda and CUDA in available else [CPU]
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
            raise ModelError(
                f"cannot use CUDA for {path}: the CUDA provider failed to load "
                "(no GPU, or CUDA/cuDNN libraries missing); use --provider cpu or auto"
            )
        log.info("CUDA is listed but cannot load here; running %s on the CPU", path.name)
    return session


class LipModel:
    """A loaded lip-reading model: call it on a window of crops to get per-frame log-probs."""

    def __init__(self, session: InferenceSession, path: Path, contract: ModelContract) -> None:
        self.session = session
        self.path = path
        self.contract = contract
        self.provider = session.get_providers()[0]
        self._check_io()

    @classmethod
    def load(cls, path: str | Path, provider: str = "auto", threads: int = 2) -> LipModel:
        """Load a model file and its contract. Raises ModelError naming the file."""
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
        return cls(session, path, contract)

    def _check_io(self) -> None:
        c, path = self.contract, self.path
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        expected = [c.video_input] + ([c.points_input] if c.points_input else [])
        missing = [n for n in expected if n not in inputs] + ([c.output] if c.output not in outputs else [])
        if missing:
            raise ModelError(
                f"cannot load model {path}: its contract names inputs/outputs "
                f"{', '.join(missing)} that the graph lacks (graph inputs: {', '.join(inputs)})"
            )
        frame = (c.crop.height, c.crop.width) if c.crop.grayscale else (c.crop.height, c.crop.width, 3)
        checks = [(c.video_input, (None, None, *frame))]
        if c.points_input:
            checks.append((c.points_input, (None, None, 2 * NUM_LIP_POINTS)))
        for name, want in checks:
            self._check_shape(name, inputs[name].shape, want)
        self._check_shape(c.output, outputs[c.output].shape, (None, None, len(c.vocabulary)))

    def _check_shape(self, name: str, shape: list, want: tuple) -> None:
        ok = len(shape) == len(want) and all(
            w is None or not isinstance(s, int) or s == w for s, w in zip(shape, want, strict=False)
        )
        if not ok:
            shown = "x".join("?" if w is None else str(w) for w in want)
            raise ModelError(
                f"cannot load model {self.path}: '{name}' has shape {shape}, the contract needs {shown}"
            )

    def __call__(self, crops: np.ndarray, lip_points: np.ndarray) -> np.ndarray:
        """Log-probs of one window.

        crops: uint8, shape (T, H, W) grey or (T, H, W, 3); lip_points: float32, shape (T, 40, 2)
        in crop pixels. Returns float32, shape (T, C).
        """
        c = self.contract
        video = (crops.astype(np.float32) * np.float32(1 / 255) - np.float32(c.mean)) / np.float32(c.std)
        feeds = {c.video_input: video[None]}
        if c.points_input:
            feeds[c.points_input] = normalise_points(lip_points, c.crop)[None]
        try:
            (out,) = self.session.run([c.output], feeds)
        except Exception as e:  # ORT's own exception types
            raise ModelError(f"model {self.path.name} failed on input {crops.shape}: {e}") from e
        return out[0]

    def warm_up(self) -> None:
        """Run one window of zeros so the first real window is not slow."""
        c = self.contract
        frame = (c.crop.height, c.crop.width) if c.crop.grayscale else (c.crop.height, c.crop.width, 3)
        self(np.zeros((c.window, *frame), np.uint8), np.zeros((c.window, NUM_LIP_POINTS, 2), np.float32))
