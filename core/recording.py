"""Recording a speaker's own training clips: GRID sentences to read, takes written as a manifest.

A folder of takes is a training data source as it stands (`lipreader-train --data FOLDER`): one
`<name>.mp4` per sentence read and `manifest.csv` with a `video,transcript,speaker` row for each,
video paths relative to the folder. A take is written to a hidden temporary file beside its video
as its frames come, and renamed over it only when kept; the manifest is rewritten atomically. A
take is checked before it is kept (`check_take`) by the rules under which training would leave it
out, so that none is kept that would not be trained on.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.frontend import MIN_FACE_RATIO
from core.subtitles import FILE_MODE, write_atomic
from core.transcripts import GRID_GRAMMAR, TranscriptError, ctc_frames, manifest_rows, transcript_text

MANIFEST = "manifest.csv"  # the folder's manifest, a data source `lipreader-train --data` reads
FIELDS = ("video", "transcript", "speaker")  # its columns, first in this order (others are kept)
TAKE_PREFIX = "take"  # takes are named take0001.mp4, take0002.mp4, ...
FOURCC = "mp4v"  # MPEG-4 Part 2: what OpenCV's FFmpeg writes to .mp4 without an encoder library
SPEAKER = "me"  # the speaker column of a take (training's clip ids and --split speaker use it)
# the longest take kept, 6 s at 25 fps: a manifest clip has no word timings, so training leaves out
# one longer than its --samples-max-frames (100 by default), which the app's adaptation sets to this
MAX_TAKE_FRAMES = 150
# a take's longer side, pixels: a larger camera picture is scaled down to it before it is written.
# Training reads only a 64x32 lip crop; a 640x480 picture holds the mouth at 100 px or more at arm's
# length, and writing it costs 2 ms a frame against 7 ms at 1280x720 and 17 ms at 1920x1080 here
MAX_TAKE_SIDE = 640
TEMP_SUFFIX = ".tmp.mp4"  # a take being recorded: .take-XXXX.tmp.mp4 in the folder, renamed when kept
LEFTOVER_AGE_S = 3600.0  # a take's temporary file untouched this long was left by an app that died
DUPLICATE_TRIES = 50  # draws of a sentence before one already given is allowed again

_TAKE_NAME = re.compile(rf"^{TAKE_PREFIX}(\d+)\.")


def prompt_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` GRID sentences ("bin blue at f two now"), each slot's word drawn among those of the
    slot used least so far: every word of the grammar comes up as early as it can (all 25 letters,
    the largest slot, in the first 25 sentences), then each as often as the others. The same for
    the same `seed`; no sentence twice."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    rng = random.Random(seed)
    uses = [dict.fromkeys(slot, 0) for slot in GRID_GRAMMAR]
    sentences: list[str] = []
    given: set[str] = set()
    while len(sentences) < count:
        for _ in range(DUPLICATE_TRIES):
            words = [rng.choice([w for w, n in used.items() if n == min(used.values())]) for used in uses]
            if " ".join(words) not in given:
                break
        for used, word in zip(uses, words, strict=True):
            used[word] += 1
        sentences.append(" ".join(words))
        given.add(sentences[-1])
    return sentences


def check_take(
    transcript: str, face_found: Sequence[bool], fps: float = 25.0, max_frames: int = MAX_TAKE_FRAMES
) -> str | None:
    """Why training would leave out a take of `transcript` (one line), or None when it is fine.

    face_found: per frame, whether the face was found (the live stream's crop status TRACKED).
    Training leaves out a clip with the face found on fewer than MIN_FACE_RATIO of its frames or
    with fewer frames than CTC needs for its letters (training.prepare), and one of more than
    `max_frames` frames (a manifest clip, without word timings, cannot be cut shorter).
    """
    frames = len(face_found)
    if frames == 0:
        return "Nothing was recorded: no frame came from the source."
    ratio = float(np.mean(np.asarray(face_found, bool)))
    if ratio < MIN_FACE_RATIO:
        return (
            f"The face was found on only {ratio:.0%} of the frames (training needs {MIN_FACE_RATIO:.0%}): "
            "face the camera, in good light."
        )
    needed = ctc_frames(transcript_text(transcript))
    if frames < needed:
        return (
            f"Too short: {frames / fps:.1f} s is less than the sentence needs ({needed / fps:.1f} s at "
            "least): stop only after the last word."
        )
    if frames > max_frames:
        return (
            f"Too long: training takes at most {max_frames / fps:.1f} s ({max_frames} frames): start "
            "reading at once and stop right after the last word."
        )
    return None


@dataclass(frozen=True)
class Take:
    """A manifest row of a kept take."""

    video: str  # path relative to the folder (as the manifest gives it)
    transcript: str
    speaker: str


def _rows(folder: Path) -> list[dict[str, str]]:
    """The rows of the folder's manifest as read (none when there is no manifest). Raises
    TranscriptError when it cannot be read."""
    path = folder / MANIFEST
    if not path.exists():
        return []
    return [row for _, row in manifest_rows(path) if isinstance(row, dict)]


def folder_takes(folder: str | Path) -> list[Take]:
    """What a folder already holds: its manifest's rows whose video is there, in order. Raises
    TranscriptError when the manifest cannot be read."""
    folder = Path(folder)
    return [
        Take(row["video"], row.get("transcript") or "", row.get("speaker") or "")
        for row in _rows(folder)
        if row.get("video") and (folder / row["video"]).is_file()
    ]


def sweep_leftovers(folder: str | Path, older_than: float = LEFTOVER_AGE_S) -> list[Path]:
    """Delete the temporary files of takes that were never kept nor discarded (the app killed
    mid-take) last modified more than `older_than` seconds ago, so a take being recorded now (by
    another window) is left alone; return those deleted."""
    now = time.time()
    gone = []
    for path in Path(folder).glob(f".{TAKE_PREFIX}-*{TEMP_SUFFIX}"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                gone.append(path)
        except OSError:  # gone meanwhile, or not ours to delete: left
            continue
    return gone


def next_take_name(folder: str | Path) -> str:
    """A take name not used in the folder: the number after the highest of its files' and its
    manifest's (takes of earlier sessions, a take deleted since), so none is ever written over."""
    folder = Path(folder)
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    names += [Path(row.get("video") or "").name for row in _rows(folder)]
    numbers = [int(m.group(1)) for name in names if (m := _TAKE_NAME.match(name))]
    return f"{TAKE_PREFIX}{max(numbers, default=0) + 1:04d}"


class TakeRecorder:
    """One take of one sentence: BGR frames in, `<folder>/<name>.mp4` and its manifest row out.

    Frames go to a temporary file beside the video as they come; `keep` renames it over the video
    (a sentence taken before keeps its name: the new take replaces it) and writes the manifest row,
    `discard` deletes it. Nothing is left half written in the folder on either, or on failure.
    """

    def __init__(
        self, folder: str | Path, transcript: str, fps: float = 25.0, speaker: str = SPEAKER
    ) -> None:
        self.folder = Path(folder)
        self.transcript = transcript_text(transcript)
        if not self.transcript:
            raise ValueError(f"nothing to read in transcript {transcript!r}")
        self.fps = fps
        self.speaker = speaker
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the first frame
        self._written: tuple[int, int] | None = None  # (width, height) written: _size scaled down

    def add(self, image: np.ndarray) -> None:
        """Append a frame. image: BGR uint8, shape (H, W, 3), all of one size; written scaled down
        to MAX_TAKE_SIDE pixels on its longer side. Raises ValueError for another size, OSError when
        the file cannot be written."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image, got {image.dtype} {image.shape}")
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{TAKE_PREFIX}-", suffix=TEMP_SUFFIX, dir=self.folder)
            os.close(fd)
            self._tmp, self._size = Path(tmp), size
            scale = min(1.0, MAX_TAKE_SIDE / max(size))
            self._written = (round(size[0] * scale), round(size[1] * scale))
            self._writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), self.fps, self._written)
            if not self._writer.isOpened():
                self.discard()
                raise OSError(f"cannot write a video in {self.folder} ({size[0]}x{size[1]}, {FOURCC})")
        elif size != self._size:
            raise ValueError(f"frame size changed from {self._size} to {size} during the take")
        if self._written != size:
            image = cv2.resize(image, self._written, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def keep(self) -> Take:
        """Close the take and put it in the folder with its manifest row (replacing the row of the
        same sentence, and its video, when that is a take of this speaker recorded here: never a
        clip of another manifest's). Raises RuntimeError with a readable message when it cannot;
        the take is then discarded and the folder as it was (a take it replaces may be gone)."""
        if self._writer is None or self._tmp is None:
            raise RuntimeError("cannot keep a take without frames")
        self._writer.release()
        self._writer = None
        tmp, self._tmp = self._tmp, None
        try:
            rows = _rows(self.folder)
            same = next(
                (
                    r
                    for r in rows
                    if _own_take(r, self.speaker)
                    and transcript_text(r.get("transcript") or "") == self.transcript
                ),
                None,
            )
            video = (
                same["video"]
                if same is not None and same.get("video")
                else f"{next_take_name(self.folder)}.mp4"
            )
            row = {**(same or {}), "video": video, "transcript": self.transcript, "speaker": self.speaker}
            rows = [row if r is same else r for r in rows] if same is not None else [*rows, row]
            path = self.folder / video
            existed = path.exists()
            os.chmod(tmp, FILE_MODE)  # mkstemp's are private
            os.replace(tmp, path)
            try:
                write_atomic(self.folder / MANIFEST, _manifest_text(rows), overwrite=True)
            except BaseException:
                if not existed:  # a new take without its row: gone with it
                    path.unlink(missing_ok=True)
                raise
        except (OSError, TranscriptError) as e:
            raise RuntimeError(f"cannot keep the take in {self.folder}: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)
        return Take(video, self.transcript, self.speaker)

    def discard(self) -> None:
        """Drop the take (its temporary file goes)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _own_take(row: dict[str, str], speaker: str) -> bool:
    """Whether a manifest row is a take recorded here, which a new take of its sentence may
    replace: its video a take's name in the folder itself, of `speaker`. Any other row (a data set's
    clip, a video elsewhere) is never written over."""
    video = row.get("video") or ""
    return Path(video).name == video and bool(_TAKE_NAME.match(video)) and row.get("speaker") == speaker


def _manifest_text(rows: list[dict[str, str]]) -> str:
    """A CSV manifest of `rows`: FIELDS first, then any other column a row has."""
    fields = list(FIELDS) + [k for row in rows for k in row if k not in FIELDS and k is not None]
    out = io.StringIO()
    writer = csv.DictWriter(out, list(dict.fromkeys(fields)), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: v for k, v in row.items() if k is not None} for row in rows)
    return out.getvalue()
