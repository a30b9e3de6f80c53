"""The main window end to end (offscreen): live playback, sources, errors, shortcuts, preferences."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from core.transcripts import VIDEO_SUFFIXES
from core.types import Frame
from core.video import CameraError, CameraSource, VideoFileSource
from lipreader_app.main_window import MainWindow
from lipreader_app.model_card import ModelCardDialog
from lipreader_app.preferences_dialog import PreferencesDialog
from lipreader_app.settings import load_preferences
from tests.videos import late_video, noise_frames, read_frames, two_faces, upside_down, write_video

pytestmark = pytest.mark.usefixtures("gui_gc")


def word_errors(hypothesis: str, reference: str) -> int:
    """Word-level edit distance."""
    hyp, ref = hypothesis.split(), reference.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def test_window_opens_with_the_model_in_the_status_bar(main_window, tiny_model):
    assert main_window.isVisible() and main_window.windowTitle() == "LipReader"
    fields = main_window.status.field_texts()
    assert fields["model"] == f"model {tiny_model.name}" and fields["provider"] == "CPU"
    assert fields["source"] == "no source"
    assert main_window.video_view._placeholder.isVisible()
    # with nothing playing, the ways to start: a file, the camera, the screen; and the keys
    shown = main_window.video_view._placeholder.textItem.toPlainText()
    assert all(way in shown for way in ("Open video…", "camera", "Screen…", "Keyboard shortcuts…"))


def test_playing_a_clip_updates_every_panel(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    assert main_window.open_video(video)
    assert main_window.status.field_texts()["source"] == f"video {video.name}"
    assert main_window.windowTitle() == f"LipReader — video {video.name}"
    qtbot.waitUntil(lambda: main_window.state.probs is not None, timeout=10_000)
    qtbot.waitUntil(lambda: main_window.probabilities._image.image is not None, timeout=2000)
    assert main_window.probabilities._image.image.shape == (28, 75)
    assert main_window.video_view._image.image.shape == (288, 360, 3)
    qtbot.waitUntil(lambda: len(main_window.video_view._mesh.data) == 478, timeout=2000)
    crop = main_window.model.contract.crop
    assert main_window.crop_view._image.image.shape == (crop.height, crop.width)
    assert "Window reads" in main_window.probabilities._reading.text()
    qtbot.waitUntil(lambda: "fps" in main_window.status.field_texts()["fps"], timeout=3000)
    assert "lag" in main_window.status.field_texts()["latency"]
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        pass
    assert main_window.state.frames_processed >= 75
    assert main_window.errors == [] and main_window.banner.kind is None  # a face was found


def test_grid_clip_caption_matches_its_transcript(qtbot, app_settings, real_model, grid_clip, landmarker):
    video, reference = grid_clip
    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    assert window.load_model(real_model), window.errors
    window.show()
    with qtbot.waitSignal(window.stream_ended, timeout=20_000):
        window.open_video(video)
    qtbot.wait(100)
    said = window.state.transcript()
    # the window shows what the engine reads from the same clip through the same live windows
    # offline (the model is not perfect: README gives its error rates), and that reading is close
    # to the transcript; so is offline captioning's, which decodes the utterance whole
    from core.captioning import caption_video
    from core.engine import CaptionEngine, StreamOptions

    live = CaptionEngine.load(real_model, provider="cpu", options=StreamOptions(whole_utterances=False))
    assert said == caption_video(video, live).text, said
    assert word_errors(said, reference) <= 3, (said, reference)
    whole = caption_video(video, CaptionEngine(live.model)).text
    assert word_errors(whole, reference) <= 3, (whole, reference)
    assert window.captions.history_texts(), "the finished utterance is in the history"
    window.close()


def test_pause_seek_and_stop(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    main_window.open_video(video)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=10_000)
    QTest.keyClick(main_window, Qt.Key.Key_Space)
    assert main_window.stream.paused
    qtbot.wait(300)
    frozen = main_window.state.frames_processed
    qtbot.wait(300)
    assert main_window.state.frames_processed <= frozen + 1
    QTest.keyClick(main_window, Qt.Key.Key_Space)
    assert not main_window.stream.paused
    main_window.seek(2.0)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 2, timeout=10_000)
    assert main_window.state.position >= 2.0
    main_window.stop_stream()
    assert not main_window.stream.running and main_window.status.field_texts()["source"] == "no source"


def test_a_sentence_that_ends_as_the_video_is_paused_is_read_again_while_paused(
    qtbot, app_settings, real_model, grid_clip, landmarker, tmp_path
):
    """Paused on the frame where a sentence ended, its second reading lands without playing on."""
    frames = read_frames(grid_clip[0])
    video = write_video(tmp_path / "still_after.avi", frames + [frames[-1]] * 50, 25.0)  # 2 s of still mouth
    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    assert window.load_model(real_model), window.errors
    revised_while_paused = []

    def on_delivered(d):
        if d.update.utterance_end and not window.stream.paused:
            window.toggle_pause()
        elif d.update.revised and window.stream.paused:
            revised_while_paused.append(d.update)

    window.stream.delivered.connect(on_delivered)
    window.open_video(video)
    qtbot.waitUntil(lambda: window.stream.paused, timeout=20_000)
    qtbot.waitUntil(lambda: bool(revised_while_paused), timeout=5000)
    assert revised_while_paused[0].idle and window.state.history[-1].text.startswith("bin blue")
    window.close()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_video_that_starts_after_its_sound_plays_in_the_files_seconds(
    qtbot, main_window, grid_clip, landmarker, tmp_path
):
    late = late_video(grid_clip[0], tmp_path / "late.mp4")  # its frames start 1 s into the file
    assert main_window.open_video(late)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 2, timeout=10_000)
    assert 1.0 <= main_window.state.position < 1.5 and main_window.transport._duration == pytest.approx(4.0)
    shown = []
    main_window.stream.delivered.connect(shown.append)
    main_window.seek(2.5)  # the frame 1.5 s into the video track
    qtbot.waitUntil(lambda: len(shown) > 0, timeout=10_000)
    assert shown[0].position == pytest.approx(2.5, abs=0.05)
    first = shown[0].update.frame.image.astype(float)
    assert int(np.argmin([np.abs(first - f).mean() for f in read_frames(grid_clip[0])])) == 37


def test_an_upside_down_video_is_shown_and_read_upright_with_a_warning(
    qtbot, main_window, grid_clip, landmarker, tmp_path
):
    images = read_frames(grid_clip[0], limit=25)
    over = write_video(tmp_path / "over.avi", [cv2.rotate(f, cv2.ROTATE_180) for f in images], 25.0)
    assert main_window.open_video(over)
    # the warning may come before the first picture is shown: wait for both
    qtbot.waitUntil(
        lambda: "upside down" in main_window.banner.text and main_window.state.frame is not None,
        timeout=10_000,
    )
    assert main_window.state.frame.turned  # the picture shown is the one read, upright
    shown = []
    main_window.stream.delivered.connect(shown.append)
    main_window.seek(0.2)  # a new stream of the same file: upright from its first frame
    qtbot.waitUntil(lambda: len(shown) > 0, timeout=10_000)
    assert shown[0].update.frame.turned


def test_a_face_clicked_on_an_upside_down_video_shown_upright_is_the_one_read_live_and_offline(
    qtbot, main_window, grid_dir, landmarker, tmp_path
):
    canvas, small = two_faces(grid_dir)  # as shown, turned upright: the small face on the right
    video = write_video(tmp_path / "over.avi", upside_down([canvas] * 75), 25.0)
    landmarks = lambda: main_window.state.crop.landmarks if main_window.state.crop else None  # noqa: E731
    assert main_window.open_video(video)
    qtbot.waitUntil(lambda: landmarks() is not None and main_window.state.frame.turned, timeout=10_000)
    main_window.video_view.face_picked.emit(*small)  # a click on the small face shown
    qtbot.waitUntil(lambda: (f := landmarks()) is not None and f.chosen and f.points[:, 0].mean() > 360)
    in_file = (canvas.shape[1] - small[0], canvas.shape[0] - small[1])  # in the file's picture, upside down
    assert main_window.face_choice.point == pytest.approx(in_file, abs=30)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000) as ended:
        assert main_window.caption_video(video)  # the whole file, of the face clicked: found at once
    assert ended.args == ["done"]
    assert not [w for w in main_window.offline.transcripts[video].warnings if "face at" in w]


def test_a_face_clicked_in_the_video_is_read_over_seeks_until_a_right_click(
    qtbot, main_window, grid_dir, landmarker, tmp_path
):
    canvas, small = two_faces(grid_dir)
    video = write_video(tmp_path / "two.avi", [canvas] * 150, 25.0)  # 6 s
    landmarks = lambda: main_window.state.crop.landmarks if main_window.state.crop else None  # noqa: E731
    reads = lambda left: lambda: (f := landmarks()) is not None and (f.points[:, 0].mean() < 360) == left  # noqa: E731
    assert main_window.open_video(video)
    qtbot.waitUntil(reads(left=True), timeout=10_000)  # the largest face
    main_window.video_view.face_picked.emit(*small)
    qtbot.waitUntil(lambda: reads(left=False)() and landmarks().chosen, timeout=5000)
    qtbot.waitUntil(lambda: "the face you clicked" in main_window.crop_view._status.text(), timeout=2000)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000) as ended:
        assert main_window.caption_video(video)  # the whole file, of the face clicked
        x, y = main_window.offline._job.face  # where the face clicked was last seen
        assert abs(x - small[0]) < 30 and abs(y - small[1]) < 30
    assert ended.args == ["done"]
    main_window.seek(3.0)  # a new stream: the face clicked is read again
    qtbot.waitUntil(lambda: main_window.state.position >= 3.0 and reads(left=False)(), timeout=10_000)
    main_window.video_view.face_picked.emit(canvas.shape[1] - 5.0, canvas.shape[0] - 5.0)  # no face there
    qtbot.waitUntil(lambda: "No face where you clicked" in main_window.banner.text, timeout=5000)
    qtbot.waitUntil(reads(left=True), timeout=5000)
    main_window.video_view.face_picked.emit(*small)
    qtbot.waitUntil(reads(left=False), timeout=5000)
    assert "No face where you clicked" not in main_window.banner.text + main_window.status.message  # stale
    main_window.video_view.automatic_face.emit()
    qtbot.waitUntil(lambda: reads(left=True)() and not landmarks().chosen, timeout=5000)


def test_no_camera_shows_a_message_and_the_video_playing_plays_on(qtbot, main_window, grid_clip, landmarker):
    main_window.prefs = dataclasses.replace(main_window.prefs, camera_device=57)
    assert main_window.open_video(grid_clip[0])
    QTest.keyClick(main_window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: camera
    message = "cannot open camera 57: no such camera (/dev/video57 does not exist)"
    assert main_window.banner.kind == "error" and message in main_window.banner.text  # at once
    assert message in main_window.status.message
    assert main_window.stream.running and main_window.video_path == grid_clip[0]
    assert isinstance(main_window.source, VideoFileSource) and main_window.isVisible()


def test_a_camera_that_fails_to_open_shows_a_message_and_the_app_keeps_running(
    qtbot, main_window, landmarker, monkeypatch
):
    monkeypatch.setattr(CameraSource, "missing", lambda self: None)  # a /dev/video57 that cannot open
    main_window.prefs = dataclasses.replace(main_window.prefs, camera_device=57)
    QTest.keyClick(main_window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: camera
    assert isinstance(main_window.source, CameraSource)
    qtbot.waitUntil(lambda: main_window.banner.kind == "error", timeout=5000)
    assert "cannot open camera 57" in main_window.banner.text
    assert "cannot open camera 57" in main_window.status.message
    qtbot.waitUntil(lambda: not main_window.stream.running, timeout=3000)
    assert main_window.isVisible()


def test_no_face_in_view_shows_a_warning_and_a_video_without_one_says_so_at_the_end(
    qtbot, main_window, tmp_path, landmarker
):
    clip = write_video(tmp_path / "noface.mp4", noise_frames(30), 25.0)
    main_window.open_video(clip)
    qtbot.waitUntil(lambda: main_window.banner.kind == "warning", timeout=10_000)
    assert "No face in view" in main_window.banner.text
    assert "no face" in main_window.crop_view._status.text()
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        pass
    qtbot.wait(100)  # redraws after the end
    assert main_window.banner.kind == "warning" and main_window.errors == []
    assert "No face was found in video noface.mp4" in main_window.banner.text
    assert main_window.status.field_texts()["source"] == "video noface.mp4 (ended)"


class UnpluggedCamera:
    """A camera that delivers the frames of a clip, then fails as an unplugged webcam does."""

    def __init__(self, device: int, width: int, height: int) -> None:
        self.device = device
        self.clip = UnpluggedCamera.clip

    def stop(self) -> None:
        pass

    def missing(self) -> None:
        return None

    def __iter__(self):
        for i, image in enumerate(read_frames(self.clip, limit=20)):
            time.sleep(0.02)
            yield Frame(i, i / 25, image)
        raise CameraError(f"camera {self.device} stopped delivering frames (unplugged?)")


def test_camera_unplugged_mid_stream_shows_a_message(qtbot, main_window, monkeypatch, grid_clip, landmarker):
    UnpluggedCamera.clip = grid_clip[0]
    monkeypatch.setattr("lipreader_app.playback.CameraSource", UnpluggedCamera)
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        assert main_window.start_camera(0)
    assert main_window.state.frames_processed >= 15
    assert main_window.banner.kind == "error" and "unplugged" in main_window.banner.text
    assert main_window.status.field_texts()["source"].endswith("(ended)")
    assert main_window.isVisible()


@pytest.mark.parametrize("content", [b"", b"definitely not a video" * 50])
def test_bad_video_file_shows_a_message(qtbot, main_window, tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    assert not main_window.open_video(bad)
    assert main_window.banner.kind == "error" and "bad.mp4" in main_window.banner.text
    assert not main_window.stream.running
    assert not main_window.open_video(tmp_path / "missing.mp4")
    assert "no such file" in main_window.banner.text


def test_bad_model_shows_a_message_and_keeps_the_previous_one(qtbot, main_window, tmp_path, tiny_model):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    assert not main_window.load_model(bad)
    assert "bad.onnx" in main_window.banner.text
    assert main_window.model.path == tiny_model
    assert main_window.status.field_texts()["model"] == f"model {tiny_model.name}"


def drop(window: MainWindow, path) -> None:
    """Drop the file `path` on the window, as from a file manager."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    no_button, no_key = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, no_button, no_key))


