"""The execution provider in the app: a provider that cannot run here is never kept."""

from __future__ import annotations

import dataclasses

import pytest

from core.inference import LipModel, ProviderError
from lipreader_app.main_window import MainWindow
from lipreader_app.settings import load_preferences, save_preferences


@pytest.fixture
def no_cuda(tiny_model):
    try:
        LipModel.load(tiny_model, "cuda", threads=1)
    except ProviderError:
        return
    pytest.skip("CUDA runs here")


def test_a_provider_that_cannot_run_is_not_kept(qtbot, main_window, app_settings, tiny_model, no_cuda):
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, provider="cuda", window=40))
    assert "cannot use CUDA" in main_window.errors[-1] and "Preferences" in main_window.errors[-1]
    assert main_window.model is not None and main_window.model.path == tiny_model  # still loaded
    stored = load_preferences(app_settings)
    assert (stored.provider, stored.window) == ("auto", 40)  # the rest is kept
    assert main_window.provider == "cpu" and main_window.prefs == stored


def test_a_saved_provider_that_cannot_run_gives_way_to_auto_at_start(
    qtbot, app_settings, tiny_model, no_cuda, grid_clip, landmarker
):
    save_preferences(app_settings, dataclasses.replace(load_preferences(app_settings), provider="cuda"))
    window = MainWindow(app_settings)
    qtbot.addWidget(window)
    assert window.load_model(tiny_model, fallback=True)  # what the app does at start-up
    assert window.provider == "auto" and window.errors == []
    assert "saved provider (cuda) cannot run here: on CPU" in window.banner.text
    assert load_preferences(app_settings).provider == "cuda"  # the user's choice, to change in Preferences
    assert window.open_video(grid_clip[0]) and "cannot run here" in window.banner.text  # it stays
    window.stop_stream()
    # a provider asked for on the command line does not give way
    flagged = MainWindow(app_settings, provider="cuda")
    qtbot.addWidget(flagged)
    assert not flagged.load_model(tiny_model) and "cannot use CUDA" in flagged.errors[-1]


def test_a_video_playing_restarts_with_every_new_preference(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    main_window.open_video(video)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 2, timeout=10_000)
    # a new provider reloads the model and restarts the video: with the decoder chosen with it
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, provider="cpu", decoder="greedy"))
    assert main_window.stream.running and main_window.stream._worker.engine.decoder.kind == "greedy"
    main_window.stop_stream()


def test_ok_in_preferences_loads_the_model_that_a_provider_flag_could_not(
    qtbot, app_settings, tiny_model, no_cuda
):
    flagged = MainWindow(app_settings, provider="cuda")  # `lipreader gui --model tiny.onnx --provider cuda`
    qtbot.addWidget(flagged)
    assert not flagged.load_model(tiny_model) and "Execution provider" in flagged.errors[-1]
    assert flagged.prefs.provider == "auto"
    flagged.apply_preferences(flagged.prefs)  # as the message says: Preferences, the provider shown, OK
    assert flagged.model is not None and flagged.model.path == tiny_model and flagged.provider == "auto"
