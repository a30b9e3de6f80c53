"""The File menu of the main window, and what its actions do.

Open a video (or one of File ▸ Open Recent, the videos played last, newest first), caption a whole
video, save what the live view captioned, the preferences, quit; a file dropped on the window opens
too (a model loads, anything else plays). The window plays, captions and keeps the preferences; its
`_ask_path` and `_ask_save_path` are the file dialogs (tests replace them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QDropEvent, QKeySequence
from PySide6.QtWidgets import QMenu

from core import subtitles
from core.transcripts import VIDEO_SUFFIXES
from lipreader_app.dialogs import TRANSCRIPT_FILTER
from lipreader_app.menus import add_action
from lipreader_app.preferences_dialog import PreferencesDialog, shown_preferences
from lipreader_app.settings import load_recent_videos, save_recent_videos

if TYPE_CHECKING:
    from lipreader_app.main_window import MainWindow

VIDEO_FILTER = f"Videos ({' '.join('*' + s for s in VIDEO_SUFFIXES)});;All files (*)"
MODEL_SUFFIX = ".onnx"  # a file dropped with this suffix (any case) is a model, any other a video
NO_RECENT = "No recent videos"


class FileMenu(QObject):
    """Fills `menu` with the File actions (children of `window`, whose shortcuts they are) and acts
    on them through the window (open_video, make_engine, load_model, apply_preferences...)."""

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        self.open_action = add_action(window, menu, "&Open video…", self.ask_open_video, "Ctrl+O")
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.setToolTipsVisible(True)  # each entry's tooltip is its full path
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        self.caption_action = add_action(
            window, menu, "&Caption video…", self.ask_caption_video, "Ctrl+Shift+C"
        )
        add_action(window, menu, "&Save transcript…", self.ask_save_transcript, QKeySequence.StandardKey.Save)
        menu.addSeparator()
        add_action(window, menu, "&Preferences…", self.show_preferences, "Ctrl+,")
        menu.addSeparator()
        add_action(window, menu, "&Quit", window.close, "Ctrl+Q")

    # -- open and caption -----------------------------------------------------------------------
    def ask_open_video(self) -> None:
        """File ▸ Open video…: play the file chosen."""
        path = self._window._ask_path("Open video", VIDEO_FILTER)
        if path:
            self._window.open_video(path)

    def ask_caption_video(self) -> None:
        """File ▸ Caption video…: caption the file chosen in the background."""
        path = self._window._ask_path("Caption video", VIDEO_FILTER)
        if path:
            self.caption_video(path)

    def caption_video(self, path: str | Path) -> bool:
        """Caption a whole file in the background, with a cancellable progress dialog; the face clicked
        in it while it played, if any, is the face read."""
        window = self._window
        engine = window.make_engine()
        path = Path(os.path.abspath(path))  # as the video playing is known: the same file, the same path
        face = window.face_choice.point if window.video_path == path else None
        return engine is not None and window.offline.start(path, engine, face)

    def drop(self, event: QDropEvent) -> None:
        """A file dropped on the window: a model loads (and is remembered), anything else plays; of
        several, the first."""
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path, window = paths[0], self._window
        model = path.suffix.lower() == MODEL_SUFFIX
        QTimer.singleShot(
            0, lambda: window.load_model(path, remember=True) if model else window.open_video(path)
        )

    # -- File ▸ Open Recent ---------------------------------------------------------------------
    def add_recent(self, path: Path) -> None:
        """`path` (absolute) played: it goes first in File ▸ Open Recent."""
        settings = self._window.settings
        save_recent_videos(settings, [path, *load_recent_videos(settings)])

    def _on_recent_menu_about_to_show(self) -> None:
        """List the videos opened last, newest first; one that no longer exists is disabled."""
        self.recent_menu.clear()
        paths = load_recent_videos(self._window.settings)
        names = [p.name for p in paths]
        for number, path in enumerate(paths, 1):
            label = path.name if names.count(path.name) == 1 else f"{path.name} ({path.parent})"
            shown = label.replace("&", "&&").replace("\t", " ")  # a tab would split off a shortcut column
            action = self.recent_menu.addAction(f"&{number} {shown}")
            exists = path.is_file()
            action.setToolTip(str(path) if exists else f"{path} no longer exists")
            action.setEnabled(exists)
            action.triggered.connect(lambda _=False, p=path: self.open_recent(p))
        if not paths:
            self.recent_menu.addAction(NO_RECENT).setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("&Clear Menu")
        clear.setEnabled(bool(paths))
        clear.triggered.connect(self.clear_recent)

    def open_recent(self, path: Path) -> bool:
        """Open a video of File ▸ Open Recent as File ▸ Open does; one that no longer exists is
        taken off the list, with a message."""
        window = self._window
        if not path.is_file():
            save_recent_videos(window.settings, [p for p in load_recent_videos(window.settings) if p != path])
            window.notify(f"video {path} no longer exists: taken off File ▸ Open Recent", "warning")
            return False
        return window.open_video(path)

    def clear_recent(self) -> None:
        """Empty File ▸ Open Recent."""
        save_recent_videos(self._window.settings, [])

    # -- the transcript -------------------------------------------------------------------------
    def ask_save_transcript(self) -> None:
        """File ▸ Save transcript…: save what the live view captioned to the file chosen (a name
        after the video's offered)."""
        window = self._window
        if not window.state.words():
            window.notify("nothing has been captioned yet: open a video or start the camera", "info")
            return
        name = f"{window.video_path.stem}.live.srt" if window.video_path else "transcript.srt"
        suggested = str(Path(window.prefs.last_dir or Path.home()) / name)
        path = window._ask_save_path("Save transcript", suggested, TRANSCRIPT_FILTER)
        if path:
            self.save_transcript(path)

    def save_transcript(self, path: str | Path) -> bool:
        """Write what the live view has captioned so far (the history, then the utterance in
        progress) to `path` as SRT, VTT or TXT by its suffix; replaces a file there."""
        path, window = Path(path), self._window
        try:
            subtitles.write_subtitles(path, window.state.words(), overwrite=True)
        except ValueError:
            window.notify(f"cannot save the transcript as {path.name}: use .srt, .vtt or .txt")
            return False
        except OSError as e:
            window.notify(f"cannot save the transcript to {path}: {e.strerror or e}")
            return False
        window.notify(f"saved the transcript to {path}", "info")
        return True

    # -- preferences ----------------------------------------------------------------------------
    def show_preferences(self) -> None:
        """File ▸ Preferences…: OK applies them (see MainWindow.apply_preferences)."""
        window = self._window

        def dialog() -> PreferencesDialog:
            made = PreferencesDialog(window.prefs, window.model.contract if window.model else None, window)
            made.accepted_preferences.connect(
                lambda p: window.apply_preferences(shown_preferences(p, window.prefs))
            )
            return made

        window.dialogs.show("preferences", None, dialog)
