"""Subtitle export: timed words -> cues of a few words -> SRT, WebVTT (word-timed) or plain text
(a line per cue).

Words are cut into cues at every pause longer than MAX_GAP; a stretch of speech too long for one
cue (MAX_WORDS, MAX_SECONDS) is cut at its longest pause, and its parts again until each fits, so
that cues end where the speaker paused (between sentences), not after a fixed number of words.

Files are written atomically (a temporary file in the same folder, then a rename) and never
replace an existing file unless asked to.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_WORDS = 7  # most words in one cue
MAX_SECONDS = 4.0  # longest cue, from its first word's start to its last word's end
MAX_GAP = 1.0  # a pause longer than this (seconds) starts a new cue
MIN_PAUSE = 0.2  # seconds between words that count as a pause where a long cue is cut
MIN_DURATION = 0.8  # shortest time a cue stays on screen (unless the next cue starts sooner)
FILE_MODE = 0o644  # permissions of written files (mkstemp's own are owner-only)


class TimedWord(Protocol):
    """Anything with a text and start/end seconds (core.streaming.CaptionWord)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Cue:
    """A subtitle: a few consecutive words shown from `start` to `end` seconds."""

    start: float
    end: float
    words: tuple[TimedWord, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def _stretches(words: Sequence[TimedWord], max_gap: float) -> list[list[TimedWord]]:
    """Words in order of start, cut at every pause longer than `max_gap` seconds."""
    stretches: list[list[TimedWord]] = []
    for word in sorted(words, key=lambda w: w.start):
        if stretches and word.start - stretches[-1][-1].end <= max_gap:
            stretches[-1].append(word)
        else:
            stretches.append([word])
    return stretches


def _fit(words: list[TimedWord], max_words: float, max_seconds: float) -> list[list[TimedWord]]:
    """`words` (a stretch of speech) cut at its longest pauses until each part has at most
    `max_words` words lasting at most `max_seconds` (a single word may last longer). Of equal
    pauses, and where there is none (all under MIN_PAUSE), the cut nearest the middle is taken."""
    parts, todo = [], [words]
    while todo:
        part = todo.pop()
        if len(part) <= 1 or (len(part) <= max_words and part[-1].end - part[0].start <= max_seconds):
            parts.append(part)
            continue
        pauses = [round(b.start - a.end, 3) for a, b in itertools.pairwise(part)]
        cut = 1 + max(
            range(len(pauses)),
            key=lambda i: (pauses[i] if pauses[i] >= MIN_PAUSE else 0.0, -abs(i + 1 - len(part) / 2)),
        )
        todo += [part[cut:], part[:cut]]  # the first part is taken next: parts stay in order
    return parts


def _groups(
    words: Sequence[TimedWord], max_words: float, max_seconds: float, max_gap: float
) -> list[list[TimedWord]]:
    return [part for stretch in _stretches(words, max_gap) for part in _fit(stretch, max_words, max_seconds)]


def cues(
    words: Sequence[TimedWord],
    max_words: int = MAX_WORDS,
    max_seconds: float = MAX_SECONDS,
    max_gap: float = MAX_GAP,
    min_duration: float = MIN_DURATION,
) -> list[Cue]:
    """Words grouped into cues; each cue lasts at least `min_duration` unless the next one starts."""
    groups = _groups(words, max_words, max_seconds, max_gap)
    out = []
    for i, group in enumerate(groups):
        start, end = group[0].start, max(w.end for w in group)
        end = max(end, start + min_duration)
        if i + 1 < len(groups):
            end = min(end, max(groups[i + 1][0].start, group[-1].end))
        out.append(Cue(start, end, tuple(group)))
    return out


def _clock(seconds: float, separator: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(words: Sequence[TimedWord]) -> str:
    """SubRip text: numbered cues of a few words."""
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues(words), 1)
    ]
    return "\n".join(blocks)


def to_vtt(words: Sequence[TimedWord]) -> str:
    """WebVTT text; each word after a cue's first carries its start time (karaoke-style timing)."""
    blocks = ["WEBVTT\n"]
    for c in cues(words):
        text = c.words[0].text + "".join(f" <{_clock(w.start, '.')}>{w.text}" for w in c.words[1:])
        blocks.append(f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def to_txt(words: Sequence[TimedWord]) -> str:
    """Plain text: one line per cue, the lines the SRT and VTT files show (cut where the speaker
    paused, between sentences), without times."""
    return "".join(c.text + "\n" for c in cues(words))


def write_atomic(path: str | Path, text: str, overwrite: bool = False) -> Path:
    """Write `text` to `path` through a temporary file and a rename.

    Raises FileExistsError when `path` exists and `overwrite` is False, OSError when it cannot write.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


FORMATS = {"srt": to_srt, "vtt": to_vtt, "txt": to_txt}  # subtitle formats by file suffix


def write_subtitles(
    path: str | Path, words: Sequence[TimedWord], fmt: str | None = None, overwrite: bool = False
) -> Path:
    """Write `words` to `path` (atomically) as SRT, VTT or TXT, from `fmt` or else the suffix.

    Raises ValueError for another format, and what `write_atomic` raises.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot write {path}: unknown format {fmt!r} (srt, vtt or txt)")
    return write_atomic(path, FORMATS[fmt](words), overwrite)
