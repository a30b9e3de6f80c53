"""Source ▸ Screen…: the dialog, and the window reading lips from the screen (a fake grabber showing a
GRID clip: no display needed)."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QDialogButtonBox, QWidget

from core.screen import Monitor, ScreenError, ScreenSource
from lipreader_app.screen_dialog import FLOATING_OVERLAP, OVERLAP, ScreenDialog, centre_rect, window_rect
from lipreader_app.settings import Preferences, _verify_preferences, load_preferences, screen_region
from tests.videos import read_frames

pytestmark = pytest.mark.usefixtures("gui_gc")

MONITORS = [
    Monitor(0, (0, 0, 3200, 1080)),
    Monitor(1, (0, 0, 1920, 1080), primary=True),
    Monitor(2, (1920, 0, 1280, 1024)),
]


class ClipGrabber:
    """A screen on which a GRID clip plays at 25 fps in the top left corner; a grab is the clip's
    frame of the moment, cut to the region (BGRA)."""

    clip = None
    made: list[ClipGrabber] = []

    def __init__(self) -> None:
        self.frames = read_frames(self.clip, limit=50)
        self.start = time.monotonic()
        self.grabbed: list[tuple[int, int, int, int]] = []
        ClipGrabber.made.append(self)

    def monitors(self) -> list[Monitor]:
        return MONITORS

    def grab(self, rect: tuple[int, int, int, int]) -> np.ndarray:
        self.grabbed.append(rect)
        screen = np.zeros((1080, 3200, 4), np.uint8)
        image = self.frames[int((time.monotonic() - self.start) * 25) % len(self.frames)]
        screen[: image.shape[0], : image.shape[1], :3] = image
        left, top, width, height = rect
        return screen[top : top + height, left : left + width]

    def close(self) -> None:
        pass


class ClipScreen(ScreenSource):
    """The screen source on the ClipGrabber's screen."""

    def __init__(self, region, fps):
        super().__init__(region, fps, grabber=ClipGrabber)


@pytest.fixture
def window_at(qtbot):
    """A stand-in main window placed at (x, y, width, height) on the screen."""

    def make(x: int, y: int, width: int, height: int) -> QWidget:
        widget = QWidget()
        qtbot.addWidget(widget)
        widget.setGeometry(x, y, width, height)
        return widget

    return make


def test_the_dialog_offers_the_monitors_and_returns_the_rectangle_chosen(qtbot, window_at):
    dialog = ScreenDialog(MONITORS, 2, window_at(2000, 900, 100, 100))
    qtbot.addWidget(dialog)
    items = [dialog.monitor_combo.itemText(i) for i in range(dialog.monitor_combo.count())]
    assert items == ["1: 1920×1080 at 0,0 (primary)", "2: 1280×1024 at 1920,0", "0: all monitors"]
    assert dialog.monitor_button.isChecked() and dialog.region() == 2
    assert not dialog.x_spin.isEnabled()
    # the rectangle offered is the middle of the monitor chosen
    assert (
        tuple(s.value() for s in dialog._rect_spins) == centre_rect(MONITORS[2].rect) == (2240, 256, 640, 512)
    )
    dialog.monitor_combo.setCurrentIndex(0)
    assert dialog.region() == 1 and dialog.x_spin.value() == 480
    dialog.rect_button.setChecked(True)
    assert dialog.x_spin.isEnabled() and not dialog.monitor_combo.isEnabled()
    for spin, value in zip(dialog._rect_spins, (100, 80, 640, 480), strict=True):
        spin.setValue(value)
    chosen = []
    dialog.chosen.connect(chosen.append)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert chosen == [(100, 80, 640, 480)] and not dialog.isVisible()


def test_the_dialog_warns_when_the_region_covers_the_main_window(qtbot, window_at):
    window = window_at(300, 200, 400, 300)
    dialog = ScreenDialog(MONITORS, (1000, 600, 320, 240), window)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.rect_button.isChecked() and dialog.monitor_combo.currentData() == 1
    assert not dialog.warning.isVisible()
    dialog.x_spin.setValue(window.frameGeometry().right() - 10)  # over its right edge
    dialog.y_spin.setValue(window.frameGeometry().top())
    assert dialog.warning.isVisible() and dialog.warning.text() == OVERLAP
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled()  # a warning, not a refusal
    dialog.monitor_button.setChecked(True)  # monitor 1, the window's
    assert dialog.warning.isVisible()
    dialog.monitor_combo.setCurrentIndex(1)  # monitor 2: not the window's
    assert not dialog.warning.isVisible()


def test_a_rectangle_off_the_screen_cannot_be_chosen(qtbot, window_at):
    dialog = ScreenDialog(MONITORS, (3100, 900, 160, 160), window_at(0, 0, 100, 100))
    qtbot.addWidget(dialog)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.warning.isVisible() and "runs off the screen (3200×1080 at 0,0)" in dialog.warning.text()
    assert not ok.isEnabled()
    dialog.width_spin.setValue(100)  # to the screen's right edge
    assert ok.isEnabled() and not dialog.warning.isVisible()


def test_the_screen_preferences_are_checked():
    assert screen_region(Preferences()) == 1
    assert screen_region(Preferences(screen_rect="10,20,640,480")) == (10, 20, 640, 480)
    with pytest.raises(ValueError, match="screen monitor -1 must be >= 0"):
        _verify_preferences(Preferences(screen_monitor=-1))
    with pytest.raises(ValueError, match="must be a monitor number or X,Y"):
        _verify_preferences(Preferences(screen_rect="10,20"))
    with pytest.raises(ValueError, match="screen rectangle '2' must be left,top,width,height"):
        _verify_preferences(Preferences(screen_rect="2"))


