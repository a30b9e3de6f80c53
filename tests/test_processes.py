"""Worker processes that end with their parent (core.processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from core.processes import end_with_parent, shut_down

# a parent that starts a pool worker (ending with it) on a long job, says the worker's pid, then waits
PARENT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from core.processes import end_with_parent
pool = ProcessPoolExecutor(1, initializer=end_with_parent)
pool.submit(time.sleep, 60)
time.sleep(0.5)
print(next(iter(pool._processes)), flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not running
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_ends_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert alive(worker)
    parent.kill()  # SIGKILL: nothing of the parent's own runs
    parent.wait(10)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker)


def test_an_interrupted_pool_ends_its_running_and_queued_jobs_at_once():
    pool = ProcessPoolExecutor(1, initializer=end_with_parent)
    futures = [pool.submit(time.sleep, 30) for _ in range(3)]
    time.sleep(0.5)  # the first runs
    start = time.monotonic()
    shut_down(pool, interrupted=True)
    assert time.monotonic() - start < 5
    assert all(f.done() for f in futures)


def test_a_finished_pool_is_shut_down_after_its_jobs():
    pool = ProcessPoolExecutor(1)
    future = pool.submit(sum, [1, 2])
    shut_down(pool, interrupted=False)
    assert future.result() == 3
