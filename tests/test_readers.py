"""Data readers: manifests (CSV, JSONL), subtitle cues (SRT, WebVTT) and layout detection."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from core.transcripts import transcript_text
from training.data import DataError
from training.readers import (
    Cue,
    detect_kind,
    parse_time,
    read_cues,
    read_data,
    read_manifest,
    transcript_words,
)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_transcript_words_normalise_and_carry_no_times():
    words = transcript_words("<i>Hello,</i> WORLD! [music] (laughs) it's {\\an8}fine &amp; done")
    assert [w.text for w in words] == ["hello", "world", "it's", "fine", "done"]
    assert all(math.isnan(w.start) and math.isnan(w.end) for w in words)


def test_csv_manifest(tmp_path):
    touch(tmp_path / "videos" / "a.mp4")
    touch(tmp_path / "videos" / "b.mp4")
    (tmp_path / "list.csv").write_text(
        "video,transcript,speaker,start,end\n"
        "videos/a.mp4,Hello there,alice,,\n"
        "videos/b.mp4,General Kenobi,bob,1.5,3.25\n"
        "videos/b.mp4,again,bob,4,5\n"
        "videos/missing.mp4,lost,bob,,\n"
        "videos/a.mp4,  ...  ,alice,,\n"
        "videos/a.mp4,late,alice,5,4\n"
    )
    clips, problems = read_manifest(tmp_path / "list.csv")
    assert [c.clip_id for c in clips] == ["alice_a", "bob_b_0001500", "bob_b_0004000"]
    assert clips[0].text == "hello there" and clips[0].end is None and not clips[0].timed
    assert (clips[1].start, clips[1].end, clips[1].speaker) == (1.5, 3.25, "bob")
    assert len(problems) == 3
    assert "missing.mp4 does not exist" in problems[0]
    assert "empty transcript" in problems[1]
    assert "not after start" in problems[2]
    assert all("list.csv line" in p for p in problems)


def test_jsonl_manifest_with_ids_made_unique(tmp_path):
    touch(tmp_path / "a.mp4")
    rows = [
        {"video": "a.mp4", "text": "one", "id": "x"},
        {"video": "a.mp4", "text": "two", "id": "x"},
        {"video": "a.mp4", "transcript": "three", "start": "bad"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    clips, problems = read_manifest(tmp_path / "m.jsonl")
    assert [(c.clip_id, c.text) for c in clips] == [("x", "one"), ("x-1", "two")]
    assert len(problems) == 1 and "not a number of seconds" in problems[0]


def test_a_manifest_is_read_as_eval_reads_it(tmp_path):
    from core.transcripts import read_references

    touch(tmp_path / "a.mp4")
    rows = ['{"video": "a.mp4", "transcript": "Bin blue!"}', '{"transcript": "no video key"}', "[1, 2]"]
    rows += ['{"video": "a.mp4", "text": "at f", "start": 1, "end": 0.5}', '{"video": "a.mp4", "text": ""}']
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    clips, problems = read_manifest(manifest)
    refs, skipped = read_references(manifest)
    assert [(c.video, c.text, c.start, c.end) for c in clips] == [
        (r.video, r.text, r.start, r.end) for r in refs
    ]
    assert len(problems) == 4 and [f"{p}; skipped" for p in problems] == skipped


def test_manifest_without_video_column_is_an_error(tmp_path):
    (tmp_path / "m.csv").write_text("path,text\na.mp4,hi\n")
    with pytest.raises(DataError, match="'video' column"):
        read_manifest(tmp_path / "m.csv")


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("00:00:01,500", 1.5),
        ("01:02:03.250", 3723.25),
        ("02:03.5", 123.5),
        ("12:34", 754.0),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


def test_srt_cues(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text(
        "1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> world\r\n\r\n"
        "2\r\n00:00:03,000 --> 00:00:04,000\r\nsecond line\r\ncontinues\r\n\r\n"
        "3\r\n00:00:05,000 --> 00:00:04,000\r\nbackwards\r\n\r\n"
        "4\r\n00:00:xx,000 --> 00:00:07,000\r\nbroken\r\n"
    )
    cues, problems = read_cues(srt)
    assert cues == [Cue(1.0, 2.5, "<i>Hello</i> world"), Cue(3.0, 4.0, "second line continues")]
    assert len(problems) == 2 and "ends before it starts" in problems[0] and "bad time stamp" in problems[1]


def test_vtt_cues_skip_header_notes_and_settings(tmp_path):
    vtt = tmp_path / "talk.vtt"
    vtt.write_text(
        "WEBVTT - a talk\n\nNOTE written by hand\n\nSTYLE\n::cue { color: red }\n\n"
        "intro\n00:01.000 --> 00:02.000 align:start position:10%\n<v Roger>Good evening\n\n"
        "00:00:03.000 --> 00:00:04.500\n[applause]\n"
    )
    cues, problems = read_cues(vtt)
    assert cues == [Cue(1.0, 2.0, "<v Roger>Good evening"), Cue(3.0, 4.5, "[applause]")]  # no word times
    assert problems == []


# YouTube's automatic captions as yt-dlp saves them: each cue shows the line before again above its
# own (word-timed) line, and a 10 ms cue scrolls it up
YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.160 --> 00:00:02.270 align:start position:0%
_
bin<00:00:00.560><c> blue</c><00:00:00.880><c> at</c><00:00:01.040><c> f</c>

00:00:02.270 --> 00:00:02.280 align:start position:0%
bin blue at f
_

00:00:02.280 --> 00:00:04.550 align:start position:0%
bin blue at f
two<00:00:02.600><c> now</c>

00:00:04.550 --> 00:00:04.560 align:start position:0%
two now
_

00:00:04.560 --> 00:00:06.000 align:start position:0%
two now
place<00:00:05.000><c> red</c>
""".replace("_", " ")  # lines of one space


