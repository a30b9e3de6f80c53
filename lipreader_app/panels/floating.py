"""View ▸ Floating captions: the live caption in a small bar that stays above every other window.

Reading lips from a region of the screen (Source ▸ Screen…: the other person in a video call), the
main window must stay out of that region, or it reads its own picture; this bar shows the caption
where the user is looking instead. It is frameless, dark and translucent, shows the LiveState the
main CaptionPanel shows (the same `caption_html`, in light colours; between sentences, the sentence
read last, as it was read again when it ended), is dragged by pressing anywhere
on it and resized by its corner grip; its × button hides it (`dismissed` says so). It never takes the
keyboard: the call's chat keeps it, even while the bar is dragged.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import QGridLayout, QLabel, QSizeGrip, QToolButton, QWidget

from lipreader_app.live_state import LiveState
from lipreader_app.panels.captions import CaptionStyle, caption_html
from lipreader_app.settings import CAPTION_POINTS

# a plain window on Linux, where KWin hides or minimises a tool window with its app's (a taskbar
# entry is the cost); a tool window elsewhere (no taskbar entry; macOS: kept shown, see __init__)
KIND = Qt.WindowType.Window if sys.platform.startswith("linux") else Qt.WindowType.Tool
FLOATING_FLAGS = (
    Qt.WindowType.WindowStaysOnTopHint
    | Qt.WindowType.FramelessWindowHint
    | Qt.WindowType.WindowDoesNotAcceptFocus
    | KIND
)
TITLE = "LipReader captions"  # what a window list or a screen reader calls it
HINT = "LipReader captions appear here"  # shown until a word is read
BETWEEN_STYLE = "color:#bbb"  # the sentence read last, shown between sentences: dimmer than live words
ON_DARK = CaptionStyle(
    final="color:#fff",
    partial="color:#aaa; font-style:italic",
    waiting=f"<span style='color:#777'>{HINT}</span>",
)
BACKGROUND = QColor(16, 16, 16, 200)  # the bar's colour: dark, a little translucent (alpha of 255)
CORNER_RADIUS = 10  # pixels, of the bar's rounded corners
MARGIN = 12  # pixels between the bar's edge and its text
BUTTON_STYLE = "QToolButton { color:#bbb; border:none; font-size:16px; } QToolButton:hover { color:#fff; }"
DEFAULT_WIDTH = 900  # pixels, the bar's width the first time (at most DEFAULT_SCREEN_FRACTION of the screen)
DEFAULT_SCREEN_FRACTION = 0.8
DEFAULT_LINES = 2  # lines of caption the bar is high the first time
BOTTOM_GAP = 60  # pixels between the bar and the bottom of the screen the first time


def clamped(rect: QRect, areas: Sequence[QRect]) -> QRect:
    """`rect` moved, and shrunk if it is larger, to lie wholly within one of `areas` (the screens'
    available geometries): the one it overlaps most, or if it overlaps none (a monitor since
    unplugged) the first, the primary screen's. `rect` as it is with no areas."""
    if not areas:
        return QRect(rect)

    def overlap(area: QRect) -> int:
        common = area.intersected(rect)
        return max(common.width(), 0) * max(common.height(), 0)

    best = max(areas, key=overlap)  # the first of those that overlap it as much
    area = best if overlap(best) > 0 else areas[0]
    width, height = min(rect.width(), area.width()), min(rect.height(), area.height())
    left = min(max(rect.left(), area.left()), area.left() + area.width() - width)
    top = min(max(rect.top(), area.top()), area.top() + area.height() - height)
    return QRect(left, top, width, height)


def screen_areas() -> list[QRect]:
    """The available geometry of every screen (without task bars and docks), the primary first."""
    primary = QGuiApplication.primaryScreen()
    screens = sorted(QGuiApplication.screens(), key=lambda s: s is not primary)
    return [s.availableGeometry() for s in screens]


