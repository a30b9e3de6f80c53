"""What Help ▸ About LipReader… says and *Copy diagnostics* copies for a bug report: LipReader's
version, the model loaded (what its card says it is) and the ONNX Runtime provider it really runs
on, the versions of the libraries under it, the system, and the licences of what ships with it.

`collect_diagnostics` gathers them in a frozen `Diagnostics`; `diagnostics_text` is its plain text.
Libraries not loaded yet are not imported for their versions (MediaPipe takes seconds): their
installed distributions' metadata says.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtGui import QGuiApplication

from core.contract import ModelContract
from core.inference import LipModel
from lipreader_app.panels.status import provider_name

DISTRIBUTION = "lipreader-desktop"  # LipReader's package name (pyproject.toml), for its version
UNKNOWN_VERSION = "(version unknown: not installed as a package)"
NOT_FOUND = "not found"
LIBRARIES = (  # (name shown, module, the distributions that may provide it)
    ("ONNX Runtime", "onnxruntime", ("onnxruntime-gpu", "onnxruntime")),
    ("MediaPipe", "mediapipe", ("mediapipe",)),
    ("OpenCV", "cv2", ("opencv-contrib-python", "opencv-python", "opencv-python-headless")),
    ("numpy", "numpy", ("numpy",)),
)
SCORES = (("WER", "val_wer"), ("CER", "val_cer"))  # the validation scores shown, and their metrics' keys
LICENCES = (  # what ships with LipReader, and under which licence
    "LipReader: MIT License",
    "MediaPipe Face Landmarker model (face_landmarker.task), by Google: Apache License 2.0",
    "GRID audiovisual sentence corpus, which the shipped model learnt from: by Martin Cooke, Jon "
    "Barker, Stuart Cunningham and Xu Shao (2006), J. Acoust. Soc. Am. 120(5):2421–2424; "
    "Creative Commons Attribution 4.0",
    "Qt 6 and PySide6 (The Qt Company), which the installers bundle: GNU LGPL 3.0",
    "Also bundled, each under its own licence: ONNX Runtime (MIT), OpenCV and MediaPipe (Apache 2.0), "
    "numpy (BSD 3-Clause), flashlight-text (BSD), pyqtgraph and mss (MIT), tqdm (MPL 2.0 and MIT)",
)


@dataclass(frozen=True)
class Diagnostics:
    """The facts About LipReader… shows, as text."""

    version: str  # LipReader's, from the package metadata (UNKNOWN_VERSION when not installed)
    model: str  # the model loaded: its file name ("" with none)
    model_path: str  # where that file is ("" with none)
    model_card: tuple[str, ...]  # what its card says it is: data, validation scores, input
    provider: str  # the provider ONNX Runtime really runs it on (session.get_providers()) and the one asked
    libraries: tuple[tuple[str, str], ...]  # (name, version): Python, Qt, PySide6, ONNX Runtime, ...
    system: str  # the operating system, and Qt's platform plugin
    licences: tuple[str, ...] = LICENCES


def app_version() -> str:
    """LipReader's version from the installed package's metadata; UNKNOWN_VERSION when it is not
    installed (run from a copy of the sources, or a bundle without metadata)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def library_version(module: str, distributions: tuple[str, ...]) -> str:
    """A library's version: its module's `__version__` when it is imported already, else that of
    the first of `distributions` installed (the module is not imported for it); NOT_FOUND if none."""
    version = getattr(sys.modules.get(module), "__version__", None)
    if version:
        return str(version)
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return NOT_FOUND


def library_versions() -> tuple[tuple[str, str], ...]:
    """(name, version) of Python, Qt, PySide6 and each of LIBRARIES."""
    return (
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", pyside_version),
        *((name, library_version(module, dists)) for name, module, dists in LIBRARIES),
    )


def _percent(value: object) -> str | None:
    """0.0375 -> '3.7 %'; None for anything but a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value * 100:.1f} %"


def model_card_lines(contract: ModelContract) -> tuple[str, ...]:
    """What a model's card (Model ▸ Model card…) says it is, in a few lines: the data it learnt
    from, its validation scores, what it reads; those its contract does not declare are left out."""
    c, d, m = contract, contract.data, contract.metrics
    lines = []
    if d:
        named = " ".join(str(d[k]) for k in ("kind", "dataset") if d.get(k)) or "undeclared data"
        speakers = d.get("speakers")
        who = f", speakers {', '.join(map(str, speakers))}" if isinstance(speakers, list) and speakers else ""
        clips = (
            f", {d['train_clips']} training / {d['val_clips']} validation clips"
            if "train_clips" in d and "val_clips" in d
            else ""
        )
        lines.append(f"trained on {named}{who}{clips}")
    scores = [f"{name} {_percent(m[key])}" for name, key in SCORES if _percent(m.get(key))]
    if scores:
        decoder = f" ({m['decoder']} decoder)" if m.get("decoder") else ""
        lines.append(f"validation {', '.join(scores)}{decoder}")
    if c.training.get("init_from"):  # a path on the machine it was trained on: its last two parts
        start = Path(str(c.training["init_from"]))
        lines.append(f"trained on from the weights of {start.parent.name}/{start.name}")
    colour = "grey" if c.crop.grayscale else "colour"
    points = f", plus lip points{' with depth' if c.crop.depth else ''}" if c.points_input else ""
    lines.append(
        f"{len(c.vocabulary)} classes from {c.crop.width}×{c.crop.height} {colour} lip crops at {c.fps:g} fps"
        f"{points}"
    )
    if not (d or m):
        lines.append("its data and metrics are not declared")
    return tuple(lines)


def collect_diagnostics(model: LipModel | None, asked_provider: str) -> Diagnostics:
    """The facts of this run: `model` the one loaded (None: none is), `asked_provider` the provider
    asked for ("auto", "cuda" or "cpu")."""
    if model is None:
        name, path, card = "", "", ()
        provider = f"none: no model is loaded (asked for {asked_provider})"
    else:
        name, path, card = model.path.name, str(model.path), model_card_lines(model.contract)
        provider = f"{provider_name(model.provider)} ({model.provider}; asked for {asked_provider})"
    app = QGuiApplication.instance()
    qt_platform = f", Qt platform {app.platformName()}" if isinstance(app, QGuiApplication) else ""
    return Diagnostics(
        version=app_version(),
        model=name,
        model_path=path,
        model_card=card,
        provider=provider,
        libraries=library_versions(),
        system=f"{platform.platform()}{qt_platform}",
    )


def diagnostics_text(d: Diagnostics) -> str:
    """`d` as plain text, one fact a line, for a bug report."""
    lines = [f"LipReader {d.version}"]
    if d.model:
        lines += [f"Model: {d.model} ({d.model_path})", *(f"  {line}" for line in d.model_card)]
    else:
        lines.append("Model: none loaded")
    lines += [
        f"ONNX Runtime provider: {d.provider}",
        *(f"{name}: {version}" for name, version in d.libraries),
        f"System: {d.system}",
        "Licences:",
        *(f"  {licence}" for licence in d.licences),
    ]
    return "\n".join(lines) + "\n"
