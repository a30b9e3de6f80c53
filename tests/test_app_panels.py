"""The panels redraw what the LiveState holds (hand-made updates: no MediaPipe, no model)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from core.types import TrackStatus
from lipreader_app.live_state import Delivered, LiveState, Rates
from lipreader_app.panels import captions
from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.crop_view import CropView
from lipreader_app.panels.probabilities import ProbabilityPanel, best_path, top_candidates
from lipreader_app.panels.status import Banner, StatusBar
from lipreader_app.panels.transport import TransportBar
from lipreader_app.panels.video_view import VideoView, lip_rings
from tests.conftest import GRID_VOCABULARY

pytestmark = pytest.mark.usefixtures("gui_gc")


@pytest.fixture
def state(qtbot) -> LiveState:
    state = LiveState()
    state.set_vocabulary(GRID_VOCABULARY, 0)
    return state


def show(state: LiveState, update, position: float | None = None) -> None:
    """Deliver one update and run the redraw at once (as the timer would)."""
    pos = update.frame.timestamp if position is None else position
    state.on_delivered(Delivered(update, time.monotonic(), pos))
    state._on_tick()


def test_lip_rings_are_closed_contours():
    points = np.arange(80, dtype=np.float32).reshape(40, 2)
    outer, inner = lip_rings(points)
    assert outer.shape == inner.shape == (21, 2)
    assert (outer[0] == outer[-1]).all() and (inner[0] == inner[-1]).all()
    assert set(map(tuple, outer[:-1])) == set(map(tuple, points[:20]))


def test_video_view_shows_frame_landmarks_and_lip_contour(qtbot, state, make_update):
    view = VideoView(state)
    qtbot.addWidget(view)
    show(state, make_update(3))
    assert view._image.image.shape == (288, 360, 3)
    assert len(view._mesh.data) == 478
    x, y = view._outer.getData()
    assert len(x) == 21 and np.isfinite(x).all()
    assert len(view._box_curve.getData()[0]) == 5
    assert not view._placeholder.isVisible()
    show(state, make_update(4, faces=0, status=TrackStatus.MISSING))
    assert len(view._mesh.data) == 0 and view._outer.getData()[0] is None
    assert not view._subtitle.isVisible()  # no cue: no empty dark box over the video
    view.set_subtitles([(0.0, 1.0, "bin blue")])
    show(state, make_update(5), position=0.5)
    assert view.subtitle == "bin blue" and view._subtitle.isVisible()
    show(state, make_update(6), position=1.5)
    assert view.subtitle == "" and not view._subtitle.isVisible()


def test_crop_view_shows_the_crop_and_status(qtbot, state, make_update):
    view = CropView(state)
    qtbot.addWidget(view)
    assert view._hint.isVisible()  # no crop yet: says what shows there, not a black box
    show(state, make_update(0, faces=2))
    assert view._image.image.shape == (48, 96) and not view._hint.isVisible()
    assert len(view._outer.getData()[0]) == 21
    assert "face tracked" in view._status.text() and "2 faces" in view._status.text()
    assert "click one in the video" in view._status.text()
    show(state, make_update(1, faces=2, chosen=True))
    assert "the face you clicked" in view._status.text()
    assert "than the model learnt" not in view._status.text()  # square pixels: nothing to say
    flat = make_update(2)
    stretched = np.array([[0.5, 0.0, -80.0], [0.0, 0.6, -100.0]])  # core.crop's nose range at work
    show(state, dataclasses.replace(flat, crop=dataclasses.replace(flat.crop, transform=stretched)))
    assert "a face flatter than the model learnt: its height ×1.20 in the crop" in view._status.text()
    show(state, make_update(2, faces=0, status=TrackStatus.HELD))
    assert "holding" in view._status.text()
    view.clear()  # the source ended
    assert view._hint.isVisible() and view._image.image is None


def replace_others(update, *boxes: np.ndarray):
    """The update's landmarks with `boxes` as the other faces in view."""
    return dataclasses.replace(update.crop.landmarks, others=boxes)


