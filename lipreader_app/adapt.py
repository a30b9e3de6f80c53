"""*Model → Adapt to my face…*: recording the user reading GRID sentences, for fine-tuning on them.

The dialog records from the window's live source: it is handed the signal that carries the main
window's `Delivered` updates (LiveStream.delivered) and hands them to the take in progress
(lipreader_app.adapt_take), which writes its frames through core.recording; a take is checked as
training would before it is kept and added to the folder's manifest. Training on the takes is not
done here: `train_requested` carries the manifest's path. The dialog keeps its state when closed (a
take in progress is discarded), so it can be shown again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.recording import MANIFEST, folder_takes, prompt_sentences, sweep_leftovers
from core.transcripts import TranscriptError, transcript_text
from lipreader_app.adapt_take import LiveTake, Step, TakeBroken, TakeRefused
from lipreader_app.live_state import Delivered
from lipreader_app.settings import data_folder

RECOMMENDED_TAKES = 30  # takes suggested before training (the counter's "of 30")
MIN_TAKES_TO_TRAIN = 10  # takes needed before "Train on these recordings" is offered
PROMPT_COUNT = 300  # sentences offered (more than anyone records: Skip never runs out)
PROMPT_SEED = 0  # the same sentences, in the same order, each time: a folder is continued
NO_SOURCE_S = 1.0  # no frame for this long: no source is playing
# after Stop, the frames captured before it still come, a stream's lag later (its time in MediaPipe
# and the model: 1.5 s on 2 busy cores); they are waited for this long at most (a source paused)
STOP_WAIT_S = 3.0
FOLDER_KEY = "adapt/folder"  # QSettings key of the folder chosen
NO_SOURCE = "Start the camera first: Source ▸ Start/stop camera"
NOT_CAMERA = (
    "Takes are recorded from the camera, of you reading the sentence shown: a video file playing would "
    "be labelled with words it does not say. Start the camera: Source ▸ Start/stop camera"
)
CHANGE_FOLDER = "Choose another with Change folder…"
PAUSED = "The video is paused: play it, or start the camera (Source ▸ Start/stop camera)"
CLOSED = "Take discarded: the dialog was closed while recording."
ERROR_STYLE = "color:#c62828"
RECORDING_STYLE = "color:#d32f2f; font-weight:600"
SENTENCE_POINTS = 24  # the sentence's font size
SENTENCE_PADDING = 24  # pixels of room on either side of the longest sentence
SENTENCE_STYLE = "padding:16px; border:1px solid palette(mid); border-radius:8px; background:palette(base)"
HINT = "Press Record (Space), read this sentence aloud facing the camera, then Stop:"
STOPPING = "   — stopping: the frames read before Stop are still coming"
HINT_RECORDING = "Read this sentence aloud facing the camera, then press Stop (Space):"


def default_folder() -> Path:
    """Where takes go unless another folder is chosen: `adapt/` in the app's data folder."""
    return data_folder() / "adapt"


