"""What a video file's container says of itself, read from its bytes (OpenCV does not tell): the
tracks and the played length of an MP4/MOV file, where the video starts in an MP4/MOV,
Matroska/WebM, MPEG-TS or MPEG program stream (.mpg, .vob) file, and whether a Matroska/WebM file
was cut short.

`core/video.py` uses them to explain a file FFmpeg cannot open, to time frames in the file's own
seconds, and to tell a file cut short from one whose frames simply end before its other streams do.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.program_stream import mpegps_video_delay, ps_start
from core.transport_stream import TS_HEAD, mpegts_second_keyframe, mpegts_video_delay, ts_start

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
# Matroska element IDs (RFC 9559), as they are stored
MATROSKA_INFO = b"\x15\x49\xa9\x66"  # Segment > Info
MATROSKA_TIMESTAMP_SCALE = b"\x2a\xd7\xb1"  # Info > TimestampScale: nanoseconds a tick lasts
MATROSKA_TRACKS = b"\x16\x54\xae\x6b"  # Segment > Tracks
MATROSKA_TRACK_ENTRY = b"\xae"  # Tracks > TrackEntry
MATROSKA_TRACK_NUMBER = b"\xd7"  # TrackEntry > TrackNumber: what its blocks call it
MATROSKA_TRACK_TYPE = b"\x83"  # TrackEntry > TrackType
MATROSKA_CODEC_DELAY = b"\x56\xaa"  # TrackEntry > CodecDelay: nanoseconds its timestamps run ahead
MATROSKA_CLUSTER = b"\x1f\x43\xb6\x75"  # Segment > Cluster
MATROSKA_CLUSTER_TIMESTAMP = b"\xe7"  # Cluster > Timestamp, in ticks
MATROSKA_SIMPLE_BLOCK = b"\xa3"  # Cluster > SimpleBlock
MATROSKA_BLOCK_GROUP = b"\xa0"  # Cluster > BlockGroup
MATROSKA_BLOCK = b"\xa1"  # BlockGroup > Block
MATROSKA_VIDEO, MATROSKA_AUDIO = 1, 2  # TrackType values: the tracks a player lines up
MATROSKA_DEFAULT_SCALE = 1_000_000  # TimestampScale when Info does not say: ticks of 1 ms
MAX_EBML_ID = 4  # bytes of an element ID at most (more: not an element)
MAX_EBML_NUMBER = 8  # bytes of an EBML variable-length number (a size, a track number) at most
MAX_EBML_UINT = 8  # bytes of an unsigned integer element at most
# the tracks' first blocks are looked for in the clusters that start within this many bytes of the
# first one (muxers interleave the tracks by time: a track not found there starts after the video),
# among at most MAX_MATROSKA_ELEMENTS elements of the Segment (a few ms' walk)
MATROSKA_BLOCK_WINDOW = 16 << 20
MAX_MATROSKA_ELEMENTS = 20_000
NS_PER_SECOND = 1e9
Span = tuple[int, int]  # (payload start, end) of a box or an EBML element, file offsets


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


@dataclass(frozen=True)
class ContainerTimes:
    """What a video file's container says of its times, which OpenCV does not tell."""

    # seconds the file plays by its movie header, edits applied (an MP4/MOV file trimmed without
    # re-encoding holds frames before its start that it does not play); None when it does not say
    played: float | None = None
    # seconds into the file, as players play it, where its video starts: after the start of its
    # other tracks (its sound). OpenCV times the frames from the video's own first frame
    video_delay: float = 0.0
    # whether OpenCV's frame count is the file's length from its start (Matroska, MPEG-TS, MPEG
    # program streams: they declare no count), `video_delay` and sound running on past the frames
    # included, rather than the video's own count (MP4)
    counts_file_length: bool = False
    # whether a Matroska/WebM file was cut short: its Segment declares more bytes than the file holds.
    # None when it is no such file, or its Segment's size is left open (a live recording)
    cut: bool | None = None


