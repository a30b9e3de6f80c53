"""Data sets beyond GRID: a manifest (CSV or JSONL) and videos with subtitle files; `read_data` picks.

Every reader returns the usable `Clip`s and one problem line per clip it had to skip (missing
video, empty transcript, bad times), so a run reports bad data and goes on with the rest.

- GRID: `video/*.mp4|*.mpg` + `align/*.align`, or the original `sN/*.mpg` + `alignments/sN/*.align`
  (its root or one `sN/` folder; see `training.data.read_grid`); word timings come from the alignments.
- Manifest: a `.csv` (with a header) or `.jsonl` file, or a folder holding `manifest.csv|jsonl`,
  with fields `video`, `transcript` (or `text`) and optionally `speaker`, `start`, `end` (seconds)
  and `id`. Video paths are relative to the manifest's folder.
- Subtitles: a folder of videos, each with a `.srt` or `.vtt` file of the same stem beside it (or
  `<stem>.<lang>.srt`); every cue is one clip, cut from `start` to `end`. The speaker is the
  sub-folder under the data folder ("" for files directly in it). A WebVTT cue whose text carries
  inline word times (karaoke time stamps: YouTube's automatic captions as yt-dlp saves them,
  `bin<00:00:01.180><c> blue</c>`) gives its words those times, as GRID's alignments do.

Manifest transcripts and other subtitle cues have no word timings (their words carry NaN times), so
the sampler uses such clips whole.
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from core.transcripts import (
    is_video_file,
    manifest_entry,
    manifest_rows,
    speaker_alignments,
    transcript_text,
)
from training.data import Clip, DataError, Word, read_grid

log = logging.getLogger("lipreader")

MANIFEST_SUFFIXES = (".csv", ".jsonl")
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
SUBTITLE_SUFFIXES = (".srt", ".vtt")
KINDS = ("grid", "manifest", "subtitles")

ROLL_UP_SHARE = 0.5  # a file is roll-up captions when more of its cues repeat lines of the cue before
OVERLAP_SLACK = 0.04  # cues overlapping by less (a frame at 25 fps: rounding) are not warned of

_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")
_STAMP = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")  # a WebVTT time stamp in a cue's text: when
# the text after it is said (karaoke)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")  # a language tag: en, pt-BR, zh_Hans


@dataclass(frozen=True)
class Corpus:
    """What a reader found in a data folder."""

    kind: str  # "grid", "manifest" or "subtitles"
    clips: tuple[Clip, ...]  # usable clips, clip ids unique
    problems: tuple[str, ...]  # one line per skipped clip


@dataclass(frozen=True)
class Cue:
    """One subtitle cue."""

    start: float  # seconds into the video
    end: float  # seconds into the video, after start
    text: str  # its lines joined by spaces, markup kept (of roll-up captions, only the lines it adds)
    words: tuple[Word, ...] | None = None  # its words timed by the WebVTT time stamps in its text, in
    # seconds from `start` (as GRID's are from a clip's start), silences left out; None without them


def transcript_words(text: str) -> tuple[Word, ...]:
    """Words of a free transcript without timings: lower case, markup, annotations and punctuation
    dropped (apostrophes inside words kept): core.transcripts.transcript_text, which eval uses too."""
    return tuple(Word(w, math.nan, math.nan) for w in transcript_text(text).split())


def _safe_id(text: str) -> str:
    return _UNSAFE_ID.sub("_", text).strip("_") or "clip"


def _unique_ids(clips: list[Clip]) -> list[Clip]:
    """Clips with ids made unique by a numeric suffix where they collide."""
    seen: dict[str, int] = {}
    out = []
    for clip in clips:
        n = seen.get(clip.clip_id, 0)
        seen[clip.clip_id] = n + 1
        out.append(
            clip
            if n == 0
            else Clip(f"{clip.clip_id}-{n}", clip.video, clip.words, clip.speaker, clip.start, clip.end)
        )
    return out


def read_manifest(path: Path) -> tuple[list[Clip], list[str]]:
    """Clips listed in a CSV/JSONL manifest, and one problem line per row that was skipped. Rows are
    read as eval reads them (core.transcripts.manifest_rows and manifest_entry); a clip's video must
    exist as well."""
    path = Path(path)
    clips, problems = [], []
    for where, row in manifest_rows(path):
        try:
            entry = manifest_entry(row, path.parent)
            if not entry.video.is_file():
                raise DataError(f"video {entry.video} does not exist")
        except DataError as e:
            problems.append(f"{where}: {e}")
            continue
        words = transcript_words(entry.text)
        start, end, fields = entry.start, entry.end, entry.fields
        speaker = str(fields.get("speaker") or "")
        base = str(fields.get("id") or "") or "_".join(filter(None, [speaker, entry.video.stem]))
        if not fields.get("id") and (start > 0 or end is not None):
            base += f"_{round(start * 1000):07d}"
        clips.append(Clip(_safe_id(base), entry.video, words, speaker, start, end))
    return _unique_ids(clips), problems


def parse_time(text: str) -> float:
    """Seconds of an SRT/VTT time stamp: `HH:MM:SS,mmm`, `HH:MM:SS.mmm` or `MM:SS.mmm`."""
    match = _TIME.match(text.strip())
    if not match:
        raise DataError(f"bad time stamp {text.strip()!r}")
    hours, minutes, seconds, millis = match.groups()
    return (
        int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int((millis or "0").ljust(3, "0")) / 1000
    )


def _blocks(text: str) -> list[list[str]]:
    """The lines of each block of a subtitle file, blocks separated by blank lines. A blank line right
    under a cue's times, followed by text, starts that text (YouTube's captions have one); followed
    by the next cue (its times, or its number and times), it ends an empty cue."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[list[str]] = [[]]
    for at, line in enumerate(lines):
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1] and not ("-->" in blocks[-1][-1] and _text_at(lines, at + 1)):
            blocks.append([])
    return [block for block in blocks if block]


