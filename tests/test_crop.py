from dataclasses import replace

import numpy as np
import pytest

from core.crop import (
    MAX_STRETCH,
    CropSpec,
    LipCropper,
    OneEuroFilter,
    normalise_points,
    point_features,
    pose_from_landmarks,
    transform_from_pose,
)
from core.landmarks import EYE_OUTER_CORNERS, LIP_INDICES, MOUTH_CORNERS, NOSE_BOTTOM
from core.types import FaceLandmarks, Frame, TrackStatus


def _face(cx=200.0, cy=150.0, eye=80.0, angle=0.0, tall=1.0) -> np.ndarray:
    """A synthetic 478-point face, `tall` times as tall as wide as the first: only the points the
    crop uses are meaningful. Its eye-line-to-nose-bottom distance is 0.625 eye distances at tall 1."""
    rng = np.random.default_rng(1)
    pts = np.zeros((478, 2), np.float32)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    local = {
        MOUTH_CORNERS[0]: (-25, 0),
        MOUTH_CORNERS[1]: (25, 0),
        EYE_OUTER_CORNERS[0]: (-eye / 2, -70),
        EYE_OUTER_CORNERS[1]: (eye / 2, -70),
        NOSE_BOTTOM: (9, -70 + 0.625 * eye),  # off the middle: the distance is from the eye line
    }
    for i in LIP_INDICES:
        local.setdefault(i, tuple(rng.uniform([-25, -10], [25, 10])))
    for i, (x, y) in local.items():
        pts[i] = rot @ np.array([x, y * tall]) + (cx, cy)
    return pts


def test_transform_levels_mouth_corners_and_centres_lips():
    spec = CropSpec()
    pts = _face(angle=0.3)
    m = transform_from_pose(pose_from_landmarks(pts), spec)
    left, right = (m[:, :2] @ pts[list(MOUTH_CORNERS)].T).T + m[:, 2]
    assert abs(left[1] - right[1]) < 1e-6  # corners level
    centre = (m[:, :2] @ pts[list(LIP_INDICES)].mean(0)) + m[:, 2]
    assert np.allclose(centre, (spec.width / 2, spec.height / 2))
    # eye distance maps to width / span
    eyes = (m[:, :2] @ pts[list(EYE_OUTER_CORNERS)].T).T
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(spec.width / spec.span)


def _lip_points(spec: CropSpec, face: np.ndarray) -> np.ndarray:
    crop = LipCropper(spec)(Frame(0, 0.0, np.zeros((300, 400, 3), np.uint8)), FaceLandmarks(face, 1))
    return crop.lip_points


@pytest.mark.parametrize("angle", [0.0, 0.3])
def test_a_face_outside_the_nose_range_is_cut_to_its_nearest_end(angle):
    learnt = _lip_points(CropSpec(), _face(angle=angle))  # nose ratio 0.625
    ranged = CropSpec(nose_low=0.55, nose_high=0.65)
    for tall in (0.9, 1.0, 1.04):  # within the range: square pixels, as without one
        face = _face(angle=angle, tall=tall)
        assert np.allclose(_lip_points(ranged, face), _lip_points(CropSpec(), face), atol=1e-3)
    for tall, end in ((0.75, 0.55), (1.4, 0.65)):  # outside: stretched or squeezed to the nearest end
        face = _face(angle=angle, tall=tall)
        square = _lip_points(CropSpec(), face)  # the horizontal scale is the eyes' either way
        assert np.ptp(square[:, 1]) == pytest.approx(tall * np.ptp(learnt[:, 1]), rel=1e-3)
        points = _lip_points(ranged, face)
        assert np.allclose(points[:, 0], learnt[:, 0], atol=1e-3)
        assert np.ptp(points[:, 1]) == pytest.approx(end / 0.625 * np.ptp(learnt[:, 1]), rel=1e-3)
    one = CropSpec(nose_low=0.625, nose_high=0.625)  # a range of one ratio: every face cut to it
    for tall in (0.75, 1.0, 1.4):
        assert np.allclose(_lip_points(one, _face(angle=angle, tall=tall)), learnt, atol=1e-3)
    # a ratio far outside (a landmark gone astray) is stretched by MAX_STRETCH at most
    squashed = _lip_points(ranged, _face(angle=angle, tall=0.25))
    assert np.ptp(squashed[:, 1]) == pytest.approx(0.25 * MAX_STRETCH * np.ptp(learnt[:, 1]), rel=1e-3)


