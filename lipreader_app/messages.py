"""The one place the window's messages are shown (banner, status bar, log), and taken down when stale."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject

from lipreader_app.live_state import LiveState
from lipreader_app.offline import BUSY, OfflineCaptioner
from lipreader_app.panels.status import Banner, StatusBar
from lipreader_app.workers import LiveStream

log = logging.getLogger("lipreader")


class MessageBoard(QObject):
    """Shows errors, warnings and infos without blocking, and takes down those a new state makes stale.

    The warning about the face in view is kept apart: it comes and goes with the face, whatever else
    is shown. It listens to the live stream, the live state and offline captioning for what they say.
    """

    def __init__(
        self,
        banner: Banner,
        status: StatusBar,
        stream: LiveStream,
        state: LiveState,
        offline: OfflineCaptioner,
    ) -> None:
        super().__init__(banner)
        self.banner = banner
        self.status = status
        self.errors: list[str] = []  # every error shown, for headless runs and tests
        self._status_kind: str | None = None  # the kind of the message in the status bar
        self._face_warning: str | None = None  # the warning about the face shown, if any
        self._pick_warning: str | None = None  # the warning about the face clicked, if any
        self._stream_warning: str | None = None  # the last warning about the current stream (truncated...)
        self._offline_error: str | None = None  # the last error of offline captioning
        stream.warned.connect(self._on_stream_warned)
        state.face_lost.connect(self._on_face_lost)
        offline.errored.connect(self._on_offline_errored)
        offline.warned.connect(self._on_offline_warned)
        offline.job_ended.connect(self._on_job_ended)

    def notify(self, message: str, kind: str = "error", link: tuple[str, str] | None = None) -> None:
        """Show a message without blocking: the banner (with `link`: key, words), the status bar and
        the log."""
        self.banner.show_message(kind, message, link)
        self.status.show_message(message)
        self._status_kind = kind
        if kind == "error":
            self.errors.append(message)
            log.error("%s", message)

    def withdraw(self, *kinds: str, message: str | None = None) -> None:
        """Take down what the new state made stale: the messages of `kinds`, or `message`, in the
        banner and in the status bar."""
        texts = {message} if message else set()
        for kind in kinds:
            texts.add(self.banner.message(kind))
            self.banner.clear(kind)
        if message:
            self.banner.clear_message(message)
        shown = self.status.message
        if shown and (shown in texts or self._status_kind in kinds):
            self.status.clear_message()

    def warn_face(self, text: str | None) -> None:
        """Show the warning about the face in view, or (None) take it down."""
        if self._face_warning:
            self.banner.clear_message(self._face_warning)
        self._face_warning = text
        if text:
            self.banner.show_message("warning", text)

    def warn_pick(self, text: str | None) -> None:
        """Show the warning about the face clicked (no face there, or it left the view), or (None)
        take it down: another click makes it stale."""
        if self._pick_warning:
            self.withdraw(message=self._pick_warning)
        self._pick_warning = text
        if text:
            self.notify(text, "warning")

    def new_source(self) -> None:
        """A source starts: take down the errors and infos, the warning about the stream before (it
        says so again if it still applies) and the one about the face; a warning of another kind
        (a provider given way) stays."""
        self.withdraw("error", "info")
        if self._stream_warning:
            self.withdraw(message=self._stream_warning)
            self._stream_warning = None
        self.warn_face(None)

    # -- the signals that carry messages ----------------------------------------------------------
    def _on_stream_warned(self, message: str) -> None:
        self._stream_warning = message
        self.notify(message, "warning")

    def _on_face_lost(self, lost: bool) -> None:
        self.warn_face("No face in view: captions resume when a face is visible." if lost else None)

    def _on_offline_errored(self, message: str) -> None:
        self._offline_error = message
        self.notify(message)

    def _on_offline_warned(self, message: str) -> None:
        self.notify(message, "warning")

    def _on_job_ended(self, outcome: str) -> None:
        self.withdraw(message=BUSY)  # the refusal of a second job no longer applies
        if outcome == "done" and self._offline_error:  # nor does an earlier job's failure
            self.withdraw(message=self._offline_error)
            self._offline_error = None
