"""A take of *Adapt to my face* being recorded from the live stream, and the checks on its frames.

The main window's live stream delivers each frame a stream's lag after it was captured (MediaPipe
and the model: 1.5 s on 2 busy cores), so a take is the frames *captured* between Record and Stop,
whenever they come. `LiveTake.add` is handed each `Delivered` update: it writes the frame through
core.recording's TakeRecorder when it belongs to the take, refuses one that does not follow the
frame before (a seek, another source: `TakeBroken`) and says when the take has all its frames;
`keep` keeps it only if training would not leave it out (core.recording.check_take).
No Qt and no clock: the dialog (lipreader_app.adapt) passes the times and runs the timers.
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path

from core.recording import MAX_TAKE_FRAMES, Take, TakeRecorder, check_take
from core.types import TrackStatus
from lipreader_app.live_state import Delivered

log = logging.getLogger("lipreader")

JUMPED = "Take discarded: the video jumped (a seek, or another source) while recording. Record it again."


class TakeBroken(Exception):
    """The take cannot go on (its message says why, for the user): it is to be discarded."""


class TakeRefused(Exception):
    """The take ended is not kept (its message says why, for the user): nothing of it is left."""


class Step(enum.Enum):
    """What an update delivered did to the take (LiveTake.add)."""

    SKIPPED = "skipped"  # not a frame of the take: captured before Record, or a stream's closing repeat
    ADDED = "added"  # a frame of the take, written
    COMPLETE = "complete"  # the take has all its frames (or too many to train on): end it


class LiveTake:
    """The take in progress of one sentence, recorded into `folder` at `fps`.

    started: time.monotonic() when Record was pressed; frames captured before it are not the take's.
    stop_at: when Stop was pressed (set by the dialog), while the frames captured before it still
    come; frames captured after it are not the take's either.
    """

    def __init__(self, folder: str | Path, transcript: str, fps: float, started: float) -> None:
        """Raises OSError when `folder` cannot be made or written to."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError("not writable")
        self.recorder = TakeRecorder(folder, transcript, fps)
        self.fps = fps
        self.started = started
        self.stop_at: float | None = None
        self.faces: list[bool] = []  # per frame written: the face was found
        self._previous: tuple[int, int, float] | None = None  # (stream, index, timestamp) of the last

    @property
    def seconds(self) -> float:
        """How long the take is so far."""
        return len(self.faces) / self.fps

    @property
    def face_lost(self) -> bool:
        """The face was not found on the last frame written."""
        return bool(self.faces) and not self.faces[-1]

    def add(self, d: Delivered) -> Step:
        """Write the frame of `d` when it is the take's next. Raises TakeBroken when it does not follow
        the frame before (same stream, next index, a frame period later) or cannot be written."""
        if d.captured < self.started:  # not a frame read after Record
            return Step.SKIPPED
        if self.stop_at is not None and d.captured > self.stop_at:  # all those before Stop came
            return Step.COMPLETE
        frame = d.update.frame
        if self._previous is not None:
            stream, index, timestamp = self._previous
            if d.stream == stream and frame.index == index:  # a stream's closing update repeats its last
                # stopped, and the stream ended: no frame is coming
                return Step.SKIPPED if self.stop_at is None else Step.COMPLETE
            step = frame.timestamp - timestamp
            if d.stream != stream or frame.index != index + 1 or not 0 < step < 1.5 / self.fps:
                raise TakeBroken(JUMPED)
        try:
            self.recorder.add(frame.image)
        except (OSError, ValueError) as e:
            raise TakeBroken(f"Take discarded: {e}") from e
        self._previous = (d.stream, frame.index, frame.timestamp)
        self.faces.append(d.update.crop.status == TrackStatus.TRACKED)
        # too long to train on: refused (check_take says why)
        return Step.COMPLETE if len(self.faces) > MAX_TAKE_FRAMES else Step.ADDED

    def keep(self) -> Take:
        """Keep the take in the folder and its manifest. Raises TakeRefused (the take discarded) when
        training would leave it out, saying why, or when it cannot be written."""
        reason = check_take(self.recorder.transcript, self.faces, self.fps)
        if reason is not None:
            self.recorder.discard()
            raise TakeRefused(f"Not kept. {reason}")
        try:
            return self.recorder.keep()
        except RuntimeError as e:
            log.warning("%s", e)
            raise TakeRefused(str(e)) from e

    def discard(self) -> None:
        """Delete what was written of the take."""
        self.recorder.discard()
