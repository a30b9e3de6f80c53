"""The self-test's checks: one method each, handing each other what they found.

The generated clip is a drawn cartoon face whose mouth opens and closes (MediaPipe's FaceLandmarker
finds drawn faces): the landmark check also verifies that the lips found sit on the drawn mouth and
open with it. The model's text for a drawn face means nothing, so it is shown, never judged. With
`video` (a real recording) the landmark checks only require a face to be found. `selftest.py` runs
the checks in order and reports them.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.assets import LANDMARKER_SHA256, landmarker_path
from core.contract import ModelContract
from core.crop import LipCropper
from core.decoding import make_decoder
from core.engine import CaptionEngine
from core.inference import CUDA, MODEL_ENV_VAR, LipModel, default_model_path, has_cuda_library
from core.landmarks import LIP_INDICES, LOWER_INNER_LIP, UPPER_INNER_LIP, LandmarkDetector
from core.revision import WordLog
from core.streaming import iter_captions
from core.types import Frame, TrackStatus
from core.video import VideoFileSource, resample
from lipreader_app.face_clip import CLIP_FPS, MOUTH_WIDTH, mouth_centre, mouth_opening, write_face_clip

if TYPE_CHECKING:  # selftest.py imports this module
    from lipreader_app.selftest import SelfTestOptions

MOUTH_TOLERANCE = 0.2  # the lips found may sit this far from the drawn mouth, in mouth widths
MIN_OPENING_CORRELATION = 0.8  # between the drawn and the found mouth opening
MIN_FACE_RATIO = 0.9  # of the generated clip's frames where the face must be found
PROB_TOLERANCE = 1e-3  # |sum of probabilities - 1| per frame
DEFAULT_FPS = 25.0  # resampling rate when no model could be loaded


class CheckFailed(Exception):
    """A check's verdict: the message is the one-line reason."""


