"""The main window: layout, menus and shortcuts, and the one place errors are shown."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QSplitter, QVBoxLayout, QWidget

from core import subtitles
from core.inference import LipModel, ProviderError, default_model_path
from core.picking import LOST, FaceChoice
from core.streaming import CaptionEngine, StreamOptions
from core.video import CameraSource, VideoError, VideoFileSource
from lipreader_app.dialogs import TRANSCRIPT_FILTER, ModelCardDialog, PreferencesDialog, ask_save_path
from lipreader_app.live_state import Delivered, LiveState
from lipreader_app.offline import BUSY, OfflineCaptioner
from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.crop_view import CropView
from lipreader_app.panels.probabilities import ProbabilityPanel
from lipreader_app.panels.status import Banner, StatusBar, provider_name
from lipreader_app.panels.transport import TransportBar
from lipreader_app.panels.video_view import VideoView
from lipreader_app.settings import Preferences, load_preferences, save_preferences, verify_for_model
from lipreader_app.workers import GuiThreadGc, LiveStream, error_message

log = logging.getLogger("lipreader")

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.mpg *.mpeg *.webm *.m4v);;All files (*)"
MODEL_FILTER = "ONNX models (*.onnx);;All files (*)"
MODEL_SUFFIX = ".onnx"  # a file dropped with this suffix (any case) is a model, any other a video
NO_MODEL = "no model is loaded: Model ▸ Open model…"
CARD_LINK = ("model-card", "Show its card (data, split, metrics)")  # after the message of a model loaded
PROVIDER_HINT = "(File ▸ Preferences… ▸ Execution provider)"
PREFERENCES_HINT = "(File ▸ Preferences…)"
MODEL_THREADS = 1  # ONNX Runtime intra-op threads: MediaPipe and the GUI keep the other core, and the live
# window runs faster on one thread than on two contended ones (bench/live.py: 16.5 vs 25.3 ms)
WINDOW_SIZE = (1360, 860)


def camera_devices() -> list[int]:
    """Webcam indices to offer: the /dev/videoN that exist on Linux, else 0..3."""
    if sys.platform.startswith("linux"):
        return sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())
    return list(range(4))


class MainWindow(QMainWindow):
    """Video + landmarks, lip crop, probabilities, captions, status; sources, models, captioning."""

    stream_ended = Signal()  # the current source finished on its own (end of file or error)

    def __init__(self, settings: QSettings, provider: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.prefs = load_preferences(settings)
        self.provider = provider or self.prefs.provider  # a --provider flag wins for this run
        self.model: LipModel | None = None
        self.video_path: Path | None = None  # the file being played, None for a camera
        self.source: VideoFileSource | CameraSource | None = None
        self.source_label = "no source"
        self._pause_at_next_frame = False  # a seek while paused: pause again once its frame is shown
        self._stream_failed = False  # the current stream stopped on an error
        self._face_warning: str | None = None  # the warning about the face shown, if any
        self._stream_warning: str | None = None  # the last warning about the current stream (truncated...)
        self._offline_error: str | None = None  # the last error of offline captioning
        self._model_error: str | None = None  # why the last model could not be loaded
        self._status_kind: str | None = None  # the kind of the message in the status bar
        self.face_choice = FaceChoice()  # the face clicked in the video; kept over seeks in one file
        self.errors: list[str] = []  # every message shown, for headless runs and tests
        self.gc = GuiThreadGc(self)  # Python objects are freed in this thread only, see GuiThreadGc
        self.gc.start()
        self.state = LiveState(self)
        self.stream = LiveStream(self)
        self.offline = OfflineCaptioner(self)
        self.setWindowTitle("LipReader")
        self.setAcceptDrops(True)
        self._build_panels()
        self._build_menus()
        self.stream.delivered.connect(self.state.on_delivered)
        self.stream.delivered.connect(self._on_frame_delivered)
        self.stream.warned.connect(self._on_stream_warned)
        self.stream.errored.connect(self._on_stream_errored)
        self.stream.ended.connect(self._on_stream_ended)
        self.state.face_lost.connect(self._on_face_lost)
        self.offline.errored.connect(self._on_offline_errored)
        self.offline.warned.connect(lambda message: self.notify(message, "warning"))
        self.offline.play_requested.connect(self._on_play_requested)
        self.offline.subtitles_ready.connect(self._on_subtitles_ready)
        self.offline.job_ended.connect(self._on_job_ended)
        self.banner.link_activated.connect(self._on_banner_link)
        self.video_view.face_picked.connect(self._on_face_picked)
        self.video_view.automatic_face.connect(self.face_choice.automatic)
        self.transport.pause_clicked.connect(self.toggle_pause)
        self.transport.seek_requested.connect(self.seek)
        self.captions.seek_requested.connect(self.seek)
        geometry = settings.value("window/geometry")
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            self.resize(*WINDOW_SIZE)

    # -- layout ---------------------------------------------------------------------------------
    def _build_panels(self) -> None:
        self.banner = Banner()
        self.video_view = VideoView(self.state)
        self.crop_view = CropView(self.state)
        self.probabilities = ProbabilityPanel(self.state)
        self.captions = CaptionPanel(self.state)
        self.transport = TransportBar(self.state)
        self.status = StatusBar(self.state)
        self.setStatusBar(self.status)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.video_view, 1)
        left_layout.addWidget(self.transport)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.crop_view)
        right.addWidget(self.probabilities)
        right.setSizes([220, 480])
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(right)
        top.setSizes([800, 520])
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(self.captions)
        main.setSizes([600, 220])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(main, 1)
        self.setCentralWidget(central)

    def _action(
        self, menu, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.open_action = self._action(file, "&Open video…", self._on_open_video, "Ctrl+O")
        self.caption_action = self._action(file, "&Caption video…", self._on_caption_video, "Ctrl+Shift+C")
        self._action(file, "&Save transcript…", self._on_save_transcript, QKeySequence.StandardKey.Save)
        file.addSeparator()
        self._action(file, "&Preferences…", self._on_preferences, "Ctrl+,")
        file.addSeparator()
        self._action(file, "&Quit", self.close, "Ctrl+Q")
        source = bar.addMenu("&Source")
        self.camera_action = self._action(source, "Start/stop &camera", self._on_toggle_camera, "Ctrl+R")
        self.pause_action = self._action(source, "&Pause / play", self.toggle_pause, "Space")
        self._action(source, "&Stop", self.stop_stream, "Ctrl+.")
        self.camera_menu = source.addMenu("Camera &device")
        self.camera_menu.aboutToShow.connect(self._on_camera_menu_about_to_show)
        model = bar.addMenu("&Model")
        self._action(model, "&Open model…", self._on_open_model, "Ctrl+M")
        self._action(model, "Model &card…", self._on_model_card)

    # -- the one place messages are shown -------------------------------------------------------
    def notify(self, message: str, kind: str = "error", link: tuple[str, str] | None = None) -> None:
        """Show a message without blocking: the banner (with `link`: key, words), the status bar and
        the log."""
        self.banner.show_message(kind, message, link)
        self.status.show_message(message)
        self._status_kind = kind
        if kind == "error":
            self.errors.append(message)
            log.warning("%s", message)

    def _withdraw(self, *kinds: str, message: str | None = None) -> None:
        """Take down what the new state made stale: the messages of `kinds`, or `message`, in the
        banner and in the status bar."""
        texts = {message} if message else set()
        for kind in kinds:
            texts.add(self.banner.message(kind))
            self.banner.clear(kind)
        if message:
            self.banner.clear_message(message)
        shown = self.status.message
        if shown and (shown in texts or self._status_kind in kinds):
            self.status.clear_message()

    # -- models ---------------------------------------------------------------------------------
    def load_model(
        self,
        path: str | Path | None = None,
        remember: bool = False,
        provider: str | None = None,
        fallback: bool = False,
        shipped_if_bad: bool = False,
    ) -> bool:
        """Load a model (default: the shipped one) on `provider` (default: the current one); on
        failure keep the previous model and provider and say why. A source playing carries on
        with it from where it was, as after a seek (paused if it was, the history and the face
        picked kept); a camera starts again on the same device.

        With `remember` (a model opened from the menu or dropped) it is loaded at the next start,
        and a message says so with a link to its card. With `fallback` (the provider saved in the
        preferences, at start-up) a provider that cannot run here gives way to "auto" for this run,
        with a warning. With `shipped_if_bad` (the model opened last, at start-up) a model that
        cannot be loaded gives way to the shipped one, with a warning, and is forgotten.
        """
        path = Path(path) if path else default_model_path()
        provider = provider or self.provider
        asked = provider
        try:
            try:
                model = LipModel.load(path, provider, threads=MODEL_THREADS)
            except ProviderError as e:
                if not fallback or provider == "auto":
                    raise
                model = LipModel.load(path, "auto", threads=MODEL_THREADS)
                found = provider_name(model.provider)
                self.notify(
                    f"the saved provider ({provider}) cannot run here: on {found} {PROVIDER_HINT}", "warning"
                )
                log.warning("%s", error_message(e))
                provider = "auto"
        except ProviderError as e:
            self._model_error = f"{error_message(e)} {PROVIDER_HINT}"
            self.notify(self._model_error)
            return False
        except Exception as e:  # ModelError, or ValueError for a bad provider name
            if shipped_if_bad and path != default_model_path():
                self._remember(model_path="")
                self.notify(
                    f"{error_message(e)}: it was the model opened last; the shipped model "
                    f"{default_model_path().name} is used instead (Model ▸ Open model… to choose one)",
                    "warning",
                )
                return self.load_model(None, provider=asked, fallback=fallback)
            self._model_error = f"{error_message(e)} (Model ▸ Open model… to choose one)"
            self.notify(self._model_error)
            return False
        engine = None
        if self.stream.running:  # built first: if the preferences do not fit it, the stream reads on
            try:
                engine = self._build_engine(model)
            except Exception as e:  # ValueError for options that do not fit the model, decoder errors
                kept = f"; {self.model.path.name} is kept" if self.model else ""
                self.notify(
                    f"cannot caption with model {path.name}: {error_message(e)}{kept} {PREFERENCES_HINT}"
                )
                return False
        self.provider = provider
        self.model, self._model_error = model, None
        self.state.set_vocabulary(model.contract.vocabulary, model.contract.blank)
        self.state.window = model.contract.window
        self.probabilities.clear()
        self.status.set_model(path.name, model.provider)
        self._withdraw("error")
        if remember:
            self._remember(model_path="" if path == default_model_path() else str(path))
        self._carry_on(engine)
        if remember:
            self.notify(f"loaded model {path.name} (on {provider_name(model.provider)})", "info", CARD_LINK)
        return True

    def _carry_on(self, engine: CaptionEngine | None = None) -> None:
        """Restart the source playing with `engine` (default: one for the current model and
        preferences), where it is; if it cannot restart, stop it (its error says why)."""
        if not self.stream.running:
            return  # nothing playing (a file that ended stays ended: play starts it again)
        if isinstance(self.source, CameraSource):
            started = self.start_camera(self.source.device, keep_history=True, engine=engine)
        else:
            started = self.video_path is not None and self.seek(self.state.position, engine)
        if not started:  # the old stream must not read on under the new model's name
            self.stop_stream()

    def make_engine(self) -> CaptionEngine | None:
        """A CaptionEngine for the model with the preferred window, hop, decoder, landmark rate and
        word stability."""
        if self.model is None:  # why, if a model could not be loaded
            self.notify(f"no model is loaded: {self._model_error}" if self._model_error else NO_MODEL)
            return None
        try:
            return self._build_engine(self.model)
        except Exception as e:  # ValueError for options that do not fit the model, decoder errors
            self.notify(f"cannot start captioning: {error_message(e)}")
            return None

    def _build_engine(self, model: LipModel) -> CaptionEngine:
        """A CaptionEngine for `model` with the preferences; raises ValueError when they do not fit
        it (a hop over its own window, a decoder it has no data for...)."""
        p = verify_for_model(self.prefs, model.contract)
        options = StreamOptions(
            window=p.window or None,
            hop=p.hop or None,
            decoder=p.decoder or None,
            beam_width=p.beam_width or None,
            landmark_every=p.landmark_every,
            stable_frames=p.stable_frames,
            revise=p.revise,
        )
        return CaptionEngine(model, options)

    # -- sources --------------------------------------------------------------------------------
    def open_video(
        self,
        path: str | Path,
        start: float = 0.0,
        keep_history: bool = False,
        engine: CaptionEngine | None = None,
    ) -> bool:
        """Play a file at natural speed through the live path, from `start` seconds, captioned by
        `engine` (default: one for the model and the preferences)."""
        path = Path(path)
        try:
            source = VideoFileSource(path, realtime=True)
        except VideoError as e:
            self.notify(str(e))
            return False
        except OSError as e:  # opened but not readable (permissions...)
            self.notify(f"cannot read video {path}: {e.strerror or e}")
            return False
        if start > 0:
            source.seek(start)
        self._remember(last_dir=str(path.parent))
        self.video_path = path
        return self._start(source, f"video {path.name}", source.duration, start, keep_history, engine)

    def start_camera(
        self, device: int | None = None, keep_history: bool = False, engine: CaptionEngine | None = None
    ) -> bool:
        """Read webcam `device` (default: the preferences'; another one is remembered), captioned by
        `engine` (default: one for the model and the preferences). With `keep_history` (the same
        camera started again) the history stays and its clock runs on."""
        p = self.prefs
        device = p.camera_device if device is None else device
        if device != p.camera_device:
            self._remember(camera_device=device)
        start = self.state.position if keep_history else 0.0
        self.video_path = None
        source = CameraSource(device, p.camera_width, p.camera_height)
        label = f"camera {device} ({p.camera_width}×{p.camera_height})"
        return self._start(source, label, 0.0, start, keep_history, engine)

    def _start(
        self,
        source: VideoFileSource | CameraSource,
        label: str,
        duration: float,
        start: float,
        keep_history: bool,
        engine: CaptionEngine | None = None,
    ) -> bool:
        engine = engine or self.make_engine()
        if engine is None:
            return False
        self.stream.stop()
        if keep_history and self.source is not None:  # a seek: the sentence in progress is kept
            self.state.finish()
        if not keep_history:  # another source: the face clicked in the last one means nothing here
            self.face_choice.automatic()
        self.source = source
        self.state.reset(offset=start, keep_history=keep_history)
        self.state.window = engine.window
        self._clear_panels(keep_history)
        self._withdraw("error", "info")
        if self._stream_warning:  # about the stream before: it says so again if it still applies
            self._withdraw(message=self._stream_warning)
            self._stream_warning = None
        self._warn_face(None)  # a warning of another kind (a provider given way) stays
        self._stream_failed = False
        self.source_label = label
        self.status.set_source(label)
        self.setWindowTitle(f"LipReader — {label}")
        self.transport.set_duration(duration)  # a file offers pause, a camera a disabled bar
        self._pause_at_next_frame = False
        self.stream.start(source, engine, offset=start, face_choice=self.face_choice)
        return True

    def stop_stream(self) -> None:
        """Stop the source; the panels show no source again (the history stays)."""
        self.stream.stop()
        if self.source is not None:
            self.state.finish()
        self.source = None
        self._pause_at_next_frame = False
        self.state.reset(keep_history=True)
        self._clear_panels(keep_history=True)
        self.status.set_source("no source")
        self.setWindowTitle("LipReader")
        self.status.clear_rates()
        self.transport.set_duration(0.0)

    def toggle_pause(self) -> None:
        """Pause or play the file; once it has ended, play it again from the start."""
        if not isinstance(self.source, VideoFileSource):
            return
        if not self.stream.running:
            self.seek(0.0)
        elif self._pause_at_next_frame:  # a seek while paused has not shown its frame yet: play on
            self._pause_at_next_frame = False
            self.transport.set_paused(False)
        else:
            self.transport.set_paused(self.stream.toggle_pause())

    def seek(self, seconds: float, engine: CaptionEngine | None = None) -> bool:
        """Replay the current file from `seconds` (a new stream: the captioner, `engine` if given,
        starts afresh there); when paused, it pauses again there once that frame is shown. False if
        it could not start."""
        if self.video_path is None:
            return False
        paused = self.stream.paused or self._pause_at_next_frame
        started = self.open_video(self.video_path, max(0.0, seconds), keep_history=True, engine=engine)
        if started and paused:
            self._pause_at_next_frame = True
            self.transport.set_paused(True)
        return started

    def _clear_panels(self, keep_history: bool) -> None:
        for panel in (self.video_view, self.crop_view, self.probabilities):
            panel.clear()
        if not keep_history:
            self.captions.clear()
        self.video_view.set_subtitles(self.offline.cues_for(self.video_path))

    # -- menu handlers --------------------------------------------------------------------------
    def _ask_path(self, title: str, filter: str) -> str:
        """A file dialog (tests replace this method)."""
        path, _ = QFileDialog.getOpenFileName(self, title, self.prefs.last_dir, filter)
        return path

    def _on_open_video(self) -> None:
        path = self._ask_path("Open video", VIDEO_FILTER)
        if path:
            self.open_video(path)

    def _on_caption_video(self) -> None:
        path = self._ask_path("Caption video", VIDEO_FILTER)
        if path:
            self.caption_video(path)

    def _ask_save_path(self, title: str, suggested: str, filter: str) -> str:
        """A save dialog, which asks before replacing a file (tests replace this method); a name
        typed without a subtitle suffix gets the chosen filter's."""
        return ask_save_path(self, title, suggested, filter)

    def _on_save_transcript(self) -> None:
        if not self.state.words():
            self.notify("nothing has been captioned yet: open a video or start the camera", "info")
            return
        name = f"{self.video_path.stem}.live.srt" if self.video_path else "transcript.srt"
        suggested = str(Path(self.prefs.last_dir or Path.home()) / name)
        path = self._ask_save_path("Save transcript", suggested, TRANSCRIPT_FILTER)
        if path:
            self.save_transcript(path)

    def save_transcript(self, path: str | Path) -> bool:
        """Write what the live view has captioned so far (the history, then the utterance in
        progress) to `path` as SRT, VTT or TXT by its suffix; replaces a file there."""
        path = Path(path)
        try:
            subtitles.write_subtitles(path, self.state.words(), overwrite=True)
        except ValueError:
            self.notify(f"cannot save the transcript as {path.name}: use .srt, .vtt or .txt")
            return False
        except OSError as e:
            self.notify(f"cannot save the transcript to {path}: {e.strerror or e}")
            return False
        self.notify(f"saved the transcript to {path}", "info")
        return True

    def caption_video(self, path: str | Path) -> bool:
        """Caption a whole file in the background, with a cancellable progress dialog; the face clicked
        in it while it played, if any, is the face read."""
        engine = self.make_engine()
        face = self.face_choice.point if self.video_path == Path(path) else None
        return engine is not None and self.offline.start(Path(path), engine, face)

    def _on_toggle_camera(self) -> None:
        if isinstance(self.source, CameraSource) and self.stream.running:
            self.stop_stream()
        else:
            self.start_camera()  # a camera that failed or stopped is tried again

    def _on_camera_menu_about_to_show(self) -> None:
        self.camera_menu.clear()
        devices = camera_devices()
        for device in devices:
            action = self.camera_menu.addAction(f"Camera {device}")
            action.setCheckable(True)
            action.setChecked(device == self.prefs.camera_device)
            action.triggered.connect(lambda _=False, d=device: self.start_camera(d))
        if not devices:
            self.camera_menu.addAction("No camera found").setEnabled(False)

    def _on_open_model(self) -> None:
        path = self._ask_path("Open model", MODEL_FILTER)
        if path:
            self.load_model(path, remember=True)

    def _on_banner_link(self, key: str) -> None:
        if key == CARD_LINK[0]:
            self._on_model_card()

    def _on_model_card(self) -> None:
        if self.model is None:
            self.notify(NO_MODEL)
            return
        ModelCardDialog(self.model.path, self.model.contract, self.model.provider, self).show()

    def _on_preferences(self) -> None:
        dialog = PreferencesDialog(self.prefs, self.model.contract if self.model else None, self)
        dialog.accepted_preferences.connect(self.apply_preferences)
        dialog.show()

    def apply_preferences(self, prefs: Preferences) -> None:
        """Store new preferences (window, hop, decoder, landmark_every and stable_frames apply from the
        next stream or captioning job); a new provider reloads the model, and is kept only if the
        model loads on it."""
        try:
            if self.model is not None:
                verify_for_model(prefs, self.model.contract)
        except ValueError as e:  # the previous preferences stay
            self.notify(str(e))
            return
        kept = self.prefs.provider
        self.prefs = prefs  # before the reload: a video playing restarts with the new settings
        save_preferences(self.settings, prefs)
        path = self.model.path if self.model else None
        if prefs.provider != kept and not self.load_model(path, provider=prefs.provider):
            self._remember(provider=kept)  # not kept: the model cannot run on it

    def _remember(self, **changes: object) -> None:
        self.prefs = dataclasses.replace(self.prefs, **changes)
        save_preferences(self.settings, self.prefs)

    # -- stream events --------------------------------------------------------------------------
    def _on_stream_warned(self, message: str) -> None:
        self._stream_warning = message
        self.notify(message, "warning")

    def _on_stream_errored(self, message: str) -> None:
        self._stream_failed = True  # its end is not the end of the file
        self.notify(message)

    def _on_stream_ended(self) -> None:
        if self._stream_failed and not self.state.frames_processed:  # it never showed a frame (no
            self.stop_stream()  # such camera): no source, as before it started; the error says why
            self.stream_ended.emit()
            return
        self._pause_at_next_frame = False
        self.state.finish()
        self.crop_view.clear()  # no face is tracked any more
        self.status.clear_rates()
        self.status.set_source(f"{self.source_label} (ended)")
        if isinstance(self.source, VideoFileSource) and not self._stream_failed:
            self.transport.set_ended()  # play (Space) plays it again from the start
        if self.state.frames_processed and not self.state.face_found:
            self._warn_face(f"No face was found in {self.source_label}: lip reading needs a face in view.")
        else:
            self._warn_face(None)  # "no face in view" no longer applies
        self.stream_ended.emit()

    def _on_face_picked(self, x: float, y: float) -> None:
        """Read the face at (x, y), frame pixels: from the next frame on, or when the file plays again."""
        self.face_choice.pick(x, y)
        if not self.stream.running or self.stream.paused:
            self.notify("The face you clicked is read when the video plays.", "info")

    def _on_frame_delivered(self, _: Delivered) -> None:
        ended = self.face_choice.take_ended()
        if ended is not None:
            lost = "The face you clicked left the view" if ended == LOST else "No face where you clicked"
            self.notify(f"{lost}: reading the largest face.", "warning")
        if self._pause_at_next_frame:  # a seek while paused: its first frame is shown, pause there
            self._pause_at_next_frame = False
            self.stream.toggle_pause()

    def _on_face_lost(self, lost: bool) -> None:
        self._warn_face("No face in view: captions resume when a face is visible." if lost else None)

    def _warn_face(self, text: str | None) -> None:
        """Show the warning about the face in view, or (None) take it down."""
        if self._face_warning:
            self.banner.clear_message(self._face_warning)
        self._face_warning = text
        if text:
            self.banner.show_message("warning", text)

    def _on_offline_errored(self, message: str) -> None:
        self._offline_error = message
        self.notify(message)

    def _on_job_ended(self, outcome: str) -> None:
        self._withdraw(message=BUSY)  # the refusal of a second job no longer applies
        if outcome == "done" and self._offline_error:  # nor does an earlier job's failure
            self._withdraw(message=self._offline_error)
            self._offline_error = None

    def _on_play_requested(self, path: Path, seconds: float) -> None:
        self.open_video(path, seconds, keep_history=path == self.video_path)

    def _on_subtitles_ready(self, path: Path) -> None:
        if self.video_path == path:
            self.video_view.set_subtitles(self.offline.cues_for(path))

    # -- drag and drop, closing -----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path = paths[0]
        model = path.suffix.lower() == MODEL_SUFFIX
        QTimer.singleShot(0, lambda: self.load_model(path, remember=True) if model else self.open_video(path))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.offline.shutdown()
        self.stream.stop()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        self.gc.stop()
        super().closeEvent(event)
