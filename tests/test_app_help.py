"""The Help menu (offscreen): Keyboard shortcuts…, About LipReader… and Copy diagnostics, Open data
folder; and the diagnostics they are made of."""

from __future__ import annotations

import importlib.metadata
import platform

import cv2
import numpy as np
import onnxruntime
import PySide6
import pytest
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence

from lipreader_app import diagnostics
from lipreader_app.diagnostics import collect_diagnostics, library_version, model_card_lines
from lipreader_app.help import AboutDialog, ShortcutsDialog
from lipreader_app.main_window import MainWindow
from tests.conftest import tiny_contract

pytestmark = pytest.mark.usefixtures("gui_gc")


def help_action(window: MainWindow, text: str):
    """The action of the Help menu whose text (mnemonics left out) is `text`."""
    (help_menu,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"]
    (action,) = [a for a in help_menu.actions() if a.text().replace("&", "") == text]
    return action


def native(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def test_the_help_menu_comes_last(main_window):
    titles = [a.text() for a in main_window.menuBar().actions()]
    assert titles == ["&File", "&Source", "&View", "&Model", "&Help"]


def test_the_shortcuts_dialog_lists_the_menu_actions_as_they_are(qtbot, main_window):
    help_action(main_window, "Keyboard shortcuts…").trigger()
    (dialog,) = main_window.findChildren(ShortcutsDialog)
    assert dialog.isVisible()
    rows = dialog.rows()
    assert ("File", "Open video…", native("Ctrl+O")) in rows
    assert ("View", "Side panel", native("F9")) in rows
    assert ("File", "Quit", native("Ctrl+Q")) in rows
    assert ("Source", "Pause / play", native("Space")) in rows  # disabled with no file: listed all the same
    larger = next(keys for menu, action, keys in rows if action == "Larger captions")
    assert native("Ctrl+=") in larger.split(" or ") and len(larger.split(" or ")) >= 2
    assert not any("&" in action for _, action, _ in rows)
    assert "Model card…" not in [action for _, action, _ in rows]  # no shortcut: not listed
    assert list(dict.fromkeys(menu for menu, _, _ in rows)) == ["File", "Source", "View", "Model", "Help"]
    # made from the actions themselves: a shortcut changed shows the next time it is opened
    dialog.close()
    main_window.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
    main_window.help.show_shortcuts()
    shown = [d for d in main_window.findChildren(ShortcutsDialog) if d.isVisible()]
    assert len(shown) == 1 and ("File", "Open video…", native("Ctrl+Shift+O")) in shown[0].rows()


def test_about_shows_the_model_and_the_provider_it_really_runs_on(qtbot, main_window, tiny_model):
    help_action(main_window, "About LipReader…").trigger()
    (dialog,) = main_window.findChildren(AboutDialog)
    text = dialog.text()
    assert "tiny.onnx" in text and str(tiny_model) in text
    assert "28 classes from 96×48 grey lip crops at 25 fps, plus lip points" in text
    assert "CPU (CPUExecutionProvider; asked for auto in the preferences, cpu for this run)" in text
    assert (
        "MIT License" in text and "Apache License 2.0" in text and "Creative Commons Attribution 4.0" in text
    )
    assert f"\nnumpy\n{np.__version__}\n" in text and f"\nONNX Runtime\n{onnxruntime.__version__}\n" in text
    # the provider is the session's, not the one asked for: CUDA in use shows as CUDA
    dialog.close()
    main_window.model.provider = "CUDAExecutionProvider"
    main_window.help.show_about()
    (again,) = [d for d in main_window.findChildren(AboutDialog) if d.isVisible()]
    assert (
        again is not dialog
        and "CUDA (CUDAExecutionProvider; asked for auto in the preferences, cpu for this run)"
        in again.text()
    )


def test_copy_diagnostics_puts_the_versions_on_the_clipboard(qtbot, main_window):
    main_window.help.show_about()
    (dialog,) = main_window.findChildren(AboutDialog)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("")
    dialog.copy_button.click()
    text = clipboard.text()
    for line in (
        f"Python: {platform.python_version()}",
        f"Qt: {qVersion()}",
        f"PySide6: {PySide6.__version__}",
        f"ONNX Runtime: {onnxruntime.__version__}",
        f"MediaPipe: {importlib.metadata.version('mediapipe')}",
        f"OpenCV: {cv2.__version__}",
        f"numpy: {np.__version__}",
        f"LipReader {importlib.metadata.version('lipreader-desktop')}",
        "Model: tiny.onnx (",
        "ONNX Runtime provider: CPU (CPUExecutionProvider; "
        "asked for auto in the preferences, cpu for this run)",
        "  MediaPipe Face Landmarker model (face_landmarker.task), by Google: Apache License 2.0",
    ):
        assert line in text, (line, text)
    assert "<" not in text  # plain text, not the dialog's HTML
    assert dialog.copied.text() == "Copied to the clipboard."


def test_about_with_no_model_says_so(qtbot, app_settings):
    window = MainWindow(app_settings, provider="cpu")
    qtbot.addWidget(window)
    window.help.show_about()
    (dialog,) = window.findChildren(AboutDialog)
    assert (
        "none loaded" in dialog.text()
        and "no model is loaded (asked for auto in the preferences, cpu for this run)" in dialog.text()
    )
    window.close()


def test_open_data_folder_makes_it_and_opens_it(main_window, tmp_path, monkeypatch):
    folder = tmp_path / "share" / "LipReader"
    monkeypatch.setattr("lipreader_app.help.data_folder", lambda: folder)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    help_action(main_window, "Open data folder").trigger()
    assert folder.is_dir() and opened == [QUrl.fromLocalFile(str(folder))]
    assert main_window.errors == []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)  # no file manager
    assert not main_window.help.open_data_folder()
    assert main_window.errors[-1].startswith(f"cannot open the data folder {folder}")
    (tmp_path / "file").write_text("")  # a file where the folder should be: it cannot be made
    monkeypatch.setattr("lipreader_app.help.data_folder", lambda: tmp_path / "file" / "LipReader")
    assert not main_window.help.open_data_folder()
    assert "cannot make the data folder" in main_window.errors[-1]


def test_the_card_lines_say_what_the_model_learnt_from_and_how_well_it_reads():
    contract = tiny_contract(
        data={"dataset": "s1", "kind": "grid", "speakers": ["s1"], "train_clips": 800, "val_clips": 89},
        metrics={"val_wer": 0.0412, "val_cer": 0.0148, "decoder": "grammar"},
        training={"init_from": "runs/a/last.pt"},
    )
    assert model_card_lines(contract) == (
        "trained on grid s1, speakers s1, 800 training / 89 validation clips",
        "validation WER 4.1 %, CER 1.5 % (grammar decoder)",
        "trained on from the weights of a/last.pt",
        "28 classes from 96×48 grey lip crops at 25 fps, plus lip points",
    )
    assert model_card_lines(tiny_contract(metrics={"val_wer": "n/a"}))[0] == (
        "28 classes from 96×48 grey lip crops at 25 fps, plus lip points"
    )


def test_versions_come_from_the_loaded_module_or_the_installed_package(monkeypatch):
    assert library_version("numpy", ()) == np.__version__
    assert library_version("not_a_loaded_module", ("numpy",)) == importlib.metadata.version("numpy")
    assert library_version("not_a_loaded_module", ("not-a-distribution",)) == diagnostics.NOT_FOUND
    assert collect_diagnostics(None, "auto").version == importlib.metadata.version("lipreader-desktop")
    monkeypatch.setattr(diagnostics, "DISTRIBUTION", "not-a-distribution")  # run from a copy of the sources
    assert collect_diagnostics(None, "auto").version == diagnostics.UNKNOWN_VERSION