def test_roll_up_captions_give_each_line_once(tmp_path, caplog):
    vtt = tmp_path / "talk.en.vtt"
    vtt.write_text(YOUTUBE_VTT)
    with caplog.at_level(logging.INFO, logger="lipreader"):
        cues, problems = read_cues(vtt)
    assert [transcript_text(c.text) for c in cues] == ["bin blue at f", "two now", "place red"]
    times = [t for c in cues for t in (c.start, c.end)]
    assert times == pytest.approx([0.16, 2.27, 2.28, 4.55, 4.56, 6.0])
    assert problems == [] and "roll-up captions (5 cues)" in caplog.text and "overlap" not in caplog.text


def stamp(seconds: float) -> str:
    """A WebVTT time stamp: HH:MM:SS.mmm."""
    minutes, millis = divmod(round(seconds * 1000), 60_000)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def youtube_vtt(lines: list[tuple[list[tuple[str, float]], float]], repeat_stamps: bool = False) -> str:
    """A WebVTT file as yt-dlp saves YouTube's automatic captions, of `lines` of (word, start) said
    until the line's end (seconds): per line a cue from its first word to its end showing the line
    before again above it (as plain text, or with its word times when `repeat_stamps`) and its own
    words with their start times inline, then a 10 ms cue that scrolls it up."""

    def timed(words: list[tuple[str, float]]) -> str:
        return words[0][0] + "".join(f"<{stamp(t)}><c> {w}</c>" for w, t in words[1:])

    out, before = ["WEBVTT", "Kind: captions", "Language: en", ""], " "
    for words, end in lines:
        settings = " align:start position:0%"
        out += [f"{stamp(words[0][1])} --> {stamp(end)}{settings}", before, timed(words), ""]
        shown = timed(words) if repeat_stamps else " ".join(w for w, _ in words)
        out += [f"{stamp(end)} --> {stamp(end + 0.01)}{settings}", shown, " ", ""]
        before = shown
    return "\n".join(out)