def container_times(path: Path) -> ContainerTimes:
    """The played length (MP4/MOV), the video's delay (MP4/MOV, Matroska/WebM, MPEG-TS, MPEG program
    stream) and whether it was cut short (Matroska/WebM) of a video file, from one walk of its
    headers; nothing said (None, 0) of another file or of one whose headers cannot be read."""
    with open(path, "rb") as f:
        head = f.read(TS_HEAD)
        if head.startswith(MATROSKA_MAGIC):
            return _matroska_times(f)
        packets = ts_start(head)
        if packets is not None:
            return ContainerTimes(video_delay=mpegts_video_delay(f, *packets), counts_file_length=True)
        pack = ps_start(head)
        if pack is not None:
            return ContainerTimes(video_delay=mpegps_video_delay(f, pack), counts_file_length=True)
        return _mp4_times(f)


def second_keyframe(path: Path, until: float) -> float | None:
    """Seconds from a video file's first frame to its second keyframe, before which FFmpeg (so
    OpenCV) cannot seek: it finds no frame there, or a later one. math.inf when there is none by
    `until` seconds; None when it is not told (an MPEG-TS file tells, by its packets' marks)."""
    with open(path, "rb") as f:
        packets = ts_start(f.read(TS_HEAD))
        return None if packets is None else mpegts_second_keyframe(f, *packets, until)


def _mp4_times(f: BinaryIO) -> ContainerTimes:
    """An MP4/MOV file's played length by its movie header (a fragmented MP4 declares 0: None), and
    its video's delay after its sound: the empty edits the tracks' edit lists start with."""
    moov = _movie(f)
    times = _movie_times(f, moov) if moov is not None else None
    if times is None or times[0] <= 0:
        return ContainerTimes()
    scale, length = times
    # the first track of each kind
    waits = {handler: wait for handler, wait in reversed(_tracks(f, moov)) if handler in TIMED_TRACKS}
    delay = (waits[b"vide"] - min(waits.values())) / scale if b"vide" in waits else 0.0
    known = length > 0 and length not in ISO_UNKNOWN_DURATION
    return ContainerTimes(length / scale if known else None, delay)


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


def _ebml_element(f: BinaryIO, at: int) -> tuple[bytes, int, int | None] | None:
    """(ID, payload start, payload end: None when its size is unknown) of the EBML element at file
    offset `at`; None when there is none."""
    f.seek(at)
    head = f.read(MAX_EBML_ID + MAX_EBML_NUMBER)
    ident = _ebml_number(head, 0)
    if ident is None or ident[1] > MAX_EBML_ID:
        return None
    size = _ebml_number(head, ident[1])
    if size is None:
        return None
    start = at + ident[1] + size[1]
    return head[: ident[1]], start, None if size[2] else start + size[0]


def _ebml_children(f: BinaryIO, span: Span) -> Iterator[tuple[bytes, Span]]:
    """(ID, payload span) of the EBML elements laid end to end in the file's bytes [start, end), up
    to one of unknown size or whose header runs past the end: only their headers are read."""
    at, end = span
    while at < end:
        element = _ebml_element(f, at)
        if element is None or element[2] is None or element[1] > end:
            return
        ident, start, stop = element
        yield ident, (start, min(stop, end))
        at = stop


def _ebml_uint(f: BinaryIO, span: Span) -> int | None:
    """The unsigned integer element whose payload is `span`; None when it is too long to be one."""
    if span[1] - span[0] > MAX_EBML_UINT:
        return None
    return int.from_bytes(_payload(f, span), "big")


def _matroska_segment(f: BinaryIO) -> tuple[int, int | None] | None:
    """(payload start, payload end: None when its size is left open) of the Segment of a
    Matroska/WebM file: the element after its EBML header; None when it is no such file."""
    header = _ebml_element(f, 0)
    if header is None or header[0] != MATROSKA_MAGIC or header[2] is None:
        return None
    if header[2] >= os.fstat(f.fileno()).st_size:
        return None
    segment = _ebml_element(f, header[2])
    if segment is None or segment[0] != MATROSKA_SEGMENT:
        return None
    return segment[1], segment[2]


