"""Starting the desktop app: `run_gui` is what `lipreader` / `lipreader gui` call."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from core.screen import LAST_SCREEN, Region
from lipreader_app.settings import APPLICATION, ORGANISATION, default_settings

log = logging.getLogger("lipreader")

SCREENSHOT_GRACE_MS = 300  # after the source ends, let the last redraw happen before the screenshot
CAMERA_SCREENSHOT_MS = 5000  # a camera or the screen, no --quit-after: the screenshot is taken after this
SIGNAL_POLL_MS = 200  # how soon Ctrl-C or SIGTERM closes the window at most
SIGNAL_EXIT = 128  # the exit status after a signal: this plus its number (130 for Ctrl-C), as shells do


def make_application() -> QApplication:
    """The QApplication (created once), with the names QSettings uses."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    return app


def save_screenshot(window, path: str | Path) -> Path:
    """Save the whole window (QWidget.grab) as a PNG; raises OSError when it cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"cannot write screenshot {path}")
    log.info("screenshot saved to %s", path)
    return path


def run_gui(
    video: str | Path | None = None,
    camera: int | None = None,
    model: str | Path | None = None,
    screen: Region | str | None = None,
    screenshot: str | Path | None = None,
    quit_after: float | None = None,
    provider: str | None = None,
    settings: QSettings | None = None,
) -> int:
    """Open the main window, optionally playing `video`, `camera` or `screen` (a monitor number,
    left, top, width, height in pixels, or LAST_SCREEN: the region chosen last in Source ▸ Screen…,
    monitor 1 if none was), and run until it is closed.

    model: an ONNX model (default: the one opened last, else, or if that one cannot be loaded, the
    shipped models/grid-s1.onnx).
    screenshot: save a PNG of the whole window just before quitting.
    quit_after: quit after this many seconds; with a screenshot but no quit_after, quit when the
    video ends, after CAMERA_SCREENSHOT_MS of a camera or the screen, at once with no source.
    provider: "auto", "cuda" or "cpu" for this run (a --provider flag), None for the one saved in the
    preferences. Returns 0, or 1 for a scripted run (screenshot/quit_after) that showed an error;
    130 after Ctrl-C (SIGINT) or 143 after SIGTERM, which close the window as the user would.
    """
    from lipreader_app.main_window import MainWindow  # after the QApplication's names are set

    app = make_application()
    window = MainWindow(settings or default_settings(), provider=provider)
    scripted = screenshot is not None or quit_after is not None
    if scripted:  # a check or a demo: the floating captions kept shown stay as and where they are
        window.view.floating_action.setChecked(False)
    window.show()
    # a saved provider that cannot run here gives way to auto (a --provider flag does not); the model
    # opened last gives way to the shipped one if it cannot be loaded (a --model does not: it fails)
    first = model or window.prefs.model_path or None
    window.load_model(first, fallback=provider is None, shipped_if_bad=model is None)
    if window.model is not None:  # else nothing can play: the banner keeps saying why, alone
        if video is not None:
            window.open_video(video)
        elif camera is not None:
            window.start_camera(camera)
        elif screen is not None:  # start_screen(None): the region chosen last
            window.start_screen(None if screen == LAST_SCREEN else screen)
    failed: list[str] = []

    def finish() -> None:
        if screenshot is not None:
            try:
                save_screenshot(window, screenshot)
            except OSError as e:
                failed.append(str(e))
                log.error("%s", e)
        app.exit(0)

    if quit_after is not None:
        QTimer.singleShot(int(quit_after * 1000), finish)
    elif screenshot is not None and (camera is not None or screen is not None) and window.stream.running:
        QTimer.singleShot(CAMERA_SCREENSHOT_MS, finish)  # a camera or the screen never ends by itself
    elif screenshot is not None:
        window.stream_ended.connect(lambda: QTimer.singleShot(SCREENSHOT_GRACE_MS, finish))
        if not window.stream.running:  # no source, or it could not be opened: nothing will end
            QTimer.singleShot(SCREENSHOT_GRACE_MS, finish)
    with closed_by_signals(window) as stopped_by:
        code = app.exec()
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)  # closing now must not post a Quit into a later event loop
    window.close()  # stops the workers (a no-op if the user closed the window)
    app.setQuitOnLastWindowClosed(quit_on_close)
    if stopped_by:
        return SIGNAL_EXIT + stopped_by[0]
    if scripted and (window.errors or failed):
        return 1
    return code


@contextlib.contextmanager
def closed_by_signals(window: QWidget) -> Iterator[list[int]]:
    """While in it, Ctrl-C (SIGINT) and SIGTERM end the application's event loop, for the window to
    be closed as the user would (its workers stopped); the list it gives holds the signal's number
    once one did. The handlers before are put back after.

    Python runs a signal handler only between bytecodes, and Qt's event loop runs in C: a timer
    calls into Python every SIGNAL_POLL_MS so that the handler runs within that.
    """
    caught: list[int] = []

    def close(number: int, _frame: object) -> None:
        if not caught:
            caught.append(number)
            for each in before:  # a second one ends the process at once (a window stuck in native code)
                signal.signal(each, signal.SIG_DFL)
            # every event loop ends, a dialog's too; run_gui then closes the window. (Closing it here
            # would post a Quit that a later event loop would take for its own.)
            QTimer.singleShot(0, QApplication.exit)  # in the event loop, not inside what was running

    before = {number: signal.signal(number, close) for number in (signal.SIGINT, signal.SIGTERM)}
    poll = QTimer(window)
    poll.timeout.connect(lambda: None)
    poll.start(SIGNAL_POLL_MS)
    try:
        yield caught
    finally:
        poll.stop()
        for number, handler in before.items():
            signal.signal(number, handler)
