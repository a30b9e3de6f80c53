"""Dialogs: preferences, the model card, and the review/export of an offline captioning run.

None of them is run with exec(): they are shown non-modally, so tests and --screenshot runs never
block on them.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core import subtitles
from core.contract import ModelContract
from core.engine import MAX_WINDOW, MIN_WINDOW
from lipreader_app.panels.captions import clock
from lipreader_app.panels.status import provider_name
from lipreader_app.settings import (
    CAMERA_RESOLUTIONS,
    DECODER_KINDS,
    MAX_LANDMARK_EVERY,
    MAX_STABLE_FRAMES,
    PROVIDERS,
    Preferences,
    _verify_preferences,
    verify_for_model,
)

log = logging.getLogger("lipreader")

SUBTITLE_FILTERS = {  # file dialog filter of each subtitle format
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "txt": "Plain text (*.txt)",
}
TRANSCRIPT_FILTER = ";;".join(SUBTITLE_FILTERS.values())
PROGRESS_STEPS = 1000  # resolution of a progress dialog's bar
PREFERENCES_SHOWN = (  # the Preferences fields the dialog edits; the others are the app's to keep
    "window",
    "hop",
    "decoder",
    "beam_width",
    "landmark_every",
    "stable_frames",
    "revise",
    "provider",
    "camera_device",
    "camera_width",
    "camera_height",
)

LANDMARK_EVERY_TIP = (
    "How often MediaPipe looks for the face; optical flow follows the landmarks in between. "
    "Skipping frames lowers the CPU time per frame at a small cost in lip-crop accuracy."
)

STABLE_FRAMES_TIP = (
    "A live word becomes final only once every decode over this many more frames of right context "
    "reads it the same. Fewer frames: less lag before words are final, but more errors; "
    "0 = final at once."
)
REVISE_TIP = (
    "When a sentence ends (the mouth goes still, or the face is lost), the model reads the whole "
    "sentence again at once, as Caption video… does, and that replaces its live words: fewer errors, "
    "but a sentence's text may change as it ends."
)


def landmark_every_text(n: int) -> str:
    """The Preferences entry for MediaPipe on every `n`th frame ("Every 2nd frame (faster)")."""
    if n == 1:
        return "Every frame"
    suffix = {2: "nd", 3: "rd"}.get(n, "th")
    return f"Every {n}{suffix} frame (faster)"


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


def shown_preferences(chosen: Preferences, current: Preferences) -> Preferences:
    """`current` with what the Preferences dialog shows as `chosen` there: the dialog is not modal,
    and what the View menu or Source ▸ Screen… kept while it was open must stay."""
    return dataclasses.replace(current, **{name: getattr(chosen, name) for name in PREFERENCES_SHOWN})


def ask_save_path(parent: QWidget, title: str, suggested: str, filter: str, selected: str = "") -> str:
    """A save dialog, which asks before replacing a file; "" when cancelled. A name typed with a
    subtitle suffix keeps it, any other gets the chosen filter's (`selected` at first)."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, suggested, filter, selected)
    named = with_suffix_of(path, chosen)
    if named != path and Path(named).exists():  # the dialog asked about another name
        answer = QMessageBox.question(parent, title, f"{Path(named).name} already exists. Replace it?")
        return named if answer == QMessageBox.StandardButton.Yes else ""
    return named


class OwnOrRangeSpin(QSpinBox):
    """0 (the model's own value, shown as `special`) or `low`..`high`: the arrows skip the values in
    between (one typed there is refused when OK is pressed)."""

    def __init__(self, low: int, high: int, value: int, special: str) -> None:
        super().__init__()
        self._low = low
        self.setRange(0, high)
        self.setSpecialValueText(special)
        self.setValue(value)

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt's name)
        value = self.value() + steps
        if 0 < value < self._low:
            value = self._low if steps > 0 else 0
        self.setValue(value)