def test_clicks_on_the_video_pick_a_face_in_frame_pixels(qtbot, state, make_update):
    view = VideoView(state)
    qtbot.addWidget(view)
    view.resize(720, 576)
    view.show()
    qtbot.waitExposed(view)
    show(state, make_update(0))
    assert view.toolTip() == "" and view.viewport().cursor().shape() == Qt.CursorShape.ArrowCursor
    two = make_update(1, faces=2)  # a face can be picked: the video says so and outlines the other
    boxes = np.array([300.0, 20.0, 350.0, 80.0]), np.array([10.0, 200.0, 40.0, 240.0])
    landmarks = replace_others(two, *boxes)
    show(state, dataclasses.replace(two, crop=dataclasses.replace(two.crop, landmarks=landmarks)))
    assert "Click a face" in view.toolTip()
    x, y = view._others.getData()  # two closed outlines, a NaN row between them
    assert list(x[:5]) == [300, 350, 350, 300, 300] and list(y[:5]) == [20, 20, 80, 80, 20]
    assert (
        np.isnan(x[5])
        and list(x[6:11]) == [10, 40, 40, 10, 10]
        and list(y[6:11]) == [200, 200, 240, 240, 200]
    )
    assert view.viewport().cursor().shape() == Qt.CursorShape.PointingHandCursor
    show(state, make_update(1, faces=0, status=TrackStatus.HELD))  # the face lost a moment: hints stay
    assert "Click a face" in view.toolTip() and view._others.getData()[0] is not None
    at = view.mapFromScene(view._box.mapViewToScene(QPointF(250.0, 120.0)))
    with qtbot.waitSignal(view.face_picked, timeout=1000) as picked:
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert picked.args == pytest.approx([250.0, 120.0], abs=1.0)
    with qtbot.waitSignal(view.automatic_face, timeout=1000):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.RightButton, pos=at)
    view.resize(720, 800)  # the frame keeps its shape: black bands above and below it
    qtbot.wait(50)
    above = view.mapFromScene(view._box.mapViewToScene(QPointF(250.0, -20.0)))
    assert above.y() > 0  # inside the widget, outside the frame
    with qtbot.assertNotEmitted(view.face_picked), qtbot.assertNotEmitted(view.automatic_face):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=above)
        QTest.mouseClick(view.viewport(), Qt.MouseButton.RightButton, pos=above)
    show(state, make_update(2))
    assert view.toolTip() == "" and view.viewport().cursor().shape() == Qt.CursorShape.ArrowCursor
    assert view._others.getData()[0] is None


def test_probability_panel_heat_map_and_reading(qtbot, state, make_update):
    panel = ProbabilityPanel(state)
    qtbot.addWidget(panel)
    probs = np.full((75, 28), 0.001, np.float32)
    probs[:, 0] = 0.9  # blank everywhere...
    probs[10:12, 2 + ord("h") - ord("a")] = 0.97  # ..."hi" in the middle
    probs[20:22, 2 + ord("i") - ord("a")] = 0.97
    probs[-1] = 0.001
    probs[-1, 2] = 0.8  # newest frame: "a"
    show(state, make_update(0, probs=probs))
    assert panel._image.image.shape == (28, 75)  # characters on y, frames on x
    assert "hia" in panel._reading.text()
    assert "a 80%" in panel._reading.text()
    ticks = panel._plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks[:3]] == ["space", "a", "b"] and ticks[-1][1] == "blank"
    # each row shows its own character's probabilities: the blank at the bottom, "h" in frames 10-11
    assert panel._image.image[-1, 0] == pytest.approx(0.9)
    assert panel._image.image[[t[1] for t in ticks].index("h"), 10] == pytest.approx(0.97)
    show(state, make_update(1))  # no new window: the heat map stays
    assert panel._image.image.shape == (28, 75)


def test_best_path_and_top_candidates():
    vocab = ("_", " ", "a", "b")
    probs = np.eye(4, dtype=np.float32)[[2, 2, 0, 2, 1, 3, 3, 0]]
    assert best_path(probs, vocab, 0) == "aa b"
    assert top_candidates(probs[:1] * 0.5 + 0.125, vocab, 0, k=2).startswith("a 62%")


def test_caption_panel_final_steady_partial_grey_italic(qtbot, state, make_update):
    panel = CaptionPanel(state)
    qtbot.addWidget(panel)
    show(state, make_update(0, final=(("bin", 0.0, 0.2),), partial=(("blu", 0.2, 0.4),)))
    html = panel._caption.text()
    assert "bin" in html and "font-style:italic" in html.split("bin")[1]
    assert panel.caption_text == "bin blu"
    show(state, make_update(1, final=(("blue", 0.2, 0.5),), utterance_end=True), position=10.0)
    assert panel.history_texts() == ["[0:00.0]  bin blue"]
    assert panel.caption_text == ""
    seeks = []
    panel.seek_requested.connect(seeks.append)
    panel._history.itemClicked.emit(panel._history.item(0))
    assert seeks == [0.0]


