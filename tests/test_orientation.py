"""A picture upside down is turned upright before it is read (core.orientation)."""

from __future__ import annotations

import cv2
import numpy as np

from core import orientation
from core.captioning import UPSIDE_DOWN, caption_video
from core.engine import CaptionEngine
from core.orientation import Upright
from core.types import Frame
from tests.videos import noise_frames, read_frames, write_video


def frames_of(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(i, i / 25, image) for i, image in enumerate(images)]


def test_an_upside_down_picture_is_turned_from_the_first_frames_with_a_face(grid_clip, landmarker):
    images = read_frames(grid_clip[0], limit=10)
    over = [cv2.rotate(image, cv2.ROTATE_180) for image in images]
    upright = Upright(str(landmarker))
    got = [upright(f) for f in frames_of(over)]
    assert upright.turned is True
    # decided on the first frames with a face: from then on each is turned back
    assert [f.turned for f in got] == [False] * 2 + [True] * 8
    assert all(np.array_equal(f.image, image) for f, image in zip(got[2:], images[2:], strict=True))
    again = upright(Frame(10, 0.4, over[-1]))  # a frame repeated (resampling): the same image again
    assert again.image is upright(Frame(11, 0.44, over[-1])).image


def test_a_large_picture_is_probed_scaled_down_and_turned_whole(grid_clip, landmarker):
    images = [cv2.resize(image, None, fx=3, fy=3) for image in read_frames(grid_clip[0], limit=3)]
    assert max(images[0].shape[:2]) > orientation.PROBE_SIDE  # 1080x864
    upright = Upright(str(landmarker))
    got = [upright(f) for f in frames_of([cv2.rotate(image, cv2.ROTATE_180) for image in images])]
    assert upright.turned is True and np.array_equal(got[-1].image, images[-1])


def test_an_upright_picture_or_one_on_its_side_is_left_as_it_is(grid_clip, landmarker):
    images = read_frames(grid_clip[0], limit=3)
    for turn in (None, cv2.ROTATE_90_CLOCKWISE):
        upright = Upright(str(landmarker))
        frames = frames_of([image if turn is None else cv2.rotate(image, turn) for image in images])
        assert [upright(f) for f in frames] == frames and upright.turned is False


def test_a_picture_without_a_face_is_taken_as_it_is_after_a_while(landmarker, monkeypatch):
    monkeypatch.setattr(orientation, "MAX_PROBES", 4)
    upright = Upright(str(landmarker))
    frames = frames_of(noise_frames(6))
    assert [upright(f) for f in frames] == frames
    assert upright.turned is False and upright._detector is None  # no more probing
    assert upright._scores == []  # no noise frame was taken for a face


def test_an_upside_down_video_is_captioned_upright_with_a_warning(
    real_model, grid_clip, tmp_path, landmarker
):
    video, reference = grid_clip
    over = write_video(
        tmp_path / "over.avi", [cv2.rotate(f, cv2.ROTATE_180) for f in read_frames(video)], 25.0
    )
    engine = CaptionEngine.load(real_model, provider="cpu")
    turned = caption_video(over, engine)
    assert turned.text == caption_video(video, engine).text
    assert turned.warnings == (f"video {over}: {UPSIDE_DOWN}",)
    assert caption_video(video, engine).warnings == ()
