"""Preferences: validation, and persistence through QSettings (an INI file in tmp_path)."""

from __future__ import annotations

import dataclasses

import pytest

from lipreader_app.settings import (
    RECENT_MAX,
    Preferences,
    _verify_preferences,
    ini_settings,
    load_preferences,
    load_recent_videos,
    save_preferences,
    save_recent_videos,
    verify_for_model,
)
from tests.conftest import tiny_contract


def test_defaults_when_nothing_is_stored(app_settings):
    assert load_preferences(app_settings) == Preferences()


def test_preferences_round_trip_through_the_file(tmp_path):
    prefs = Preferences(
        window=50,
        hop=5,
        decoder="beam",
        beam_width=20,
        landmark_every=3,
        stable_frames=0,
        revise=False,
        provider="cpu",
        camera_device=2,
        camera_width=1280,
        camera_height=720,
        model_path="/m/x.onnx",
        last_dir="/v",
        floating_captions=True,
        floating_rect="-1900,20,640,90",
    )
    save_preferences(ini_settings(tmp_path / "p.ini"), prefs)
    assert (tmp_path / "p.ini").is_file()
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == prefs


def test_only_changed_preferences_are_stored(tmp_path):
    settings = ini_settings(tmp_path / "p.ini")
    save_preferences(settings, Preferences(hop=5))
    save_preferences(settings, Preferences(stable_frames=9))  # hop back to its default: forgotten
    assert settings.allKeys() == ["preferences/stable_frames"]
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences(stable_frames=9)
    # nothing stored for a default: a default changed in a later version reaches this user
    save_preferences(settings, Preferences())
    assert ini_settings(tmp_path / "p.ini").allKeys() == []


def test_invalid_stored_values_fall_back_to_defaults(tmp_path):
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/decoder", "telepathy")
    settings.setValue("preferences/window", "many")
    settings.sync()
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences()


@pytest.mark.parametrize("stored", ["often", 0, 9])
def test_invalid_stored_landmark_every_falls_back_to_defaults(tmp_path, stored):
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/landmark_every", stored)
    settings.sync()
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences()


@pytest.mark.parametrize("stored", ["false", "False", False])
def test_a_stored_false_reads_back_false(tmp_path, stored):
    """INI files hold booleans as text: "false" must not read back as a true non-empty string."""
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/revise", stored)
    settings.sync()
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences(revise=False)


def test_a_stored_non_boolean_is_ignored(tmp_path, caplog):
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/revise", "maybe")
    settings.sync()
    with caplog.at_level("WARNING", logger="lipreader"):
        assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences()
    assert "ignoring stored preference revise='maybe'" in caplog.text


@pytest.mark.parametrize("stored", ["long", -1, 101])
def test_invalid_stored_stable_frames_falls_back_to_defaults(tmp_path, stored):
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/stable_frames", stored)
    settings.sync()
    assert load_preferences(ini_settings(tmp_path / "p.ini")) == Preferences()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"window": -1}, "window"),
        ({"window": 1}, "window 1 must be 0 \\(the model's\\) or 2..1000 frames"),  # core's MIN_WINDOW
        ({"window": 1001}, "window 1001 must be"),
        ({"hop": 1001}, "hop 1001 must be"),
        ({"window": 20, "hop": 30}, "hop 30 is more than the window of 20 frames"),
        ({"decoder": "nope"}, "decoder"),
        ({"landmark_every": 0}, "landmark_every 0 must be 1..4"),
        ({"landmark_every": 5}, "landmark_every 5 must be 1..4"),
        ({"stable_frames": -1}, "stable_frames -1 must be 0..100"),
        ({"stable_frames": 101}, "stable_frames 101 must be 0..100"),
        ({"provider": "tpu"}, "provider"),
        ({"camera_device": -2}, "camera device"),
        ({"camera_width": 5}, "resolution"),
        ({"floating_rect": "10,20,300"}, "window geometry '10,20,300' must be left,top,width,height"),
        ({"floating_rect": "10,20,0,90"}, "window size 0x90 must be"),
    ],
)
def test_verify_rejects_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        _verify_preferences(dataclasses.replace(Preferences(), **change))


