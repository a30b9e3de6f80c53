"""*File → Preferences…*: the dialog that edits the Preferences the user chooses (the live window and
hop, the decoder, face landmarks, final words, the execution provider and the camera).

It is shown non-modally (never with exec()), so tests and --screenshot runs never block on it.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.contract import ModelContract
from core.engine import MAX_WINDOW, MIN_WINDOW
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


def shown_preferences(chosen: Preferences, current: Preferences) -> Preferences:
    """`current` with what the Preferences dialog shows as `chosen` there: the dialog is not modal,
    and what the View menu or Source ▸ Screen… kept while it was open must stay."""
    return dataclasses.replace(current, **{name: getattr(chosen, name) for name in PREFERENCES_SHOWN})


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
