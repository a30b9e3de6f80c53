"""Where the panels sit in the main window: the banner on top, the video over its transport bar, the
lip crop over the probabilities beside it, the captions below; and the window's size and splitters
as the user left them, kept from one run to the next."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QMainWindow, QSplitter, QVBoxLayout, QWidget

from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.crop_view import CropView
from lipreader_app.panels.probabilities import ProbabilityPanel
from lipreader_app.panels.status import Banner
from lipreader_app.panels.transport import TransportBar
from lipreader_app.panels.video_view import VideoView

WINDOW_SIZE = (1360, 860)  # the main window's size at its first start
GEOMETRY_KEY = "window/geometry"  # in the QSettings; "window/<its name>" holds a splitter's sizes


def central_widget(
    banner: Banner,
    video_view: VideoView,
    transport: TransportBar,
    crop_view: CropView,
    probabilities: ProbabilityPanel,
    captions: CaptionPanel,
) -> QWidget:
    """The window's central widget: the panels in splitters the user can drag, named "top" (the
    video beside the side panels), "side" (the lip crop over the probabilities) and "main" (all that
    over the captions)."""
    left = QWidget()
    left_layout = QVBoxLayout(left)
    left_layout.setContentsMargins(0, 0, 0, 0)
    left_layout.addWidget(video_view, 1)
    left_layout.addWidget(transport)
    right = QSplitter(Qt.Orientation.Vertical)
    right.setObjectName("side")
    right.addWidget(crop_view)
    right.addWidget(probabilities)
    right.setSizes([220, 480])
    top = QSplitter(Qt.Orientation.Horizontal)
    top.setObjectName("top")
    top.addWidget(left)
    top.addWidget(right)
    top.setSizes([800, 520])
    main = QSplitter(Qt.Orientation.Vertical)
    main.setObjectName("main")
    main.addWidget(top)
    main.addWidget(captions)
    main.setSizes([600, 220])
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(6, 6, 6, 0)
    layout.addWidget(banner)
    layout.addWidget(main, 1)
    return central


def restore_layout(window: QMainWindow, settings: QSettings) -> None:
    """Give `window` the geometry and splitter sizes `save_layout` stored (WINDOW_SIZE the first time)."""
    geometry = settings.value(GEOMETRY_KEY)
    if not (isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)):
        window.resize(*WINDOW_SIZE)
    for splitter in window.centralWidget().findChildren(QSplitter):  # the panels as the user sized them last
        sizes = settings.value(f"window/{splitter.objectName()}")
        if isinstance(sizes, QByteArray):
            splitter.restoreState(sizes)


def save_layout(window: QMainWindow, settings: QSettings) -> None:
    """Store `window`'s geometry and splitter sizes for the next start (`restore_layout`)."""
    settings.setValue(GEOMETRY_KEY, window.saveGeometry())
    for splitter in window.centralWidget().findChildren(QSplitter):
        settings.setValue(f"window/{splitter.objectName()}", splitter.saveState())
