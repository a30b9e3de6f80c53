"""Model ▸ Adapt to my face… in the main window: one recording dialog, the training run behind it
with a progress dialog that cancels, and the model it trains loaded (a stand-in runner: the real
one is tests/test_app_adapt_training.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QPushButton

from core.inference import default_model_path
from lipreader_app.adapting import CANCELLED, PROGRESS_STEPS, Adapting

pytestmark = pytest.mark.usefixtures("gui_gc")


class FakeTraining(QObject):
    """AdaptTraining's signals and methods; the test says what the run does."""

    progress = Signal(float, float, str)
    finished = Signal(Path)
    errored = Signal(str)
    cancelled = Signal()

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__()
        self.refuse, self.busy, self.started, self.cancels = refuse, False, [], 0
        for ended in (self.finished, self.errored, self.cancelled):  # as AdaptTraining: the run is over
            ended.connect(self._on_ended)

    def _on_ended(self, *_: object) -> None:
        self.busy = False

    def start(self, manifest: Path, name: str | None = None) -> bool:
        if self.refuse:
            self.errored.emit(self.refuse)
            return False
        self.started.append(manifest)
        self.busy = True
        self.progress.emit(0.0, 0.0, "Starting")
        return True

    def cancel(self) -> None:
        self.cancels += 1

    def wait(self, msecs: int = 30_000) -> bool:
        return True


@pytest.fixture
def adapting(main_window):
    """The window's Adapting with a FakeTraining, wired as the window wires its own."""
    training = FakeTraining()
    made = Adapting(main_window, main_window.stream.delivered, main_window.settings, training)
    made.model_ready.connect(lambda path: main_window.load_model(path, remember=True))
    made.errored.connect(main_window.notify)
    return made


def test_the_menu_shows_one_dialog_that_keeps_its_place(main_window, tmp_path):
    first = main_window.adapting.show(25.0)
    first.set_folder(tmp_path)
    first.skip()
    first.close()
    main_window.models.show_adapt()
    assert main_window.adapting.dialog is first and first.isVisible() and first.at == 1


def test_a_run_shows_progress_then_the_model_trained_is_loaded(adapting, main_window, tiny_model, tmp_path):
    manifest = tmp_path / "manifest.csv"
    assert adapting.train(manifest)
    progress = adapting.progress
    assert progress.isVisible() and progress.maximum() == 0  # busy while the child starts
    adapting.training.progress.emit(0.5, 1.0, "Training: epoch 10 of 20")
    assert progress.maximum() == PROGRESS_STEPS and progress.value() == PROGRESS_STEPS // 2
    assert "epoch 10 of 20" in progress.labelText()
    assert not adapting.train(manifest)  # one run at a time
    assert "already being trained" in main_window.errors[-1]
    adapting.training.finished.emit(tiny_model)
    assert adapting.progress is None and not progress.isVisible()
    assert main_window.model.path == tiny_model
    assert main_window.prefs.model_path == str(tiny_model)  # loaded at the next start too
    actions = main_window.findChildren(QAction)
    (shipped,) = [a for a in actions if a.text() == "Use the &shipped model"]
    shipped.trigger()
    assert main_window.model.path == default_model_path() and main_window.prefs.model_path == ""


def test_cancel_in_the_progress_dialog_cancels_the_run(qtbot, adapting, tmp_path):
    assert adapting.train(tmp_path / "manifest.csv")
    adapting.progress.findChild(QPushButton).click()  # the dialog's Cancel button
    assert adapting.training.cancels == 1
    adapting.training.cancelled.emit()
    assert adapting.progress is None
    assert adapting.train(tmp_path / "manifest.csv")
    qtbot.keyClick(adapting.progress, Qt.Key.Key_Escape)  # hides the dialog: cancels as its button
    assert adapting.training.cancels >= 2  # (once or twice: canceled and rejected both come)


def test_a_run_that_cannot_start_says_why_in_the_dialog_and_the_window(adapting, main_window, tmp_path):
    dialog = adapting.show(25.0)
    dialog.set_folder(tmp_path)
    adapting.training.refuse = "adapting needs torch (the train extra): install it with pip install x"
    assert not adapting.train(tmp_path / "manifest.csv")
    assert adapting.progress is None
    assert dialog.message_label.text() == adapting.training.refuse
    assert main_window.errors[-1] == adapting.training.refuse
    adapting.training.cancelled.emit()
    assert dialog.message_label.text() == CANCELLED