class SelfTestChecks:
    """The state the checks hand each other; each `check_<name>` returns its one-line detail."""

    def __init__(self, options: SelfTestOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.asset: Path | None = None
        self.model: LipModel | None = None
        self.clip: Path | None = None
        self.frames: list[Frame] = []
        self.landmarks: list = []
        self.crops: np.ndarray | None = None  # uint8 (T, H, W[, 3])
        self.points: np.ndarray | None = None  # float32 (T, 40, 2), 3 with depth
        self.log_probs: np.ndarray | None = None  # float32 (T, C)

    @property
    def generated(self) -> bool:
        return self.options.video is None

    @property
    def contract(self) -> ModelContract:
        assert self.model is not None
        return self.model.contract

    def check_asset(self) -> str:
        self.asset = landmarker_path(verify=True)
        return f"{self.asset} (SHA-256 {LANDMARKER_SHA256[:12]}… verified)"

    def check_model(self) -> str:
        path = default_model_path()
        try:
            self.model = LipModel.load(path, provider="auto", threads=2)
        except RuntimeError as e:
            hint = "" if path.is_file() else f"; set {MODEL_ENV_VAR} to a LipReader .onnx model"
            raise CheckFailed(f"{e}{hint}") from e
        c = self.contract
        return (
            f"{path.name}: {len(c.vocabulary)} classes, {c.fps:g} fps, window {c.window}, hop {c.hop}, "
            f"decoder {c.decoder.kind}; runs on {self.model.provider} ({_cuda_note(self.model.provider)})"
        )

    def check_video(self) -> str:
        fps = self.contract.fps if self.model is not None else DEFAULT_FPS
        if self.generated:
            self.clip = write_face_clip(self.workdir / "face.mp4", self.options.seconds, CLIP_FPS)
        else:
            self.clip = self.options.video
        source = VideoFileSource(self.clip)
        self.frames = list(itertools.islice(resample(source, fps), self.options.max_frames))
        stamps = np.array([f.timestamp for f in self.frames])
        if len(stamps) < 2 or not np.allclose(np.diff(stamps), 1 / fps):
            raise CheckFailed(f"resampling {self.clip.name} gave {len(stamps)} frames with uneven timestamps")
        if self.generated:
            expected = round(self.options.seconds * fps)
            if abs(len(self.frames) - expected) > 1:
                raise CheckFailed(f"{len(self.frames)} frames at {fps:g} fps, expected {expected}")
            what = f"generated {self.options.seconds:g} s clip, {CLIP_FPS:g} fps mp4v"
        else:
            what = f"{self.clip} ({source.fps:g} fps)"
        return f"{what} -> {len(self.frames)} frames at {fps:g} fps (VideoFileSource + resample)"

    def check_landmarks(self) -> str:
        follow = self.model is not None and self.contract.crop.follow_face  # as the model's crops were
        with LandmarkDetector(str(self.asset), follow=follow) as detector:
            self.landmarks = [detector(f) for f in self.frames]
            last = self.frames[-1]
            blank = detector(Frame(last.index + 1, last.timestamp + 1.0, np.full_like(last.image, 128)))
        found = [i for i, lm in enumerate(self.landmarks) if lm is not None]
        ratio = len(found) / len(self.frames)
        if not self.generated:
            if not found:
                raise CheckFailed(f"no face found in {len(self.frames)} frames of {self.clip}")
            return f"face found in {len(found)}/{len(self.frames)} frames of {self.clip.name}"
        if ratio < MIN_FACE_RATIO:
            raise CheckFailed(f"the drawn face was found in only {len(found)}/{len(self.frames)} frames")
        if blank is not None:
            raise CheckFailed("a face was reported in a blank grey frame")
        times = [self.frames[i].timestamp for i in found]
        lips = np.stack([self.landmarks[i].points[list(LIP_INDICES)].mean(axis=0) for i in found])
        offset = np.linalg.norm(lips - np.array([mouth_centre(t) for t in times]), axis=1)
        if offset.max() > MOUTH_TOLERANCE * MOUTH_WIDTH:
            raise CheckFailed(f"the lips found are {offset.max():.0f} px away from the drawn mouth")
        gap = [
            self.landmarks[i].points[LOWER_INNER_LIP, 1] - self.landmarks[i].points[UPPER_INNER_LIP, 1]
            for i in found
        ]
        r = float(np.corrcoef(gap, [mouth_opening(t) for t in times])[0, 1])
        if not r >= MIN_OPENING_CORRELATION:
            raise CheckFailed(f"the mouth found does not open with the drawn one (r={r:.2f})")
        return (
            f"drawn face found in {len(found)}/{len(self.frames)} frames, none in a blank frame; lips "
            f"{np.median(offset):.1f} px from the drawn mouth, opening with it (r={r:.2f})"
        )

    def check_crops(self) -> str:
        spec = self.contract.crop
        cropper = LipCropper(spec)
        crops = [cropper(f, lm) for f, lm in zip(self.frames, self.landmarks, strict=True)]
        shape = (spec.height, spec.width) if spec.grayscale else (spec.height, spec.width, 3)
        bad = [c.image.shape for c in crops if c.image.shape != shape or c.image.dtype != np.uint8]
        if bad:
            raise CheckFailed(f"crop of shape {bad[0]}, the contract needs {shape} uint8")
        tracked = [c for c in crops if c.status == TrackStatus.TRACKED]
        if len(tracked) != sum(lm is not None for lm in self.landmarks):
            raise CheckFailed("crops are not marked tracked exactly where landmarks were found")
        self.crops = np.stack([c.image for c in crops])
        self.points = np.stack([c.lip_points for c in crops]).astype(np.float32)
        inside = np.mean(
            [
                (0 <= p[:, 0]).all()
                and (p[:, 0] <= spec.width).all()
                and (0 <= p[:, 1]).all()
                and (p[:, 1] <= spec.height).all()
                for p in (c.lip_points for c in tracked)
            ]
        )
        if inside < MIN_FACE_RATIO:
            raise CheckFailed(f"the lips fall outside {100 * (1 - inside):.0f}% of the crops")
        detail = (
            f"{len(crops)} crops {spec.height}x{spec.width} {'grey' if spec.grayscale else 'BGR'}, "
            f"{len(tracked)} tracked, lips inside the crop"
        )
        if self.generated:  # the drawn mouth is dark on light skin: the centre must be darker
            centred = np.mean([_centre_darker(c.image) for c in tracked])
            if centred < MIN_FACE_RATIO:
                raise CheckFailed(f"the mouth is off-centre in {100 * (1 - centred):.0f}% of the crops")
            detail += ", mouth at the centre"
        return detail

    def check_inference(self) -> str:
        c = self.contract
        n = min(len(self.crops), c.window)
        t0 = time.perf_counter()
        out = self.model(self.crops[:n], self.points[:n])
        ms = (time.perf_counter() - t0) * 1000
        if out.shape != (n, len(c.vocabulary)) or out.dtype != np.float32:
            raise CheckFailed(
                f"log-probs {out.shape} {out.dtype}, expected ({n}, {len(c.vocabulary)}) float32"
            )
        if not np.isfinite(out).all():
            raise CheckFailed("the model's log-probs are not all finite")
        error = float(np.abs(np.exp(out.astype(np.float64)).sum(axis=1) - 1).max())
        if error > PROB_TOLERANCE:
            raise CheckFailed(f"probabilities sum to 1 ± {error:.2g} per frame (tolerance {PROB_TOLERANCE})")
        self.log_probs = out
        return f"{n} frames -> log-probs {out.shape}, probabilities sum to 1 (± {error:.0e}), {ms:.0f} ms"

    def check_decoding(self) -> str:
        c = self.contract
        sentence = _known_sentence(c)
        synthetic = _spell(sentence, c.vocabulary, c.blank)
        shown = []
        for kind in dict.fromkeys(("greedy", c.decoder.kind)):
            decoder = make_decoder(c.vocabulary, c.blank, c.decoder, kind=kind)
            got = " ".join(w.text for w in decoder.decode(synthetic))
            if got != sentence:
                raise CheckFailed(f"{kind} decoder spelled {got!r} from log-probs of {sentence!r}")
            words = decoder.decode(self.log_probs)
            if any(not (0 <= w.start < w.end <= len(self.log_probs)) for w in words):
                raise CheckFailed(f"{kind} decoder returned words timed outside the window")
            shown.append(f"{kind} {' '.join(w.text for w in words)!r}")
        return f"known sentence {sentence!r} spelled back; model output: {', '.join(shown)} (not judged)"

    def check_captions(self) -> str:
        engine = CaptionEngine(self.model)
        limit = len(self.frames) / engine.fps
        source = itertools.takewhile(lambda f: f.timestamp < limit - 1e-6, VideoFileSource(self.clip))
        updates = runs = 0
        log = WordLog()
        t0 = time.perf_counter()
        for update in iter_captions(source, engine, self.asset):
            updates += 1
            log.add(update)
            if update.probs is not None:
                runs += 1
                if np.abs(update.probs.sum(axis=1) - 1).max() > PROB_TOLERANCE:
                    raise CheckFailed(f"window probabilities at frame {update.frame.index} do not sum to 1")
        seconds = time.perf_counter() - t0
        if updates < len(self.frames) or runs == 0:
            raise CheckFailed(f"{updates} updates and {runs} model runs for {len(self.frames)} frames")
        text = " ".join(w.text for w in log.words)
        return (
            f"{updates} updates, {runs} model runs, {len(self.frames) / seconds:.0f} frames/s, "
            f"{len(log.words)} final words {text!r}"
        )

    def check_qt(self) -> str:
        _prepare_qt_platform()
        import PySide6
        from PySide6.QtCore import qVersion

        from lipreader_app.app import make_application

        app = make_application()
        return f"QApplication on {app.platformName()!r}, PySide6 {PySide6.__version__}, Qt {qVersion()}"

    def check_gui(self) -> str:
        from PySide6.QtCore import QEventLoop, QTimer

        from lipreader_app.main_window import MainWindow
        from lipreader_app.settings import ini_settings

        t0 = time.perf_counter()
        settings = ini_settings(self.workdir / "selftest.ini")  # never the user's preferences
        window = MainWindow(settings)
        try:
            window.show()
            if not window.load_model(self.model.path):
                raise CheckFailed(f"the window could not load the model: {window.errors[-1]}")
            t_ready = time.perf_counter()
            first: list[float] = []
            loop = QEventLoop()

            def delivered(_update: object) -> None:
                if not first:
                    first.append(time.perf_counter())
                    loop.quit()

            window.stream.delivered.connect(delivered)
            window.stream.errored.connect(lambda _message: loop.quit())
            if not window.open_video(self.clip):
                raise CheckFailed(f"the window could not open the clip: {window.errors[-1]}")
            QTimer.singleShot(int(self.options.gui_timeout * 1000), loop.quit)
            loop.exec()
            window.stop_stream()
            if window.errors:
                raise CheckFailed(f"the window showed an error: {window.errors[-1]}")
            if not first:
                raise CheckFailed(f"no live frame reached the window within {self.options.gui_timeout:g} s")
            if window.grab().isNull():
                raise CheckFailed("the window could not be rendered")
        finally:
            window.close()  # stops the stream and writes the settings, in the temporary folder
            window.deleteLater()
        return (
            f"main window and model ready in {(t_ready - t0) * 1000:.0f} ms, first live frame "
            f"{(first[0] - t_ready) * 1000:.0f} ms after opening the clip"
        )


def _cuda_note(used: str) -> str:
    """What this ONNX Runtime build can do with CUDA, and why it is not used when it is not."""
    if used == CUDA:
        return "CUDA in use"
    if not has_cuda_library():
        return "CPU-only build: no CUDA provider library"
    try:
        from onnxruntime.capi import build_and_package_info as info

        cuda = f"CUDA {info.cuda_version} + cuDNN 9"
    except (ImportError, AttributeError):
        cuda = "CUDA + cuDNN"
    return f"CUDA provider present but not loadable here: needs an NVIDIA GPU and {cuda} libraries"


def _centre_darker(image: np.ndarray) -> bool:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    centre = grey[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3]
    return float(centre.mean()) < float(grey.mean())


def _known_sentence(c: ModelContract) -> str:
    """A sentence the model's default decoder can emit: a grammar path, lexicon words, or letters."""
    letters = [t for i, t in enumerate(c.vocabulary) if i != c.blank and len(t) == 1 and t.isalpha()]
    if c.decoder.grammar:
        words = [slot[min(i, len(slot) - 1)] for i, slot in enumerate(c.decoder.grammar)]
    elif c.decoder.lexicon:
        words = list(c.decoder.lexicon[:3])
    else:
        words = ["".join(letters[:3]), "".join(letters[3:5])]
    words = [w for w in words if w]
    return " ".join(words) if " " in c.vocabulary else words[0]  # no word separator: one word


def _spell(sentence: str, vocabulary: tuple[str, ...], blank: int) -> np.ndarray:
    """Peaked log-probs (T, C) whose best path spells `sentence` (2 frames a character, blanks between)."""
    index = {t: i for i, t in enumerate(vocabulary)}
    if set(sentence) - set(index):
        raise CheckFailed(
            f"the decoder's words use {sorted(set(sentence) - set(index))}, not in the vocabulary"
        )
    path = []
    for ch in sentence:
        path += [index[ch], index[ch], blank]
    floor = np.log(0.02 / (len(vocabulary) - 1))
    log_probs = np.full((len(path) + 4, len(vocabulary)), floor, np.float32)
    log_probs[:, blank] = np.log(0.98)
    log_probs[np.arange(len(path)), path] = np.log(0.98)
    log_probs[np.arange(len(path)), blank] = np.where(np.array(path) == blank, np.log(0.98), floor)
    return log_probs


def _prepare_qt_platform() -> None:
    """Undo OpenCV's pointing Qt at its own plugins; use the offscreen platform when there is no display."""
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        if "cv2" in Path(os.environ.get(name, "")).parts:
            del os.environ[name]
    display = any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    if sys.platform.startswith("linux") and not display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
