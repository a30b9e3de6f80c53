"""What the window and its dialogs share: a progress dialog for work running in the background, and a
save dialog for subtitles and transcripts.

The dialogs themselves have their own modules: lipreader_app.preferences_dialog,
lipreader_app.model_card and lipreader_app.review_dialog. None of them is run with exec(): they are
shown non-modally, so tests and --screenshot runs never block on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from core import subtitles

SUBTITLE_FILTERS = {  # file dialog filter of each subtitle format
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "txt": "Plain text (*.txt)",
}
TRANSCRIPT_FILTER = ";;".join(SUBTITLE_FILTERS.values())
PROGRESS_STEPS = 1000  # resolution of a progress dialog's bar


def with_suffix_of(path: str, chosen_filter: str) -> str:
    """`path` as typed in a save dialog, given the suffix of the filter chosen there (e.g. "Plain
    text (*.txt)") when it has none of the subtitle formats' ("my.notes" -> "my.notes.txt")."""
    suffix = re.search(r"\(\*(\.\w+)", chosen_filter)
    if path and suffix and Path(path).suffix.lower().lstrip(".") not in subtitles.FORMATS:
        return path + suffix.group(1)
    return path


def progress_dialog(parent: QWidget, title: str, label: str, cancel: Callable[[], None]) -> QProgressDialog:
    """A progress dialog of PROGRESS_STEPS steps for work running in the background, shown at once
    and not modal (the window stays usable); its Cancel button and Escape both call `cancel` (Escape
    alone would hide it while the work ran on unseen). The caller closes it when the work ends."""
    dialog = QProgressDialog(label, "Cancel", 0, PROGRESS_STEPS, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.NonModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.canceled.connect(cancel)
    dialog.rejected.connect(cancel)
    dialog.setValue(0)
    dialog.show()
    return dialog


def ask_save_path(parent: QWidget, title: str, suggested: str, filter: str, selected: str = "") -> str:
    """A save dialog, which asks before replacing a file; "" when cancelled. A name typed with a
    subtitle suffix keeps it, any other gets the chosen filter's (`selected` at first)."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, suggested, filter, selected)
    named = with_suffix_of(path, chosen)
    if named != path and Path(named).exists():  # the dialog asked about another name
        answer = QMessageBox.question(parent, title, f"{Path(named).name} already exists. Replace it?")
        return named if answer == QMessageBox.StandardButton.Yes else ""
    return named
