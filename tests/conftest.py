"""Shared fixtures: repo paths, the GRID sample data, and a tiny ONNX model built without torch."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import logging  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core.contract import METADATA_KEY, DecoderSettings, ModelContract  # noqa: E402
from core.crop import CropSpec  # noqa: E402
from core.transcripts import GRID_GRAMMAR  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DIR = (REPO / ".." / "shared").resolve()
GRID_DIR = SHARED_DIR / "grid" / "s1"
REAL_MODEL = REPO / "models" / "grid-s1.onnx"


@pytest.fixture(autouse=True)
def _lipreader_logger_restored():
    """Each test leaves the "lipreader" logger as it found it: the CLI's main() points it at the
    test's captured stderr, which is closed once that test ends."""
    log = logging.getLogger("lipreader")
    kept = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:] = kept[0]
    log.setLevel(kept[1])
    log.propagate = kept[2]


GRID_VOCABULARY = ("_", " ", *"abcdefghijklmnopqrstuvwxyz")


def tiny_contract(**changes: object) -> ModelContract:
    """The contract of the tiny test model (GRID vocabulary and grammar)."""
    values = dict(
        vocabulary=GRID_VOCABULARY,
        blank=0,
        crop=CropSpec(),
        fps=25.0,
        window=75,
        hop=10,
        mean=0.4,
        std=0.2,
        decoder=DecoderSettings(kind="grammar", grammar=GRID_GRAMMAR),
    )
    values.update(changes)
    return ModelContract(**values)


def tiny_weights(points_dim: int = 80, classes: int = 28) -> np.ndarray:
    """The tiny model's fixed weights W, shape (points_dim, classes): tests can steer its output."""
    return np.random.default_rng(0).normal(0, 1, (points_dim, classes)).astype(np.float32)


def build_tiny_onnx(
    path: Path,
    contract_json: str | None,
    video_dims: tuple = (48, 96),
    points_dim: int = 80,
    classes: int = 28,
    video_name: str = "video",
    video_weights: np.ndarray | None = None,
) -> Path:
    """log_probs (N, T, classes) = LogSoftmax(points @ W + c * mean(video)), fixed random W.

    c (classes,) is `video_weights`, by default 0.01 for every class (the video changes nothing).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = tiny_weights(points_dim, classes)
    c = np.full(classes, 0.01, np.float32) if video_weights is None else video_weights.astype(np.float32)
    axes = list(range(2, 2 + len(video_dims)))
    nodes = [
        helper.make_node("MatMul", ["points", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits0"]),
        helper.make_node("ReduceMean", [video_name], ["vm"], axes=axes, keepdims=0),
        helper.make_node("Unsqueeze", ["vm", "axis"], ["vm3"]),
        helper.make_node("Mul", ["vm3", "c"], ["vs"]),
        helper.make_node("Add", ["logits0", "vs"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info(video_name, TensorProto.FLOAT, ["N", "T", *video_dims]),
            helper.make_tensor_value_info("points", TensorProto.FLOAT, ["N", "T", points_dim]),
        ],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["N", "T", classes])],
        [
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.zeros(classes, np.float32), "b"),
            numpy_helper.from_array(np.array([2], np.int64), "axis"),
            numpy_helper.from_array(c, "c"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if contract_json is not None:
        helper.set_model_props(model, {METADATA_KEY: contract_json})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """/work/shared (data and the MediaPipe asset), found as ../shared from the repo; skips when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared folder not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """The GRID speaker-1 sample (video/*.mp4, align/*.align); skips when absent."""
    if not (GRID_DIR / "video").is_dir():
        pytest.skip(f"GRID data not found at {GRID_DIR}")
    return GRID_DIR


@pytest.fixture(scope="session")
def landmarker() -> Path:
    """The MediaPipe asset; skips when it is not installed."""
    from core.assets import AssetError, landmarker_path

    try:
        return landmarker_path()
    except AssetError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ONNX model with a valid GRID contract (window 75, hop 10, grammar decoder)."""
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    return build_tiny_onnx(path, tiny_contract().to_json())


@pytest.fixture(scope="session")
def onnx_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Builds variants of the tiny model: onnx_factory(name, contract_json=..., **build_tiny_onnx kwargs)."""
    folder = tmp_path_factory.mktemp("variants")

    def make(name: str, contract_json: str | None = None, **kwargs: object) -> Path:
        return build_tiny_onnx(folder / name, contract_json, **kwargs)

    return make


