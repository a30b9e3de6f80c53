"""The View menu: the live caption's size, the side panel, full screen; kept for the next start."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtGui import QAction, QKeySequence

from lipreader_app.main_window import MainWindow
from lipreader_app.menus import CAPTION_STEP
from lipreader_app.preferences_dialog import PreferencesDialog
from lipreader_app.settings import CAPTION_POINTS, CAPTION_POINTS_RANGE, load_preferences

pytestmark = pytest.mark.usefixtures("gui_gc")


def action(window: MainWindow, text: str) -> QAction:
    (found,) = [a for a in window.findChildren(QAction) if a.text() == text]
    return found


def test_caption_size_steps_within_its_range_and_is_kept(qtbot, main_window, app_settings):
    window = main_window
    assert window.captions.point_size == CAPTION_POINTS
    small = window.captions._caption.minimumHeight()
    action(window, "&Larger captions").trigger()
    assert window.captions.point_size == CAPTION_POINTS + CAPTION_STEP
    assert window.captions._caption.minimumHeight() > small  # a line of the larger text fits
    for _ in range(100):
        action(window, "&Larger captions").trigger()
    assert window.captions.point_size == CAPTION_POINTS_RANGE[1]
    for _ in range(100):
        action(window, "&Smaller captions").trigger()
    assert window.captions.point_size == CAPTION_POINTS_RANGE[0]
    action(window, "&Larger captions").trigger()
    assert load_preferences(app_settings).caption_points == CAPTION_POINTS_RANGE[0] + CAPTION_STEP

    again = MainWindow(app_settings, provider="cpu")  # the next start
    qtbot.addWidget(again)
    assert again.captions.point_size == CAPTION_POINTS_RANGE[0] + CAPTION_STEP
    action(again, "&Normal caption size").trigger()
    assert again.captions.point_size == CAPTION_POINTS
    assert load_preferences(app_settings).caption_points == CAPTION_POINTS


def test_the_side_panel_hides_and_shows_and_is_kept(qtbot, main_window, app_settings):
    window = main_window
    side = action(window, "Side &panel")
    assert side.isChecked() and window.crop_view.isVisible() and window.probabilities.isVisible()
    width = window.video_view.width()
    side.trigger()
    assert not window.crop_view.isVisible() and not window.probabilities.isVisible()
    qtbot.waitUntil(lambda: window.video_view.width() > width)  # the video takes the room
    assert not load_preferences(app_settings).side_panel

    again = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(again)
    again.show()
    assert not action(again, "Side &panel").isChecked() and not again.crop_view.isVisible()
    action(again, "Side &panel").trigger()
    assert again.crop_view.isVisible() and load_preferences(app_settings).side_panel


def test_preferences_ok_keeps_what_the_view_menu_chose(qtbot, main_window, app_settings):
    window = main_window
    action(window, "&Larger captions").trigger()
    action(window, "Side &panel").trigger()
    dialog = PreferencesDialog(window.prefs, window.model.contract, window)
    qtbot.addWidget(dialog)
    chosen = dialog.preferences()
    assert (chosen.caption_points, chosen.side_panel) == (CAPTION_POINTS + CAPTION_STEP, False)
    window.apply_preferences(dataclasses.replace(chosen, stable_frames=2))
    assert load_preferences(app_settings).caption_points == CAPTION_POINTS + CAPTION_STEP


def test_full_screen_toggles(qtbot, main_window):
    full = action(main_window, "&Full screen")
    full.trigger()
    qtbot.waitUntil(main_window.isFullScreen)
    assert full.isChecked()
    full.trigger()
    qtbot.waitUntil(lambda: not main_window.isFullScreen())


def test_preferences_ok_keeps_what_the_view_menu_changed_while_it_was_open(qtbot, main_window, app_settings):
    """The Preferences dialog is not modal: what the View menu changes while it is open stays when
    OK is pressed after."""
    window = main_window
    action(window, "&Preferences…").trigger()
    (dialog,) = window.findChildren(PreferencesDialog)
    action(window, "&Larger captions").trigger()
    action(window, "Side &panel").trigger()
    dialog.stable_spin.setValue(2)
    dialog.accept()
    assert window.prefs.stable_frames == 2
    assert (window.prefs.caption_points, window.prefs.side_panel) == (CAPTION_POINTS + CAPTION_STEP, False)
    stored = load_preferences(app_settings)
    assert (stored.caption_points, stored.side_panel, stored.stable_frames) == (
        CAPTION_POINTS + CAPTION_STEP,
        False,
        2,
    )


def test_full_screen_is_f11_whatever_the_platform_says(main_window):
    """Qt's standard full-screen key is none on a plain X11 desktop (xcb without a KDE or GNOME
    theme): F11, as the README says, is there anyway."""
    assert QKeySequence("F11") in action(main_window, "&Full screen").shortcuts()


def test_leaving_full_screen_goes_back_to_maximized(qtbot, main_window):
    main_window.showMaximized()
    qtbot.waitUntil(main_window.isMaximized)
    full = action(main_window, "&Full screen")
    full.trigger()
    qtbot.waitUntil(main_window.isFullScreen)
    full.trigger()
    qtbot.waitUntil(lambda: not main_window.isFullScreen())
    assert main_window.isMaximized() and not full.isChecked()
