"""Plays a video's frames over and over in a frameless window on the X display, for screen capture
tests: `python -m tests.screen_player VIDEO LEFT TOP` prints "shown WIDTH HEIGHT" once the window
is on the screen, and plays until killed."""

from __future__ import annotations

import os
import sys

os.environ["QT_QPA_PLATFORM"] = "xcb"  # a real window on $DISPLAY (the tests' default is offscreen)

import cv2  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel  # noqa: E402

from tests.videos import read_frames  # noqa: E402

FPS = 25


def main(video: str, left: int, top: int) -> int:
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):  # cv2 points Qt at its own plugins
        os.environ.pop(name, None)
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in read_frames(video)]
    app = QApplication(sys.argv[:1])
    label = QLabel()
    label.setWindowFlag(Qt.WindowType.FramelessWindowHint)
    height, width = frames[0].shape[:2]
    label.setGeometry(left, top, width, height)
    shown = [0]

    def show_next() -> None:
        image = frames[shown[0] % len(frames)]
        label.setPixmap(
            QPixmap.fromImage(QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888))
        )
        shown[0] += 1

    show_next()
    label.show()
    timer = QTimer()
    timer.timeout.connect(show_next)
    timer.start(1000 // FPS)
    QTimer.singleShot(500, lambda: print(f"shown {width} {height}", flush=True))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
