import json
import shutil
import subprocess

import pytest

from core.transcripts import VIDEO_SUFFIXES, TranscriptError, is_video_file, read_references, transcript_text
from core.video import VideoFileSource


def test_a_video_is_not_a_manifest(tmp_path):
    video = tmp_path / "text.mp4"
    video.write_text("hello\n")  # read as JSON Lines it would fail on "not JSON"
    with pytest.raises(TranscriptError, match="expected a GRID folder or a manifest, not a video"):
        read_references(video)


def test_grid_references_in_either_layout_or_one_speaker_of_the_original(tmp_path):
    align = "0 20000 sil\n20000 30000 bin\n30000 40000 blue\n"
    for folder in ("new/video", "new/align", "orig/s1", "orig/alignments/s1"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "new/video/a.mp4").write_bytes(b"")
    (tmp_path / "new/align/a.align").write_text(align)
    (tmp_path / "orig/s1/b.mpg").write_bytes(b"")
    (tmp_path / "orig/alignments/s1/b.align").write_text(align)
    for data, video in (("new", "new/video/a.mp4"), ("orig", "orig/s1/b.mpg"), ("orig/s1", "orig/s1/b.mpg")):
        refs, problems = read_references(tmp_path / data)
        assert [(r.video, r.text) for r in refs] == [(tmp_path / video, "bin blue")] and problems == []
    with pytest.raises(TranscriptError, match="or the original sN/ folders and alignments/sN/"):
        read_references(tmp_path / "orig/alignments")