def test_source_screen_starts_a_screen_stream_through_the_live_pipeline(
    qtbot, main_window, grid_clip, landmarker, monkeypatch, app_settings
):
    ClipGrabber.clip, ClipGrabber.made = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.menus.list_monitors", lambda: MONITORS)
    monkeypatch.setattr("lipreader_app.playback.ScreenSource", ClipScreen)
    main_window.sources.screen_action.trigger()  # Source ▸ Screen…
    dialog = main_window.findChildren(ScreenDialog)[-1]
    assert dialog.isVisible() and dialog.region() == 1  # the default: the first monitor
    dialog.rect_button.setChecked(True)
    for spin, value in zip(dialog._rect_spins, (0, 0, 360, 288), strict=True):  # the clip's corner
        spin.setValue(value)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert isinstance(main_window.source, ScreenSource) and main_window.stream.running
    assert main_window.source.fps == main_window.model.contract.fps
    assert main_window.status.field_texts()["source"] == "screen 0,0 360×288"
    assert main_window.windowTitle() == "LipReader — screen 0,0 360×288"
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 10, timeout=20_000)
    assert main_window.state.face_found  # the clip's face, read from the "screen"
    assert ClipGrabber.made[-1].grabbed[0] == (0, 0, 360, 288)
    # not a camera: Model ▸ Adapt to my face… records cameras only
    assert main_window.playback.camera is None and main_window.playback.screen is main_window.source
    assert not main_window.sources.pause_action.isEnabled()  # a live source: nothing to pause
    stored = load_preferences(app_settings)
    assert (stored.screen_rect, screen_region(stored)) == ("0,0,360,288", (0, 0, 360, 288))
    main_window.stop_stream()
    assert main_window.source is None and not main_window.stream.running


def test_a_new_model_restarts_the_screen_on_the_same_region(
    qtbot, main_window, grid_clip, landmarker, monkeypatch
):
    ClipGrabber.clip, ClipGrabber.made = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.ScreenSource", ClipScreen)
    assert main_window.start_screen(2)
    assert main_window.prefs.screen_monitor == 2 and main_window.prefs.screen_rect == ""
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=20_000)
    first = main_window.source
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, provider="cpu"))  # reloads the model
    assert main_window.source is not first and main_window.source.region == 2 and main_window.stream.running
    assert main_window.status.field_texts()["source"] == "screen 2"
    main_window.stop_stream()


def test_no_screen_to_capture_is_a_message_and_what_plays_plays_on(main_window, monkeypatch):
    def no_screen():
        raise ScreenError("the screen cannot be captured here (Wayland?): LipReader captures an X11 display")

    monkeypatch.setattr("lipreader_app.menus.list_monitors", no_screen)
    main_window.sources.screen_action.trigger()
    assert not main_window.findChildren(ScreenDialog)
    assert "the screen cannot be captured here (Wayland?)" in main_window.banner.text
    # a region asked for another way (--screen) says why at once too, and nothing starts
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setattr("sys.platform", "linux")
    assert not main_window.start_screen(1)
    assert main_window.source is None and "Wayland?" in main_window.errors[-1]


def test_a_region_over_the_main_window_is_warned_of_when_it_starts(
    qtbot, main_window, grid_clip, monkeypatch
):
    ClipGrabber.clip, ClipGrabber.made = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.ScreenSource", ClipScreen)
    main_window.setGeometry(100, 100, 1200, 800)
    assert main_window.start_screen((1920, 0, 640, 480))  # on monitor 2: clear of the window
    assert OVERLAP not in main_window.banner.text
    assert main_window.start_screen(1)  # the window's monitor: it would read its own picture
    assert main_window.banner.text == OVERLAP and main_window.stream.running
    assert main_window.errors == []  # a warning: it reads on
    main_window.stop_stream()


def test_floating_captions_over_the_region_are_warned_of_when_it_starts(
    qtbot, main_window, grid_clip, monkeypatch
):
    ClipGrabber.clip, ClipGrabber.made = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.ScreenSource", ClipScreen)
    main_window.setGeometry(100, 100, 400, 300)
    main_window.view.floating_action.trigger()
    main_window.floating.setGeometry(2000, 300, 500, 90)  # on monitor 2, over the region below
    monkeypatch.setattr("lipreader_app.main_window.window_rect", lambda w: w.geometry().getRect())
    assert main_window.start_screen((1920, 600, 640, 480))  # clear of the bar
    assert FLOATING_OVERLAP not in main_window.banner.text
    assert main_window.start_screen((1920, 0, 640, 480))  # the bar is over it: it would hide the lips
    assert main_window.banner.text == FLOATING_OVERLAP and main_window.stream.running
    main_window.stop_stream()


class ScaledWindow:
    """A window as Qt gives it at 200 % on the second of two monitors (its screen at 1920,0 in
    screen pixels, as in logical ones)."""

    def frameGeometry(self):  # noqa: N802 (Qt's name)
        return QRect(2000, 100, 400, 300)  # logical: 80 px into the second monitor

    def devicePixelRatioF(self):  # noqa: N802
        return 2.0

    def screen(self):
        return SimpleNamespace(geometry=lambda: QRect(1920, 0, 960, 540))


def test_the_window_is_placed_in_screen_pixels_from_its_own_screen_s_corner(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    assert window_rect(ScaledWindow()) == (2080, 200, 800, 600)  # not (4000, 200, ...): off the screen
    monkeypatch.setattr("sys.platform", "darwin")  # points in Qt and mss alike
    assert window_rect(ScaledWindow()) == (2000, 100, 400, 300)
