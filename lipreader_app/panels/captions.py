"""The running transcript: the utterance in progress (partial words grey italic) and past ones."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from lipreader_app.live_state import LiveState, Utterance
from lipreader_app.settings import CAPTION_POINTS

CAPTION_PADDING = 16  # pixels around the live caption's text, above and below (padding and border)
FINAL_STYLE = "color:#111"
PARTIAL_STYLE = "color:#888; font-style:italic"
WAITING = "<span style='color:#aaa'>…</span>"
HISTORY_MAX = 500  # utterances kept in the list
REVISED_MARK = "  ✎"  # after a history line whose live reading was corrected when the sentence ended


def clock(seconds: float) -> str:
    """'m:ss.s' for the history list."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"


@dataclass(frozen=True)
class CaptionStyle:
    """How the live caption's words look: CSS of their spans, and the rich text shown with none."""

    final: str = FINAL_STYLE  # words that will not change
    partial: str = PARTIAL_STYLE  # words that may still change
    waiting: str = WAITING  # shown while no word of an utterance is read


ON_LIGHT = CaptionStyle()  # the main window's live caption: dark words on a light panel


def caption_html(final: list, partial: tuple, style: CaptionStyle = ON_LIGHT) -> str:
    """Rich text of the utterance in progress: final words steady, partial ones grey italic, in
    `style`'s colours."""
    parts = [f"<span style='{style.final}'>{html.escape(w.text)}</span>" for w in final]
    parts += [f"<span style='{style.partial}'>{html.escape(w.text)}</span>" for w in partial]
    return " ".join(parts) or style.waiting


class CaptionPanel(QWidget):
    """Live caption line above a history of utterances; clicking a past one asks to seek there."""

    seek_requested = Signal(float)  # seconds into the source

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._version = -1
        self._shown: list[Utterance] = []  # the history's utterances the list shows, in order
        self._caption = QLabel(WAITING)
        self._caption.setTextFormat(Qt.TextFormat.RichText)
        self._caption.setWordWrap(True)
        self.set_point_size(CAPTION_POINTS)
        self._caption.setStyleSheet("background:#fafafa; border:1px solid #ddd; padding:6px")
        self._history = QListWidget()
        self._history.setAlternatingRowColors(True)
        self._history.setToolTip("Past utterances; click one to replay the video from there")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(
            QLabel("<b>Live caption</b> <span style='color:#888'>(grey italic: not final yet)</span>")
        )
        layout.addWidget(self._caption)
        layout.addWidget(QLabel("<b>History</b>"))
        layout.addWidget(self._history, 1)
        state.changed.connect(self._update_view)
        self._history.itemClicked.connect(self._on_item_clicked)

    @property
    def caption_text(self) -> str:
        """The live caption as plain text (what the label shows)."""
        return self._state.caption_text

    @property
    def point_size(self) -> int:
        """The live caption's text size, points."""
        return self._caption.font().pointSize()

    def set_point_size(self, points: int) -> None:
        """Show the live caption at `points` (View ▸ Larger / Smaller captions), a line high at least."""
        font = QFont(self._caption.font())
        font.setPointSize(points)
        self._caption.setFont(font)
        self._caption.setMinimumHeight(QFontMetrics(font).lineSpacing() + CAPTION_PADDING)

    def history_texts(self) -> list[str]:
        return [self._history.item(i).text() for i in range(self._history.count())]

    def clear(self) -> None:
        self._history.clear()
        self._shown = []
        self._caption.setText(WAITING)
        self._version = -1

    def _update_view(self) -> None:
        state = self._state
        if state.caption_version == self._version:
            return
        self._version = state.caption_version
        self._caption.setText(caption_html(state.current, state.partial))
        self._show_history(state.history[-HISTORY_MAX:])

    def _show_history(self, history: list[Utterance]) -> None:
        """Show `history`, changing only the lines that changed: the oldest drop out past
        HISTORY_MAX, and from the first utterance that differs (a revision that landed after later
        utterances closed, a reset) the lines are made again."""
        shown = self._shown
        first = next((i for i, u in enumerate(shown) if history and u is history[0]), len(shown))
        same = 0
        while same < len(history) and first + same < len(shown) and shown[first + same] is history[same]:
            same += 1
        while self._history.count() > first + same:
            self._history.takeItem(self._history.count() - 1)
        for _ in range(min(first, self._history.count())):
            self._history.takeItem(0)
        for utterance in history[same:]:
            self._history.addItem(self._history_item(utterance))
        if len(history) > same:
            self._history.scrollToBottom()
        self._shown = list(history)

    @staticmethod
    def _history_item(utterance: Utterance) -> QListWidgetItem:
        mark = REVISED_MARK if utterance.live_text else ""
        item = QListWidgetItem(f"[{clock(utterance.start)}]  {utterance.text}{mark}")
        item.setData(Qt.ItemDataRole.UserRole, utterance.start)
        if utterance.live_text:
            item.setToolTip(f"Read again when the sentence ended; live it read: {utterance.live_text}")
        return item

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self.seek_requested.emit(float(item.data(Qt.ItemDataRole.UserRole)))