def test_a_video_dropped_on_the_window_plays(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    drop(main_window, video)
    qtbot.waitUntil(lambda: isinstance(main_window.source, VideoFileSource), timeout=2000)
    assert main_window.video_path == video


def test_the_open_dialogs_list_every_video_suffix_a_folder_is_walked_for(main_window, monkeypatch):
    asked = []
    monkeypatch.setattr(main_window, "_ask_path", lambda title, filter: asked.append(filter) or "")
    main_window.files.ask_open_video()  # File > Open video... (cancelled)
    main_window.files.ask_caption_video()
    for filter in asked:
        listed = filter.split(";;")[0]
        assert all(f"*{suffix} " in listed or f"*{suffix})" in listed for suffix in VIDEO_SUFFIXES), listed
    assert len(asked) == 2 and all(f"*{s}" in asked[0] for s in (".m4v", ".ts", ".mts", ".m2ts", ".3gp"))


def test_preferences_persist_and_camera_device_is_remembered(
    qtbot, main_window, app_settings, tiny_model, monkeypatch
):
    assert load_preferences(app_settings).model_path == ""  # loaded by a program, not by the user
    monkeypatch.setattr(main_window, "_ask_path", lambda title, filter: str(tiny_model))
    main_window.models.ask_open_model()  # Model > Open model...
    prefs = dataclasses.replace(main_window.prefs, window=40, hop=8, decoder="greedy", provider="cpu")
    main_window.apply_preferences(prefs)
    main_window.start_camera(3)  # fails (no camera here) but is remembered
    main_window.stream.stop()
    stored = load_preferences(app_settings)
    assert (stored.window, stored.hop, stored.decoder, stored.camera_device) == (40, 8, "greedy", 3)
    assert stored.model_path == str(tiny_model)
    engine = main_window.make_engine()
    assert (engine.window, engine.hop, engine.decoder.kind) == (40, 8, "greedy")
    again = MainWindow(app_settings)
    qtbot.addWidget(again)
    assert again.prefs == stored


def test_the_panels_as_the_user_sized_them_are_kept_at_the_next_start(qtbot, app_settings, main_window):
    from PySide6.QtWidgets import QSplitter

    def splitters(window: MainWindow) -> dict[str, QSplitter]:
        return {s.objectName(): s for s in window.centralWidget().findChildren(QSplitter)}

    dragged = {"top": [500, 820], "side": [400, 300], "main": [450, 370]}
    for name, sizes in dragged.items():
        splitters(main_window)[name].setSizes(sizes)
    sized = {name: s.sizes() for name, s in splitters(main_window).items()}
    main_window.close()
    app_settings.remove("window/geometry")  # the same size again (the offscreen screen clips a restored one)
    again = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(again)
    again.show()
    assert {name: s.sizes() for name, s in splitters(again).items()} == sized
    again.close()


def test_preferences_dialog_validates_and_applies(qtbot, main_window):
    main_window.files.show_preferences()
    dialog = main_window.findChildren(PreferencesDialog)[-1]
    dialog.window_spin.setValue(20)
    dialog.hop_spin.setValue(30)
    dialog.accept()
    assert "hop" in dialog.error_label.text() and dialog.isVisible()
    dialog.hop_spin.setValue(5)
    dialog.decoder_combo.setCurrentIndex(dialog.decoder_combo.findData("beam"))
    dialog.accept()
    assert not dialog.isVisible()
    assert (main_window.prefs.window, main_window.prefs.hop, main_window.prefs.decoder) == (20, 5, "beam")


def test_model_card_shows_the_contract(qtbot, main_window):
    main_window.models.show_card()
    card = main_window.findChildren(ModelCardDialog)[-1]
    text = card.browser.toPlainText()
    assert "tiny.onnx" in text and "28 classes" in text and "grammar" in text


def test_a_dialog_asked_for_again_comes_to_the_front_rather_than_a_second_one(qtbot, main_window):
    for open_dialog in (main_window.files.show_preferences, main_window.models.show_card):
        open_dialog()
        open_dialog()  # two Preferences dialogs open at once would undo each other's changes
    preferences = [d for d in main_window.findChildren(PreferencesDialog) if d.isVisible()]
    cards = [d for d in main_window.findChildren(ModelCardDialog) if d.isVisible()]
    assert len(preferences) == 1 and len(cards) == 1
    preferences[0].close()
    main_window.files.show_preferences()  # closed: a new one, with the preferences as they are now
    assert len([d for d in main_window.findChildren(PreferencesDialog) if d.isVisible()]) == 1


def test_camera_device_menu_lists_devices_and_remembers_the_choice(
    qtbot, main_window, app_settings, monkeypatch, landmarker
):
    monkeypatch.setattr("lipreader_app.menus.camera_devices", lambda: [])
    main_window.sources.camera_menu.aboutToShow.emit()
    (only,) = main_window.sources.camera_menu.actions()
    assert only.text() == "No camera found" and not only.isEnabled()
    monkeypatch.setattr("lipreader_app.menus.camera_devices", lambda: [0, 58])
    main_window.sources.camera_menu.aboutToShow.emit()
    actions = main_window.sources.camera_menu.actions()
    assert [a.text() for a in actions] == ["Camera 0", "Camera 58"] and actions[0].isChecked()
    actions[1].trigger()
    assert load_preferences(app_settings).camera_device == 58
    qtbot.waitUntil(lambda: "cannot open camera 58" in main_window.banner.text, timeout=5000)


def test_landmark_every_preference_reaches_the_live_and_offline_workers(
    qtbot, main_window, grid_clip, monkeypatch
):
    live, offline = [], []

    def fake_iter_captions(source, engine, **kwargs):
        live.append(engine.options.landmark_every)
        yield from ()

    def fake_caption_video(path, engine, progress=None, **kwargs):
        from core.captioning import Cancelled

        offline.append(engine.options.landmark_every)
        raise Cancelled("stop here")

    monkeypatch.setattr("lipreader_app.workers.iter_captions", fake_iter_captions)
    monkeypatch.setattr("lipreader_app.workers.caption_video", fake_caption_video)
    video, _ = grid_clip
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, landmark_every=2))
    with qtbot.waitSignal(main_window.stream_ended, timeout=5000):
        assert main_window.open_video(video)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=5000):
        assert main_window.caption_video(video)
    assert live == [2] and offline == [2]


