"""core.recording: the sentences to read, the check of a take, takes and their manifest on disk."""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import recording
from core.frontend import MIN_FACE_RATIO
from core.recording import (
    LEFTOVER_AGE_S,
    MANIFEST,
    MAX_TAKE_FRAMES,
    MAX_TAKE_SIDE,
    TEMP_SUFFIX,
    Take,
    TakeRecorder,
    check_take,
    folder_takes,
    next_take_name,
    prompt_sentences,
    sweep_leftovers,
)
from core.transcripts import GRID_GRAMMAR, ctc_frames
from core.types import Frame
from core.video import VideoFileSource

SENTENCE = "bin blue at f two now"  # 21 letters and spaces, none doubled


def frames(n: int, seed: int = 0, size: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    """`n` BGR frames of smooth noise, each unlike the one before."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (n, size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return [np.kron(s, np.ones((8, 8, 1), np.uint8)) for s in small]


def record(folder: Path, transcript: str, n: int, seed: int = 0) -> Take:
    recorder = TakeRecorder(folder, transcript)
    for image in frames(n, seed):
        recorder.add(image)
    return recorder.keep()


def manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def read_back(path: Path) -> tuple[VideoFileSource, list[Frame]]:
    source = VideoFileSource(path)
    return source, [f for f in source if isinstance(f, Frame)]


def test_prompts_follow_the_grammar_and_cover_every_word_in_the_first_25():
    sentences = prompt_sentences(25, seed=7)
    for sentence in sentences:
        words = sentence.split()
        assert len(words) == len(GRID_GRAMMAR)
        assert all(w in slot for w, slot in zip(words, GRID_GRAMMAR, strict=True))
    said = {w for s in sentences for w in s.split()}
    assert said == {w for slot in GRID_GRAMMAR for w in slot}  # 25 letters: the fewest sentences that can
    # every command, colour, preposition and adverb in the first 4, every digit in the first 10
    for position, first in ((0, 4), (1, 4), (2, 4), (4, 10), (5, 4)):
        assert {s.split()[position] for s in sentences[:first]} == set(GRID_GRAMMAR[position])


def test_prompts_stay_balanced_distinct_and_deterministic():
    sentences = prompt_sentences(200, seed=1)
    assert len(set(sentences)) == 200
    for position, slot in enumerate(GRID_GRAMMAR):
        counts = Counter(s.split()[position] for s in sentences)
        assert set(counts) == set(slot) and max(counts.values()) - min(counts.values()) <= 1
    assert prompt_sentences(200, seed=1) == sentences
    assert prompt_sentences(30, seed=2) != sentences[:30]
    assert prompt_sentences(0, seed=1) == []
    with pytest.raises(ValueError):
        prompt_sentences(-1, seed=1)


def test_check_refuses_a_take_for_what_training_would_leave_it_out_for():
    assert check_take(SENTENCE, [True] * 50) is None
    assert "Nothing was recorded" in check_take(SENTENCE, [])
    seen = [True] * 40 + [False] * 10  # 80 %
    assert "found on only 80% of the frames" in check_take(SENTENCE, seen)
    assert check_take(SENTENCE, [True] * 45 + [False] * 5) is None  # 90 %: enough
    needed = ctc_frames(SENTENCE)
    assert needed == 21
    assert "Too short" in check_take(SENTENCE, [True] * (needed - 1))
    assert check_take(SENTENCE, [True] * needed) is None
    assert ctc_frames("place green by a three soon") == 27 + 3  # each "ee" and "oo": a blank between
    assert "Too short" in check_take("place green by a three soon", [True] * 29)
    assert check_take(SENTENCE, [True] * MAX_TAKE_FRAMES) is None
    assert "Too long" in check_take(SENTENCE, [True] * (MAX_TAKE_FRAMES + 1))


def test_check_agrees_with_training():
    """The same takes are refused as training's prepare leaves out."""
    from training import prepare
    from training.data import Clip, Word

    assert prepare.MIN_FACE_RATIO == MIN_FACE_RATIO
    clip = Clip("me_take0001", Path("take0001.mp4"), tuple(Word(w, np.nan, np.nan) for w in SENTENCE.split()))
    for n in (20, 21, 30):
        for ratio in (0.85, 0.9, 1.0):
            seen = [True] * round(n * ratio) + [False] * (n - round(n * ratio))
            ours, theirs = check_take(SENTENCE, seen), prepare._problem(clip, np.mean(seen), 1, n)
            assert (ours is None) == (theirs is None), (n, ratio, ours, theirs)


def test_a_kept_take_reads_back_at_25_fps_and_is_listed(tmp_path):
    folder = tmp_path / "takes"
    recorder = TakeRecorder(folder, "Bin Blue, at F two now!")  # read as training reads transcripts
    images = frames(30)
    for image in images:
        recorder.add(image)
    assert recorder.frames == 30
    (written,) = folder.iterdir()  # until it is kept, only a hidden temporary file as frames come
    assert written.name.startswith(".take-") and written.name.endswith(".tmp.mp4")
    take = recorder.keep()
    assert take == Take("take0001.mp4", SENTENCE, "me")
    assert manifest(folder) == [{"video": "take0001.mp4", "transcript": SENTENCE, "speaker": "me"}]
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "take0001.mp4"]  # no temporary file
    source, read = read_back(folder / "take0001.mp4")
    assert source.fps == 25.0 and len(read) == 30
    assert read[-1].timestamp == pytest.approx(29 / 25)
    assert np.abs(read[10].image.astype(int) - images[10]).mean() < 12  # the frames written, not others
    assert np.abs(read[10].image.astype(int) - images[20]).mean() > 30
    assert folder_takes(folder) == [take]


