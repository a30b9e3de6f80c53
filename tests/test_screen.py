"""The screen source (core.screen) with a fake grabber, and once on a real X display when there is one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from core import screen
from core.screen import Monitor, ScreenError, ScreenSource, check_region, parse_region

PERIOD = 1 / 25


class FakeGrabber:
    """Two monitors side by side; a grab is the rectangle's BGRA pixels (B = left, G = top, R = the
    grab's number, A = 255), after `delay` seconds."""

    delay = 0.0
    made: list[FakeGrabber] = []

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.grabs: list[tuple[float, tuple[int, int, int, int]]] = []
        self.closed = False
        FakeGrabber.made.append(self)

    def monitors(self) -> list[Monitor]:
        return [
            Monitor(0, (0, 0, 3200, 1080)),
            Monitor(1, (0, 0, 1920, 1080), True),
            Monitor(2, (1920, 0, 1280, 1024)),
        ]

    def grab(self, rect: tuple[int, int, int, int]) -> np.ndarray:
        self.grabs.append((time.monotonic(), rect))
        time.sleep(self.delay)
        left, top, width, height = rect
        pixels = np.empty((height, width, 4), np.uint8)
        pixels[...] = (left % 256, top % 256, len(self.grabs) % 256, 255)
        return pixels

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake():
    FakeGrabber.delay, FakeGrabber.made = 0.0, []
    return FakeGrabber


def take(source: ScreenSource, n: int) -> list:
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def test_frames_are_bgr_of_the_region_without_the_alpha(fake):
    (frame,) = take(ScreenSource((100, 50, 64, 48), grabber=fake), 1)
    assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous
    assert tuple(frame.image[0, 0]) == (100, 50, 1)  # B, G, R as grabbed; alpha dropped
    assert fake.made[0].grabs[0][1] == (100, 50, 64, 48)


def test_a_monitor_is_grabbed_whole(fake):
    take(ScreenSource(2, grabber=fake), 1)
    assert fake.made[-1].grabs[0][1] == (1920, 0, 1280, 1024)


def test_frames_are_grabbed_on_the_clock_and_stamped_by_their_tick(fake):
    source = ScreenSource((0, 0, 32, 32), fps=25, grabber=fake)
    frames = take(source, 10)
    assert [f.index for f in frames] == list(range(10))
    assert [f.timestamp for f in frames] == pytest.approx([k * PERIOD for k in range(10)])
    first = fake.made[0].grabs[0][0]
    for frame, (grabbed, _) in zip(frames, fake.made[0].grabs, strict=True):
        assert frame.timestamp - 0.002 <= grabbed - first < frame.timestamp + PERIOD  # when due, not before
    assert source.skipped == 0


def test_a_slow_grab_skips_ticks_instead_of_lagging(fake):
    fake.delay = 0.1  # each grab takes 2.5 frame periods
    source = ScreenSource((0, 0, 32, 32), fps=25, grabber=fake)
    start = time.monotonic()
    frames = take(source, 6)
    elapsed = time.monotonic() - start
    ticks = [round(f.timestamp / PERIOD) for f in frames]
    assert ticks[0] == 0 and all(2 <= b - a <= 4 for a, b in zip(ticks, ticks[1:], strict=False))
    assert [f.index for f in frames] == list(range(6))
    assert source.skipped == ticks[-1] - 5
    # the last frame is stamped about when it was grabbed: the stream runs with the clock, not behind it
    assert elapsed - 0.1 - PERIOD <= frames[-1].timestamp <= elapsed


def test_a_slow_reader_gets_the_screen_as_it_is_now(fake):
    source = ScreenSource((0, 0, 32, 32), fps=25, grabber=fake)
    stamps, start = [], time.monotonic()
    for frame in source:
        stamps.append((frame.timestamp, time.monotonic() - start))
        if len(stamps) == 4:
            break
        time.sleep(0.13)  # the pipeline takes over three frame periods
    for stamp, seen in stamps:
        assert seen - PERIOD - 0.05 <= stamp <= seen + 0.001  # grabbed late, not queued
    assert len(fake.made[0].grabs) == 4


