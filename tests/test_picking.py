"""The face the user picks: FaceChoice across threads' versions, FacePicker's logic on hand-made
boxes and faces (no MediaPipe), and the square cut around a face."""

import numpy as np
import pytest

from core.picking import LOST, LOST_FRAMES, MISSED, REGION_SIDE, FaceChoice, FacePicker, square, turned_over

FRAME = np.zeros((200, 400, 3), np.uint8)


def face_at(x: float, y: float, size: float = 40.0) -> np.ndarray:
    """478 points spread over a size x size square centred at (x, y)."""
    grid = np.random.default_rng(0).uniform(-0.5, 0.5, (478, 2))
    grid[:2] = [[-0.5, -0.5], [0.5, 0.5]]  # the corners: the extent is exactly `size`
    return (grid * size + [x, y]).astype(np.float32)


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([x0, y0, x1, y1], np.float64)


def test_square_matches_a_padded_copy():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (30, 50, 3), np.uint8)
    padded = np.zeros((230, 250, 3), np.uint8)
    padded[100:130, 100:150] = image
    for _ in range(300):
        origin, side = rng.integers(-60, 60, 2), int(rng.integers(1, 70))
        x, y = origin + 100
        assert (square(image, origin, side) == padded[y : y + side, x : x + side]).all(), (origin, side)


def test_a_pick_replaced_by_another_is_not_ended_nor_moved_by_the_stream():
    choice = FaceChoice()
    choice.pick(10, 20)
    first, _ = choice.since(0)
    choice.pick(30, 40)  # the user clicked again before the stream saw the first pick
    choice.seen_at(first, 11, 21)
    choice.end(first, MISSED)
    assert choice.point == (30, 40) and choice.take_ended() is None
    second, point = choice.since(first)
    assert point == (30, 40) and choice.since(second) is None
    choice.seen_at(second, 31, 41)
    assert choice.point == (31, 41)
    choice.end(second, LOST)
    assert choice.point is None and choice.take_ended() == LOST and choice.take_ended() is None


def test_a_pick_waits_for_a_face_then_reads_a_square_around_it():
    found: list[list[np.ndarray]] = [[]]
    choice = FaceChoice()
    picker = FacePicker(choice, lambda rgb: found[0])
    assert not picker.pending and not picker.changed() and picker.region(FRAME) is None  # automatic
    choice.pick(300, 100)
    assert picker.pending and picker.changed() and not picker.pending
    assert picker.region(FRAME) is None and picker.boxes == []  # no face in view: it waits
    found[0] = [box(40, 40, 120, 120), box(280, 80, 320, 120)]
    region = picker.region(FRAME)
    assert len(picker.boxes) == 2 and region.side == round(REGION_SIDE * 40)
    assert region.origin.tolist() == [300 - 50, 100 - 50]  # centred on the picked face's box
    near = face_at(305, 100)
    assert [f is near for f in picker.seen([face_at(80, 80), near])] == [True]  # the one near its box
    assert choice.point == pytest.approx(tuple(near.mean(axis=0)))


def test_a_pick_where_no_face_is_ends_as_missed():
    choice = FaceChoice()
    picker = FacePicker(choice, lambda rgb: [box(40, 40, 120, 120)] if rgb.shape == FRAME.shape else [])
    choice.pick(300, 100)
    picker.changed()
    assert picker.region(FRAME) is None
    assert choice.take_ended() == MISSED and choice.point is None


def test_a_face_too_small_in_the_whole_frame_is_looked_for_around_the_point():
    calls: list[tuple[int, int]] = []

    def find(rgb: np.ndarray) -> list[np.ndarray]:
        calls.append(rgb.shape[:2])
        return [box(40, 40, 60, 60)] if rgb.shape[:2] == (100, 100) else []  # in the zoomed square only

    choice = FaceChoice()
    picker = FacePicker(choice, find)
    choice.pick(300, 100)
    picker.changed()
    region = picker.region(FRAME)
    assert calls == [(200, 400), (100, 100)]  # the whole frame, then half its smaller side around the point
    assert region is not None and region.side == round(REGION_SIDE * 20)  # the box at (290-310, 90-110)


def test_the_picked_face_is_waited_for_then_given_up():
    choice = FaceChoice()
    picker = FacePicker(choice, lambda rgb: [box(280, 80, 320, 120)])
    choice.pick(300, 100)
    picker.changed()
    picker.region(FRAME)
    assert len(picker.seen([face_at(300, 100)])) == 1
    assert picker.seen([face_at(80, 80)]) == []  # another face, far from it: not the picked one
    for _ in range(LOST_FRAMES - 1):
        assert picker.seen([]) == []
    assert len(picker.seen([face_at(310, 100)])) == 1  # back within LOST_FRAMES: read again
    for _ in range(LOST_FRAMES + 1):
        picker.seen([])
    assert choice.take_ended() == LOST and picker.pending and picker.changed()  # the whole frame again
    assert picker.region(FRAME) is None and not picker.changed()


def test_turned_over_moves_a_point_to_the_picture_turned_and_back():
    assert turned_over((300, 50), FRAME.shape).tolist() == [100, 150]  # a 400x200 picture
    assert turned_over(turned_over((300, 50), FRAME.shape), FRAME.shape).tolist() == [300, 50]


def test_a_pick_in_the_sources_picture_is_read_in_frames_turned_upright():
    """The point picked is the source's (as a player shows it); turned frames have it turned over,
    and where the face is seen is written back in the source's picture."""
    choice = FaceChoice()
    picker = FacePicker(choice, lambda rgb: [box(40, 40, 120, 120), box(80, 80, 120, 120)])
    choice.pick(300, 100)  # at (100, 100) in the frame turned over
    picker.changed()
    region = picker.region(FRAME, turned=True)
    assert region.origin.tolist() == [100 - 50, 100 - 50] and region.side == round(REGION_SIDE * 40)
    face = face_at(102, 98)
    assert len(picker.seen([face])) == 1
    assert choice.point == pytest.approx((400 - face[:, 0].mean(), 200 - face[:, 1].mean()))  # the source's
    assert choice.take_ended() is None


def test_a_face_found_before_the_picture_is_turned_turns_with_it():
    """Frames as they are, then (the orientation decided late) turned: the face read is followed
    to its place in the turned picture, not lost."""
    choice = FaceChoice()
    picker = FacePicker(choice, lambda rgb: [box(280, 80, 320, 120)])
    choice.pick(300, 100)
    picker.changed()
    assert picker.region(FRAME).origin.tolist() == [250, 50]
    face = face_at(300, 100)
    assert len(picker.seen([face - (face.mean(axis=0) - [300, 100])])) == 1  # centred at (300, 100)
    region = picker.region(FRAME, turned=True)
    assert region.origin.tolist() == [50, 50]  # around (100, 100), where the face now is
    assert len(picker.seen([face_at(100, 100)])) == 1 and choice.point == pytest.approx((300, 100), abs=2)
