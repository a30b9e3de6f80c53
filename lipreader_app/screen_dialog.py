"""Source ▸ Screen…: choose the part of the screen to read lips from, a whole monitor or a rectangle.

Like the other dialogs it is shown non-modally; OK emits `chosen` with the region (core.screen's
Region) and the window starts reading it.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QRect, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.screen import Monitor, Rect, Region
from core.video import MAX_SIDE, MIN_SIDE

CENTRE_PART = 0.5  # a rectangle not chosen yet: this part of the monitor's width and height, centred
NOTE = (
    "LipReader reads the largest face in this part of the screen, e.g. the other person in a video "
    "call. Keep LipReader's own window out of it: it would read its own picture."
)
OFF_SCREEN = "This rectangle runs off the screen ({}): it cannot be captured."
OVERLAP = "This region overlaps LipReader's window: move the window off it, or choose another region."
FLOATING_OVERLAP = (
    "The floating captions are over the screen region read: keep them off the face, or they hide the lips"
)


def centre_rect(monitor: Rect) -> Rect:
    """The middle CENTRE_PART of `monitor` (left, top, width, height), at least MIN_SIDE a side."""
    left, top, width, height = monitor
    w, h = max(MIN_SIDE, int(width * CENTRE_PART)), max(MIN_SIDE, int(height * CENTRE_PART))
    return left + (width - w) // 2, top + (height - h) // 2, w, h


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rectangles (left, top, width, height) share any pixel."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def window_rect(window: QWidget) -> Rect:
    """The window's frame on the screen in screen pixels, as mss counts them. Qt's are logical:
    each screen's top-left corner stays where it is in screen pixels and the rest of it is scaled
    from there by its device pixel ratio (Qt's high-DPI scaling), so a window on a second monitor
    at x=1920 is mapped from 1920, not from 0. macOS counts in points in Qt and mss alike."""
    g: QRect = window.frameGeometry()
    ratio = 1.0 if sys.platform == "darwin" else window.devicePixelRatioF()
    screen = window.screen().geometry()
    ox, oy = screen.x(), screen.y()
    x, y = ox + round((g.x() - ox) * ratio), oy + round((g.y() - oy) * ratio)
    return x, y, round(g.width() * ratio), round(g.height() * ratio)


class ScreenDialog(QDialog):
    """A monitor from the list, or a rectangle (x, y, width, height) in screen pixels; a warning
    while the region covers the main window."""

    chosen = Signal(object)  # the Region: a monitor number or (left, top, width, height)

    def __init__(self, monitors: list[Monitor], region: Region, window: QWidget) -> None:
        """monitors: as core.screen.list_monitors gives them (0, all together, first); region: the
        one chosen last (preselected); window: the main window, kept out of the region."""
        super().__init__(window)
        self.setWindowTitle("Read lips from the screen")
        self._monitors = {m.number: m for m in monitors}
        self._window = window
        desktop = monitors[0].rect
        self.monitor_button = QRadioButton("Whole &monitor")
        self.rect_button = QRadioButton("&Rectangle")
        group = QButtonGroup(self)
        for button in (self.monitor_button, self.rect_button):
            group.addButton(button)
        self.monitor_combo = QComboBox()
        shown = monitors[1:] if len(monitors) > 2 else monitors[1:2]  # "all together": with several
        for m in shown + (monitors[:1] if len(monitors) > 2 else []):
            self.monitor_combo.addItem(m.describe(), m.number)
        self.x_spin = self._spin(desktop[0], desktop[0] + desktop[2] - MIN_SIDE, "X")
        self.y_spin = self._spin(desktop[1], desktop[1] + desktop[3] - MIN_SIDE, "Y")
        self.width_spin = self._spin(MIN_SIDE, min(MAX_SIDE, desktop[2]), "Width")
        self.height_spin = self._spin(MIN_SIDE, min(MAX_SIDE, desktop[3]), "Height")
        self._rect_spins = (self.x_spin, self.y_spin, self.width_spin, self.height_spin)
        rect_form = QGridLayout()
        for column, (name, spin) in enumerate(
            (("X", self.x_spin), ("Y", self.y_spin), ("Width", self.width_spin), ("Height", self.height_spin))
        ):
            rect_form.addWidget(QLabel(name), 0, column)
            rect_form.addWidget(spin, 1, column)
        note = QLabel(NOTE)
        note.setWordWrap(True)
        self.warning = QLabel(OVERLAP)
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b35900;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Capture")
        self.buttons.accepted.connect(self._on_accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow(self.monitor_button, self.monitor_combo)
        form.addRow(self.rect_button)
        form.addRow(rect_form)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self._set_region(region)
        self.monitor_button.toggled.connect(self._update)
        self.monitor_combo.currentIndexChanged.connect(self._on_monitor_changed)
        for spin in self._rect_spins:
            spin.valueChanged.connect(self._update)
        self._update()

    def _spin(self, low: int, high: int, name: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, max(low, high))
        spin.setSuffix(" px")
        spin.setAccessibleName(name)
        return spin

    def _set_region(self, region: Region) -> None:
        """Preselect `region`: a rectangle, or a monitor with its centre offered as the rectangle."""
        if isinstance(region, int):
            self.monitor_combo.setCurrentIndex(max(self.monitor_combo.findData(region), 0))
            self.monitor_button.setChecked(True)
            self._set_rect(centre_rect(self._monitors[int(self.monitor_combo.currentData())].rect))
        else:  # the monitor offered is the one the rectangle's centre is on
            centre = (region[0] + region[2] // 2, region[1] + region[3] // 2, 1, 1)
            for i in range(self.monitor_combo.count()):
                if overlaps(centre, self._monitors[int(self.monitor_combo.itemData(i))].rect):
                    self.monitor_combo.setCurrentIndex(i)
                    break
            self._set_rect(region)
            self.rect_button.setChecked(True)

    def _set_rect(self, rect: Rect) -> None:
        for spin, value in zip(self._rect_spins, rect, strict=True):
            spin.setValue(value)

    def region(self) -> Region:
        """What is chosen: the monitor's number, or the rectangle (left, top, width, height)."""
        if self.monitor_button.isChecked():
            return int(self.monitor_combo.currentData())
        left, top, width, height = (spin.value() for spin in self._rect_spins)
        return left, top, width, height

    def chosen_rect(self) -> Rect:
        """The region's rectangle on the screen (a monitor's, or the rectangle itself)."""
        region = self.region()
        return self._monitors[region].rect if isinstance(region, int) else region

    @property
    def overlapping(self) -> bool:
        """Whether the region chosen covers part of the main window (a warning is shown)."""
        return overlaps(self.chosen_rect(), window_rect(self._window))

    @property
    def off_screen(self) -> bool:
        """Whether the rectangle chosen runs off the screen (it cannot be captured: Capture is off)."""
        (left, top, width, height), (sl, st, sw, sh) = self.chosen_rect(), self._monitors[0].rect
        return left < sl or top < st or left + width > sl + sw or top + height > st + sh

    def _on_monitor_changed(self) -> None:
        """Another monitor: the rectangle is offered on it, as its centre."""
        self._set_rect(centre_rect(self._monitors[int(self.monitor_combo.currentData())].rect))
        self._update()

    def _update(self) -> None:
        rect_chosen = self.rect_button.isChecked()
        self.monitor_combo.setEnabled(not rect_chosen)
        for spin in self._rect_spins:
            spin.setEnabled(rect_chosen)
        off = self.off_screen
        self.warning.setText(OFF_SCREEN.format(self._monitors[0].describe_size()) if off else OVERLAP)
        self.warning.setVisible(off or self.overlapping)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not off)

    def _on_accept(self) -> None:
        self.chosen.emit(self.region())
        self.accept()