def test_stop_from_another_thread_ends_at_once_and_closes_the_grabber(fake):
    source = ScreenSource((0, 0, 32, 32), fps=1, grabber=fake)  # a tick a second
    frames = iter(source)
    next(frames)
    threading.Timer(0.1, source.stop).start()
    start = time.monotonic()
    assert list(frames) == []
    assert time.monotonic() - start < 0.5 and fake.made[0].closed


def test_the_grabber_is_made_in_the_thread_that_iterates(fake):
    source = ScreenSource(1, grabber=fake)
    thread = threading.Thread(target=take, args=(source, 2))
    thread.start()
    thread.join()
    assert fake.made[0].thread == thread.ident != threading.get_ident()
    assert fake.made[0].closed


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (-1, "monitor -1 must be >= 0"),
        ((0, 0, 8, 480), "screen rectangle 8x480 must be 16..8192 pixels a side"),
        ((0, 0, 640), "must be four whole numbers"),
        ((0, 0, 640.0, 480), "must be four whole numbers"),
        ("1", "must be a monitor number or (left, top, width, height)"),
        (True, "must be a monitor number"),
    ],
)
def test_a_malformed_region_is_refused_with_one_line(region, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        ScreenSource(region)
    assert "\n" not in str(e.value)


def test_regions_are_parsed_as_typed():
    assert parse_region("2") == 2
    assert parse_region(" 100, 80,640 ,480") == (100, 80, 640, 480)
    assert parse_region("-10,0,640,480") == (-10, 0, 640, 480)  # a monitor left of the primary one
    for bad in ("", "one", "1,2,3", "1,2,3,4,5", "0,0,640,x"):
        with pytest.raises(ValueError, match="must be a monitor number or X,Y,WIDTH,HEIGHT"):
            parse_region(bad)
    with pytest.raises(ValueError, match="8x8 must be 16..8192"):
        parse_region("0,0,8,8")
    assert screen.format_region((1, 2, 30, 40)) == "1,2,30,40" and screen.format_region(3) == "3"
    assert check_region(0) == 0


def test_fps_is_checked():
    with pytest.raises(ValueError, match="rate 0 must be above 0"):
        ScreenSource(1, fps=0)


@pytest.mark.parametrize(
    ("region", "why"),
    [
        (3, "cannot capture monitor 3: there are 2 monitors"),
        (
            (3000, 100, 640, 480),
            "cannot capture 3000,100 640×480: it is not all on the screen (3200×1080 at 0,0)",
        ),
        ((-5, 0, 640, 480), "not all on the screen"),
    ],
)
def test_a_region_off_the_screen_is_missing_and_fails_to_iterate(fake, region, why):
    source = ScreenSource(region, grabber=fake)
    assert why in source.missing()
    with pytest.raises(ScreenError, match=why.split(":")[0]):
        next(iter(source))
    assert all(g.closed for g in fake.made)


def test_a_region_on_the_screen_is_not_missing(fake):
    assert ScreenSource((1920, 0, 1280, 1024), grabber=fake).missing() is None
    assert ScreenSource(0, grabber=fake).missing() is None


def test_a_failing_grab_is_one_line_and_closes_the_grabber(fake, monkeypatch):
    def broken(self, rect):
        raise RuntimeError("XGetImage failed\nBadMatch details")

    monkeypatch.setattr(FakeGrabber, "grab", broken)
    with pytest.raises(ScreenError) as e:
        next(iter(ScreenSource(1, grabber=fake)))
    assert str(e.value) == "cannot capture the screen: XGetImage failed" and fake.made[0].closed


def test_a_grab_that_is_not_bgra_is_an_error(fake, monkeypatch):
    monkeypatch.setattr(FakeGrabber, "grab", lambda self, rect: np.zeros((32, 32), np.uint8))
    with pytest.raises(ScreenError, match="a grab gave uint8 pixels of shape \\(32, 32\\), not BGRA"):
        next(iter(ScreenSource(1, grabber=fake)))


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"WAYLAND_DISPLAY": "wayland-0"}, "the screen cannot be captured here (Wayland?)"),
        ({}, "the screen cannot be captured here: there is no display (DISPLAY is not set)"),
    ],
)
def test_no_x_display_is_said_in_one_line(monkeypatch, env, why):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = ScreenSource(1)
    assert source.missing().startswith(why)
    with pytest.raises(ScreenError, match=why.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        next(iter(source))


def test_without_mss_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.setitem(sys.modules, "mss", None)  # import mss raises ImportError
    assert ScreenSource(1).missing() == "screen capture needs the mss package: pip install mss"


def test_an_x_server_that_cannot_be_reached_is_one_line(monkeypatch):
    pytest.importorskip("mss")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":97.5")  # no such display
    why = ScreenSource(1).missing()
    assert why.startswith("cannot capture the screen: ") and "\n" not in why