class PreferencesDialog(QDialog):
    """Edits a Preferences; `accepted_preferences` carries the result when OK is pressed."""

    accepted_preferences = Signal(object)  # Preferences

    def __init__(
        self, prefs: Preferences, contract: ModelContract | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._prefs, self._contract = prefs, contract
        own = (lambda what: f"model's ({what})") if contract else (lambda what: "model's")
        self.window_spin = OwnOrRangeSpin(
            MIN_WINDOW, MAX_WINDOW, prefs.window, own(contract.window if contract else "")
        )
        self.hop_spin = self._spin(0, MAX_WINDOW, prefs.hop, own(contract.hop if contract else ""))
        self.decoder_combo = QComboBox()
        for kind in DECODER_KINDS:
            self.decoder_combo.addItem(kind or own(contract.decoder.kind if contract else ""), kind)
        self.decoder_combo.setCurrentIndex(DECODER_KINDS.index(prefs.decoder))
        self.beam_spin = self._spin(
            0, 1000, prefs.beam_width, own(contract.decoder.beam_width if contract else "")
        )
        self.landmark_combo = QComboBox()
        for n in range(1, MAX_LANDMARK_EVERY + 1):
            self.landmark_combo.addItem(landmark_every_text(n), n)
        self.landmark_combo.setCurrentIndex(self.landmark_combo.findData(prefs.landmark_every))
        self.landmark_combo.setToolTip(LANDMARK_EVERY_TIP)
        self.stable_spin = self._spin(0, MAX_STABLE_FRAMES, prefs.stable_frames, "")
        self.stable_spin.setSuffix(" frames")
        self.stable_spin.setToolTip(STABLE_FRAMES_TIP)
        self.revise_check = QCheckBox("Read each sentence again when it ends")
        self.revise_check.setChecked(prefs.revise)
        self.revise_check.setToolTip(REVISE_TIP)
        self.provider_combo = QComboBox()
        for p in PROVIDERS:
            self.provider_combo.addItem(
                {"auto": "auto (CUDA if available)", "cuda": "CUDA", "cpu": "CPU"}[p], p
            )
        self.provider_combo.setCurrentIndex(PROVIDERS.index(prefs.provider))
        self.camera_spin = self._spin(0, 63, prefs.camera_device, "")
        self.resolution_combo = QComboBox()
        sizes = list(CAMERA_RESOLUTIONS)
        if (prefs.camera_width, prefs.camera_height) not in sizes:
            sizes.append((prefs.camera_width, prefs.camera_height))
        for w, h in sizes:
            self.resolution_combo.addItem(f"{w} × {h}", (w, h))
        self.resolution_combo.setCurrentIndex(sizes.index((prefs.camera_width, prefs.camera_height)))
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color:#c62828")
        form = QFormLayout()
        form.addRow("Window (frames)", self.window_spin)
        form.addRow("Hop (frames)", self.hop_spin)
        form.addRow("Decoder", self.decoder_combo)
        form.addRow("Beam width", self.beam_spin)
        form.addRow("Face landmarks", self.landmark_combo)
        form.addRow("Final words stable over", self.stable_spin)
        form.addRow("", self.revise_check)
        form.addRow("Execution provider", self.provider_combo)
        form.addRow("Camera device", self.camera_spin)
        form.addRow("Camera resolution", self.resolution_combo)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(
            QLabel(
                "<small>Window, hop, decoder, face landmarks, final words and reading again apply "
                "when the next stream starts; the provider when a model is loaded.</small>"
            )
        )
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    @staticmethod
    def _spin(low: int, high: int, value: int, special: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        if special:
            spin.setSpecialValueText(special)
        spin.setValue(value)
        return spin

    def preferences(self) -> Preferences:
        """The form's values (validated, against the model's window too: raises ValueError)."""
        w, h = self.resolution_combo.currentData()
        prefs = _verify_preferences(
            dataclasses.replace(  # what the form does not show (the model opened last, the View menu's) stays
                self._prefs,
                window=self.window_spin.value(),
                hop=self.hop_spin.value(),
                decoder=self.decoder_combo.currentData(),
                beam_width=self.beam_spin.value(),
                landmark_every=self.landmark_combo.currentData(),
                stable_frames=self.stable_spin.value(),
                revise=self.revise_check.isChecked(),
                provider=self.provider_combo.currentData(),
                camera_device=self.camera_spin.value(),
                camera_width=w,
                camera_height=h,
            )
        )
        return verify_for_model(prefs, self._contract) if self._contract else prefs

    def accept(self) -> None:
        try:
            prefs = self.preferences()
        except ValueError as e:
            self.error_label.setText(str(e))
            return
        self.accepted_preferences.emit(prefs)
        super().accept()


def model_card_markdown(path: Path, contract: ModelContract, provider: str) -> str:
    """The card of a model: its contract's facts, data, metrics and training, then models/<name>.md."""
    c = contract
    lines = [
        f"# {path.name}",
        "",
        f"`{path}`",
        "",
        f"- **Runs on:** {provider}",
        f"- **Vocabulary:** {len(c.vocabulary)} classes (blank = index {c.blank})",
        f"- **Input:** {c.crop.width}×{c.crop.height} {'grey' if c.crop.grayscale else 'colour'} lip crops "
        f"at {c.fps:g} fps{', plus lip points' if c.points_input else ''}; landmarks {c.crop.landmark_way}",
        f"- **Live window:** {c.window} frames, hop {c.hop} ({c.window / c.fps:.1f} s, every "
        f"{c.hop / c.fps:.2f} s)",
        f"- **Default decoder:** {c.decoder.kind}, beam width {c.decoder.beam_width}",
        f"- **Word score:** {c.decoder.word_score:g} (whole utterances, offline), "
        f"{c.decoder.live_word_score:g} (live view)",
    ]
    if c.training.get("init_from"):
        lines.append(f"- **Fine-tuned from:** `{c.training['init_from']}`")
    lines.append("")
    for title, values in (("Data", c.data), ("Metrics", c.metrics)):
        lines += [f"## {title}", ""]
        lines += [f"- **{k}:** {_short(v)}" for k, v in values.items()] or ["(not declared)"]
        lines.append("")
    lines += ["## Training", ""]
    lines += (
        ["```", json.dumps(c.training, indent=2, sort_keys=True), "```"] if c.training else ["(not declared)"]
    )
    for card in (path.with_suffix(".md"), path.parent / f"{path.stem}.card.md"):
        if card.is_file():
            lines += ["", "---", "", card.read_text(encoding="utf-8", errors="replace")]
            break
    return "\n".join(lines)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 200 else text[:200] + "…"


class ModelCardDialog(QDialog):
    def __init__(
        self, path: Path, contract: ModelContract, provider: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {path.name}")
        self.resize(640, 600)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(model_card_markdown(path, contract, provider))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


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
