"""User preferences: one frozen dataclass, persisted with QSettings.

The app stores them under the organisation/application names below (the platform's usual place);
tests pass a QSettings on an INI file in a temporary folder instead.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from core.contract import ModelContract
from core.engine import (
    MAX_LANDMARK_EVERY,
    MAX_STABLE_FRAMES,
    MAX_WINDOW,
    MIN_WINDOW,
    StreamOptions,
    check_hop,
    window_and_hop,
)
from core.screen import Region, parse_region

log = logging.getLogger("lipreader")

ORGANISATION = "LipReader"
APPLICATION = "LipReader"
GROUP = "preferences"
DECODER_KINDS = ("", "greedy", "beam", "lexicon", "grammar")  # "" = the model's default
PROVIDERS = ("auto", "cuda", "cpu")
CAMERA_RESOLUTIONS = ((320, 240), (640, 480), (960, 540), (1280, 720), (1920, 1080))
RECENT_GROUP = "recent_videos"  # File ▸ Open Recent: a QSettings array of absolute paths, newest first
RECENT_MAX = 8  # videos File ▸ Open Recent lists
CAPTION_POINTS = 20  # the live caption's text size by default, points
CAPTION_POINTS_RANGE = (10, 72)  # View ▸ Larger / Smaller captions stay within this
MAX_WINDOW_SIDE = 32768  # pixels: a stored window geometry larger than this is not one


@dataclass(frozen=True)
class Preferences:
    """What the user chose in the Preferences dialog (and a few things the app remembers)."""

    window: int = 0  # frames per live sliding window; 0 = the model's own
    hop: int = 0  # frames between two live windows; 0 = the model's own
    decoder: str = ""  # decoder kind: "" = the model's default, else one of DECODER_KINDS
    beam_width: int = 0  # beams kept by beam/lexicon/grammar decoders; 0 = the model's default
    landmark_every: int = 1  # face landmarks from MediaPipe on every Nth frame, optical flow in
    # between; 1 = every frame
    stable_frames: int = 4  # live: a word becomes final only once every decode over this many more
    # frames of right context reads it the same; 0 = at once (less lag, more errors)
    revise: bool = True  # live: when a sentence ends, decode it again whole and show that instead
    provider: str = "auto"  # ONNX Runtime execution provider: "auto", "cuda" or "cpu"
    camera_device: int = 0  # webcam index (/dev/videoN on Linux)
    camera_width: int = 640  # requested webcam resolution, pixels
    camera_height: int = 480
    screen_monitor: int = 1  # Source ▸ Screen…: the monitor captured whole (mss's numbers: 1, 2, ...;
    # 0 = all together), or the one the rectangle below was chosen on
    screen_rect: str = ""  # the rectangle captured instead, "left,top,width,height" in screen pixels;
    # "" = the whole monitor
    model_path: str = ""  # the model opened last; "" = the shipped model
    last_dir: str = ""  # folder of the video opened last, where file dialogs start
    caption_points: int = CAPTION_POINTS  # the live caption's text size, points (View menu)
    side_panel: bool = True  # the lip crop and the probabilities shown beside the video (View menu)
    floating_captions: bool = False  # the floating caption bar shown (View menu)
    floating_rect: str = ""  # where it was last, "left,top,width,height" in screen pixels; "" = where
    # it goes the first time (bottom centre of the primary screen)


def _verify_preferences(p: Preferences) -> Preferences:
    """Return `p` if every field is in range; raise ValueError naming the first bad one."""
    if p.window != 0 and not MIN_WINDOW <= p.window <= MAX_WINDOW:
        raise ValueError(f"window {p.window} must be 0 (the model's) or {MIN_WINDOW}..{MAX_WINDOW} frames")
    if not 0 <= p.hop <= MAX_WINDOW:
        raise ValueError(f"hop {p.hop} must be 0 (the model's) or 1..{MAX_WINDOW} frames")
    if p.window:
        check_hop(p.hop or None, p.window)  # over the model's window: verify_for_model
    if p.decoder not in DECODER_KINDS:
        raise ValueError(f"decoder {p.decoder!r} must be one of {', '.join(DECODER_KINDS[1:])} or ''")
    if not 0 <= p.beam_width <= 1000:
        raise ValueError(f"beam width {p.beam_width} must be 0 (the model's) or 1..1000")
    if not 1 <= p.landmark_every <= MAX_LANDMARK_EVERY:
        raise ValueError(
            f"landmark_every {p.landmark_every} must be 1..{MAX_LANDMARK_EVERY}: MediaPipe runs on "
            "every Nth frame (1 = every frame)"
        )
    if not 0 <= p.stable_frames <= MAX_STABLE_FRAMES:
        raise ValueError(
            f"stable_frames {p.stable_frames} must be 0..{MAX_STABLE_FRAMES}: frames of right context "
            "a live word must read the same over before it is final (0 = at once)"
        )
    if p.provider not in PROVIDERS:
        raise ValueError(f"provider {p.provider!r} must be one of {', '.join(PROVIDERS)}")
    if p.camera_device < 0:
        raise ValueError(f"camera device {p.camera_device} must be >= 0")
    if not (16 <= p.camera_width <= 8192 and 16 <= p.camera_height <= 8192):
        raise ValueError(f"camera resolution {p.camera_width}x{p.camera_height} is out of range")
    if p.screen_monitor < 0:
        raise ValueError(f"screen monitor {p.screen_monitor} must be >= 0 (0: all monitors together)")
    if p.screen_rect and not isinstance(parse_region(p.screen_rect), tuple):  # ValueError if malformed
        raise ValueError(f"screen rectangle {p.screen_rect!r} must be left,top,width,height in pixels")
    low, high = CAPTION_POINTS_RANGE
    if not low <= p.caption_points <= high:
        raise ValueError(f"caption size {p.caption_points} must be {low}..{high} points")
    if p.floating_rect:
        parse_rect(p.floating_rect)  # ValueError if malformed
    return p


def parse_rect(text: str) -> tuple[int, int, int, int]:
    """A window's geometry as stored, "left,top,width,height" in screen pixels (left and top may be
    negative: a monitor left of or above the primary one); raise ValueError if it is not that."""
    try:
        left, top, width, height = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"window geometry {text!r} must be left,top,width,height in pixels") from None
    if not (0 < width <= MAX_WINDOW_SIDE and 0 < height <= MAX_WINDOW_SIDE):
        raise ValueError(f"window size {width}x{height} must be 1..{MAX_WINDOW_SIDE} pixels a side")
    return left, top, width, height


def screen_region(p: Preferences) -> Region:
    """The screen region Source ▸ Screen… chose last: the rectangle if one was, else the monitor."""
    return parse_region(p.screen_rect) if p.screen_rect else p.screen_monitor


def verify_for_model(p: Preferences, contract: ModelContract) -> Preferences:
    """Return `p` if its hop fits the window the model runs with (the model's own where `p` has
    none); raise ValueError saying why not (core's check, core.engine.window_and_hop)."""
    window_and_hop(contract, StreamOptions(window=p.window or None, hop=p.hop or None))
    return p


def data_folder() -> Path:
    """The app's data folder (QStandardPaths' AppDataLocation): takes recorded, adapted models."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))


def default_settings() -> QSettings:
    """The app's QSettings in the platform's usual place."""
    return QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def ini_settings(path: str | Path) -> QSettings:
    """QSettings stored in the INI file `path` (tests, portable installs)."""
    return QSettings(str(path), QSettings.Format.IniFormat)


def load_preferences(settings: QSettings) -> Preferences:
    """Preferences stored in `settings`; a missing or invalid value falls back to its default (all
    of them do, for values fine alone but not together)."""
    defaults = Preferences()
    values = {}
    settings.beginGroup(GROUP)
    try:
        for f in dataclasses.fields(Preferences):
            default = getattr(defaults, f.name)
            raw = settings.value(f.name, default)
            try:
                values[f.name] = _stored(raw, default)
            except (TypeError, ValueError):
                log.warning("ignoring stored preference %s=%r", f.name, raw)
                values[f.name] = default
    finally:
        settings.endGroup()
    for name, value in values.items():  # a value out of range falls back to its default alone
        try:
            _verify_preferences(dataclasses.replace(defaults, **{name: value}))
        except ValueError as e:
            log.warning("ignoring stored preference %s=%r: %s", name, value, e)
            values[name] = getattr(defaults, name)
    try:
        return _verify_preferences(Preferences(**values))
    except ValueError as e:  # values fine alone but not together (a hop over the window)
        log.warning("stored preferences are invalid (%s); using the defaults", e)
        return defaults


def _stored(raw: object, default: object) -> object:
    """A stored value as the type of its default (INI files hold booleans as "true"/"false", and
    give a text with unquoted commas, such as a screen rectangle written by hand, as a list)."""
    if isinstance(default, str) and isinstance(raw, list):
        return ",".join(str(part).strip() for part in raw)
    if isinstance(default, bool):
        if str(raw).lower() not in ("true", "false"):
            raise ValueError(f"not a boolean: {raw!r}")
        return str(raw).lower() == "true"
    return type(default)(raw)


def save_preferences(settings: QSettings, prefs: Preferences) -> None:
    """Validate and store `prefs` in `settings` (written to disk at once).

    Only values that differ from the defaults are stored, so a default changed in a later version
    reaches everyone who never changed that preference.
    """
    _verify_preferences(prefs)
    defaults = Preferences()
    settings.beginGroup(GROUP)
    try:
        for f in dataclasses.fields(Preferences):
            value = getattr(prefs, f.name)
            if value == getattr(defaults, f.name):
                settings.remove(f.name)
            else:
                settings.setValue(f.name, value)
    finally:
        settings.endGroup()
    settings.sync()


def _recent(paths: list[Path]) -> list[Path]:
    """`paths` without repeats (the first of each kept), at most RECENT_MAX."""
    return list(dict.fromkeys(paths))[:RECENT_MAX]


def load_recent_videos(settings: QSettings) -> list[Path]:
    """The videos opened last (absolute paths, newest first, at most RECENT_MAX), as stored."""
    paths: list[Path] = []
    count = settings.beginReadArray(RECENT_GROUP)
    try:
        for i in range(count):
            settings.setArrayIndex(i)
            raw = settings.value("path", "")
            if isinstance(raw, str) and Path(raw).is_absolute():  # anything else is not ours
                paths.append(Path(raw))
    finally:
        settings.endArray()
    return _recent(paths)


def save_recent_videos(settings: QSettings, paths: list[Path]) -> list[Path]:
    """Store `paths` (absolute, newest first) as the videos opened last, repeats and those past
    RECENT_MAX dropped, written to disk at once ([] clears the list); return what was stored."""
    paths = _recent(paths)
    settings.remove(RECENT_GROUP)  # an array written shorter would keep the entries past its end
    settings.beginWriteArray(RECENT_GROUP, len(paths))
    try:
        for i, path in enumerate(paths):
            settings.setArrayIndex(i)
            settings.setValue("path", str(path))
    finally:
        settings.endArray()
    settings.sync()
    return paths
