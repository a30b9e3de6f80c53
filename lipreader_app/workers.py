"""Background work: the live stream (capture + inference) and offline captioning, in QThreads.

Workers never touch widgets: they call core (`iter_captions`, `caption_video`) and emit
dataclasses through signals; their exceptions go out on `errored` as one line, and the warnings
core logs while they run (a truncated file...) on `warned`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from core.captioning import UPSIDE_DOWN, Cancelled, caption_video
from core.engine import CaptionEngine
from core.picking import FaceChoice
from core.streaming import iter_captions
from core.types import Frame, Idle
from lipreader_app.live_state import Delivered

log = logging.getLogger("lipreader")

JOIN_TIMEOUT_MS = 30000  # how long closing the window waits for a worker (MediaPipe start-up included)
GC_INTERVAL_MS = 500  # how often the GUI thread collects cyclic garbage while workers run


def error_message(e: BaseException) -> str:
    """One line for the user: our own errors already are; others get their type name."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, RuntimeError | OSError | ValueError) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _WarningRelay(logging.Handler):
    """Hands each warning the "lipreader" logger gets from one thread to `relay`, as its message."""

    def __init__(self, relay: Callable[[str], None], thread: int) -> None:
        super().__init__(logging.WARNING)
        self._relay, self._thread = relay, thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self._relay(record.getMessage())