def test_save_refuses_invalid_preferences(app_settings):
    with pytest.raises(ValueError):
        save_preferences(app_settings, Preferences(provider="tpu"))


def test_verify_accepts_the_smallest_window_core_runs():
    assert _verify_preferences(Preferences(window=2, hop=1)).window == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hop": 500}, "hop 500 is more than the model's window of 75 frames"),
        ({"hop": 76}, "hop 76 is more than the model's window of 75 frames"),
    ],
)
def test_a_hop_over_the_models_own_window_does_not_fit_it(change, message):
    contract = tiny_contract()
    with pytest.raises(ValueError, match=message):
        verify_for_model(dataclasses.replace(Preferences(), **change), contract)
    for fits in (Preferences(hop=75), Preferences(window=100, hop=90), Preferences()):
        assert verify_for_model(fits, contract) == fits


def test_recent_videos_round_trip_once_each_newest_first_at_most_recent_max(tmp_path):
    settings = ini_settings(tmp_path / "lipreader.ini")
    assert load_recent_videos(settings) == []
    paths = [tmp_path / f"clip {i} & co.mp4" for i in range(RECENT_MAX + 3)]
    stored = save_recent_videos(settings, [paths[1], *paths, paths[0]])
    assert stored == paths[1:2] + paths[0:1] + paths[2:RECENT_MAX]
    assert load_recent_videos(ini_settings(tmp_path / "lipreader.ini")) == stored  # from the file
    save_recent_videos(settings, paths[:2])  # shorter: nothing of the longer list is left over
    assert load_recent_videos(ini_settings(tmp_path / "lipreader.ini")) == paths[:2]
    settings.setValue("recent_videos/3/path", "relative.mp4")  # not ours: ignored
    settings.setValue("recent_videos/size", 3)
    assert load_recent_videos(settings) == paths[:2]
    save_recent_videos(settings, [])
    assert load_recent_videos(ini_settings(tmp_path / "lipreader.ini")) == []


def test_a_bad_stored_screen_rectangle_is_dropped_alone(tmp_path, caplog):
    """A stored value out of range (a screen rectangle too small) falls back to its default alone:
    the model opened last and the caption size stay."""
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/screen_rect", "0,0,8,8")
    settings.setValue("preferences/model_path", "/m/x.onnx")
    settings.setValue("preferences/caption_points", 30)
    settings.sync()
    with caplog.at_level("WARNING", logger="lipreader"):
        loaded = load_preferences(ini_settings(tmp_path / "p.ini"))
    assert loaded == Preferences(model_path="/m/x.onnx", caption_points=30)
    assert "ignoring stored preference screen_rect='0,0,8,8'" in caplog.text


def test_a_screen_rectangle_written_by_hand_without_quotes_is_read(tmp_path):
    """QSettings reads an INI value with unquoted commas as a list of strings."""
    (tmp_path / "p.ini").write_text("[preferences]\nscreen_rect=-1920, 0, 640, 480\n")
    assert load_preferences(ini_settings(tmp_path / "p.ini")).screen_rect == "-1920,0,640,480"


def test_a_bad_stored_floating_captions_place_is_dropped_alone(tmp_path, caplog):
    """A malformed place of the floating captions is forgotten (they go where they go the first
    time); that they are shown stays."""
    settings = ini_settings(tmp_path / "p.ini")
    settings.setValue("preferences/floating_rect", "here")
    settings.setValue("preferences/floating_captions", True)
    settings.sync()
    with caplog.at_level("WARNING", logger="lipreader"):
        loaded = load_preferences(ini_settings(tmp_path / "p.ini"))
    assert loaded == Preferences(floating_captions=True)
    assert "ignoring stored preference floating_rect='here'" in caplog.text
