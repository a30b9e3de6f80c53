"""A picture upside down is turned upright before it is read (core.orientation), every frame of it."""

from __future__ import annotations

import numpy as np
import pytest

from core import orientation
from core.captioning import UPSIDE_DOWN, caption_video
from core.engine import CaptionEngine, StreamOptions
from core.frontend import extract_clip
from core.orientation import Upright
from core.picking import FaceChoice
from core.streaming import iter_captions
from core.types import IDLE, Frame
from core.video import VideoFileSource
from tests.videos import noise_frames, read_frames, two_speakers, upside_down, write_video


def frames_of(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(i, i / 25, image) for i, image in enumerate(images)]


def pushed(upright: Upright, frames: list[Frame]) -> list[list[Frame]]:
    """What each frame pushed gave back."""
    return [upright.push(f) for f in frames]


def test_an_upside_down_picture_is_turned_from_its_first_frame_held_until_decided(grid_clip, landmarker):
    images = read_frames(grid_clip[0], limit=10)
    upright = Upright(str(landmarker))
    out = pushed(upright, frames_of(upside_down(images)))
    assert upright.turned is True and upright.known
    # decided on the first PROBE_FRAMES frames with a face, which wait until then: no frame comes
    # back the wrong way up
    assert [len(o) for o in out] == [0, 0, 3] + [1] * 7
    got = [f for o in out for f in o]
    assert [f.index for f in got] == list(range(10)) and all(f.turned for f in got)
    assert all(np.array_equal(f.image, image) for f, image in zip(got, images, strict=True))
    over = upside_down(images[-1:])[0]
    again = upright.push(Frame(10, 0.4, over))  # a frame repeated (resampling): the same image again
    assert again[0].image is upright.push(Frame(11, 0.44, over))[0].image


def test_frames_before_a_face_pass_at_once_and_few_wait_for_the_decision(grid_clip, landmarker):
    faces = upside_down(read_frames(grid_clip[0], limit=2))
    noise = noise_frames(6, size=faces[0].shape[:2])
    # no face, no face, a face, then a face on one frame in three: the wait is MAX_HELD frames at most
    frames = frames_of([noise[0], noise[1], faces[0], noise[2], noise[3], noise[4], faces[1], noise[5]])
    upright = Upright(str(landmarker))
    out = pushed(upright, frames)
    assert orientation.MAX_HELD == 4
    assert [[f.index for f in o] for o in out] == [[0], [1], [], [], [], [2, 3, 4, 5], [6], [7]]
    assert upright.turned is True  # decided on the one face seen
    assert [f.turned for o in out for f in o] == [False] * 2 + [True] * 6


def test_the_frames_held_at_the_end_of_a_stream_come_back_turned(grid_clip, landmarker):
    images = read_frames(grid_clip[0], limit=2)
    upright = Upright(str(landmarker))
    source = [*frames_of(upside_down(images)), IDLE]  # a paused source's IDLE passes at once
    got = list(upright.frames(source))
    assert got[0] is IDLE and [f.index for f in got[1:]] == [0, 1] and all(f.turned for f in got[1:])
    assert all(np.array_equal(f.image, image) for f, image in zip(got[1:], images, strict=True))
    assert upright.flush() == []


def test_a_large_picture_is_probed_scaled_down_and_turned_whole(grid_clip, landmarker):
    import cv2

    images = [cv2.resize(image, None, fx=3, fy=3) for image in read_frames(grid_clip[0], limit=3)]
    assert max(images[0].shape[:2]) > orientation.PROBE_SIDE  # 1080x864
    upright = Upright(str(landmarker))
    got = pushed(upright, frames_of(upside_down(images)))[-1]
    assert upright.turned is True and np.array_equal(got[-1].image, images[-1])


def test_an_upright_picture_or_one_on_its_side_is_left_as_it_is(grid_clip, landmarker):
    import cv2

    images = read_frames(grid_clip[0], limit=3)
    for turn in (None, cv2.ROTATE_90_CLOCKWISE):
        upright = Upright(str(landmarker))
        frames = frames_of([image if turn is None else cv2.rotate(image, turn) for image in images])
        assert list(upright.frames(frames)) == frames and upright.turned is False


def test_a_picture_without_a_face_is_taken_as_it_is_after_a_while(landmarker, monkeypatch):
    monkeypatch.setattr(orientation, "MAX_PROBES", 4)
    upright = Upright(str(landmarker))
    frames = frames_of(noise_frames(6))
    assert [f for o in pushed(upright, frames) for f in o] == frames
    assert upright.turned is False and upright._detector is None  # no more probing
    assert upright._scores == []  # no noise frame was taken for a face
    assert not upright.known  # taken as it is for want of a face: a later stream probes again