@contextmanager
def relayed_warnings(relay: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, the warnings logged ("lipreader" logger) in this thread also go to
    `relay` (a signal's emit: how a worker's warnings reach the window)."""
    handler = _WarningRelay(relay, threading.get_ident())
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


def _log_failure(what: str, e: Exception) -> None:
    """A worker's failure, in the debug log with its traceback: the window's notifier logs the one
    line it shows (README: each message once in the terminal)."""
    log.debug("%s: %s", what, e, exc_info=True)


class GuiThreadGc(QObject):
    """Cyclic garbage collection in the GUI thread only, while the app runs.

    Python's collector runs in whichever thread happens to allocate; when a worker thread frees a
    QObject (a dialog or panel in a reference cycle), Qt unregisters its timers from the wrong
    thread and later crashes delivering them. So automatic collection is off and a timer collects
    here instead, generation by generation as the thresholds say (pyqtgraph's GarbageCollector).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._threshold = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.setInterval(GC_INTERVAL_MS)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Collect once more and give collection back to Python (if it had it)."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def _on_tick(self) -> None:
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self._threshold[generation]:
                break
            gc.collect(generation)


class _Abandoned(Exception):
    """A live stream stopped without its end (LiveWorker.stop(finish=False))."""


class LiveWorker(QObject):
    """Runs `iter_captions` over one source and emits every update. Stop with `stop()`."""

    update = Signal(object)  # Delivered, one per processed frame
    warned = Signal(str)  # a warning core logged while reading the source (e.g. a truncated file)
    errored = Signal(str)  # a one-line message; the stream has ended
    finished = Signal()  # always emitted last, after an error too

    def __init__(
        self,
        source: Iterable[Frame | Idle],
        engine: CaptionEngine,
        offset: float = 0.0,
        stream: int = 0,
        landmarker_path: str | None = None,
        face_choice: FaceChoice | None = None,
        turned: bool | None = None,
    ) -> None:
        super().__init__()
        self.source, self.engine, self.offset, self.stream = source, engine, offset, stream
        self.face_choice = face_choice
        self.turned = turned  # the picture is upside down, as an earlier stream of the file found
        self._landmarker_path = landmarker_path
        self._stop = threading.Event()
        self._finish = True  # stopped: end as at the end of the source (False: at once)
        self._origin: float | None = None  # monotonic time the stream's first frame arrived
        self._paused_at: float | None = None
        self._paused_total = 0.0
        # what the stream gave after `stop`: its end (the utterance in progress closed, final, and
        # read again whole), for whoever stopped it (LiveStream.stop) rather than the stale signal
        self.after_stop: list[Delivered] = []

    def stop(self, finish: bool = True) -> None:
        """Ask the worker to end at the next frame (any thread): as at the end of its source, the
        sentence in progress closed and read again, or (not `finish`) at once."""
        self._finish = finish
        self._stop.set()
        for method in ("resume", "stop"):  # a paused file must wake up; a camera must stop reading
            if hasattr(self.source, method):
                getattr(self.source, method)()

    def pause(self) -> None:
        if hasattr(self.source, "pause") and self._paused_at is None:
            self._paused_at = time.monotonic()
            self.source.pause()

    def resume(self) -> None:
        if hasattr(self.source, "resume") and self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None
            self.source.resume()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def run(self) -> None:
        try:
            with relayed_warnings(self.warned.emit):
                updates = iter_captions(
                    self._frames(),
                    self.engine,
                    landmarker_path=self._landmarker_path,
                    face_choice=self.face_choice,
                    turned=self.turned,
                )
                try:
                    turned = self.turned  # said already when an earlier stream found it
                    for u in updates:
                        if u.frame.turned and not turned:
                            turned = True
                            self.warned.emit(f"{UPSIDE_DOWN[0].upper()}{UPSIDE_DOWN[1:]}.")
                        captured = (self._origin or time.monotonic()) + u.frame.timestamp + self._paused_total
                        d = Delivered(u, captured, self.offset + u.frame.timestamp, self.stream)
                        if self._stop.is_set():
                            self.after_stop.append(d)
                        else:
                            self.update.emit(d)
                finally:
                    updates.close()
        except _Abandoned:  # stop(finish=False): the stream's end was not wanted
            pass
        except Exception as e:  # every failure goes to the one notifier, the app keeps running
            _log_failure("stream stopped", e)
            self.errored.emit(error_message(e))
        finally:
            self.finished.emit()

    def _frames(self) -> Iterator[Frame | Idle]:
        """The source, stopping when asked and noting when its first frame arrived. Stopped with
        `finish`, it ends as the source would; without, it raises _Abandoned out of the stream,
        which then never reads its last sentence again."""
        for frame in self.source:
            if self._stop.is_set():
                break
            if isinstance(frame, Idle):  # paused
                yield frame
                continue
            if self._origin is None:
                self._origin = time.monotonic() - self._paused_total
            yield frame
        if self._stop.is_set() and not self._finish:
            raise _Abandoned


class CaptionJob(QObject):
    """Offline captioning of a whole file with `caption_video`; cancel with `cancel()`."""

    progress = Signal(float, float)  # done seconds, total seconds
    done = Signal(object)  # the Transcript
    warned = Signal(str)  # a warning core logged while captioning (e.g. a truncated file)
    cancelled = Signal()
    errored = Signal(str)
    finished = Signal()

    def __init__(
        self,
        path: str | Path,
        engine: CaptionEngine,
        landmarker_path: str | None = None,
        face: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.path, self.engine, self.face = Path(path), engine, face
        self._landmarker_path = landmarker_path
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            kwargs = {"landmarker_path": self._landmarker_path} if self._landmarker_path else {}
            with relayed_warnings(self.warned.emit):
                transcript = caption_video(
                    self.path,
                    self.engine,
                    progress=self._on_progress,
                    face=self.face,
                    strict_face=False,
                    **kwargs,
                )
        except Cancelled:
            self.cancelled.emit()
        except Exception as e:
            _log_failure(f"captioning {self.path} failed", e)
            self.errored.emit(error_message(e))
        else:
            self.done.emit(transcript)
        finally:
            self.finished.emit()

    def _on_progress(self, done: float, total: float) -> bool:
        self.progress.emit(done, total)
        return not self._cancel.is_set()


def join_thread(thread: QThread, what: str) -> bool:
    """Quit and wait for `thread`, then schedule its deletion; False (and a warning) on timeout."""
    thread.quit()
    if not thread.wait(JOIN_TIMEOUT_MS):
        log.warning("the %s did not stop within %d ms", what, JOIN_TIMEOUT_MS)
        return False
    thread.deleteLater()
    return True


def start_in_thread(worker: LiveWorker | CaptionJob, parent: QObject) -> QThread:
    """Move `worker` to a new QThread that runs `worker.run` and quits when it finishes."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    thread.start()
    return thread


class LiveStream(QObject):
    """Owns the one live stream: starts a LiveWorker in a thread, relays its signals, stops it.

    Deliveries of a stream that was stopped (still queued in the event loop) are dropped, so a
    seek or a source change never shows stale frames.
    """

    delivered = Signal(object)  # Delivered of the current stream
    warned = Signal(str)  # a warning about the current stream (e.g. its file is truncated)
    errored = Signal(str)
    ended = Signal()  # the current stream finished on its own (end of file) or after an error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: LiveWorker | None = None
        self._thread: QThread | None = None
        self._stuck: list[tuple[LiveWorker, QThread]] = []  # workers that did not stop in time
        # stopped workers whose `finished` is still queued, kept alive until it arrives: a freed
        # worker's address can be the next one's, and `sender()` would then name the new worker
        self._stopped: list[LiveWorker] = []
        self._stream = 0

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def paused(self) -> bool:
        return self._worker is not None and self._worker.paused

    def start(
        self,
        source: Iterable[Frame | Idle],
        engine: CaptionEngine,
        offset: float = 0.0,
        face_choice: FaceChoice | None = None,
        turned: bool | None = None,
    ) -> None:
        """Run a new stream (stopping the current one); `face_choice`: the face the user picks;
        `turned`: the picture is upside down (None: found from its first frames)."""
        self.stop()
        self._stream += 1
        worker = LiveWorker(source, engine, offset, self._stream, face_choice=face_choice, turned=turned)
        worker.update.connect(self._on_update)
        worker.warned.connect(self._on_warned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker, self._thread = worker, start_in_thread(worker, self)

    def stop(self, finish: bool = True) -> list[Delivered]:
        """Stop the current stream and wait for its thread (no `ended` is emitted). Returns its end,
        which is not delivered: the updates after the last one delivered, the closing one last (the
        utterance in progress final, and its second reading when one was due); none when not
        `finish` (the window closing: nobody would see it)."""
        worker, thread = self._worker, self._thread
        self._worker = self._thread = None
        self._stream += 1  # anything still queued from it is now stale
        if worker is None or thread is None:
            return []
        worker.stop(finish)
        self._stopped.append(worker)
        if not join_thread(thread, "stream worker"):
            self._stuck.append((worker, thread))  # deleting them while they run would crash
            return []
        return worker.after_stop

    def toggle_pause(self) -> bool:
        """Pause or resume a file source; returns True if now paused."""
        if self._worker is None:
            return False
        if self._worker.paused:
            self._worker.resume()
        else:
            self._worker.pause()
        return self._worker.paused

    def _on_update(self, d: Delivered) -> None:
        if d.stream == self._stream:
            self.delivered.emit(d)

    def _on_warned(self, message: str) -> None:
        if self.sender() is self._worker:
            self.warned.emit(message)

    def _on_errored(self, message: str) -> None:
        if self.sender() is self._worker:
            self.errored.emit(message)

    def _on_finished(self) -> None:
        sender = self.sender()
        if any(w is sender for w in self._stopped):  # its last signal: it may go now
            self._stopped = [w for w in self._stopped if w is not sender]
        elif self._worker is not None and sender is self._worker:
            worker, thread = self._worker, self._thread
            self._worker = self._thread = None
            if thread is not None and not join_thread(thread, "stream worker"):
                self._stuck.append((worker, thread))
            self.ended.emit()
