"""Reference transcripts for evaluation: GRID-layout folders and manifests (CSV or JSON Lines).

A GRID folder holds `video/*.mp4` + `align/*.align` (or the original `sN/*.mpg` +
`alignments/sN/*.align`); .align lines are `start end word` in 1000 units per 25 fps frame, with
`sil`/`sp` for silence. A manifest lists `video,transcript` rows (CSV with a header, or one JSON
object per line), optionally with `start` and `end` (seconds) to take only part of the video;
relative video paths are relative to the manifest's folder. A free transcript is read as training
reads it (`transcript_text`): lower case, without markup, annotations or punctuation.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.transport_stream import TS_HEAD, ts_start

# the suffixes of the video files a folder is walked for (captioning, evaluation, training data) and
# the app's Open dialog lists: containers OpenCV's FFmpeg reads that people have. Each was read
# frame by frame from a file ffmpeg wrote; left out are .dv (OpenCV takes 60,000 fps for one), .ogg
# (mostly sound) and raw streams (.m2v, .mjpeg, .y4m: no frame count, or gigabytes)
VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".mts",
    ".m2ts",
    ".vob",
    ".3gp",
    ".3g2",
    ".wmv",
    ".asf",
    ".flv",
    ".f4v",
    ".ogv",
    ".mxf",
)
# suffixes other files have too (TypeScript, Qt Linguist): such a file is a video when its first bytes
# are an MPEG transport stream's (core.transport_stream)
SHARED_SUFFIXES = (".ts", ".mts")
SILENCE = ("sil", "sp")
GRID_UNITS_PER_SECOND = 25_000  # .align times: 1000 units per frame at 25 fps
# the GRID sentence grammar: the words allowed in each slot, in order (letters exclude "w")
GRID_GRAMMAR = (
    ("bin", "lay", "place", "set"),
    ("blue", "green", "red", "white"),
    ("at", "by", "in", "with"),
    tuple("abcdefghijklmnopqrstuvxyz"),
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ("again", "now", "please", "soon"),
)


_MARKUP = re.compile(r"<[^>]*>|\{[^}]*\}")  # HTML-ish tags (<i>, <c.yellow>) and ASS overrides ({\an8})
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|♪")  # [music], (laughs): not speech
_NOT_WORD = re.compile(r"[^\w']+")


class TranscriptError(ValueError):
    """A transcript file or data folder is unusable; the message names the file."""


@dataclass(frozen=True)
class Word:
    """A reference word and where it is said, in seconds from the clip start."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Reference:
    """A video and what is said in it."""

    video: Path
    text: str  # lower-case words separated by single spaces
    words: tuple[Word, ...] = ()  # with timings when the source has them
    start: float = 0.0  # seconds into the video where what is said starts
    end: float | None = None  # seconds where it ends (None: the end of the video)

    def __str__(self) -> str:
        """The video, with the seconds meant when only part of it is: "a.mp4 (1.50 s to 3.00 s)"."""
        if self.start <= 0 and self.end is None:
            return str(self.video)
        until = "the end" if self.end is None else f"{self.end:.2f} s"
        return f"{self.video} ({self.start:.2f} s to {until})"


def read_align(path: Path) -> tuple[Word, ...]:
    """Words of a GRID .align file, silences dropped. Raises TranscriptError when malformed or empty."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TranscriptError(f"cannot read alignment {path}: {e}") from e
    words = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise TranscriptError(f"alignment {path} line {number}: expected 'start end word'")
        if not (parts[0].isdigit() and parts[1].isdigit()):
            raise TranscriptError(f"alignment {path} line {number}: times are not integers")
        if parts[2].lower() not in SILENCE:
            words.append(
                Word(
                    parts[2].lower(),
                    int(parts[0]) / GRID_UNITS_PER_SECOND,
                    int(parts[1]) / GRID_UNITS_PER_SECOND,
                )
            )
    if not words:
        raise TranscriptError(f"alignment {path} has an empty transcript")
    return tuple(words)


def folder_name(path: str | Path) -> str:
    """A folder's own name, also when given as "." or ".." (a link keeps its own)."""
    return Path(os.path.abspath(path)).name


