"""The status bar (source, frame rates, model, execution provider, latencies) and the message banner."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStatusBar, QToolButton, QWidget

from lipreader_app.live_state import LiveState, Rates

STAGE_SHORT = {"landmarks": "landmarks", "crop": "crop", "model": "model", "decode": "decode"}
BANNER_STYLES = {
    "error": "background:#fdecea; color:#611a15; border:1px solid #f5c2c0",
    "warning": "background:#fff4e5; color:#663c00; border:1px solid #ffd599",
    "info": "background:#e8f4fd; color:#0d3c61; border:1px solid #b6dcfb",
}
MESSAGE_MS = 10_000  # how long a message stays in the status bar
FIELD_STYLE = "padding: 0 6px; border-left: 1px solid #bbb"  # permanent fields, separated by a rule


def provider_name(provider: str) -> str:
    """'CUDAExecutionProvider' -> 'CUDA'."""
    return provider.removesuffix("ExecutionProvider") or "?"


class StatusBar(QStatusBar):
    """Permanent fields on the right; transient messages on the left."""

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = QLabel("no source")
        self._fps = QLabel("")
        self._model = QLabel("no model")
        self._provider = QLabel("")
        self._latency = QLabel("")
        for label, tip in (
            (self._source, "Where frames come from"),
            (self._fps, "Frames processed per second · panel redraws per second"),
            (self._model, "The model in use (Model ▸ Model card…)"),
            (self._provider, "ONNX Runtime execution provider really in use"),
            (self._latency, "Mean milliseconds per frame and stage; lag = capture to display"),
        ):
            label.setToolTip(tip)
            label.setStyleSheet(FIELD_STYLE)
            self.addPermanentWidget(label)
        state.rates_changed.connect(self._update_rates)

    def set_source(self, text: str) -> None:
        self._source.setText(text)

    def set_model(self, name: str, provider: str) -> None:
        self._model.setText(f"model {name}")
        self._provider.setText(provider_name(provider))

    def field_texts(self) -> dict[str, str]:
        """What the permanent fields show (for tests and the benchmark)."""
        return {
            "source": self._source.text(),
            "fps": self._fps.text(),
            "model": self._model.text(),
            "provider": self._provider.text(),
            "latency": self._latency.text(),
        }

    def clear_rates(self) -> None:
        self._fps.setText("")
        self._latency.setText("")

    def _update_rates(self, rates: Rates) -> None:
        self._fps.setText(f"{rates.processed_fps:.1f} fps · redraw {rates.redraw_fps:.1f}/s")
        stages = " · ".join(f"{STAGE_SHORT.get(k, k)} {v:.0f}" for k, v in rates.stage_ms.items())
        lag = "" if math.isnan(rates.lag_ms) else f" · lag {rates.lag_ms:.0f} ms"
        self._latency.setText(f"{stages} ms{lag}" if stages else lag.removeprefix(" · "))


class Banner(QFrame):
    """A non-modal message strip at the top of the window; one per kind ("error", "warning", "info").

    The highest-priority kind with a message is shown; the user can dismiss it.
    """

    ORDER = ("error", "warning", "info")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._messages: dict[str, str] = {}
        self._label = QLabel("")
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self._on_close_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self._label, 1)
        layout.addWidget(close)
        self.setVisible(False)

    @property
    def text(self) -> str:
        return self._label.text() if self.isVisibleTo(self.parentWidget()) else ""

    @property
    def kind(self) -> str | None:
        return next((k for k in self.ORDER if k in self._messages), None)

    def show_message(self, kind: str, text: str) -> None:
        self._messages[kind] = text
        self._refresh()

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self._messages.clear()
        else:
            self._messages.pop(kind, None)
        self._refresh()

    def clear_message(self, text: str) -> None:
        """Take down `text`, whatever its kind (a message that no longer applies)."""
        self._messages = {k: m for k, m in self._messages.items() if m != text}
        self._refresh()

    def _refresh(self) -> None:
        kind = self.kind
        if kind is None:
            self.setVisible(False)
            return
        self.setStyleSheet(f"Banner {{{BANNER_STYLES[kind]}; border-radius:4px}}")
        self._label.setText(self._messages[kind])
        self.setVisible(True)

    def _on_close_clicked(self) -> None:
        self.clear(self.kind)
