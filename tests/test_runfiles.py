"""Files a run writes: the validation manifest reads back, through `lipreader eval`'s reader, as the
clips that were held out."""

from __future__ import annotations

import math

from core.transcripts import read_manifest
from training.data import Clip, Word
from training.runfiles import write_val_manifest

UNTIMED = math.nan  # subtitle cues and manifest rows give a clip's words without times


def said(text: str) -> tuple[Word, ...]:
    return tuple(Word(w, UNTIMED, UNTIMED) for w in text.split())


def test_the_validation_manifest_keeps_the_span_of_clips_cut_from_longer_videos(tmp_path):
    (tmp_path / "run").mkdir()
    talk = tmp_path / "subs" / "talk.mp4"  # three subtitle cues, the last until the end of the video
    clips = [
        Clip("talk_0001", talk, said("bin blue at f two now"), start=0.0, end=3.0),
        Clip("talk_0002", talk, said("set red by a one soon"), start=3.04, end=6.125),
        Clip("talk_0003", talk, said("lay green in z nine"), start=6.125),
        Clip("whole", tmp_path / "videos" / "whole clip.mp4", said("place white with q eight")),
    ]
    write_val_manifest(clips, tmp_path / "run" / "val.csv")
    refs, problems = read_manifest(tmp_path / "run" / "val.csv")
    assert not problems
    assert [(r.video.resolve(), r.text, r.start, r.end) for r in refs] == [
        (c.video.resolve(), c.text, c.start, c.end) for c in clips
    ]


def test_a_validation_manifest_of_whole_videos_has_no_times(tmp_path):
    clips = [Clip("s1_bbaf2n", tmp_path / "video" / "bbaf2n.mp4", said("bin blue at f two now"))]
    write_val_manifest(clips, tmp_path / "val.csv")
    assert (tmp_path / "val.csv").read_text().splitlines() == [
        "video,transcript",
        "video/bbaf2n.mp4,bin blue at f two now",
    ]
