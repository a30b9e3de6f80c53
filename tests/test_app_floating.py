"""View ▸ Floating captions (offscreen): the always-on-top caption bar, kept from one start to the
next, showing what the main window's live caption shows."""

from __future__ import annotations

import dataclasses
import sys
import time

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest

from lipreader_app.live_state import Delivered
from lipreader_app.main_window import MainWindow
from lipreader_app.menus import CAPTION_STEP, FLOATING_KEY, _keys
from lipreader_app.panels.floating import HINT, ON_DARK, clamped, screen_areas
from lipreader_app.settings import CAPTION_POINTS, load_preferences, save_preferences

pytestmark = pytest.mark.usefixtures("gui_gc")

FLOATING = "Floating &captions"
PLACE = QRect(40, 50, 500, 90)  # on the offscreen platform's one screen


def action(window: MainWindow, text: str) -> QAction:
    (found,) = [a for a in window.findChildren(QAction) if a.text() == text]
    return found


def show(window: MainWindow, update) -> None:
    """Deliver one update to the window's LiveState and redraw at once (as its timer would)."""
    window.state.on_delivered(Delivered(update, time.monotonic(), update.frame.timestamp))
    window.state._on_tick()


def on_a_screen(rect: QRect) -> bool:
    return any(area.contains(rect) for area in screen_areas())


def test_the_action_shows_and_hides_the_bar_and_both_are_kept(qtbot, main_window, app_settings):
    window, floating = main_window, main_window.floating
    toggle = action(window, FLOATING)
    assert toggle.isCheckable() and toggle.shortcut() == QKeySequence(FLOATING_KEY)
    assert not toggle.isChecked() and not floating.isVisible()
    toggle.trigger()
    assert toggle.isChecked() and floating.isVisible() and on_a_screen(floating.geometry())
    assert load_preferences(app_settings).floating_captions
    floating.setGeometry(PLACE)  # dragged and resized there
    window.close()  # the bar goes with the window, and where it was is kept
    assert not floating.isVisible()
    stored = load_preferences(app_settings)
    assert stored.floating_captions and stored.floating_rect == "40,50,500,90"

    again = MainWindow(app_settings, provider="cpu")  # the next start
    qtbot.addWidget(again)
    assert action(again, FLOATING).isChecked() and not again.floating.isVisible()  # not before the window
    again.show()
    assert again.floating.isVisible() and again.floating.geometry() == PLACE
    again.floating.move(60, 70)
    action(again, FLOATING).trigger()  # unchecked: hidden, and where it was kept
    assert not again.floating.isVisible() and not action(again, FLOATING).isChecked()
    assert load_preferences(app_settings) == dataclasses.replace(
        stored, floating_captions=False, floating_rect="60,70,500,90"
    )
    action(again, FLOATING).trigger()
    assert again.floating.isVisible() and again.floating.geometry() == QRect(60, 70, 500, 90)


def test_the_bar_is_a_frameless_window_on_top_of_the_others_that_never_takes_the_keys(main_window):
    floating = main_window.floating
    assert floating.isWindow() and floating.parentWidget() is None  # the window minimized leaves it
    flags = floating.windowFlags()
    # a plain window on Linux (KWin hides a tool window with its app's), a tool window elsewhere
    kind = Qt.WindowType.Window if sys.platform.startswith("linux") else Qt.WindowType.Tool
    for flag in (
        Qt.WindowType.WindowStaysOnTopHint,
        Qt.WindowType.FramelessWindowHint,
        Qt.WindowType.WindowDoesNotAcceptFocus,  # dragged, it leaves the keyboard to the call
        kind,
    ):
        assert flags & flag == flag, flag
    assert flags & Qt.WindowType.WindowType_Mask == kind
    assert floating.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert floating.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)


def test_the_bar_shows_the_live_caption_the_main_panel_shows(qtbot, main_window, make_update):
    window, floating = main_window, main_window.floating
    action(window, FLOATING).trigger()
    assert HINT in floating.caption_html and floating.caption_text == ""  # nothing read yet
    show(window, make_update(0, final=(("bin", 0.0, 0.2),), partial=(("blu", 0.2, 0.4),)))
    assert floating.caption_text == window.captions.caption_text == "bin blu"
    html = floating.caption_html
    assert HINT not in html and ON_DARK.final in html.split("bin")[0]  # final: steady, light
    assert "font-style:italic" in html.split("bin")[1] and "blu" in html.split("bin")[1]  # partial
    show(window, make_update(1, final=(("blue", 0.2, 0.5), ("at", 0.5, 0.6))))
    assert floating.caption_text == window.captions.caption_text == "bin blue at"
    assert "italic" not in floating.caption_html
    show(window, make_update(2, utterance_end=True))  # the sentence ends: nothing is read now
    assert window.captions.caption_text == floating.caption_text == ""
    # ... and the bar keeps the sentence read last, as a subtitle does, steady, until the next one
    assert window.captions.history_texts()[-1].endswith("bin blue at")
    html = floating.caption_html
    assert HINT not in html and "bin blue at" in html and "italic" not in html
    show(window, make_update(3, final=(("lay", 3.0, 3.2),)))
    assert "lay" in floating.caption_html and "bin blue at" not in floating.caption_html
    show(window, make_update(4, utterance_end=True))
    assert "lay" in floating.caption_html
    window.state.reset(offset=10.0, keep_history=True)  # a seek: the history stays, but the bar
    window.state.changed.emit()  # shows no sentence of another part of the video
    assert window.captions.history_texts() and HINT in floating.caption_html