def test_a_sentence_corrected_when_it_ended_is_marked_with_its_live_reading(qtbot, state, make_update):
    panel = CaptionPanel(state)
    qtbot.addWidget(panel)
    revised = (("bin", 0.0, 0.2), ("blue", 0.2, 0.5), ("at", 0.5, 0.6), ("f", 0.6, 0.7))
    show(state, make_update(0, final=(("bin", 0.0, 0.2), ("blue", 0.2, 0.5), ("at", 0.5, 0.7))))
    show(state, make_update(1, utterance_end=True, revised=revised))
    show(
        state,
        make_update(
            2, final=(("set", 1.0, 1.2),), utterance_end=True, utterance=1, revised=(("set", 1.0, 1.2),)
        ),
    )
    assert panel.history_texts() == ["[0:00.0]  bin blue at f  ✎", "[0:01.0]  set"]  # the same: no mark
    assert panel._history.item(0).toolTip().endswith("live it read: bin blue at")
    assert panel._history.item(1).toolTip() == ""


def test_a_revision_landing_after_later_sentences_changes_its_own_line(
    qtbot, state, make_update, monkeypatch
):
    monkeypatch.setattr(captions, "HISTORY_MAX", 3)
    panel = CaptionPanel(state)
    qtbot.addWidget(panel)
    for n, word in enumerate(("bin", "lay", "set")):
        show(state, make_update(10 * n, final=((word, n, n + 0.2),), utterance_end=True, utterance=n))
    first_line = panel._history.item(0)
    show(state, make_update(31, revisions={1: (("lay", 1.0, 1.2), ("red", 1.2, 1.4))}, utterance=3))
    assert panel.history_texts() == ["[0:00.0]  bin", "[0:01.0]  lay red  ✎", "[0:02.0]  set"]
    assert panel._history.item(0) is first_line  # lines before it are kept as they were
    show(state, make_update(40, final=(("place", 4.0, 4.2),), utterance_end=True, utterance=3))
    assert panel.history_texts() == ["[0:01.0]  lay red  ✎", "[0:02.0]  set", "[0:04.0]  place"]
    state.reset()
    show(state, make_update(0, final=(("now", 0.0, 0.2),), utterance_end=True))
    assert panel.history_texts() == ["[0:00.0]  now"]


def test_status_bar_and_banner(qtbot, state):
    bar = StatusBar(state)
    qtbot.addWidget(bar)
    bar.set_source("video a.mp4")
    bar.set_model("grid-s1.onnx", "CPUExecutionProvider")
    state.rates_changed.emit(Rates(24.8, 25.1, 63.0, {"landmarks": 15.2, "model": 4.0}))
    fields = bar.field_texts()
    assert fields["provider"] == "CPU" and fields["model"] == "model grid-s1.onnx"
    assert "24.8 fps" in fields["fps"] and "redraw 25.1" in fields["fps"]
    assert fields["latency"] == "landmarks 15 · model 4 ms · lag 63 ms"
    parent = QWidget()
    qtbot.addWidget(parent)
    banner = Banner(parent)
    parent.show()
    assert not banner.isVisible()
    banner.show_message("warning", "No face in view")
    banner.show_message("error", "cannot open camera 0")
    assert banner.isVisible() and banner.kind == "error" and "camera" in banner.text
    banner.clear("error")
    assert banner.kind == "warning" and "No face" in banner.text
    banner._on_close_clicked()
    assert not banner.isVisible()


def test_transport_bar_follows_position_and_asks_to_seek(qtbot, state, make_update):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    assert not bar.isEnabled()
    bar.set_duration(3.0)
    assert bar.isEnabled()
    show(state, make_update(50))
    assert bar._slider.value() == 20 and bar._time.text() == "0:02 / 0:03"
    seeks = []
    bar.seek_requested.connect(seeks.append)
    bar._slider.setValue(5)
    bar._slider.sliderReleased.emit()
    assert seeks == [0.5]


def test_dragging_the_position_slider_shows_the_time_it_would_seek_to(qtbot, state, make_update):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    bar.set_duration(120.0)
    show(state, make_update(50))  # playing at 0:02
    bar._slider.setSliderDown(True)  # the handle held...
    bar._slider.setSliderPosition(905)  # ...and dragged to 1:30.5
    assert bar._time.text() == "1:30 / 2:00"
    show(state, make_update(51))  # the video plays on under the drag: the time dragged to stays
    assert bar._time.text() == "1:30 / 2:00"