def test_stable_frames_preference_reaches_the_live_engine(qtbot, main_window, grid_clip, monkeypatch):
    live = []

    def fake_iter_captions(source, engine, **kwargs):
        live.append(engine.options.stable_frames)
        yield from ()

    monkeypatch.setattr("lipreader_app.workers.iter_captions", fake_iter_captions)
    video, _ = grid_clip
    assert main_window.make_engine().options.stable_frames == 4
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, stable_frames=0))
    assert main_window.make_engine().options.stable_frames == 0
    with qtbot.waitSignal(main_window.stream_ended, timeout=5000):
        assert main_window.open_video(video)
    assert live == [0]


def test_reading_sentences_again_is_a_preference_of_the_live_engine(main_window):
    assert main_window.make_engine().options.revise
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, revise=False))
    assert not main_window.make_engine().options.revise


def test_save_transcript_writes_what_the_live_view_captioned(main_window, make_update, tmp_path, monkeypatch):
    from lipreader_app.live_state import Delivered

    asked = []
    monkeypatch.setattr(main_window, "_ask_save_path", lambda *args: asked.append(args) or "")
    main_window.files.ask_save_transcript()
    assert asked == [] and "nothing has been captioned yet" in main_window.banner.text
    main_window.state.reset(offset=10.0)  # a stream that started 10 s into the file
    words = (("bin", 0.2, 0.4), ("blue", 0.4, 0.7))
    for update in (
        make_update(5, final=words[:1]),
        make_update(20, final=words[1:], utterance_end=True, revised=(("bin", 0.2, 0.4), ("red", 0.4, 0.7))),
        make_update(30, partial=(("at", 1.0, 1.2),)),
    ):
        main_window.state.on_delivered(Delivered(update, time.monotonic(), 10.0 + update.frame.timestamp))
    path = tmp_path / "talk.srt"
    monkeypatch.setattr(main_window, "_ask_save_path", lambda *args: asked.append(args) or str(path))
    main_window.files.ask_save_transcript()
    assert len(asked) == 1 and asked[0][1].endswith("transcript.srt")  # a camera: no file name to follow
    srt = path.read_text()
    assert "00:00:10,200 --> " in srt and "bin red at" in srt and "blue" not in srt  # revised, in source time
    assert main_window.save_transcript(tmp_path / "talk.txt") and (
        tmp_path / "talk.txt"
    ).read_text().strip() == ("bin red at")
    assert not main_window.save_transcript(tmp_path / "talk.doc")
    assert "use .srt, .vtt or .txt" in main_window.errors[-1]
    assert not main_window.save_transcript(tmp_path / "no" / "such" / "folder.srt")
    assert "cannot save the transcript" in main_window.errors[-1]


