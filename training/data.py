"""Training data readers: every reader yields `Clip`s (a video, its transcript, word timings)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.transcripts import GRID_GRAMMAR, VIDEO_SUFFIXES, TranscriptError, Word, folder_name, read_align
from core.transcripts import grid_pairs as core_grid_pairs

__all__ = [
    "BLANK",
    "CHAR_INDEX",
    "GRID_GRAMMAR",
    "VIDEO_SUFFIXES",
    "VOCABULARY",
    "Clip",
    "DataError",
    "Word",
    "grid_pairs",
    "read_align",
    "read_grid",
]

log = logging.getLogger("lipreader")

BLANK = "_"
VOCABULARY = (BLANK, " ", *"abcdefghijklmnopqrstuvwxyz")  # what the models trained here write
CHAR_INDEX = {c: i for i, c in enumerate(VOCABULARY)}
QUIETLY_DROPPED = "'"  # left out of training targets without a word: "don't" is read as "dont"


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
    def unwritable(self) -> str:
        """The characters of the transcript the model cannot write (digits, accented letters...),
        each once; "" when there are none."""
        unknown = (c for c in self.text if c not in CHAR_INDEX and c not in QUIETLY_DROPPED)
        return "".join(dict.fromkeys(unknown))

    @property
    def timed(self) -> bool:
        """True when every word has a start and end time (sub-clip samples need them)."""
        return all(math.isfinite(w.start) and math.isfinite(w.end) and w.end >= w.start for w in self.words)


# the GRID .align reader and folder walk are core's (the app's `lipreader eval` reads them too)
DataError = TranscriptError  # a clip's transcript or layout is unusable; the message names the file


def grid_pairs(root: Path) -> Iterator[tuple[Path, Path | None, str]]:
    """(video, alignment or None, speaker) for both GRID layouts under `root` (see core.transcripts):
    the speaker is the name of the folder holding `video/` (`root` itself, or a folder per speaker
    under it), the `sN` folder of the original one."""
    root = Path(root)
    for video, align in core_grid_pairs(root):
        folder = folder_name(video.parent)
        yield video, align, folder_name(video.parent.parent) if folder == "video" else folder


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