def test_the_caption_size_follows_larger_and_smaller(qtbot, main_window, app_settings):
    window, floating = main_window, main_window.floating
    action(window, FLOATING).trigger()
    assert floating.point_size == CAPTION_POINTS
    high = floating._caption.minimumHeight()
    action(window, "&Larger captions").trigger()
    action(window, "&Larger captions").trigger()
    assert floating.point_size == window.captions.point_size == CAPTION_POINTS + 2 * CAPTION_STEP
    assert floating._caption.minimumHeight() > high  # a line of the larger text fits
    action(window, "&Smaller captions").trigger()
    assert floating.point_size == CAPTION_POINTS + CAPTION_STEP

    again = MainWindow(app_settings, provider="cpu")  # the next start: the size kept
    qtbot.addWidget(again)
    assert again.floating.point_size == CAPTION_POINTS + CAPTION_STEP
    action(again, "&Normal caption size").trigger()
    assert again.floating.point_size == CAPTION_POINTS


def test_its_close_button_and_escape_hide_it_and_uncheck_the_action(qtbot, main_window, app_settings):
    window, floating = main_window, main_window.floating
    toggle = action(window, FLOATING)
    toggle.trigger()
    floating.setGeometry(PLACE)
    qtbot.mouseClick(floating._close, Qt.MouseButton.LeftButton)
    assert not floating.isVisible() and not toggle.isChecked()
    stored = load_preferences(app_settings)
    assert not stored.floating_captions and stored.floating_rect == "40,50,500,90"  # where it was

    toggle.trigger()
    assert floating.isVisible() and floating.geometry() == PLACE  # back where it was


def test_a_place_on_a_monitor_gone_is_moved_onto_a_screen(qtbot, app_settings):
    prefs = load_preferences(app_settings)
    save_preferences(
        app_settings, dataclasses.replace(prefs, floating_captions=True, floating_rect="5000,4000,600,100")
    )
    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    window.show()
    geometry = window.floating.geometry()
    assert window.floating.isVisible() and on_a_screen(geometry)
    assert geometry.size() == QRect(0, 0, 600, 100).size()  # only moved: it fits
    window.close()


def test_clamped_keeps_a_rect_on_the_screen_it_overlaps_most():
    primary, left = QRect(0, 0, 1920, 1040), QRect(-1280, 0, 1280, 1000)  # a monitor left of the primary
    assert clamped(QRect(-900, 300, 600, 100), [primary, left]) == QRect(-900, 300, 600, 100)  # on one: kept
    assert clamped(QRect(-200, 950, 600, 100), [primary, left]) == QRect(0, 940, 600, 100)  # mostly primary
    assert clamped(QRect(-500, 950, 600, 100), [primary, left]) == QRect(-600, 900, 600, 100)  # mostly left
    assert clamped(QRect(5000, 4000, 600, 100), [primary, left]) == QRect(
        1320, 940, 600, 100
    )  # none: primary
    assert clamped(QRect(10, 10, 3000, 2000), [primary]) == primary  # too large: shrunk to fit
    assert clamped(QRect(5000, 4000, 600, 100), []) == QRect(5000, 4000, 600, 100)  # no screens known


def test_closing_the_main_window_closes_it(qtbot, main_window):
    action(main_window, FLOATING).trigger()
    assert main_window.floating.isVisible()
    main_window.close()
    assert not main_window.floating.isVisible()


def test_pressing_on_the_bar_drags_it(qtbot, main_window):
    floating = main_window.floating
    action(main_window, FLOATING).trigger()
    floating.setGeometry(PLACE)
    start = floating.pos()
    QTest.mousePress(floating, Qt.MouseButton.LeftButton, pos=QPoint(100, 40))
    QTest.mouseMove(floating, QPoint(130, 60))
    QTest.mouseRelease(floating, Qt.MouseButton.LeftButton, pos=QPoint(130, 60))
    assert floating.pos() == start + QPoint(30, 20)


def test_full_screen_gives_up_a_standard_key_the_floating_captions_have():
    """KDE's standard full-screen keys are F11 and Ctrl+Shift+F: a key on two actions does neither."""
    standard = QKeySequence.keyBindings(QKeySequence.StandardKey.FullScreen)
    others = [k.toString() for k in standard if k != QKeySequence("F11")]
    if not others:
        pytest.skip("this platform's only standard full-screen key is F11")
    taken = others[0]  # stands in for Ctrl+Shift+F (offscreen: Alt+Enter, Windows' keys)
    assert QKeySequence(taken) not in _keys(QKeySequence.StandardKey.FullScreen, "F11", taken=(taken,))


@pytest.mark.parametrize("full_screen", [None, ("Ctrl+Shift+F", "F11")])  # as here; as KDE has it
def test_no_two_menu_actions_share_a_key(qtbot, app_settings, monkeypatch, full_screen):
    if full_screen is not None:  # KDE's standard full-screen keys: the floating captions' key too
        bindings = QKeySequence.keyBindings

        def kde(standard):
            if standard == QKeySequence.StandardKey.FullScreen:
                return [QKeySequence(k) for k in full_screen]
            return bindings(standard)

        monkeypatch.setattr(QKeySequence, "keyBindings", kde)
    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    keys = [k.toString() for a in window.findChildren(QAction) for k in a.shortcuts()]
    assert len(keys) == len(set(keys)), sorted(keys)
    assert action(window, FLOATING).shortcut() == QKeySequence(FLOATING_KEY)