def speaker_alignments(root: str | Path) -> Path | None:
    """`../alignments/sN/` when `root` is one `sN/` folder of the original GRID layout given alone
    (not the layout's root, which holds `alignments/` itself), else None."""
    root = Path(root)
    aligns = Path(os.path.abspath(root)).parent / "alignments" / folder_name(root)
    return aligns if not (root / "alignments").is_dir() and aligns.is_dir() else None


def grid_pairs(root: Path) -> Iterator[tuple[Path, Path | None]]:
    """(video, alignment or None) for both GRID layouts under `root`: `video/` beside `align/`, or a
    folder per speaker holding them; the original distribution's `sN/` folders beside
    `alignments/sN/`, or one such `sN/` folder."""
    root = Path(root)
    if (root / "video").is_dir():
        yield from _pairs(root / "video", root / "align")
    elif (aligns := speaker_alignments(root)) is not None:
        yield from _pairs(root, aligns)
    else:
        for speaker in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "alignments"):
            if (speaker / "video").is_dir():
                yield from _pairs(speaker / "video", speaker / "align")
            else:
                yield from _pairs(speaker, root / "alignments" / speaker.name)


def is_video_file(path: Path) -> bool:
    """Whether a file met in a folder is taken for a video: by its suffix (VIDEO_SUFFIXES), and by
    its first bytes too for a suffix other files share (SHARED_SUFFIXES). One that cannot be read
    is taken for one, to fail with its reason when it is read."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        return False
    if suffix not in SHARED_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            return ts_start(f.read(TS_HEAD)) is not None
    except OSError:
        return True


def _pairs(videos: Path, aligns: Path) -> Iterator[tuple[Path, Path | None]]:
    """(video, its .align in `aligns` or None) for the videos in folder `videos`."""
    for video in sorted(videos.iterdir()):
        if is_video_file(video):
            align = aligns / f"{video.stem}.align"
            yield video, align if align.is_file() else None


def transcript_text(text: str) -> str:
    """The words of a free transcript, separated by single spaces: lower case, markup (<i>, {\\an8}),
    annotations ([music], (laughs)) and punctuation dropped, apostrophes inside words kept."""
    text = _ANNOTATION.sub(" ", _MARKUP.sub(" ", html.unescape(text)))
    words = (w.strip("'_") for w in _NOT_WORD.split(text.lower()))
    return " ".join(w for w in words if w)


def ctc_frames(text: str) -> int:
    """The fewest frames CTC can write `text` in: a frame per character, and a blank between two
    alike. A clip with fewer adds nothing to the loss (training.prepare leaves it out)."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:], strict=False))


