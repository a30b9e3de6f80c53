"""Offline captioning from the menu: a background CaptionJob, a cancellable progress dialog, a review."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from core.captioning import Transcript
from core.engine import CaptionEngine
from lipreader_app.dialogs import PROGRESS_STEPS, progress_dialog
from lipreader_app.review_dialog import CaptionReviewDialog, cue_rows
from lipreader_app.workers import CaptionJob, join_thread, start_in_thread

log = logging.getLogger("lipreader")

BUSY = "a video is already being captioned; cancel it first"  # said while a job runs, until it ends


class OfflineCaptioner(QObject):
    """Runs one captioning job at a time and keeps the results per video for the subtitle overlay."""

    errored = Signal(str)
    warned = Signal(str)  # a one-line warning about a finished reading (e.g. the face picked was not found)
    play_requested = Signal(object, float)  # video Path, seconds: a cue was clicked in the review
    subtitles_ready = Signal(object)  # video Path whose transcript is now available
    job_ended = Signal(str)  # "done", "cancelled" or "failed", once the job's thread has ended

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self._job: CaptionJob | None = None
        self._thread: QThread | None = None
        self._stuck: list[tuple[CaptionJob | None, QThread]] = []  # jobs that did not stop in time
        self.progress: QProgressDialog | None = None
        self.review: CaptionReviewDialog | None = None
        self.transcripts: dict[Path, object] = {}
        self.video: Path | None = None  # the video captioned last
        self._outcome = "failed"
        self._warnings: list[str] = []  # the warnings of the running job, as they came

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, path: Path, engine: CaptionEngine, face: tuple[float, float] | None = None) -> bool:
        """Start captioning `path` (reading the face at `face`, frame pixels, if given); False (and an
        error) if a job is already running."""
        if self._job is not None:
            self.errored.emit(BUSY)
            if self.progress is not None:  # the job's progress, in front
                self.progress.raise_()
            return False
        job = CaptionJob(path, engine, face=face)
        self._outcome = "failed"  # unless the job says otherwise
        self._warnings = []
        job.progress.connect(self._on_progress)
        job.warned.connect(self._on_warned)
        job.done.connect(self._on_done)
        job.cancelled.connect(self._on_cancelled)
        job.errored.connect(self._on_errored)
        job.finished.connect(self._on_finished)
        # self.cancel, not job.cancel: the job's thread is busy
        self.progress = progress_dialog(
            self._window, "Caption video", f"Captioning {path.name}…", self.cancel
        )
        self._job, self._thread = job, start_in_thread(job, self)
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (the window is closing)."""
        if self._job is not None:
            self._job.cancel()
        self._join()

    def cues_for(self, path: Path | None) -> list[tuple[float, float, str]]:
        """Offline cues of `path` if it was captioned, else []."""
        transcript = self.transcripts.get(path) if path is not None else None
        return cue_rows(transcript.words) if transcript is not None else []

    def _on_progress(self, done: float, total: float) -> None:
        if self.progress is not None and total > 0:
            self.progress.setValue(min(PROGRESS_STEPS, int(PROGRESS_STEPS * done / total)))
            self.progress.setLabelText(
                f"Captioning {self._job.path.name if self._job else ''}… {done:.0f} of {total:.0f} s"
            )

    def _on_warned(self, message: str) -> None:
        if message not in self._warnings:
            self._warnings.append(message)
            self.warned.emit(message)

    def _on_done(self, transcript: Transcript) -> None:
        for warning in transcript.warnings:  # those core only logged were relayed as they came
            self._on_warned(warning)
        path = self._job.path
        self.transcripts[path] = transcript
        self.video = path
        self.review = CaptionReviewDialog(path, transcript, self._window, tuple(self._warnings))
        self.review.seek_requested.connect(lambda seconds, p=path: self.play_requested.emit(p, seconds))
        self.review.show()
        self.subtitles_ready.emit(path)
        self._outcome = "done"

    def _on_cancelled(self) -> None:
        self._outcome = "cancelled"

    def _on_errored(self, message: str) -> None:
        self.errored.emit(message)
        self._outcome = "failed"

    def _on_finished(self) -> None:
        self._join()
        self.job_ended.emit(self._outcome)

    def _join(self) -> None:
        """Wait for the job's thread and close the progress dialog."""
        job, thread = self._job, self._thread
        self._job = self._thread = None
        if thread is not None and not join_thread(thread, "captioning job"):
            self._stuck.append((job, thread))  # deleting them while they run would crash
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None