def test_a_name_typed_without_a_suffix_gets_the_chosen_filters():
    from lipreader_app.dialogs import with_suffix_of

    assert with_suffix_of("/t/talk", "WebVTT subtitles (*.vtt)") == "/t/talk.vtt"
    assert with_suffix_of("/t/talk.txt", "WebVTT subtitles (*.vtt)") == "/t/talk.txt"
    assert with_suffix_of("/t/my.notes", "Plain text (*.txt)") == "/t/my.notes.txt"  # not a subtitle suffix
    assert with_suffix_of("", "WebVTT subtitles (*.vtt)") == ""  # cancelled


def test_a_seek_keeps_the_sentence_in_progress_and_a_replay_its_latest_reading(
    qtbot, main_window, grid_clip, make_update, monkeypatch
):
    from lipreader_app.live_state import Delivered

    def no_captions(source, engine, **kwargs):
        yield from ()

    monkeypatch.setattr("lipreader_app.workers.iter_captions", no_captions)  # updates come from the test
    video, _ = grid_clip
    assert main_window.open_video(video)
    main_window.seek(1.0)

    def deliver(index: int, final: tuple, end: bool = False) -> None:
        update = make_update(index, final=final, utterance_end=end)
        main_window.state.on_delivered(Delivered(update, time.monotonic(), 1.0 + update.frame.timestamp))

    deliver(5, (("bin", 0.2, 0.4),))
    deliver(20, (("blue", 0.4, 0.7),), end=True)
    deliver(30, (("at", 1.0, 1.2),))
    main_window.seek(1.0)  # back to where "bin blue" was said: "at", in progress, goes to the history
    assert [(u.text, u.start) for u in main_window.state.history] == [("bin blue", 1.2), ("at", 2.0)]
    deliver(20, (("bin", 0.2, 0.4), ("red", 0.4, 0.7)), end=True)  # read again, differently
    assert [w.text for w in main_window.state.words()] == ["bin", "red", "at"]  # the latest reading wins


def test_a_seek_or_stop_right_after_a_sentence_keeps_its_second_reading(
    qtbot, main_window, grid_clip, make_update, monkeypatch
):
    """The sentence in progress when the stream stops is closed as at the end of the file, read
    again whole, and that reading goes into the history, not the live words it had so far."""

    def reading(source, engine, **kwargs):  # live "bin blue at two", then read again whole at the end
        frame = None
        for frame in source:
            yield make_update(frame.index, final=(("bin", 0.0, 0.3),) if frame.index == 0 else ())
        if frame is not None:
            last = (("blue", 0.3, 0.6), ("at", 0.6, 0.8), ("two", 0.8, 1.0))
            revised = (("bin", 0.0, 0.3), ("blue", 0.3, 0.6), ("at", 0.6, 0.7), ("f", 0.7, 0.8))
            revised += (("two", 0.8, 1.0),)
            yield make_update(frame.index, final=last, utterance_end=True, revised=revised)

    monkeypatch.setattr("lipreader_app.workers.iter_captions", reading)
    video, _ = grid_clip
    for end in ("seek", "stop"):
        main_window.state.history.clear()
        assert main_window.open_video(video)
        qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=10_000)
        main_window.seek(0.0) if end == "seek" else main_window.stop_stream()
        assert [u.text for u in main_window.state.history] == ["bin blue at f two"], end
        assert main_window.state.history[0].live_text == "bin blue at two"