def _seconds(value: object, what: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as e:
        raise TranscriptError(f"{what} {value!r} is not a number of seconds") from e
    if not math.isfinite(seconds) or seconds < 0:
        raise TranscriptError(f"{what} {value!r} is not a time")
    return seconds


def manifest_span(row: dict) -> tuple[float, float | None]:
    """(start, end) seconds of a manifest row's optional `start`/`end` fields (0 and None when
    absent). Raises TranscriptError when one is not a time or the end is not after the start."""
    start = _seconds(row.get("start"), "start") or 0.0
    end = _seconds(row.get("end"), "end")
    if end is not None and end <= start:
        raise TranscriptError(f"end {end} is not after start {start}")
    return start, end


@dataclass(frozen=True)
class ManifestRow:
    """A usable manifest row: what eval and training both read from it."""

    video: Path  # relative paths taken from the manifest's folder
    text: str  # its transcript as `transcript_text` reads it, never empty
    start: float  # seconds into the video where the transcript starts
    end: float | None  # seconds where it ends (None: the end of the video)
    fields: dict  # the row as read, for optional fields such as `speaker` and `id`


def manifest_rows(path: Path) -> Iterator[tuple[str, object]]:
    """("manifest {path} line N", row as read) for each row of a CSV or JSON Lines manifest; a CSV
    row is a dict, a JSON line any JSON value (a line that is not JSON: its JSONDecodeError, which
    `manifest_entry` rejects). Raises TranscriptError when the file cannot be read or a CSV has no
    `video` column."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            if path.suffix.lower() == ".csv":
                reader = csv.DictReader(f)
                if not reader.fieldnames or "video" not in reader.fieldnames:
                    raise TranscriptError(f"manifest {path} needs a header line with a 'video' column")
                for row in reader:
                    yield f"manifest {path} line {reader.line_num}", row
                return
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:  # a bad line is skipped like a bad row (manifest_entry)
                        row = e
                    yield f"manifest {path} line {number}", row
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TranscriptError(f"cannot read manifest {path}: {e}") from e


def manifest_entry(row: object, folder: Path) -> ManifestRow:
    """A row of `manifest_rows` of a manifest in `folder`, checked. Raises TranscriptError saying why
    it is unusable: not JSON, not a JSON object, no video, a transcript (`transcript`, or `text`)
    empty or not text, or bad `start`/`end` times."""
    if isinstance(row, json.JSONDecodeError):
        raise TranscriptError(f"not JSON ({row.msg})")
    if not isinstance(row, dict):
        raise TranscriptError("not a JSON object")
    if not row.get("video"):
        raise TranscriptError("no video")
    said = next((row[k] for k in ("transcript", "text") if row.get(k) not in (None, "")), "")
    if not isinstance(said, str):  # a JSON list or number: not a transcript written out
        raise TranscriptError(f"{row['video']}: the transcript is not text but a JSON {type(said).__name__}")
    text = transcript_text(said)
    if not text:
        raise TranscriptError(f"{row['video']}: empty transcript")
    start, end = manifest_span(row)
    return ManifestRow(Path(folder) / str(row["video"]), text, start, end, row)


def read_manifest(path: Path) -> tuple[list[Reference], list[str]]:
    """References of a CSV (header `video,transcript[,start,end]`) or JSON Lines manifest, and one
    problem line per row skipped (see `manifest_entry`). Raises TranscriptError when the file cannot
    be read (see `manifest_rows`) or no row is usable."""
    path = Path(path)
    refs, problems = [], []
    for where, row in manifest_rows(path):
        try:
            entry = manifest_entry(row, path.parent)
        except TranscriptError as e:
            problems.append(f"{where}: {e}; skipped")
            continue
        refs.append(Reference(entry.video, entry.text, start=entry.start, end=entry.end))
    if not refs:
        why = f" ({problems[0]})" if problems else ""
        raise TranscriptError(f"manifest {path} lists no video to evaluate{why}")
    return refs, problems


def read_references(data: str | Path) -> tuple[list[Reference], list[str]]:
    """References of a GRID folder or a manifest file, and one problem line per skipped clip."""
    data = Path(data)
    if data.is_file() and data.suffix.lower() in VIDEO_SUFFIXES:
        raise TranscriptError(f"cannot read data {data}: expected a GRID folder or a manifest, not a video")
    if data.is_file():
        return read_manifest(data)
    if not data.is_dir():
        raise TranscriptError(f"cannot read data {data}: no such file or folder")
    refs, problems = [], []
    for video, align in grid_pairs(data):
        if align is None:
            problems.append(f"{video}: no alignment file")
            continue
        try:
            words = read_align(align)
        except TranscriptError as e:
            problems.append(str(e))
            continue
        refs.append(Reference(video, " ".join(w.text for w in words), words))
    if not refs:
        raise TranscriptError(
            f"no GRID clip with an alignment under {data} (expected video/ and align/, a folder per "
            "speaker holding them, or the original sN/ folders and alignments/sN/)"
        )
    return refs, problems
