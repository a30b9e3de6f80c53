"""What containers say of themselves: an MP4's played length (mvhd) and a Matroska file cut short."""

from __future__ import annotations

import struct

import pytest

from core.containers import matroska_cut, mp4_played_seconds, mp4_tracks, mp4_video_delay


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
    assert mp4_played_seconds(path) == pytest.approx(12.345)


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
        assert mp4_video_delay(path) == pytest.approx(delay)
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
        assert mp4_played_seconds(tmp_path / name) is None, name


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
        assert matroska_cut(path) is cut
