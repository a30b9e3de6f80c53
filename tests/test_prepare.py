"""Crop preparation: the cache, cutting [start, end) of a video, and bad data reported and skipped."""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core import crop
from core.crop import CropSpec
from core.types import TrackStatus
from tests.conftest import MINI_CLIPS, make_grid_layout, tiny_train_config
from tests.videos import noise_frames, write_video
from training.data import Clip, read_align
from training.prepare import cache_dir, load_cached, prepare, prepare_data
from training.train import train


def test_cache_holds_every_mini_clip(mini_grid):
    folder = cache_dir(mini_grid["cache"], CropSpec(), 25.0)
    for stem in MINI_CLIPS:
        cached = load_cached(folder / f"s1_{stem}.npz")
        assert cached.crops.shape == (75, 48, 96) and cached.crops.dtype == np.uint8
        assert cached.lip_points.shape == (75, 40, 2) and cached.status.shape == (75,)
    assert json.loads((folder / "problems.json").read_text()) == {}


def test_cache_folders_of_a_spec_stay_put(tmp_path):
    # named as before CropSpec.follow_face existed, so caches prepared then are still found
    assert cache_dir(tmp_path, CropSpec(height=32, width=64), 25.0).name == "crops-32x64-af93fce7"
    followed = cache_dir(tmp_path, CropSpec(height=32, width=64, follow_face=True), 25.0)
    assert followed.name == "crops-32x64-fe4bc21b"  # the shipped model's, named before the nose range
    ranged = CropSpec(height=32, width=64, follow_face=True, nose_low=0.56, nose_high=0.62)
    nosed = cache_dir(tmp_path, ranged, 25.0)
    assert nosed.name.startswith("crops-32x64-") and nosed.name != followed.name
    deep = cache_dir(tmp_path, CropSpec(height=32, width=64, follow_face=True, depth=True), 25.0)
    assert deep.name.startswith("crops-32x64-") and deep.name not in (followed.name, nosed.name)


def test_a_new_front_end_version_cuts_its_crops_again(tmp_path, monkeypatch):
    spec = CropSpec(height=32, width=64, follow_face=True)
    before = cache_dir(tmp_path, spec, 25.0)
    monkeypatch.setattr(crop, "CROP_VERSION", 2)
    assert cache_dir(tmp_path, spec, 25.0) != before


def test_prepare_cuts_only_start_to_end(mini_grid, tmp_path):
    video = mini_grid["data"] / "video" / "bbaf2n.mp4"
    words = read_align(mini_grid["data"] / "align" / "bbaf2n.align")
    clip = Clip("cue", video, words, "s1", start=1.0, end=2.0)
    assert prepare([clip], tmp_path, CropSpec(), 25.0, workers=1) == {}
    part = load_cached(tmp_path / "cue.npz")
    whole = load_cached(cache_dir(mini_grid["cache"], CropSpec(), 25.0) / "s1_bbaf2n.npz")
    assert len(part.crops) == 25  # frames 25..49 of 75
    # frame-exact: the lip points match the whole clip's frames 25..49 (the crop filter restarts,
    # so allow a fraction of a pixel) better than the frames one earlier or one later
    offsets = (24, 25, 26)
    diffs = [float(np.median(np.abs(part.lip_points - whole.lip_points[a : a + 25]))) for a in offsets]
    assert offsets[int(np.argmin(diffs))] == 25 and diffs[1] < 0.2, diffs


