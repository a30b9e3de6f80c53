"""LiveState: the running transcript, the redraw clock, rates and the no-face signal."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from lipreader_app import live_state
from lipreader_app.live_state import FACE_FOUND_FRAMES, NO_FACE_FRAMES, Delivered, LiveState

pytestmark = pytest.mark.usefixtures("gui_gc")


def deliver(state: LiveState, update, offset: float = 0.0) -> None:
    state.on_delivered(Delivered(update, time.monotonic(), offset + update.frame.timestamp))


def test_transcript_finals_partials_and_history(qtbot, make_update):
    state = LiveState()
    deliver(state, make_update(0, partial=(("bin", 0.0, 0.2),)))
    assert [w.text for w in state.partial] == ["bin"] and state.current == []
    deliver(state, make_update(1, final=(("bin", 0.0, 0.2),), partial=(("blu", 0.2, 0.4),)))
    deliver(state, make_update(2, partial=(("blue", 0.2, 0.5),)))
    assert state.transcript() == "bin blue"
    deliver(state, make_update(3, final=(("blue", 0.2, 0.5),), utterance_end=True))
    assert state.current == [] and state.partial == ()
    assert [(u.text, u.start) for u in state.history] == [("bin blue", 0.0)]
    deliver(state, make_update(4, partial=(("at", 1.0, 1.2),)))
    assert state.transcript() == "bin blue at"
    state.finish()
    assert [u.text for u in state.history] == ["bin blue", "at"]


def test_an_utterance_revised_when_it_ends_goes_into_the_history_as_revised(qtbot, make_update):
    state = LiveState()
    deliver(state, make_update(0, final=(("bin", 0.0, 0.2),), partial=(("blu", 0.2, 0.4),)))
    version = state.caption_version
    revised = (("bin", 0.0, 0.2), ("blue", 0.2, 0.5), ("at", 0.5, 0.6), ("f", 0.6, 0.7))
    deliver(
        state,
        make_update(1, final=(("blue", 0.2, 0.5), ("at", 0.5, 0.7)), utterance_end=True, revised=revised),
    )
    assert [(u.text, u.start, u.end) for u in state.history] == [("bin blue at f", 0.0, 0.7)]
    assert state.current == [] and state.partial == () and state.caption_version > version
    deliver(state, make_update(2, final=(("set", 1.0, 1.2),), utterance_end=True, utterance=1, revised=()))
    assert [u.text for u in state.history] == ["bin blue at f"]  # revised to nothing
    assert state.transcript() == "bin blue at f"


def test_a_revision_that_lands_after_later_utterances_replaces_its_own(qtbot, make_update):
    """With the model in a worker, an utterance's revision lands on a later frame: it replaces that
    utterance's line wherever it is, and one read live as nothing goes where its time puts it."""
    state = LiveState()
    state.reset(offset=10.0)
    deliver(state, make_update(0, final=(("lay", 0.0, 0.2),), utterance_end=True, utterance=0), offset=10.0)
    deliver(state, make_update(5, utterance_end=True, utterance=1), offset=10.0)  # nothing read live
    deliver(state, make_update(9, final=(("set", 1.0, 1.2),), utterance_end=True, utterance=2), offset=10.0)
    deliver(state, make_update(10, final=(("bin", 1.4, 1.6),), utterance=3), offset=10.0)
    version = state.caption_version
    deliver(state, make_update(11, utterance=3, revisions={0: (("lay", 0.0, 0.2), ("red", 0.2, 0.4))}))
    deliver(state, make_update(12, utterance=3, revisions={1: (("at", 0.5, 0.6),), 2: ()}))
    assert [(u.text, u.start, u.live_text) for u in state.history] == [
        ("lay red", 10.0, "lay"),
        ("at", 10.5, ""),
    ]
    assert state.caption_version > version and [w.text for w in state.current] == ["bin"]
    assert [w.text for w in state.words()] == ["lay", "red", "at", "bin"]


def test_an_idle_update_brings_its_revision_but_no_frame(qtbot, make_update):
    """While paused, a revision lands on an idle update: the history takes it, the rates count no frame."""
    state = LiveState()
    deliver(state, make_update(40, final=(("bin", 0.7, 1.0),), utterance_end=True))
    processed = state.frames_processed
    idle = dataclasses.replace(
        make_update(40, utterance=1, revisions={0: (("bin", 0.7, 1.0), ("blue", 1.0, 1.3))}), idle=True
    )
    deliver(state, idle)
    assert [u.text for u in state.history] == ["bin blue"] and state.frames_processed == processed


def test_history_times_are_in_source_seconds_after_a_seek(qtbot, make_update):
    state = LiveState()
    state.reset(offset=10.0)
    deliver(state, make_update(5, final=(("now", 0.2, 0.4),), utterance_end=True), offset=10.0)
    assert state.history[0].start == 10.2
    assert state.position == 10.0 + 5 / 25
    state.reset(offset=2.0, keep_history=True)
    assert [u.text for u in state.history] == ["now"]
    state.reset()
    assert state.history == []