def test_the_folder_is_a_training_manifest(tmp_path):
    from training.readers import read_data

    record(tmp_path, SENTENCE, 30)
    record(tmp_path, "lay red in x nine again", 30, seed=1)
    corpus = read_data(str(tmp_path))
    assert corpus.kind == "manifest" and not corpus.problems
    assert [(c.text, c.video, c.speaker) for c in corpus.clips] == [
        (SENTENCE, tmp_path / "take0001.mp4", "me"),
        ("lay red in x nine again", tmp_path / "take0002.mp4", "me"),
    ]


def test_recording_a_sentence_again_replaces_its_take(tmp_path):
    record(tmp_path, SENTENCE, 30)
    record(tmp_path, "lay red in x nine again", 30, seed=1)
    again = record(tmp_path, SENTENCE, 40, seed=2)
    assert again.video == "take0001.mp4"
    assert [r["transcript"] for r in manifest(tmp_path)] == [SENTENCE, "lay red in x nine again"]
    assert len(read_back(tmp_path / "take0001.mp4")[1]) == 40
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["take0001.mp4", "take0002.mp4"]


def test_a_take_never_writes_over_a_video_it_did_not_record(tmp_path):
    """A folder chosen may hold a manifest of other clips (a data set, the user's own): a take of
    one of their sentences goes beside them, as a take of its own, and leaves their videos and
    rows as they were."""
    folder = tmp_path / "takes"
    folder.mkdir()
    elsewhere = tmp_path / "mine" / "precious.mp4"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"a clip of mine")
    (folder / "s1clip.mp4").write_bytes(b"a clip of another speaker")
    (folder / "take0003.mp4").write_bytes(b"someone else's take, in a folder of their own")
    (folder / MANIFEST).write_text(
        f"video,transcript,speaker\n{elsewhere},{SENTENCE},s1\n"
        "s1clip.mp4,lay red in x nine again,s1\ntake0003.mp4,set white at i eight soon,s2\n"
    )
    before = manifest(folder)
    takes = [
        record(folder, sentence, 30)
        for sentence in (SENTENCE, "lay red in x nine again", "set white at i eight soon")
    ]
    assert [t.video for t in takes] == ["take0004.mp4", "take0005.mp4", "take0006.mp4"]
    assert elsewhere.read_bytes() == b"a clip of mine"
    assert (folder / "s1clip.mp4").read_bytes() == b"a clip of another speaker"
    assert (folder / "take0003.mp4").read_bytes() == b"someone else's take, in a folder of their own"
    assert manifest(folder)[:3] == before


