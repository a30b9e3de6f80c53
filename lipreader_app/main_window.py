"""The main window: layout, models and sources, and the wiring of its parts: a MessageBoard shows
every message, a Playback plays the live source, `open_model` and `build_engine` load a model and its
caption engine, an OfflineCaptioner captions whole files. The menus act through the window: File is
`lipreader_app.file_menu`'s, Source, View and Model are `lipreader_app.menus`', Help is
`lipreader_app.help`'s."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QSplitter

from core.engine import CaptionEngine
from core.inference import LipModel, default_model_path
from core.picking import FaceChoice
from core.screen import Region, ScreenSource, check_region, format_region
from core.video import CameraSource, VideoFileSource
from lipreader_app.adapting import Adapting
from lipreader_app.dialogs import ask_save_path
from lipreader_app.file_menu import FileMenu
from lipreader_app.help import HelpMenu
from lipreader_app.live_state import LiveState
from lipreader_app.menus import CARD_LINK, NO_MODEL, ModelMenu, OneDialogEach, SourceMenu, ViewMenu
from lipreader_app.messages import MessageBoard
from lipreader_app.model_loading import PREFERENCES_HINT, build_engine, open_model
from lipreader_app.offline import OfflineCaptioner
from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.crop_view import CropView
from lipreader_app.panels.floating import FloatingCaptions
from lipreader_app.panels.layout import central_widget, restore_layout, save_layout
from lipreader_app.panels.probabilities import ProbabilityPanel
from lipreader_app.panels.status import Banner, StatusBar, provider_name
from lipreader_app.panels.transport import TransportBar
from lipreader_app.panels.video_view import VideoView
from lipreader_app.playback import LivePanels, Playback
from lipreader_app.screen_dialog import FLOATING_OVERLAP, OVERLAP, overlaps, window_rect
from lipreader_app.settings import (
    Preferences,
    load_preferences,
    save_preferences,
    screen_region,
    verify_for_model,
)
from lipreader_app.workers import GuiThreadGc, LiveStream, error_message

TITLE = "LipReader"  # the window's title with no source; "LipReader — {source}" with one
DEFAULT_FPS = 25.0  # the screen is read and takes recorded at the model's frame rate; this with none


class MainWindow(QMainWindow):
    """Video + landmarks, lip crop, probabilities, captions, status; sources, models, captioning."""

    stream_ended = Signal()  # the current source finished on its own (end of file or error)

    def __init__(self, settings: QSettings, provider: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.prefs = load_preferences(settings)
        self.provider = provider or self.prefs.provider  # a --provider flag wins for this run
        self.model: LipModel | None = None
        self._model_error: str | None = None  # why the last model could not be loaded
        self._model_tried: Path | None = None  # that model, to load again on another provider
        self.dialogs = OneDialogEach()  # the menus' dialogs, one of each kind at a time
        self.face_choice = FaceChoice()  # the face clicked in the video; kept over seeks in one file
        self.gc = GuiThreadGc(self)  # Python objects are freed in this thread only, see GuiThreadGc
        self.gc.start()
        self.state = LiveState(self)
        self.stream = LiveStream(self)
        self.offline = OfflineCaptioner(self)
        # Model ▸ Adapt to my face…: takes are recorded from a camera only
        self.adapting = Adapting(
            self, self.stream.delivered, settings, camera=lambda: self.playback.camera is not None
        )
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self._build_panels()
        self._build_menus()
        self.messages = MessageBoard(self.banner, self.status, self.stream, self.state, self.offline)
        self.stream.delivered.connect(self.state.on_delivered)  # before the Playback's: state first
        views = LivePanels(
            self.video_view, self.crop_view, self.probabilities, self.captions, self.transport, self.status
        )
        self.playback = Playback(
            self,
            self.stream,
            self.state,
            self.face_choice,
            views,
            self.messages,
            self.offline,
            self.make_engine,
        )
        self.playback.ended.connect(self.stream_ended)
        self.playback.file_opened.connect(self._on_file_opened)
        self.playback.source_changed.connect(self._update_title)
        self.playback.source_changed.connect(self.sources.update_seek_actions)
        self.transport.pause_clicked.connect(self.toggle_pause)
        self.transport.seek_requested.connect(self.seek)
        self.captions.seek_requested.connect(self.seek)
        restore_layout(self, settings)  # as the user left it

    # -- layout ---------------------------------------------------------------------------------
    def _build_panels(self) -> None:
        self.banner = Banner()
        self.video_view = VideoView(self.state)
        self.crop_view = CropView(self.state)
        self.probabilities = ProbabilityPanel(self.state)
        self.captions = CaptionPanel(self.state)
        self.floating = FloatingCaptions(self.state)  # a window of its own, shown by the View menu
        self.transport = TransportBar(self.state)
        self.status = StatusBar(self.state)
        self.setStatusBar(self.status)
        central = central_widget(
            self.banner, self.video_view, self.transport, self.crop_view, self.probabilities, self.captions
        )
        self.setCentralWidget(central)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.files = FileMenu(self, bar.addMenu("&File"))
        self.open_action, self.caption_action = self.files.open_action, self.files.caption_action
        self.recent_menu = self.files.recent_menu
        self.sources = SourceMenu(self, bar.addMenu("&Source"))
        side = self.centralWidget().findChild(QSplitter, "side")  # the lip crop over the probabilities
        self.view = ViewMenu(
            self, bar.addMenu("&View"), self.captions, self.floating, side, lambda: self.prefs, self._remember
        )
        self.models = ModelMenu(self, bar.addMenu("&Model"))
        self.help = HelpMenu(self, bar.addMenu("&Help"))

    def notify(self, message: str, kind: str = "error", link: tuple[str, str] | None = None) -> None:
        """Show a message without blocking: the banner (with `link`: key, words), the status bar and
        the log."""
        self.messages.notify(message, kind, link)

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
        picked kept); a camera starts again on the same device, the screen on the same region.

        With `remember` (a model opened from the menu or dropped) it is loaded at the next start,
        and a message says so with a link to its card. With `fallback` (the provider saved in the
        preferences, at start-up) a provider that cannot run here gives way to "auto" for this run,
        with a warning. With `shipped_if_bad` (the model opened last, at start-up) a model that
        cannot be loaded gives way to the shipped one, with a warning, and is forgotten.
        """
        shipped = default_model_path()
        path = Path(path) if path else shipped
        load = open_model(path, provider or self.provider, fallback, shipped if shipped_if_bad else None)
        if load.forget:
            self._remember(model_path="")
            remember = False  # the shipped model stands in for this run: nothing new to remember
        for warning in load.warnings:
            self.notify(warning, "warning")
        if load.model is None:
            self._model_error, self._model_tried = load.error, load.path
            self.notify(load.error)
            return False
        model, path = load.model, load.path
        engine = None
        if self.stream.running:  # built first: if the preferences do not fit it, the stream reads on
            try:
                engine = build_engine(model, self.prefs)
            except Exception as e:  # ValueError for options that do not fit the model, decoder errors
                kept = f"; {self.model.path.name} is kept" if self.model else ""
                self.notify(
                    f"cannot caption with model {path.name}: {error_message(e)}{kept} {PREFERENCES_HINT}"
                )
                return False
        self.provider = load.provider
        self.model, self._model_error = model, None
        self.state.set_vocabulary(model.contract.vocabulary, model.contract.blank)
        self.state.window = model.contract.window
        self.adapting.set_fps(model.contract.fps)
        self.probabilities.clear()
        self.status.set_model(path.name, model.provider)
        self.messages.withdraw("error")
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
        camera, screen = self.playback.camera, self.playback.screen
        if camera is not None:
            started = self.start_camera(camera.device, keep_history=True, engine=engine)
        elif screen is not None:
            started = self.start_screen(screen.region, keep_history=True, engine=engine)
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
            return build_engine(self.model, self.prefs)
        except Exception as e:  # ValueError for options that do not fit the model, decoder errors
            self.notify(f"cannot start captioning: {error_message(e)}")
            return None

    # -- sources: the Playback plays them -------------------------------------------------------
    @property
    def source(self) -> VideoFileSource | CameraSource | ScreenSource | None:
        """The file, camera or screen playing, None when nothing plays."""
        return self.playback.source

    @property
    def errors(self) -> list[str]:
        """Every error shown, for headless runs and tests."""
        return self.messages.errors

    @property
    def fps(self) -> float:
        """The frame rate live sources are read at: the model's (DEFAULT_FPS with none loaded)."""
        return self.model.contract.fps if self.model else DEFAULT_FPS

    @property
    def video_path(self) -> Path | None:
        """The file being played, None for a camera or the screen."""
        return self.playback.video_path

    def open_video(
        self,
        path: str | Path,
        start: float = 0.0,
        keep_history: bool = False,
        engine: CaptionEngine | None = None,
    ) -> bool:
        """Play a file from `start` seconds, captioned by `engine` (default: one for the model); a
        file that plays goes first in File ▸ Open Recent."""
        if not self.playback.open_video(path, start, keep_history, engine):
            return False
        if self.video_path is not None:
            self.files.add_recent(self.video_path)
        return True

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
        return self.playback.start_camera(device, p.camera_width, p.camera_height, keep_history, engine)

    def start_screen(
        self, region: Region | None = None, keep_history: bool = False, engine: CaptionEngine | None = None
    ) -> bool:
        """Read lips from `region` of the screen (a monitor number or left, top, width, height in
        pixels; default: the one chosen last, or monitor 1 if that is not on the screen now; another
        is remembered) at the model's frame rate, as a camera is read, captioned by `engine`
        (default: one for the model and the preferences)."""
        fallback = None
        if region is None:
            region, fallback = screen_region(self.prefs), Preferences().screen_monitor
        elif isinstance(check_region(region), int):
            self._remember(screen_monitor=region, screen_rect="")
        else:
            self._remember(screen_rect=format_region(region))
        if not self.playback.start_screen(region, self.fps, keep_history, engine, fallback):
            return False
        rect = self.playback.screen.rect if self.playback.screen else None
        if rect is not None and overlaps(rect, window_rect(self)):  # the dialog said so too
            self.notify(OVERLAP, "warning")
        elif rect is not None and self.floating.isVisible() and overlaps(rect, window_rect(self.floating)):
            self.notify(FLOATING_OVERLAP, "warning")
        return True

    def stop_stream(self) -> None:
        """Stop the source; the panels show no source again (the history stays)."""
        self.playback.stop()

    def toggle_pause(self) -> None:
        """Pause or play the file; once it has ended, play it again from the start."""
        self.playback.toggle_pause()

    def seek(self, seconds: float, engine: CaptionEngine | None = None) -> bool:
        """Replay the current file from `seconds`, paused there if it was; False if it did not start."""
        return self.playback.seek(seconds, engine)

    def seek_by(self, seconds: float) -> bool:
        """Seek the file shown (playing, paused or ended) `seconds` from where it is, within
        [0, its length], as the seek bar does; False with a camera, no source or a file of unknown
        length (a live-recorded WebM: the seek bar is off too)."""
        end = self.playback.duration
        if not isinstance(self.source, VideoFileSource) or end <= 0:
            return False
        return self.seek(min(max(self.state.position + seconds, 0.0), end))

    def _on_file_opened(self, path: Path) -> None:
        self._remember(last_dir=str(path.absolute().parent))  # a relative --video path: from here

    def _update_title(self, source: str) -> None:
        self.setWindowTitle(f"{TITLE} — {source}" if source else TITLE)

    # -- captioning whole files, saving the live transcript: File's -----------------------------
    def caption_video(self, path: str | Path) -> bool:
        """Caption a whole file in the background (FileMenu.caption_video)."""
        return self.files.caption_video(path)

    def save_transcript(self, path: str | Path) -> bool:
        """Write what the live view has captioned so far to `path` (FileMenu.save_transcript)."""
        return self.files.save_transcript(path)

    # -- the file dialogs the menus ask through (tests replace them) ----------------------------
    def _ask_path(self, title: str, filter: str) -> str:
        """A file dialog (tests replace this method)."""
        path, _ = QFileDialog.getOpenFileName(self, title, self.prefs.last_dir, filter)
        return path

    def _ask_save_path(self, title: str, suggested: str, filter: str) -> str:
        """A save dialog, which asks before replacing a file (tests replace this method); a name
        typed without a subtitle suffix gets the chosen filter's."""
        return ask_save_path(self, title, suggested, filter)

    # -- preferences ----------------------------------------------------------------------------
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
        path = self.model.path if self.model else self._model_tried
        # with no model loaded (a --provider flag that cannot run here), any other provider is tried
        in_use = kept if self.model else self.provider
        if prefs.provider != in_use and not self.load_model(path, provider=prefs.provider):
            self._remember(provider=kept)  # not kept: the model cannot run on it

    def _remember(self, **changes: object) -> None:
        self.prefs = dataclasses.replace(self.prefs, **changes)
        save_preferences(self.settings, self.prefs)

    # -- drag and drop, closing -----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.files.drop(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.offline.shutdown()
        self.adapting.shutdown()
        self.stream.stop(finish=False)  # the sentence in progress is read again for nobody
        self.view.close_floating()
        save_layout(self, self.settings)
        self.settings.sync()
        self.gc.stop()
        super().closeEvent(event)