def test_a_click_on_the_position_slider_seeks_there(qtbot, state):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    bar.resize(500, 40)
    bar.show()
    bar.set_duration(3.0)
    seeks = []
    bar.seek_requested.connect(seeks.append)
    slider = bar._slider
    QTest.mouseClick(
        slider, Qt.MouseButton.LeftButton, pos=QPoint(round(0.8 * slider.width()), slider.height() // 2)
    )
    assert len(seeks) == 1 and seeks[0] == pytest.approx(2.4, abs=0.2)  # not a page step
    assert slider.value() / 10 == seeks[0]


def test_transport_bar_at_the_end_shows_the_end_and_offers_play(qtbot, state, make_update):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    bar.set_duration(3.0)
    show(state, make_update(74))  # the last frame, at 2.96 s
    assert bar._time.text() == "0:02 / 0:03" and not bar.paused
    bar.set_ended()
    show(state, make_update(74))  # a redraw after the end does not take it back
    assert bar.paused and bar._slider.value() == 30 and bar._time.text() == "0:03 / 0:03"
    bar.set_duration(3.0)  # the next stream
    show(state, make_update(25))
    assert bar._slider.value() == 10 and bar._time.text() == "0:01 / 0:03"
    bar.set_ended(at=1.4)  # a file cut short: where it ended
    assert bar.paused and bar._slider.value() == 14 and bar._time.text() == "0:01 / 0:03"


def test_heat_map_rows_too_short_for_their_labels_label_every_other_one(qtbot, state):
    from lipreader_app.panels.probabilities import SMALL_TICK_POINT_SIZE, label_step

    assert label_step(28, 560, 11) == 1 and label_step(28, 190, 11) == 2 and label_step(28, 100, 11) == 4
    panel = ProbabilityPanel(state)
    qtbot.addWidget(panel)
    panel.resize(500, 900)
    panel.show()
    qtbot.waitUntil(lambda: len(panel.tick_labels) == 28, timeout=2000)
    assert panel.tick_labels[:3] == ["space", "a", "b"] and panel.tick_labels[-1] == "blank"
    panel.resize(500, 350)  # rows too short for the usual labels, not for the small ones
    qtbot.waitUntil(lambda: panel._tick_size == SMALL_TICK_POINT_SIZE, timeout=2000)
    assert len(panel.tick_labels) == 28
    panel.resize(500, 260)  # the heat map of a 1000×650 window
    qtbot.waitUntil(lambda: len(panel.tick_labels) < 28, timeout=2000)
    assert panel.tick_labels[:3] == ["space", "b", "d"] and panel.tick_labels[-1] == "blank"


def test_heat_map_without_a_model_shows_a_hint_and_no_axes(qtbot):
    panel = ProbabilityPanel(LiveState())
    qtbot.addWidget(panel)
    panel.show()
    assert panel._waiting.isVisible() and "no model loaded" in panel._waiting.textItem.toPlainText()
    assert not panel._plot.getAxis("left").isVisible() and not panel._plot.getAxis("bottom").isVisible()
    assert panel.tick_labels == []


def test_status_bar_fields_are_separated_by_rules_and_a_long_message_is_elided(qtbot, state):
    from PySide6.QtWidgets import QFrame

    bar = StatusBar(state)
    qtbot.addWidget(bar)
    bar.resize(700, 24)
    bar.show()
    bar.set_model("grid-s1.onnx", "CPUExecutionProvider")
    rules = [f for f in bar.findChildren(QFrame) if f.frameShape() == QFrame.Shape.VLine]
    shown = [r for r in rules if r.isVisible()]
    assert len(shown) == 3  # before source, model and provider; the empty fps and latency have none
    message = "cannot read video /a/very/long/folder/name/that/goes/on/and/on/clip.mp4: it is a folder " * 2
    bar.show_message(message)
    label = bar._message
    assert bar.message == message and label.toolTip() == message
    assert label.text().endswith("…") and len(label.text()) < len(message)
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    bar.clear_message()
    assert bar.message == "" and label.text() == ""


def test_banner_link_is_clickable_and_its_text_plain(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    banner = Banner(parent)
    parent.show()
    banner.show_message("info", "loaded <model> a&b.onnx", ("model-card", "Show its card"))
    assert banner.text == "loaded <model> a&b.onnx Show its card"
    assert "&lt;model&gt;" in banner._label.text() and "href='model-card'" in banner._label.text()
    with qtbot.waitSignal(banner.link_activated) as clicked:
        banner._label.linkActivated.emit("model-card")
    assert clicked.args == ["model-card"]


def test_transport_bar_offers_play_disabled_with_no_file(qtbot, state):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    assert bar.paused and not bar.isEnabled()
    bar.set_duration(3.0)
    assert not bar.paused and bar.isEnabled()
    bar.set_duration(0.0)
    assert bar.paused and not bar.isEnabled()


def test_transport_bar_of_a_camera_stays_disabled_offering_play(qtbot, state):
    bar = TransportBar(state)
    qtbot.addWidget(bar)
    bar.set_duration(0.0)  # a camera: nothing to pause or seek
    bar.set_paused(False)
    assert bar.paused and not bar.isEnabled() and bar._button.toolTip() == "Play (Space)"