def test_xwayland_is_warned_of(fake, monkeypatch, caplog):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    take(ScreenSource(1, grabber=fake), 1)
    assert "captured through XWayland" in caplog.text


# -- a real display ---------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (DISPLAY is not set)")
def test_a_grid_clip_shown_on_the_screen_is_captured_and_its_face_found(grid_clip, landmarker, repo_dir):
    """A clip plays in a window on the X display (Xvfb will do); the screen region under it is read
    through ScreenSource and the front end, which finds the face on most frames."""
    from core.frontend import FrontEnd
    from core.types import TrackStatus

    pytest.importorskip("mss")
    unreachable = ScreenSource(1).missing()
    if unreachable:
        pytest.skip(unreachable)
    left, top = 40, 60
    player = subprocess.Popen(
        [sys.executable, "-m", "tests.screen_player", str(grid_clip[0]), str(left), str(top)],
        cwd=repo_dir,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = player.stdout.readline().split()
        assert line[:1] == ["shown"], f"the player did not show the clip (exit {player.poll()})"
        width, height = int(line[1]), int(line[2])
        source = ScreenSource((left, top, width, height), fps=25)
        assert source.missing() is None
        frames = take(source, 50)  # 2 s
        assert all(f.image.shape == (height, width, 3) for f in frames)
        assert len({f.image.tobytes() for f in frames}) > 10  # it plays: the picture changes
        with FrontEnd(landmarker_path=str(landmarker)) as front:
            crops = list(front.iter_crops(frames))
        tracked = sum(c.status == TrackStatus.TRACKED for c in crops)
        assert tracked >= 0.9 * len(frames), f"face found on {tracked} of {len(frames)} frames"
    finally:
        player.kill()
        player.wait()


def test_a_monitor_unplugged_mid_stream_says_it_is_gone(fake, monkeypatch):
    """A grab that fails because the region left the screen (a monitor unplugged, the resolution
    lowered) says so, not what the X server said (mss: "X11 Protocol Error")."""
    frames = iter(ScreenSource(2, grabber=fake))
    next(frames)

    def unplugged(self):
        return [Monitor(0, (0, 0, 1920, 1080)), Monitor(1, (0, 0, 1920, 1080), True)]

    def broken(self, rect):
        raise RuntimeError("X11 Protocol Error")

    monkeypatch.setattr(FakeGrabber, "monitors", unplugged)
    monkeypatch.setattr(FakeGrabber, "grab", broken)
    with pytest.raises(ScreenError, match="^cannot capture monitor 2: there is 1 monitor$"):
        next(frames)
    assert all(g.closed for g in fake.made)


def test_a_grabber_that_fails_to_close_does_not_hide_why_the_grab_failed(fake, monkeypatch):
    """A display that went away fails the grab and then the close too (mss: "Connection to X server
    closed"); the grab's error is the one said."""

    def broken(self, rect):
        raise RuntimeError("XGetImage failed")

    def close(self):
        raise RuntimeError("Connection to X server closed")

    monkeypatch.setattr(FakeGrabber, "grab", broken)
    monkeypatch.setattr(FakeGrabber, "close", close)
    with pytest.raises(ScreenError, match="^cannot capture the screen: XGetImage failed$"):
        next(iter(ScreenSource(1, grabber=fake)))
