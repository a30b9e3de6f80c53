"""What an MPEG program stream (.mpg, .mpeg, .vob: an MPEG-1 system stream, an MPEG-2 program stream,
a DVD's video) says of itself, from its bytes: where its packs start, and how long its video starts
after its sound (OpenCV times the frames from the video's own first frame). core/containers.py asks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from core.transport_stream import PTS_CLOCK, pes_timestamp, unwrapped

START_CODE = b"\0\0\1"  # what a pack header, a system header and a PES packet start with
PACK_START = START_CODE + b"\xba"
PS_END, PACK, PS_LAST_SYSTEM_CODE = 0xB9, 0xBA, 0xBB  # program end, pack header; system header
MPEG2_PACK, MPEG1_PACK = 14, 12  # bytes of a pack header (MPEG-2's before its stuffing bytes)
PRIVATE_STREAM_1 = 0xBD  # a DVD's sound (AC-3, DTS, LPCM) and subpictures, told apart by a substream id
VIDEO_STREAMS = range(0xE0, 0xF0)  # PES stream IDs: MPEG video (MPEG-1/2, MPEG-4 part 2, H.264)
AUDIO_STREAMS = range(0xC0, 0xE0)  # MPEG audio
# private stream 1's substreams that FFmpeg reads as sound: AC-3, DTS, LPCM, TrueHD, E-AC-3 (0x90-0x97,
# reserved for SDDS, it skips; subpictures are 0x20-0x3F)
PRIVATE_SUBSTREAMS = PRIVATE_STREAM_1 << 8  # a substream's ID plus this: told from the stream IDs
PRIVATE_AUDIO = frozenset(PRIVATE_SUBSTREAMS | n for n in range(0x80, 0xD0) if not 0x90 <= n < 0x98)
# a program stream's streams' first times are looked for in its first PS_READ bytes, read PS_CHUNK at
# a time, among the first PS_PES_PACKETS PES packets with a time of each stream (with B-frames, the
# first frame in the file is not the first shown)
PS_READ, PS_CHUNK, PS_PES_PACKETS = 8 << 20, 256 << 10, 16
PES_PEEK = 3 + 255 + 1  # bytes of a PES packet read: the longest MPEG-2 header, a substream ID
MPEG1_STUFFING = 16  # 0xFF bytes an MPEG-1 PES header may start with at most


def _pack_length(data: bytes | bytearray, at: int) -> int | None:
    """The length of the pack header at data[at] (an MPEG-2 or an MPEG-1 one, by its marker bits);
    None when there is none there or its bytes run past `data`."""
    if data[at : at + 4] != PACK_START or at + MPEG2_PACK > len(data):
        return None
    if data[at + 4] & 0xC0 == 0x40:
        return MPEG2_PACK + (data[at + 13] & 0x07)  # and its stuffing bytes
    return MPEG1_PACK if data[at + 4] & 0xF0 == 0x20 else None


def ps_start(head: bytes) -> int | None:
    """The offset of the first pack of an MPEG program stream whose first bytes are `head`: the first
    pack header followed by a start code; None when it is no such file. (A file cut from a recording
    may start within a pack.)"""
    at = head.find(PACK_START)
    while at != -1:
        length = _pack_length(head, at)
        after = head[at + length : at + length + 4] if length is not None else b""
        if len(after) == 4 and after[:3] == START_CODE and after[3] >= PS_END:
            return at
        at = head.find(PACK_START, at + 1)
    return None


def _pes_packets(f: BinaryIO, at: int) -> Iterator[tuple[int, bytes]]:
    """(stream ID, first PES_PEEK bytes after its length) of the PES packets of an MPEG program stream,
    the first pack at offset `at`, within its first PS_READ bytes. Pack and system headers are stepped
    over; after bytes that start no packet (lost or garbled), from the next pack header."""
    f.seek(at)
    data, i = bytearray(), 0

    def have(n: int) -> bool:  # whether data holds n bytes from i on, read on as needed
        while len(data) < i + n:
            room = PS_READ - at - len(data)
            more = f.read(min(PS_CHUNK, room)) if room > 0 else b""
            if not more:
                return False
            data.extend(more)
        return True

    while have(6):
        code, length = data[i + 3], int.from_bytes(data[i + 4 : i + 6], "big")
        if data[i : i + 3] != START_CODE or code < PS_END:
            step = None
        elif code == PACK:
            step = _pack_length(data, i) if have(MPEG2_PACK) else None
        else:  # the program's end, a system header, a PES packet
            step = 4 if code == PS_END else 6 + length
        if step is None:  # no packet starts here: on from the next pack header
            looked = i + 1
            found = data.find(PACK_START, looked)
            while found == -1:  # in the bytes still to be read
                looked = max(looked, len(data) - len(PACK_START) + 1)
                if not have(len(data) - i + 1):
                    return
                found = data.find(PACK_START, looked)
            i = found
            continue
        if code > PS_LAST_SYSTEM_CODE:
            have(6 + min(length, PES_PEEK))
            yield code, bytes(data[i + 6 : i + 6 + min(length, PES_PEEK)])
        i += step


def _pes_time(stream: int, body: bytes) -> tuple[int, int] | None:
    """(the stream it is of: its ID, or for private stream 1 PRIVATE_SUBSTREAMS plus its substream ID;
    its time, PTS in 90 kHz ticks) of a PES packet of `stream` whose bytes after its length are
    `body`; None when it has no time. Its header is an MPEG-2 one or an MPEG-1 one."""
    if body[:1] and body[0] & 0xC0 == 0x80:  # MPEG-2: flags, header length
        if len(body) < 3 or not body[1] & 0x80 or body[2] < 5:  # PTS_DTS_flags: no PTS; no room for one
            return None
        pts, payload = pes_timestamp(body[3:8]), 3 + body[2]
    else:  # MPEG-1: stuffing, a buffer size, a PTS (0x2-), a PTS and a DTS (0x3-) or none (0x0F)
        at = next((n for n in range(MPEG1_STUFFING + 1) if body[n : n + 1] != b"\xff"), len(body))
        at += 2 if body[at : at + 1] and body[at] & 0xC0 == 0x40 else 0
        flags = body[at] & 0xF0 if at < len(body) else 0
        if flags not in (0x20, 0x30):
            return None
        pts, payload = pes_timestamp(body[at : at + 5]), at + (5 if flags == 0x20 else 10)
    if pts is None:
        return None
    if stream == PRIVATE_STREAM_1:
        return (PRIVATE_SUBSTREAMS | body[payload], pts) if payload < len(body) else None
    return stream, pts


def mpegps_video_delay(f: BinaryIO, at: int) -> float:
    """Seconds an MPEG program stream's first video stream starts after the earliest of its video and
    audio streams (FFmpeg's start times: a stream's earliest PES time, as players rebase them to the
    file's start); 0 when it does not start later or it is not told.

    Streams are told by their PES stream IDs: video, MPEG audio, and in private stream 1 (a DVD's)
    the substreams that are sound, not its subpictures. Each is timed by the earliest of its first
    PS_PES_PACKETS PES times, unwrapped around the first time read. `at`: the first pack's offset."""
    times: dict[int, list[int]] = {}  # the video and audio streams' PES times, unwrapped, in their order
    first: int | None = None  # the first PES time read: the others are unwrapped around it
    for code, body in _pes_packets(f, at):
        if code not in VIDEO_STREAMS and code not in AUDIO_STREAMS and code != PRIVATE_STREAM_1:
            continue
        timed = _pes_time(code, body)
        if timed is None or code == PRIVATE_STREAM_1 and timed[0] not in PRIVATE_AUDIO:
            continue
        stream, pts = timed
        first = pts if first is None else first
        found = times.setdefault(stream, [])
        if len(found) < PS_PES_PACKETS:
            found.append(unwrapped(pts, first))
        elif all(len(t) == PS_PES_PACKETS for t in times.values()) and any(s in VIDEO_STREAMS for s in times):
            break
    video = next((stream for stream in times if stream in VIDEO_STREAMS), None)
    if video is None:
        return 0.0
    return max(0, min(times[video]) - min(min(t) for t in times.values())) / PTS_CLOCK
