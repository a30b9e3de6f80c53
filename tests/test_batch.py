"""Batch jobs in worker processes: a worker that dies takes only its own video down."""

from __future__ import annotations

import os

from core.engine import StreamOptions
from lipreader_app.batch import EngineConfig, run_jobs


def crash_on_bad(engine: object, item: str) -> str:
    """A job whose process dies (as in a native crash) on items named "bad"."""
    if item.startswith("bad"):
        os._exit(3)
    return item.upper()


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
