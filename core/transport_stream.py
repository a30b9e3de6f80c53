"""What an MPEG transport stream (.ts; .m2ts and AVCHD's .mts, whose packets each follow a 4-byte
time) says of itself, from its bytes: where its packets start, how long its video starts after its
sound (OpenCV times the frames from the video's own first frame), and where its second keyframe is
(OpenCV cannot seek before it). core/containers.py asks it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TS_PACKET, TS_SYNC = 188, 0x47  # bytes of an MPEG-TS packet, the byte it starts with
TS_STRIDES = (188, 192)  # bytes from a packet to the next: .ts; .m2ts/.mts (a 4-byte time before each)
TS_SYNC_PACKETS = 8  # packets in a row whose sync bytes tell where packets start (a file's, a damaged one's)
# an MPEG-TS file's streams' first times are looked for in its first TS_READ bytes, read TS_CHUNK at a
# time, among the first TS_PES_PACKETS PES packets of each stream (with B-frames, the first frame in
# the file is not the first shown)
TS_READ, TS_CHUNK, TS_PES_PACKETS = 8 << 20, 256 << 10, 16
TS_PAT_PID, TS_PAT, TS_PMT = 0, 0x00, 0x02  # the program association table's PID; PAT and PMT table IDs
# the stream types (in a PMT) that are video or sound whatever the broadcast standard: MPEG-1/2
# video, MPEG-4 part 2, H.264, HEVC, VC-1; MPEG-1/2 audio, AAC (ADTS, LATM), AC-3 and E-AC-3 (ATSC).
# 0x06, private data, may be AC-3 (DVB) as well as subtitles or teletext: not counted
TS_VIDEO_TYPES = frozenset({0x01, 0x02, 0x10, 0x1B, 0x24, 0xEA})
TS_AUDIO_TYPES = frozenset({0x03, 0x04, 0x0F, 0x11, 0x81, 0x87})
PTS_CLOCK, PTS_WRAP = 90_000, 1 << 33  # PES times: ticks a second; they wrap around at 2**33
CRC32_MPEG = 0x04C11DB7  # the polynomial of the CRC a PSI section (PAT, PMT) ends with
TS_HEAD = max(TS_STRIDES) * TS_SYNC_PACKETS  # bytes of a file's start `ts_start` needs
TS_SCAN_CHUNK = 4 << 20  # bytes of packets looked through at a time for a keyframe
TS_RANDOM_ACCESS = 0x40  # adaptation field flag: a keyframe starts in this packet


def _ts_sync(data: bytes, at: int, stride: int) -> int | None:
    """The first offset from data[at] on where TS_SYNC_PACKETS packets `stride` bytes apart start
    with the sync byte; None when there is none in `data`."""
    last = max(0, len(data) - (TS_SYNC_PACKETS - 1) * stride)  # from here on, too few bytes after it
    at = data.find(TS_SYNC, at, last)
    while at != -1:
        if all(data[at + i * stride] == TS_SYNC for i in range(1, TS_SYNC_PACKETS)):
            return at
        at = data.find(TS_SYNC, at + 1, last)
    return None


def ts_start(head: bytes) -> tuple[int, int] | None:
    """(offset of the first packet, bytes from a packet to the next) of an MPEG-TS file whose first
    bytes are `head`; None when it is no such file. (A file cut from a recording may start within a
    packet; an .m2ts file's packets start after their 4-byte times.)"""
    for stride in TS_STRIDES:
        at = _ts_sync(head, 0, stride)
        if at is not None and at < stride:
            return at, stride
    return None


def _ts_packets(f: BinaryIO, at: int, stride: int) -> Iterator[bytes]:
    """The 188-byte packets of an MPEG-TS file, the first at offset `at`, within its first TS_READ
    bytes, read TS_CHUNK at a time (see _packet_rows)."""
    for rows in _packet_rows(f, at, stride, TS_READ, TS_CHUNK):
        for row in rows:
            yield row.tobytes()


def _ts_payload(packet: bytes) -> tuple[int, bool, bytes] | None:
    """(PID, whether a PES packet or a PSI section starts in it, payload) of an MPEG-TS packet; None
    when it has no payload that can be read (a transport error, scrambled, adaptation field only)."""
    if packet[1] & 0x80 or packet[3] & 0xC0 or not packet[3] & 0x10:
        return None
    at = 5 + packet[4] if packet[3] & 0x20 else 4  # after the adaptation field
    if at >= TS_PACKET:
        return None
    return (packet[1] & 0x1F) << 8 | packet[2], bool(packet[1] & 0x40), packet[at:]


def _crc32_mpeg(data: bytes) -> int:
    """The MPEG-2 CRC-32 of `data`: 0 for a PSI section with its CRC."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1 ^ CRC32_MPEG if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _psi_section(pending: dict[int, bytes], pid: int, start: bool, payload: bytes) -> bytes | None:
    """The PSI section (a PAT, a PMT) of `pid` that ends in this packet's payload, whole, current
    and its CRC checked (which it is returned without); None when none does. The bytes of one under
    way are kept in `pending` by PID."""
    if start:  # a pointer field tells where a new section starts: bytes before it end the last one
        if not payload or 1 + payload[0] > len(payload):
            pending.pop(pid, None)
            return None
        tail, new = payload[1 : 1 + payload[0]], payload[1 + payload[0] :]
        section = _psi_section(pending, pid, False, tail) if tail else None
        pending[pid] = new
        return section or _psi_section(pending, pid, False, b"")
    if pid not in pending:
        return None
    data = pending[pid] = pending[pid] + payload
    if len(data) < 3:
        return None
    end = 3 + ((data[1] & 0x0F) << 8 | data[2])
    if len(data) < end:
        return None
    del pending[pid]
    # a section that is whole and current (not the next version's), of at least a PAT's fields
    if end < 12 or _crc32_mpeg(data[:end]) or not data[5] & 0x01:
        return None
    return data[: end - 4]


def _pat(section: bytes) -> list[int]:
    """The PMT PIDs a PAT section names, in its order (program 0 names a network table)."""
    entries = section[8:]
    return [
        (entries[i + 2] & 0x1F) << 8 | entries[i + 3]
        for i in range(0, len(entries) - 3, 4)
        if entries[i : i + 2] != b"\0\0"
    ]


def _pmt(section: bytes) -> list[tuple[int, int]]:
    """The (PID, stream type) of the elementary streams a PMT section names, in its order."""
    if len(section) < 12:
        return []
    found, at = [], 12 + ((section[10] & 0x0F) << 8 | section[11])  # after the program's descriptors
    while at + 5 <= len(section):
        found.append(((section[at + 1] & 0x1F) << 8 | section[at + 2], section[at]))
        at += 5 + ((section[at + 3] & 0x0F) << 8 | section[at + 4])
    return found


def _pes_time(payload: bytes) -> int | None:
    """The presentation time (PTS, 90 kHz ticks) of the PES packet `payload` starts with; None when
    it has none."""
    if len(payload) < 14 or payload[:3] != b"\0\0\1" or payload[6] & 0xC0 != 0x80:
        return None
    if not payload[7] & 0x80 or payload[8] < 5:  # PTS_DTS_flags: no PTS; no room for one
        return None
    return pes_timestamp(payload[9:14])


def pes_timestamp(field: bytes) -> int | None:
    """The 33-bit time (90 kHz ticks) of a PES header's 5-byte PTS or DTS field, as MPEG-1 and MPEG-2
    store it alike; None when its marker bits are not set (not such a field)."""
    t = field[:5]
    if len(t) < 5 or not t[0] & t[2] & t[4] & 1:
        return None
    return (t[0] >> 1 & 0x07) << 30 | t[1] << 22 | (t[2] >> 1) << 15 | t[3] << 7 | t[4] >> 1


def unwrapped(pts: int, near: int) -> int:
    """A PES time (`pts`, 33 bits) as the time nearest `near` that it may stand for: times wrap around
    at 2**33 ticks (26.5 hours), so a later one may read as smaller."""
    return near + (pts - near + PTS_WRAP // 2) % PTS_WRAP - PTS_WRAP // 2


def mpegts_video_delay(f: BinaryIO, at: int, stride: int) -> float:
    """Seconds an MPEG-TS file's first video stream starts after the earliest of its video and
    audio streams (FFmpeg's start times: a stream's earliest PES time, as players rebase them to
    the file's start); 0 when it does not start later or it is not told. `at`, `stride`: as
    `ts_start` gives them."""
    video, starts = _stream_starts(f, at, stride)
    if video not in starts:
        return 0.0
    return max(0, starts[video] - min(starts.values())) / PTS_CLOCK


def _stream_starts(f: BinaryIO, at: int, stride: int) -> tuple[int | None, dict[int, int]]:
    """(the PID of an MPEG-TS file's first video stream, None when it names none; the start times of
    its video and audio streams by PID, in 90 kHz ticks, of those whose times were read).

    The PAT names the programs' PMTs, which name their streams: those whose type says video or
    sound are timed (0x06, private data, is sound or subtitles: not counted), each by the earliest
    of its first TS_PES_PACKETS PES times, unwrapped around the first time read."""
    pending: dict[int, bytes] = {}  # PSI sections' first bytes by PID
    pmts: list[int] | None = None  # the PMT PIDs, once the PAT is read
    streams: dict[int, list[tuple[int, int]]] = {}  # (PID, stream type) of the timed streams by PMT PID
    times: dict[int, list[int]] = {}  # the timed streams' PES times by PID, unwrapped
    first: int | None = None  # the first PES time read: the others are unwrapped around it
    for packet in _ts_packets(f, at, stride):
        read = _ts_payload(packet)
        if read is None:
            continue
        pid, start, payload = read
        if pid in times:
            pts = _pes_time(payload) if start and len(times[pid]) < TS_PES_PACKETS else None
            if pts is None:
                continue
            first = pts if first is None else first
            times[pid].append(unwrapped(pts, first))
            if len(streams) == len(pmts) and all(len(t) == TS_PES_PACKETS for t in times.values()):
                break
        elif pmts is None and pid == TS_PAT_PID or pmts and pid in pmts and pid not in streams:
            section = _psi_section(pending, pid, start, payload)
            if section is None or section[0] != (TS_PAT if pmts is None else TS_PMT):
                continue
            if pmts is None:
                pmts = list(dict.fromkeys(_pat(section)))
            else:
                streams[pid] = [s for s in _pmt(section) if s[1] in TS_VIDEO_TYPES | TS_AUDIO_TYPES]
                times.update((s[0], []) for s in streams[pid] if s[0] not in times)
    timed = [pid for pmt in pmts or [] for pid, kind in streams.get(pmt, []) if kind in TS_VIDEO_TYPES]
    return timed[0] if timed else None, {pid: min(t) for pid, t in times.items() if t}


def _packet_rows(
    f: BinaryIO, at: int, stride: int, limit: float = math.inf, chunk: int | None = None
) -> Iterator[np.ndarray]:
    """The 188-byte packets of an MPEG-TS file, the first at offset `at`, to its end or its first
    `limit` bytes: uint8 arrays of shape (packets, 188), `chunk` bytes' worth at most (None:
    TS_SCAN_CHUNK). After one that
    does not start with the sync byte (bytes lost or garbled), from where TS_SYNC_PACKETS in a row do
    again."""
    f.seek(at)
    chunk = chunk or TS_SCAN_CHUNK
    data, left, ended = b"", limit - at, False
    while True:
        if not ended and len(data) < chunk:
            more = f.read(int(min(chunk, left))) if left > 0 else b""
            left -= len(more)
            data, ended = data + more, not more
        buf = np.frombuffer(data, np.uint8)
        if len(buf) < TS_PACKET:
            rows = buf[:0].reshape(0, TS_PACKET)
        else:  # the last packet may lack the next one's 4-byte time (.m2ts): taken at the end only
            rows = sliding_window_view(buf, TS_PACKET)[::stride]
            rows = rows if ended else rows[: len(buf) // stride]
        count = len(rows)
        lost = np.flatnonzero(rows[:, 0] != TS_SYNC)
        whole = int(lost[0]) if lost.size else count
        if whole:
            yield rows[:whole]
        data = data[whole * stride :]
        if lost.size:
            synced = _ts_sync(data, 1, stride)
            if synced is not None:
                data = data[synced:]
                continue
            data = data[max(1, len(data) - (TS_SYNC_PACKETS - 1) * stride) :]  # may start in bytes to read
        if ended:
            return


def mpegts_second_keyframe(f: BinaryIO, at: int, stride: int, until: float) -> float | None:
    """Seconds from an MPEG-TS file's first video frame (its video stream's start time) to the time
    of its second keyframe: the second of its PES packets whose first TS packet is marked a random
    access point, as muxers mark where decoding can start. FFmpeg (so OpenCV) finds no frame, or a
    later one, when it seeks before there. math.inf when there is none by `until` seconds (it is
    looked for no further); None when the file marks no keyframe (its video's first PES packet is
    not marked) or it has no video. `at`, `stride`: as `ts_start` gives them."""
    video, starts = _stream_starts(f, at, stride)
    if video not in starts:
        return None
    start, first = starts[video], True
    for rows in _packet_rows(f, at, stride):
        pid = (rows[:, 1].astype(np.uint16) & 0x1F) << 8 | rows[:, 2]
        begins = rows[(pid == video) & (rows[:, 1] & 0x40 != 0)]  # where the video's PES packets start
        if not len(begins):
            continue
        # an adaptation field, not empty, with its random access indicator set
        marked = (begins[:, 3] & 0x20 != 0) & (begins[:, 4] > 0) & (begins[:, 5] & TS_RANDOM_ACCESS != 0)
        if first and not marked[0]:
            return None
        for packet in begins[marked][1 if first else 0 :]:
            read = _ts_payload(packet.tobytes())
            pts = _pes_time(read[2]) if read is not None else None
            if pts is not None:
                return (unwrapped(pts, start) - start) / PTS_CLOCK
        first = False
        read = _ts_payload(begins[-1].tobytes())
        last = _pes_time(read[2]) if read is not None else None
        if last is not None and (unwrapped(last, start) - start) / PTS_CLOCK > until:
            break
    return math.inf
