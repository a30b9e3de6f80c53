"""Files a run writes: checkpoints and records written atomically, the validation manifest, and the
description of the machine that trained it (run records, model cards)."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from core.subtitles import FILE_MODE, write_atomic
from training.data import Clip


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file beside `path`, flushed to disk, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(values: object, path: Path) -> None:
    """`values` as indented JSON, written atomically (core.subtitles.write_atomic)."""
    write_atomic(path, json.dumps(values, indent=1), overwrite=True)


def write_val_manifest(clips: list[Clip], path: Path) -> None:
    """The validation clips as a `video,transcript` manifest (paths relative to its folder), so that
    `lipreader eval RUN/val.csv` scores the app on exactly the held-out clips: with `start,end`
    seconds (core.transcripts.manifest_span; an empty end: the video's) when a clip is part of its
    video (a subtitle cue, a manifest row's span), else eval would read the whole video."""
    spans = any(clip.start > 0 or clip.end is not None for clip in clips)
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["video", "transcript", *(("start", "end") if spans else ())])
    for clip in clips:
        video = os.path.relpath(Path(clip.video).resolve(), path.parent.resolve())
        span = (clip.start, "" if clip.end is None else clip.end) if spans else ()  # str(float) round-trips
        writer.writerow([video, clip.text, *span])
    write_atomic(path, rows.getvalue(), overwrite=True)


def machine_description(device: torch.device, world: int = 1) -> str:
    """CPU model and cores, or the GPU, for run records and model cards."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    where = f"{cpu}, {os.cpu_count()} cores"
    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)} ({where})"
    return f"{where} x {world} processes" if world > 1 else where