SAID = [  # (words with their start times, end of the line), seconds
    ([("bin", 1.0), ("blue", 1.18), ("at", 1.42), ("f", 1.7)], 2.2),
    ([("two", 2.21), ("now", 2.5)], 3.0),
    ([("place", 3.5), ("red", 3.8)], 4.4),
]


@pytest.mark.parametrize("repeat_stamps", [False, True])
def test_youtube_word_times_are_the_clips_alignment(tmp_path, caplog, repeat_stamps):
    touch(tmp_path / "talk.mp4")
    (tmp_path / "talk.en.vtt").write_text(youtube_vtt(SAID, repeat_stamps))
    with caplog.at_level(logging.INFO, logger="lipreader"):
        corpus = read_data(tmp_path)
    assert corpus.problems == () and "roll-up captions (6 cues)" in caplog.text
    assert "cannot be used" not in caplog.text  # the word times of a line shown again are its cue's
    clips = corpus.clips
    assert [(c.start, c.end) for c in clips] == [(1.0, 2.2), (2.21, 3.0), (3.5, 4.4)]
    assert all(c.timed for c in clips)
    # as GRID's alignments: seconds from the clip's start, a word ending where the next starts, the
    # last at its cue's end
    got = [[(w.text, w.start, w.end) for w in c.words] for c in clips]
    assert got == [
        [("bin", 0.0, 0.18), ("blue", 0.18, 0.42), ("at", 0.42, 0.7), ("f", 0.7, 1.2)],
        [("two", 0.0, 0.29), ("now", 0.29, 0.79)],
        [("place", 0.0, 0.3), ("red", 0.3, 0.9)],
    ]


def test_word_times_that_are_not_increasing_are_dropped_with_one_warning(tmp_path, caplog):
    touch(tmp_path / "talk.mp4")
    (tmp_path / "talk.vtt").write_text(
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\nbin<00:00:01.300><c> blue</c>\n\n"
        "00:00:02.000 --> 00:00:03.000\nat<00:00:02.600><c> f</c><00:00:02.400><c> two</c>\n\n"
        "00:00:03.000 --> 00:00:04.000\nnow<00:00:04.500><c> please</c>\n\n"  # past the cue's end
        "00:00:04.000 --> 00:00:05.000\nset<00:00:04.500><c> red</c><00:00:04.500><c> by</c>\n"
    )
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        corpus = read_data(tmp_path)
    assert [c.text for c in corpus.clips] == ["bin blue", "at f two", "now please", "set red by"]
    assert [c.timed for c in corpus.clips] == [True, False, False, False]
    assert all(math.isnan(w.start) for c in corpus.clips[1:] for w in c.words)
    assert caplog.text.count("cannot be used") == 1
    first = "the cue at 2.000 s: its word times are not increasing (2.600 s, then 2.400 s)"
    assert f"the word times of 3 of its cues cannot be used (first {first})" in caplog.text


@pytest.mark.parametrize(
    "line, why",
    [
        ("bin blue<00:00:01.500><c> at</c>", "2 words ('bin blue') share one time"),
        ("bin<00:00:01.200><c> [Mu</c><00:00:01.500><c>sic]</c><00:00:01.700><c> blue</c>", "between words"),
    ],
)
def test_word_times_that_do_not_time_each_word_are_dropped(tmp_path, caplog, line, why):
    vtt = tmp_path / "talk.vtt"
    vtt.write_text(f"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n{line}\n")
    cues, _ = read_cues(vtt)
    assert cues[0].words is None and why in caplog.text


def test_srt_and_plain_webvtt_cues_carry_no_word_times(tmp_path, caplog):
    srt = tmp_path / "talk.srt"  # SRT has no time stamps in its text: markup, read as before
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nbin<00:00:01.300><c> blue</c>\n")
    vtt = tmp_path / "plain.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<c.yellow>bin</c> blue\n")
    cues = read_cues(srt)[0] + read_cues(vtt)[0]
    assert [(c.text, c.words) for c in cues] == [
        ("bin<00:00:01.300><c> blue</c>", None),
        ("<c.yellow>bin</c> blue", None),
    ]
    assert [transcript_text(c.text) for c in cues] == ["bin blue", "bin blue"] and caplog.text == ""