@pytest.fixture(scope="session")
def real_model() -> Path:
    """models/grid-s1.onnx, the trained model; skips until it exists."""
    if not REAL_MODEL.is_file():
        pytest.skip(f"trained model {REAL_MODEL} not present yet")
    return REAL_MODEL


# -- the desktop app (lipreader_app) ------------------------------------------------------------


@pytest.fixture
def app_settings(tmp_path: Path):
    """QSettings on an INI file in tmp_path: app tests never read or write the user's preferences."""
    from lipreader_app.settings import ini_settings

    return ini_settings(tmp_path / "lipreader.ini")


@pytest.fixture
def grid_clip(grid_dir: Path) -> tuple[Path, str]:
    """One GRID clip and its transcript (silences dropped), e.g. (.../bbaf2n.mp4, "bin blue at f two now")."""
    from core.transcripts import read_align

    video = grid_dir / "video" / "bbaf2n.mp4"
    words = read_align(grid_dir / "align" / "bbaf2n.align")
    return video, " ".join(w.text for w in words)


@pytest.fixture
def main_window(qtbot, app_settings, tiny_model: Path):
    """The main window with the tiny model loaded (CPU), shown offscreen; closed after the test."""
    from lipreader_app.main_window import MainWindow

    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    assert window.load_model(tiny_model), window.errors
    window.show()
    yield window
    window.close()


@pytest.fixture
def make_update() -> Callable[..., object]:
    """Builds hand-made core.streaming.LiveUpdate objects (no MediaPipe, no model) for panel tests.

    make_update(index, final=(("bin", 0.0, 0.3),), partial=(...), utterance_end=False,
    probs=None or (T, C) array, faces=1, status=TrackStatus.TRACKED, utterance=0,
    revised=None or the words of a revision of this utterance, revisions={number: words} of others,
    chosen=False: the face is the one the user clicked)
    """
    from core.streaming import CaptionWord, LiveUpdate, Revision
    from core.types import FaceLandmarks, Frame, LipCrop, TrackStatus

    rng = np.random.default_rng(0)
    face = (rng.uniform(100, 250, (478, 2))).astype(np.float32)
    lips = np.stack([rng.uniform(10, 86, 40), rng.uniform(10, 38, 40)], axis=1).astype(np.float32)
    transform = np.array([[0.5, 0.0, -80.0], [0.0, 0.5, -100.0]])  # frame -> crop pixels

    def make(
        index: int,
        final: tuple = (),
        partial: tuple = (),
        utterance_end: bool = False,
        probs: np.ndarray | None = None,
        faces: int = 1,
        status: TrackStatus = TrackStatus.TRACKED,
        utterance: int = 0,
        revised: tuple | None = None,
        revisions: dict[int, tuple] | None = None,
        chosen: bool = False,
    ):
        t = index / 25.0
        frame = Frame(index, t, np.full((288, 360, 3), index % 255, np.uint8))
        tracked = status == TrackStatus.TRACKED and faces
        landmarks = FaceLandmarks(face, faces, chosen=chosen) if tracked else None
        crop = LipCrop(index, t, np.full((48, 96), 128, np.uint8), lips, transform, status, landmarks)
        as_words = lambda group, final: tuple(CaptionWord(w, s, e, final) for w, s, e in group)  # noqa: E731
        revisions = {**({} if revised is None else {utterance: revised}), **(revisions or {})}
        revised_words = tuple(Revision(n, as_words(group, True)) for n, group in revisions.items())
        timings = {"landmarks": 12.0, "crop": 1.0, "model": 5.0, "decode": 0.5}
        return LiveUpdate(
            frame,
            crop,
            as_words(final, True),
            as_words(partial, False),
            utterance_end,
            probs,
            timings,
            faces,
            revised_words,
            utterance,
        )

    return make


