"""What the live view plays: a video file, a camera or the screen through the LiveStream, paused,
sought, stopped.

The window decides what to play (the camera device and size, the screen region, come from its
preferences) and owns the model; a Playback opens the source, clears and updates the panels for it,
and shows how it ended.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from core.engine import CaptionEngine
from core.picking import LOST, FaceChoice, turned_over
from core.screen import Region, ScreenSource, describe_region
from core.types import Frame
from core.video import CameraSource, VideoError, VideoFileSource
from lipreader_app.live_state import Delivered, LiveState
from lipreader_app.messages import MessageBoard
from lipreader_app.offline import OfflineCaptioner
from lipreader_app.panels.captions import CaptionPanel
from lipreader_app.panels.crop_view import CropView
from lipreader_app.panels.probabilities import ProbabilityPanel
from lipreader_app.panels.status import StatusBar
from lipreader_app.panels.transport import TransportBar
from lipreader_app.panels.video_view import VideoView
from lipreader_app.workers import LiveStream

NO_SOURCE = "no source"


@dataclass(frozen=True)
class LivePanels:
    """The panels a change of source clears or updates."""

    video_view: VideoView
    crop_view: CropView
    probabilities: ProbabilityPanel
    captions: CaptionPanel
    transport: TransportBar
    status: StatusBar


class Playback(QObject):
    """Starts, pauses, seeks and stops the one live source; `source` and `video_path` say what plays."""

    ended = Signal()  # the current source finished on its own (end of file or error)
    file_opened = Signal(object)  # Path of a video file opened, just before it plays
    source_changed = Signal(str)  # what plays now, for the window's title ("" for nothing)

    def __init__(
        self,
        window: QWidget,
        stream: LiveStream,
        state: LiveState,
        face_choice: FaceChoice,
        panels: LivePanels,
        messages: MessageBoard,
        offline: OfflineCaptioner,
        make_engine: Callable[[], CaptionEngine | None],
    ) -> None:
        """offline: its cues of a video are shown over it, its review plays where a cue is clicked;
        make_engine: a CaptionEngine for the model and the preferences, or None (and an error)."""
        super().__init__(window)
        self._stream = stream
        self._state = state
        self._face_choice = face_choice
        # whether files are upside down (core.orientation), as found while they played: a new stream
        # of one (a seek, a replay) is turned, or not, from its first frame, none held back to probe
        self._upside_down: dict[Path, bool] = {}
        self._shown: Frame | None = None  # the last frame delivered, the picture clicked (kept over a
        # seek, as the video view keeps it until the next)
        self._panels = panels
        self._messages = messages
        self._offline = offline
        self._make_engine = make_engine
        self.video_path: Path | None = None  # the file being played, None for a camera or the screen
        self.source: VideoFileSource | CameraSource | ScreenSource | None = None
        self.source_label = NO_SOURCE
        self.duration = 0.0  # seconds the file playing lasts, as the seek bar shows it; 0 for a live source
        self._pause_at_next_frame = False  # a seek while paused: pause again once its frame is shown
        self._stream_failed = False  # the current stream stopped on an error
        stream.delivered.connect(self._on_frame_delivered)
        stream.errored.connect(self._on_stream_errored)
        stream.ended.connect(self._on_stream_ended)
        panels.video_view.face_picked.connect(self._on_face_picked)
        panels.video_view.automatic_face.connect(self._on_automatic_face)
        offline.play_requested.connect(self._on_play_requested)
        offline.subtitles_ready.connect(self._on_subtitles_ready)

    @property
    def camera(self) -> CameraSource | None:
        """The source if it is a camera."""
        return self.source if isinstance(self.source, CameraSource) else None

    @property
    def screen(self) -> ScreenSource | None:
        """The source if it is the screen (never a camera: Model ▸ Adapt to my face… records cameras only)."""
        return self.source if isinstance(self.source, ScreenSource) else None

    def open_video(
        self,
        path: str | Path,
        start: float = 0.0,
        keep_history: bool = False,
        engine: CaptionEngine | None = None,
    ) -> bool:
        """Play a file at natural speed through the live path, from `start` seconds, captioned by
        `engine` (default: one for the model and the preferences). Seconds are the file's as a player
        plays it: those of a video that starts after its sound (VideoFileSource.delay) start there.
        A relative `path` is taken from the current folder, and known by its absolute path from then
        on (as the file dialogs give it: *Caption video…* of the same file)."""
        path = Path(os.path.abspath(path))
        try:
            source = VideoFileSource(path, realtime=True)
        except VideoError as e:
            self._messages.notify(str(e))
            return False
        except OSError as e:  # opened but not readable (permissions...)
            self._messages.notify(f"cannot read video {path}: {e.strerror or e}")
            return False
        if start > source.delay:
            source.seek(start - source.delay)
        self.file_opened.emit(path)
        self.video_path = path
        label, end = f"video {path.name}", source.delay + source.duration
        return self._start(source, label, end, max(start, source.delay), keep_history, engine)

    def start_camera(
        self,
        device: int,
        width: int,
        height: int,
        keep_history: bool = False,
        engine: CaptionEngine | None = None,
    ) -> bool:
        """Read webcam `device` at `width`×`height`, captioned by `engine` (default: one for the model
        and the preferences). With `keep_history` (the same camera started again) the history stays
        and its clock runs on."""
        source = CameraSource(device, width, height)
        missing = source.missing()
        if missing:  # what plays now plays on
            self._messages.notify(missing)
            return False
        self.video_path = None
        label = f"camera {device} ({width}×{height})"
        return self._start(source, label, 0.0, None if keep_history else 0.0, keep_history, engine)

    def start_screen(
        self,
        region: Region,
        fps: float,
        keep_history: bool = False,
        engine: CaptionEngine | None = None,
        fallback: Region | None = None,
    ) -> bool:
        """Read `region` of the screen (a monitor number or left, top, width, height in pixels) at
        `fps`, the model's rate, as a camera is read. A region that cannot be captured (no display,
        Wayland, a monitor not there) says so at once, and what plays now plays on; with a
        `fallback`, that region is read instead, with a warning saying why."""
        source = ScreenSource(region, fps)
        missing = source.missing()
        if missing and fallback is not None and fallback != region:
            self._messages.notify(f"{missing}: reading {describe_region(fallback)} instead", "warning")
            return self.start_screen(fallback, fps, keep_history, engine)
        if missing:
            self._messages.notify(missing)
            return False
        self.video_path = None
        return self._start(source, source.label, 0.0, None if keep_history else 0.0, keep_history, engine)

    def _start(
        self,
        source: VideoFileSource | CameraSource | ScreenSource,
        label: str,
        duration: float,
        start: float | None,
        keep_history: bool,
        engine: CaptionEngine | None = None,
    ) -> bool:
        """Play `source` from `start` seconds (None: where the stream before ended, a camera's clock
        running on)."""
        engine = engine or self._make_engine()
        if engine is None:
            return False
        self._end_stream()
        if start is None:
            start = self._state.position
        if keep_history and self.source is not None:  # a seek: the sentence in progress is kept
            self._state.finish()
        if not keep_history:  # another source: the face clicked in the last one means nothing here
            self._face_choice.automatic()
            self._shown = None
        self.source = source
        self._state.reset(offset=start, keep_history=keep_history)
        self._state.window = engine.window
        self._clear_panels(keep_history, label)
        self._messages.new_source()
        self._stream_failed = False
        self.source_label = label
        self._panels.status.set_source(label)
        self.duration = duration  # before source_changed: the window's arrow keys follow it
        self.source_changed.emit(label)
        self._panels.transport.set_duration(duration)  # a file offers pause, a camera a disabled bar
        self._pause_at_next_frame = False
        turned = self._upside_down.get(self.video_path) if self.video_path is not None else None
        self._stream.start(source, engine, offset=start, face_choice=self._face_choice, turned=turned)
        return True

    def stop(self) -> None:
        """Stop the source; the panels show no source again (the history stays)."""
        self._end_stream()
        if self.source is not None:
            self._state.finish()
        self.source = None
        self._pause_at_next_frame = False
        self._state.reset(keep_history=True)
        self._clear_panels(keep_history=True)
        self._panels.status.set_source(NO_SOURCE)
        self.duration = 0.0
        self.source_changed.emit("")
        self._panels.status.clear_rates()
        self._panels.transport.set_duration(0.0)

    def _end_stream(self) -> None:
        """Stop the live stream; the live state takes in its end (the sentence in progress closed,
        and read again whole) as when the file ends, not the live words it had so far."""
        for delivered in self._stream.stop():
            self._state.on_delivered(delivered)

    def toggle_pause(self) -> None:
        """Pause or play the file; once it has ended, play it again from the start."""
        if not isinstance(self.source, VideoFileSource):
            return
        if not self._stream.running:
            self.seek(0.0)
        elif self._pause_at_next_frame:  # a seek while paused has not shown its frame yet: play on
            self._pause_at_next_frame = False
            self._panels.transport.set_paused(False)
        else:
            self._panels.transport.set_paused(self._stream.toggle_pause())

    def seek(self, seconds: float, engine: CaptionEngine | None = None) -> bool:
        """Replay the current file from `seconds` (a new stream: the captioner, `engine` if given,
        starts afresh there); when paused, it pauses again there once that frame is shown. False if
        it could not start."""
        if self.video_path is None:
            return False
        paused = self._stream.paused or self._pause_at_next_frame
        started = self.open_video(self.video_path, max(0.0, seconds), keep_history=True, engine=engine)
        if started and paused:
            self._pause_at_next_frame = True
            self._panels.transport.set_paused(True)
        return started

    def _clear_panels(self, keep_history: bool, opening: str = "") -> None:
        """For the source `opening` ("": none): the same one again (`keep_history`, a seek) keeps its
        last frame until the next, another says it is opening."""
        p = self._panels
        if not opening:
            p.video_view.clear()
        elif keep_history:
            p.video_view.hold(opening)
        else:
            p.video_view.opening(opening)
        for panel in (p.crop_view, p.probabilities):
            panel.clear()
        if not keep_history:
            p.captions.clear()
        p.video_view.set_subtitles(self._offline.cues_for(self.video_path))

    # -- stream events --------------------------------------------------------------------------
    def _on_stream_errored(self, message: str) -> None:
        self._stream_failed = True  # its end is not the end of the file
        self._messages.notify(message)

    def _on_stream_ended(self) -> None:
        if self._stream_failed and not self._state.frames_processed:  # it never showed a frame (no
            self.stop()  # such camera): no source, as before it started; the error says why
            self.ended.emit()
            return
        self._pause_at_next_frame = False
        self._state.finish()
        self._panels.crop_view.clear()  # no face is tracked any more
        self._panels.status.clear_rates()
        self._panels.status.set_source(f"{self.source_label} (ended)")
        if isinstance(self.source, VideoFileSource) and not self._stream_failed:
            at = self._state.position if self.source.ended_early else None  # a file cut short: there
            self._panels.transport.set_ended(at)  # play (Space) plays it again from the start
        if self._state.frames_processed and not self._state.face_found:
            self._messages.warn_face(
                f"No face was found in {self.source_label}: lip reading needs a face in view."
            )
        else:
            self._messages.warn_face(None)  # "no face in view" no longer applies
        self.ended.emit()

    def _on_face_picked(self, x: float, y: float) -> None:
        """Read the face at (x, y), pixels of the picture shown: from the next frame on, or when the
        file plays again."""
        if self._shown is not None and self._shown.turned:  # shown turned upright: the face choice
            x, y = turned_over((x, y), self._shown.image.shape)  # is in the source's picture
        self._face_choice.pick(x, y)
        self._messages.warn_pick(None)  # what was said of the face clicked before
        if not self._stream.running or self._stream.paused:
            self._messages.notify("The face you clicked is read when the video plays.", "info")

    def _on_automatic_face(self) -> None:
        """Read the largest face again (a right-click on the video)."""
        self._face_choice.automatic()
        self._messages.warn_pick(None)  # what was said of the face clicked before

    def _on_frame_delivered(self, d: Delivered) -> None:
        self._shown = d.update.frame
        if d.update.upside_down is not None and self.video_path is not None:
            self._upside_down[self.video_path] = d.update.upside_down
        ended = self._face_choice.take_ended()
        if ended is not None:
            lost = "The face you clicked left the view" if ended == LOST else "No face where you clicked"
            self._messages.warn_pick(f"{lost}: reading the largest face.")
        if self._pause_at_next_frame:  # a seek while paused: its first frame is shown, pause there
            self._pause_at_next_frame = False
            self._stream.toggle_pause()

    # -- offline captioning ---------------------------------------------------------------------
    def _on_play_requested(self, path: Path, seconds: float) -> None:
        self.open_video(path, seconds, keep_history=path == self.video_path)

    def _on_subtitles_ready(self, path: Path) -> None:
        if self.video_path == path:
            self._panels.video_view.set_subtitles(self._offline.cues_for(path))
