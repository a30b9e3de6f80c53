"""Worker processes that end with their parent: for the CLI's batch pools and training's preparation.

A pool's own shutdown waits for the jobs running and queued (a long video's minutes, a data set's
clips), and a parent killed by a signal it cannot handle leaves its workers working on, orphaned.
`end_with_parent` (a pool's initializer) and `shut_down` (on an interrupt) end them instead.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # prctl(2): the signal sent when the parent dies
WORKER_JOIN_S = 5.0  # seconds to wait for a terminated worker process to end


def end_with_parent() -> None:
    """Linux: this process gets SIGTERM when the one that started it dies (killed by a signal it
    cannot handle), instead of working on, orphaned; elsewhere nothing is done."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl: the pool's own end-of-parent check remains
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the call
        os._exit(1)


def shut_down(pool: ProcessPoolExecutor, interrupted: bool) -> None:
    """Shut a pool down once its jobs are done, or (`interrupted`: Ctrl-C, SIGTERM, a reader gone)
    at once: its workers are ended in the middle of their jobs, and the pool fails the jobs still
    queued instead of starting them. Its futures must not be cancelled first: Python 3.11's pool
    then fails on setting a cancelled one's result."""
    if interrupted:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(WORKER_JOIN_S)
    pool.shutdown(wait=True)
