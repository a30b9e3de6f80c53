"""The "Adapt to my face" dialog, fed Delivered updates as the main window's live stream gives them."""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, Signal

from core.recording import MANIFEST, MAX_TAKE_FRAMES, TakeRecorder
from core.types import Frame, TrackStatus
from core.video import VideoFileSource
from lipreader_app import adapt
from lipreader_app.adapt import (
    CHANGE_FOLDER,
    CLOSED,
    MIN_TAKES_TO_TRAIN,
    NO_SOURCE,
    NOT_CAMERA,
    PAUSED,
    RECOMMENDED_TAKES,
    AdaptDialog,
)
from lipreader_app.adapt_take import JUMPED
from lipreader_app.live_state import Delivered

pytestmark = pytest.mark.usefixtures("gui_gc")


class Source(QObject):
    """Stands in for LiveStream: what the dialog is connected to."""

    delivered = Signal(object)


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def dialog(qtbot, source: Source, tmp_path: Path) -> AdaptDialog:
    made = AdaptDialog(source.delivered, folder=tmp_path / "takes")
    qtbot.addWidget(made)
    made.show()
    return made


@pytest.fixture
def feed(source: Source, make_update):
    """feed(indices, stream=1, missing=(), idle=False): the live updates of those frames (of a 288x360
    picture), the face not found in those `missing`."""

    def send(indices, stream: int = 1, missing=(), idle: bool = False) -> None:
        for i in indices:
            update = make_update(i, status=TrackStatus.MISSING if i in missing else TrackStatus.TRACKED)
            if idle:
                update = dataclasses.replace(update, idle=True)
            source.delivered.emit(Delivered(update, time.monotonic(), i / 25, stream))

    return send


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def read_back(path: Path) -> list[Frame]:
    return [f for f in VideoFileSource(path) if isinstance(f, Frame)]


def test_a_take_is_written_with_its_manifest_row_and_the_next_sentence_shown(dialog, feed):
    folder = dialog.folder
    first = dialog.sentences[0]
    assert dialog.sentence_label.text() == first
    assert dialog.counter_label.text() == f"0 of {RECOMMENDED_TAKES} recorded"
    feed([0])  # the camera is running
    assert dialog.record()
    assert dialog.record_button.text() == "■ Stop"
    feed(range(1, 61))
    assert dialog.recording_label.text() == "● Recording 2.4 s"
    dialog.stop()
    assert rows(folder) == [{"video": "take0001.mp4", "transcript": first, "speaker": "me"}]
    assert len(read_back(folder / "take0001.mp4")) == 60
    assert dialog.message_label.text() == "Kept as take0001.mp4."
    assert dialog.sentence_label.text() == dialog.sentences[1]
    assert dialog.counter_label.text() == f"1 of {RECOMMENDED_TAKES} recorded"
    assert dialog.recording_label.text() == "" and dialog.record_button.text() == "● Record"


def test_only_a_camera_is_recorded(qtbot, source, feed, tmp_path):
    """A file playing is not the user reading the sentence shown: its take would be mislabelled."""
    camera = [False]
    made = AdaptDialog(source.delivered, folder=tmp_path / "takes", camera=lambda: camera[0])
    qtbot.addWidget(made)
    feed([0])
    assert not made.record() and made.message_label.text() == NOT_CAMERA
    camera[0] = True
    feed([1])
    assert made.record()


def test_a_folder_that_cannot_be_written_is_said_at_record(dialog, feed, tmp_path):
    (tmp_path / "file").write_text("")
    dialog.set_folder(tmp_path / "file" / "takes")  # under a file: never a folder
    feed([0])
    assert not dialog.record() and not dialog.recording
    assert "Cannot save takes in" in dialog.message_label.text()
    assert dialog.message_label.text().endswith(CHANGE_FOLDER)


def test_recording_without_a_source_playing_says_so(dialog, feed):
    assert not dialog.record()
    assert dialog.message_label.text() == NO_SOURCE and not dialog.recording
    feed([5, 5], idle=True)  # a paused file
    assert not dialog.record()
    assert dialog.message_label.text() == PAUSED


def test_a_take_with_the_face_missing_is_refused_with_its_reason(dialog, feed):
    folder, first = dialog.folder, dialog.sentences[0]
    feed([0])
    dialog.record()
    feed(range(1, 41), missing=range(10, 20))  # found on 30 of 40 frames
    dialog.stop()
    assert dialog.message_label.text().startswith("Not kept. The face was found on only 75% of the frames")
    assert not dialog.recording and dialog.sentence_label.text() == first  # to be read again
    assert list(folder.iterdir()) == []
    dialog.skip()
    feed([41])
    dialog.redo()  # the sentence refused, again
    assert dialog.recording and dialog.sentence_label.text() == first
    feed(range(42, 82))
    dialog.stop()
    assert [r["transcript"] for r in rows(folder)] == [first]


def test_a_take_too_short_for_its_sentence_is_refused(dialog, feed):
    feed([0])
    dialog.record()
    feed(range(1, 11))
    dialog.stop()
    assert "Not kept. Too short: 0.4 s is less than the sentence needs" in dialog.message_label.text()
    assert not dialog.folder.exists() or list(dialog.folder.iterdir()) == []