def _matroska_tracks(f: BinaryIO, tracks: Span) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """The (number, type) of the video and audio tracks in a Tracks element, in their order, and
    their codec delays in nanoseconds by number."""
    found, delays = [], {}
    for kind, entry in _ebml_children(f, tracks):
        if kind != MATROSKA_TRACK_ENTRY:
            continue
        fields = {ident: _ebml_uint(f, span) for ident, span in _ebml_children(f, entry)}
        number, track_type = fields.get(MATROSKA_TRACK_NUMBER), fields.get(MATROSKA_TRACK_TYPE)
        if number and track_type in (MATROSKA_VIDEO, MATROSKA_AUDIO):
            found.append((number, track_type))
            delays[number] = fields.get(MATROSKA_CODEC_DELAY) or 0
    return found, delays


def _block_start(f: BinaryIO, block: Span) -> tuple[int, int] | None:
    """(track number, timestamp relative to its cluster's, in ticks) of a SimpleBlock or Block."""
    head = _payload(f, block, MAX_EBML_NUMBER + 2)  # the track number, a 16-bit signed time
    track = _ebml_number(head, 0)
    if track is None or len(head) < track[1] + 2:
        return None
    return track[0], struct.unpack(">h", head[track[1] : track[1] + 2])[0]


def _matroska_times(f: BinaryIO) -> ContainerTimes:
    """A Matroska/WebM file's video delay and whether it was cut short (see ContainerTimes)."""
    segment = _matroska_segment(f)
    if segment is None:
        return ContainerTimes(counts_file_length=True)
    total = os.fstat(f.fileno()).st_size
    return ContainerTimes(
        video_delay=_matroska_video_delay(f, segment, total),
        counts_file_length=True,
        cut=None if segment[1] is None else segment[1] > total,
    )


def _matroska_video_delay(f: BinaryIO, segment: tuple[int, int | None], total: int) -> float:
    """Seconds a Matroska/WebM file's first video track starts after the earliest of its video and
    audio tracks (FFmpeg's start times: the first block's time, less the track's codec delay, as
    players rebase them to the file's start); 0 when it does not start later or it is not told.

    The Segment is walked element by element into its clusters and block groups, so that one of
    unknown size (a live recording's, a browser's MediaRecorder's) ends where the next element
    starts, until each track's first block is found. `segment`: its Segment's payload (start, end:
    None when left open); `total`: the file's size."""
    at, end = segment[0], total if segment[1] is None else min(segment[1], total)
    scale, tracks, delays = MATROSKA_DEFAULT_SCALE, [], {}
    starts: dict[int, int] = {}  # ticks from the file's timeline's 0 by track number
    cluster_time: int | None = None  # the current cluster's timestamp, in ticks
    window_end = end
    for _ in range(MAX_MATROSKA_ELEMENTS):
        element = _ebml_element(f, at) if at < window_end else None
        if element is None:
            break
        ident, start, stop = element
        if ident in (MATROSKA_CLUSTER, MATROSKA_BLOCK_GROUP):  # walked into, not over
            if ident == MATROSKA_CLUSTER:
                if not tracks:  # tracks are declared before the clusters
                    break
                cluster_time, window_end = None, min(window_end, at + MATROSKA_BLOCK_WINDOW)
            at = start
            continue
        if stop is None or start > end:  # only a Segment and a Cluster may be left open
            break
        stop = min(stop, end)
        if ident == MATROSKA_INFO:
            for kind, span in _ebml_children(f, (start, stop)):
                if kind == MATROSKA_TIMESTAMP_SCALE:
                    scale = _ebml_uint(f, span) or MATROSKA_DEFAULT_SCALE
        elif ident == MATROSKA_TRACKS:
            tracks, delays = _matroska_tracks(f, (start, stop))
        elif ident == MATROSKA_CLUSTER_TIMESTAMP:
            cluster_time = _ebml_uint(f, (start, stop))
        elif ident in (MATROSKA_SIMPLE_BLOCK, MATROSKA_BLOCK) and cluster_time is not None:
            block = _block_start(f, (start, stop))
            if block is not None and block[0] in delays and block[0] not in starts:
                # the codec delay in ticks, rounded as FFmpeg does (to the nearest, halves up)
                starts[block[0]] = cluster_time + block[1] - (delays[block[0]] + scale // 2) // scale
                if len(starts) == len(tracks):
                    break
        at = stop
    video = next((number for number, kind in tracks if kind == MATROSKA_VIDEO), None)
    if video not in starts:
        return 0.0
    return (starts[video] - min(starts.values())) * scale / NS_PER_SECOND