def test_one_press_of_ctrl_r_tries_a_failed_camera_again(qtbot, main_window, landmarker, monkeypatch):
    monkeypatch.setattr(CameraSource, "missing", lambda self: None)
    main_window.prefs = dataclasses.replace(main_window.prefs, camera_device=57)
    for attempt in (1, 2):
        QTest.keyClick(main_window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: camera
        assert main_window.status.field_texts()["source"].startswith("camera 57")
        qtbot.waitUntil(lambda: not main_window.stream.running, timeout=5000)
        assert len(main_window.errors) == attempt and "cannot open camera 57" in main_window.errors[-1]


def test_a_seek_while_paused_stays_paused_at_the_new_point(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    main_window.open_video(video)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=10_000)
    main_window.toggle_pause()
    assert main_window.stream.paused and main_window.transport.paused
    main_window.seek(2.0)
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)  # once the frame at 2 s is shown
    assert main_window.transport.paused and main_window.state.frames_processed >= 1
    shown = main_window.state.frames_processed
    qtbot.wait(400)
    # the stopped stream's late `finished` did not end the new one (a freed worker's address can be
    # the new worker's: LiveStream keeps stopped workers until their last signal)
    assert main_window.stream.running
    assert main_window.state.frames_processed <= shown + 1  # the frame already on its way, no more
    assert 2.0 <= main_window.state.position < 2.3
    qtbot.waitUntil(lambda: main_window.video_view._image.image is not None, timeout=2000)
    main_window.captions.seek_requested.emit(1.0)  # a History line clicked: the same
    assert main_window.transport.paused
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)
    assert 1.0 <= main_window.state.position < 1.3
    QTest.keyClick(main_window, Qt.Key.Key_Space)
    assert not main_window.stream.paused and not main_window.transport.paused
    main_window.toggle_pause()
    main_window.seek(0.5)
    main_window.toggle_pause()  # play before the frame at the new point came: it plays on
    assert not main_window.transport.paused
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 5, timeout=10_000)
    assert not main_window.stream.paused


def test_space_pauses_while_the_history_list_has_the_focus(
    qtbot, main_window, grid_clip, make_update, landmarker
):
    from PySide6.QtWidgets import QApplication

    from lipreader_app.live_state import Delivered

    video, _ = grid_clip
    main_window.open_video(video)
    update = make_update(10, final=(("bin", 0.2, 0.4),), utterance_end=True)
    main_window.state.on_delivered(Delivered(update, time.monotonic(), 0.4))
    qtbot.waitUntil(lambda: len(main_window.captions.history_texts()) == 1, timeout=2000)
    history = main_window.captions._history
    QTest.mouseClick(
        history.viewport(), Qt.MouseButton.LeftButton, pos=history.visualItemRect(history.item(0)).center()
    )
    assert QApplication.focusWidget() is history and main_window.stream.running  # it seeks there
    QTest.keyClick(history, Qt.Key.Key_Space)
    assert main_window.stream.paused


def test_at_the_end_play_starts_the_video_again(qtbot, main_window, tmp_path, landmarker, monkeypatch):
    monkeypatch.setattr("lipreader_app.live_state.RATE_PERIOD_S", 0.2)
    clip = write_video(tmp_path / "short.mp4", noise_frames(30), 25.0)  # 1.2 s
    transport, slider = main_window.transport, main_window.transport._slider
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        assert main_window.open_video(clip)
    qtbot.wait(500)  # redraws and rate periods after the end
    assert transport.paused and slider.value() == slider.maximum() == 12
    assert transport._time.text() == "0:01 / 0:01"
    assert main_window.status.field_texts()["fps"] == main_window.status.field_texts()["latency"] == ""
    assert main_window.crop_view._status.text() == ""  # no face is tracked any more
    QTest.keyClick(main_window, Qt.Key.Key_Space)
    assert main_window.stream.running and not transport.paused
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 0, timeout=10_000)
    assert main_window.state.position < 1.0
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        pass
    transport._button.click()  # the play button does the same
    assert main_window.stream.running and not transport.paused


def test_a_relative_video_path_leaves_its_absolute_folder_for_the_next_dialogs(
    main_window, tmp_path, landmarker, monkeypatch
):
    write_video(tmp_path / "clip.avi", noise_frames(5), 25.0)
    monkeypatch.chdir(tmp_path)
    assert main_window.open_video("clip.avi")  # as `lipreader gui --video clip.avi` from its folder
    main_window.stop_stream()
    assert main_window.prefs.last_dir == str(tmp_path)


def test_a_video_played_by_a_relative_path_is_the_one_captioned_by_its_absolute_path(
    main_window, grid_clip, landmarker, monkeypatch
):
    from core.captioning import Transcript
    from core.streaming import CaptionWord

    video, _ = grid_clip
    monkeypatch.chdir(video.parent)
    assert main_window.open_video(video.name)  # as `lipreader gui --video bbaf2n.mp4` from its folder
    main_window.face_choice.pick(180.0, 150.0)
    started = []
    monkeypatch.setattr(main_window.offline, "start", lambda path, engine, face=None: started.append(face))
    main_window.caption_video(video)  # the Caption video dialog gives the absolute path
    assert started == [(180.0, 150.0)]  # the face clicked in it is the face read
    words = (CaptionWord("bin", 0.0, 0.4, True),)
    main_window.offline.transcripts[video] = Transcript("bin", words, "CPUExecutionProvider", 1.0, 3.0, 1.0)
    main_window.offline.subtitles_ready.emit(video)
    cues = main_window.video_view._cues  # shown over the video playing
    assert cues == main_window.offline.cues_for(video) and [text for _, _, text in cues] == ["bin"]


def test_a_file_opening_says_so_and_a_seek_keeps_the_last_frame_until_the_next(
    qtbot, main_window, grid_clip, landmarker
):
    video, _ = grid_clip
    view = main_window.video_view
    assert main_window.open_video(video)
    assert view._placeholder.isVisible()  # until the first frame...
    assert view._placeholder.textItem.toPlainText() == f"Opening video {video.name}…"  # ...not "No source"
    qtbot.waitUntil(lambda: not view._placeholder.isVisible(), timeout=10_000)
    main_window.seek(1.0)
    assert not view._placeholder.isVisible() and view._shape is not None  # the last frame stays
    main_window.stop_stream()
    assert view._placeholder.isVisible() and "No source" in view._placeholder.textItem.toPlainText()


