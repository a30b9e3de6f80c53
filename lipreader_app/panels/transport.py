"""Play/pause and a position slider for video files (hidden for a camera)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProxyStyle,
    QSlider,
    QStyle,
    QStyleOption,
    QToolButton,
    QWidget,
)

from lipreader_app.live_state import LiveState

SLIDER_STEPS_PER_S = 10  # slider resolution: 0.1 s


def mmss(seconds: float) -> str:
    minutes, rest = divmod(int(max(seconds, 0.0)), 60)
    return f"{minutes}:{rest:02d}"


class ClickToPositionStyle(QProxyStyle):
    """The application's style, except that a left click on a slider moves the handle to the click
    (instead of a page step towards it) and starts dragging it from there."""

    def styleHint(  # noqa: N802 (Qt's name)
        self,
        hint: QStyle.StyleHint,
        option: QStyleOption | None = None,
        widget: QWidget | None = None,
        data: object = None,
    ) -> int:
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, data)


class TransportBar(QWidget):
    """Pause button, position slider and time; seeking happens when the slider is released (a click
    on it is a press and a release there)."""

    pause_clicked = Signal()
    seek_requested = Signal(float)  # seconds into the source

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._duration = 0.0
        self._paused = False
        self._ended = False  # the file played to its end: the bar shows the end until the next stream
        self._button = QToolButton()
        self._button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space stays the window's pause key
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider_style = ClickToPositionStyle()  # kept here: the slider does not own its style
        self._slider.setStyle(self._slider_style)
        self._slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._slider.setToolTip("Click or drag to seek")
        self._time = QLabel("0:00 / 0:00")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._button)
        layout.addWidget(self._slider, 1)
        layout.addWidget(self._time)
        self.set_duration(0.0)
        self._button.clicked.connect(self.pause_clicked)
        self._slider.sliderReleased.connect(self._on_slider_released)
        self._slider.sliderMoved.connect(self._on_slider_moved)  # the time dragged to, before the seek
        state.changed.connect(self._update_position)

    @property
    def paused(self) -> bool:
        """Whether the button offers play (paused, or the file has ended)."""
        return self._paused

    def set_duration(self, seconds: float) -> None:
        """Length of the file starting to play (the button offers pause); 0 disables the bar, whose
        button offers play (a camera or no source)."""
        self._duration = seconds
        self._ended = False
        self._slider.setRange(0, int(seconds * SLIDER_STEPS_PER_S))
        self.setEnabled(seconds > 0)
        self._show_time(self._state.position if seconds > 0 else 0.0)
        self.set_paused(seconds <= 0)

    def set_paused(self, paused: bool) -> None:
        """Offer play (`paused`) or pause; with no file (a camera) the disabled bar offers play."""
        paused = paused or self._duration <= 0
        self._paused = paused
        icon = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self._button.setIcon(self.style().standardIcon(icon))
        self._button.setToolTip("Play (Space)" if paused else "Pause (Space)")

    def set_ended(self, at: float | None = None) -> None:
        """The file played to its end (None), or ended early `at` seconds (cut short): the bar
        shows where, and the button plays it again."""
        self._ended = True
        self.set_paused(True)
        self._button.setToolTip("Play again from the start (Space)")
        end = self._duration if at is None else min(at, self._duration)
        self._slider.setValue(self._slider.maximum() if at is None else int(end * SLIDER_STEPS_PER_S))
        self._show_time(end)

    def _show_time(self, position: float) -> None:
        self._time.setText(f"{mmss(position)} / {mmss(self._duration)}")

    def _update_position(self) -> None:
        if self._duration <= 0 or self._ended or self._slider.isSliderDown():
            return
        self._slider.setValue(int(self._state.position * SLIDER_STEPS_PER_S))
        self._show_time(self._state.position)

    def _on_slider_moved(self, value: int) -> None:
        self._show_time(value / SLIDER_STEPS_PER_S)

    def _on_slider_released(self) -> None:
        self.seek_requested.emit(self._slider.value() / SLIDER_STEPS_PER_S)