def test_roll_up_of_three_lines_even_after_a_pause(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nOne\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\none\nTwo\n\n"
        "3\n00:00:03,000 --> 00:00:04,000\nOne\ntwo\nthree\n\n"
        "4\n00:00:04,000 --> 00:00:05,000\ntwo\nthree\nfour\n\n"
        "5\n00:00:07,000 --> 00:00:08,000\nthree\nfour\nfive\n"  # after a pause
    )
    cues, _ = read_cues(srt)
    assert [transcript_text(c.text) for c in cues] == ["one", "two", "three", "four", "five"]


def test_in_ordinary_subtitles_a_line_said_again_stays(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nNo.\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\nNo!\n\n"
        "3\n00:00:03,000 --> 00:00:04,000\nI said\nno\n\n"
        "4\n00:00:04,000 --> 00:00:05,000\nbin blue\n\n"
        "5\n00:00:05,000 --> 00:00:06,000\nat f two\n"
    )
    cues, _ = read_cues(srt)
    assert [transcript_text(c.text) for c in cues] == ["no", "no", "i said no", "bin blue", "at f two"]


@pytest.mark.parametrize(
    "text",
    [
        "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nHello there\n",
        "WEBVTT\n\n00:01.000 --> 00:02.000\n\n00:03.000 --> 00:04.000\nHello there\n",
        "1\n00:00:01,000 --> 00:00:02,000\n \n\n\n2\n00:00:03,000 --> 00:00:04,000\nHello there\n",
    ],
)
def test_an_empty_cue_stays_apart_from_the_next(tmp_path, text):
    subtitles = tmp_path / "talk.srt"
    subtitles.write_text(text)
    cues, problems = read_cues(subtitles)
    assert cues == [Cue(1.0, 2.0, ""), Cue(3.0, 4.0, "Hello there")] and problems == []


def test_overlapping_cues_are_warned_of(tmp_path, caplog):
    srt = tmp_path / "talk.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nbin blue\n\n"
        "2\n00:00:02,500 --> 00:00:04,000\nat f two\n\n"
        "3\n00:00:03,980 --> 00:00:05,000\nnow\n"  # 20 ms: rounding, not an overlap
    )
    cues, _ = read_cues(srt)
    assert len(cues) == 3
    assert "1 of its cues start before the cue before ends (by up to 0.50 s)" in caplog.text


def test_subtitled_videos_give_one_clip_per_cue(tmp_path):
    touch(tmp_path / "anna" / "talk.mp4")
    (tmp_path / "anna" / "talk.en.vtt").write_text(
        "WEBVTT\n\n00:01.000 --> 00:02.000\nGood evening\n\n00:03.000 --> 00:04.500\n[applause]\n"
    )
    touch(tmp_path / "intro.mkv")
    (tmp_path / "intro.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nHi\n")
    touch(tmp_path / "nosubs.mp4")
    corpus = read_data(tmp_path)
    assert corpus.kind == "subtitles"
    got = [(c.clip_id, c.speaker, c.start, c.end, c.text) for c in corpus.clips]
    assert got == [("anna_talk_0001", "anna", 1.0, 2.0, "good evening"), ("intro_0001", "", 0.5, 1.0, "hi")]
    assert len(corpus.problems) == 2
    assert any("cue 2 has an empty transcript" in p for p in corpus.problems)
    assert any("nosubs.mp4: no subtitle file" in p for p in corpus.problems)


def test_subtitled_videos_in_other_containers_are_read(tmp_path):
    for name in ("news.ts", "phone.3gp", "talk.m4v"):
        touch(tmp_path / name, (b"G" + bytes(187)) * 8)  # a transport stream's packets (news.ts)
        (tmp_path / name).with_suffix(".srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nHi\n")
    corpus = read_data(tmp_path)
    assert [c.clip_id for c in corpus.clips] == ["news_0001", "phone_0001", "talk_0001"]
    assert not corpus.problems