def test_a_stream_without_a_face_at_first_does_not_tell_the_way_up(
    tiny_model, grid_clip, tmp_path, landmarker, monkeypatch
):
    """A video whose first frames hold no face (titles) is read as it is, but its updates do not
    say it is upright: a seek to where the face is (a new stream) finds the way up again."""
    monkeypatch.setattr(orientation, "MAX_PROBES", 4)
    faces = upside_down(read_frames(grid_clip[0], limit=4))
    video = write_video(tmp_path / "titles.avi", noise_frames(6, size=faces[0].shape[:2]) + faces, 25.0)
    engine = CaptionEngine.load(tiny_model, "cpu", 1, StreamOptions(background_model=False))
    updates = list(iter_captions(VideoFileSource(video), engine))
    assert {u.upside_down for u in updates} == {None}
    assert not any(u.frame.turned for u in updates)  # decided upright before the face came


def test_every_frame_of_an_upside_down_video_is_read_as_the_upright_video(
    tiny_model, grid_clip, tmp_path, landmarker
):
    """The live path, the offline one (both iter_captions) and training's extract_clip read the same
    crops from a video and from it upside down: its first frames too."""
    images = read_frames(grid_clip[0], limit=12)
    up = write_video(tmp_path / "up.avi", images, 25.0, lossless=True)
    over = write_video(tmp_path / "over.avi", upside_down(images), 25.0, lossless=True)
    engine = CaptionEngine.load(tiny_model, "cpu", 1, StreamOptions(background_model=False))
    a, b = (list(iter_captions(VideoFileSource(v), engine)) for v in (up, over))
    assert len(a) == len(b) == 13  # 12 frames and the closing update
    assert not any(u.frame.turned for u in a) and all(u.frame.turned for u in b)
    # the way up, decided when the first frame comes (a new stream of the file is told it: no probing)
    assert {u.upside_down for u in a} == {False} and {u.upside_down for u in b} == {True}
    for x, y in zip(a, b, strict=True):
        assert x.frame.index == y.frame.index and np.array_equal(x.frame.image, y.frame.image)
        assert x.crop.status == y.crop.status and np.array_equal(x.crop.image, y.crop.image)
        assert np.array_equal(x.crop.lip_points, y.crop.lip_points)
    assert all(u.crop.landmarks is not None for u in b)
    clips = [extract_clip(v, engine.contract.crop) for v in (up, over)]
    assert clips[1].face_ratio == 1.0 and np.array_equal(clips[0].crops, clips[1].crops)
    assert np.array_equal(clips[0].lip_points, clips[1].lip_points)


def test_an_upside_down_video_is_captioned_as_upright_with_a_warning(
    real_model, grid_clip, tmp_path, landmarker
):
    images = read_frames(grid_clip[0])
    up = write_video(tmp_path / "up.avi", images, 25.0, lossless=True)
    over = write_video(tmp_path / "over.avi", upside_down(images), 25.0, lossless=True)
    engine = CaptionEngine.load(real_model, provider="cpu")
    turned, upright = caption_video(over, engine), caption_video(up, engine)
    assert turned.words == upright.words and turned.text == grid_clip[1]  # words and their times
    assert turned.face_ratio == upright.face_ratio == 1.0
    assert turned.warnings == (f"video {over}: {UPSIDE_DOWN}",) and upright.warnings == ()


def test_a_face_picked_in_an_upside_down_video_is_read_once_turned(
    tiny_model, grid_dir, tmp_path, landmarker
):
    """--face X,Y is a point of the picture as a player shows it, upside down: the face there is
    read in the picture turned upright, where it is at (W - X, H - Y)."""
    images, small = two_speakers(grid_dir, "bbaf2n", "bbal6n")
    over = write_video(tmp_path / "over.avi", upside_down(images[:15]), 25.0, lossless=True)
    shape = images[0].shape
    picked = (shape[1] - small[0], shape[0] - small[1])  # the small face, bottom left in the file's picture
    assert picked[0] < 360 / 2 and picked[1] > shape[0] / 2
    engine = CaptionEngine.load(tiny_model, "cpu", 1, StreamOptions(background_model=False))
    choice = FaceChoice()
    choice.pick(*picked)
    updates = list(iter_captions(VideoFileSource(over), engine, face_choice=choice))
    faces = [u.crop.landmarks for u in updates]
    # the small face, on the right of the picture turned upright
    assert all(f is not None and f.chosen and f.points[:, 0].mean() > 360 for f in faces[3:])
    assert choice.take_ended() is None
    # the first frames too: held back until the picture was found upside down, then read turned
    assert all(u.frame.turned for u in updates) and all(f.points[:, 0].mean() > 360 for f in faces[:3])
    assert choice.point == pytest.approx(picked, abs=30)  # where it was last seen: the file's picture