# --- training fixtures (training helper) ---

MINI_CLIPS = ("bbaf2n", "bwim6p", "lwaz2p", "priv6p")  # four GRID s1 sentences, all different


def make_grid_layout(root: Path, grid: Path, stems: tuple[str, ...] = MINI_CLIPS) -> Path:
    """A GRID-layout folder `root` (video/ + align/) linking to clips of the shared data."""
    (root / "video").mkdir(parents=True)
    (root / "align").mkdir()
    for stem in stems:
        (root / "video" / f"{stem}.mp4").symlink_to(grid / "video" / f"{stem}.mp4")
        (root / "align" / f"{stem}.align").symlink_to(grid / "align" / f"{stem}.align")
    return root


@pytest.fixture(scope="session")
def mini_grid(grid_dir: Path, landmarker: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four GRID clips in GRID layout ({"data": .../s1, "cache": crop cache}), their crops cached
    once per session (MediaPipe, about a second per clip). Copy the cache before writing to it."""
    from training.config import TrainConfig
    from training.prepare import prepare_data

    base = tmp_path_factory.mktemp("mini-grid")
    data = make_grid_layout(base / "s1", grid_dir)
    prepared = prepare_data(TrainConfig(data=str(data), cache=str(base / "cache"), workers=1))
    assert len(prepared.clips) == len(MINI_CLIPS), prepared.left_out
    return {"data": data, "cache": base / "cache"}


def tiny_train_config(mini: dict[str, Path], out: Path, **changes: object) -> object:
    """A TrainConfig for a tiny model on the mini GRID set (seconds per epoch on one thread)."""
    from dataclasses import replace

    from training.config import TrainConfig
    from training.model import ModelConfig

    cfg = TrainConfig(
        data=str(mini["data"]),
        cache=str(mini["cache"]),
        out=str(out),
        workers=1,
        threads=1,
        model=ModelConfig(channels=(8, 8, 8), hidden=16, visual_dim=16),
        batch_size=2,
        val_fraction=0.25,
        epochs=2,
        tensorboard=False,
    )
    return replace(cfg, **changes)


@pytest.fixture(scope="session")
def tiny_run(mini_grid: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run of the tiny model on the mini GRID set (best.pt, last.pt, split.json)."""
    from training.train import train

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train(tiny_train_config(mini_grid, out))
    return out


@pytest.fixture
def gui_gc():
    """No cyclic garbage collection during the test except in the GUI thread (see GuiThreadGc):
    Qt objects freed by a worker thread's collection crash Qt later."""
    import gc

    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was_enabled:
        gc.enable()


# --- the streaming split (a tiny LipNet exported with its encoder and head) ---


def build_split_model(path: Path, **changes: object) -> Path:
    """A tiny random LipNet exported to `path` with its streaming encoder and head beside it.

    Batch-norm statistics and the output layer are scaled so that the video and the time context
    move the output a lot (a test that mixes up frames fails). Contract: tiny_contract(hop=8, ...).
    """
    from dataclasses import replace

    import torch
    from torch import nn

    from training.config import TrainConfig
    from training.export import ExportOptions, export_onnx
    from training.model import LipNet, ModelConfig

    cfg = TrainConfig(model=ModelConfig(channels=(8, 8, 8), hidden=16, visual_dim=16))
    torch.manual_seed(0)
    model = LipNet(replace(cfg.model, num_classes=len(GRID_VOCABULARY))).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_var.uniform_(0.02, 0.1)
                module.running_mean.normal_(0, 0.05)
        model.head.weight.mul_(4)
    contract = tiny_contract(**{"hop": 8, "mean": cfg.mean, "std": cfg.std, **changes})
    export_onnx(model, cfg, path, contract, ExportOptions(check_shapes=((1, 20),)))
    return path


@pytest.fixture(scope="session")
def split_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/split.onnx + split.encoder.onnx + split.head.onnx: a tiny LipNet (window 75, hop 8)."""
    return build_split_model(tmp_path_factory.mktemp("split") / "split.onnx")
