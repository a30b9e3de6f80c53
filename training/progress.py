"""Machine-readable progress for a program running `lipreader-train` (the app's *Adapt to my face*).

With $LIPREADER_PROGRESS set (to anything but "" or "0"), each clip prepared, each step fitted and
the start and end of the export print one line on stdout, flushed at once:

    lipreader-progress {"stage": "fit", "done": 12, "total": 40, "epoch": 6, "epochs": 20}

`stage` is "prepare" (clips cut, of those not yet cached), "fit" (optimisation steps of the whole
run, `epoch` of `epochs`; early stopping may end it before `total`) or "export" (0 of 1 when it
starts, 1 of 1 with `model`, the ONNX file written). stdout, not stderr, so that tqdm's bars (on
stderr, redrawn after a carriage return) never run into them. Without the variable nothing changes:
the output stays tqdm's bars and the log, for people.
"""

from __future__ import annotations

import json
import os

PROGRESS_ENV = "LIPREADER_PROGRESS"  # set: one progress line per clip, step and export
PREFIX = "lipreader-progress "  # what each progress line starts with, before its JSON object


def enabled() -> bool:
    """Whether progress lines are asked for ($LIPREADER_PROGRESS set, not "" or "0")."""
    return os.environ.get(PROGRESS_ENV, "") not in ("", "0")


def report(stage: str, done: int, total: int, **extra: object) -> None:
    """Print one progress line (see the module docstring) when they are asked for; else nothing.
    `extra`: more JSON fields (`epoch`, `epochs`, `model`)."""
    if enabled():
        print(PREFIX + json.dumps({"stage": stage, "done": done, "total": total, **extra}), flush=True)