class CaptionTail(QWidget):
    """A word-wrapped rich-text line anchored at the bottom: text longer than fits shows its last
    lines (the words just read), not its first."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)

    def set_text(self, text: str) -> None:
        self.label.setText(text)
        self._place()

    def set_font(self, font: QFont) -> None:
        """Show the text in `font`; the line is one of its lines high at least."""
        self.label.setFont(font)
        self.setMinimumHeight(QFontMetrics(font).lineSpacing())
        self._place()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        self._place()

    def _place(self) -> None:
        """The label as high as its text wrapped to this width, its bottom on this one's (the part
        above, if any, is cut off)."""
        height = max(self.height(), self.label.heightForWidth(self.width()))
        self.label.setGeometry(0, self.height() - height, self.width(), height)


class FloatingCaptions(QWidget):
    """A frameless, always-on-top caption bar showing `state`'s utterance in progress, as the main
    window's live caption does; a top-level window of its own (no parent: the main window minimized
    leaves it shown)."""

    dismissed = Signal()  # the user hides it (its × button, the window manager): emitted before it hides

    def __init__(self, state: LiveState) -> None:
        super().__init__(None, FLOATING_FLAGS)
        self._state = state
        self._version = -1
        self._drag_from: QPoint | None = None  # the press in the bar, while it is dragged by hand
        self.setWindowTitle(TITLE)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)  # the rounded bar paints itself
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)  # the user's call keeps the keys
        self.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)  # the main window's closing quits
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)  # not hidden when the call is active
        self._caption = CaptionTail(ON_DARK.waiting)
        self._close = QToolButton()
        self._close.setText("×")
        self._close.setToolTip("Hide the floating captions (View ▸ Floating captions shows them again)")
        self._close.setStyleSheet(BUTTON_STYLE)
        self._close.setCursor(Qt.CursorShape.ArrowCursor)
        grip = QSizeGrip(self)
        grip.setToolTip("Drag to resize")
        layout = QGridLayout(self)
        layout.setContentsMargins(MARGIN, MARGIN // 2, MARGIN // 2, MARGIN // 2)
        layout.addWidget(self._caption, 0, 0, 2, 1)
        layout.addWidget(self._close, 0, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        layout.addWidget(grip, 1, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
        layout.setColumnStretch(0, 1)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.set_point_size(CAPTION_POINTS)
        state.changed.connect(self._update_view)
        self._close.clicked.connect(self._on_close_clicked)

    @property
    def caption_text(self) -> str:
        """The caption as plain text ("" while no word is read)."""
        return self._state.caption_text

    @property
    def caption_html(self) -> str:
        """The caption as the bar shows it (rich text)."""
        return self._caption.label.text()

    @property
    def point_size(self) -> int:
        """The caption's text size, points."""
        return self._caption.label.font().pointSize()

    def set_point_size(self, points: int) -> None:
        """Show the caption at `points` (View ▸ Larger / Smaller captions), a line high at least."""
        font = QFont(self._caption.label.font())
        font.setPointSize(points)
        self._caption.set_font(font)

    def show_at(self, rect: QRect | None = None) -> None:
        """Show the bar at `rect` (screen pixels; None: bottom centre of the primary screen), moved
        onto a screen if it is not on one now (remembered on a monitor since unplugged)."""
        areas = screen_areas()
        if rect is None:
            rect = self._default_rect(areas[0] if areas else QRect(0, 0, DEFAULT_WIDTH, DEFAULT_WIDTH))
        self.setGeometry(clamped(rect, areas))
        self.show()
        self.raise_()

    def _default_rect(self, area: QRect) -> QRect:
        """Where the bar goes the first time: DEFAULT_LINES high, at the bottom centre of `area`."""
        width = min(DEFAULT_WIDTH, round(area.width() * DEFAULT_SCREEN_FRACTION))
        lines = QFontMetrics(self._caption.label.font()).lineSpacing() * DEFAULT_LINES
        height = max(lines + 2 * MARGIN, self.minimumSizeHint().height())
        left = area.left() + (area.width() - width) // 2
        return QRect(left, area.top() + area.height() - height - BOTTOM_GAP, width, height)

    def _update_view(self) -> None:
        state = self._state
        if state.caption_version == self._version:
            return
        self._version = state.caption_version
        if state.current or state.partial or state.last_read is None:
            self._caption.set_text(caption_html(state.current, state.partial, ON_DARK))
        else:  # between sentences the last one stays, as a subtitle does, until the next one begins
            last = html.escape(state.last_read.text)
            self._caption.set_text(f"<span style='{BETWEEN_STYLE}'>{last}</span>")

    def _on_close_clicked(self) -> None:
        self.dismissed.emit()  # still shown: where it is can be kept
        self.hide()

    # -- painting, dragging, keys ---------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BACKGROUND)
        painter.drawRoundedRect(self.rect(), CORNER_RADIUS, CORNER_RADIUS)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """A press anywhere on the bar (but its buttons) drags it: the window manager moves it where
        it can (Wayland too), else it follows the mouse (mouseMoveEvent)."""
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        handle = self.windowHandle()
        moved_by_system = handle is not None and handle.startSystemMove()
        self._drag_from = None if moved_by_system else event.globalPosition().toPoint() - self.pos()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self.move(event.globalPosition().toPoint() - self._drag_from)
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag_from = None
        super().mouseReleaseEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Closed by the window manager (Alt+F4 on it): hidden as by its × button."""
        if self.isVisible() and event.spontaneous():
            self.dismissed.emit()
        super().closeEvent(event)