def test_a_take_running_past_what_training_takes_stops_and_is_refused(dialog, feed):
    feed([0])
    dialog.record()
    feed(range(1, MAX_TAKE_FRAMES + 1))
    assert dialog.recording  # the longest take kept
    feed([MAX_TAKE_FRAMES + 1])
    assert not dialog.recording
    assert "Not kept. Too long" in dialog.message_label.text()
    feed(range(MAX_TAKE_FRAMES + 2, MAX_TAKE_FRAMES + 10))  # frames after the take are not recorded
    assert list(dialog.folder.iterdir()) == []


@pytest.mark.parametrize(
    "after",
    [
        dict(indices=range(31, 60)),  # a frame missing: a seek
        dict(indices=range(0, 30)),  # back to the start
        dict(indices=range(30, 60), stream=2),  # another stream (a seek, another source)
    ],
)
def test_a_jump_mid_take_discards_it(dialog, feed, after):
    feed(range(0, 5))
    dialog.record()
    feed(range(5, 30))
    feed(**after)
    assert not dialog.recording
    assert dialog.message_label.text() == JUMPED
    assert list(dialog.folder.iterdir()) == []
    assert dialog.sentence_label.text() == dialog.sentences[0]


def test_a_take_is_what_was_captured_between_record_and_stop_however_late_it_comes(
    dialog, source, make_update, monkeypatch
):
    """Updates come a stream's lag after their frames were captured (MediaPipe and the model: 1.5 s
    on 2 busy cores): a take is the frames captured between Record and Stop, the last words read
    before Stop too, not those delivered between them."""
    clock = [1000.0]
    monkeypatch.setattr(adapt, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    lag = 12.5 / 25

    def play(indices) -> None:
        for i in indices:
            clock[0] += 1 / 25
            source.delivered.emit(Delivered(make_update(i), clock[0] - lag, i / 25, 1))

    play(range(10))
    assert dialog.record()  # frames 10-21, captured before it, come after it
    play(range(10, 60))
    dialog.stop()  # frames 60-71, captured before it, come after it
    assert dialog.recording
    play(range(60, 80))
    assert not dialog.recording and dialog.message_label.text() == "Kept as take0001.mp4."
    read = read_back(dialog.folder / "take0001.mp4")
    assert len(read) == 50
    assert abs(read[0].image.mean() - 22) < 6 and abs(read[-1].image.mean() - 71) < 6  # not 10, 59

    play(range(80, 90))
    assert dialog.record()
    play(range(90, 150))
    dialog.stop()
    paused = Delivered(dataclasses.replace(make_update(149), idle=True), clock[0] - lag, 149 / 25, 1)
    source.delivered.emit(paused)  # nothing more is coming: the take ends with what it has
    assert not dialog.recording and dialog.message_label.text() == "Kept as take0002.mp4."
    play(range(150, 160))
    assert dialog.record()
    play(range(160, 220))
    dialog.stop()
    dialog.stop()  # pressed again: at once
    assert not dialog.recording and dialog.message_label.text() == "Kept as take0003.mp4."


def test_idle_updates_of_a_paused_file_are_not_recorded(dialog, feed):
    feed(range(0, 6))
    feed([5] * 3, idle=True)  # paused: the last frame again, not a new one
    dialog.record()
    feed([5] * 3, idle=True)
    feed(range(6, 26))  # played
    feed([25] * 5, idle=True)  # paused
    feed([25])  # a stream's closing update repeats its last frame
    feed(range(26, 46))  # played on
    dialog.stop()
    assert len(read_back(dialog.folder / "take0001.mp4")) == 40


def test_space_and_r_start_and_stop_a_take(qtbot, dialog, feed):
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    dialog.skip_button.setFocus()  # a focused button does not take the Space for itself
    feed([0])
    qtbot.keyClick(dialog.skip_button, Qt.Key.Key_Space)  # where a key pressed goes
    assert dialog.recording
    feed(range(1, 41))
    qtbot.keyClick(dialog, Qt.Key.Key_R)
    assert not dialog.recording and (dialog.folder / "take0001.mp4").is_file()
    assert dialog.sentence_label.text() == dialog.sentences[1]  # Skip was not pressed


def test_back_skip_and_reopening_keep_the_place(qtbot, dialog, feed, source, tmp_path):
    dialog.skip()
    dialog.skip()
    assert dialog.sentence_label.text() == dialog.sentences[2]
    dialog.back()
    assert (
        dialog.sentence_label.text() == dialog.sentences[1] and dialog.position_label.text() == "Sentence 2"
    )
    feed([0])
    dialog.record()
    feed(range(1, 20))
    dialog.close()  # mid-take: the take goes
    assert not dialog.recording and dialog.message_label.text() == CLOSED
    assert list(dialog.folder.iterdir()) == []
    dialog.show()
    assert dialog.sentence_label.text() == dialog.sentences[1]
    feed([30])
    dialog.record()
    feed(range(31, 71))
    dialog.stop()
    # a new dialog on the folder (the app started again) goes on with the first sentence not recorded
    again = AdaptDialog(source.delivered, folder=dialog.folder)
    qtbot.addWidget(again)
    assert again.sentence_label.text() == again.sentences[0]
    again.skip()
    assert again.position_label.text().startswith("Sentence 2 · recorded ✓")


def test_train_is_offered_once_enough_takes_are_recorded(qtbot, source, tmp_path):
    folder = tmp_path / "takes"
    dialog = AdaptDialog(source.delivered, folder=folder)
    qtbot.addWidget(dialog)
    for sentence in dialog.sentences[: MIN_TAKES_TO_TRAIN - 1]:
        recorder = TakeRecorder(folder, sentence)
        for _ in range(30):
            recorder.add(np.zeros((64, 96, 3), np.uint8))
        recorder.keep()
    dialog.refresh()
    assert not dialog.train_button.isEnabled()
    assert dialog.sentence_label.text() == dialog.sentences[MIN_TAKES_TO_TRAIN - 1]
    recorder = TakeRecorder(folder, dialog.sentences[MIN_TAKES_TO_TRAIN - 1])
    recorder.add(np.zeros((64, 96, 3), np.uint8))
    recorder.keep()
    dialog.refresh()
    assert dialog.train_button.isEnabled()
    with qtbot.waitSignal(dialog.train_requested) as requested:
        dialog.train_button.click()
    assert requested.args == [folder / MANIFEST]


def test_the_folder_chosen_is_remembered(qtbot, source, tmp_path, app_settings):
    dialog = AdaptDialog(source.delivered, settings=app_settings)
    qtbot.addWidget(dialog)
    assert dialog.folder.name == "adapt"  # in the app's data folder
    dialog.set_folder(tmp_path / "mine")
    again = AdaptDialog(source.delivered, settings=app_settings)
    qtbot.addWidget(again)
    assert again.folder == tmp_path / "mine" and again.folder_label.text() == str(tmp_path / "mine")


def test_a_real_clip_through_the_front_end_is_kept_and_prepares(
    qtbot, source, tmp_path, grid_clip, landmarker
):
    """Frames and face flags from core's front end on a GRID clip: the take is kept and reads back as
    the clip, and training's front end finds the face on it as on the clip."""
    from core.crop import CropSpec
    from core.frontend import MIN_FACE_RATIO, FrontEnd, extract_clip
    from core.streaming import LiveUpdate
    from core.video import resample

    video, _ = grid_clip
    dialog = AdaptDialog(source.delivered, folder=tmp_path / "takes")
    qtbot.addWidget(dialog)
    with FrontEnd(CropSpec()) as front:
        updates = []
        for frame in front.upright.frames(resample(iter(VideoFileSource(video)), 25.0)):
            crop = front(frame)
            updates.append(LiveUpdate(frame, crop, (), (), False, None, {}, 1))
    deliver = lambda u: Delivered(u, time.monotonic(), u.frame.timestamp, 1)  # noqa: E731 (captured now)
    source.delivered.emit(deliver(updates[0]))
    assert dialog.record()
    for u in updates[1:]:
        source.delivered.emit(deliver(u))
    dialog.stop()
    assert dialog.message_label.text() == "Kept as take0001.mp4.", dialog.message_label.text()
    take = dialog.folder / "take0001.mp4"
    read = read_back(take)
    assert len(read) == len(updates) - 1
    assert np.abs(read[30].image.astype(int) - updates[31].frame.image).mean() < 8
    assert extract_clip(take, CropSpec()).face_ratio >= MIN_FACE_RATIO


def test_space_in_the_dialog_over_the_main_window_records_and_does_not_pause(qtbot, main_window, tmp_path):
    """Opened from the main window's menu: its live stream's updates, its model's frame rate."""
    window = main_window
    paused = []
    window.sources.pause_action.triggered.connect(lambda: paused.append(True))
    (action,) = [a for a in window.menuBar().actions() if a.text() == "&Model"][0].menu().actions()[-1:]
    assert action.text() == "&Adapt to my face…"
    action.trigger()
    dialog = window.adapting.dialog
    assert dialog.isVisible() and dialog.fps == window.model.contract.fps
    dialog.set_folder(tmp_path / "takes")
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    assert dialog.message_label.text() == NO_SOURCE  # nothing plays in the window
    assert not paused
    dialog.close()


def test_a_long_message_grows_the_dialog_and_hides_nothing(qtbot, dialog):
    """The no-PyTorch message gives two commands: it wraps over lines, and the sentence and the
    buttons keep their room."""
    qtbot.waitExposed(dialog)
    before = dialog.height()
    dialog.say("adapting needs torch and onnx (the train extra): " + "a long command " * 30, error=True)
    qtbot.waitUntil(lambda: dialog.height() > before)
    sentence, message = dialog.sentence_label.geometry(), dialog.message_label.geometry()
    assert sentence.height() >= dialog.sentence_label.minimumHeight()
    assert sentence.bottom() < dialog.position_label.geometry().top()
    assert message.bottom() < dialog.back_button.geometry().top()
    assert message.height() >= 3 * dialog.message_label.fontMetrics().height()
