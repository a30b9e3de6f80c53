"""The video with the face landmarks over it, the lip contour highlighted."""

from __future__ import annotations

import bisect
import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QMouseEvent
from PySide6.QtWidgets import QWidget

from core.landmarks import LIP_INDICES
from core.types import LipCrop, TrackStatus
from lipreader_app.live_state import LiveState

NUM_UPPER = 11  # LIP_INDICES: each ring is 11 upper points (corner to corner) then 9 lower ones
RING = 20  # points per ring (outer, then inner)
MESH_BRUSH = (80, 220, 255, 120)  # the 478 face points: small translucent cyan dots
OUTER_PEN = pg.mkPen((255, 70, 70), width=2.5)  # outer lip contour
INNER_PEN = pg.mkPen((255, 200, 60), width=1.8)  # inner lip contour
BOX_PEN = pg.mkPen((255, 255, 255, 150), width=1)  # the region cut as the lip crop
OTHERS_PEN = pg.mkPen((255, 255, 255, 110), width=1.2, style=Qt.PenStyle.DotLine)  # other faces in view
HELD_PEN = pg.mkPen((255, 255, 255, 150), width=1.5, style=Qt.PenStyle.DashLine)  # held: no face now
LIP_POINTS = np.array(LIP_INDICES)
PLACEHOLDER = (  # shown until the first frame, centred in PLACEHOLDER_WIDTH
    "<p align='center' style='color:#ccc'><b>No source</b><br><br>"
    "File ▸ Open video… (Ctrl+O), or drop a video here<br>Source ▸ Start/stop camera (Ctrl+R)<br>"
    "Source ▸ Screen…, to read a video call<br><br>Help ▸ Keyboard shortcuts…</p>"
)
OPENING = "<p align='center' style='color:#ccc'><b>Opening {}…</b></p>"  # until a source's first frame
PLACEHOLDER_WIDTH = 420  # view pixels (the placeholder's view is 640 wide)
PICK_HINT = "Click a face to read it; right-click: the largest face"  # tooltip with several faces in view