class AdaptDialog(QDialog):
    """The recording page of "Adapt to my face": a sentence to read, Record/Stop (Space or R),
    Redo, Skip, Back, the folder, and how many sentences are recorded.

    delivered: the signal carrying the live stream's `Delivered` updates (LiveStream.delivered).
    fps: the frame rate they come at (the model's). settings: where the folder chosen is kept.
    camera: whether the source playing is a camera (a take is of the user reading the sentence
    shown: a video file playing is not, and its take would be labelled with words it does not say);
    None: any source is recorded (tests).
    """

    train_requested = Signal(Path)  # the folder's manifest.csv: train on the takes recorded
    take_kept = Signal(object)  # core.recording.Take, after it is written

    def __init__(
        self,
        delivered: SignalInstance,
        fps: float = 25.0,
        folder: str | Path | None = None,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        camera: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Adapt to my face")
        self._camera = camera
        self.setModal(False)
        self.fps = fps
        self._settings = settings
        stored = settings.value(FOLDER_KEY) if settings is not None else None
        self.folder = Path(folder or stored or default_folder())
        self.sentences = prompt_sentences(PROMPT_COUNT, PROMPT_SEED)
        self.at = 0  # the sentence shown
        self.recorded: set[str] = set()  # transcripts of the takes in the folder
        self.takes = 0
        self._last: int | None = None  # the sentence of the last take stopped (what Redo records again)
        self._take: LiveTake | None = None  # the take in progress
        self._captured = -float("inf")  # Delivered.captured of the last frame delivered
        self._stop_timer = QTimer(self)  # ends a take stopped when its last frames do not come (paused)
        self._stop_timer.setSingleShot(True)
        self._stop_timer.timeout.connect(self._finish)
        self._frame_at = self._idle_at = -float("inf")  # time.monotonic() of the last frame / idle update
        self._build()
        delivered.connect(self._on_delivered)
        self.refresh()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.hint_label = QLabel(HINT)
        self.sentence_label = QLabel()
        self.sentence_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.sentence_label.font()
        font.setPointSize(SENTENCE_POINTS)
        font.setBold(True)
        self.sentence_label.setFont(font)
        self.sentence_label.setStyleSheet(SENTENCE_STYLE)
        widest = max(QFontMetrics(font).horizontalAdvance(s) for s in self.sentences)
        self.sentence_label.setMinimumWidth(widest + 2 * SENTENCE_PADDING)  # every sentence on one line
        # and whole, descenders too, when a message below takes more lines
        self.sentence_label.setMinimumHeight(QFontMetrics(font).height() + 2 * SENTENCE_PADDING)
        self.position_label = QLabel()
        self.counter_label = QLabel()
        self.counter_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.recording_label = QLabel()
        self.recording_label.setStyleSheet(RECORDING_STYLE)
        self.recording_label.setMinimumHeight(self.recording_label.fontMetrics().height() + 4)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.back_button = self._button("◀ Back", self.back, "The sentence before")
        self.record_button = self._button("● Record", self.toggle_record, "Start or stop a take (Space or R)")
        self.redo_button = self._button(
            "Redo", self.redo, "Record the last sentence again; its take is replaced"
        )
        self.skip_button = self._button("Skip ▶", self.skip, "The next sentence, without recording this one")
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_button = self._button(
            "Change folder…", self._on_change_folder, "Where the takes are saved"
        )
        self.train_button = self._button("Train on these recordings…", self._on_train, "")
        self.close_button = self._button("Close", self.close, "Takes kept stay in the folder")
        for key in (Qt.Key.Key_Space, Qt.Key.Key_R):
            QShortcut(QKeySequence(key), self, self.toggle_record)

        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # a message on two lines fits
        layout.addWidget(self.hint_label)
        layout.addWidget(self.sentence_label)
        info = QHBoxLayout()
        info.addWidget(self.position_label)
        info.addStretch(1)
        info.addWidget(self.counter_label)
        layout.addLayout(info)
        layout.addWidget(self.recording_label)
        layout.addWidget(self.message_label)
        buttons = QHBoxLayout()
        for button in (self.back_button, self.record_button, self.redo_button, self.skip_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        folder = QHBoxLayout()
        folder.addWidget(QLabel("Saved in:"))
        folder.addWidget(self.folder_label, 1)
        folder.addWidget(self.folder_button)
        layout.addLayout(folder)
        bottom = QHBoxLayout()
        bottom.addWidget(self.train_button)
        bottom.addStretch(1)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)

    def _button(self, text: str, slot, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)  # Enter does not press a button
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # -- state ----------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._take is not None

    @property
    def _stopping(self) -> bool:  # Stop was pressed: the take waits for the frames captured before it
        return self._take is not None and self._take.stop_at is not None

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def set_folder(self, folder: str | Path) -> None:
        """Record into `folder` from now on (remembered in the settings); a take in progress is
        discarded."""
        self._discard(None)
        self.folder = Path(folder)
        if self._settings is not None:
            self._settings.setValue(FOLDER_KEY, str(self.folder))
        self.say("")
        self.refresh()

    def refresh(self, move: bool = True) -> None:
        """Read what the folder holds (the temporary files of takes an app killed mid-take left are
        deleted); with `move`, show the first sentence not recorded yet."""
        sweep_leftovers(self.folder)
        try:
            takes = folder_takes(self.folder)
        except TranscriptError as e:
            takes = []
            self.say(f"{e}: choose another folder.", error=True)
        self.takes = len(takes)
        self.recorded = {transcript_text(t.transcript) for t in takes}
        if move:
            self.at = next((i for i, s in enumerate(self.sentences) if s not in self.recorded), 0)
        self._update()

    def _update(self) -> None:
        sentence = self.sentences[self.at]
        self.sentence_label.setText(sentence)
        done = " · recorded ✓ (Record replaces its take)" if sentence in self.recorded else ""
        self.position_label.setText(f"Sentence {self.at + 1}{done}")
        if self.takes <= RECOMMENDED_TAKES:
            self.counter_label.setText(f"{self.takes} of {RECOMMENDED_TAKES} recorded")
        else:
            self.counter_label.setText(f"{self.takes} recorded ({RECOMMENDED_TAKES} recommended)")
        self.folder_label.setText(str(self.folder))
        self.folder_label.setToolTip(str(self.folder))
        recording = self.recording
        self.hint_label.setText(HINT_RECORDING if recording else HINT)
        self.record_button.setText("■ Stop" if recording else "● Record")
        self.back_button.setEnabled(not recording and self.at > 0)
        self.skip_button.setEnabled(not recording and self.at + 1 < len(self.sentences))
        self.folder_button.setEnabled(not recording)
        enough = self.takes >= MIN_TAKES_TO_TRAIN
        self.train_button.setEnabled(enough and not recording)
        self.train_button.setToolTip(
            f"Fine-tune the model on the {self.takes} takes in this folder"
            if enough
            else f"Record at least {MIN_TAKES_TO_TRAIN} sentences first ({self.takes} so far)"
        )
        text = ""
        if self._take is not None:
            face = "   — no face in view" if self._take.face_lost else ""
            stopping = STOPPING if self._stopping else ""
            text = f"● Recording {self._take.seconds:.1f} s{face}{stopping}"
        self.recording_label.setText(text)  # empty, it keeps its line: the buttons stay put

    def say(self, message: str, error: bool = False) -> None:
        """Show one message under the sentence (an error in red), until the next."""
        self.message_label.setText(message)
        self.message_label.setStyleSheet(ERROR_STYLE if error else "")
        if self.isVisible() and self.height() < self.sizeHint().height():  # a longer message: grow
            self.resize(self.width(), self.sizeHint().height())

    # -- actions --------------------------------------------------------------------------------
    def toggle_record(self) -> None:
        """Record (Space or R), or stop the take being recorded and keep it if it passes."""
        if self.recording:
            self.stop()
        else:
            self.record()

    def record(self) -> bool:
        """Start a take of the sentence shown; False (saying why) when no source is playing."""
        if self.recording:
            return True
        now = time.monotonic()
        if now - self._frame_at > NO_SOURCE_S:
            self.say(PAUSED if now - self._idle_at <= NO_SOURCE_S else NO_SOURCE, error=True)
            return False
        if self._camera is not None and not self._camera():
            self.say(NOT_CAMERA, error=True)
            return False
        try:
            self._take = LiveTake(self.folder, self.sentences[self.at], self.fps, started=now)
        except OSError as e:
            self.say(f"Cannot save takes in {self.folder}: {e.strerror or e}. {CHANGE_FOLDER}", error=True)
            return False
        self.say("")
        self._update()
        return True

    def stop(self) -> None:
        """End the take with the frames captured until now: once those still on their way through
        the stream have come (pressed again, at once), keep it and go on to the next sentence, or
        refuse it saying why."""
        if self._take is None:
            return
        now = time.monotonic()
        if self._take.stop_at is None and self._captured < now - 1.5 / self.fps:  # frames still to come
            self._take.stop_at = now
            self._stop_timer.start(round(STOP_WAIT_S * 1000))
            self._update()
            return
        self._finish()

    def _finish(self) -> None:
        """End the take with the frames it has."""
        self._stop_timer.stop()
        take, self._take = self._take, None
        if take is None:
            return
        self._last = self.at
        try:
            kept = take.keep()
        except TakeRefused as e:
            self.say(str(e), error=True)
            self._update()
            return
        self.refresh(move=False)
        self.say(f"Kept as {kept.video}.")
        self.take_kept.emit(kept)
        later = (i for i in range(self.at + 1, len(self.sentences)) if self.sentences[i] not in self.recorded)
        self.at = next(later, self.at)
        self._update()

    def redo(self) -> None:
        """Record the last sentence taken again (the one in progress, started afresh)."""
        self._discard(None)
        if self._last is not None:
            self.at = self._last
        self.record()
        self._update()

    def skip(self) -> None:
        if not self.recording and self.at + 1 < len(self.sentences):
            self.at += 1
            self.say("")
            self._update()

    def back(self) -> None:
        if not self.recording and self.at > 0:
            self.at -= 1
            self.say("")
            self._update()

    def _discard(self, why: str | None) -> None:
        """Drop the take in progress, if any, saying `why`."""
        self._stop_timer.stop()
        take, self._take = self._take, None
        if take is None:
            return
        take.discard()
        self._last = self.at
        if why:
            self.say(why, error=True)
        self._update()

    # -- the live source ------------------------------------------------------------------------
    def _on_delivered(self, d: Delivered) -> None:
        if d.update.idle:  # a paused file: no new frame
            self._idle_at = time.monotonic()
            if self._stopping:  # stopped: no frame is coming
                self._finish()
            return
        self._frame_at = time.monotonic()
        self._captured = d.captured
        if self._take is None:
            return
        try:
            step = self._take.add(d)
        except TakeBroken as e:
            self._discard(str(e))
            return
        if step is Step.COMPLETE:
            self._finish()
        elif step is Step.ADDED:
            self._update()

    # -- handlers -------------------------------------------------------------------------------
    def _on_change_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for the takes", str(self.folder))
        if chosen:
            self.set_folder(chosen)

    def _on_train(self) -> None:
        if self.takes >= MIN_TAKES_TO_TRAIN and not self.recording:
            self.train_requested.emit(self.manifest)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.refresh(move=False)  # the folder may have changed meanwhile
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802
        if self._stopping:  # stopped: kept with the frames it has
            self._finish()
        self._discard(CLOSED)
        super().hideEvent(event)
