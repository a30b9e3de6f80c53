"""Subtitle cues and files from timed words."""

import os
import stat

import pytest

from core import subtitles
from core.streaming import CaptionWord
from core.subtitles import cues, to_srt, to_txt, to_vtt, write_atomic, write_subtitles


def words(text: str, start: float = 0.0, step: float = 0.4) -> list[CaptionWord]:
    return [
        CaptionWord(w, start + i * step, start + i * step + 0.3, True) for i, w in enumerate(text.split())
    ]


TWO_SENTENCES = words("bin blue at f two now") + words("set red by z nine soon", start=5.0)


def test_cues_split_on_pauses_and_length():
    found = cues(TWO_SENTENCES)
    assert [c.text for c in found] == ["bin blue at f two now", "set red by z nine soon"]
    assert found[0].start == 0.0 and found[0].end == pytest.approx(2.3)
    long = cues(words(" ".join(["again"] * 20)))
    assert all(len(c.words) <= subtitles.MAX_WORDS for c in long)
    assert " ".join(c.text for c in long) == " ".join(["again"] * 20)
    assert all(c.end - c.start <= subtitles.MAX_SECONDS for c in long)


def test_short_cue_stays_a_while_but_not_over_the_next():
    found = cues([CaptionWord("a", 1.0, 1.1, True), CaptionWord("b", 2.5, 2.6, True)], max_gap=1.0)
    assert found[0].end == pytest.approx(1.0 + subtitles.MIN_DURATION)
    found = cues([CaptionWord("a", 1.0, 1.1, True), CaptionWord("b", 1.5, 1.6, True)], max_words=1)
    assert found[0].end == pytest.approx(1.5)


def test_srt():
    assert to_srt(TWO_SENTENCES) == (
        "1\n00:00:00,000 --> 00:00:02,300\nbin blue at f two now\n\n"
        "2\n00:00:05,000 --> 00:00:07,300\nset red by z nine soon\n"
    )


def test_vtt_has_word_timings():
    text = to_vtt(words("bin blue at", start=3661.0))
    assert text.startswith("WEBVTT\n\n01:01:01.000 --> 01:01:02.100\n")
    assert "bin <01:01:01.400>blue <01:01:01.800>at" in text


def test_txt_one_line_per_cue():
    assert to_txt(TWO_SENTENCES) == "bin blue at f two now\nset red by z nine soon\n"
    assert to_txt([]) == "" and to_srt([]) == "" and to_vtt([]) == "WEBVTT\n"


def test_write_atomic_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "clip.srt"
    write_atomic(path, "one")
    assert path.read_text() == "one"
    assert stat.S_IMODE(os.stat(path).st_mode) == subtitles.FILE_MODE
    with pytest.raises(FileExistsError, match="already exists"):
        write_atomic(path, "two")
    assert path.read_text() == "one"
    write_atomic(path, "two", overwrite=True)
    assert path.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.srt"]  # no temporary left


def test_write_atomic_into_a_missing_folder(tmp_path):
    with pytest.raises(OSError):
        write_atomic(tmp_path / "nope" / "clip.srt", "x")


def test_write_subtitles_picks_the_format_from_the_suffix_or_the_argument(tmp_path):
    assert write_subtitles(tmp_path / "a.srt", TWO_SENTENCES).read_text().startswith("1\n00:00:")
    assert write_subtitles(tmp_path / "a.out", TWO_SENTENCES, "vtt").read_text().startswith("WEBVTT")
    with pytest.raises(ValueError, match="unknown format 'doc'"):
        write_subtitles(tmp_path / "a.doc", TWO_SENTENCES)
    with pytest.raises(FileExistsError):
        write_subtitles(tmp_path / "a.srt", TWO_SENTENCES)
    assert not (tmp_path / "a.doc").exists()


def test_cues_end_where_sentences_end_when_the_pauses_between_them_are_short():
    """Four GRID sentences back to back, 0.96 s apart (under MAX_GAP): a cue per sentence, not
    seven words at a time across them."""
    sentences = (
        "bin blue at f two now",
        "bin blue at f three soon",
        "bin blue at f five again",
        "set red by z nine soon",
    )
    timed, start = [], 0.76
    for sentence in sentences:
        timed += words(sentence, start=start, step=0.3)  # 0.3 s per word, no pause inside
        start = timed[-1].end + 0.96
    assert [c.text for c in cues(timed)] == list(sentences)
    assert to_txt(timed) == "".join(f"{s}\n" for s in sentences)  # the cues' lines, as SRT shows them


def test_a_long_stretch_is_cut_at_its_longest_pause():
    timed = words("one two three four", step=0.4) + words("five six seven eight nine", start=1.9, step=0.4)
    assert [c.text for c in cues(timed)] == ["one two three four", "five six seven eight nine"]
    even = cues(words(" ".join(["again"] * 8)))  # no pause at all: halves, not seven and one
    assert [len(c.words) for c in even] == [4, 4]