def lip_rings(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed outer and inner lip contours, each (21, 2), from the 40 lip points (LIP_INDICES order)."""
    rings = []
    for ring in (points[:RING], points[RING : 2 * RING]):
        upper, lower = ring[:NUM_UPPER], ring[NUM_UPPER:][::-1]
        rings.append(np.concatenate([upper, lower, upper[:1]]))
    return rings[0], rings[1]


class VideoView(pg.GraphicsView):
    """Shows the latest processed frame, its landmarks, and offline subtitles when there are any.
    A click on the frame asks to read the face there, a right-click to go back to the largest."""

    face_picked = Signal(float, float)  # a left click on the frame: x, y in frame pixels
    automatic_face = Signal()  # a right click on the frame

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="k")
        self._state = state
        self._cues: list[tuple[float, float, str]] = []
        self._cue_starts: list[float] = []
        self._box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, defaultPadding=0.0)
        self._box.setMenuEnabled(False)
        self.setCentralItem(self._box)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._mesh = pg.ScatterPlotItem(size=2.5, pen=None, brush=MESH_BRUSH, pxMode=True)
        self._outer = pg.PlotCurveItem(pen=OUTER_PEN, antialias=True)
        self._inner = pg.PlotCurveItem(pen=INNER_PEN, antialias=True)
        self._box_curve = pg.PlotCurveItem(pen=BOX_PEN)
        self._others = pg.PlotCurveItem(pen=OTHERS_PEN, connect="finite")  # boxes of the other faces
        self._subtitle = pg.TextItem(anchor=(0.5, 1.0), color="w", fill=(0, 0, 0, 170))
        self._subtitle.setFont(QFont("Sans", 13))
        self._placeholder = pg.TextItem(html=PLACEHOLDER, anchor=(0.5, 0.5))
        self._placeholder.setTextWidth(PLACEHOLDER_WIDTH)  # the lines are centred within it
        for item in (
            self._image,
            self._box_curve,
            self._others,
            self._mesh,
            self._outer,
            self._inner,
            self._subtitle,
            self._placeholder,
        ):
            self._box.addItem(item)
        self._subtitle.setZValue(10)
        self._shape: tuple[int, int] | None = None
        self._show_placeholder()
        state.changed.connect(self._update_view)

    def set_subtitles(self, cues: list[tuple[float, float, str]]) -> None:
        """Offline cues (start s, end s, text) to show under the video at their times; [] for none."""
        self._cues = sorted(cues)
        self._cue_starts = [c[0] for c in self._cues]
        self._show_subtitle("")

    def clear(self) -> None:
        """Back to the placeholder (no source)."""
        self._image.clear()
        self._clear_marks()
        self._shape = None
        self._show_placeholder()

    def opening(self, name: str) -> None:
        """A source `name` starts: "Opening name…" until its first frame."""
        self.clear()
        self._placeholder.setHtml(OPENING.format(html.escape(name)))

    def hold(self, name: str) -> None:
        """The same source `name` starts again elsewhere (a seek): its last frame stays until the new
        one comes, without the marks of that moment."""
        if self._shape is None:  # nothing shown yet
            self.opening(name)
        self._clear_marks()

    def _clear_marks(self) -> None:
        self._mesh.clear()
        self._outer.clear()
        self._inner.clear()
        self._box_curve.clear()
        self._others.clear()
        self._show_subtitle("")
        self._show_pick_hint(False)

    def _show_placeholder(self) -> None:
        self._placeholder.setHtml(PLACEHOLDER)
        self._placeholder.setVisible(True)
        self._box.setRange(xRange=(0, 640), yRange=(0, 360), padding=0)
        self._placeholder.setPos(320, 180)

    def _update_view(self) -> None:
        frame, crop = self._state.frame, self._state.crop
        if frame is None:
            return
        held = crop is not None and crop.status == TrackStatus.HELD  # the face lost a moment: keep the hints
        if not held:
            chosen = crop is not None and crop.landmarks is not None and crop.landmarks.chosen
            self._show_pick_hint(self._state.num_faces > 1 or chosen)
        h, w = frame.image.shape[:2]
        self._image.setImage(frame.image[:, :, ::-1], autoLevels=False, levels=(0, 255))
        if self._shape != (h, w):
            self._shape = (h, w)
            self._placeholder.setVisible(False)
            self._box.setRange(xRange=(0, w), yRange=(0, h), padding=0)
            self._subtitle.setPos(w / 2, h - 8)
        landmarks = crop.landmarks if crop is not None else None
        if landmarks is not None:
            self._mesh.setData(pos=landmarks.points)
            outer, inner = lip_rings(landmarks.points[LIP_POINTS])
            self._outer.setData(outer[:, 0], outer[:, 1])
            self._inner.setData(inner[:, 0], inner[:, 1])
        else:
            self._mesh.clear()
            self._outer.clear()
            self._inner.clear()
        others = _outlines(landmarks.others) if landmarks is not None and landmarks.others else None
        if others is not None:
            self._others.setData(others[:, 0], others[:, 1])
        elif not held:
            self._others.clear()
        if crop is not None and crop.status != TrackStatus.MISSING:
            box = self._crop_box(crop)
            self._box_curve.setData(box[:, 0], box[:, 1])
            self._box_curve.setPen(BOX_PEN if crop.status == TrackStatus.TRACKED else HELD_PEN)
        else:
            self._box_curve.clear()
        self._show_subtitle(self._cue_at(self._state.position))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        point = self._box.mapSceneToView(self.mapToScene(event.position().toPoint()))
        if self._shape is not None and 0 <= point.y() < self._shape[0] and 0 <= point.x() < self._shape[1]:
            if event.button() == Qt.MouseButton.LeftButton:
                self.face_picked.emit(point.x(), point.y())
            elif event.button() == Qt.MouseButton.RightButton:
                self.automatic_face.emit()
        super().mousePressEvent(event)

    def _show_pick_hint(self, shown: bool) -> None:
        """A pointing hand and a tooltip over the video while a face can be picked."""
        if shown != (self.toolTip() == PICK_HINT):
            self.setToolTip(PICK_HINT if shown else "")
            self.viewport().setCursor(
                Qt.CursorShape.PointingHandCursor if shown else Qt.CursorShape.ArrowCursor
            )

    def _show_subtitle(self, text: str) -> None:
        """The cue under the video; its dark box only while there is one."""
        self._subtitle.setText(text)
        self._subtitle.setVisible(bool(text))

    @property
    def subtitle(self) -> str:
        """The cue shown under the video ("" when none is)."""
        return self._subtitle.textItem.toPlainText() if self._subtitle.isVisible() else ""

    @staticmethod
    def _crop_box(crop: LipCrop) -> np.ndarray:
        """The outline of the region the model sees, in frame pixels, shape (5, 2) closed."""
        h, w = crop.image.shape[:2]
        corners = np.array([(0, 0), (w, 0), (w, h), (0, h), (0, 0)], np.float64)
        inverse = np.linalg.inv(np.vstack([crop.transform, [0.0, 0.0, 1.0]]))[:2]
        return corners @ inverse[:, :2].T + inverse[:, 2]

    def _cue_at(self, seconds: float) -> str:
        i = bisect.bisect_right(self._cue_starts, seconds) - 1
        if i >= 0 and self._cues[i][0] <= seconds < self._cues[i][1]:
            return self._cues[i][2]
        return ""


def _outlines(boxes: tuple[np.ndarray, ...]) -> np.ndarray:
    """Closed outlines of boxes (x0, y0, x1, y1), one polyline (6 rows each, shape (6n, 2)): five
    corners and a NaN row that separates it from the next."""
    rows = [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0), (np.nan, np.nan)] for x0, y0, x1, y1 in boxes]
    return np.array(rows, np.float64).reshape(-1, 2)
