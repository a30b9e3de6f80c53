"""run_gui, as `lipreader gui` calls it: scripted runs with a screenshot and a time limit."""

from __future__ import annotations

import dataclasses
import os
import signal

import cv2
import pytest

from lipreader_app.app import run_gui

pytestmark = pytest.mark.usefixtures("gui_gc")


def test_scripted_run_plays_a_clip_and_saves_a_screenshot(
    qtbot, app_settings, tiny_model, grid_clip, landmarker, tmp_path
):
    video, _ = grid_clip
    shot = tmp_path / "shots" / "window.png"
    code = run_gui(
        video=video, model=tiny_model, screenshot=shot, quit_after=1.5, provider="cpu", settings=app_settings
    )
    assert code == 0
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 600
    assert image.std() > 20  # a real picture, not a blank window


def test_screenshot_without_time_limit_is_taken_when_the_video_ends(
    qtbot, app_settings, tiny_model, grid_clip, landmarker, tmp_path
):
    video, _ = grid_clip
    shot = tmp_path / "end.png"
    assert run_gui(video=video, model=tiny_model, screenshot=shot, settings=app_settings) == 0
    assert shot.is_file()


def test_scripted_run_with_a_bad_video_fails_without_blocking(qtbot, app_settings, tiny_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    shot = tmp_path / "bad.png"
    assert run_gui(video=bad, model=tiny_model, screenshot=shot, settings=app_settings) == 1
    assert shot.is_file()  # the window, with its error banner


def test_a_screenshot_with_no_source_is_taken_at_once(qtbot, app_settings, tiny_model, tmp_path):
    shot = tmp_path / "empty.png"
    assert run_gui(model=tiny_model, screenshot=shot, settings=app_settings) == 0
    assert shot.is_file()
    # with a camera that cannot open (none here) there is nothing to wait for either
    assert run_gui(camera=7, model=tiny_model, screenshot=tmp_path / "camera.png", settings=app_settings) == 1
    assert (tmp_path / "camera.png").is_file()


@pytest.fixture
def windows(monkeypatch):
    """The MainWindows run_gui makes, kept for a look after it returns."""
    from lipreader_app import main_window

    made = []

    class Kept(main_window.MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(main_window, "MainWindow", Kept)
    return made


def test_a_bad_model_given_at_start_shows_why(qtbot, app_settings, onnx_factory, grid_clip, windows):
    nometa = onnx_factory("nometa.onnx")  # no contract in its metadata
    assert run_gui(video=grid_clip[0], model=nometa, quit_after=0.2, settings=app_settings) == 1
    (window,) = windows
    assert window.model is None and window.errors
    assert all("has no 'lipreader.contract' metadata" in e for e in window.errors), window.errors
    assert "has no 'lipreader.contract' metadata" in window.banner.text
    assert (
        window.probabilities.tick_labels == []
        and "no model loaded" in window.probabilities._waiting.textItem.toPlainText()
    )


def test_a_remembered_model_that_went_bad_gives_way_to_the_shipped_one(
    qtbot, app_settings, onnx_factory, tiny_model, windows, monkeypatch
):
    from lipreader_app.settings import load_preferences, save_preferences

    monkeypatch.setattr("lipreader_app.main_window.default_model_path", lambda: tiny_model)  # "shipped"
    nometa = onnx_factory("nometa.onnx")
    save_preferences(
        app_settings, dataclasses.replace(load_preferences(app_settings), model_path=str(nometa))
    )
    assert run_gui(quit_after=0.2, settings=app_settings) == 0  # a warning, not an error
    (window,) = windows
    assert window.model is not None and window.model.path == tiny_model and window.errors == []
    assert window.banner.kind == "warning"
    assert (
        "has no 'lipreader.contract' metadata" in window.banner.text
        and "model opened last" in window.banner.text
    )
    assert "tiny.onnx is used instead" in window.banner.text
    assert load_preferences(app_settings).model_path == ""  # forgotten: the next start is quiet


def test_a_saved_provider_that_cannot_run_gives_way_when_no_flag_asks_for_one(
    qtbot, app_settings, tiny_model, grid_clip, landmarker, windows, tmp_path
):
    from core.inference import LipModel, ProviderError
    from lipreader_app.settings import load_preferences, save_preferences

    try:
        LipModel.load(tiny_model, "cuda", threads=1)
        pytest.skip("CUDA runs here")
    except ProviderError:
        pass
    save_preferences(app_settings, dataclasses.replace(load_preferences(app_settings), provider="cuda"))
    # `lipreader gui --video ...` without --provider: the saved one gives way, and the video plays
    shot = tmp_path / "end.png"  # taken when the video ended
    assert run_gui(video=grid_clip[0], model=tiny_model, screenshot=shot, settings=app_settings) == 0
    window = windows[-1]
    assert window.model is not None and window.errors == [] and window.state.frames_processed > 0
    assert "saved provider (cuda) cannot run here" in window.banner.text
    # asked for on the command line, it does not give way
    assert run_gui(model=tiny_model, quit_after=0.2, provider="cuda", settings=app_settings) == 1
    assert windows[-1].model is None and "cannot use CUDA" in windows[-1].errors[-1]


@pytest.mark.parametrize(
    ("chosen", "region"),
    [
        ({}, 1),  # nothing chosen yet: monitor 1
        ({"screen_monitor": 2}, 2),
        ({"screen_monitor": 2, "screen_rect": "100,80,640,480"}, (100, 80, 640, 480)),
    ],
)
def test_the_screen_flag_alone_reads_the_region_chosen_last(
    qtbot, app_settings, tiny_model, monkeypatch, windows, chosen, region
):
    """... and monitor 1 when that region cannot be read now (a monitor unplugged since)."""
    from lipreader_app import cli, main_window
    from lipreader_app.settings import load_preferences, save_preferences

    save_preferences(app_settings, dataclasses.replace(load_preferences(app_settings), **chosen))
    saved = []
    monkeypatch.setattr(main_window, "save_preferences", lambda *a: saved.append(a))
    read = []

    class NoScreen:  # records the region asked for; there is no screen to read here
        def __init__(self, region, fps):
            read.append(region)

        def missing(self) -> str:
            return "no screen here"

    monkeypatch.setattr("lipreader_app.playback.ScreenSource", NoScreen)
    screen = (
        cli.build_parser().parse_args(["gui", "--screen"]).screen
    )  # as `lipreader gui --screen` passes it
    assert (
        run_gui(screen=screen, model=tiny_model, quit_after=0.1, settings=app_settings) == 1
    )  # "no screen here"
    assert read == ([1] if region == 1 else [region, 1])  # the one chosen last, then monitor 1
    if region != 1:
        assert "no screen here: reading screen 1 instead" in windows[-1].banner.message("warning")
    assert saved == []  # read, not chosen again


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_closes_the_window_as_the_user_would(
    qtbot, app_settings, tiny_model, grid_clip, landmarker, windows, number
):
    from PySide6.QtCore import QTimer

    before = signal.getsignal(number)
    kill = QTimer()  # stopped after: if run_gui failed before its loop, no later test gets the signal
    kill.setSingleShot(True)
    kill.timeout.connect(lambda: os.kill(os.getpid(), number))
    kill.start(400)
    try:
        assert run_gui(video=grid_clip[0], model=tiny_model, settings=app_settings) == 128 + number
    finally:
        kill.stop()
    window = windows[-1]
    assert not window.isVisible() and not window.stream.running  # closed, its workers stopped
    assert signal.getsignal(number) is before  # the handler before is back


def test_ctrl_c_with_a_modal_dialog_open_ends_its_loop_too(qtbot, app_settings, tiny_model, windows):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QDialog

    ended = []

    def ask() -> None:  # as an Open dialog or a message box runs its own event loop
        QTimer.singleShot(300, lambda: os.kill(os.getpid(), signal.SIGINT))  # in the dialog's loop
        QDialog(windows[-1]).exec()
        ended.append(True)

    QTimer.singleShot(100, ask)
    assert run_gui(model=tiny_model, settings=app_settings) == 130 and ended


def test_a_scripted_run_leaves_the_floating_captions_as_and_where_they_are(
    qtbot, app_settings, tiny_model, tmp_path, windows
):
    from lipreader_app.settings import load_preferences, save_preferences

    kept = dataclasses.replace(
        load_preferences(app_settings), floating_captions=True, floating_rect="1200,950,900,90"
    )
    save_preferences(app_settings, kept)
    assert run_gui(model=tiny_model, screenshot=tmp_path / "shot.png", settings=app_settings) == 0
    assert not windows[-1].floating.isVisible()  # not shown on the desktop during a check
    assert load_preferences(app_settings) == kept  # nor moved onto the offscreen screen
