"""GRID readers: both folder layouts, alignments, and the problems they report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from training.data import GRID_GRAMMAR, Clip, DataError, Word, read_align, read_grid
from training.readers import read_data

ALIGN = (
    "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 at\n35500 41000 f\n"
    "41000 47250 two\n47250 53000 now\n53000 74500 sil\n"
)


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_read_align_drops_silence_and_converts_times(tmp_path):
    words = read_align(write(tmp_path / "a.align", ALIGN))
    assert [w.text for w in words] == ["bin", "blue", "at", "f", "two", "now"]
    assert words[0].start == pytest.approx(23750 / 25000) and words[-1].end == pytest.approx(53000 / 25000)


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 100 sil\n100 200 sp\n", "empty transcript"),
        ("0 100\n", "expected 'start end word'"),
        ("a b bin\n", "not integers"),
    ],
)
def test_read_align_rejects_bad_files(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_align(write(tmp_path / "a.align", text))


def test_video_align_layout_reports_bad_clips(tmp_path):
    root = tmp_path / "s7"
    for stem in ("bbaf2n", "noalign", "empty"):
        write(root / "video" / f"{stem}.mpg")
    write(root / "align" / "bbaf2n.align", ALIGN)
    write(root / "align" / "empty.align", "0 100 sil\n")
    write(root / "video" / "notes.txt")
    clips, problems = read_grid(root)
    assert [(c.clip_id, c.speaker, c.text) for c in clips] == [("s7_bbaf2n", "s7", "bin blue at f two now")]
    assert clips[0].timed
    assert len(problems) == 2
    assert any("empty.align has an empty transcript" in p for p in problems)
    assert any("noalign.mpg: no alignment file" in p for p in problems)


def test_original_distribution_layout(tmp_path):
    for speaker in ("s1", "s2"):
        write(tmp_path / speaker / "bbaf2n.mpg")
        write(tmp_path / "alignments" / speaker / "bbaf2n.align", ALIGN)
    write(tmp_path / "s2" / "lost.mpg")
    corpus = read_data(tmp_path)
    assert corpus.kind == "grid"
    assert [(c.clip_id, c.speaker) for c in corpus.clips] == [("s1_bbaf2n", "s1"), ("s2_bbaf2n", "s2")]
    assert corpus.clips[1].video == tmp_path / "s2" / "bbaf2n.mpg"
    assert corpus.problems == (f"{tmp_path / 's2' / 'lost.mpg'}: no alignment file",)
    # one speaker's folder given alone: its alignments are found beside it
    one = read_data(tmp_path / "s1")
    assert one.kind == "grid" and [(c.clip_id, c.speaker) for c in one.clips] == [("s1_bbaf2n", "s1")]
    assert one.clips[0].words == corpus.clips[0].words


def test_a_folder_given_as_dot_reads_under_its_own_name(tmp_path, monkeypatch):
    write(tmp_path / "s3" / "video" / "bbaf2n.mpg")
    write(tmp_path / "s3" / "align" / "bbaf2n.align", ALIGN)
    write(tmp_path / "orig" / "s4" / "bbaf2n.mpg")
    write(tmp_path / "orig" / "alignments" / "s4" / "bbaf2n.align", ALIGN)
    monkeypatch.chdir(tmp_path / "s3")
    assert [c.clip_id for c in read_data(".").clips] == ["s3_bbaf2n"]
    monkeypatch.chdir(tmp_path / "s3" / "video")
    assert [c.clip_id for c in read_data("..").clips] == ["s3_bbaf2n"]
    monkeypatch.chdir(tmp_path / "orig" / "s4")
    assert [c.clip_id for c in read_data(".").clips] == ["s4_bbaf2n"]
    monkeypatch.chdir(tmp_path / "orig")  # the original layout's root: every speaker
    assert [c.clip_id for c in read_data(".").clips] == ["s4_bbaf2n"]


def test_clip_timed_needs_every_word_time():
    timed = Clip("a", Path("a.mp4"), (Word("bin", 0.1, 0.3), Word("blue", 0.3, 0.6)))
    untimed = Clip("b", Path("b.mp4"), (Word("bin", 0.1, 0.3), Word("blue", math.nan, math.nan)))
    assert timed.timed and not untimed.timed


def test_grid_grammar_matches_the_shared_alignments(grid_dir):
    clips, problems = read_grid(grid_dir)
    assert len(clips) > 800 and len(problems) < 10
    for clip in clips[::50]:
        assert [w.text in slot for w, slot in zip(clip.words, GRID_GRAMMAR, strict=True)] == [True] * 6
