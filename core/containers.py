"""What a video file's container says of itself, read from its bytes (OpenCV does not tell): the
tracks and the played length of an MP4/MOV file, and whether a Matroska/WebM file was cut short.

`core/video.py` uses them to explain a file FFmpeg cannot open and to tell a file cut short from
one whose frames simply end before its other streams do.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

# the boxes an MP4/MOV file may start with, and those walked down to each track's handler
ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
ISO_TRACK_PATH = (b"moov", b"trak", b"mdia", b"hdlr")
MAX_MOOV_BYTES = 64 << 20  # a larger movie header is not examined
MVHD_BYTES = 4096  # the movie header's start, where its mvhd (the first box in it) lies
# mvhd, from its version byte on: (offset, struct format) of its time scale and duration, by
# version (1: 64-bit times)
MVHD_TIMES = {0: (12, ">II"), 1: (20, ">IQ")}
ISO_UNKNOWN_DURATION = (1 << 32) - 1, (1 << 64) - 1  # durations that say "not known"
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header a Matroska/WebM file starts with
MATROSKA_SEGMENT = b"\x18\x53\x80\x67"  # the Segment element that holds everything else
MAX_EBML_HEADER = 1024  # bytes looked through for the EBML header and the Segment's size


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


def _iso_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes laid end to end in data[start:end]."""
    at = start
    while (box := _box_header(data[at : min(at + 16, end)], end - at)) is not None:
        kind, size, head = box
        yield kind, at + head, min(at + size, end)
        at += size


def _moov(path: Path, limit: int = MAX_MOOV_BYTES) -> bytes | None:
    """An MP4/MOV file's movie header box (moov, from its own header on; its first `limit` bytes);
    None when it is not such a file or its movie header is missing (cut short)."""
    with open(path, "rb") as f:
        total, at = os.fstat(f.fileno()).st_size, 0
        while (box := _box_header(f.read(16), total - at)) is not None:
            kind, size, _ = box
            if at == 0 and kind not in ISO_FIRST_BOXES:
                return None
            if kind == b"moov":
                f.seek(at)
                return f.read(min(size, limit))
            at += size
            f.seek(at)
    return None


def mp4_tracks(path: Path) -> list[bytes] | None:
    """The handler types of an MP4/MOV file's tracks (b"vide", b"soun", ...); None when it is not
    such a file or its movie header is missing (cut short)."""
    moov = _moov(path)
    if moov is None:
        return None
    found: list[bytes] = []

    def walk(start: int, end: int, depth: int) -> None:
        for kind, payload, stop in _iso_boxes(moov, start, end):
            if kind != ISO_TRACK_PATH[depth]:
                continue
            if depth + 1 == len(ISO_TRACK_PATH):
                found.append(moov[payload + 8 : payload + 12])  # after version, flags, pre_defined
            else:
                walk(payload, stop, depth + 1)

    walk(0, len(moov), 0)
    return found


def mp4_played_seconds(path: Path) -> float | None:
    """How long an MP4/MOV file plays by its movie header (mvhd), edits applied: a file trimmed
    without re-encoding holds frames before its start that it does not play. None when it is not
    such a file or does not say (a fragmented MP4 declares 0)."""
    moov = _moov(path, MVHD_BYTES)
    if moov is None:
        return None
    for kind, payload, stop in _iso_boxes(moov, 0, len(moov)):
        for inner, start, end in _iso_boxes(moov, payload, stop) if kind == b"moov" else ():
            if inner != b"mvhd" or moov[start] not in MVHD_TIMES:
                continue
            offset, layout = MVHD_TIMES[moov[start]]
            times = moov[start + offset : start + offset + struct.calcsize(layout)]
            if len(times) < struct.calcsize(layout) or start + offset + len(times) > end:
                return None
            scale, length = struct.unpack(layout, times)
            known = scale > 0 and length > 0 and length not in ISO_UNKNOWN_DURATION
            return length / scale if known else None
    return None


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
