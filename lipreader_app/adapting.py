"""*Model → Adapt to my face…*: the recording dialog (`AdaptDialog`) and the training run behind it
(`AdaptTraining`), with a progress dialog that can cancel; the model trained goes to the window to
load."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal, SignalInstance
from PySide6.QtWidgets import QProgressDialog, QWidget

from lipreader_app.adapt import AdaptDialog
from lipreader_app.adapt_training import AdaptTraining
from lipreader_app.dialogs import PROGRESS_STEPS, progress_dialog

log = logging.getLogger("lipreader")

TITLE = "Adapt to my face"
CANCELLED = "adapting cancelled: no model was written"


class Adapting(QObject):
    """One recording dialog for the window's life (closed and shown again, it keeps its place) and
    one training run at a time.

    window: the dialogs' parent. delivered: the live stream's `Delivered` signal (what is
    recorded). settings: where the dialog keeps its folder. training: the runner (tests: one with a
    tiny model). camera: whether the source playing is a camera, the only one recorded (AdaptDialog).
    """

    model_ready = Signal(Path)  # a model trained on the takes, to load
    errored = Signal(str)  # one line: why training could not start or failed
    notice = Signal(str)  # one line of news (a run cancelled)

    def __init__(
        self,
        window: QWidget,
        delivered: SignalInstance,
        settings: QSettings | None = None,
        training: AdaptTraining | None = None,
        camera: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(window)
        self._window, self._delivered, self._settings = window, delivered, settings
        self._camera = camera
        self.dialog: AdaptDialog | None = None
        self.training = training or AdaptTraining(parent=self)
        self.progress: QProgressDialog | None = None
        self.training.progress.connect(self._on_progress)
        self.training.finished.connect(self._on_finished)
        self.training.errored.connect(self._on_errored)
        self.training.cancelled.connect(self._on_cancelled)

    def show(self, fps: float) -> AdaptDialog:
        """Show the recording dialog (made once), recording at `fps`, the model's frame rate."""
        if self.dialog is None:
            self.dialog = AdaptDialog(
                self._delivered, fps, settings=self._settings, parent=self._window, camera=self._camera
            )
            self.dialog.train_requested.connect(self.train)
        self.set_fps(fps)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def set_fps(self, fps: float) -> None:
        """The frame rate of the model loaded now: takes are recorded at it."""
        if self.dialog is not None:
            self.dialog.fps = fps

    def train(self, manifest: Path) -> bool:
        """Train a model on the takes of `manifest`, with a progress dialog; False (and errored) when
        it cannot start."""
        if self.training.busy:
            self.errored.emit("a model is already being trained on your takes; cancel it first")
            if self.progress is not None:
                self.progress.raise_()
            return False
        self.progress = progress_dialog(self._window, TITLE, "Starting…", self.training.cancel)
        return self.training.start(manifest)  # errored at once when it cannot start: see _on_errored

    def shutdown(self) -> None:
        """Stop a run (the window is closing); no model is left half-made."""
        if self.training.busy:
            self.training.cancel()
            self.training.wait()

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()  # one per run
            self.progress = None

    def _on_progress(self, done: float, total: float, text: str) -> None:
        if self.progress is None:
            return
        if total > 0:
            self.progress.setRange(0, PROGRESS_STEPS)
            self.progress.setValue(min(PROGRESS_STEPS, int(PROGRESS_STEPS * done / total)))
        else:
            self.progress.setRange(0, 0)  # busy: the child is starting
        self.progress.setLabelText(f"Training a model on your takes… {text}")

    def _on_finished(self, model: Path) -> None:
        self._close_progress()
        if self.dialog is not None:
            self.dialog.say(f"Trained {model.name} ({model.parent}); the window loads it")
        self.model_ready.emit(model)

    def _on_errored(self, message: str) -> None:
        self._close_progress()
        if self.dialog is not None:  # whole, with the commands it may give, where it can be copied
            self.dialog.say(message, error=True)
        self.errored.emit(message)

    def _on_cancelled(self) -> None:
        self._close_progress()
        if self.dialog is not None:
            self.dialog.say(CANCELLED)
        self.notice.emit(CANCELLED)