def _text_at(lines: list[str], at: int) -> bool:
    """Whether lines[at] is a cue's text: not blank, and neither the next cue's times nor its number
    or identifier (the line right above its times)."""

    def times(k: int) -> bool:
        return k < len(lines) and "-->" in lines[k]

    return at < len(lines) and bool(lines[at].strip()) and not times(at) and not times(at + 1)


def _held_over(lines: list[str], shown: list[str]) -> int:
    """How many of a cue's first `lines` repeat the last lines the cue before `shown` (their words)."""
    words = [transcript_text(line) for line in lines]
    return max(
        (n for n in range(1, min(len(lines), len(shown)) + 1) if all(words[:n]) and words[:n] == shown[-n:]),
        default=0,
    )


def _roll_up(cues: list[tuple[float, float, list[str]]]) -> list[tuple[float, float, list[str]]] | None:
    """The cues of a roll-up file (YouTube's automatic captions, TV's), each with only the lines it
    adds, and without those that add none (a line scrolling up); None for a file of ordinary cues.

    A roll-up cue shows the last lines of the cue before again above its own. A file is taken for
    roll-up when most cues do so (ROLL_UP_SHARE): in ordinary subtitles a line said again in the
    next cue is said again, and stays."""
    held = [0] + [
        _held_over(b[2], [w for w in map(transcript_text, a[2]) if w]) for a, b in itertools.pairwise(cues)
    ]
    if sum(n > 0 for n in held) < max(2, ROLL_UP_SHARE * (len(cues) - 1)):
        return None
    return [
        (start, end, lines[n:])
        for (start, end, lines), n in zip(cues, held, strict=True)
        if not n or n < len(lines)
    ]


