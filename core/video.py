"""Frame sources: video files and webcams behind one interface, and resampling by timestamp.

A source is an iterable of `Frame`s (index, timestamp in seconds, BGR image). `resample` turns any
source into a stream at the model's frame rate by timestamp, so a 30 fps webcam or a 29.97 fps
file feeds a 25 fps model correctly.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from core.containers import ContainerTimes, container_times, mp4_tracks, second_keyframe
from core.types import IDLE, Frame, Idle

log = logging.getLogger("lipreader")

MAX_SIDE = 8192  # larger frames are refused as absurd
MIN_SIDE = 16  # so are smaller ones
CAMERA_READ_FAILURES = 30  # consecutive failed reads before a camera counts as gone
# consecutive reads of a file that give no frame before it counts as ended: FFmpeg reads on past
# damaged bytes in mid-file when asked again (an MP4 with 4 KB garbled in its middle: 191 of 200
# frames, against 99 when the first failure ends it)
FAILED_READS = 30
SQUARE_PIXELS = 0.01  # a sample aspect ratio this close to 1 counts as square pixels
# a file whose last frame ends more than this many frame periods before its declared duration counts
# as cut short. Judged by time, not by frame count: the count OpenCV declares for a variable frame
# rate WebM/MKV is its duration times a nominal rate, which such a file falls short of when whole
TRUNCATED_FRAMES = 3
SEEK_TRIES = 4  # seeks of a file, each aimed earlier, before the frame read after one is taken as it is
# first bytes of still images, which FFmpeg would otherwise read as a one-frame "video" (a raw
# MJPEG stream starts as a JPEG does: a file with more than one frame is a video all the same)
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")
# a file frame's time more than this many seconds past the duration the file declares is taken as
# broken and the frame timed by its count instead (else resample would fill the jump with copies of
# one frame: hours of them for a timestamp gone wrong)
BROKEN_TIME_SLACK = 5.0
IDLE_PERIOD = 0.1  # seconds between the IDLEs a paused file source yields


class VideoError(RuntimeError):
    """A video cannot be read; the message is one line fit to show a user."""


class CameraError(VideoError):
    """A camera cannot be opened, or stopped delivering frames."""


def _check_shape(image: np.ndarray, what: str) -> None:
    h, w = image.shape[:2]
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise VideoError(f"cannot read {what}: frame size {w}x{h} is out of range")


def _capture(path: Path) -> cv2.VideoCapture:
    """An FFmpeg capture of `path`. OpenCV takes a name as UTF-8 and crashes on one that is not
    (bytes the file system's encoding cannot decode, e.g. a Latin-1 "bébé.mp4"): such a file is
    opened through a symbolic link with a plain name, removed once FFmpeg has the file open."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        folder = tempfile.mkdtemp(prefix="lipreader-")
        link = os.path.join(folder, "video" + "".join(c for c in path.suffix if c.isascii()))
        try:
            os.symlink(os.fsencode(path.absolute()), link)
            return cv2.VideoCapture(link, cv2.CAP_FFMPEG)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return cv2.VideoCapture(name, cv2.CAP_FFMPEG)


def _display_size(cap: cv2.VideoCapture) -> tuple[int, int] | None:
    """(width, height) a player shows the frames at, by their sample aspect ratio; None when the
    pixels are square (or the ratio is not declared, or absurd). The ratio is of the stored frame:
    of its height once OpenCV has turned a frame stored sideways (a phone's) upright."""
    num, den = cap.get(cv2.CAP_PROP_SAR_NUM), cap.get(cv2.CAP_PROP_SAR_DEN)
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if num <= 0 or den <= 0 or width <= 0 or height <= 0 or abs(num / den - 1) < SQUARE_PIXELS:
        return None
    turned = cap.get(cv2.CAP_PROP_ORIENTATION_AUTO) != 0 and int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 180
    size = (width, round(height * num / den)) if turned else (round(width * num / den), height)
    return size if MIN_SIDE <= min(size) and max(size) <= MAX_SIDE else None


def _not_a_video(path: Path) -> str | None:
    """Why `path` is plainly no video, from its first bytes (FFmpeg would read text or a still image
    as a "video" of one frame); None when it may be one."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None if _more_than_one_frame(path) else "it is an image, not a video"
    if b"\0" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "not a video file (it is text)"


def _more_than_one_frame(path: Path) -> bool:
    """Whether FFmpeg decodes a second frame from `path` (a raw MJPEG stream, not a still image)."""
    cap = _capture(path)
    try:
        return cap.isOpened() and cap.grab() and cap.grab()
    finally:
        cap.release()


def _why_unopened(path: Path) -> str:
    """Why FFmpeg could not open `path`, as far as can be told."""
    tracks = mp4_tracks(path)
    if tracks is not None and b"vide" not in tracks:
        return "it has no video track" + (" (audio only)" if b"soun" in tracks else "")
    return "damaged or incomplete file, or not a video"


class VideoFileSource:
    """Frames of a video file, optionally paced at natural speed like a live camera.

    With `realtime=True` iteration sleeps so frames arrive when they would from a camera; `pause`,
    `resume` and `seek` may be called from another thread. While paused it yields IDLE every
    IDLE_PERIOD seconds, so that what reads it can hand out what finished meanwhile. A file whose
    frames end well before the duration its container declares is logged as a warning (unless
    `warn_truncated` is False: the caller reports `ended_early` itself).
    """

    def __init__(self, path: str | Path, realtime: bool = False, warn_truncated: bool = True) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.warn_truncated = warn_truncated
        # after an iteration to the end of a file cut short: "ended after N of M frames (truncated?)"
        self.ended_early: str | None = None
        if not self.path.exists():
            raise VideoError(f"cannot read video {self.path}: no such file")
        if self.path.is_dir():
            raise VideoError(f"cannot read video {self.path}: it is a folder")
        if self.path.stat().st_size == 0:
            raise VideoError(f"cannot read video {self.path}: the file is empty")
        why = _not_a_video(self.path)
        if why is not None:
            raise VideoError(f"cannot read video {self.path}: {why}")
        cap = _capture(self.path)
        ok = cap.isOpened()
        self.fps = cap.get(cv2.CAP_PROP_FPS) if ok else 0.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        times = container_times(self.path) if ok else ContainerTimes()
        self._played = times.played  # an MP4's length, edits applied
        # seconds into the file, as a player plays it, where its frames start (an MP4, Matroska,
        # MPEG-TS or MPEG program stream file whose video starts after its sound): frame times and
        # `duration` count from the first frame, so times shown to a user or written to subtitles add this
        self.delay = times.video_delay
        # Matroska/WebM, MPEG-TS and program streams declare no frame count: OpenCV's is the file's
        # length (from its start, to its longest stream's end: sound may run on past the frames) times
        # the frame rate, so frames ending early do not tell a file cut short. Whether a Matroska
        # file's bytes were cut is known (None: not such a file, or not known)
        self._counts_file = times.counts_file_length
        self._cut = times.cut
        # (width, height) frames are scaled to, as a player shows them: non-square pixels (a DVD's,
        # an anamorphic video's) would stretch the face; None when the pixels are square
        self.display_size = _display_size(cap) if ok else None
        cap.release()
        if not ok:
            raise VideoError(f"cannot read video {self.path}: {_why_unopened(self.path)}")
        if not (0.5 <= self.fps <= 1000):
            self.fps = 25.0  # some containers do not declare a rate; frames are then paced at 25
        self._paused = threading.Event()
        self._stopped = threading.Event()
        self._seek_to: float | None = None
        self._lock = threading.Lock()
        # seconds from the first frame from which OpenCV can seek in the file, once looked for: a frame
        # past its second keyframe (math.inf: none by a time sought; 0: not told)
        self._seekable_from: float | None = None

    @property
    def duration(self) -> float:
        """Seconds, as declared by the container (0 when unknown): the frames it holds, played as
        its movie header says (an MP4 trimmed without re-encoding holds frames it does not play)."""
        held = self.frame_count / self.fps if self.frame_count > 0 else 0.0
        if self._counts_file:  # counted from the file's start: less the seconds before the first frame
            held = max(0.0, held - self.delay)
        return min(held, self._played) if self._played and held else held

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        """End the iteration at the next frame, at once if it waits for a frame's time (any thread);
        the source is then done."""
        self._stopped.set()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def seek(self, seconds: float) -> None:
        """Jump to `seconds` from the first frame (not counting `delay`); takes effect at the next frame."""
        with self._lock:
            self._seek_to = max(0.0, seconds)

    def __iter__(self) -> Iterator[Frame | Idle]:
        cap = _capture(self.path)
        if not cap.isOpened():
            raise VideoError(f"cannot read video {self.path}: {_why_unopened(self.path)}")
        self.ended_early = None
        # pacing: the first frame read (and the first after a seek) is due when it was read, as a
        # camera's is when it arrives; opening and seeking take no playing time
        index, start, offset = 0, None, 0.0
        timestamp: float | None = None  # the last frame's, None before the first and after a seek
        sought = 0.0  # the time of the last seek: where the file ended if no frame came after it
        broken: float | None = None  # the first frame time past the declared duration, once seen
        failed = 0  # reads that gave no frame since the last frame
        damaged = False  # frames that could not be decoded were passed over
        try:
            while not self._stopped.is_set():
                with self._lock:
                    seek, self._seek_to = self._seek_to, None
                if seek is not None:
                    ok, image = (False, None) if self._before_seekable(seek) else _seek(cap, seek, self.fps)
                    if not ok and seek < self.duration:  # FFmpeg cannot seek there: read from the start
                        cap.release()
                        cap = _capture(self.path)
                        ok, image = _read_to(cap, seek, self.fps)
                    index, timestamp, start, sought = int(seek * self.fps + 0.5), None, None, seek
                else:
                    ok, image = cap.read()
                if not ok or image is None:  # the end, or damaged bytes that FFmpeg reads past
                    failed += 1
                    if failed >= FAILED_READS:
                        break
                    continue
                if failed and not damaged:
                    damaged = True
                    log.warning(
                        "video %s: frames after %.1f s could not be decoded (damaged file?): passed over",
                        self.path,
                        self.delay + (sought if timestamp is None else timestamp),
                    )
                failed = 0
                _check_shape(image, f"video {self.path}")
                if self.display_size is not None:
                    image = cv2.resize(image, self.display_size, interpolation=cv2.INTER_AREA)
                stamp = _stamp(cap)
                if broken is None and _broken_time(stamp, self.duration):
                    broken = stamp
                    log.warning(
                        "video %s: a frame time (%.1f s) runs past its declared duration (%.1f s): "
                        "its frames are timed by their count from there",
                        self.path,
                        self.delay + stamp,
                        self.delay + self.duration,
                    )
                timestamp = _frame_time(stamp, timestamp, index / self.fps, self.fps, self.duration)
                if self.realtime:
                    if start is None:
                        start, offset = time.monotonic(), timestamp
                    start = yield from self._pace(start, timestamp - offset)
                    if self._stopped.is_set():
                        break
                yield Frame(index, timestamp, image)
                index += 1
        finally:
            cap.release()
        if self._stopped.is_set():
            return
        if index == 0:
            raise VideoError(f"cannot read video {self.path}: no frame could be decoded")
        ended = (sought if timestamp is None else timestamp) + 1 / self.fps
        short = self.duration > 0 and ended < self.duration - TRUNCATED_FRAMES / self.fps
        if short and (self._cut if self._counts_file else True):  # a whole file's sound may run on
            self.ended_early = (  # after a seek that found no frame, where it ends is not known
                f"has no frame at {self.delay + sought:.1f} s, where it was sought, "
                f"of the {self.delay + self.duration:.1f} s it declares (truncated?)"
                if timestamp is None
                else f"ended after {index} of {round(self.duration * self.fps)} frames (truncated?)"
            )
            if self.warn_truncated:
                log.warning("video %s %s", self.path, self.ended_early)

    def _before_seekable(self, seconds: float) -> bool:
        """Whether OpenCV cannot seek to `seconds` from the first frame: an MPEG-TS file whose packets
        mark no keyframe after its first, a frame before there (FFmpeg decodes from a keyframe; it
        finds no frame, after seconds of trying in a long file, or one from a later keyframe)."""
        if self._seekable_from is None or math.isinf(self._seekable_from):  # not known, or not by then
            try:
                keyframe = second_keyframe(self.path, seconds)
            except OSError:
                keyframe = None
            # OpenCV lands a frame after the second keyframe at the soonest; not told: it tries
            self._seekable_from = 0.0 if keyframe is None else keyframe + 0.5 / self.fps
        return seconds < self._seekable_from

    def _pace(self, start: float, due: float) -> Generator[Idle, None, float]:
        """Sleep until `due` seconds after `start`; returns `start`, shifted by the length of a pause,
        during which IDLE is yielded every IDLE_PERIOD seconds."""
        if self._paused.is_set():
            paused_at = idle_at = time.monotonic()
            while self._paused.is_set() and self._seek_to is None and not self._stopped.is_set():
                time.sleep(0.02)
                if time.monotonic() - idle_at >= IDLE_PERIOD:
                    yield IDLE
                    idle_at = time.monotonic()
            start += time.monotonic() - paused_at
        delay = start + due - time.monotonic()
        if delay > 0:
            self._stopped.wait(delay)  # a frame may last seconds in a variable-frame-rate file
        return start


def _stamp(cap: cv2.VideoCapture) -> float:
    """The presentation time (seconds from the stream's start) of the frame read last; 0 if unknown."""
    return cap.get(cv2.CAP_PROP_POS_MSEC) / 1000


def _seek(cap: cv2.VideoCapture, target: float, fps: float) -> tuple[bool, np.ndarray | None]:
    """Seek to `target` seconds and read the frame there. OpenCV turns a time into a frame number at
    the file's average rate, which misses in a variable-frame-rate file: a frame read more than half
    a frame period past the target is sought again, earlier by the miss (no frame after the target is
    skipped), and one read before it is followed by the frames up to it (decoded, not converted).

    FFmpeg seeks to keyframes: a file without an index (MPEG-TS, program stream) gives the same frame,
    its next keyframe's or the one after, however much earlier it is sought. That one is then sought
    at the start, and one still late there is none found (the time lies before the second keyframe)."""
    half, aim, last = 0.5 / fps, target, None
    for _ in range(SEEK_TRIES):
        cap.set(cv2.CAP_PROP_POS_MSEC, aim * 1000)
        ok, image = cap.read()
        stamp = _stamp(cap)
        if not ok or image is None or stamp - target <= half:
            break
        if aim == 0:
            return False, None
        aim, last = 0.0 if stamp == last else max(0.0, aim - (stamp - target) - 1 / fps), stamp
    skipped = False
    while ok and image is not None and 0 < _stamp(cap) < target - half:  # 0: the file gives no time
        ok, skipped = cap.grab(), True
    if skipped and ok:
        ok, image = cap.retrieve()
    return ok, image if ok else None


def _read_to(cap: cv2.VideoCapture, target: float, fps: float) -> tuple[bool, np.ndarray | None]:
    """Read a file just opened up to the frame at `target` seconds and return that frame: the way to
    it where seeking finds no frame (OpenCV cannot seek in an MPEG transport stream). Frames before
    it are decoded, not converted; one without a time counts as a frame period after the one before."""
    half, counted = 0.5 / fps, 0.0
    while cap.grab():
        if (_stamp(cap) or counted) >= target - half:
            return cap.retrieve()
        counted += 1 / fps
    return False, None


def _broken_time(stamp: float, duration: float) -> bool:
    """Whether a file frame's time is past the file's declared `duration` (0: unknown) by more than
    BROKEN_TIME_SLACK."""
    return duration > 0 and stamp > duration + BROKEN_TIME_SLACK


def _frame_time(
    stamp: float, previous: float | None, counted: float, fps: float, duration: float = 0.0
) -> float:
    """A file frame's time in seconds: its presentation time in the file (`stamp`, which OpenCV
    gives from the stream's start), so a variable frame rate plays at its own pace. OpenCV reads 0
    where the file gives no time: the first frame after opening or a seek then takes `counted`
    (index / declared rate), a later one the previous time plus one declared frame period, as does
    one whose time does not move on, or one more than BROKEN_TIME_SLACK past the file's declared
    `duration` (0: unknown)."""
    if _broken_time(stamp, duration):  # as if the file gave no time
        stamp = 0.0
    if previous is None:
        return stamp if stamp > 0 or counted == 0 else counted
    return stamp if stamp > previous else previous + 1 / fps


class CameraSource:
    """Frames from a webcam, timestamped on arrival."""

    def __init__(self, device: int = 0, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ends iteration at the next frame (callable from another thread)."""
        self._stop.set()

    def missing(self) -> str | None:
        """Why the camera cannot open, when that is known without opening it (on Linux, no
        /dev/videoN; opening takes seconds), else None."""
        node = Path(f"/dev/video{self.device}")
        if sys.platform.startswith("linux") and not node.exists():
            return f"cannot open camera {self.device}: no such camera ({node} does not exist)"
        return None

    def __iter__(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            raise CameraError(f"cannot open camera {self.device}: no such camera or it is in use")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        index, failures, start = 0, 0, time.monotonic()
        try:
            while not self._stop.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    failures += 1
                    if failures >= CAMERA_READ_FAILURES:
                        raise CameraError(f"camera {self.device} stopped delivering frames (unplugged?)")
                    time.sleep(0.01)
                    continue
                failures = 0
                _check_shape(image, f"camera {self.device}")
                yield Frame(index, time.monotonic() - start, image)
                index += 1
        finally:
            cap.release()


def resample(frames: Iterable[Frame | Idle], fps: float) -> Iterator[Frame | Idle]:
    """Frames at exactly `fps` by timestamp: each output tick takes the source frame nearest to it.

    Frames are dropped when the source is faster and repeated when it is slower, so the stream's
    duration is kept. Output indices and timestamps are those of the resampled stream. A paused
    source's IDLEs pass through as they come.
    """
    period = 1.0 / fps
    tick = 0
    origin: float | None = None
    previous: Frame | None = None
    prev_t = src_period = 0.0
    for frame in frames:
        if isinstance(frame, Idle):
            yield frame
            continue
        if origin is None:
            origin = frame.timestamp
        t = frame.timestamp - origin
        while tick * period <= t + 1e-6:
            tau = tick * period
            nearer = previous if previous is not None and tau - prev_t < t - tau else frame
            yield Frame(tick, tau, nearer.image)
            tick += 1
        if previous is not None:
            src_period = t - prev_t
        previous, prev_t = frame, t
    # the last source frame also covers the ticks in the rest of its own frame period
    while previous is not None and tick * period < prev_t + src_period - period / 2 - 1e-6:
        yield Frame(tick, tick * period, previous.image)
        tick += 1