def test_bad_data_is_reported_and_skipped_and_the_run_goes_on(mini_grid, grid_dir, tmp_path, caplog):
    data = make_grid_layout(tmp_path / "s1", grid_dir, MINI_CLIPS[:3])
    (data / "video" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    shutil.copy(grid_dir / "align" / "bbaf2n.align", data / "align" / "broken.align")
    (data / "video" / "lonely.mp4").symlink_to(grid_dir / "video" / "bbaf2n.mp4")  # no alignment
    (data / "video" / "silent.mp4").symlink_to(grid_dir / "video" / "bbaf2n.mp4")
    (data / "align" / "silent.align").write_text("0 74500 sil\n")  # empty transcript
    shutil.copytree(mini_grid["cache"], tmp_path / "cache")  # the good clips are cached already
    cfg = tiny_train_config(
        mini_grid,
        tmp_path / "run",
        data=str(data),
        cache=str(tmp_path / "cache"),
        val_fraction=0.34,
        max_steps=1,
    )
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        prepared = prepare_data(cfg)
    assert sorted(c.clip_id for c in prepared.clips) == sorted(f"s1_{s}" for s in MINI_CLIPS[:3])
    assert list(prepared.left_out) == ["s1_broken"] and "broken.mp4" in prepared.left_out["s1_broken"]
    assert len(prepared.skipped) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    assert any("lonely.mp4: no alignment file" in w for w in warnings)
    assert any("silent.align has an empty transcript" in w for w in warnings)
    assert any(w.startswith("left out:") and "broken.mp4" in w for w in warnings)

    best = train(cfg)  # the run goes on with the good clips
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert best["epoch"] == 1 and len(split["train"]) + len(split["val"]) == 3
    assert "s1_broken" in split["left_out"] and len(split["skipped"]) == 2
    assert (tmp_path / "run" / "last.pt").is_file()


def test_clips_too_long_to_train_on_are_reported_one_line_each(mini_grid, tmp_path, caplog):
    """Clips without word timings (a manifest's) longer than max_frames cannot be cut to fit: each
    is reported, and a run left with none fails (timed ones are cut: test_train.py)."""
    manifest = tmp_path / "clips.csv"
    rows = ["id,video,transcript"]
    for stem in MINI_CLIPS:
        said = " ".join(w.text for w in read_align(mini_grid["data"] / "align" / f"{stem}.align"))
        rows.append(f"s1_{stem},{mini_grid['data'] / 'video' / f'{stem}.mp4'},{said}")
    manifest.write_text("\n".join(rows) + "\n")
    cache = shutil.copytree(mini_grid["cache"], tmp_path / "cache")  # the same clips, cut once already
    cfg = tiny_train_config(mini_grid, tmp_path / "run", max_steps=1, data=str(manifest), cache=str(cache))
    cfg = replace(cfg, samples=replace(cfg.samples, max_frames=74))  # every 75-frame clip is too long
    with caplog.at_level(logging.WARNING, logger="lipreader"), pytest.raises(ValueError, match="too long"):
        train(cfg)
    long = [r.getMessage() for r in caplog.records if r.getMessage().startswith("left out of training")]
    assert len(long) == 3 and all("75 frames, longer than max_frames 74" in m for m in long)
    assert all("no word timings to cut it at" in m and "--samples-max-frames" in m for m in long)


def test_problem_clips_are_remembered_until_their_video_changes(grid_dir, tmp_path, monkeypatch):
    from training import prepare as module

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    clip = Clip("broken", broken, read_align(grid_dir / "align" / "bbaf2n.align"))
    out = tmp_path / "cache"
    first = prepare([clip], out, CropSpec(), 25.0, workers=1)
    assert "not a video file" in first["broken"]
    monkeypatch.setattr(module, "extract_clip", None)  # not even looked at again: the problem was recorded
    assert prepare([clip], out, CropSpec(), 25.0, workers=1) == first
    assert not any(Path(out).glob("*.npz"))
    monkeypatch.undo()
    shutil.copy(grid_dir / "video" / "bbaf2n.mp4", broken)  # the user puts the right video there
    assert prepare([clip], out, CropSpec(), 25.0, workers=1) == {}
    assert len(load_cached(out / "broken.npz").crops) == 75


def test_a_clip_whose_video_or_span_changed_is_cut_again(grid_dir, tmp_path):
    """The cache is keyed by clip id; what the crops were cut from is checked as well: an edited
    subtitle's cue, or another video under the same id (a manifest's rows reordered), is cut again."""
    words = read_align(grid_dir / "align" / "bbaf2n.align")
    video = shutil.copy(grid_dir / "video" / "bbaf2n.mp4", tmp_path / "talk.mp4")
    out = tmp_path / "cache"
    assert prepare([Clip("talk_0001", Path(video), words, end=3.0)], out, CropSpec(), 25.0, workers=1) == {}
    assert len(load_cached(out / "talk_0001.npz").crops) == 75
    assert prepare([Clip("talk_0001", Path(video), words, end=2.0)], out, CropSpec(), 25.0, workers=1) == {}
    assert len(load_cached(out / "talk_0001.npz").crops) == 50  # the cue now ends at 2 s
    before = load_cached(out / "talk_0001.npz").crops
    shutil.copy(grid_dir / "video" / "bbal6n.mp4", video)  # another video under the same name
    assert prepare([Clip("talk_0001", Path(video), words, end=2.0)], out, CropSpec(), 25.0, workers=1) == {}
    after = load_cached(out / "talk_0001.npz").crops
    assert len(after) == 50 and not np.array_equal(after, before)


def test_a_clip_too_short_for_its_transcript_is_left_out(grid_dir, tmp_path):
    """13 frames cannot say "bin blue at f two now" (a video cut short, a cue past the video's end)."""
    words = read_align(grid_dir / "align" / "bbaf2n.align")
    clip = Clip("short", grid_dir / "video" / "bbaf2n.mp4", words, start=2.48)
    problem = prepare([clip], tmp_path, CropSpec(), 25.0, workers=1)["short"]
    assert "from 2.48 s: 13 frames for a transcript of 21 characters" in problem
    short = replace(clip, words=words[-1:])  # its transcript fixed: "now" fits
    assert prepare([short], tmp_path, CropSpec(), 25.0, workers=1) == {}


def test_an_interrupted_preparation_does_not_wait_for_the_clips_queued(grid_dir, tmp_path, monkeypatch):
    from training import prepare as module

    def interrupted(futures):  # Ctrl-C as the first clip is done
        yield next(as_completed(futures))
        raise KeyboardInterrupt

    videos = [shutil.copy(grid_dir / "video" / "bbaf2n.mp4", tmp_path / f"{i}.mp4") for i in range(12)]
    clips = [Clip(str(i), Path(v)) for i, v in enumerate(videos)]
    monkeypatch.setattr(module, "as_completed", interrupted)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        prepare(clips, tmp_path / "cache", CropSpec(), 25.0, workers=1)
    assert time.monotonic() - start < 6  # not the 12 clips' 5 s or more
    assert (tmp_path / "cache" / "problems.json").is_file()
    assert 1 <= len(list((tmp_path / "cache").glob("*.npz"))) < 12


def test_a_clip_without_a_face_cached_by_a_killed_run_is_still_left_out(tmp_path):
    clip = Clip("noface", write_video(tmp_path / "noface.mp4", noise_frames(10), 25.0))
    out = tmp_path / "cache"
    assert "face found on only 0%" in prepare([clip], out, CropSpec(), 25.0, workers=1)["noface"]
    (out / "problems.json").unlink()  # killed after the clip was cached, before problems.json
    assert "face found on only 0%" in prepare([clip], out, CropSpec(), 25.0, workers=1)["noface"]
    assert "noface" in json.loads((out / "problems.json").read_text())


def test_clips_cached_before_the_face_count_was_kept_are_judged_by_their_track_status(tmp_path):
    clip = Clip("old", tmp_path / "old.mp4")  # the video is not read again
    out = tmp_path / "cache"
    out.mkdir()
    status = np.array([TrackStatus.TRACKED] * 8 + [TrackStatus.MISSING] * 2, np.uint8)
    np.savez(
        out / "old.npz", crops=np.zeros((10, 4, 8), np.uint8), lip_points=np.zeros((10, 40, 2)), status=status
    )
    assert "face found on only 80%" in prepare([clip], out, CropSpec(), 25.0, workers=1)["old"]


def test_a_clip_left_out_for_two_faces_in_a_cache_without_the_face_count_stays_out(tmp_path):
    clip = Clip("old", tmp_path / "old.mp4")
    out = tmp_path / "cache"
    out.mkdir()
    status = np.full(10, TrackStatus.TRACKED, np.uint8)  # cut before the face count was kept
    np.savez(
        out / "old.npz", crops=np.zeros((10, 4, 8), np.uint8), lip_points=np.zeros((10, 40, 2)), status=status
    )
    (out / "problems.json").write_text(json.dumps({"old": "old.mp4: 2 faces in view"}))
    assert prepare([clip], out, CropSpec(), 25.0, workers=1) == {"old": "old.mp4: 2 faces in view"}


def test_a_clip_the_front_end_trips_on_is_reported_and_the_rest_go_on(mini_grid, tmp_path, monkeypatch):
    from training import prepare as module

    def extract(video, *args, **kwargs):
        if "bwim6p" in str(video):
            raise IndexError("a bug")
        return real(video, *args, **kwargs)

    real = module.extract_clip
    monkeypatch.setattr(module, "extract_clip", extract)  # the workers are forked: they see it
    clips = [Clip(s, mini_grid["data"] / "video" / f"{s}.mp4") for s in ("bbaf2n", "bwim6p")]
    problems = prepare(clips, tmp_path / "cache", CropSpec(), 25.0, workers=1)
    assert list(problems) == ["bwim6p"] and "the front end failed: IndexError: a bug" in problems["bwim6p"]
    assert (tmp_path / "cache" / "bbaf2n.npz").is_file()
