"""File ▸ Caption video…: background captioning with progress and cancel, review and export."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QPushButton

from lipreader_app.review_dialog import CaptionReviewDialog

pytestmark = pytest.mark.usefixtures("gui_gc")


@pytest.fixture
def ask_for(main_window, monkeypatch):
    """Answer the next file dialog with a path instead of showing it."""

    def answer(path):
        monkeypatch.setattr(main_window, "_ask_path", lambda title, filter: str(path))

    return answer


def test_caption_from_the_menu_then_export_subtitles(
    qtbot, main_window, ask_for, grid_clip, landmarker, tmp_path
):
    video, _ = grid_clip
    ask_for(video)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000) as ended:
        main_window.caption_action.trigger()
        assert main_window.offline.busy and main_window.offline.progress.isVisible()
    assert ended.args == ["done"]
    assert main_window.offline.progress is None  # closed
    review = main_window.offline.review
    assert isinstance(review, CaptionReviewDialog) and review.isVisible()
    transcript = main_window.offline.transcripts[video]
    assert review.cue_list.count() == len(main_window.offline.cues_for(video))
    srt = review.export(tmp_path / "clip.srt")
    vtt = review.export(tmp_path / "clip.vtt")
    txt = review.export(tmp_path / "clip.txt")
    if transcript.words:
        assert "-->" in srt.read_text() and vtt.read_text().startswith("WEBVTT")
        assert txt.read_text().split() == transcript.text.split()
        # clicking a cue plays the video from there, with the offline subtitles shown over it
        review.cue_list.itemClicked.emit(review.cue_list.item(0))
        assert main_window.video_path == video and main_window.stream.running
        assert main_window.video_view._cues == main_window.offline.cues_for(video)
    else:  # the tiny model may decode nothing: the files are still valid
        assert srt.read_text() == "" and vtt.read_text().startswith("WEBVTT")
    with pytest.raises(ValueError, match="unknown format"):
        review.export(tmp_path / "clip.doc")


def test_caption_export_writes_cues_of_the_words(qtbot, main_window, tmp_path):
    from core.captioning import Transcript
    from core.streaming import CaptionWord

    words = tuple(
        CaptionWord(w, i * 0.4, i * 0.4 + 0.3, True) for i, w in enumerate("bin blue at f two now".split())
    )
    transcript = Transcript(" ".join(w.text for w in words), words, "CPUExecutionProvider", 1.0, 3.0, 1.0)
    review = CaptionReviewDialog(tmp_path / "v.mp4", transcript, main_window)
    assert review.cue_list.count() == 1 and "bin blue at f two now" in review.cue_list.item(0).text()
    text = review.export(tmp_path / "v.srt").read_text()
    assert text.startswith("1\n00:00:00,000 --> 00:00:02,300\nbin blue at f two now")
    seeks = []
    review.seek_requested.connect(seeks.append)
    review.cue_list.itemClicked.emit(review.cue_list.item(0))
    assert seeks == [0.0]


def test_cancel_stops_the_captioning(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000) as ended:
        assert main_window.caption_video(video)
        main_window.offline.progress.findChild(QPushButton).click()  # the dialog's Cancel button
    assert ended.args == ["cancelled"]
    assert main_window.offline.review is None and video not in main_window.offline.transcripts
    assert not main_window.offline.busy


def test_escape_on_the_progress_dialog_cancels_rather_than_hiding_a_job_that_runs_on(
    qtbot, main_window, grid_clip, landmarker
):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    video, _ = grid_clip
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000) as ended:
        assert main_window.caption_video(video)
        QTest.keyClick(main_window.offline.progress, Qt.Key.Key_Escape)
    assert ended.args == ["cancelled"]
    assert main_window.offline.review is None and not main_window.offline.busy


def test_captioning_a_bad_file_shows_a_message(qtbot, main_window, tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 1000)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=10_000) as ended:
        main_window.caption_video(bad)
    assert ended.args == ["failed"]
    assert main_window.banner.kind == "error" and "bad.avi" in main_window.banner.text


def test_one_job_at_a_time(qtbot, main_window, grid_clip, landmarker):
    video, _ = grid_clip
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=20_000):
        assert main_window.caption_video(video)
        assert not main_window.caption_video(video)
        assert "already being captioned" in main_window.banner.text
        main_window.offline.cancel()
    assert main_window.banner.text == ""  # the job ended: the refusal no longer applies


def test_a_reading_without_words_says_why_once_and_offers_no_export(
    qtbot, main_window, tmp_path, monkeypatch
):
    import logging

    from core.captioning import Transcript

    warning = f"video {tmp_path / 'cut.avi'} ended after 23 of 75 frames (truncated?)"

    def caption_video(path, engine, **kwargs):
        logging.getLogger("lipreader").warning("%s", warning)  # logged as it is found...
        return Transcript("", (), "CPUExecutionProvider", 0.1, 0.9, 1.0, (warning,))  # ...and returned

    monkeypatch.setattr("lipreader_app.workers.caption_video", caption_video)
    shown = []
    main_window.offline.warned.connect(shown.append)
    with qtbot.waitSignal(main_window.offline.job_ended, timeout=5000) as ended:
        main_window.caption_video(tmp_path / "cut.avi")
    assert ended.args == ["done"] and shown == [warning]  # once
    assert main_window.banner.kind == "warning" and "truncated?" in main_window.banner.text
    review = main_window.offline.review
    assert review.status_text == f"No words were read in 0.9 s of video. {warning}."
    assert not any(b.isEnabled() for b in review.export_buttons)
    review.close()