def test_a_grid_folder_of_other_containers_is_read(tmp_path):
    align = "0 20000 sil\n20000 30000 bin\n30000 40000 blue\n"
    for folder in ("video", "align"):
        (tmp_path / folder).mkdir()
    for stem, suffix in (("a", ".m4v"), ("b", ".MTS"), ("c", ".3gp")):
        (tmp_path / "video" / f"{stem}{suffix}").write_bytes((b"G" + bytes(187)) * 8)  # b.MTS: TS packets
        (tmp_path / "align" / f"{stem}.align").write_text(align)
    (tmp_path / "video" / "notes.txt").write_text("not a video\n")  # passed over, unsaid
    refs, problems = read_references(tmp_path)
    assert [r.video.name for r in refs] == ["a.m4v", "b.MTS", "c.3gp"] and problems == []


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize("suffix", VIDEO_SUFFIXES)
def test_every_video_suffix_is_a_container_the_app_reads(grid_dir, tmp_path, suffix):
    """A folder walk takes files of these suffixes for videos: each must be one OpenCV reads."""
    video = tmp_path / f"clip{suffix}"
    codec = ["-c:v", "mpeg4"] if suffix in (".3gp", ".3g2") else []  # not H.263's few frame sizes
    clip = grid_dir / "video" / "bbaf2n.mp4"
    command = ["ffmpeg", "-loglevel", "error", "-i", str(clip), "-t", "0.4", "-an", *codec, str(video)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    source = VideoFileSource(video)
    frames = list(source)
    assert len(frames) == 10 and source.fps == pytest.approx(25)
    assert frames[0].image.shape == (288, 360, 3) and source.ended_early is None


def test_a_manifest_is_read(tmp_path):
    (tmp_path / "set.jsonl").write_text('{"video": "a.mp4", "transcript": "Bin  blue"}\n')
    refs, problems = read_references(tmp_path / "set.jsonl")
    assert [(r.video, r.text) for r in refs] == [(tmp_path / "a.mp4", "bin blue")] and problems == []


def test_a_manifest_s_start_and_end_say_which_seconds_are_meant(tmp_path):
    (tmp_path / "set.csv").write_text(
        "video,transcript,start,end\na.mp4,bin blue,0.5,1.3\na.mp4,two now,1.55,\nb.mp4,set red,,\n"
    )
    refs, problems = read_references(tmp_path / "set.csv")
    assert [(r.text, r.start, r.end) for r in refs] == [
        ("bin blue", 0.5, 1.3),
        ("two now", 1.55, None),
        ("set red", 0.0, None),
    ]
    assert [str(r) for r in refs] == [
        f"{tmp_path / 'a.mp4'} (0.50 s to 1.30 s)",
        f"{tmp_path / 'a.mp4'} (1.55 s to the end)",
        str(tmp_path / "b.mp4"),
    ]
    assert problems == []


def test_a_transcript_is_read_as_training_reads_it():
    from training.readers import transcript_words

    free = "<i>Bin Blue,</i> at F two now! [music] (laughs) it's &amp; {\\an8}done"
    assert transcript_text(free) == "bin blue at f two now it's done"
    assert " ".join(w.text for w in transcript_words(free)) == transcript_text(free)


def test_rows_without_words_or_with_bad_times_are_skipped_with_one_line_each(tmp_path):
    rows = [
        {"video": "a.mp4", "transcript": "Bin Blue, at F two now!"},
        {"video": "b.mp4", "transcript": ""},
        {"video": "c.mp4", "transcript": " ... "},
        {"video": "d.mp4"},
        {"video": "e.mp4", "transcript": "x", "start": "soon"},
        {"video": "f.mp4", "transcript": "x", "start": 2, "end": 1},
        {"video": "", "transcript": "x"},
        {"video": "g.mp4", "transcript": ["bin", "green"]},
        {"video": "h.mp4", "transcript": 5},
        {"video": "i.mp4", "text": False},
    ]
    (tmp_path / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refs, problems = read_references(tmp_path / "set.jsonl")
    assert [(r.video.name, r.text) for r in refs] == [("a.mp4", "bin blue at f two now")]
    assert len(problems) == 9 and all("\n" not in p and p.endswith("; skipped") for p in problems)
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"manifest {tmp_path / 'set.jsonl'} line {n}" for n in range(2, 11)
    ]
    assert "g.mp4: the transcript is not text but a JSON list" in problems[6]
    assert "h.mp4: the transcript is not text but a JSON int" in problems[7]
    assert "i.mp4: the transcript is not text but a JSON bool" in problems[8]
    assert "b.mp4: empty transcript" in problems[0] and "d.mp4: empty transcript" in problems[2]
    assert (
        "'soon' is not a number of seconds" in problems[3] and "end 1.0 is not after start 2" in problems[4]
    )


def test_a_row_with_no_video_or_not_an_object_is_skipped_with_one_line(tmp_path):
    manifest = tmp_path / "set.jsonl"
    rows = ['{"video": "a.mp4", "transcript": "bin blue"}', '{"transcript": "no video key"}', "[1, 2]"]
    rows += ['{"video": "b.mp4", "transcript": "set red', '{"video": "c.mp4", "transcript": "at f"}']
    manifest.write_text("\n".join(rows) + "\n")
    refs, problems = read_references(manifest)
    assert [r.video for r in refs] == [tmp_path / "a.mp4", tmp_path / "c.mp4"]  # a bad line is skipped too
    assert problems == [
        f"manifest {manifest} line 2: no video; skipped",
        f"manifest {manifest} line 3: not a JSON object; skipped",
        f"manifest {manifest} line 4: not JSON (Invalid control character at); skipped",
    ]


def test_a_manifest_with_nothing_to_evaluate_is_an_error(tmp_path):
    (tmp_path / "empty.csv").write_text("video,transcript\na.mp4,\n")
    with pytest.raises(TranscriptError, match=r"lists no video to evaluate \(.*a.mp4: empty transcript"):
        read_references(tmp_path / "empty.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TranscriptError, match="other.csv needs a header line with a 'video' column$"):
        read_references(tmp_path / "other.csv")


def test_a_transport_stream_is_told_from_a_typescript_file_by_its_bytes(tmp_path):
    packet = b"G" + bytes(187)
    files = {
        "video.ts": packet * 8,
        "camera.MTS": (b"\0\0\0\0" + packet) * 8,  # M2TS: a time stamp before each packet
        "short.ts": packet * 2,  # too short to tell
        "app.ts": b"import { x } from './x';\n" * 80,
        "Gconfig.mts": b"Gexport default {};\n" * 80,
        "talk.mp4": b"anything",  # its suffix is no other file's: not looked into
        "notes.txt": packet * 8,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    found = sorted(name for name in files if is_video_file(tmp_path / name))
    assert found == ["camera.MTS", "talk.mp4", "video.ts"]
