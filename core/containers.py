"""What a video file's container says of itself, read from its bytes (OpenCV does not tell): the
tracks, the played length and the video's start of an MP4/MOV file, and whether a Matroska/WebM
file was cut short.

`core/video.py` uses them to explain a file FFmpeg cannot open and to tell a file cut short from
one whose frames simply end before its other streams do.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# the boxes an MP4/MOV file may start with
ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
# mvhd, from its version byte on: (offset, struct format) of its time scale and duration, by
# version (1: 64-bit times)
MVHD_TIMES = {0: (12, ">II"), 1: (20, ">IQ")}
ISO_UNKNOWN_DURATION = (1 << 32) - 1, (1 << 64) - 1  # durations that say "not known"
# elst, by version (1: 64-bit times): the struct format of an edit (its length in the movie's time
# scale, where in the track's media it starts: -1 for an empty edit, which delays the track, rate)
ELST_EDIT = {0: ">Iihh", 1: ">Qqhh"}
MAX_EDITS = 64  # edits of a track looked at
TIMED_TRACKS = (b"vide", b"soun")  # the tracks a player lines up: a video's start is against its sound's
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header a Matroska/WebM file starts with
MATROSKA_SEGMENT = b"\x18\x53\x80\x67"  # the Segment element that holds everything else
MAX_EBML_HEADER = 1024  # bytes looked through for the EBML header and the Segment's size

Span = tuple[int, int]  # (payload start, end) of a box, file offsets


def _box_header(data: bytes, rest: int) -> tuple[bytes, int, int] | None:
    """(type, size, header length) of the ISO-BMFF box that `data` (up to its first 16 bytes)
    starts, `rest` bytes before the end of its parent; None when there is none."""
    if len(data) < 8:
        return None
    size, kind = struct.unpack(">I4s", data[:8])
    head = 8
    if size == 1 and len(data) >= 16:
        size, head = struct.unpack(">Q", data[8:16])[0], 16
    elif size == 0:
        size = rest
    return (kind, size, head) if size >= head else None


def _boxes(f: BinaryIO, span: Span) -> Iterator[tuple[bytes, Span]]:
    """(type, payload span) of the boxes laid end to end in the file's bytes [start, end): only their
    headers are read."""
    at, end = span
    while at < end:
        f.seek(at)
        box = _box_header(f.read(min(16, end - at)), end - at)
        if box is None:
            return
        kind, size, head = box
        yield kind, (at + head, min(at + size, end))
        at += size


def _child(f: BinaryIO, span: Span, *path: bytes) -> Span | None:
    """The payload span of the first box down `path` (types) inside `span`; None when there is none."""
    for kind, inner in _boxes(f, span):
        if kind == path[0]:
            return inner if len(path) == 1 else _child(f, inner, *path[1:])
    return None


def _payload(f: BinaryIO, span: Span, limit: int = 4096) -> bytes:
    f.seek(span[0])
    return f.read(min(span[1] - span[0], limit))


def _movie(f: BinaryIO) -> Span | None:
    """The payload span of an MP4/MOV file's movie header box (moov); None when it is not such a
    file or its movie header is missing (cut short)."""
    for i, (kind, span) in enumerate(_boxes(f, (0, os.fstat(f.fileno()).st_size))):
        if i == 0 and kind not in ISO_FIRST_BOXES:
            return None
        if kind == b"moov":
            return span
    return None


def _movie_times(f: BinaryIO, moov: Span) -> tuple[int, int] | None:
    """(time scale, duration) of a movie header (mvhd); None when it has none readable."""
    mvhd = _child(f, moov, b"mvhd")
    data = _payload(f, mvhd) if mvhd is not None else b""
    if not data or data[0] not in MVHD_TIMES:
        return None
    offset, layout = MVHD_TIMES[data[0]]
    times = data[offset : offset + struct.calcsize(layout)]
    return struct.unpack(layout, times) if len(times) == struct.calcsize(layout) else None


def _tracks(f: BinaryIO, moov: Span) -> list[tuple[bytes, int]]:
    """(handler type: b"vide", b"soun", ...; its start's delay in the movie's time scale) of each track."""
    found = []
    for kind, trak in _boxes(f, moov):
        if kind != b"trak":
            continue
        hdlr = _child(f, trak, b"mdia", b"hdlr")
        handler = _payload(f, hdlr)[8:12] if hdlr is not None else b""  # after version, flags, pre_defined
        elst = _child(f, trak, b"edts", b"elst")
        found.append((handler, _empty_edits(_payload(f, elst)) if elst is not None else 0))
    return found


def _empty_edits(elst: bytes) -> int:
    """The length of the empty edits an edit list (elst payload) starts with: how long its track
    waits before it starts, in the movie's time scale."""
    if len(elst) < 8 or elst[0] not in ELST_EDIT:
        return 0
    layout = ELST_EDIT[elst[0]]
    size, count = struct.calcsize(layout), struct.unpack(">I", elst[4:8])[0]
    waits = 0
    for i in range(min(count, MAX_EDITS, (len(elst) - 8) // size)):
        length, media_time, _, _ = struct.unpack(layout, elst[8 + i * size : 8 + (i + 1) * size])
        if media_time != -1:
            break
        waits += length
    return waits


def mp4_tracks(path: Path) -> list[bytes] | None:
    """The handler types of an MP4/MOV file's tracks (b"vide", b"soun", ...); None when it is not
    such a file or its movie header is missing (cut short)."""
    with open(path, "rb") as f:
        moov = _movie(f)
        return None if moov is None else [handler for handler, _ in _tracks(f, moov)]


def mp4_played_seconds(path: Path) -> float | None:
    """How long an MP4/MOV file plays by its movie header (mvhd), edits applied: a file trimmed
    without re-encoding holds frames before its start that it does not play. None when it is not
    such a file or does not say (a fragmented MP4 declares 0)."""
    with open(path, "rb") as f:
        moov = _movie(f)
        times = _movie_times(f, moov) if moov is not None else None
    if times is None:
        return None
    scale, length = times
    known = scale > 0 and length > 0 and length not in ISO_UNKNOWN_DURATION
    return length / scale if known else None


def mp4_video_delay(path: Path) -> float:
    """Seconds an MP4/MOV file's video starts after its sound, as players play it (the empty edits
    its edit lists start with); OpenCV times the frames from the video's own start. 0 when it is no
    such file or does not say."""
    with open(path, "rb") as f:
        moov = _movie(f)
        times = _movie_times(f, moov) if moov is not None else None
        tracks = _tracks(f, moov) if times is not None and times[0] > 0 else []
    # the first track of each kind
    waits = {handler: wait for handler, wait in reversed(tracks) if handler in TIMED_TRACKS}
    if b"vide" not in waits:
        return 0.0
    return (waits[b"vide"] - min(waits.values())) / times[0]


def _ebml_number(data: bytes, at: int) -> tuple[int, int, bool] | None:
    """(value, length in bytes, all value bits set: "unknown") of the EBML variable-length number
    at data[at]; None when there is none."""
    if at >= len(data) or data[at] == 0:
        return None
    length = 8 - data[at].bit_length() + 1
    if at + length > len(data):
        return None
    value = data[at] & (0xFF >> length)
    for byte in data[at + 1 : at + length]:
        value = value << 8 | byte
    return value, length, value == (1 << (7 * length)) - 1


def matroska_cut(path: Path) -> bool | None:
    """Whether a Matroska/WebM file was cut short: its Segment declares more bytes than the file
    holds. None when it is no such file, or its Segment's size is left open (a live recording)."""
    with open(path, "rb") as f:
        head = f.read(MAX_EBML_HEADER)
        total = os.fstat(f.fileno()).st_size
    if not head.startswith(MATROSKA_MAGIC):
        return None
    header = _ebml_number(head, len(MATROSKA_MAGIC))
    if header is None:
        return None
    at = len(MATROSKA_MAGIC) + header[1] + header[0]  # past the EBML header
    if head[at : at + len(MATROSKA_SEGMENT)] != MATROSKA_SEGMENT:
        return None
    size = _ebml_number(head, at + len(MATROSKA_SEGMENT))
    if size is None or size[2]:
        return None
    return at + len(MATROSKA_SEGMENT) + size[1] + size[0] > total
