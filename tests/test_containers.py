"""What containers say of themselves: an MP4's played length (mvhd), where an MP4's or a Matroska
file's video starts, and a Matroska file cut short."""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from core import containers, program_stream, transport_stream
from core.containers import ContainerTimes, container_times, mp4_tracks, second_keyframe


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mvhd(version: int, scale: int, length: int) -> bytes:
    """A movie header box: version and flags, two times, time scale, duration (and the rest, zeros)."""
    times = (
        struct.pack(">QQIQ", 0, 0, scale, length) if version else struct.pack(">IIII", 0, 0, scale, length)
    )
    return box(b"mvhd", bytes([version, 0, 0, 0]) + times + bytes(80))


@pytest.mark.parametrize("version", [0, 1])
def test_an_mp4s_played_length_comes_from_its_movie_header(tmp_path, version):
    path = tmp_path / "clip.mp4"
    path.write_bytes(
        box(b"ftyp", b"isom") + box(b"moov", box(b"iods", bytes(16)) + mvhd(version, 1000, 12345))
    )
    assert container_times(path).played == pytest.approx(12.345)


def trak(handler: bytes, edits: list[tuple[int, int]] | None = None, version: int = 0) -> bytes:
    """A track of `handler` type with an edit list of (length, media time: -1 for an empty edit)."""
    layout = ">Iihh" if version == 0 else ">Qqhh"
    edits = edits or []
    elst = b"".join(struct.pack(layout, length, media, 1, 0) for length, media in edits)
    edts = box(b"edts", box(b"elst", bytes([version, 0, 0, 0]) + struct.pack(">I", len(edits)) + elst))
    hdlr = box(b"hdlr", bytes(8) + handler + bytes(12))
    return box(b"trak", box(b"tkhd", bytes(84)) + (edts if edits else b"") + box(b"mdia", hdlr))


@pytest.mark.parametrize("version", [0, 1])
def test_a_video_track_that_starts_after_the_sound_is_delayed_by_its_empty_edits(tmp_path, version):
    path = tmp_path / "clip.mp4"
    cases = (  # tracks as (handler, edit list), the video's delay in seconds
        ([(b"soun", None), (b"vide", [(600, -1), (300, -1), (3000, 0)])], 0.9),
        ([(b"vide", [(500, -1), (3000, 0)]), (b"soun", [(200, -1), (3000, 0)])], 0.3),
        ([(b"vide", [(3000, 1024)]), (b"soun", None)], 0.0),  # an edit that trims is no delay
        ([(b"soun", [(500, -1), (3000, 0)]), (b"vide", None)], 0.0),  # the sound starts late
        ([(b"vide", [(500, -1), (3000, 0)])], 0.0),  # no sound to start after
        ([(b"soun", None)], 0.0),
    )
    for tracks, delay in cases:
        traks = b"".join(trak(handler, edits, version) for handler, edits in tracks)
        path.write_bytes(box(b"ftyp", b"isom") + box(b"moov", mvhd(0, 1000, 4000) + traks))
        assert container_times(path).video_delay == pytest.approx(delay)
        assert mp4_tracks(path) == [handler for handler, _ in tracks]