def test_stop_clears_the_panels_and_the_rates(qtbot, main_window, grid_clip, landmarker, monkeypatch):
    monkeypatch.setattr("lipreader_app.live_state.RATE_PERIOD_S", 0.2)
    video, _ = grid_clip
    main_window.open_video(video)
    qtbot.waitUntil(lambda: "fps" in main_window.status.field_texts()["fps"], timeout=10_000)
    qtbot.waitUntil(lambda: "face tracked" in main_window.crop_view._status.text(), timeout=2000)
    main_window.stop_stream()
    qtbot.wait(500)  # redraws and rate periods after the stop
    fields = main_window.status.field_texts()
    assert fields["source"] == "no source" and fields["fps"] == fields["latency"] == ""
    assert main_window.video_view._placeholder.isVisible()
    assert main_window.crop_view._status.text() == "" and main_window.probabilities._waiting.isVisible()


def test_a_suffix_added_to_a_saved_name_asks_before_replacing_that_file(main_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    typed = tmp_path / "my.notes"
    (tmp_path / "my.notes.txt").write_text("kept")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(typed), "Plain text (*.txt)"))
    asked = []
    for answer, expected in (
        (QMessageBox.StandardButton.No, ""),
        (QMessageBox.StandardButton.Yes, f"{typed}.txt"),
    ):
        monkeypatch.setattr(QMessageBox, "question", lambda *args, a=answer: asked.append(args[2]) or a)
        assert main_window._ask_save_path("Save transcript", str(typed), "Plain text (*.txt)") == expected
    assert asked == ["my.notes.txt already exists. Replace it?"] * 2
    (tmp_path / "my.notes.txt").unlink()  # nothing there: nothing to ask
    assert main_window._ask_save_path("Save transcript", str(typed), "Plain text (*.txt)") == f"{typed}.txt"
    assert len(asked) == 2


class FakeCamera:
    """A camera that delivers the frames of a clip over and over until stopped."""

    clip = None
    opened: list[FakeCamera] = []

    def __init__(self, device: int, width: int, height: int) -> None:
        self.device = device
        self._stopped = False
        FakeCamera.opened.append(self)

    def stop(self) -> None:
        self._stopped = True

    def missing(self) -> None:
        return None

    def __iter__(self):
        images = read_frames(self.clip, limit=25)
        i = 0
        while not self._stopped:
            time.sleep(0.04)
            yield Frame(i, i / 25, images[i % len(images)])
            i += 1


def test_a_model_loaded_while_a_video_plays_carries_on_where_it_was(
    qtbot, main_window, grid_clip, tiny_model, landmarker
):
    from core.streaming import CaptionWord
    from lipreader_app.live_state import Utterance

    video, _ = grid_clip
    main_window.open_video(video)
    qtbot.waitUntil(
        lambda: main_window.state.position > 1.0 and main_window.state.crop is not None, timeout=10_000
    )
    face = main_window.state.crop.landmarks.points.mean(axis=0)
    main_window.video_view.face_picked.emit(*face)  # a face clicked...
    main_window.toggle_pause()  # ...and the video paused,
    qtbot.wait(100)
    said = Utterance(0.1, 0.3, "earlier words", (CaptionWord("earlier", 0.1, 0.3, True),))
    main_window.state.history.insert(0, said)  # with a history
    at = main_window.state.position
    main_window.load_model(tiny_model, remember=True)  # Model ▸ Open model…
    assert main_window.stream.running and main_window.transport.paused
    assert main_window.face_choice.point is not None  # the face clicked is still the one read
    assert [u.text for u in main_window.state.history][:1] == ["earlier words"]
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)  # paused again, where it was
    assert at - 0.05 <= main_window.state.position < at + 0.3
    assert "loaded model tiny.onnx" in main_window.banner.text  # README: it says so, with its card
    main_window.banner.link_activated.emit("model-card")
    assert main_window.findChildren(ModelCardDialog)[-1].isVisible()


def test_a_new_provider_restarts_a_camera_on_the_same_device_with_its_history(
    qtbot, main_window, grid_clip, monkeypatch, landmarker
):
    from lipreader_app.live_state import Utterance

    FakeCamera.clip, FakeCamera.opened = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.CameraSource", FakeCamera)
    assert main_window.start_camera(5)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=10_000)
    main_window.state.history.append(Utterance(0.0, 0.1, "said before"))
    before = main_window.state.position
    prefs = dataclasses.replace(main_window.prefs, provider="cpu")  # "auto" before: reloads the model
    main_window.apply_preferences(prefs)
    assert len(FakeCamera.opened) == 2 and FakeCamera.opened[0]._stopped
    assert main_window.source is FakeCamera.opened[1] and main_window.source.device == 5
    assert main_window.stream.running and main_window.status.field_texts()["source"].startswith("camera 5")
    assert [u.text for u in main_window.state.history][:1] == ["said before"]
    assert main_window.state.offset >= before  # its clock runs on: later words come after the history's
    main_window.stop_stream()


def test_a_model_dropped_on_the_window_loads_whatever_the_case_of_its_suffix(
    qtbot, main_window, tiny_model, tmp_path
):
    shouting = tmp_path / "TINY.ONNX"
    shouting.write_bytes(tiny_model.read_bytes())
    drop(main_window, shouting)
    qtbot.waitUntil(lambda: main_window.status.field_texts()["model"] == "model TINY.ONNX", timeout=2000)
    assert main_window.errors == [] and main_window.video_path is None


def test_a_source_or_a_job_that_works_takes_down_the_errors_it_makes_stale(
    qtbot, main_window, tmp_path, monkeypatch
):
    from core.captioning import Transcript
    from core.video import VideoError

    def no_captions(source, engine, **kwargs):
        yield from ()

    monkeypatch.setattr("lipreader_app.workers.iter_captions", no_captions)
    assert not main_window.open_video(tmp_path)  # a folder
    assert "it is a folder" in main_window.banner.text and "it is a folder" in main_window.status.message
    clip = write_video(tmp_path / "fine.avi", noise_frames(5), 25.0)
    with qtbot.waitSignal(main_window.stream_ended, timeout=5000):
        assert main_window.open_video(clip)
    assert main_window.banner.kind != "error" and main_window.status.message == ""

    def caption_video(path, engine, **kwargs):
        if path.name == "noface.avi":
            raise VideoError(f"cannot caption video {path}: no face found in 5 frames")
        time.sleep(0.3)
        return Transcript("", (), "CPUExecutionProvider", 0.1, 0.2, 1.0)

    monkeypatch.setattr("lipreader_app.workers.caption_video", caption_video)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=5000):
        main_window.caption_video(tmp_path / "noface.avi")
    assert "no face found" in main_window.banner.text and "no face found" in main_window.status.message
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=5000):
        main_window.caption_video(clip)
        assert not main_window.caption_video(clip)  # one at a time
        assert "already being captioned" in main_window.status.message
    assert main_window.banner.kind != "error" and main_window.status.message == ""
    main_window.offline.review.close()