def test_a_seek_back_into_a_sentence_keeps_the_words_the_new_reading_does_not_cover(qtbot, make_update):
    """Played to the end, then from 1.0 s: the earlier words of the first reading stay in the history
    and in what Save transcript writes, the stretch read twice keeps its latest reading; played again
    from the start, one line is left."""
    state = LiveState()
    first = (("bin", 0.7, 1.0), ("blue", 1.0, 1.3), ("at", 1.3, 1.5), ("f", 1.5, 1.7), ("now", 2.5, 2.9))
    deliver(state, make_update(70, final=first, utterance_end=True))
    state.reset(offset=1.0, keep_history=True)  # a seek back to 1.0 s
    again = (("blue", 0.1, 0.3), ("at", 0.3, 0.5), ("f", 0.5, 0.7), ("now", 1.5, 1.9))
    deliver(state, make_update(50, final=again, utterance_end=True), offset=1.0)
    assert [u.text for u in state.history] == ["bin", "blue at f now"]
    assert state.history[0].end == 1.0 and state.history[0].live_text == ""
    words = state.words()
    assert [(w.text, w.start) for w in words] == [
        ("bin", 0.7),
        ("blue", 1.1),
        ("at", 1.3),
        ("f", 1.5),
        ("now", 2.5),
    ]
    deliver(state, make_update(60, partial=(("again", 2.0, 2.2),)), offset=1.0)  # in progress: latest
    assert [w.text for w in state.words()][-2:] == ["now", "again"]
    state.finish()
    state.reset(keep_history=True)  # played again from the start
    deliver(state, make_update(70, final=first, utterance_end=True))
    assert [u.text for u in state.history] == ["again", "bin blue at f now"]  # not once per pass


def test_a_revision_narrower_than_the_live_reading_gives_back_what_that_took(qtbot, make_update):
    """Played again, a live reading with a phantom lead-in word takes "bin" from the first pass's
    line; its revision drops the phantom: "bin" is back, in the history and in Save transcript."""
    state = LiveState()
    deliver(state, make_update(40, final=(("bin", 0.7, 1.0), ("blue", 1.0, 1.3)), utterance_end=True))
    state.reset(keep_history=True)  # played again
    live = (("a", 0.6, 0.8), ("blue", 1.0, 1.3))
    deliver(state, make_update(40, final=live, utterance_end=True))
    assert [u.text for u in state.history] == ["a blue"]
    deliver(state, make_update(41, revisions={0: (("blue", 1.0, 1.3),)}))
    assert [u.text for u in state.history] == ["bin", "blue"]
    assert [w.text for w in state.words()] == ["bin", "blue"]


def test_redraw_is_timer_driven_and_coalesced(qtbot, make_update):
    state = LiveState()
    redraws = []
    state.changed.connect(lambda: redraws.append(state.frame.index))
    for i in range(5):
        deliver(state, make_update(i))
    assert redraws == []  # signals only store the state
    qtbot.waitUntil(lambda: len(redraws) >= 1, timeout=1000)
    qtbot.wait(100)
    assert redraws == [4]  # one redraw, of the newest frame; nothing new since
    assert len(state.lags) == 1 and 0 <= state.lags[0] < 1000


def test_rates_report_processed_and_redraw_fps(qtbot, make_update):
    state = LiveState()
    reports = []
    state.rates_changed.connect(reports.append)
    probs = np.full((75, 28), 1 / 28, np.float32)
    start = time.monotonic()
    i = 0
    while not reports and time.monotonic() - start < 3:
        deliver(state, make_update(i, probs=probs))
        i += 1
        qtbot.wait(40)
    assert reports, "no rates within 3 s"
    sent = i / (time.monotonic() - start)  # updates delivered per second (lower on a loaded machine)
    rates = reports[0]
    assert 0.5 * sent < rates.processed_fps < 2 * sent
    assert 0 < rates.redraw_fps <= rates.processed_fps * 1.2
    assert rates.stage_ms == {"landmarks": 12.0, "crop": 1.0, "model": 5.0, "decode": 0.5}
    assert 0 <= rates.lag_ms < 500


def test_face_lost_after_some_frames_and_back(qtbot, make_update):
    state = LiveState()
    events = []
    state.face_lost.connect(events.append)
    for i in range(NO_FACE_FRAMES - 1):
        deliver(state, make_update(i, faces=0))
    assert events == []
    deliver(state, make_update(NO_FACE_FRAMES, faces=0))
    assert events == [True]
    deliver(state, make_update(NO_FACE_FRAMES + 1, faces=1))
    assert events == [True, False]


def test_no_rates_and_no_face_tracked_after_the_stream_ended(qtbot, make_update, monkeypatch):
    monkeypatch.setattr(live_state, "RATE_PERIOD_S", 0.05)
    state = LiveState()
    reports = []
    state.rates_changed.connect(reports.append)
    for i in range(5):
        deliver(state, make_update(i))
    state.finish()
    qtbot.wait(300)  # a redraw and rate periods after the end
    assert reports == []
    assert state.crop is None and state.frame is not None  # the last frame stays, without landmarks


def test_a_face_is_found_in_enough_frames_not_in_one_false_detection(qtbot, make_update):
    state = LiveState()
    deliver(state, make_update(0, faces=1))
    for i in range(1, 30):
        deliver(state, make_update(i, faces=0))
    assert not state.face_found
    for i in range(30, 30 + FACE_FOUND_FRAMES):
        deliver(state, make_update(i))
    assert state.face_found
    state.reset()
    assert not state.face_found
    for i in range(4):  # a stream shorter than FACE_FOUND_FRAMES (a seek near the end): its frames count
        deliver(state, make_update(i))
    assert state.face_found