def test_take_names_continue_after_those_of_earlier_sessions(tmp_path):
    assert next_take_name(tmp_path / "none yet") == "take0001"
    (tmp_path / "take0007.mp4").write_bytes(b"")  # a take not in the manifest
    assert next_take_name(tmp_path) == "take0008"
    (tmp_path / MANIFEST).write_text(
        "video,transcript,speaker,note\nold/take0012.mp4,bin red at a one now,me,x\n"
    )
    take = record(tmp_path, SENTENCE, 30)
    assert take.video == "take0013.mp4"
    rows = manifest(tmp_path)
    assert rows[0] == {
        "video": "old/take0012.mp4",
        "transcript": "bin red at a one now",
        "speaker": "me",
        "note": "x",
    }
    assert folder_takes(tmp_path) == [take]  # the row whose video is gone is not listed


def test_a_discarded_or_failed_take_leaves_nothing_behind(tmp_path, monkeypatch):
    record(tmp_path, SENTENCE, 30)
    before = (tmp_path / MANIFEST).read_text()
    recorder = TakeRecorder(tmp_path, "lay red in x nine again")
    for image in frames(25):
        recorder.add(image)
    assert len(list(tmp_path.iterdir())) == 3  # the hidden temporary file as frames come
    recorder.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "take0001.mp4"]

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recording, "write_atomic", full_disk)
    recorder = TakeRecorder(tmp_path, "lay red in x nine again")
    for image in frames(25):
        recorder.add(image)
    with pytest.raises(RuntimeError, match="cannot keep the take in .*No space left"):
        recorder.keep()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "take0001.mp4"]
    assert (tmp_path / MANIFEST).read_text() == before


def test_an_unreadable_manifest_is_not_written_over(tmp_path):
    (tmp_path / MANIFEST).write_text("path,words\nx.mp4,bin blue\n")  # no video column
    recorder = TakeRecorder(tmp_path, SENTENCE)
    for image in frames(25):
        recorder.add(image)
    with pytest.raises(RuntimeError, match="needs a header line with a 'video' column"):
        recorder.keep()
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]
    assert (tmp_path / MANIFEST).read_text() == "path,words\nx.mp4,bin blue\n"


def test_frames_of_another_size_are_refused(tmp_path):
    recorder = TakeRecorder(tmp_path, SENTENCE)
    recorder.add(frames(1)[0])
    with pytest.raises(ValueError, match="frame size changed"):
        recorder.add(frames(1, size=(64, 64))[0])
    with pytest.raises(ValueError, match="BGR uint8"):
        recorder.add(np.zeros((96, 128), np.uint8))
    recorder.discard()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        TakeRecorder(tmp_path, " ... ")


def test_a_large_picture_is_written_scaled_down(tmp_path):
    """A 1280x720 camera picture is written at MAX_TAKE_SIDE on its longer side, the same picture."""
    images = frames(5, size=(720, 1280))
    recorder = TakeRecorder(tmp_path, SENTENCE)
    for image in images:
        recorder.add(image)
    _, read = read_back(tmp_path / recorder.keep().video)
    size = (MAX_TAKE_SIDE, MAX_TAKE_SIDE * 720 // 1280)
    assert read[0].image.shape == (size[1], size[0], 3)
    small = cv2.resize(images[2], size, interpolation=cv2.INTER_AREA)
    assert np.abs(read[2].image.astype(int) - small).mean() < 8


def test_leftover_temporary_takes_are_swept_but_not_one_being_recorded(tmp_path):
    """An app killed mid-take leaves its hidden temporary file; an hour on, it is deleted."""
    old, young = tmp_path / f".take-abc{TEMP_SUFFIX}", tmp_path / f".take-def{TEMP_SUFFIX}"
    kept = tmp_path / "take0001.mp4"
    for path in (old, young, kept):
        path.write_bytes(b"x")
    ancient = time.time() - LEFTOVER_AGE_S - 60
    os.utime(old, (ancient, ancient))
    os.utime(kept, (ancient, ancient))
    assert sweep_leftovers(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, kept.name])
