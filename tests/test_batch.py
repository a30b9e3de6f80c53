"""Batch jobs in worker processes: a worker that dies takes only its own video down; a batch
stopped midway (Ctrl-C) does not wait for the jobs running."""

from __future__ import annotations

import os
import time

from core.engine import StreamOptions
from lipreader_app.batch import EngineConfig, run_jobs


def crash_on_bad(engine: object, item: str) -> str:
    """A job whose process dies (as in a native crash) on items named "bad"."""
    if item.startswith("bad"):
        os._exit(3)
    return item.upper()


def slow_unless_first(engine: object, item: str) -> str:
    """A job that takes a long video's time (60 s) on every item but "first"."""
    if item != "first":
        time.sleep(60)
    return item


def test_a_batch_stopped_midway_ends_its_workers_at_once(tiny_model):
    config = EngineConfig(tiny_model, "cpu", 1, StreamOptions())
    outcomes = run_jobs(slow_unless_first, ["first", "slow", "slow"], config, workers=2)
    assert next(outcomes).result == "first"
    start = time.monotonic()
    outcomes.close()  # as a KeyboardInterrupt in the caller does
    assert time.monotonic() - start < 10  # not the 60 s of the job running


def test_a_worker_that_dies_fails_its_item_alone_and_the_rest_go_on(tiny_model):
    items = ["a", "b", "bad", "c", "d", "e"]
    config = EngineConfig(tiny_model, "cpu", 1, StreamOptions())
    outcomes = list(run_jobs(crash_on_bad, items, config, workers=2))
    assert [o.index for o in outcomes] == list(range(6))  # in order, every one
    assert [o.result for o in outcomes] == ["A", "B", None, "C", "D", "E"]
    assert outcomes[2].error == "cannot read video bad: the process reading it crashed"
    assert all(o.error is None for i, o in enumerate(outcomes) if i != 2)


def test_two_dying_workers(tiny_model):
    items = ["bad1", "a", "bad2", "b"]
    config = EngineConfig(tiny_model, "cpu", 1, StreamOptions())
    outcomes = list(run_jobs(crash_on_bad, items, config, workers=2))
    assert [o.result for o in outcomes] == [None, "A", None, "B"]
    assert [o.error is not None for o in outcomes] == [True, False, True, False]
