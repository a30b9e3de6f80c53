"""The Source, View and Model menus of the main window, and what their actions do.

Source: the camera on or off and its device, the screen (Source ▸ Screen…), pause, stop and the
arrow keys' seeks; the window plays what is chosen. View: the live caption's size, the side panel
and the floating captions (lipreader_app.panels.floating), kept with the preferences, and full
screen (kept with the window's geometry). Model: open a model file or the shipped one, its card,
adapting it to the user's face; the window loads it.
(The File menu is lipreader_app.file_menu's, the Help menu lipreader_app.help's.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QMainWindow, QMenu, QWidget

from core.screen import ScreenError, format_region, list_monitors
from core.video import VideoFileSource
from lipreader_app.model_card import ModelCardDialog
from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.floating import FloatingCaptions
from lipreader_app.screen_dialog import ScreenDialog
from lipreader_app.settings import (
    CAPTION_POINTS,
    CAPTION_POINTS_RANGE,
    Preferences,
    parse_rect,
    screen_region,
)

if TYPE_CHECKING:
    from lipreader_app.main_window import MainWindow

SEEK_STEP_S = 5.0  # Left/Right arrow: seek back/forward this many seconds in a file
CAPTION_STEP = 2  # points a View ▸ Larger / Smaller captions step changes the live caption by
FULL_SCREEN_KEY = "F11"  # also where Qt's standard full-screen key is another or none (plain X11)
FLOATING_KEY = "Ctrl+Shift+F"  # View ▸ Floating captions (KDE's standard full-screen key too: see _keys)
MODEL_FILTER = "ONNX models (*.onnx);;All files (*)"
NO_MODEL = "no model is loaded: Model ▸ Open model…"
CARD_LINK = ("model-card", "Show its card (data, split, metrics)")  # after the message of a model loaded


def add_action(
    window: QWidget,
    menu: QMenu,
    text: str,
    slot: Callable,
    shortcut: str | QKeySequence.StandardKey | None = None,
) -> QAction:
    """An action of `menu` whose shortcut is `window`'s (a child of it)."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


class OneDialogEach:
    """The dialogs the menus show (not modal), one of each kind at a time."""

    def __init__(self) -> None:
        self._shown: dict[str, tuple[object, QDialog]] = {}  # kind -> (what it is about, the dialog)

    def show(self, kind: str, key: object, make: Callable[[], QDialog]) -> None:
        """Show a dialog of `kind`: one still open about the same `key` (the model a card is of) comes
        to the front, as two Preferences dialogs would undo each other; any other is replaced."""
        shown = self._shown.get(kind)
        if shown is not None and shown[0] == key and shown[1].isVisible():
            shown[1].raise_()
            shown[1].activateWindow()
            return
        if shown is not None:
            shown[1].close()
            shown[1].deleteLater()
        self._shown[kind] = (key, make())
        self._shown[kind][1].show()


def camera_devices() -> list[int]:
    """Webcam indices to offer: the /dev/videoN that exist on Linux, else 0..3."""
    if sys.platform.startswith("linux"):
        return sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())
    return list(range(4))