def test_a_transcript_the_model_cannot_write_is_skipped_with_its_characters_named(tmp_path):
    touch(tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text(
        "1\n00:00:00,000 --> 00:00:01,000\nBin blue at F 2, now!\n\n"
        "2\n00:00:01,000 --> 00:00:02,000\nplace café naïve\n\n"
        "3\n00:00:02,000 --> 00:00:03,000\nDon't go\n"
    )
    corpus = read_data(tmp_path)
    assert [c.text for c in corpus.clips] == ["don't go"]  # an apostrophe is left out quietly
    assert len(corpus.problems) == 2
    assert (
        "'bin blue at f 2 now' has characters the model cannot write: 2 (write numbers as words)"
        in (corpus.problems[0])
    )
    assert corpus.problems[1].endswith("cannot write: é ï") and "talk_0002" in corpus.problems[1]


def test_grid_speakers_each_in_a_folder_with_video_and_align(tmp_path):
    for speaker, stem in (("s1", "bbaf2n"), ("s2", "lgaz8p")):
        touch(tmp_path / "multi" / speaker / "video" / f"{stem}.mp4")
        (tmp_path / "multi" / speaker / "align").mkdir()
        (tmp_path / "multi" / speaker / "align" / f"{stem}.align").write_text("0 1000 sil\n1000 9000 bin\n")
    corpus = read_data(tmp_path / "multi")
    assert corpus.kind == "grid" and corpus.problems == ()
    assert [(c.clip_id, c.speaker, c.text) for c in corpus.clips] == [
        ("s1_bbaf2n", "s1", "bin"),
        ("s2_lgaz8p", "s2", "bin"),
    ]


def test_of_several_subtitle_languages_english_is_read_with_a_warning(tmp_path, caplog):
    cue = "1\n00:00:00,500 --> 00:00:01,000\n{}\n"
    touch(tmp_path / "talk.mp4")
    (tmp_path / "talk.fr.srt").write_text(cue.format("bonjour"))
    (tmp_path / "talk.en.srt").write_text(cue.format("hello"))
    touch(tmp_path / "lecture.mp4")  # lecture.part2.srt is another video's, not a language of this one
    touch(tmp_path / "lecture.part2.mp4")
    (tmp_path / "lecture.part2.srt").write_text(cue.format("part two"))
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        corpus = read_data(tmp_path)
    assert [(c.video.name, c.text) for c in corpus.clips] == [
        ("lecture.part2.mp4", "part two"),
        ("talk.mp4", "hello"),
    ]
    assert any("lecture.mp4: no subtitle file" in p for p in corpus.problems)
    assert "2 subtitle files (talk.en.srt, talk.fr.srt): read talk.en.srt" in caplog.text


def test_detect_kind(tmp_path):
    grid = tmp_path / "grid"
    (grid / "video").mkdir(parents=True)
    (grid / "align").mkdir()
    assert detect_kind(grid) == "grid"
    original = tmp_path / "original"
    (original / "alignments" / "s1").mkdir(parents=True)
    assert detect_kind(original) == "grid"
    touch(tmp_path / "m" / "manifest.jsonl", b"")
    assert detect_kind(tmp_path / "m") == "manifest"
    assert detect_kind(tmp_path / "m" / "manifest.jsonl") == "manifest"
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataError,
        match=r"no GRID layout \(video/ and align/, a folder per speaker holding them, or the original",
    ):
        read_data(tmp_path / "empty")
    with pytest.raises(DataError, match="nothing.csv: no such file or folder"):
        read_data(tmp_path / "nothing.csv")
    touch(tmp_path / "notes.txt", b"x")
    with pytest.raises(DataError, match="neither a folder"):
        read_data(tmp_path / "notes.txt")
