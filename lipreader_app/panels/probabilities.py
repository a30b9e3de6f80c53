"""The model's per-character probabilities over the sliding window, as a heat map, and its top picks."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lipreader_app.live_state import LiveState

COLORMAP = "inferno"  # dark = unlikely, bright = likely
TOP_K = 3  # candidates shown for the newest frame
TICK_POINT_SIZE = 7  # 28 characters must fit on the y axis
SMALL_TICK_POINT_SIZE = 6  # used when rows are too short for TICK_POINT_SIZE but not for this
SHOWN = {" ": "space"}  # how special vocabulary entries are labelled
WAITING = "waiting for the model's first window"
NO_MODEL = "no model loaded (Model ▸ Open model…)"


def label_of(token: str, is_blank: bool) -> str:
    """How a vocabulary entry is shown on the axis: the blank as "blank", a space as "space"."""
    return "blank" if is_blank else SHOWN.get(token, token)


def label_step(rows: int, height: float, label_height: float) -> int:
    """Label every how many rows of `rows` in `height` pixels so that labels `label_height` high do
    not overlap (1: every row)."""
    if rows <= 0 or height <= 0:
        return 1
    return max(1, math.ceil(label_height / (height / rows)))


def display_order(vocabulary: tuple[str, ...], blank: int) -> list[int]:
    """The heat map's rows top to bottom, as vocabulary indices: the space first, the blank last,
    the rest between in vocabulary order; so the two rows every reading turns on lie far apart and
    keep their labels when the rest are labelled every other row."""
    first = [i for i, t in enumerate(vocabulary) if t in SHOWN and i != blank]
    last = [blank] if 0 <= blank < len(vocabulary) else []
    return first + [i for i in range(len(vocabulary)) if i not in first and i not in last] + last


def labelled_rows(rows: int, step: int, always: list[int]) -> list[int]:
    """The rows of `rows` that get a label when only every `step`-th can: those in `always`, and every
    `step`-th of the others that is at least `step` rows from them."""
    regular = [r for r in range(0, rows, step) if all(abs(r - a) >= step for a in always)]
    return sorted({*always, *regular})


def best_path(probs: np.ndarray, vocabulary: tuple[str, ...], blank: int) -> str:
    """Greedy CTC reading of a window: argmax per frame, repeats merged, blanks dropped.

    probs: float32, shape (T, C).
    """
    path = np.argmax(probs, axis=1)
    keep = np.ones(len(path), bool)
    keep[1:] = path[1:] != path[:-1]
    return "".join(vocabulary[i] for i in path[keep] if i != blank and i < len(vocabulary)).strip()


def top_candidates(probs: np.ndarray, vocabulary: tuple[str, ...], blank: int, k: int = TOP_K) -> str:
    """The k likeliest entries of the newest frame, e.g. "a 81% · blank 10% · e 5%"."""
    last = probs[-1]
    order = np.argsort(last)[::-1][:k]
    return " · ".join(f"{label_of(vocabulary[i], i == blank)} {last[i]:.0%}" for i in order)


class ProbabilityPanel(QWidget):
    """Heat map (characters × frames of the latest window) with the window's greedy reading."""

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._version = -1
        self._vocabulary: tuple[str, ...] = ()
        self._blank = 0
        self._shape: tuple[int, int] | None = None
        self._step = 0  # rows per labelled row on the y axis (0: not set yet)
        self._tick_size = TICK_POINT_SIZE  # point size of the y axis labels
        self._plot = pg.PlotWidget(background="w")
        self._plot.setMenuEnabled(False)
        self._plot.setMouseEnabled(x=False, y=False)
        self._plot.hideButtons()
        self._plot.setLabel("bottom", "frame in window (newest right)")
        self._plot.getViewBox().invertY(True)
        self._plot.getViewBox().setDefaultPadding(0.0)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._image.setColorMap(pg.colormap.get(COLORMAP))
        self._plot.addItem(self._image)
        self._waiting = pg.TextItem(WAITING, anchor=(0.5, 0.5), color="#888")
        self._plot.addItem(self._waiting)
        tick_font = QFont("Sans", TICK_POINT_SIZE)
        fonts = (tick_font, QFont("Sans", SMALL_TICK_POINT_SIZE))
        self._fonts = [(f, QFontMetricsF(f).height()) for f in fonts]  # (font, label height), largest first
        axis = self._plot.getAxis("left")
        axis.setStyle(tickLength=0, tickFont=tick_font)
        axis.setWidth(40)
        self._plot.getAxis("bottom").setStyle(tickFont=tick_font)
        self._plot.getViewBox().sigResized.connect(self._update_ticks)
        self._title = QLabel("<b>Character probabilities</b> over the model's window")
        self._reading = QLabel("")
        self._reading.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._title)
        layout.addWidget(self._plot, 1)
        layout.addWidget(self._reading)
        self._tick_labels: list[str] = []
        self._update_axis((), 0)  # no model yet: no axes
        self.clear()
        state.changed.connect(self._update_view)

    def clear(self) -> None:
        """Empty heat map with a hint, until the model's first window; without a model, no axes."""
        self._image.clear()
        self._reading.setText("")
        self._version = -1
        self._shape = None
        if self._state.vocabulary != self._vocabulary:
            self._update_axis(self._state.vocabulary, self._state.blank)
        rows = max(len(self._state.vocabulary), 1)
        self._plot.setRange(xRange=(0, self._state.window or 1), yRange=(0, rows), padding=0)
        self._waiting.setPos((self._state.window or 1) / 2, rows / 2)
        self._waiting.setText(WAITING if self._vocabulary else NO_MODEL)
        self._waiting.setVisible(True)

    def _update_axis(self, vocabulary: tuple[str, ...], blank: int) -> None:
        self._vocabulary, self._blank = vocabulary, blank
        for side in ("left", "bottom"):
            self._plot.showAxis(side, bool(vocabulary))
        self._step = 0
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Label the rows: every row (in a smaller font if that fits), or the space, the blank and
        every 2nd, 3rd... of the others when rows are too short for a label."""
        if not self._vocabulary:
            return
        height = self._plot.getViewBox().sceneBoundingRect().height()
        rows, step = len(self._vocabulary), 1
        font = next((f for f, label in self._fonts if label_step(rows, height, label) == 1), None)
        if font is None:  # too short for every label even in the small font: every nth, in the usual one
            font, step = self._fonts[0][0], label_step(rows, height, self._fonts[0][1])
        if (step, font.pointSize()) == (self._step, self._tick_size):
            return
        self._step, self._tick_size = step, font.pointSize()
        self._plot.getAxis("left").setStyle(tickFont=font)
        order = display_order(self._vocabulary, self._blank)
        specials = [r for r, i in enumerate(order) if i == self._blank or self._vocabulary[i] in SHOWN]
        ticks = [
            (r + 0.5, label_of(self._vocabulary[order[r]], order[r] == self._blank))
            for r in labelled_rows(rows, step, specials)
        ]
        self._tick_labels = [label for _, label in ticks]
        self._plot.getAxis("left").setTicks([ticks, []])

    @property
    def tick_labels(self) -> list[str]:
        """The labels on the y axis, top to bottom."""
        return self._tick_labels if self._vocabulary else []

    def _update_view(self) -> None:
        state = self._state
        if state.probs is None or state.probs_version == self._version:
            return
        self._version = state.probs_version
        probs, vocabulary = state.probs, state.vocabulary
        if probs.ndim != 2 or probs.shape[1] != len(vocabulary):
            return  # a model whose vocabulary is not the state's: nothing sensible to show
        if vocabulary != self._vocabulary:
            self._update_axis(vocabulary, state.blank)
        window = max(state.window, probs.shape[0])
        if probs.shape[0] < window:  # the window is still filling: keep the newest frame on the right
            probs_shown = np.zeros((window, probs.shape[1]), np.float32)
            probs_shown[-probs.shape[0] :] = probs
        else:
            probs_shown = probs
        rows = probs_shown[:, display_order(vocabulary, state.blank)]
        self._image.setImage(rows.T, autoLevels=False, levels=(0.0, 1.0))
        self._waiting.setVisible(False)
        if self._shape != probs_shown.shape:
            self._shape = probs_shown.shape
            self._plot.setRange(xRange=(0, window), yRange=(0, probs.shape[1]), padding=0)
        reading = html.escape(best_path(probs, vocabulary, state.blank)) or "…"
        top = html.escape(top_candidates(probs, vocabulary, state.blank))
        self._reading.setText(
            f"Window reads: <b>{reading}</b><br><span style='color:#555'>Newest frame: {top}</span>"
        )