def test_an_mp4_that_does_not_say_how_long_it_plays_gives_none(tmp_path):
    cases = {
        "fragmented.mp4": box(b"moov", mvhd(0, 1000, 0)),  # a fragmented MP4 declares 0
        "unknown.mp4": box(b"moov", mvhd(0, 1000, 0xFFFFFFFF)),
        "no-scale.mp4": box(b"moov", mvhd(0, 0, 3000)),
        "text.mp4": b"not a video at all",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert container_times(tmp_path / name).played is None, name


def ebml_size(n: int, length: int = 1) -> bytes:
    """`n` as an EBML variable-length number of `length` bytes."""
    return ((1 << (8 * length - length)) | n).to_bytes(length, "big")


def matroska(body: bytes, declared: int | None = None, size_length: int = 1, before: bytes = b"") -> bytes:
    """An EBML header, `before` (other top-level elements), then a Segment declaring `declared`
    bytes (None: of unknown size) and holding `body`."""
    header = b"\x42\x86\x81\x01"  # EBMLVersion 1
    size = (
        ebml_size(len(body) if declared is None else declared, 8) if declared != -1 else b"\x01" + b"\xff" * 7
    )
    return (
        b"\x1a\x45\xdf\xa3"
        + ebml_size(len(header), size_length)
        + header
        + before
        + b"\x18\x53\x80\x67"
        + size
        + body
    )


def test_a_matroska_file_is_cut_when_its_segment_declares_more_than_it_holds(tmp_path):
    path = tmp_path / "clip.mkv"
    for data, cut in (
        (matroska(bytes(100)), False),
        (matroska(bytes(100), size_length=2), False),  # its header's size in two bytes
        (matroska(bytes(100), declared=300), True),
        (matroska(bytes(100), declared=-1), None),  # of unknown size: a live recording
        (matroska(bytes(100), before=b"\xec\x82\x00\x00"), None),  # a Void before it: not looked past
        (b"\x00\x00\x00\x18ftypmp42", None),  # no Matroska file
    ):
        path.write_bytes(data)
        assert container_times(path).cut is cut


VIDEO, AUDIO, SUBTITLES = 1, 2, 0x11  # Matroska track types
# Matroska element IDs
INFO, TIMESTAMP_SCALE = b"\x15\x49\xa9\x66", b"\x2a\xd7\xb1"
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_UID = b"\x16\x54\xae\x6b", b"\xae", b"\xd7", b"\x73\xc5"
TRACK_TYPE, CODEC_DELAY, CODEC_PRIVATE = b"\x83", b"\x56\xaa", b"\x63\xa2"
CLUSTER, CLUSTER_TIMESTAMP = b"\x1f\x43\xb6\x75", b"\xe7"
SIMPLE_BLOCK, BLOCK_GROUP, BLOCK = b"\xa3", b"\xa0", b"\xa1"
CUES, CUE_POINT, CUE_TIME, TAGS, VOID = b"\x1c\x53\xbb\x6b", b"\xbb", b"\xb3", b"\x12\x54\xc3\x67", b"\xec"


def element(ident: bytes, payload: bytes, unknown: bool = False) -> bytes:
    """An EBML element: its ID, its size in 8 bytes (all value bits set: unknown), its payload."""
    return ident + (b"\x01" + b"\xff" * 7 if unknown else ebml_size(len(payload), 8)) + payload


def uint(ident: bytes, n: int) -> bytes:
    return element(ident, n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"))


def block(track: int, time: int, group: bool = False) -> bytes:
    """A SimpleBlock (or a BlockGroup's Block) of `track`, `time` ticks after its cluster's start."""
    payload = ebml_size(track) + struct.pack(">hB", time, 0x80) + b"frame"
    return element(BLOCK_GROUP, element(BLOCK, payload)) if group else element(SIMPLE_BLOCK, payload)


def mkv(
    tracks: list[tuple[int, int]],
    clusters: list[tuple[int, list[bytes]]],
    scale: int | None = None,
    codec_delays: dict[int, int] | None = None,
    before_clusters: bytes = b"",
    unknown: bool = False,
) -> bytes:
    """A Matroska file of `tracks` (number, type) and `clusters` (timestamp in ticks, blocks), ticks
    of `scale` ns (None: Info does not say); its Segment and Clusters of unknown size if `unknown`."""
    codec_delays = codec_delays or {}
    entries = b"".join(
        element(
            TRACK_ENTRY,
            uint(TRACK_NUMBER, number)
            + uint(TRACK_UID, 1000 + number)
            + uint(TRACK_TYPE, kind)
            + (uint(CODEC_DELAY, codec_delays[number]) if number in codec_delays else b"")
            + element(CODEC_PRIVATE, bytes(40)),
        )
        for number, kind in tracks
    )
    body = element(INFO, b"" if scale is None else uint(TIMESTAMP_SCALE, scale))
    body += element(TRACKS, entries) + before_clusters
    for timestamp, blocks in clusters:
        body += element(CLUSTER, uint(CLUSTER_TIMESTAMP, timestamp) + b"".join(blocks), unknown)
    return matroska(body, declared=-1 if unknown else None)


AV = [(1, VIDEO), (2, AUDIO)]
INDEX = element(CUES, element(CUE_POINT, uint(CUE_TIME, 0) + bytes(30))) + element(TAGS, bytes(300))
PADDING = element(VOID, bytes(100))
MATROSKA_CASES = (  # (a file, its video's delay in seconds)
    (mkv(AV, [(0, [block(2, 0), block(2, 23)]), (1000, [block(1, 0), block(2, 0)])]), 1.0),
    (mkv(AV, [(0, [block(2, 0)]), (1000, [block(1, 0)])], unknown=True), 1.0),  # a browser's recording
    (mkv(AV, [(500, [block(1, 0)]), (1500, [block(2, 0)])]), 0.0),  # the sound starts late
    (mkv(AV, [(500, [block(2, 0), block(1, 40)])]), 0.04),  # no block at the cluster's start
    (mkv(AV, [(1000, [block(2, -200), block(1, 0)])]), 0.2),  # a block before its cluster's start
    (mkv(AV, [(0, [block(2, 0)]), (5000, [block(1, 300)])], scale=100_000), 0.53),  # 0.1 ms ticks
    (mkv(AV, [(0, [block(2, 0), block(1, 1000, group=True)])]), 1.0),
    (mkv(AV, [(0, [block(2, 0), block(1, 1000)])], codec_delays={2: 6_500_000}), 1.007),  # as FFmpeg
    (mkv(AV, [(0, [block(2, 0)]), (1000, [block(1, 0)])], before_clusters=INDEX + PADDING), 1.0),
    (mkv([(1, VIDEO)], [(1000, [block(1, 0)])]), 0.0),  # it starts the file
    (mkv([(2, AUDIO)], [(0, [block(2, 0)])]), 0.0),
    (mkv(AV + [(3, SUBTITLES)], [(0, [block(3, 0)]), (900, [block(2, 0), block(1, 0)])]), 0.0),
    (mkv([(4, VIDEO), *AV], [(0, [block(2, 0), block(1, 0)]), (300, [block(4, 0)])]), 0.3),  # OpenCV's
    (mkv([], [(0, [block(2, 0)]), (1000, [block(1, 0)])]), 0.0),  # no tracks declared
)


def test_a_matroska_video_track_that_starts_after_the_sound_is_delayed_by_its_first_block(tmp_path):
    """The first video track's first block's time less the earliest of the video and audio tracks'
    (a subtitle track's is none of them)."""
    path = tmp_path / "clip.mkv"
    for i, (data, delay) in enumerate(MATROSKA_CASES):
        path.write_bytes(data)
        times = container_times(path)
        assert times.video_delay == pytest.approx(delay) and times.played is None, i


def test_the_first_blocks_are_looked_for_near_the_first_cluster_only(tmp_path, monkeypatch):
    path = tmp_path / "clip.mkv"
    path.write_bytes(
        mkv(AV, [(0, [block(2, 0)]), (1000, [block(2, 0) + PADDING * 20]), (2000, [block(1, 0)])])
    )
    assert container_times(path).video_delay == pytest.approx(2.0)
    monkeypatch.setattr(containers, "MATROSKA_BLOCK_WINDOW", 1000)  # the video's cluster lies past it
    assert container_times(path).video_delay == 0.0


def test_a_damaged_matroska_file_is_no_error(tmp_path):
    """A file cut anywhere, or with bytes garbled, gives the video's delay or 0: never an error."""
    whole = mkv(AV, [(0, [block(2, 0)]), (1000, [block(1, 0, group=True)])], scale=1_000_000, unknown=True)
    assert_no_error_when_damaged(tmp_path / "clip.mkv", whole, cut_every=1, telling=(0x01, 0xFF))


def assert_no_error_when_damaged(path: Path, whole: bytes, cut_every: int, telling: tuple[int, ...]) -> None:
    """`whole` (a file whose video starts 1 s late) cut every `cut_every` bytes, and with a few bytes
    garbled 300 times (to random values or the `telling` ones), gives a delay of 0 or 1 s: no error."""
    for end in range(0, len(whole), cut_every):
        path.write_bytes(whole[:end])
        assert container_times(path).video_delay in (0.0, 1.0), end
    rng = random.Random(0)
    for _ in range(300):
        garbled = bytearray(whole)
        for _ in range(rng.randint(1, 4)):
            garbled[rng.randrange(len(garbled))] = rng.choice((rng.randrange(256), *telling))
        path.write_bytes(bytes(garbled))
        assert 0.0 <= container_times(path).video_delay < float("inf")


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs FFmpeg")


def ffmpeg(*args: str) -> bytes:
    """What FFmpeg writes to its standard output, run with `args`."""
    run = subprocess.run(["ffmpeg", "-loglevel", "error", *args], check=True, capture_output=True, timeout=60)
    return run.stdout


def ffprobe_delay(path: Path) -> float:
    """How much later than the earliest of its sound and video a file's video starts, by FFprobe."""
    probe = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json"]
    streams = json.loads(subprocess.run([*probe, str(path)], capture_output=True, check=True).stdout)
    found = [stream for stream in streams["streams"] if "start_time" in stream]
    starts = {stream["codec_type"]: float(stream["start_time"]) for stream in reversed(found)}  # the first
    timed = [t for kind, t in starts.items() if kind in ("video", "audio")]
    return max(0.0, starts["video"] - min(timed)) if "video" in starts else 0.0


SINE, PATTERN = "-f lavfi -i sine=d=3", "-f lavfi -i testsrc=d=2:s=64x48:r=25"
VP9 = "-c:v libvpx-vp9 -deadline realtime -c:a libopus"
# MPEG video for a program stream, its frames' times kept (re-encoded, they would start at the sound's)
MPEG1, MPEG2 = "-c:v mpeg1video -vsync passthrough", "-c:v mpeg2video -vsync passthrough"
MADE = {  # FFmpeg's arguments ({clip}: a GRID clip), how much later its video starts than its sound
    "late.mkv": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v -c:v copy -c:a aac", 1.0),
    "both-late.mkv": (
        f"-itsoffset 0.5 {SINE} -itsoffset 1.5 -i {{clip}} -map 0:a -map 1:v -c:v copy -c:a aac",
        1.0,
    ),
    "video-only.mkv": ("-itsoffset 1 -i {clip} -an -c:v copy", 0.0),
    "late.webm": (f"{SINE} -itsoffset 1 {PATTERN} {VP9}", 1.0),
    "ordinary.mkv": ("-i {clip} -c:v copy -c:a aac", 0.0),
    "ordinary.webm": (f"{PATTERN} {SINE} -shortest {VP9}", 0.0),
    "late.ts": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v -c:v copy -c:a aac", 1.0),  # B-frames
    "both-late.ts": (
        f"-itsoffset 0.5 {SINE} -itsoffset 1.5 -i {{clip}} -map 0:a -map 1:v -c:v copy -c:a aac",
        1.0,
    ),
    "video-only.ts": ("-itsoffset 1 -i {clip} -an -c:v copy", 0.0),
    "ordinary.ts": ("-i {clip} -c copy", 0.0),
    # MPEG program streams: an MPEG-1 system stream (.mpg), a DVD's (.vob, -f dvd: AC-3, LPCM)
    "late.mpg": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v {MPEG1} -c:a mp2", 1.0),
    "late.vob": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v {MPEG2} -c:a ac3", 1.0),
    "late-dvd.mpg": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v {MPEG2} -c:a ac3 -f dvd", 1.0),
    "late-lpcm.vob": (f"{SINE} -itsoffset 1 -i {{clip}} -map 0:a -map 1:v {MPEG2} -c:a pcm_s16be", 1.0),
    "sound-late.vob": (f"-itsoffset 1 {SINE} -i {{clip}} -map 0:a -map 1:v {MPEG2} -c:a ac3", 0.0),
    "video-only.mpg": (f"-itsoffset 1 -i {{clip}} -an {MPEG1}", 0.0),
    "ordinary.mpg": ("-i {clip} -c:v mpeg1video -c:a mp2", 0.0),
}
PRIMING = 0.03  # seconds at most a sound's priming samples (AAC's, Opus's) put its start earlier
MP2_DELAY = 982 / 90_000  # MPEG audio layer II's decoder delay (481 samples at 44.1 kHz) in PES ticks


@needs_ffmpeg
@pytest.mark.parametrize("name", MADE)
def test_a_matroska_webm_mpegts_or_mpeg_ps_files_video_delay_is_ffprobes(grid_dir, tmp_path, name):
    """Files made with FFmpeg whose video starts a second after the sound, or with it, read as
    FFprobe reads them: the sound's priming samples (in AAC, Opus) move its start earlier still."""
    args, later = MADE[name]
    path = tmp_path / name
    ffmpeg(*(arg.format(clip=grid_dir / "video" / "bbaf2n.mp4") for arg in args.split()), str(path))
    assert container_times(path).video_delay == pytest.approx(ffprobe_delay(path), abs=1e-6)
    assert container_times(path).video_delay == pytest.approx(later, abs=PRIMING)


def left_open(data: bytes) -> bytes:
    """A Matroska file with its Segment's and Clusters' sizes rewritten as unknown (all value bits
    set, in as many bytes), as a browser's MediaRecorder writes them."""

    def number(at: int) -> tuple[int, int]:  # (value, length) of the EBML number at `at`
        length = 9 - data[at].bit_length()
        return int.from_bytes(data[at : at + length], "big") & ((1 << (7 * length)) - 1), length

    def unknown(at: int) -> None:  # the size at `at` left open
        length = number(at)[1]
        out[at : at + length] = ((1 << (7 * length + 1)) - 1).to_bytes(length, "big")

    out, at = bytearray(data), 4 + sum(number(4))  # past the EBML header
    unknown(at + 4)
    at += 4 + number(at + 4)[1]
    while at < len(data):  # the Segment's elements
        size_at = at + 9 - data[at].bit_length()
        if data[at : at + 4] == CLUSTER:
            unknown(size_at)
        at = size_at + sum(number(size_at))
    return bytes(out)


@needs_ffmpeg
def test_a_webm_file_of_unknown_sizes_is_read_as_ffprobe_reads_it(tmp_path):
    """A live stream's (its Segment's size is left open) and a browser's recording (its clusters'
    too), their video a second after their sound."""
    late = tmp_path / "late.webm"
    ffmpeg(*f"{SINE} -itsoffset 1 {PATTERN} {VP9}".split(), str(late))
    live, recorded = tmp_path / "live.webm", tmp_path / "recorded.webm"
    live.write_bytes(ffmpeg("-i", str(late), "-c", "copy", "-f", "webm", "-"))
    recorded.write_bytes(left_open(late.read_bytes()))
    cuts = [container_times(path).cut for path in (live, recorded, late)]
    assert cuts[0] is None and cuts[1] is None and cuts[2] is False
    for path in (live, recorded):
        assert container_times(path).video_delay == pytest.approx(ffprobe_delay(path), abs=1e-6)
        assert container_times(path).video_delay == pytest.approx(1.0, abs=PRIMING)


@needs_ffmpeg
def test_a_grid_clip_has_no_video_delay(grid_dir, tmp_path):
    """As an MP4, and as an MPEG-1 .mpg as GRID's own files are: its sound in LPCM starts with the
    video; in MPEG audio, its decoder's delay before it, as FFprobe reads it."""
    clip, lpcm, mpeg = grid_dir / "video" / "bbaf2n.mp4", tmp_path / "lpcm.mpg", tmp_path / "clip.mpg"
    ffmpeg("-i", str(clip), "-c:v", "mpeg1video", "-c:a", "pcm_s16be", str(lpcm))
    ffmpeg("-i", str(clip), "-c:v", "mpeg1video", "-c:a", "mp2", str(mpeg))
    assert container_times(clip) == ContainerTimes(played=3.0, video_delay=0.0)
    assert container_times(lpcm) == ContainerTimes(counts_file_length=True)  # as ffprobe_delay(lpcm)
    assert container_times(mpeg).video_delay == pytest.approx(ffprobe_delay(mpeg), abs=1e-6)
    assert container_times(mpeg).video_delay == pytest.approx(MP2_DELAY)


# MPEG-TS
PAT_PID, PMT_PID, VIDEO_PID, AUDIO_PID = 0, 0x1000, 0x100, 0x101
H264, AAC, PRIVATE = 0x1B, 0x0F, 0x06  # PMT stream types: PRIVATE is sound (DVB's AC-3) or subtitles
SECOND = 90_000  # PES ticks


def test_psi_sections_are_checked_with_mpeg_2s_crc():
    assert transport_stream._crc32_mpeg(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def ts_packet(pid: int, payload: bytes, start: bool = False, key: bool = False) -> bytes:
    """A 188-byte MPEG-TS packet of `pid` holding `payload` (at most 184 bytes), the room left
    filled by its adaptation field's stuffing; marked a random access point (a keyframe) when `key`."""
    room = 184 - len(payload)
    head = bytes([0x47, (0x40 if start else 0) | pid >> 8, pid & 0xFF])
    if room == 0:
        return head + b"\x10" + payload
    flags = b"\x40" if key else b"\x00"
    return head + b"\x30" + bytes([room - 1]) + (flags + b"\xff" * (room - 2) if room > 1 else b"") + payload


def psi(pid: int, table: int, body: bytes) -> bytes:
    """The packets of a PSI section (a PAT, a PMT) holding `body` after its common fields."""
    section = bytes([table, 0xB0 | (len(body) + 9) >> 8, (len(body) + 9) & 0xFF]) + b"\x00\x01\xc1\x00\x00"
    section += body
    data = b"\x00" + section + struct.pack(">I", transport_stream._crc32_mpeg(section))  # pointer field 0
    return b"".join(ts_packet(pid, data[i : i + 184], start=i == 0) for i in range(0, len(data), 184))


def pat(*pmts: int) -> bytes:
    return psi(PAT_PID, 0x00, b"".join(struct.pack(">HH", n + 1, 0xE000 | pid) for n, pid in enumerate(pmts)))


def pmt(streams: list[tuple[int, int]], pid: int = PMT_PID, descriptors: int = 0) -> bytes:
    """A PMT naming `streams` (PID, stream type), each with `descriptors` bytes of descriptors."""
    entries = b"".join(
        struct.pack(">BHH", kind, 0xE000 | es, 0xF000 | descriptors) + bytes(descriptors)
        for es, kind in streams
    )
    return psi(pid, 0x02, struct.pack(">HH", 0xE000 | streams[0][0], 0xF000) + entries)


def pes_time(pts: int, prefix: int = 0x2) -> bytes:
    """A PES header's 5-byte time field holding `pts` (90 kHz ticks, 33 bits), after its 4-bit
    `prefix` (0x2: a PTS alone, 0x3: a PTS before a DTS, 0x1: that DTS)."""
    return bytes(
        [prefix << 4 | 0x01 | pts >> 29 & 0x0E, pts >> 22 & 0xFF, 0x01 | pts >> 14 & 0xFE, pts >> 7 & 0xFF]
    ) + bytes([0x01 | pts << 1 & 0xFE])


def pes(pid: int, pts: int, key: bool = False) -> bytes:
    """The first packet of a PES packet of `pid` presented at `pts` (90 kHz ticks, 33 bits), marked
    a keyframe when `key`."""
    payload = b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05" + pes_time(pts) + b"frame"
    return ts_packet(pid, payload, start=True, key=key)


NULLS = (b"\x47\x1f\xff\x10" + b"\xff" * 184) * 8  # null packets: a file is told by 8 packets in a row


def mpegts(streams: list[tuple[int, int]], times: list[tuple[int, int]], pmt_data: bytes = b"") -> bytes:
    """An MPEG-TS file: a PAT, a PMT naming `streams` (PID, stream type), PES packets at `times`
    (PID, PTS) in their order, null packets."""
    return pat(PMT_PID) + (pmt_data or pmt(streams)) + b"".join(pes(pid, pts) for pid, pts in times) + NULLS


def m2ts(data: bytes) -> bytes:
    """An MPEG-TS file's packets each after a 4-byte arrival time, as a Blu-ray's .m2ts holds them."""
    return b"".join(
        struct.pack(">I", i * 300) + data[at : at + 188] for i, at in enumerate(range(0, len(data), 188))
    )


AV_TS = [(VIDEO_PID, H264), (AUDIO_PID, AAC)]
WRAP = 1 << 33  # PES times wrap around
MPEGTS_CASES = (  # (streams, PES times, the video's delay in seconds)
    (AV_TS, [(AUDIO_PID, 0), (AUDIO_PID, 1920), (VIDEO_PID, SECOND), (AUDIO_PID, 3840)], 1.0),
    (AV_TS, [(AUDIO_PID, SECOND), (VIDEO_PID, 3 * SECOND)], 2.0),  # times need not start at 0
    (AV_TS, [(VIDEO_PID, SECOND // 2), (AUDIO_PID, SECOND)], 0.0),  # the sound starts late
    # B-frames: the first frame in the file is not the first shown
    (
        AV_TS,
        [(AUDIO_PID, 0), (VIDEO_PID, SECOND + 7200), (VIDEO_PID, SECOND), (VIDEO_PID, SECOND + 3600)],
        1.0,
    ),
    (AV_TS, [(AUDIO_PID, WRAP - SECOND // 2), (VIDEO_PID, SECOND // 2)], 1.0),  # times wrap around
    (AV_TS, [(VIDEO_PID, WRAP - SECOND // 2), (AUDIO_PID, SECOND // 2)], 0.0),
    ([(VIDEO_PID, H264)], [(VIDEO_PID, SECOND)], 0.0),  # no sound to start after
    ([(AUDIO_PID, AAC)], [(AUDIO_PID, 0)], 0.0),
    ([(VIDEO_PID, H264), (AUDIO_PID, PRIVATE)], [(AUDIO_PID, 0), (VIDEO_PID, SECOND)], 0.0),  # not counted
    ([(VIDEO_PID, H264), (AUDIO_PID, 0x03)], [(AUDIO_PID, 0), (VIDEO_PID, SECOND)], 1.0),  # MPEG audio
    ([(VIDEO_PID, 0x02), (AUDIO_PID, 0x81)], [(AUDIO_PID, 0), (VIDEO_PID, SECOND)], 1.0),  # MPEG-2, AC-3
    # the first video stream, which OpenCV plays
    ([(0x102, H264), *AV_TS], [(AUDIO_PID, 0), (VIDEO_PID, SECOND // 5), (0x102, SECOND)], 1.0),
    (AV_TS, [(AUDIO_PID, 0), (0x102, 0), (VIDEO_PID, SECOND)], 1.0),  # a PID the PMT does not name
    (AV_TS, [(AUDIO_PID, 0)], 0.0),  # no video read
)


def test_an_mpegts_video_stream_that_starts_after_the_sound_is_delayed_by_its_first_pes_times(tmp_path):
    """The first video stream's earliest time less the earliest of the video and audio streams' (a
    private data stream's is none of them), in a .ts file and in an .m2ts file (192-byte packets)."""
    for i, (streams, times, delay) in enumerate(MPEGTS_CASES):
        for name, data in (("clip.ts", mpegts(streams, times)), ("clip.m2ts", m2ts(mpegts(streams, times)))):
            (tmp_path / name).write_bytes(data)
            found = container_times(tmp_path / name)
            assert found.video_delay == pytest.approx(delay) and found.played is None, (i, name)


def test_an_mpegts_files_streams_are_found_however_its_packets_lie(tmp_path):
    path = tmp_path / "clip.ts"
    times = [(AUDIO_PID, 0), (VIDEO_PID, SECOND)]
    whole = mpegts(AV_TS, times)
    long_pmt = pmt(AV_TS, descriptors=100)  # a PMT over two packets
    junk = bytes(range(0, 256, 3))  # no sync byte
    files = (
        whole,
        mpegts(AV_TS, times, pmt_data=long_pmt),
        whole[100:188] + whole,  # cut from a recording within a packet
        pes(VIDEO_PID, 0) + whole,  # PES before the PMT names their stream: FFmpeg skips them
        NULLS + pat(PMT_PID) + junk + long_pmt + NULLS + junk + whole[2 * 188 :],  # bytes lost
        pat(0x1001, PMT_PID) + pmt([(0x102, 0x81)], pid=0x1001) + whole,  # a program with sound only
    )
    for i, data in enumerate(files):
        path.write_bytes(data)
        assert container_times(path).video_delay == pytest.approx(1.0), i


def test_an_mpegts_files_first_times_are_looked_for_near_its_start_only(tmp_path, monkeypatch):
    path = tmp_path / "clip.ts"
    path.write_bytes(mpegts(AV_TS, [(AUDIO_PID, 0)] * 30 + [(VIDEO_PID, SECOND)]))
    assert container_times(path).video_delay == pytest.approx(1.0)
    monkeypatch.setattr(transport_stream, "TS_READ", 20 * 188)  # the video's first packet lies past it
    assert container_times(path).video_delay == 0.0


def test_a_damaged_mpegts_file_is_no_error(tmp_path):
    """A file cut anywhere, or with bytes garbled, gives the video's delay or 0: never an error."""
    path = tmp_path / "clip.ts"
    whole = mpegts(AV_TS, [(AUDIO_PID, 0), (VIDEO_PID, SECOND), (AUDIO_PID, 1920)])
    assert_no_error_when_damaged(path, whole, cut_every=7, telling=(0x47, 0x00, 0xFF))
    path.write_bytes(random.Random(1).randbytes(100_000))
    assert container_times(path) == ContainerTimes()


@needs_ffmpeg
def test_an_m2ts_or_damaged_mpegts_file_is_read_as_ffprobe_reads_it(grid_dir, tmp_path):
    """192-byte packets (FFmpeg does not write them: its packets are given arrival times here), a
    file cut half-way, a file of noise."""
    late = tmp_path / "late.ts"
    ffmpeg(*MADE["late.ts"][0].format(clip=grid_dir / "video" / "bbaf2n.mp4").split(), str(late))
    blu_ray, cut, noise = tmp_path / "late.m2ts", tmp_path / "cut.ts", tmp_path / "noise.ts"
    blu_ray.write_bytes(m2ts(late.read_bytes()))
    cut.write_bytes(late.read_bytes()[: late.stat().st_size // 2])
    noise.write_bytes(random.Random(0).randbytes(100_000))
    for path in (late, blu_ray, cut):
        assert container_times(path).video_delay == pytest.approx(ffprobe_delay(path), abs=1e-6)
        assert container_times(path).video_delay == pytest.approx(1.0, abs=PRIMING)
    assert container_times(noise) == ContainerTimes()


def keyframed(times: list[tuple[int, int, bool]], streams: list[tuple[int, int]] = AV_TS) -> bytes:
    """An MPEG-TS file: a PAT, a PMT naming `streams`, PES packets at `times` (PID, PTS, whether it
    is marked a keyframe) in their order, null packets."""
    return pat(PMT_PID) + pmt(streams) + b"".join(pes(pid, pts, key) for pid, pts, key in times) + NULLS


def every_second(seconds: int, keys: tuple[int, ...], start: int = 0) -> list[tuple[int, int, bool]]:
    """A video frame, and a sound frame before it, each second from `start` ticks on, the frames of
    the seconds `keys` marked keyframes."""
    return [
        packet
        for n in range(seconds)
        for packet in ((AUDIO_PID, start + n * SECOND, False), (VIDEO_PID, start + n * SECOND, n in keys))
    ]


# B-frames: the first frame in the file is not the first shown
B_FRAMES = [(VIDEO_PID, 7200, True), (VIDEO_PID, 0, False), (VIDEO_PID, 3600, False)]
KEYFRAME_CASES = (  # (PES times, the seconds from the video's first frame to its second keyframe)
    (every_second(6, (0, 3)), 3.0),
    (every_second(6, (0,)), math.inf),  # it marks its first keyframe only
    (every_second(6, (1, 3)), None),  # the video's first PES packet is not marked: it marks none
    (every_second(6, ()), None),
    ([(AUDIO_PID, 0, True), *every_second(6, (0, 4), start=SECOND)[1:]], 4.0),  # the video starts late
    ([*B_FRAMES, (VIDEO_PID, 7200 + SECOND, True)], 1.08),
    ([(VIDEO_PID, WRAP - SECOND, True), (VIDEO_PID, 0, False), (VIDEO_PID, SECOND, True)], 2.0),  # times wrap
    ([(AUDIO_PID, 0, True), (AUDIO_PID, SECOND, True)], None),  # no video
)  # fmt: skip


def test_an_mpegts_files_second_keyframe_is_the_second_video_pes_packet_marked_one(tmp_path):
    """Muxers mark where a keyframe starts with the random access indicator of the first TS packet
    of its PES packet; OpenCV cannot seek before the second."""
    for i, (times, seconds) in enumerate(KEYFRAME_CASES):
        for name, data in (("clip.ts", keyframed(times)), ("clip.m2ts", m2ts(keyframed(times)))):
            (tmp_path / name).write_bytes(data)
            assert second_keyframe(tmp_path / name, until=10.0) == pytest.approx(seconds), (i, name)
    (tmp_path / "clip.mp4").write_bytes(box(b"ftyp", b"isom") + box(b"moov", mvhd(0, 1000, 12345)))
    assert second_keyframe(tmp_path / "clip.mp4", until=10.0) is None  # not told


def test_an_mpegts_files_second_keyframe_is_looked_for_up_to_the_time_asked_only(tmp_path, monkeypatch):
    path = tmp_path / "clip.ts"
    path.write_bytes(keyframed(every_second(40, (0, 30))))
    monkeypatch.setattr(transport_stream, "TS_SCAN_CHUNK", 4 * 188)  # a second's packets at a time
    assert second_keyframe(path, until=5.0) == math.inf
    assert second_keyframe(path, until=40.0) == pytest.approx(30.0)
    damaged = bytearray(path.read_bytes())
    damaged[20 * 188 : 20 * 188 + 100] = bytes(100)  # bytes garbled: found past them
    path.write_bytes(bytes(damaged))
    assert second_keyframe(path, until=40.0) == pytest.approx(30.0)


# MPEG program streams
MPEG2_PACK = b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8"  # as FFmpeg writes them
MPEG1_PACK = b"\x00\x00\x01\xba\x21\x00\x01\x00\x01\x80\x1b\x91"
SYSTEM_HEADER = b"\x00\x00\x01\xbb\x00\x06\x80\x1b\x91\x04\xe1\xff"
PROGRAM_END = b"\x00\x00\x01\xb9"
# PES stream IDs; private stream 1 (0xBD) substreams as 0xBD00 plus their IDs
PS_VIDEO, PS_AUDIO, PS_AUDIO_2, PS_PADDING = 0xE0, 0xC0, 0xC1, 0xBE
AC3, DTS, LPCM, SUBPICTURE = 0xBD80, 0xBD88, 0xBDA0, 0xBD20


def ps_pes(stream: int, pts: int | None, mpeg1: bool = False, dts: int | None = None) -> bytes:
    """A PES packet of `stream` (a stream ID, or 0xBD00 plus a private stream 1 substream ID) with an
    MPEG-2 header or an MPEG-1 one (stuffing, a buffer size, then its times), presented at `pts`
    (None: no time), decoded at `dts` when given."""
    if pts is None:
        times = b"\x0f" if mpeg1 else b"\x80\x00\x00"
    elif mpeg1:
        times = pes_time(pts, 0x3) + pes_time(dts, 0x1) if dts is not None else pes_time(pts)
        times = b"\xff\xff\x60\x2e" + times  # two stuffing bytes, the STD buffer size
    else:
        flags, fields = (
            (0xC0, pes_time(pts, 0x3) + pes_time(dts, 0x1)) if dts is not None else (0x80, pes_time(pts))
        )
        times = bytes([0x80, flags, len(fields)]) + fields
    substream = bytes([stream & 0xFF, 1, 0, 1]) if stream > 0xFF else b""  # an ID, a frame count, a pointer
    body = times + substream + b"frame"
    return b"\x00\x00\x01" + bytes([stream >> 8 or stream]) + struct.pack(">H", len(body)) + body


def mpegps(times: list[tuple[int, int | None]], mpeg1: bool = False, head: bytes = b"") -> bytes:
    """An MPEG program stream: a pack header, `head`, then a pack holding a PES packet of each
    (stream, PTS) of `times` in their order, a program end code."""
    pack = MPEG1_PACK if mpeg1 else MPEG2_PACK
    packets = [pack + ps_pes(stream, pts, mpeg1) for stream, pts in times]
    return (
        (packets[0][: len(pack)] + head + packets[0][len(pack) :] if packets else pack + head)
        + b"".join(packets[1:])
        + PROGRAM_END
    )


MPEGPS_CASES = (  # (PES times, the video's delay in seconds)
    ([(PS_AUDIO, 0), (PS_AUDIO, 1920), (PS_VIDEO, SECOND), (PS_AUDIO, 3840)], 1.0),
    ([(PS_AUDIO, SECOND), (PS_VIDEO, 3 * SECOND)], 2.0),  # times need not start at 0
    ([(PS_VIDEO, SECOND // 2), (PS_AUDIO, SECOND)], 0.0),  # the sound starts late
    # B-frames: the first frame in the file is not the first shown
    ([(PS_AUDIO, 0), (PS_VIDEO, SECOND + 7200), (PS_VIDEO, SECOND), (PS_VIDEO, SECOND + 3600)], 1.0),
    ([(PS_AUDIO, WRAP - SECOND // 2), (PS_VIDEO, SECOND // 2)], 1.0),  # times wrap around
    ([(PS_VIDEO, WRAP - SECOND // 2), (PS_AUDIO, SECOND // 2)], 0.0),
    ([(PS_VIDEO, SECOND)], 0.0),  # no sound to start after
    ([(PS_AUDIO, 0)], 0.0),
    ([(PS_AUDIO, 0), (PS_VIDEO, None), (PS_VIDEO, SECOND)], 1.0),  # a PES packet without a time
    ([(PS_AUDIO_2, 0), (PS_AUDIO, SECOND // 2), (PS_VIDEO, SECOND)], 1.0),  # the earliest sound
    # a DVD's sound, in private stream 1: AC-3, DTS, LPCM; not its subpictures, nor padding
    ([(AC3, 0), (PS_VIDEO, SECOND)], 1.0),
    ([(DTS, 0), (PS_VIDEO, SECOND)], 1.0),
    ([(LPCM, 0), (PS_VIDEO, SECOND)], 1.0),
    ([(SUBPICTURE, 0), (AC3, SECOND // 2), (PS_VIDEO, SECOND)], 0.5),
    ([(PS_PADDING, 0), (PS_VIDEO, SECOND)], 0.0),
    ([(0xBDC0, 0), (PS_AUDIO, SECOND // 2), (PS_VIDEO, SECOND)], 1.0),  # E-AC-3 (0xC0), no MPEG audio
    # the first video stream, which OpenCV plays
    ([(PS_AUDIO, 0), (0xE1, SECOND // 5), (PS_VIDEO, SECOND)], 0.2),
    ([], 0.0),
)


def test_an_mpeg_ps_video_stream_that_starts_after_the_sound_is_delayed_by_its_first_pes_times(tmp_path):
    """The first video stream's earliest time less the earliest of the video and audio streams'
    (private stream 1's substreams of sound count, not its subpictures), with MPEG-2 (a DVD's, a
    .vob) and MPEG-1 (an .mpg) pack and PES headers."""
    path = tmp_path / "clip.mpg"
    for i, (times, delay) in enumerate(MPEGPS_CASES):
        for mpeg1 in (False, True):
            path.write_bytes(mpegps(times, mpeg1))
            found = container_times(path)
            assert found == ContainerTimes(video_delay=pytest.approx(delay), counts_file_length=True), (
                i,
                mpeg1,
            )


def test_an_mpeg_ps_files_streams_are_found_however_its_packs_lie(tmp_path, monkeypatch):
    path = tmp_path / "clip.vob"
    times = [(PS_AUDIO, 0), (PS_VIDEO, SECOND)]
    whole = mpegps(times)
    stuffed = MPEG2_PACK[:-1] + b"\xfb\xff\xff\xff"  # three stuffing bytes
    junk = bytes(range(1, 256, 3))  # no start code
    files = (
        whole,
        mpegps(times, head=SYSTEM_HEADER),  # a system header after the first pack header
        (MPEG2_PACK + ps_pes(PS_AUDIO, 0))[5:] + whole,  # cut from a recording within a pack
        stuffed + ps_pes(PS_AUDIO, 0) + stuffed + ps_pes(PS_VIDEO, SECOND),
        MPEG2_PACK + ps_pes(PS_AUDIO, 0) + junk + MPEG2_PACK + ps_pes(PS_VIDEO, SECOND),  # bytes garbled
        MPEG2_PACK + ps_pes(PS_AUDIO, 0) + PROGRAM_END + MPEG2_PACK + ps_pes(PS_VIDEO, SECOND),  # VOBs joined
        MPEG1_PACK
        + ps_pes(PS_AUDIO, 0, mpeg1=True)
        + MPEG1_PACK
        + ps_pes(PS_VIDEO, SECOND, True, SECOND - 3600),
        MPEG2_PACK + ps_pes(PS_AUDIO, 0) + MPEG2_PACK + ps_pes(PS_VIDEO, SECOND, dts=SECOND - 3600),
    )
    for i, data in enumerate(files):
        path.write_bytes(data)
        assert container_times(path).video_delay == pytest.approx(1.0), i
    monkeypatch.setattr(program_stream, "PS_CHUNK", 7)  # packets read over many chunks
    for i, data in enumerate(files):
        path.write_bytes(data)
        assert container_times(path).video_delay == pytest.approx(1.0), i


def test_an_mpeg_ps_files_first_times_are_looked_for_near_its_start_only(tmp_path, monkeypatch):
    path = tmp_path / "clip.mpg"
    path.write_bytes(mpegps([(PS_AUDIO, 0)] * 30 + [(PS_VIDEO, SECOND)]))
    assert container_times(path).video_delay == pytest.approx(1.0)
    monkeypatch.setattr(program_stream, "PS_READ", 20 * len(mpegps([(PS_AUDIO, 0)])))
    assert container_times(path).video_delay == 0.0


def test_a_damaged_mpeg_ps_file_is_no_error(tmp_path):
    """A file cut anywhere, or with bytes garbled, gives the video's delay or 0: never an error."""
    path = tmp_path / "clip.mpg"
    for mpeg1 in (False, True):
        whole = mpegps([(PS_AUDIO, 0), (AC3, 0), (PS_VIDEO, SECOND), (PS_AUDIO, 1920)], mpeg1)
        assert_no_error_when_damaged(path, whole, cut_every=1, telling=(0x00, 0x01, 0xBA, 0xBD, 0xE0, 0xFF))