class SourceMenu(QObject):
    """Fills `menu` with the Source actions (children of `window`, whose shortcuts they are) and
    acts on them through the window's sources (start_camera, start_screen, seek_by...)."""

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        self.camera_action = add_action(window, menu, "Start/stop &camera", self._on_toggle_camera, "Ctrl+R")
        self.screen_action = add_action(window, menu, "S&creen…", self._on_screen)
        self.pause_action = add_action(window, menu, "&Pause / play", window.toggle_pause, "Space")
        add_action(window, menu, "&Stop", window.stop_stream, "Ctrl+.")
        # the window's shortcuts: a text field with the focus keeps its arrows (it overrides them)
        self.back_action = add_action(
            window, menu, f"Seek &back {SEEK_STEP_S:g} s", lambda: window.seek_by(-SEEK_STEP_S), "Left"
        )
        self.forward_action = add_action(
            window, menu, f"Seek &forward {SEEK_STEP_S:g} s", lambda: window.seek_by(SEEK_STEP_S), "Right"
        )
        for action in (self.pause_action, self.back_action, self.forward_action):
            action.setEnabled(False)  # until a file plays: see update_seek_actions
        self.camera_menu = menu.addMenu("Camera &device")
        self.camera_menu.aboutToShow.connect(self._on_camera_menu_about_to_show)

    def update_seek_actions(self, _source: str = "") -> None:
        """The arrows seek a file of known length only (as the seek bar does): with a camera, the
        screen or no source they are the focused widget's. Pause / play is a file's only (a live
        source cannot pause), greyed out otherwise."""
        is_file = isinstance(self._window.source, VideoFileSource)
        seekable = is_file and self._window.playback.duration > 0
        for action in (self.back_action, self.forward_action):
            action.setEnabled(seekable)
        self.pause_action.setEnabled(is_file)

    def _on_toggle_camera(self) -> None:
        window = self._window
        if window.playback.camera is not None and window.stream.running:
            window.stop_stream()
        else:
            window.start_camera()  # a camera that failed or stopped is tried again

    def _on_screen(self) -> None:
        """Source ▸ Screen…: the dialog lists the monitors; OK starts reading the region chosen."""
        window = self._window
        try:
            monitors = list_monitors()
        except ScreenError as e:
            window.notify(str(e))
            return

        def dialog() -> ScreenDialog:
            made = ScreenDialog(monitors, screen_region(window.prefs), window)
            made.chosen.connect(window.start_screen)
            return made

        window.dialogs.show("screen", None, dialog)

    def _on_camera_menu_about_to_show(self) -> None:
        self.camera_menu.clear()
        devices = camera_devices()
        for device in devices:
            action = self.camera_menu.addAction(f"Camera {device}")
            action.setCheckable(True)
            action.setChecked(device == self._window.prefs.camera_device)
            action.triggered.connect(lambda _=False, d=device: self._window.start_camera(d))
        if not devices:
            self.camera_menu.addAction("No camera found").setEnabled(False)


def _keys(standard: QKeySequence.StandardKey, *extra: str, taken: tuple[str, ...] = ()) -> list[QKeySequence]:
    """The platform's keys for `standard` but those `taken` by another action (two actions on one
    key would both be dead), then those of `extra` it lacks."""
    keys = [k for k in QKeySequence.keyBindings(standard) if k not in [QKeySequence(t) for t in taken]]
    return keys + [QKeySequence(k) for k in extra if QKeySequence(k) not in keys]