def test_a_truncated_file_says_so_when_it_ends(qtbot, main_window, tmp_path, monkeypatch):
    from tests.test_app_workers import read_source_only, write_truncated_video

    monkeypatch.setattr("lipreader_app.workers.iter_captions", read_source_only)
    clip = write_truncated_video(tmp_path / "cut.avi")
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        assert main_window.open_video(clip)
    assert main_window.banner.kind == "warning" and "ended after 23 of 75 frames" in main_window.banner.text
    assert main_window.errors == []
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):  # a whole file: the warning goes
        assert main_window.open_video(write_video(tmp_path / "whole.avi", noise_frames(5), 25.0))
    assert "ended after" not in main_window.banner.text


def test_a_camera_that_never_opened_leaves_no_source_and_one_line_in_the_log(
    qtbot, main_window, caplog, landmarker, monkeypatch
):
    monkeypatch.setattr(CameraSource, "missing", lambda self: None)
    with qtbot.waitSignal(main_window.stream_ended, timeout=10_000):
        main_window.start_camera(57)
    assert "cannot open camera 57" in main_window.banner.text
    assert main_window.status.field_texts()["source"] == "no source"
    assert main_window.windowTitle() == "LipReader"
    logged = [r for r in caplog.records if "cannot open camera 57" in r.getMessage()]
    assert len(logged) == 1


def slow_captions(source, engine, **kwargs):
    """Stands in for iter_captions: reads the source as it plays, runs no model, yields nothing."""
    for _ in source:
        time.sleep(0.02)
    yield from ()


def test_a_model_the_preferences_do_not_fit_leaves_the_old_one_captioning(
    qtbot, main_window, onnx_factory, tiny_model, tmp_path, monkeypatch
):
    from core.contract import DecoderSettings
    from tests.conftest import tiny_contract

    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    main_window.apply_preferences(dataclasses.replace(main_window.prefs, decoder="grammar"))
    beam = onnx_factory("beam.onnx", tiny_contract(decoder=DecoderSettings(kind="beam")).to_json())
    assert main_window.open_video(write_video(tmp_path / "long.avi", noise_frames(250), 25.0))
    worker = main_window.stream._worker
    vocabularies = []
    monkeypatch.setattr(main_window.state, "set_vocabulary", lambda *args: vocabularies.append(args))
    assert not main_window.load_model(beam, remember=True)  # no grammar in it
    assert main_window.banner.kind == "error" and main_window.errors[-1] == main_window.banner.text
    assert "beam.onnx" in main_window.banner.text and "grammar" in main_window.banner.text
    assert main_window.model.path == tiny_model and worker.engine.model is main_window.model
    assert main_window.status.field_texts()["model"] == f"model {tiny_model.name}"
    assert main_window.stream.running and main_window.stream._worker is worker  # it reads on
    assert vocabularies == [] and load_preferences(main_window.settings).model_path == ""
    main_window.stop_stream()