def _timed_words(lines: list[str], start: float, end: float) -> tuple[Word, ...] | None:
    """The words of a WebVTT cue's `lines` (shown from `start` to `end`, seconds) timed by the time
    stamps in them, in seconds from `start`; None when they hold none.

    A time stamp is when the text after it is said, the text before the first from `start`; a word
    ends where the next text starts, the last at `end`. Raises DataError when the times cannot be
    used: not increasing within [start, end], several words after one, or one inside a word.
    """
    parts = _STAMP.split(" ".join(lines))
    if len(parts) == 1:
        return None
    bounds = [start, *(parse_time(stamp) for stamp in parts[1::2]), end]
    words = []
    for text, a, b in zip(parts[0::2], bounds[:-1], bounds[1:], strict=True):
        said = transcript_text(text).split()
        if b < a or (said and b == a):
            raise DataError(f"its word times are not increasing ({a:.3f} s, then {b:.3f} s)")
        if len(said) > 1:
            raise DataError(f"{len(said)} words ({' '.join(said)!r}) share one time")
        words += [Word(w, round(a - start, 3), round(b - start, 3)) for w in said]
    if [w.text for w in words] != transcript_text(" ".join(lines)).split():
        raise DataError("its time stamps do not fall between words")
    return tuple(words)


def read_cues(path: Path) -> tuple[list[Cue], list[str]]:
    """The cues of an SRT or WebVTT file, and one problem line per bad cue.

    Of roll-up captions, each cue's text is only the lines it adds (see _roll_up): the word times of
    the lines it shows again are the earlier cue's. Of a WebVTT file, cues with time stamps in their
    text carry their words' times (see _timed_words; where those cannot be used, the cue has none,
    said in one warning per file). Cues that overlap are warned of.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read subtitles {path}: {e}") from e
    webvtt = text.startswith("WEBVTT") or Path(path).suffix.lower() == ".vtt"
    cues, problems = [], []
    for lines in _blocks(text):
        for k, line in enumerate(lines):
            if "-->" not in line:
                continue  # cue numbers and identifiers, the WEBVTT header, NOTE and STYLE blocks
            begin, _, rest = line.partition("-->")
            try:
                start, end = parse_time(begin), parse_time(rest.split()[0] if rest.split() else "")
            except DataError as e:
                problems.append(f"{path}: cue {line!r}: {e}")
                break
            if end <= start:
                problems.append(f"{path}: cue {line!r} ends before it starts")
            else:
                cues.append((start, end, lines[k + 1 :]))
            break
    if (rolled := _roll_up(cues)) is not None:
        log.info("%s: roll-up captions (%d cues): read only the lines each cue adds", path, len(cues))
        cues = rolled
    overlaps = [a[1] - b[0] for a, b in itertools.pairwise(cues) if b[0] < a[1] - OVERLAP_SLACK]
    if overlaps:
        log.warning(
            "%s: %d of its cues start before the cue before ends (by up to %.2f s): their clips share "
            "those frames, and each holds lips of the other's words",
            path,
            len(overlaps),
            max(overlaps),
        )
    out, untimed = [], []
    for start, end, lines in cues:
        words = None
        if webvtt:
            try:
                words = _timed_words(lines, start, end)
            except DataError as e:
                untimed.append(f"the cue at {start:.3f} s: {e}")
        out.append(Cue(start, end, " ".join(lines), words))
    if untimed:
        log.warning(
            "%s: the word times of %d of its cues cannot be used (%s): their clips are used whole",
            path,
            len(untimed),
            untimed[0] if len(untimed) == 1 else f"first {untimed[0]}",
        )
    return out, problems


def _subtitle_file(video: Path) -> Path | None:
    """The subtitle file of `video`: `<stem>.srt|.vtt`, else `<stem>.<language>.srt|.vtt` (English
    first, else the first by name, said in a warning when there are several)."""
    for suffix in SUBTITLE_SUFFIXES:
        if video.with_suffix(suffix).is_file():
            return video.with_suffix(suffix)
    tagged = sorted(
        p
        for suffix in SUBTITLE_SUFFIXES
        for p in video.parent.glob(f"{glob.escape(video.stem)}.*{suffix}")
        if _LANGUAGE.fullmatch(p.name[len(video.stem) + 1 : -len(suffix)])  # not another video's
    )
    if not tagged:
        return None
    chosen = next((p for p in tagged if p.name.lower().startswith(f"{video.stem.lower()}.en")), tagged[0])
    if len(tagged) > 1:
        log.warning(
            "%s: %d subtitle files (%s): read %s",
            video,
            len(tagged),
            ", ".join(p.name for p in tagged),
            chosen.name,
        )
    return chosen


def read_subtitled(root: Path) -> tuple[list[Clip], list[str]]:
    """One clip per subtitle cue of every video under `root`, and one problem line per skip."""
    root = Path(root)
    clips, problems = [], []
    videos = sorted(p for p in root.rglob("*") if p.is_file() and is_video_file(p))
    for video in videos:
        subtitles = _subtitle_file(video)
        if subtitles is None:
            problems.append(f"{video}: no subtitle file")
            continue
        parts = video.relative_to(root).parts
        speaker = parts[0] if len(parts) > 1 else ""
        try:
            cues, bad = read_cues(subtitles)
        except DataError as e:
            problems.append(str(e))
            continue
        problems += bad
        for number, cue in enumerate(cues, 1):
            words = cue.words or transcript_words(cue.text)  # the same words, timed or not
            if not words:
                problems.append(f"{subtitles}: cue {number} has an empty transcript")
                continue
            clip_id = _safe_id("_".join(filter(None, [speaker, video.stem, f"{number:04d}"])))
            clips.append(Clip(clip_id, video, words, speaker, cue.start, cue.end))
    return _unique_ids(clips), problems


def detect_kind(path: Path) -> str:
    """Which reader suits `path`: "grid", "manifest" or "subtitles". Raises DataError otherwise."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest"
    if not path.exists():
        raise DataError(f"cannot read data {path}: no such file or folder")
    if not path.is_dir():
        raise DataError(f"data {path} is neither a folder nor a .csv/.jsonl manifest")
    if any((path / name).is_file() for name in MANIFEST_NAMES):
        return "manifest"
    if ((path / "video").is_dir() and (path / "align").is_dir()) or (path / "alignments").is_dir():
        return "grid"
    if speaker_alignments(path) is not None:  # one sN/ folder of the original layout
        return "grid"
    if any((p / "video").is_dir() and (p / "align").is_dir() for p in path.iterdir() if p.is_dir()):
        return "grid"  # a folder per speaker, each with video/ and align/
    if any(p.suffix.lower() in SUBTITLE_SUFFIXES for p in path.rglob("*")):
        return "subtitles"
    raise DataError(
        f"no GRID layout (video/ and align/, a folder per speaker holding them, or the original sN/ "
        "folders and alignments/sN/), "
        f"manifest or subtitled videos found in {path}"
    )


