"""Play/pause and a position slider for video files (hidden for a camera)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from lipreader_app.live_state import LiveState

SLIDER_STEPS_PER_S = 10  # slider resolution: 0.1 s


def mmss(seconds: float) -> str:
    minutes, rest = divmod(int(max(seconds, 0.0)), 60)
    return f"{minutes}:{rest:02d}"


class TransportBar(QWidget):
    """Pause button, position slider and time; seeking happens when the slider is released."""

    pause_clicked = Signal()
    seek_requested = Signal(float)  # seconds into the source

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._duration = 0.0
        self._button = QToolButton()
        self._button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space stays the window's pause key
        self._button.setToolTip("Pause / play (Space)")
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._slider.setToolTip("Drag to seek")
        self._time = QLabel("0:00 / 0:00")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._button)
        layout.addWidget(self._slider, 1)
        layout.addWidget(self._time)
        self.set_paused(False)
        self.set_duration(0.0)
        self._button.clicked.connect(self.pause_clicked)
        self._slider.sliderReleased.connect(self._on_slider_released)
        state.changed.connect(self._update_position)

    def set_duration(self, seconds: float) -> None:
        """Length of the file being played; 0 disables the bar (camera or no source)."""
        self._duration = seconds
        self._slider.setRange(0, int(seconds * SLIDER_STEPS_PER_S))
        self.setEnabled(seconds > 0)
        self._show_time(self._state.position if seconds > 0 else 0.0)

    def set_paused(self, paused: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self._button.setIcon(self.style().standardIcon(icon))

    def _show_time(self, position: float) -> None:
        self._time.setText(f"{mmss(position)} / {mmss(self._duration)}")

    def _update_position(self) -> None:
        if self._duration <= 0 or self._slider.isSliderDown():
            return
        self._slider.setValue(int(self._state.position * SLIDER_STEPS_PER_S))
        self._show_time(self._state.position)

    def _on_slider_released(self) -> None:
        self.seek_requested.emit(self._slider.value() / SLIDER_STEPS_PER_S)