def test_a_model_loaded_while_a_video_plays_that_cannot_play_on_stops_it(
    qtbot, main_window, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    clip = write_video(tmp_path / "gone.avi", noise_frames(250), 25.0)
    assert main_window.open_video(clip)
    clip.unlink()  # read on from the file open; playing it on from where it was cannot open it
    assert main_window.load_model(tiny_model)
    assert "gone.avi: no such file" in main_window.banner.text
    assert not main_window.stream.running and main_window.status.field_texts()["source"] == "no source"


def test_a_hop_over_the_models_own_window_is_refused_and_the_preferences_kept(main_window):
    before = main_window.prefs
    main_window.apply_preferences(dataclasses.replace(before, hop=500))
    assert main_window.banner.text == "hop 500 is more than the model's window of 75 frames"
    assert main_window.prefs == before and load_preferences(main_window.settings) == before
    main_window.prefs = dataclasses.replace(before, hop=100)  # stored before the model was loaded
    assert main_window.make_engine() is None
    assert (
        main_window.errors[-1]
        == "cannot start captioning: hop 100 is more than the model's window of 75 frames"
    )


def test_an_unreadable_video_file_shows_one_line_naming_it(main_window, tmp_path, monkeypatch):
    clip = tmp_path / "locked.mp4"

    def unreadable(path, realtime=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("lipreader_app.playback.VideoFileSource", unreadable)
    assert not main_window.open_video(clip)
    assert main_window.banner.text == f"cannot read video {clip}: Permission denied"
    assert not main_window.stream.running


def test_a_camera_shows_a_disabled_transport_bar_offering_play(qtbot, main_window, grid_clip, monkeypatch):
    FakeCamera.clip, FakeCamera.opened = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.CameraSource", FakeCamera)
    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    assert main_window.start_camera(0)
    assert not main_window.transport.isEnabled() and main_window.transport.paused
    QTest.keyClick(main_window, Qt.Key.Key_Space)  # nothing to pause
    assert not main_window.stream.paused and main_window.transport.paused
    main_window.stop_stream()


def recent_entries(window: MainWindow) -> list[tuple[str, bool]]:
    """File ▸ Open Recent as it shows when opened: (text, enabled) of each entry, separators left out."""
    window.recent_menu.aboutToShow.emit()
    return [(a.text(), a.isEnabled()) for a in window.recent_menu.actions() if not a.isSeparator()]


def test_open_recent_lists_the_videos_opened_last_newest_first_at_the_next_start(
    qtbot, main_window, app_settings, tiny_model, tmp_path, monkeypatch
):
    from lipreader_app.settings import RECENT_MAX

    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    videos = [write_video(tmp_path / f"clip{i}.avi", noise_frames(5), 25.0) for i in range(RECENT_MAX + 2)]
    assert recent_entries(main_window) == [("No recent videos", False), ("&Clear Menu", False)]
    assert "Open &Recent" in [a.text() for a in main_window.menuBar().actions()[0].menu().actions()]
    monkeypatch.chdir(tmp_path)
    assert main_window.open_video("clip0.avi")  # as `lipreader gui --video clip0.avi`: known absolute
    monkeypatch.setattr(main_window, "_ask_path", lambda title, filter: str(videos[1]))
    main_window.open_action.trigger()  # File ▸ Open video…
    drop(main_window, videos[2])
    qtbot.waitUntil(lambda: main_window.video_path == videos[2], timeout=2000)
    for video in videos[3:]:
        assert main_window.open_video(video)
    assert main_window.open_video(videos[5])  # again: it moves to the top, once
    main_window.seek(0.1)  # a seek opens nothing new
    assert not main_window.open_video(tmp_path / "missing.avi")  # not played: not listed
    main_window.close()
    again = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(again)
    assert again.load_model(tiny_model)
    newest = [videos[5], videos[9], videos[8], videos[7], videos[6], videos[4], videos[3], videos[2]]
    assert len(newest) == RECENT_MAX  # clip0 and clip1, the oldest, fell off the end
    expected = [(f"&{n} {v.name}", True) for n, v in enumerate(newest, 1)]
    assert recent_entries(again) == [*expected, ("&Clear Menu", True)]
    opened = []
    monkeypatch.setattr(again.playback, "open_video", lambda *args: opened.append(args) or True)
    again.recent_menu.actions()[2].trigger()  # clip8: through File ▸ Open's path
    assert opened == [(videos[8], 0.0, False, None)]
    again.close()


def test_open_recent_takes_off_a_video_that_no_longer_exists_and_clear_empties_it(
    qtbot, main_window, app_settings, tmp_path, monkeypatch
):
    from lipreader_app.settings import load_recent_videos

    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    kept, gone = (write_video(tmp_path / f"{name}.avi", noise_frames(5), 25.0) for name in ("kept", "gone"))
    (tmp_path / "other").mkdir()
    same_name = write_video(tmp_path / "other" / "kept.avi", noise_frames(5), 25.0)
    for video in (kept, gone, same_name):
        assert main_window.open_video(video)
    main_window.stop_stream()
    assert [text for text, _ in recent_entries(main_window)][:3] == [
        f"&1 kept.avi ({same_name.parent})",  # two of the same name: their folders tell them apart
        "&2 gone.avi",
        f"&3 kept.avi ({tmp_path})",
    ]
    menu = main_window.recent_menu.actions()
    gone.unlink()  # while the menu is open
    menu[1].trigger()
    assert main_window.banner.text == f"video {gone} no longer exists: taken off File ▸ Open Recent"
    assert main_window.errors == [] and not main_window.stream.running
    assert load_recent_videos(app_settings) == [same_name, kept]
    same_name.unlink()
    assert recent_entries(main_window)[:2] == [
        (f"&1 kept.avi ({same_name.parent})", False),  # shown disabled
        (f"&2 kept.avi ({tmp_path})", True),
    ]
    assert main_window.recent_menu.actions()[0].toolTip() == f"{same_name} no longer exists"
    main_window.recent_menu.actions()[-1].trigger()  # Clear Menu
    assert recent_entries(main_window) == [("No recent videos", False), ("&Clear Menu", False)]
    assert load_recent_videos(app_settings) == []


def test_arrow_keys_seek_5_s_in_a_paused_file_as_the_seek_bar_does_but_not_in_a_text_field(
    qtbot, main_window, tmp_path, landmarker, monkeypatch
):
    from PySide6.QtWidgets import QLineEdit

    clip = write_video(tmp_path / "ten.avi", noise_frames(250), 25.0)  # 10 s
    sought, seek = [], main_window.playback.seek
    monkeypatch.setattr(
        main_window.playback, "seek", lambda s, engine=None: sought.append(s) or seek(s, engine)
    )
    transport = main_window.transport
    assert not main_window.sources.forward_action.isEnabled()  # no source: nothing to seek
    assert main_window.sources.forward_action.shortcut().toString() == "Right"  # shown in Source's menu
    assert main_window.sources.back_action.shortcut().toString() == "Left"
    assert main_window.open_video(clip)
    qtbot.waitUntil(lambda: main_window.state.frames_processed > 3, timeout=10_000)
    main_window.toggle_pause()
    at = main_window.state.position
    QTest.keyClick(main_window, Qt.Key.Key_Right)
    assert sought == [pytest.approx(at + 5.0)] and transport.paused
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)  # once the frame there is shown
    assert at + 5.0 <= main_window.state.position < at + 5.3
    assert transport._time.text() == "0:05 / 0:10" and transport.paused
    history = main_window.captions._history  # the history list has the focus: the arrows still seek
    history.setFocus()
    QTest.keyClick(history, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)
    assert main_window.state.position < 0.4 and transport._time.text() == "0:00 / 0:10"
    QTest.keyClick(history, Qt.Key.Key_Left)
    assert sought[-1] == 0.0  # not before the start
    qtbot.waitUntil(lambda: main_window.stream.paused, timeout=10_000)
    QTest.keyClick(history, Qt.Key.Key_Space)  # Space still plays
    assert not main_window.stream.paused and not transport.paused
    main_window.seek(8.0)
    QTest.keyClick(main_window, Qt.Key.Key_Right)
    assert sought[-1] == main_window.playback.duration == pytest.approx(10.0)  # not past the end
    field = QLineEdit("abc")  # a text field keeps its arrows
    main_window.statusBar().addWidget(field)
    field.setFocus()
    field.setCursorPosition(0)
    QTest.keyClick(field, Qt.Key.Key_Right)
    assert field.cursorPosition() == 1 and len(sought) == 5


def test_arrow_keys_and_pause_do_nothing_with_a_camera(qtbot, main_window, grid_clip, monkeypatch):
    FakeCamera.clip, FakeCamera.opened = grid_clip[0], []
    monkeypatch.setattr("lipreader_app.playback.CameraSource", FakeCamera)
    monkeypatch.setattr("lipreader_app.workers.iter_captions", slow_captions)
    sought = []
    monkeypatch.setattr(main_window.playback, "seek", lambda *args: sought.append(args) or True)
    assert not main_window.sources.pause_action.isEnabled()  # nothing plays
    assert main_window.open_video(grid_clip[0]) and main_window.sources.pause_action.isEnabled()
    assert main_window.start_camera(0)
    assert (
        not main_window.sources.back_action.isEnabled() and not main_window.sources.forward_action.isEnabled()
    )
    assert not main_window.sources.pause_action.isEnabled()  # a camera cannot pause
    for key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
        QTest.keyClick(main_window, key)
    assert not main_window.seek_by(5.0) and sought == []
    assert main_window.source is FakeCamera.opened[0] and len(FakeCamera.opened) == 1
    assert main_window.stream.running
    main_window.stop_stream()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_arrow_keys_leave_a_file_of_unknown_length_where_it_plays(qtbot, main_window, grid_clip, tmp_path):
    """A Matroska file written to a pipe (as a live recording is) declares no length: the seek bar
    is off, and so are the arrows, which would otherwise clamp every seek to 0 and restart it."""
    video = tmp_path / "piped.mkv"
    made = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(grid_clip[0]), "-an", "-c:v", "mpeg4", "-f", "matroska"]
        + ["-"],
        capture_output=True,
        check=True,
    )
    video.write_bytes(made.stdout)
    assert main_window.open_video(video) and main_window.playback.duration == 0
    qtbot.waitUntil(lambda: main_window.state.position > 0.5, timeout=20_000)
    assert (
        not main_window.sources.back_action.isEnabled() and not main_window.sources.forward_action.isEnabled()
    )
    QTest.keyClick(main_window, Qt.Key.Key_Right)
    assert not main_window.seek_by(5.0)
    assert main_window.state.position > 0.5  # played on, not sent back to the start
    main_window.stop_stream()
