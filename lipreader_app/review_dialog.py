"""The review of an offline captioning run (*File → Caption video…*): its timed cues, which seek the
video when clicked, and their export to SRT, VTT or TXT; or, when nothing was read, why.

It is shown non-modally (never with exec()), so tests and --screenshot runs never block on it.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core import subtitles
from lipreader_app.dialogs import SUBTITLE_FILTERS, TRANSCRIPT_FILTER, ask_save_path
from lipreader_app.panels.captions import clock
from lipreader_app.panels.status import provider_name


class CaptionReviewDialog(QDialog):
    """The timed cues of an offline run; clicking one seeks the video; export to SRT/VTT/TXT. With no
    cue it says that nothing was read, why it may be (the transcript's `unread`) and the run's
    `warnings` (by default the transcript's), and offers no export; with cues, the warnings follow
    the count of words (another face read than the one picked, a file cut short)."""

    seek_requested = Signal(float)  # seconds into the video
    exported = Signal(str)  # path written

    def __init__(
        self,
        video: Path,
        transcript: object,
        parent: QWidget | None = None,
        warnings: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(parent)
        self.video, self.transcript = video, transcript
        self.setWindowTitle(f"Captions — {video.name}")
        self.resize(560, 480)
        self.cue_list = QListWidget()
        for start, end, text in cue_rows(transcript.words):
            item = QListWidgetItem(f"{clock(start)} → {clock(end)}   {text}")
            item.setData(Qt.ItemDataRole.UserRole, start)
            self.cue_list.addItem(item)
        self.cue_list.itemClicked.connect(self._on_cue_clicked)
        count = self.cue_list.count()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        warnings = transcript.warnings if warnings is None else warnings
        if count:
            heading = f"<b>{count} {'cue' if count == 1 else 'cues'}</b> for {html.escape(video.name)}"
            provider = provider_name(transcript.provider)
            read = f"{len(transcript.words)} words in {transcript.seconds:.1f} s on {provider}."
            warned = f" Warning: {'; '.join(warnings)}." if warnings else ""
            self._say(f"{read}{warned} Click a cue to play the video from there.")
        else:
            heading = f"<b>Nothing to caption</b> in {html.escape(video.name)}"
            self._say(nothing_read(transcript, warnings))
        buttons = QHBoxLayout()
        self.export_buttons: list[QPushButton] = []
        for fmt in subtitles.FORMATS:
            button = QPushButton(f"Export {fmt.upper()}…")
            button.clicked.connect(lambda _=False, f=fmt: self._on_export_clicked(f))
            button.setEnabled(count > 0)
            buttons.addWidget(button)
            self.export_buttons.append(button)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(heading))
        layout.addWidget(self.cue_list, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        if not count:  # no list to show: only why
            self.cue_list.setVisible(False)
            self.resize(560, layout.totalHeightForWidth(560))

    def export(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the captions to `path` as SRT, VTT or TXT (from `fmt` or the suffix); overwrites.
        Raises OSError, or ValueError for an unknown format."""
        path = subtitles.write_subtitles(path, self.transcript.words, fmt, overwrite=True)
        self._say(f"Wrote {path}")
        self.exported.emit(str(path))
        return path

    def _ask_save_path(self, fmt: str) -> str:
        """The file to export to, `fmt` offered first (tests replace this method)."""
        title, suggested = f"Export {fmt.upper()}", str(self.video.with_suffix(f".{fmt}"))
        return ask_save_path(self, title, suggested, TRANSCRIPT_FILTER, SUBTITLE_FILTERS[fmt])

    def _on_export_clicked(self, fmt: str) -> None:
        path = self._ask_save_path(fmt)
        if not path:
            return
        try:
            self.export(path)  # in the format of its suffix: the one typed, else the one chosen
        except OSError as e:  # e.filename may be the temporary file written first: name the target
            self._say(f"cannot write {path}: {e.strerror or e}", error=True)
        except ValueError as e:
            self._say(str(e), error=True)

    def _say(self, text: str, error: bool = False) -> None:
        """One line under the cues (an error in red)."""
        self._status_text = text
        shown = html.escape(text)
        self.status.setText(f"<span style='color:#c62828'>{shown}</span>" if error else shown)

    @property
    def status_text(self) -> str:
        """What the line under the cues says, as plain text."""
        return self._status_text

    def _on_cue_clicked(self, item: QListWidgetItem) -> None:
        self.seek_requested.emit(float(item.data(Qt.ItemDataRole.UserRole)))


def nothing_read(transcript: object, warnings: tuple[str, ...]) -> str:
    """That a reading has no words, why as far as core can tell (Transcript.unread), and its warnings."""
    said = f"No words were read in {transcript.duration:.1f} s of video"
    said += f" ({transcript.unread})." if transcript.unread else "."
    return f"{said} {'; '.join(warnings)}." if warnings else said


def cue_rows(words: tuple) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of each subtitle cue, as the SRT export groups the words."""
    return [(c.start, c.end, c.text) for c in subtitles.cues(words)]
