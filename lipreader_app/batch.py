"""Batch jobs for the CLI: run a function over many videos in 1..N processes, one engine each.

A job's item is a video path, or anything picklable whose str() names the video (e.g. a
`core.transcripts.Reference`, a video and the seconds of it to evaluate).
Each worker process loads the model once (in the pool initializer) and returns, per video, either
a result or a one-line error plus the warnings logged meanwhile (which only the caller prints); it
never raises for a bad file.
Native libraries' chatter on stderr (MediaPipe, TensorFlow Lite) is sent to /dev/null.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from core.assets import AssetError
from core.engine import CaptionEngine, StreamOptions
from core.inference import ModelError
from core.processes import end_with_parent, shut_down
from core.transcripts import TranscriptError
from core.video import VideoError

log = logging.getLogger("lipreader")


Item = TypeVar("Item")  # what a job is run on: a video path, or a video and more

USER_ERRORS = (ModelError, VideoError, AssetError, TranscriptError, ValueError, OSError)


@dataclass(frozen=True)
class EngineConfig:
    """How each process builds its engine."""

    model: Path  # the ONNX model file
    provider: str  # "auto", "cuda" or "cpu"
    threads: int  # ONNX Runtime intra-op threads per process
    options: StreamOptions  # windowing and decoding
    verbose: bool = False  # keep native libraries' stderr and show internal tracebacks

    def load(self) -> CaptionEngine:
        return CaptionEngine.load(
            self.model, provider=self.provider, threads=self.threads, options=self.options
        )


@dataclass(frozen=True)
class Outcome:
    """What one job produced: a result, or a one-line error; plus warnings logged meanwhile."""

    index: int
    result: object | None
    error: str | None
    warnings: tuple[str, ...]


def quiet_native_stderr() -> TextIO:
    """Send fd 2 to /dev/null (native libraries write there) and return a stream on the real stderr.

    sys.stderr is pointed at the returned stream, so Python's own messages still show.
    """
    sys.stderr.flush()
    real = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    sys.stderr = real
    return real


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_ENGINE: CaptionEngine | None = None  # the worker process's engine
_ENGINE_ERROR: str | None = None  # why it could not be loaded


def _init_worker(config: EngineConfig) -> None:
    global _ENGINE, _ENGINE_ERROR
    end_with_parent()
    if not config.verbose:
        quiet_native_stderr()
    try:
        _ENGINE = config.load()
    except USER_ERRORS as e:
        _ENGINE_ERROR = str(e)


def _run_in_worker(
    job: Callable[[CaptionEngine, Item], object], index: int, item: Item, verbose: bool
) -> Outcome:
    if _ENGINE is None:
        return Outcome(index, None, _ENGINE_ERROR or "the model is not loaded", ())
    return _run(job, _ENGINE, index, item, verbose)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


@contextmanager
def _warnings_collected() -> Iterator[_Collector]:
    """Warnings logged meanwhile go to the collector alone (an Outcome carries them, printed once);
    other messages (-v) go where they did."""
    collector, below = _Collector(), _BelowWarning()
    handlers = list(log.handlers)
    for handler in handlers:
        handler.addFilter(below)
    log.addHandler(collector)
    try:
        yield collector
    finally:
        log.removeHandler(collector)
        for handler in handlers:
            handler.removeFilter(below)


def _run(
    job: Callable[[CaptionEngine, Item], object], engine: CaptionEngine, index: int, item: Item, verbose: bool
) -> Outcome:
    with _warnings_collected() as collector:
        try:
            return Outcome(index, job(engine, item), None, tuple(collector.messages))
        except USER_ERRORS as e:
            return Outcome(index, None, _one_line(e), tuple(collector.messages))
        except Exception as e:  # a bug, not the user's fault: still one line, and the rest go on
            bug, warnings = e, tuple(collector.messages)
    if verbose:
        log.error("internal error on %s", item, exc_info=bug)
    return Outcome(index, None, f"internal error on {item}: {type(bug).__name__}: {_one_line(bug)}", warnings)


def run_jobs(
    job: Callable[[CaptionEngine, Item], object],
    items: Sequence[Item],
    config: EngineConfig,
    workers: int,
    engine: CaptionEngine | None = None,
) -> Iterator[Outcome]:
    """Outcomes of job(engine, item) for every item (a video path, or a video and more), in order,
    using `workers` processes.

    With one worker the jobs run here, on `engine` (loaded from `config` if None). `job` must be a
    module-level function (it is pickled to the workers).
    """
    if workers <= 1 or len(items) <= 1:
        engine = engine or config.load()
        for i, item in enumerate(items):
            yield _run(job, engine, i, item, config.verbose)
        return
    done: dict[int, Outcome] = {}
    shown = 0  # outcomes yield in order: those before this one have

    def in_order() -> Iterator[Outcome]:
        nonlocal shown
        while shown in done:
            yield done.pop(shown)
            shown += 1

    todo = list(range(len(items)))
    while todo:
        crashed = []
        for i, outcome in _pool_outcomes(job, items, todo, config, workers):
            if outcome is None:
                crashed.append(i)
            else:
                done[i] = outcome
            yield from in_order()
        if not crashed:
            return
        # a worker process died (a native crash) while reading one of them: every job not finished
        # then fails with it. The first is run alone: if it kills its process too, it is the one
        first, todo = crashed[0], crashed[1:]
        ((_, alone),) = _pool_outcomes(job, items, [first], config, 1)
        done[first] = alone or Outcome(
            first, None, f"cannot read video {items[first]}: the process reading it crashed", ()
        )
        yield from in_order()


def _pool_outcomes(
    job: Callable[[CaptionEngine, Item], object],
    items: Sequence[Item],
    indices: list[int],
    config: EngineConfig,
    workers: int,
) -> Iterator[tuple[int, Outcome | None]]:
    """(index, outcome) for items[indices] in order, from a pool of `workers` processes; the outcome
    is None for jobs lost when a worker process died."""
    context = multiprocessing.get_context("spawn")  # never fork a process holding ORT/MediaPipe threads
    pool = ProcessPoolExecutor(
        min(workers, len(indices)), mp_context=context, initializer=_init_worker, initargs=(config,)
    )
    futures = [pool.submit(_run_in_worker, job, i, items[i], config.verbose) for i in indices]
    finished = False
    try:
        for i, future in zip(indices, futures, strict=True):
            try:
                yield i, future.result()
            except BrokenExecutor:
                yield i, None
        finished = True
    finally:  # interrupted (Ctrl-C, SIGTERM, the reader of stdout gone): not waited for
        shut_down(pool, interrupted=not finished)
