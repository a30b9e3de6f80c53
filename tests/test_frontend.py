"""The front end on real GRID clips and on generated video."""

import cv2
import numpy as np
import pytest

from core import landmarks
from core.assets import AssetError
from core.crop import CropSpec, LipCropper, nose_ratio
from core.frontend import FrontEnd, extract_clip
from core.landmarks import COUNT_EVERY, LandmarkDetector
from core.picking import LOST, LOST_FRAMES, MISSED, FaceChoice
from core.types import Frame, TrackStatus
from core.video import VideoError, VideoFileSource
from tests.videos import noise_frames, read_frames, two_faces, write_video


@pytest.mark.slow
def test_landmarks_on_50_grid_clips(grid_dir):
    videos = sorted((grid_dir / "video").glob("*.mp4"))[::18][:50]
    assert len(videos) == 50
    found = total = 0
    for video in videos:
        with LandmarkDetector() as detector:
            for frame in VideoFileSource(video):
                found += detector(frame) is not None
                total += 1
    assert found / total >= 0.99, f"landmarks on {found}/{total} frames"


@pytest.mark.parametrize("follow", [False, True], ids=["detect", "follow"])
def test_landmarks_read_from_mediapipes_c_result_are_its_apis(grid_dir, monkeypatch, follow):
    frames = list(VideoFileSource(grid_dir / "video" / "bbaf2n.mp4"))[:12]
    canvas, _ = two_faces(grid_dir)
    frames.append(Frame(12, 12 / 25, canvas))  # two faces (the detect way reports both)

    def points(detector):
        with detector:
            found = [detector(f) for f in frames]
        return [None if r is None else (r.points, r.num_faces, r.depth) for r in found]

    raw, read = [], landmarks._raw_landmarks
    monkeypatch.setattr(landmarks, "_raw_landmarks", lambda *a: raw.append(read(*a)) or raw[-1])
    fast = points(LandmarkDetector(follow=follow))
    assert len(raw) >= 13 and None not in raw  # read from the C result, not through the API
    monkeypatch.setattr(landmarks, "_raw_landmarks", lambda *_: None)
    api = points(LandmarkDetector(follow=follow))
    assert len(fast) == len(api) == 13 and None not in fast[:12]
    assert fast[12] is not None or follow  # following: the face jumped, lost on that frame
    for a, b in zip(fast, api, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a[1] == b[1] and a[0].shape == (478, 2) and np.array_equal(a[0], b[0])
            assert a[2].shape == (478,) and np.array_equal(a[2], b[2])  # MediaPipe's z, in x's pixels
            assert a[2][landmarks.NOSE_BOTTOM] < a[2][landmarks.EYE_OUTER_CORNERS[0]]  # the nose is nearer


def _centres(crops) -> np.ndarray:
    """The crop centre in frame pixels, per crop."""
    out = []
    for c in crops:
        m = np.vstack([c.transform, [0, 0, 1]])
        out.append((np.linalg.inv(m) @ [48, 24, 1])[:2])
    return np.array(out)


def test_crop_centre_jitter_on_a_still_mouth(grid_dir):
    # a still face: one real frame held for 2 s, with fresh sensor noise on every frame
    image = read_frames(grid_dir / "video" / "bbaf2n.mp4", 1)[0]
    rng = np.random.default_rng(0)
    with FrontEnd(CropSpec()) as front:
        crops = []
        for i in range(50):
            noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
            crops.append(front(Frame(i, i / 25, noisy)))
    jitter = np.linalg.norm(np.diff(_centres(crops)[5:], axis=0), axis=1)
    assert jitter.max() < 1.0, jitter.max()


def test_crop_centre_jitter_during_silence(grid_dir):
    # the leading silence of real clips: the speaker's mouth is closed and still
    jitters = []
    for name in ("bgit7a", "lwaz1s", "sbbu3a"):
        clip = extract_clip(grid_dir / "video" / f"{name}.mp4", CropSpec())
        # recover the frame-pixel centre from lip points: transform is not stored in ClipCrops,
        # so measure the lips' centre inside the crop, which moves when the crop jitters
        centre = clip.lip_points[:15].mean(axis=1)
        jitters.append(np.linalg.norm(np.diff(centre, axis=0), axis=1).mean())
    assert np.mean(jitters) < 1.0, jitters


def test_grid_clip_crops(grid_dir):
    clip = extract_clip(grid_dir / "video" / "bbaf2n.mp4", CropSpec())
    assert clip.crops.shape == (75, 48, 96) and clip.lip_points.shape == (75, 40, 2)
    assert clip.face_ratio == 1.0 and clip.max_faces == 1
    # lips sit in the middle of the crop, mouth corners level
    corners = clip.lip_points[:, [0, 10]]
    assert np.abs(corners[:, 0, 1] - corners[:, 1, 1]).mean() < 2.0
    assert np.allclose(clip.lip_points.mean(axis=(0, 1)), (48, 24), atol=3)
    # the eye-line-to-nose-bottom distance (core.crop.nose_ratio): speaker 1's is about 0.6 eye distances
    assert clip.nose_ratios.shape == (75,) and 0.54 < np.median(clip.nose_ratios) < 0.64


def test_no_face_video_is_marked_missing(tmp_path):
    path = write_video(tmp_path / "noface.mp4", noise_frames(25), 25.0)
    clip = extract_clip(path, CropSpec())
    assert len(clip.status) == 25 and clip.face_ratio == 0.0
    assert (clip.status == TrackStatus.MISSING).all()
    assert np.isnan(clip.nose_ratios).all()  # no face, no ratio (not 0, which a range would read)


def test_30fps_clip_is_resampled(grid_dir, tmp_path):
    frames = read_frames(grid_dir / "video" / "bbaf2n.mp4")
    # 3 s at 30 fps: repeat every fifth frame
    frames30 = [f for i, f in enumerate(frames) for _ in range(2 if i % 5 == 4 else 1)]
    path = write_video(tmp_path / "clip30.mp4", frames30, 30.0)
    clip = extract_clip(path, CropSpec(), fps=25.0)
    assert len(clip.crops) == 75 and clip.face_ratio == 1.0


@pytest.mark.parametrize("follow", [False, True], ids=["detect", "follow"])
def test_several_faces_follows_the_largest(grid_dir, follow):
    canvas, _ = two_faces(grid_dir)
    with LandmarkDetector(follow=follow) as detector:
        results = [detector(Frame(i, i / 25, canvas)) for i in range(5)]
    assert all(r is not None and r.num_faces == 2 for r in results)
    assert all(r.points[:, 0].mean() < 360 for r in results)  # the big face, on the left
    assert all(len(r.others) == 1 and r.others[0][0] > 360 for r in results)  # the other one's box


@pytest.mark.parametrize("follow", [False, True], ids=["detect", "follow"])
def test_a_clicked_face_is_read_until_another_click(grid_dir, follow):
    canvas, small = two_faces(grid_dir)
    choice = FaceChoice()
    frames = iter(range(100))
    with LandmarkDetector(follow=follow, face_choice=choice) as detector:
        read = lambda image=canvas: detector(Frame(i := next(frames), i / 25, image))  # noqa: E731
        first = read()
        assert first.points[:, 0].mean() < 360 and not first.chosen  # the largest
        choice.pick(*small)
        picked = [read() for _ in range(5)]
        assert all(f.chosen and f.points[:, 0].mean() > 360 and f.num_faces == 2 for f in picked)
        assert [f.switched for f in [first, *picked]] == [False, True, False, False, False, False]
        assert all(len(f.others) == 1 and f.others[0][2] < 360 for f in picked)  # the big face's box
        hidden = canvas.copy()
        hidden[:, 360:] = 120  # the picked face is gone for 3 frames: nothing is read, not the other face
        assert [read(hidden) for _ in range(3)] == [None] * 3
        assert read().chosen and read().points[:, 0].mean() > 360  # back: read again
        choice.pick(canvas.shape[1] - 5, canvas.shape[0] - 5)  # grey background: no face there
        missed = read()
        assert not missed.chosen and missed.points[:, 0].mean() < 360 and missed.switched
        assert choice.take_ended() == MISSED and choice.take_ended() is None and choice.point is None
        choice.pick(*small)
        assert read().chosen
        choice.automatic()
        back = read()
        assert not back.chosen and back.points[:, 0].mean() < 360 and back.switched
        choice.pick(*back.points.mean(axis=0))  # a click on the face read: another face it is not
        same = read()
        assert same.chosen and same.points[:, 0].mean() < 360 and not same.switched


@pytest.mark.parametrize("follow", [False, True], ids=["detect", "follow"])
def test_a_clicked_face_is_followed_as_it_moves_and_given_up_when_it_leaves(grid_dir, follow):
    choice = FaceChoice()
    choice.pick(
        *two_faces(grid_dir, room=300)[1]
    )  # a small face in a wide frame: BlazeFace needs a closer look
    with LandmarkDetector(follow=follow, face_choice=choice) as detector:
        faces = [detector(Frame(i, i / 25, two_faces(grid_dir, 20 * i, room=300)[0])) for i in range(16)]
        assert all(f is not None and f.chosen for f in faces)
        # BlazeFace misses the small face in the whole frame: the big one is still the other face
        assert all(f.num_faces == 2 and len(f.others) == 1 and f.others[0][2] < 360 for f in faces)
        moved = np.array([f.points[:, 0].mean() - faces[0].points[:, 0].mean() for f in faces])
        assert np.abs(moved - 20 * np.arange(16)).max() < 2.0, moved  # 20 px a frame to the right
        assert choice.point == pytest.approx(faces[-1].points.mean(axis=0))  # where a new stream looks for it
        alone = two_faces(grid_dir, room=300)[0]
        alone[:, 360:] = 120
        after = [detector(Frame(i, i / 25, alone)) for i in range(16, 16 + LOST_FRAMES + 2)]
    assert after[:LOST_FRAMES] == [None] * LOST_FRAMES  # the picked face is waited for...
    assert not after[-1].chosen and after[-1].points[:, 0].mean() < 360  # ...then the largest is read
    assert choice.take_ended() == LOST and choice.point is None


def test_following_a_face_counts_the_faces_that_come_and_go(grid_dir):
    image = read_frames(grid_dir / "video" / "bbaf2n.mp4", 1)[0]
    small = cv2.resize(image, None, fx=0.6, fy=0.6)
    alone = np.full((288, 360 + small.shape[1], 3), 120, np.uint8)
    alone[:, :360] = image
    crowd = alone.copy()
    crowd[: small.shape[0], 360:] = small
    blank = np.full_like(alone, 120)
    frames = [alone] * 3 + [crowd] * (COUNT_EVERY + 1) + [blank] * 2 + [alone] * 2 + [blank, crowd]
    with LandmarkDetector(follow=True) as detector:
        faces = [detector(Frame(i, i / 25, f)) for i, f in enumerate(frames)]
    counts = [0 if f is None else f.num_faces for f in faces]
    # the second face is noticed at the next count, COUNT_EVERY calls after the first
    assert counts[:COUNT_EVERY] == [1] * COUNT_EVERY and counts[COUNT_EVERY : COUNT_EVERY + 4] == [2] * 4
    # a face found again is counted at once: alone, then (after another loss) with a second face
    assert counts[-6:] == [0, 0, 1, 1, 0, 2]


def test_following_a_face_needs_the_bundles_face_detector(tmp_path):
    bundle = tmp_path / "face_landmarker.task"
    bundle.write_bytes(b"not a zip")
    with pytest.raises(AssetError, match="cannot read the face detector"):
        LandmarkDetector(str(bundle), follow=True)


def test_following_the_face_cuts_the_crops_of_detecting_it(grid_dir):
    path = grid_dir / "video" / "bbaf2n.mp4"
    detected, followed = extract_clip(path, CropSpec()), extract_clip(path, CropSpec(follow_face=True))
    assert followed.face_ratio == 1.0 and followed.max_faces == 1
    error = np.linalg.norm(followed.lip_points - detected.lip_points, axis=2)
    assert 0 < error.mean() < 1.5, error.mean()  # MediaPipe's tracking moves the points a little


def test_unreadable_clip(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_text("hello")
    with pytest.raises(VideoError):
        extract_clip(path, CropSpec())


def _crops(frames: list[np.ndarray], landmark_every: int = 1) -> list:
    with FrontEnd(CropSpec(), landmark_every=landmark_every) as front:
        return [front(Frame(i, i / 25, image)) for i, image in enumerate(frames)]


@pytest.fixture
def detector_calls(monkeypatch) -> list[int]:
    """The indices of the frames MediaPipe runs on, in call order."""
    calls: list[int] = []
    detect = LandmarkDetector.__call__

    def counted(self, frame):
        calls.append(frame.index)
        return detect(self, frame)

    monkeypatch.setattr(LandmarkDetector, "__call__", counted)
    return calls


def test_landmarks_every_other_frame_follow_every_frame_ones(grid_dir, detector_calls):
    frames = read_frames(grid_dir / "video" / "bbaf2n.mp4")  # 75 frames, the mouth moving
    every = _crops(frames)
    assert detector_calls == list(range(75))
    detector_calls.clear()
    crops = _crops(frames, landmark_every=2)
    assert detector_calls == list(range(0, 75, 2))  # MediaPipe on half the frames
    assert [c.landmarks.flow for c in crops] == [i % 2 == 1 for i in range(75)]
    assert all(c.status == TrackStatus.TRACKED and c.landmarks.points.shape == (478, 2) for c in crops)
    # the 40 lip points in crop pixels (what the model sees) stay within a few pixels
    error = np.linalg.norm(np.stack([c.lip_points for c in crops]) - [c.lip_points for c in every], axis=2)
    assert error.mean() < 1.0 and np.percentile(error, 90) < 2.0 and error.max() < 5.0, error.max()
    difference = np.mean(
        [np.abs(c.image.astype(float) - e.image).mean() for c, e in zip(crops, every, strict=True)]
    )
    assert difference < 2.0, difference
    # the bottom of the nose, which the crop's nose range reads, is followed by the flow too
    flowed = [nose_ratio(c.landmarks.points) for c in crops]
    detected = [nose_ratio(e.landmarks.points) for e in every]
    error = np.abs(np.array(flowed) / detected - 1)[1::2]  # the flow's frames: 1.1 % mean (median motion 1.4)
    assert error.mean() < 0.02 and np.percentile(error, 90) < 0.04, error


def test_default_front_end_is_mediapipe_on_every_frame(grid_dir, detector_calls):
    frames = read_frames(grid_dir / "video" / "bbaf2n.mp4", 12)
    crops = _crops(frames)
    assert detector_calls == list(range(12))
    with LandmarkDetector() as detector:
        cropper = LipCropper(CropSpec())
        alone = [cropper(f, detector(f)) for f in (Frame(i, i / 25, image) for i, image in enumerate(frames))]
    for c, a in zip(crops, alone, strict=True):
        assert not c.landmarks.flow
        assert np.array_equal(c.image, a.image) and np.array_equal(c.lip_points, a.lip_points)
        assert np.array_equal(c.transform, a.transform) and np.array_equal(
            c.landmarks.points, a.landmarks.points
        )


def test_optical_flow_follows_a_moving_face(grid_dir, detector_calls):
    image = read_frames(grid_dir / "video" / "bbaf2n.mp4", 1)[0]
    moved = np.roll(image, (3, 5), axis=(0, 1))  # the face 5 px right, 3 px down
    with FrontEnd(CropSpec(), landmark_every=3) as front:
        first, second = front(Frame(0, 0.0, image)), front(Frame(1, 0.04, moved))
    assert detector_calls == [0] and second.landmarks.flow
    shift = second.landmarks.points - first.landmarks.points
    assert np.allclose(shift, (5, 3), atol=0.5), np.abs(shift - (5, 3)).max()


def test_lost_flow_falls_back_to_mediapipe(grid_dir, detector_calls):
    image = read_frames(grid_dir / "video" / "bbaf2n.mp4", 1)[0]
    blank = noise_frames(1, image.shape[:2])[0]  # the face is gone: the flow cannot follow it
    with FrontEnd(CropSpec(), landmark_every=2) as front:
        crops = [front(Frame(i, i / 25, f)) for i, f in enumerate((image, blank, image))]
        assert (front.tracker.detected, front.tracker.followed, front.tracker.fallbacks) == (3, 0, 1)
    assert detector_calls == [0, 1, 2]
    assert [c.status for c in crops] == [TrackStatus.TRACKED, TrackStatus.HELD, TrackStatus.TRACKED]


@pytest.mark.parametrize("landmark_every", [0, -1, 1.5, True])
def test_invalid_landmark_every(landmark_every, detector_calls):
    with pytest.raises(ValueError, match="landmark_every"):
        FrontEnd(CropSpec(), landmark_every=landmark_every)


def test_a_click_runs_mediapipe_on_the_next_frame_instead_of_the_flow(grid_dir, detector_calls):
    canvas, small = two_faces(grid_dir)
    choice = FaceChoice()
    with FrontEnd(CropSpec(follow_face=True), landmark_every=4, face_choice=choice) as front:
        before = [front(Frame(i, i / 25, canvas)) for i in range(2)]
        choice.pick(*small)
        after = [front(Frame(i, i / 25, canvas)) for i in range(2, 8)]
    assert detector_calls == [0, 2, 6]  # frame 2 is detected at once, not moved by the flow
    assert all(c.landmarks.points[:, 0].mean() < 360 for c in before)
    assert all(c.landmarks.chosen and c.landmarks.points[:, 0].mean() > 360 for c in after)
    assert [c.switched for c in before + after] == [False, False, True, False, False, False, False, False]
