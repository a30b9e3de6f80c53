"""The lip crop the model sees, enlarged, with the lip points it gets as a second input."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.crop import vertical_stretch
from core.types import TrackStatus
from lipreader_app.live_state import LiveState
from lipreader_app.panels.video_view import INNER_PEN, lip_rings

STATUS_TEXT = {
    TrackStatus.TRACKED: ("face tracked", "#2e7d32"),
    TrackStatus.HELD: ("no face: holding the last position", "#b26a00"),
    TrackStatus.MISSING: ("no face in view", "#c62828"),
}
POINT_PEN = pg.mkPen((255, 70, 70, 200), width=1.5)
HINT = "The lip crop shows here\nwhile a face is tracked"  # with no crop to show
HINT_BOX = (64, 32)  # the view's range (width, height) while the hint shows
STRETCH_SHOWN = 0.02  # a face scaled into the model's nose range by more than this: the status says so


class CropView(QWidget):
    """Title, the enlarged crop with its lip contour, and the tracking status."""

    def __init__(self, state: LiveState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._title = QLabel("<b>What the model sees</b>")
        self._view = pg.GraphicsView(background="k")
        self._box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, defaultPadding=0.0)
        self._box.setMenuEnabled(False)
        self._view.setCentralItem(self._box)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._outer = pg.PlotCurveItem(pen=POINT_PEN, antialias=True)
        self._inner = pg.PlotCurveItem(pen=INNER_PEN, antialias=True)
        self._hint = pg.TextItem(HINT, anchor=(0.5, 0.5), color="#999")
        for item in (self._image, self._outer, self._inner, self._hint):
            self._box.addItem(item)
        self._status = QLabel("")
        self._shape: tuple[int, int] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._title)
        layout.addWidget(self._view, 1)
        layout.addWidget(self._status)
        self.clear()
        state.changed.connect(self._update_view)

    def clear(self) -> None:
        """No crop: a hint in its place (no source, or the source ended)."""
        self._image.clear()
        self._outer.clear()
        self._inner.clear()
        self._status.setText("")
        self._shape = None
        w, h = HINT_BOX
        self._box.setRange(xRange=(0, w), yRange=(0, h), padding=0)
        self._hint.setPos(w / 2, h / 2)
        self._hint.setVisible(True)

    def _update_view(self) -> None:
        crop = self._state.crop
        if crop is None:
            return
        image = crop.image if crop.image.ndim == 2 else crop.image[:, :, ::-1]
        self._image.setImage(image, autoLevels=False, levels=(0, 255))
        h, w = image.shape[:2]
        if self._shape != (h, w):
            self._shape = (h, w)
            self._hint.setVisible(False)
            self._box.setRange(xRange=(0, w), yRange=(0, h), padding=0)
            self._title.setText(f"<b>What the model sees</b> ({w}×{h} px lip crop)")
        if crop.status == TrackStatus.MISSING or not np.isfinite(crop.lip_points).all():
            self._outer.clear()
            self._inner.clear()
        else:
            outer, inner = lip_rings(crop.lip_points)
            self._outer.setData(outer[:, 0], outer[:, 1])
            self._inner.setData(inner[:, 0], inner[:, 1])
        text, colour = STATUS_TEXT[TrackStatus(crop.status)]
        faces = self._state.num_faces
        if crop.landmarks is not None and crop.landmarks.chosen:
            extra = " · reading the face you clicked (right-click the video: the largest)"
        elif faces > 1:
            extra = f" · {faces} faces in view, reading the largest: click one in the video to read it"
        else:
            extra = ""
        stretch = vertical_stretch(crop.transform)
        if abs(stretch - 1) > STRETCH_SHOWN:
            shape = "flatter" if stretch > 1 else "taller"
            extra += f" · a face {shape} than the model learnt: its height ×{stretch:.2f} in the crop"
        self._status.setText(f"<span style='color:{colour}'>● {text}</span>{extra}")
