import pytest

from core.transcripts import TranscriptError, read_references


def test_a_video_is_not_a_manifest(tmp_path):
    video = tmp_path / "text.mp4"
    video.write_text("hello\n")  # read as JSON Lines it would fail on "not JSON"
    with pytest.raises(TranscriptError, match="expected a GRID folder or a manifest, not a video"):
        read_references(video)


def test_a_manifest_is_read(tmp_path):
    (tmp_path / "set.jsonl").write_text('{"video": "a.mp4", "transcript": "Bin  blue"}\n')
    refs, problems = read_references(tmp_path / "set.jsonl")
    assert [(r.video, r.text) for r in refs] == [(tmp_path / "a.mp4", "bin blue")] and problems == []