def read_data(path: str | Path, kind: str = "auto") -> Corpus:
    """The clips of a data set (see the module docstring); kind "auto" detects the layout."""
    path = Path(path)
    kind = detect_kind(path) if kind == "auto" else kind
    if kind == "grid":
        clips, problems = read_grid(path)
    elif kind == "manifest":
        manifest = path
        if path.is_dir():
            manifest = next(path / n for n in MANIFEST_NAMES if (path / n).is_file())
        clips, problems = read_manifest(manifest)
    elif kind == "subtitles":
        clips, problems = read_subtitled(path)
    else:
        raise ValueError(f"unknown data kind {kind!r}: choose auto or one of {', '.join(KINDS)}")
    writable = [c for c in clips if not c.unwritable]
    problems += [_unwritable(c) for c in clips if c.unwritable]
    return Corpus(kind, tuple(writable), tuple(problems))


def _unwritable(clip: Clip) -> str:
    """Why a clip whose transcript the model cannot write is skipped: training on it without those
    characters would teach it another text ("café" as "caf", "2" as nothing)."""
    digits = " (write numbers as words)" if any(c.isdigit() for c in clip.unwritable) else ""
    return (
        f"{clip.video} ({clip.clip_id}): {clip.text!r} has characters the model cannot write: "
        f"{' '.join(clip.unwritable)}{digits}"
    )
