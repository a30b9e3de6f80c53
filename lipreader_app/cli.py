"""The `lipreader` command: caption videos, evaluate a model, fetch assets, or start the GUI.

    lipreader                          the GUI (same as `lipreader gui`)
    lipreader caption VIDEO_OR_FOLDER... [--format json|srt|vtt|txt] [--out DIR] [--workers N]
    lipreader eval DATA                GRID folder or manifest (CSV/JSONL): CER/WER
    lipreader assets fetch [--from DIR]
    lipreader gui [--video PATH | --camera N | --screen [MONITOR | X,Y,W,H]] [--model PATH]
                  [--screenshot PNG] [--quit-after S]

Flags are named after the library's keyword arguments; the limits of the numbers are the app's
(core.engine's MAX_*). Errors are one line on stderr (`lipreader: error: ...`, usage errors
`lipreader COMMAND: error: ...` after the command's usage); exit status 2 for usage errors, 1 when
anything failed, 141 (as for `cat`) when stdout was closed early, e.g. by `| head`. The caption and
eval commands themselves are in lipreader_app.batch_commands.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from core.engine import MAX_LANDMARK_EVERY, MAX_STABLE_FRAMES, MAX_WINDOW, MIN_WINDOW, StreamOptions
from core.inference import PROVIDERS
from core.screen import LAST_SCREEN, Region, parse_region
from core.subtitles import FORMATS
from lipreader_app.batch import USER_ERRORS, quiet_native_stderr
from lipreader_app.batch_commands import (
    PROG,
    UsageError,
    cmd_caption,
    cmd_eval,
    drop_stdout,
    write_stdout,
)

log = logging.getLogger("lipreader")

DECODERS = ("greedy", "beam", "lexicon", "grammar")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` in `cat f | head`


def _count(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type: an int from `low` to `high` (None: no limit), else an error saying so (and
    `why` the limit)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            expected = {0: "0 or more", 1: "a positive integer"}.get(low, f"{low} or more")
            expected = expected if high is None else f"{low}..{high}" + (f" ({why})" if why else "")
            raise argparse.ArgumentTypeError(f"must be {expected}, not {text!r}")
        return value

    return parse


_positive = _count(1)
_non_negative = _count(0)


def _finite(text: str) -> float | None:
    """`text` as a number; None when it is none, or NaN or infinite (which no flag takes: a NaN
    passes every range check and decodes nonsense)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _number(text: str) -> float:
    """An argparse type: a finite number, else an error saying so."""
    value = _finite(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _finite(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _point(text: str) -> tuple[float, float]:
    point = [_finite(v) for v in text.split(",")]
    if len(point) != 2 or None in point:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, e.g. 420,130, not {text!r}")
    x, y = point
    return x, y


def _screen_region(text: str) -> Region | str:
    """An argparse type: a monitor number or X,Y,WIDTH,HEIGHT (core.screen.parse_region), or
    LAST_SCREEN (what --screen alone gives: argparse passes a text const through its type too)."""
    if text == LAST_SCREEN:
        return LAST_SCREEN
    try:
        return parse_region(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--provider", choices=PROVIDERS, default="auto", help="ONNX Runtime device (default auto)")
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="ONNX Runtime threads per process (default 2, or 1 with several workers)",
    )
    p.add_argument("--decoder", choices=DECODERS, default=None, help="decoder (default: the model's)")
    p.add_argument("--beam-width", type=_positive, default=None, help="beams of beam decoders")
    p.add_argument(
        "--word-score",
        type=_number,
        default=None,
        help="lexicon/grammar decoders' score per emitted word, whole utterances and live windows "
        "alike (default: the model's, e.g. 2 whole and 0 live)",
    )
    p.add_argument("--lm", default=None, help="ARPA word LM for the lexicon/grammar decoders")
    p.add_argument(
        "--window",
        type=_count(MIN_WINDOW, MAX_WINDOW),
        default=None,
        help=f"frames per model window, {MIN_WINDOW}..{MAX_WINDOW} (default: the model's)",
    )
    p.add_argument(
        "--hop",
        type=_count(1, MAX_WINDOW),
        default=None,
        help="frames between model runs, at most the window (default: the model's)",
    )
    p.add_argument(
        "--stable-frames",
        type=_count(0, MAX_STABLE_FRAMES),
        default=StreamOptions.stable_frames,
        metavar="N",
        help="live windows: a word is final once every decode over N more frames reads it the same "
        f"(0..{MAX_STABLE_FRAMES}, default {StreamOptions.stable_frames}; 0: at once, less lag, more errors)",
    )
    p.add_argument(
        "--whole-utterances",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decode each utterance whole when it closes (the default); --no-whole-utterances: "
        "stitch the live sliding windows as the app's live view does",
    )
    p.add_argument(
        "--revise",
        action=argparse.BooleanOptionalAction,
        default=StreamOptions.revise,
        help="live windows: when an utterance ends, decode it again whole and let that replace its "
        "live words, as the app's live view does (default: yes)",
    )
    p.add_argument(
        "--landmark-every",
        type=_count(1, MAX_LANDMARK_EVERY, "optical flow drifts over longer gaps"),
        default=1,
        metavar="N",
        help=f"run MediaPipe on every Nth frame only (1..{MAX_LANDMARK_EVERY}), optical flow in between "
        "(default 1: every frame)",
    )
    p.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")


def _add_verbose(p: argparse.ArgumentParser, default: object) -> None:
    """-v before the command (`default` False) and after it (`default` SUPPRESS: keeps the first)."""
    text = "log more, keep native libraries' output"
    p.add_argument("-v", "--verbose", action="store_true", default=default, help=text)


def _command(sub: argparse._SubParsersAction, name: str, **kwargs: object) -> argparse.ArgumentParser:
    """A command's parser, with -v and itself as `command_parser` (for usage errors found later)."""
    p = sub.add_parser(name, **kwargs)
    _add_verbose(p, argparse.SUPPRESS)
    p.set_defaults(command_parser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Live lip-reading captions, from the lips alone.")
    _add_verbose(parser, False)
    parser.add_argument("--selftest", action="store_true", help="check the installation and exit")
    parser.add_argument(
        "--selftest-video",
        type=Path,
        default=None,
        metavar="PATH",
        help="with --selftest: a recording of a face instead of the generated clip",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cap = _command(sub, "caption", help="caption video files or folders")
    cap.add_argument("paths", nargs="+", metavar="VIDEO_OR_FOLDER")
    cap.add_argument(
        "--format",
        choices=("json", *FORMATS),
        default="json",
        help="json: JSON Lines on stdout; srt/vtt/txt: files beside each video or in --out",
    )
    cap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for srt/vtt/txt files, made if missing (not with json, which goes to stdout)",
    )
    cap.add_argument("--overwrite", action="store_true", help="replace existing subtitle files")
    cap.add_argument(
        "--face",
        type=_point,
        default=None,
        metavar="X,Y",
        help="with several faces in view: read the one at this pixel of the video as a player shows it, "
        "even upside down (default: the largest)",
    )
    _add_engine_flags(cap)
    cap.set_defaults(func=cmd_caption)

    ev = _command(
        sub, "eval", help="CER/WER on a GRID folder or a manifest (CSV/JSONL: video,transcript[,start,end])"
    )
    ev.add_argument("data", type=Path, metavar="DATA")
    ev.add_argument("--limit", type=_positive, default=None, help="evaluate this many clips, spread evenly")
    _add_engine_flags(ev)
    ev.set_defaults(func=cmd_eval)

    assets = _command(sub, "assets", help="third-party model files")
    assets_sub = assets.add_subparsers(dest="assets_command", metavar="ACTION", required=True)
    fetch = _command(assets_sub, "fetch", help="install face_landmarker.task (download or copy, verified)")
    fetch.add_argument("--from", dest="source_dir", type=Path, default=None, help="copy from this folder")
    fetch.set_defaults(func=cmd_assets_fetch)

    gui = _command(sub, "gui", help="the desktop app (the default)")
    source = gui.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, default=None, help="open this video")
    source.add_argument("--camera", type=_non_negative, default=None, help="open this camera (0, 1, ...)")
    source.add_argument(
        "--screen",
        type=_screen_region,
        nargs="?",
        const=LAST_SCREEN,
        default=None,
        metavar="MONITOR|X,Y,W,H",
        help="read lips from the screen: a monitor (1, 2, ...; 0 all together) or a rectangle of it in "
        "pixels (default: the one chosen last in Source > Screen..., else monitor 1); keep LipReader's "
        "window out of it",
    )
    gui.add_argument("--model", type=Path, default=None, help="ONNX model")
    gui.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the window and quit")
    gui.add_argument("--quit-after", type=_seconds, default=None, help="quit after this many seconds")
    gui.add_argument("--provider", choices=PROVIDERS, default=None, help="ONNX Runtime device")
    gui.set_defaults(func=cmd_gui)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _setup_logging(verbose: bool, stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def cmd_assets_fetch(args: argparse.Namespace, stderr: TextIO) -> int:
    from core.assets import fetch_landmarker

    write_stdout(f"installed {fetch_landmarker(args.source_dir)}")
    return 0


def _prepare_qt_environment(offscreen: bool) -> None:
    """Undo OpenCV's pointing Qt at its own plugins (cv2 sets it on import); pick a platform."""
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        if "cv2" in Path(os.environ.get(name, "")).parts:
            del os.environ[name]
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    )
    if headless and offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif headless:
        raise RuntimeError("cannot start the GUI: no display (DISPLAY is not set); use `lipreader caption`")


def cmd_gui(args: argparse.Namespace, stderr: TextIO) -> int:
    _prepare_qt_environment(offscreen=args.screenshot is not None)
    try:
        from lipreader_app.app import make_application, run_gui
    except ImportError as e:
        raise RuntimeError(f"cannot start the GUI: {e}") from e
    make_application()  # a display Qt cannot use says why on fd 2 (e.g. a missing xcb library)
    if not args.verbose:  # it started: MediaPipe and ONNX Runtime chatter on fd 2 from now on
        _setup_logging(False, quiet_native_stderr())
    result = run_gui(
        video=args.video,
        camera=args.camera,
        model=args.model,
        screen=args.screen,
        screenshot=args.screenshot,
        quit_after=args.quit_after,
        provider=args.provider,
    )
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.selftest_video is not None and not args.selftest:
        parser.error("--selftest-video is for --selftest")
    if args.selftest and args.command is not None:
        parser.error(f"--selftest runs alone, not with `{args.command}`")
    if args.selftest:
        from lipreader_app.selftest import main as selftest_main

        return int(selftest_main(video=args.selftest_video, verbose=args.verbose) or 0)
    if args.command is None:
        args = parser.parse_args([*argv, "gui"])
    quiet = args.command in ("caption", "eval") and not args.verbose  # the GUI: in cmd_gui
    stderr = quiet_native_stderr() if quiet else sys.stderr
    _setup_logging(args.verbose, stderr)
    try:
        status = args.func(args, stderr)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except UsageError as e:
        command = getattr(args, "command_parser", parser)
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout has gone (`| head`): stop quietly, as `cat` does
        drop_stdout()  # no error again at exit
        return EXIT_BROKEN_PIPE
    except (*USER_ERRORS, RuntimeError) as e:
        if args.verbose:
            log.exception("failed")
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)  # the real stderr, even once quieted
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
