"""Training data readers: every reader yields `Clip`s (a video, its transcript, word timings)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("lipreader")

VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".webm", ".mkv")
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


@dataclass(frozen=True)
class Word:
    """A word and where it is said, in seconds from the clip start."""

    text: str
    start: float  # NaN when the transcript has no word timings
    end: float


@dataclass(frozen=True)
class Clip:
    """One training utterance."""

    clip_id: str  # unique within a data set; names the cache file
    video: Path  # the video file
    words: tuple[Word, ...] = field(default=())  # the transcript with word timings (may lack times)
    speaker: str = ""  # speaker id for by-speaker splits ("" if unknown)
    start: float = 0.0  # seconds into the video where the utterance starts
    end: float | None = None  # seconds where it ends (None: the end of the video)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def timed(self) -> bool:
        """True when every word has a start and end time (sub-clip samples need them)."""
        return all(math.isfinite(w.start) and math.isfinite(w.end) and w.end >= w.start for w in self.words)


class DataError(ValueError):
    """A clip's transcript or layout is unusable; the message names the file."""


def read_align(path: Path) -> tuple[Word, ...]:
    """Words of a GRID .align file (silences dropped). Raises DataError when malformed or empty."""
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read alignment {path}: {e}") from e
    words = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise DataError(f"alignment {path} line {number}: expected 'start end word'")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError as e:
            raise DataError(f"alignment {path} line {number}: times are not integers") from e
        if parts[2].lower() not in SILENCE:
            words.append(Word(parts[2].lower(), start / GRID_UNITS_PER_SECOND, end / GRID_UNITS_PER_SECOND))
    if not words:
        raise DataError(f"alignment {path} has an empty transcript")
    return tuple(words)


def grid_pairs(root: Path) -> Iterator[tuple[Path, Path | None, str]]:
    """(video, alignment or None, speaker) for both GRID layouts under `root`.

    Layouts: `video/*.mp4|*.mpg` + `align/*.align` (speaker = the folder name), and the original
    distribution's `sN/*.mpg` + `alignments/sN/*.align`, with `root` holding `sN` and `alignments`.
    """
    root = Path(root)
    if (root / "video").is_dir():
        for video in sorted((root / "video").iterdir()):
            if video.suffix.lower() in VIDEO_SUFFIXES:
                align = root / "align" / f"{video.stem}.align"
                yield video, align if align.is_file() else None, root.name
        return
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "alignments"):
        for video in sorted(speaker_dir.iterdir()):
            if video.suffix.lower() in VIDEO_SUFFIXES:
                align = root / "alignments" / speaker_dir.name / f"{video.stem}.align"
                yield video, align if align.is_file() else None, speaker_dir.name


def read_grid(root: Path) -> tuple[list[Clip], list[str]]:
    """Clips of a GRID-layout folder, and one problem line per clip that had to be skipped."""
    clips, problems = [], []
    for video, align, speaker in grid_pairs(Path(root)):
        if align is None:
            problems.append(f"{video}: no alignment file")
            continue
        try:
            words = read_align(align)
        except DataError as e:
            problems.append(str(e))
            continue
        clips.append(Clip(f"{speaker}_{video.stem}", video, words, speaker))
    return clips, problems
