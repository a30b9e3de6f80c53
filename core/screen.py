"""A frame source of the screen: a whole monitor or a rectangle of it, grabbed live with `mss`.

`ScreenSource` is iterated like `core.video.CameraSource` (`Frame`s, BGR uint8, timestamped from the
first grab) and goes through the same pipeline: a video call's other speaker, on the screen rather
than in the webcam. Frames are grabbed when a clock says they are due, at the model's frame rate; a
grab that comes late (the grab itself or what reads the frames took longer than a frame period)
skips the ticks it missed rather than catching up on them, so the stream never lags the screen.

mss is imported lazily (a missing package is a one-line error, not an import failure of core), and
each iteration makes its own `mss.MSS` instance in the thread that iterates and uses it there only
(mss calls itself thread-safe, but an instance made in one thread and used in another has failed on
Windows: python-mss issues #261, #273).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.types import Frame
from core.video import MAX_SIDE, MIN_SIDE, VideoError

log = logging.getLogger("lipreader")

Rect = tuple[int, int, int, int]  # (left, top, width, height) in screen pixels
Region = int | Rect  # a monitor number (1, 2, ...; 0: all of them together) or a rectangle
DEFAULT_FPS = 25.0  # the shipped model's rate; callers pass their model's
MAX_FPS = 120.0
REGION_FORMS = "a monitor number or X,Y,WIDTH,HEIGHT in pixels"  # what parse_region reads
LAST_SCREEN = "last"  # in place of a Region: the one its user chose last (the app keeps that choice)
WAYLAND = "the screen cannot be captured here (Wayland?): LipReader captures an X11 display"
NO_DISPLAY = "the screen cannot be captured here: there is no display (DISPLAY is not set)"
NO_MSS = "screen capture needs the mss package: pip install mss"
XWAYLAND = (
    "this is a Wayland session: the screen is captured through XWayland, which sees X11 windows only "
    "(the others may come out black)"
)


class ScreenError(VideoError):
    """The screen cannot be captured; the message is one line fit to show a user."""


@dataclass(frozen=True)
class Monitor:
    """A monitor as mss numbers it: 1, 2, ...; 0 is all of them together (the virtual screen)."""

    number: int
    rect: Rect  # (left, top, width, height) in screen pixels
    primary: bool = False

    def describe(self) -> str:
        """'1: 1920×1080 at 0,0 (primary)'."""
        which = "all monitors" if self.number == 0 else self.describe_size()
        return f"{self.number}: {which}{' (primary)' if self.primary else ''}"

    def describe_size(self) -> str:
        """'3200×1080 at 0,0'."""
        left, top, width, height = self.rect
        return f"{width}×{height} at {left},{top}"


class Grabber(Protocol):
    """What ScreenSource grabs from: mss (MssGrabber), or a fake in tests."""

    def monitors(self) -> list[Monitor]:
        """Monitor 0 (all together), then 1, 2, ..."""

    def grab(self, rect: Rect) -> np.ndarray:
        """The pixels of `rect`: uint8 BGRA, shape (H, W, 4) (H, W: `rect`'s, or more on a HiDPI
        screen whose pixels are not the coordinates')."""

    def close(self) -> None: ...


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def why_no_screen() -> str | None:
    """Why this session has no screen mss can capture, from the environment alone; None when it
    may have one. Windows and macOS always do (macOS asks for the Screen Recording permission, and
    gives black frames until it is granted)."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY"):
        return None
    return WAYLAND if os.environ.get("WAYLAND_DISPLAY") else NO_DISPLAY


def _wayland_session() -> bool:
    """Whether this is a Linux Wayland session (an X11 DISPLAY there is XWayland's)."""
    return sys.platform.startswith("linux") and (
        bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"
    )


class MssGrabber:
    """Grabs with one `mss.MSS` instance: make one per thread, close it when done."""

    def __init__(self) -> None:
        why = why_no_screen()
        if why is not None:
            raise ScreenError(why)
        try:
            import mss
        except ImportError as e:
            raise ScreenError(NO_MSS) from e
        try:
            self._mss = mss.MSS()
        except Exception as e:  # mss.ScreenShotError (an X server that refuses), OSError (no libxcb)
            raise ScreenError(f"cannot capture the screen: {_first_line(e)}") from e

    def monitors(self) -> list[Monitor]:
        return [
            Monitor(i, (m["left"], m["top"], m["width"], m["height"]), bool(m.get("is_primary", False)))
            for i, m in enumerate(self._mss.monitors)
        ]

    def grab(self, rect: Rect) -> np.ndarray:
        left, top, width, height = rect
        shot = self._mss.grab({"left": left, "top": top, "width": width, "height": height})
        return np.asarray(shot)  # a view of its BGRA bytes, shape (H, W, 4)

    def close(self) -> None:
        self._mss.close()


def _close(grabber: Grabber) -> None:
    """Close `grabber`; a failure (mss on a display that went away: "Connection to X server
    closed") is logged, never raised over the error that ended the grabbing."""
    try:
        grabber.close()
    except Exception as e:
        log.debug("closing the screen grabber failed: %s", e, exc_info=True)


def list_monitors(grabber: Callable[[], Grabber] = MssGrabber) -> list[Monitor]:
    """The monitors, 0 (all together) first; raises ScreenError when the screen cannot be captured."""
    g = grabber()
    try:
        return g.monitors()
    except ScreenError:
        raise
    except Exception as e:
        raise ScreenError(f"cannot list the monitors: {_first_line(e)}") from e
    finally:
        _close(g)


def parse_region(text: str) -> Region:
    """A region as typed: "2" (a monitor) or "100,80,640,480" (left, top, width, height); raises
    ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        return check_region(numbers[0])
    if len(numbers) == 4:
        return check_region((numbers[0], numbers[1], numbers[2], numbers[3]))
    raise ValueError(f"screen region {text!r} must be {REGION_FORMS}")


def format_region(region: Region) -> str:
    """The region as parse_region reads it: "2" or "100,80,640,480"."""
    return str(region) if isinstance(region, int) else ",".join(str(v) for v in region)


def check_region(region: Region) -> Region:
    """Return `region` if it is a monitor number >= 0 or a rectangle of MIN_SIDE..MAX_SIDE pixels a
    side; raise ValueError naming what is wrong (whether it is on the screen is known only there:
    ScreenSource.missing)."""
    if isinstance(region, bool) or not isinstance(region, int | tuple):
        raise ValueError(f"screen region {region!r} must be a monitor number or (left, top, width, height)")
    if isinstance(region, int):
        if region < 0:
            raise ValueError(f"monitor {region} must be >= 0 (0: all monitors together)")
        return region
    if len(region) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in region):
        raise ValueError(f"screen rectangle {region!r} must be four whole numbers: left, top, width, height")
    _, _, width, height = region
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValueError(f"screen rectangle {width}x{height} must be {MIN_SIDE}..{MAX_SIDE} pixels a side")
    return region


def describe_region(region: Region) -> str:
    """What a status bar says of it: 'screen 1' or 'screen 100,80 640×480'."""
    if isinstance(region, int):
        return "screen (all monitors)" if region == 0 else f"screen {region}"
    left, top, width, height = region
    return f"screen {left},{top} {width}×{height}"


def _resolve(region: Region, monitors: list[Monitor]) -> Rect:
    """The rectangle of `region` on these monitors; raises ScreenError if it is not on the screen."""
    if not monitors:
        raise ScreenError("cannot capture the screen: no monitor found")
    if isinstance(region, int):
        if region >= len(monitors):
            count = len(monitors) - 1
            raise ScreenError(
                f"cannot capture monitor {region}: there {'is' if count == 1 else 'are'} {count} "
                f"monitor{'' if count == 1 else 's'}"
            )
        return monitors[region].rect
    left, top, width, height = region
    sl, st, sw, sh = monitors[0].rect
    if left < sl or top < st or left + width > sl + sw or top + height > st + sh:
        raise ScreenError(
            f"cannot capture {left},{top} {width}×{height}: it is not all on the screen "
            f"({monitors[0].describe_size()})"
        )
    return region


class ScreenSource:
    """Frames of a region of the screen, grabbed at `fps` by the clock, timestamped by their tick.

    Frame k is grabbed when tick k is due (k / fps seconds after the first grab) and stamped k / fps.
    When a grab starts late, past one or more ticks (a slow grab, or a reader that took longer than
    a frame period), it takes the tick it started in: the ticks missed are skipped (`skipped` counts
    them) and `resample` repeats the frame before for them, which the pipeline reads as a repeat at
    no cost. Frames are never queued, so what is read is the screen as it is now.

    region: a monitor number (Monitor.number) or (left, top, width, height) in screen pixels;
    grabber: makes the Grabber, in the thread that iterates (default: mss).
    """

    def __init__(
        self, region: Region, fps: float = DEFAULT_FPS, grabber: Callable[[], Grabber] = MssGrabber
    ) -> None:
        self.region = check_region(region)
        if not (0 < fps <= MAX_FPS):
            raise ValueError(f"screen capture rate {fps} must be above 0 and at most {MAX_FPS:g} fps")
        self.fps = fps
        self.label = describe_region(self.region)
        self.skipped = 0  # ticks passed over because a grab came late, in the last iteration
        self.rect: Rect | None = None  # the region on the screen, (left, top, width, height), once resolved
        self._grabber = grabber
        self._stop = threading.Event()

    def stop(self) -> None:
        """End iteration at the next frame, at once if it waits for a tick (any thread)."""
        self._stop.set()

    def resolve(self) -> Rect:
        """The region's rectangle on the screen now, kept in `rect` (a monitor's as listed now);
        raises ScreenError when it cannot be captured."""
        self.rect = _resolve(self.region, list_monitors(self._grabber))
        return self.rect

    def missing(self) -> str | None:
        """Why the region cannot be captured (no display, Wayland, no mss, a monitor that is not
        there, a rectangle off the screen), found in a few milliseconds; None when it can be (its
        rectangle is then in `rect`)."""
        try:
            self.resolve()
        except ScreenError as e:
            return str(e)
        return None

    def __iter__(self) -> Iterator[Frame]:
        grabber = self._grabber()  # in this thread: an mss instance is not shared between threads
        try:
            try:
                rect = self.rect = _resolve(self.region, grabber.monitors())
            except ScreenError:
                raise
            except Exception as e:
                raise ScreenError(f"cannot list the monitors: {_first_line(e)}") from e
            if _wayland_session():
                log.warning("%s", XWAYLAND)
            yield from self._frames(grabber, rect)
        finally:
            _close(grabber)

    def _frames(self, grabber: Grabber, rect: Rect) -> Iterator[Frame]:
        period = 1.0 / self.fps
        self.skipped = 0
        index = tick = 0
        start: float | None = None
        while not self._stop.is_set():
            if start is not None:
                delay = start + tick * period - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                late = math.floor((time.monotonic() - start) / period + 1e-6)
                if late > tick:  # the ticks missed are skipped, not caught up on
                    self.skipped += late - tick
                    tick = late
            else:
                start = time.monotonic()
            try:
                pixels = grabber.grab(rect)
            except Exception as e:  # mss.ScreenShotError: the display went, the region left the screen
                raise ScreenError(self._why_grab_failed(e)) from e
            yield Frame(index, tick * period, _bgr(pixels))
            index += 1
            tick += 1

    def _why_grab_failed(self, e: Exception) -> str:
        """Why a grab failed, in words: the region is no longer on the screen as it is now (a
        monitor unplugged, the resolution lowered), the display cannot be reached, or else what
        the grab said (mss says "X11 Protocol Error" for the first)."""
        try:
            _resolve(self.region, list_monitors(self._grabber))  # a new grabber: the old one's are cached
        except ScreenError as gone:
            return str(gone)
        return f"cannot capture the screen: {_first_line(e)}"


def _bgr(pixels: np.ndarray) -> np.ndarray:
    """BGR uint8, shape (H, W, 3), contiguous, from a grab's BGRA (H, W, 4) (alpha dropped)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        got = f"{pixels.dtype} pixels of shape {pixels.shape}"
        raise ScreenError(f"cannot capture the screen: a grab gave {got}, not BGRA")
    h, w = pixels.shape[:2]
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ScreenError(f"cannot capture the screen: frame size {w}x{h} is out of range")
    return np.ascontiguousarray(pixels[:, :, :3])
