"""Background workers: the live stream worker and offline captioning job, in real QThreads."""

from __future__ import annotations

import logging
import sys
import time

import pytest
from PySide6.QtCore import QObject, Signal

from core.engine import CaptionEngine
from core.inference import LipModel
from core.types import Idle
from core.video import CameraSource, VideoFileSource
from lipreader_app.live_state import Delivered
from lipreader_app.workers import CaptionJob, LiveStream, LiveWorker, error_message, start_in_thread

pytestmark = pytest.mark.usefixtures("gui_gc")


@pytest.fixture(scope="module")
def tiny_lip_model(tiny_model):
    return LipModel.load(tiny_model, "cpu", threads=1)


def run_worker(qtbot, worker, timeout_ms: int = 20_000):
    """Start `worker` in a QThread, wait for `finished`; returns what it emitted."""
    got = {"update": [], "warned": [], "errored": []}
    for name, items in got.items():
        if hasattr(worker, name):
            getattr(worker, name).connect(items.append)
    with qtbot.waitSignal(worker.finished, timeout=timeout_ms):
        thread = start_in_thread(worker, None)
    thread.quit()
    assert thread.wait(5000)
    return got


def test_pyside_does_not_leak_references_to_none_and_true(qtbot):
    """PySide6 6.12.0 drops a reference to True per emit() and to None per void call on Python < 3.12,
    which kills the app after a few seconds of video ("deallocating True or False")."""

    class Emitter(QObject):
        ping = Signal(object)

    emitter = Emitter()
    emitter.ping.connect(lambda value: None)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.ping.emit(1)
        emitter.setObjectName("x")
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert after[0] >= before[0] - 5 and after[1] >= before[1] - 5, (before, after)


def test_live_worker_emits_one_update_per_frame(qtbot, grid_clip, landmarker, tiny_lip_model):
    video, _ = grid_clip
    worker = LiveWorker(VideoFileSource(video), CaptionEngine(tiny_lip_model), offset=1.0, stream=7)
    got = run_worker(qtbot, worker)
    updates = got["update"]
    assert got["errored"] == []
    assert 75 <= len(updates) <= 77  # 75 frames + the closing update
    assert all(isinstance(d, Delivered) and d.stream == 7 for d in updates)
    assert updates[10].position == pytest.approx(1.0 + 10 / 25)
    assert sum(d.update.crop.landmarks is not None for d in updates) > 60
    assert sum(d.update.probs is not None for d in updates) >= 6  # hop 10 over 75 frames
    captured = [d.captured for d in updates[:75]]
    assert captured == sorted(captured)


def test_live_worker_stops_promptly_even_when_paused(qtbot, grid_clip, landmarker, tiny_lip_model):
    video, _ = grid_clip
    worker = LiveWorker(VideoFileSource(video, realtime=True), CaptionEngine(tiny_lip_model))
    updates = []
    worker.update.connect(updates.append)
    thread = start_in_thread(worker, None)
    qtbot.waitUntil(lambda: len(updates) >= 3, timeout=10_000)
    worker.pause()
    assert worker.paused
    qtbot.wait(200)
    started = time.monotonic()
    with qtbot.waitSignal(worker.finished, timeout=3000):
        worker.stop()
    assert time.monotonic() - started < 1.5
    thread.quit()
    assert thread.wait(2000)
    assert len(updates) < 40


@pytest.mark.parametrize("finish", [True, False])
def test_a_stopped_live_worker_ends_its_stream_only_when_asked(
    qtbot, grid_clip, tiny_lip_model, make_update, monkeypatch, finish
):
    """Stopped while paused: with `finish` the stream ends as at the end of its file (its last
    sentence read again, given to whoever stopped it); without (the window closing), at once."""
    ended = []

    def captions(source, engine, **kwargs):  # iter_captions' shape: a frame's update, then the end
        for frame in source:
            if not isinstance(frame, Idle):  # paused
                yield make_update(frame.index)
        ended.append(True)  # CaptionStream.finish: the closing window, the second reading
        yield make_update(0, utterance_end=True)

    monkeypatch.setattr("lipreader_app.workers.iter_captions", captions)
    worker = LiveWorker(VideoFileSource(grid_clip[0], realtime=True), CaptionEngine(tiny_lip_model))
    updates = []
    worker.update.connect(updates.append)
    thread = start_in_thread(worker, None)
    qtbot.waitUntil(lambda: len(updates) >= 3, timeout=10_000)
    worker.pause()
    qtbot.wait(100)
    with qtbot.waitSignal(worker.finished, timeout=3000):
        worker.stop(finish)
    thread.quit()
    assert thread.wait(2000)
    assert ended == ([True] if finish else [])
    assert [d.update.utterance_end for d in worker.after_stop] == ([True] if finish else [])


def test_live_worker_reports_a_missing_camera(qtbot, landmarker, tiny_lip_model):
    got = run_worker(qtbot, LiveWorker(CameraSource(57), CaptionEngine(tiny_lip_model)))
    assert got["update"] == []
    assert len(got["errored"]) == 1 and "cannot open camera 57" in got["errored"][0]


