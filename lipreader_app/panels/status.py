"""The status bar (a message, then source, frame rates, model, execution provider, latencies) and the
message banner."""

from __future__ import annotations

import html
import math

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QStatusBar, QToolButton, QWidget

from lipreader_app.live_state import LiveState, Rates

STAGE_SHORT = {"landmarks": "landmarks", "crop": "crop", "model": "model", "decode": "decode"}
BANNER_STYLES = {
    "error": "background:#fdecea; color:#611a15; border:1px solid #f5c2c0",
    "warning": "background:#fff4e5; color:#663c00; border:1px solid #ffd599",
    "info": "background:#e8f4fd; color:#0d3c61; border:1px solid #b6dcfb",
}
MESSAGE_MS = 10_000  # how long a message stays in the status bar
MESSAGE_INDENT = 4  # pixels before the message, from the window's edge
FIELD_PADDING = 4  # pixels either side of the text of a permanent field (a rule separates the fields)
FIELDS = (  # the permanent fields, left to right, and their tooltips
    ("source", "Where frames come from"),
    ("fps", "Frames processed per second · panel redraws per second"),
    ("model", "The model in use (Model ▸ Model card…)"),
    ("provider", "ONNX Runtime execution provider really in use"),
    ("latency", "Mean milliseconds per frame and stage; lag = capture to display"),
)


def provider_name(provider: str) -> str:
    """'CUDAExecutionProvider' -> 'CUDA'."""
    return provider.removesuffix("ExecutionProvider") or "?"


class ElidedLabel(QLabel):
    """One line of text that ends in … when the label is too narrow for it; the tooltip holds the
    whole text (or `tip`, then the whole text). It asks for the room of the whole text, and can do
    with the room of "…" (with `policy` Ignored: it takes the room it is given, asking for none)."""

    def __init__(
        self,
        tip: str = "",
        policy: QSizePolicy.Policy = QSizePolicy.Policy.Preferred,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._full, self._tip = "", tip
        self.setSizePolicy(policy, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setToolTip(tip)

    @property
    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(f"{self._tip}\n{text}" if self._tip and text else self._tip or text)
        self.updateGeometry()
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return self._hint(self._full)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self._hint("…" if self._full else "")

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _hint(self, text: str) -> QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(text) + margins.left() + margins.right() + 1
        return QSize(width, super().sizeHint().height())

    def _elide(self) -> None:
        width = self.contentsRect().width()
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width))


class StatusBar(QStatusBar):
    """A transient message on the left (elided to the room left); permanent fields on the right,
    each after a rule, an empty one hidden with its rule."""

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._message = ElidedLabel(policy=QSizePolicy.Policy.Ignored)  # the room the fields leave
        self._message.setContentsMargins(MESSAGE_INDENT, 0, 0, 0)
        self.addWidget(self._message, 1)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clear_message)
        self._fields: dict[str, tuple[QFrame, ElidedLabel]] = {}
        for name, tip in FIELDS:
            rule = QFrame()
            rule.setFrameShape(QFrame.Shape.VLine)
            rule.setFrameShadow(QFrame.Shadow.Sunken)
            label = ElidedLabel(tip)
            label.setContentsMargins(FIELD_PADDING, 0, FIELD_PADDING, 0)
            self.addPermanentWidget(rule)
            self.addPermanentWidget(label)
            self._fields[name] = (rule, label)
        self._set("source", "no source")
        self._set("model", "no model")
        for name in ("fps", "provider", "latency"):
            self._set(name, "")
        state.rates_changed.connect(self._update_rates)

    # -- the message ------------------------------------------------------------------------------
    @property
    def message(self) -> str:
        """The message shown ("" when none is), whole even when it is elided."""
        return self._message.full_text

    def show_message(self, text: str, ms: int = MESSAGE_MS) -> None:
        """Show `text` for `ms` milliseconds (0: until the next message or clear_message)."""
        self._message.set_full_text(text)
        if ms > 0:
            self._message_timer.start(ms)
        else:
            self._message_timer.stop()

    def clear_message(self) -> None:
        self._message_timer.stop()
        self._message.set_full_text("")

    # -- the permanent fields ---------------------------------------------------------------------
    def _set(self, name: str, text: str) -> None:
        rule, label = self._fields[name]
        label.set_full_text(text)
        rule.setVisible(bool(text))
        label.setVisible(bool(text))

    def set_source(self, text: str) -> None:
        self._set("source", text)

    def set_model(self, name: str, provider: str) -> None:
        self._set("model", f"model {name}")
        self._set("provider", provider_name(provider))

    def field_texts(self) -> dict[str, str]:
        """What the permanent fields show (for tests and the benchmark)."""
        return {name: label.full_text for name, (_, label) in self._fields.items()}

    def clear_rates(self) -> None:
        self._set("fps", "")
        self._set("latency", "")

    def _update_rates(self, rates: Rates) -> None:
        self._set("fps", f"{rates.processed_fps:.1f} fps · redraw {rates.redraw_fps:.1f}/s")
        stages = " · ".join(f"{STAGE_SHORT.get(k, k)} {v:.0f}" for k, v in rates.stage_ms.items())
        lag = "" if math.isnan(rates.lag_ms) else f" · lag {rates.lag_ms:.0f} ms"
        self._set("latency", f"{stages} ms{lag}" if stages else lag.removeprefix(" · "))


class Banner(QFrame):
    """A non-modal message strip at the top of the window; one per kind ("error", "warning", "info").

    The highest-priority kind with a message is shown; the user can dismiss it. A message may end in
    a link, which emits `link_activated` with its key when clicked.
    """

    ORDER = ("error", "warning", "info")
    link_activated = Signal(str)  # the key of the link clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._messages: dict[str, tuple[str, tuple[str, str] | None]] = {}  # kind -> text, link
        self._label = QLabel("")
        self._label.setWordWrap(True)
        self._label.setTextFormat(Qt.TextFormat.RichText)
        self._label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self._label.linkActivated.connect(self.link_activated)
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
        """The message shown, as plain text ("" when none is)."""
        kind = self.kind
        if kind is None or not self.isVisibleTo(self.parentWidget()):
            return ""
        text, link = self._messages[kind]
        return f"{text} {link[1]}" if link else text

    @property
    def kind(self) -> str | None:
        return next((k for k in self.ORDER if k in self._messages), None)

    def message(self, kind: str) -> str | None:
        """The message of `kind`, shown or not (None when there is none)."""
        return self._messages[kind][0] if kind in self._messages else None

    def show_message(self, kind: str, text: str, link: tuple[str, str] | None = None) -> None:
        """Show `text` as the message of `kind`; `link`: (key, words) of a link after it."""
        self._messages[kind] = (text, link)
        self._refresh()

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self._messages.clear()
        else:
            self._messages.pop(kind, None)
        self._refresh()

    def clear_message(self, text: str) -> None:
        """Take down `text`, whatever its kind (a message that no longer applies)."""
        self._messages = {k: m for k, m in self._messages.items() if m[0] != text}
        self._refresh()

    def _refresh(self) -> None:
        kind = self.kind
        if kind is None:
            self.setVisible(False)
            return
        self.setStyleSheet(f"Banner {{{BANNER_STYLES[kind]}; border-radius:4px}}")
        text, link = self._messages[kind]
        shown = html.escape(text)
        if link is not None:
            shown += f" <a href='{html.escape(link[0])}'>{html.escape(link[1])}</a>"
        self._label.setText(shown)
        self.setVisible(True)

    def _on_close_clicked(self) -> None:
        self.clear(self.kind)
