"""Data preparation: run core's front end once per clip and cache the crops on disk.

The cache holds one `<clip_id>.npz` per clip (crops, lip points, track status) under a folder
named after the crop spec, written atomically; a rerun skips what is there, so it resumes.
Clips where the face is lost (or several are in view, or the transcript cannot fit in the frames)
are listed in `problems.json` beside them, never dropped silently. Each entry keeps what it was cut
from (`clip_source`: the video's path, size and modification time, the span): a clip whose video or
span changed since is cut again, and one left out is tried again (judged again from its crops when
they were cut: its transcript may have changed), so neither an edited subtitle nor a fixed file
gets stale crops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from core import crop
from core.crop import CropSpec
from core.decoding import quiet_native_stderr
from core.frontend import MIN_FACE_RATIO, extract_clip
from core.processes import end_with_parent, shut_down
from core.subtitles import write_atomic
from core.transcripts import ctc_frames
from core.types import TrackStatus
from core.video import VideoError
from training import progress
from training.data import Clip
from training.readers import read_data

if TYPE_CHECKING:
    from training.config import TrainConfig

log = logging.getLogger("lipreader")

UNVERSIONED = 1  # caches of this front-end version are keyed as before versions existed, so they stay found


@dataclass(frozen=True)
class CachedClip:
    """What the cache holds for a clip."""

    crops: np.ndarray  # uint8, shape (T, H, W) or (T, H, W, 3)
    lip_points: np.ndarray  # float32, shape (T, 40, 2), crop pixels ((T, 40, 3) with depth)
    status: np.ndarray  # uint8 TrackStatus, shape (T,)


def cache_dir(root: Path, spec: CropSpec, fps: float) -> Path:
    """The cache folder for one crop spec and frame rate, cut by this version of the front end."""
    values = spec.to_dict()
    # keyed as before these fields existed when they are unset, so older caches stay found
    for name in ("follow_face", "nose_low", "nose_high", "depth"):
        if not values[name]:
            del values[name]
    keyed = {"spec": values, "fps": fps}
    if crop.CROP_VERSION != UNVERSIONED:
        keyed["version"] = crop.CROP_VERSION
    key = json.dumps(keyed, sort_keys=True)
    return Path(root) / f"crops-{spec.height}x{spec.width}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file in the same folder, then rename over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp's are private: a shared cache is read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clip_source(clip: Clip) -> str:
    """What a clip's crops are cut from, as the cache records it: its video (resolved path, size,
    modification time) and span. A missing video gives its path alone."""
    try:
        st = clip.video.stat()
        video = [str(clip.video.resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        video = [str(clip.video)]
    return json.dumps([*video, clip.start, clip.end])


@dataclass(frozen=True)
class _Cached:
    """What a cached clip says of itself, read once per run."""

    source: str | None  # the clip_source it was cut from; None for caches from before it was kept
    face_ratio: float
    max_faces: int  # 1 when cut before the face count was kept
    frames: int
    faces_kept: bool  # whether it keeps the face count (else its ratio is from its track status)


def _read_cached(path: Path) -> _Cached | None:
    """The cached clip at `path`; None when there is none."""
    if not path.exists():
        return None
    with np.load(path) as z:
        status = z["status"]
        source = str(z["source"]) if "source" in z.files else None
        if "face_ratio" in z.files:
            return _Cached(source, float(z["face_ratio"]), int(z["max_faces"]), len(status), True)
    tracked = float(np.mean(status == TrackStatus.TRACKED)) if len(status) else 0.0
    return _Cached(source, tracked, 1, len(status), False)


def _read_problems(path: Path) -> dict[str, dict]:
    """problems.json: {clip id: {"problem": why, "source": clip_source or None}} (None: written
    before sources were kept, when it held {clip id: why})."""
    if not path.exists():
        return {}
    return {
        clip_id: entry if isinstance(entry, dict) else {"problem": entry, "source": None}
        for clip_id, entry in json.loads(path.read_text()).items()
    }


def load_cached(path: Path) -> CachedClip:
    with np.load(path) as z:
        return CachedClip(z["crops"], z["lip_points"], z["status"])


def _problem(clip: Clip, face_ratio: float, max_faces: int, frames: int) -> str | None:
    """Why a cached clip of `frames` frames is left out of training, or None."""
    if face_ratio < MIN_FACE_RATIO:
        return f"{clip.video}: face found on only {face_ratio:.0%} of frames"
    if max_faces > 1:
        return f"{clip.video}: {max_faces} faces in view"
    # fewer frames than CTC needs for the text: a video cut short, a cue running past the video's end
    needed = ctc_frames(clip.text)
    if frames < needed:
        span = f" from {clip.start:.2f} s" if clip.start or clip.end is not None else ""
        return f"{clip.video}{span}: {frames} frames for a transcript of {needed} characters (cut short?)"
    return None


def _prepare_one(clip: Clip, out: Path, spec: CropSpec, fps: float, source: str) -> tuple[str, str | None]:
    """Cache one clip (only its [start, end) seconds), cut from `source` (clip_source); returns
    (clip_id, problem or None)."""
    try:
        with quiet_native_stderr():  # MediaPipe's and TFLite's native log lines, once per worker
            result = extract_clip(clip.video, spec, fps, start=clip.start, end=clip.end)
    except (VideoError, OSError) as e:
        return clip.clip_id, str(e)
    except Exception as e:  # a clip the front end trips on (a bug) is reported, the rest go on
        log.debug("preparing %s failed", clip.video, exc_info=True)
        return clip.clip_id, f"{clip.video}: the front end failed: {type(e).__name__}: {e}"
    save_npz_atomic(
        out / f"{clip.clip_id}.npz",
        crops=result.crops,
        lip_points=result.lip_points,
        status=result.status,
        face_ratio=np.float64(result.face_ratio),
        max_faces=np.int64(result.max_faces),
        source=np.str_(source),
    )
    return clip.clip_id, _problem(clip, result.face_ratio, result.max_faces, len(result.crops))


def prepare(
    clips: list[Clip], out: Path, spec: CropSpec, fps: float = 25.0, workers: int = 2
) -> dict[str, str]:
    """Cache crops for `clips` under `out`; returns {clip_id: problem} for clips to leave out."""
    out.mkdir(parents=True, exist_ok=True)
    problems_file = out / "problems.json"
    recorded = _read_problems(problems_file)
    problems, todo = dict(recorded), []
    for c in clips:
        source, cached = clip_source(c), out / f"{c.clip_id}.npz"
        known, entry = problems.pop(c.clip_id, None), _read_cached(cached)
        # a clip left out is judged again from its crops when they keep the face count: else a clip
        # left out for two faces would be taken in
        judged_again = entry is not None and entry.faces_kept
        if known is not None and known["source"] in (None, source) and not judged_again:
            problems[c.clip_id] = known  # nothing cut that tells (an unreadable video, an old cache)
        elif entry is None or entry.source not in (None, source):
            todo.append((c, source))  # not cut yet, or its video or span changed since
        elif (problem := _problem(c, entry.face_ratio, entry.max_faces, entry.frames)) is not None:
            problems[c.clip_id] = {"problem": problem, "source": source}  # judged again: the
            # transcript may have changed
    if todo or problems != recorded:
        pool = ProcessPoolExecutor(max_workers=max(1, workers), initializer=end_with_parent)
        futures: dict[Future, str] = {}
        finished = False
        try:
            for c, source in todo:
                futures[pool.submit(_prepare_one, c, out, spec, fps, source)] = source
            progress.report("prepare", 0, len(futures))
            bar = tqdm(as_completed(futures), total=len(futures), desc="prepare", unit="clip")
            for done, future in enumerate(bar, 1):
                clip_id, problem = future.result()
                if problem:  # prepare_data reports them, one line each
                    problems[clip_id] = {"problem": problem, "source": futures[future]}
                progress.report("prepare", done, len(futures))
            finished = True
        finally:  # interrupted (Ctrl-C), the clips queued are not waited for; what was found is kept
            shut_down(pool, interrupted=not finished)
            write_atomic(problems_file, json.dumps(problems, indent=1), overwrite=True)
    return {c.clip_id: problems[c.clip_id]["problem"] for c in clips if c.clip_id in problems}


@dataclass(frozen=True)
class PreparedData:
    """A data set with its crops cached."""

    kind: str  # the reader that read it: "grid", "manifest" or "subtitles"
    folder: Path  # the crop cache folder
    clips: tuple[Clip, ...]  # clips with usable cached crops
    left_out: dict[str, str]  # clip id -> why it was left out (no face, unreadable video...)
    skipped: tuple[str, ...]  # problems of the reader (missing alignment, empty transcript...)


def prepare_data(cfg: TrainConfig, report: bool = True) -> PreparedData:
    """Read the data set and cache every clip's crops; bad data is reported (one line) and left out."""
    corpus = read_data(cfg.data)
    folder = cache_dir(Path(cfg.cache), cfg.crop, cfg.fps)
    bad = prepare(list(corpus.clips), folder, cfg.crop, cfg.fps, cfg.workers)
    if report:
        for problem in corpus.problems:
            log.warning("skipped: %s", problem)
        for problem in bad.values():
            log.warning("left out: %s", problem)
        log.info(
            "%s data %s: %d clips, %d left out, %d skipped",
            corpus.kind,
            cfg.data,
            len(corpus.clips) - len(bad),
            len(bad),
            len(corpus.problems),
        )
    clips = tuple(c for c in corpus.clips if c.clip_id not in bad)
    return PreparedData(corpus.kind, folder, clips, bad, corpus.problems)