def test_caption_job_captions_a_clip_and_reports_progress(qtbot, grid_clip, landmarker, tiny_lip_model):
    video, _ = grid_clip
    job = CaptionJob(video, CaptionEngine(tiny_lip_model))
    progress, done, cancelled = [], [], []
    job.progress.connect(lambda d, t: progress.append((d, t)))
    job.done.connect(done.append)
    job.cancelled.connect(lambda: cancelled.append(True))
    got = run_worker(qtbot, job)
    assert got["errored"] == [] and cancelled == []
    assert len(done) == 1 and done[0].duration == pytest.approx(3.0, abs=0.1)
    assert progress[-1][1] == pytest.approx(3.0, abs=0.1) and progress[-1][0] > 2.5


def test_caption_job_can_be_cancelled(qtbot, grid_clip, landmarker, tiny_lip_model):
    video, _ = grid_clip
    job = CaptionJob(video, CaptionEngine(tiny_lip_model))
    done, cancelled = [], []
    job.done.connect(done.append)
    job.cancelled.connect(lambda: cancelled.append(True))
    job.progress.connect(lambda d, t: job.cancel())  # cancel at the first progress report
    got = run_worker(qtbot, job)
    assert cancelled == [True] and done == [] and got["errored"] == []


def test_caption_job_reports_an_unreadable_file(qtbot, tmp_path, tiny_lip_model):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    got = run_worker(qtbot, CaptionJob(bad, CaptionEngine(tiny_lip_model)))
    assert len(got["errored"]) == 1 and str(bad) in got["errored"][0]


def test_live_stream_drops_deliveries_of_a_stopped_stream(qtbot, make_update):
    stream = LiveStream()
    relayed = []
    stream.delivered.connect(relayed.append)
    stream._stream = 3
    stream._on_update(Delivered(make_update(0), 0.0, 0.0, stream=2))
    stream._on_update(Delivered(make_update(1), 0.0, 0.0, stream=3))
    assert [d.update.frame.index for d in relayed] == [1]


def test_error_message_is_one_line():
    assert error_message(RuntimeError("cannot read video a.mp4: empty\ndetails")) == (
        "cannot read video a.mp4: empty"
    )
    assert error_message(KeyError("x")) == "KeyError: 'x'"


def write_truncated_video(path, frames: int = 75, kept: float = 0.3):
    """An .avi of `frames` noise frames (25 fps) cut to its first `kept` share of bytes, as a download
    that stopped: its header still declares every frame (23 of 75 are left by default)."""
    from tests.videos import noise_frames, write_video

    full = write_video(path.with_name(f"full-{path.name}"), noise_frames(frames), 25.0)
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * kept)])
    return path


def read_source_only(source, engine, **kwargs):
    """Stands in for iter_captions: reads the whole source as it would, runs no model, yields nothing."""
    for _ in source:
        pass
    yield from ()


def test_live_worker_relays_the_warnings_core_logs_about_its_source(
    qtbot, tmp_path, tiny_lip_model, monkeypatch
):
    monkeypatch.setattr("lipreader_app.workers.iter_captions", read_source_only)
    clip = write_truncated_video(tmp_path / "cut.avi")
    got = run_worker(qtbot, LiveWorker(VideoFileSource(clip), CaptionEngine(tiny_lip_model)))
    assert got["errored"] == []
    assert len(got["warned"]) == 1 and "cut.avi ended after 23 of 75 frames (truncated?)" in got["warned"][0]


def test_caption_job_relays_warnings_and_leaves_logging_its_failure_to_the_window(
    qtbot, tmp_path, tiny_lip_model, caplog, monkeypatch
):
    from core.captioning import Transcript
    from core.video import VideoError

    def caption_video(path, engine, **kwargs):
        logging.getLogger("lipreader").warning("video %s ended after 23 of 75 frames (truncated?)", path)
        if path.name == "bad.avi":
            raise VideoError(f"cannot caption video {path}: no face found in 23 frames")
        return Transcript("", (), "CPUExecutionProvider", 0.1, 0.9, 1.0)

    monkeypatch.setattr("lipreader_app.workers.caption_video", caption_video)
    got = run_worker(qtbot, CaptionJob(tmp_path / "cut.avi", CaptionEngine(tiny_lip_model)))
    assert got["warned"] == [f"video {tmp_path / 'cut.avi'} ended after 23 of 75 frames (truncated?)"]
    got = run_worker(qtbot, CaptionJob(tmp_path / "bad.avi", CaptionEngine(tiny_lip_model)))
    assert len(got["errored"]) == 1 and "no face found" in got["errored"][0]
    # the window logs the errors it shows: the job does not log them too (no line twice in the terminal)
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "no face found" in r.getMessage()]


@pytest.mark.parametrize(
    "make_error",
    [lambda: OSError(5, "Input/output error"), lambda: ValueError("bad crop"), lambda: KeyError("x")],
)
def test_a_workers_failure_of_any_kind_is_left_to_the_window_to_log_once(
    qtbot, tiny_lip_model, caplog, monkeypatch, make_error
):
    def failing_captions(source, engine, **kwargs):
        raise make_error()  # a new one each time: its traceback holds the worker's frames
        yield

    monkeypatch.setattr("lipreader_app.workers.iter_captions", failing_captions)
    caplog.set_level(logging.DEBUG, logger="lipreader")
    got = run_worker(qtbot, LiveWorker([], CaptionEngine(tiny_lip_model)))
    assert got["errored"] == [error_message(make_error())]
    # the window logs the message it shows; here it is only in the debug log, with its traceback
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.exc_info is not None for r in caplog.records] == [True]
    caplog.clear()  # the traceback holds the worker: it goes here, in the GUI thread