class ViewMenu(QObject):
    """Fills `menu` with the View actions (children of `window`, whose shortcuts they are) and acts
    on them: `captions`' and `floating`'s text size, `side` shown or hidden, `floating` shown or
    hidden, `window` full screen; what is kept goes through `remember` (the window's:
    `remember(caption_points=22)` stores it with the preferences). The floating captions kept shown
    show when the window first does, where they were; `close_floating` closes them with the window."""

    def __init__(
        self,
        window: QMainWindow,
        menu: QMenu,
        captions: CaptionPanel,
        floating: FloatingCaptions,
        side: QWidget,
        prefs: Callable[[], Preferences],
        remember: Callable[..., None],
    ) -> None:
        super().__init__(window)
        self._window, self._captions, self._floating, self._side = window, captions, floating, side
        self._prefs, self._remember = prefs, remember
        self._shown_once = False  # the window was shown: the floating captions kept shown are too
        larger = add_action(window, menu, "&Larger captions", lambda: self.set_caption_size(+CAPTION_STEP))
        larger.setShortcuts(_keys(QKeySequence.StandardKey.ZoomIn, "Ctrl+="))
        smaller = add_action(window, menu, "&Smaller captions", lambda: self.set_caption_size(-CAPTION_STEP))
        smaller.setShortcuts(_keys(QKeySequence.StandardKey.ZoomOut))
        add_action(window, menu, "&Normal caption size", lambda: self.set_caption_size(None), "Ctrl+0")
        menu.addSeparator()
        self.side_action = add_action(window, menu, "Side &panel", self.show_side_panel, "F9")
        self.side_action.setCheckable(True)
        self.floating_action = add_action(
            window, menu, "Floating &captions", self.show_floating_captions, FLOATING_KEY
        )
        self.floating_action.setCheckable(True)
        self.floating_action.setToolTip("The live caption in a small bar above every window")
        self.full_screen_action = add_action(window, menu, "&Full screen", self.show_full_screen)
        self.full_screen_action.setShortcuts(
            _keys(QKeySequence.StandardKey.FullScreen, FULL_SCREEN_KEY, taken=(FLOATING_KEY,))
        )
        self.full_screen_action.setCheckable(True)
        p = prefs()
        captions.set_point_size(p.caption_points)
        floating.set_point_size(p.caption_points)
        self.side_action.setChecked(p.side_panel)
        side.setVisible(p.side_panel)
        self.floating_action.setChecked(p.floating_captions)  # shown with the window: eventFilter
        floating.dismissed.connect(self._on_floating_dismissed)
        window.installEventFilter(self)

    def set_caption_size(self, step: int | None) -> None:
        """The live caption's text `step` points larger (or smaller), within CAPTION_POINTS_RANGE;
        None: the default size. Kept for the next start."""
        low, high = CAPTION_POINTS_RANGE
        points = CAPTION_POINTS if step is None else min(high, max(low, self._prefs().caption_points + step))
        self._captions.set_point_size(points)
        self._floating.set_point_size(points)
        self._remember(caption_points=points)

    def show_side_panel(self, shown: bool) -> None:
        """Show or hide the lip crop and the probabilities (the video takes their room); kept."""
        self._side.setVisible(shown)
        self._remember(side_panel=shown)

    def show_floating_captions(self, shown: bool) -> None:
        """Show the floating captions where they were last (on a screen), or hide them; kept."""
        if shown:
            rect = self._prefs().floating_rect
            self._floating.show_at(QRect(*parse_rect(rect)) if rect else None)
            self._remember(floating_captions=True)
        else:
            self._remember(floating_captions=False, **self._floating_geometry())
            self._floating.hide()

    def close_floating(self) -> None:
        """The window closes: so do the floating captions, their place kept (and whether shown)."""
        if self._floating.isVisible():
            self._remember(**self._floating_geometry())
        self._floating.close()

    def _floating_geometry(self) -> dict[str, str]:
        """The floating captions' place to remember: {} if they are not shown (the last one stays)."""
        if not self._floating.isVisible():
            return {}
        g = self._floating.geometry()
        return {"floating_rect": format_region(g.getRect())}  # as parse_rect reads it

    def _on_floating_dismissed(self) -> None:
        """Their × button hides them: the action says so, and where they were is kept."""
        self.floating_action.setChecked(False)
        self._remember(floating_captions=False, **self._floating_geometry())

    def show_full_screen(self, full: bool) -> None:
        """Full screen, or back to how the window was before (maximized stays maximized)."""
        state = self._window.windowState()
        full_screen = Qt.WindowState.WindowFullScreen
        self._window.setWindowState(state | full_screen if full else state & ~full_screen)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self._window and event.type() == QEvent.Type.WindowStateChange:
            self.full_screen_action.setChecked(self._window.isFullScreen())  # F11, or the window manager
        elif watched is self._window and event.type() == QEvent.Type.Show and not self._shown_once:
            self._shown_once = True
            if self.floating_action.isChecked():  # kept shown at the last start
                self.show_floating_captions(True)
        return False


class ModelMenu(QObject):
    """Fills `menu` with the Model actions (children of `window`, whose shortcuts they are) and acts
    on them through the window (load_model, adapting): a model adapted loads as one opened does, and
    the banner's link after a model loaded shows its card."""

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        add_action(window, menu, "&Open model…", self.ask_open_model, "Ctrl+M")
        add_action(window, menu, "Use the &shipped model", lambda: window.load_model(remember=True))
        add_action(window, menu, "Model &card…", self.show_card)
        menu.addSeparator()
        add_action(window, menu, "&Adapt to my face…", self.show_adapt)
        window.adapting.model_ready.connect(lambda path: window.load_model(path, remember=True))
        window.adapting.errored.connect(window.notify)
        window.adapting.notice.connect(lambda message: window.notify(message, "info"))
        window.banner.link_activated.connect(self._on_banner_link)

    def ask_open_model(self) -> None:
        """Model ▸ Open model…: load the file chosen, and again at the next start."""
        path = self._window._ask_path("Open model", MODEL_FILTER)
        if path:
            self._window.load_model(path, remember=True)

    def show_card(self) -> None:
        """Model ▸ Model card…: what the model loaded is (its contract and its <name>.md)."""
        window = self._window
        if window.model is None:
            window.notify(NO_MODEL)
            return
        model = window.model
        window.dialogs.show(
            "card",
            (model.path, model.provider),
            lambda: ModelCardDialog(model.path, model.contract, model.provider, window),
        )

    def show_adapt(self) -> None:
        """Model ▸ Adapt to my face…: record takes from the camera and fine-tune the model on them."""
        self._window.adapting.show(self._window.fps)

    def _on_banner_link(self, key: str) -> None:
        if key == CARD_LINK[0]:
            self.show_card()