def test_crop_shape_and_status_through_a_gap():
    spec = CropSpec(max_gap=3)
    cropper = LipCropper(spec)
    image = np.full((300, 400, 3), 100, np.uint8)
    pts = _face()
    statuses = []
    for i in range(10):
        lm = FaceLandmarks(pts, 1) if i < 2 or i >= 8 else None
        crop = cropper(Frame(i, i / 25, image), lm)
        statuses.append(crop.status)
        assert crop.image.shape == (spec.height, spec.width) and crop.image.dtype == np.uint8
    assert (
        statuses
        == [TrackStatus.TRACKED] * 2
        + [TrackStatus.HELD] * 3
        + [TrackStatus.MISSING] * 3
        + [TrackStatus.TRACKED] * 2
    )


def test_colour_crop():
    crop = LipCropper(CropSpec(grayscale=False))(
        Frame(0, 0.0, np.zeros((300, 400, 3), np.uint8)), FaceLandmarks(_face(), 1)
    )
    assert crop.image.shape == (48, 96, 3)


def test_lip_points_carry_their_depth_in_crop_pixels_when_the_spec_asks():
    depth = np.linspace(-30, 30, 478).astype(np.float32)
    frame = Frame(0, 0.0, np.zeros((300, 400, 3), np.uint8))
    plain = LipCropper(CropSpec())(frame, FaceLandmarks(_face(), 1, depth=depth))
    deep = LipCropper(CropSpec(depth=True))(frame, FaceLandmarks(_face(), 1, depth=depth))
    assert plain.lip_points.shape == (40, 2) and deep.lip_points.shape == (40, 3)
    assert np.array_equal(deep.lip_points[:, :2], plain.lip_points)  # x, y as without depth
    per_pixel = CropSpec().width / (CropSpec().span * 80)  # the crop's span of eye distances (80 px)
    assert np.allclose(deep.lip_points[:, 2], depth[list(LIP_INDICES)] * per_pixel, rtol=1e-4)
    cropper = LipCropper(CropSpec(depth=True, max_gap=0))
    assert not cropper(frame, FaceLandmarks(_face(), 1)).lip_points[:, 2].any()  # none known: 0
    assert cropper(frame, None).lip_points.shape == (40, 3)  # no face: blank, of the same shape


def test_depth_follows_the_points_in_the_model_input():
    spec, deep = CropSpec(), CropSpec(depth=True)
    pts = np.random.default_rng(0).uniform(0, 96, (5, 40, 3)).astype(np.float32)
    out = normalise_points(pts, deep)
    assert (point_features(spec), point_features(deep)) == (80, 120) and out.shape == (5, 120)
    assert np.array_equal(out[:, :80], normalise_points(pts[..., :2], spec))
    assert np.allclose(out[:, 80:], pts[..., 2] / (spec.width / 2))  # on x's scale
    with pytest.raises(ValueError, match="not"):  # points of another model
        normalise_points(pts, spec)
    with pytest.raises(ValueError, match="not"):
        normalise_points(pts[..., :2], deep)


def test_one_euro_filter_steadies_noise_but_follows_motion():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    rng = np.random.default_rng(0)
    still = [f(np.array([100.0]) + rng.normal(0, 1.0, 1), i / 25)[0] for i in range(100)]
    assert np.std(np.diff(still[20:])) < 0.3  # raw noise has diff std 1.4
    moved = [f(np.array([100.0 + 200.0 * (i >= 100)]), i / 25)[0] for i in range(100, 115)]
    assert moved[-1] > 290  # caught up with a 200 px jump within 0.6 s


def test_normalise_points_range():
    spec = CropSpec()
    pts = np.array([[[0, 0]] * 40, [[spec.width, spec.height]] * 40], np.float32)
    out = normalise_points(pts, spec)
    assert out.shape == (2, 80) and out.min() == -1 and out.max() == 1


@pytest.mark.parametrize(
    "bad",
    [dict(height=2), dict(width=4096), dict(span=0), dict(beta=-1), dict(nose_low=0.6)]
    + [dict(nose_low=0.7, nose_high=0.6), dict(nose_low=-0.1, nose_high=0.6)],
)
def test_invalid_spec(bad):
    with pytest.raises(ValueError):
        LipCropper(CropSpec(**bad))


def test_spec_round_trip():
    spec = CropSpec(height=32, width=64, grayscale=False, follow_face=True)
    assert CropSpec.from_dict(spec.to_dict()) == spec
    ranged = replace(spec, nose_low=0.56, nose_high=0.62)
    assert CropSpec.from_dict(ranged.to_dict()) == ranged
    older = {k: v for k, v in spec.to_dict().items() if k not in ("follow_face", "nose_low", "nose_high")}
    assert CropSpec.from_dict(older).follow_face is False  # a model from before these fields
    assert CropSpec.from_dict(older).scale_way == CropSpec().scale_way
