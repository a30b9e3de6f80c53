"""The `lipreader` command: caption videos, evaluate a model, fetch assets, or start the GUI.

    lipreader                          the GUI (same as `lipreader gui`)
    lipreader caption VIDEO_OR_FOLDER... [--format json|srt|vtt|txt] [--out DIR] [--workers N]
    lipreader eval DATA                GRID folder or manifest (CSV/JSONL): CER/WER
    lipreader assets fetch [--from DIR]
    lipreader gui [--video PATH | --camera N] [--model PATH] [--screenshot PNG] [--quit-after S]

Flags are named after the library's keyword arguments; the limits of the numbers are the app's
(core.streaming's MAX_*). Errors are one line on stderr (`lipreader: error: ...`, usage errors
`lipreader COMMAND: error: ...` after the command's usage); exit status 2 for usage errors, 1 when
anything failed, 141 (as for `cat`) when stdout was closed early, e.g. by `| head`.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from core.assets import landmarker_path
from core.captioning import METHODS, ClipResult, caption_video, error_rates, evaluate_clip
from core.inference import PROVIDERS, default_model_path
from core.streaming import (
    MAX_LANDMARK_EVERY,
    MAX_STABLE_FRAMES,
    MAX_WINDOW,
    MIN_WINDOW,
    CaptionEngine,
    CaptionWord,
    StreamOptions,
)
from core.subtitles import FORMATS, write_subtitles
from core.transcripts import VIDEO_SUFFIXES, Reference, read_references
from lipreader_app.batch import USER_ERRORS, EngineConfig, Outcome, quiet_native_stderr, run_jobs

log = logging.getLogger("lipreader")

PROG = "lipreader"
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, e.g. 420,130, not {text!r}") from None
    return x, y


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
        type=float,
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
        help="with several faces in view: read the one at this pixel of the video (default: the largest)",
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


def _engine_config(args: argparse.Namespace) -> EngineConfig:
    """The engine the flags ask for, not loaded yet (loading raises ModelError for a --model that is
    a folder: core.inference.build_session); raises _UsageError for a --hop over --window."""
    if args.hop is not None and args.window is not None and args.hop > args.window:
        raise _UsageError(
            f"--hop {args.hop} is more than --window {args.window}: the hop is at most the window"
        )
    options = StreamOptions(
        window=args.window,
        hop=args.hop,
        decoder=args.decoder,
        beam_width=args.beam_width,
        word_score=args.word_score,
        lm=args.lm,
        whole_utterances=args.whole_utterances,
        landmark_every=args.landmark_every,
        stable_frames=args.stable_frames,
        revise=args.revise,
    )
    threads = args.threads or (1 if args.workers > 1 else 2)
    model = args.model or default_model_path()
    return EngineConfig(model, args.provider, threads, options, args.verbose)


def _check_hop(args: argparse.Namespace, engine: CaptionEngine) -> None:
    """--hop may not exceed the model's window either (without --window; _engine_config checks that)."""
    if args.hop is not None and args.hop > engine.window:
        raise _UsageError(f"--hop {args.hop} is more than the model's window of {engine.window} frames")


def _walk(paths: list[str]) -> tuple[list[str], list[str]]:
    """Videos under the given paths (folders walked for video suffixes), and one error per bad path.

    Videos are named as given (a folder's videos as the folder argument joined with their path in it).
    """
    videos, errors = [], []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                errors.append(f"{arg}: no video file in this folder")
            videos += [os.path.join(arg, str(p.relative_to(path))) for p in found]
        elif path.exists():
            videos.append(arg)
        else:
            errors.append(f"cannot read video {arg}: no such file or folder")
    return videos, errors


def _caption_job(engine: CaptionEngine, path: str, face: tuple[float, float] | None = None) -> dict:
    t = caption_video(path, engine, face=face)
    return {
        "video": str(path),
        "text": t.text,
        "words": [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in t.words],
        "provider": t.provider,
        "seconds": round(t.seconds, 3),
        "duration": round(t.duration, 3),
    }


class _Report:
    """Progress bar and one-line messages on the real stderr."""

    def __init__(self, total: int, stream: TextIO, what: str) -> None:
        from tqdm import tqdm

        self.stream = stream
        self.failed = 0
        self.bar = tqdm(total=total, file=stream, disable=None, unit=what, dynamic_ncols=True)

    def line(self, text: str) -> None:
        self.bar.write(f"{PROG}: {text}", file=self.stream)

    def error(self, text: str) -> None:
        self.failed += 1
        self.line(f"error: {text}")

    def outcome(self, outcome: Outcome) -> bool:
        for warning in outcome.warnings:
            self.line(f"warning: {warning}")
        if outcome.error is not None:
            self.error(outcome.error)
        self.bar.update(1)
        return outcome.error is None

    def close(self) -> None:
        self.bar.close()


def _targets(videos: list[str], args: argparse.Namespace) -> tuple[list[tuple[str, Path | None]], list[str]]:
    """(video, subtitle file) pairs for file formats, and one error per video dropped because its
    file may not be written."""
    if args.format == "json":
        return [(v, None) for v in videos], []
    jobs, seen, errors = [], set(), []
    for video in videos:
        target = (args.out or Path(video).parent) / f"{Path(video).stem}.{args.format}"
        if target in seen:
            errors.append(f"{video}: {target} would also be written for another video; skipped")
        elif target.exists() and not args.overwrite:
            errors.append(f"{target} already exists (use --overwrite); {video} skipped")
        else:
            seen.add(target)
            jobs.append((video, target))
    return jobs, errors


def _why(e: OSError) -> str:
    """The system's reason, e.g. "not a directory", without the errno and path around it."""
    return (e.strerror or str(e)).lower()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that nothing fails again when Python flushes it at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _out(line: str) -> None:
    """Print `line` on stdout at once. A closed pipe raises BrokenPipeError; another failed write
    (e.g. a full disk) raises RuntimeError saying that stdout could not be written."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        raise
    except OSError as e:
        _drop_stdout()
        raise RuntimeError(f"cannot write to standard output: {_why(e)}") from e


def cmd_caption(args: argparse.Namespace, stderr: TextIO) -> int:
    if args.out is not None and args.format == "json":
        raise _UsageError("--out is for --format srt/vtt/txt files; json goes to stdout")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise _UsageError(f"--out {args.out} is not a folder")
    config = _engine_config(args)
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RuntimeError(f"cannot write subtitles to {args.out}: {_why(e)}") from e
    videos, missing = _walk(args.paths)
    jobs, skipped = _targets(videos, args)
    engine = None
    if jobs:  # fail early, once, on a bad model or a missing landmark model (before the bar shows)
        landmarker_path()
        engine = config.load()
        _check_hop(args, engine)
    report = _Report(len(jobs), stderr, "video")
    for problem in missing + skipped:
        report.error(problem)
    try:
        job = functools.partial(_caption_job, face=args.face)
        for outcome in run_jobs(job, [v for v, _ in jobs], config, args.workers, engine):
            if not report.outcome(outcome):
                continue
            result, target = outcome.result, jobs[outcome.index][1]
            if target is None:
                _out(json.dumps(result))
                continue
            words = [CaptionWord(w["word"], w["start"], w["end"], True) for w in result["words"]]
            try:
                write_subtitles(target, words, args.format, overwrite=args.overwrite)
            except OSError as e:
                report.error(f"cannot write {target}: {_why(e)}")
            else:
                _out(str(target))  # outside the try: a closed stdout is not a write failure
    finally:
        report.close()
    return 1 if report.failed else 0


def _eval_job(engine: CaptionEngine, ref: Reference) -> ClipResult:
    return evaluate_clip(ref.video, engine, start=ref.start, end=ref.end)


def cmd_eval(args: argparse.Namespace, stderr: TextIO) -> int:
    config = _engine_config(args)
    refs, problems = read_references(args.data)
    if args.limit and args.limit < len(refs):
        refs = [refs[i * len(refs) // args.limit] for i in range(args.limit)]
    landmarker_path()  # a bad model or a missing landmark model fails before the bar shows
    engine = config.load()
    _check_hop(args, engine)
    report = _Report(len(refs), stderr, "clip")
    for problem in problems:
        report.line(f"warning: {problem}")
    results: dict[int, ClipResult] = {}
    try:
        for outcome in run_jobs(_eval_job, refs, config, args.workers, engine):
            if report.outcome(outcome):
                results[outcome.index] = outcome.result
                if args.verbose:
                    ref = refs[outcome.index]
                    report.line(f"{ref}: {ref.text!r} -> {outcome.result.default!r}")
    finally:
        report.close()
    done = sorted(results)
    kind = engine.decoder.kind
    _out(f"data: {args.data} ({len(done)} clips evaluated, {report.failed} failed)")
    whole = engine.offline_whole_utterances
    _out(f"model: {config.model} ({engine.provider}), default decoder: {kind}")
    if args.landmark_every > 1:
        _out(f"front end: MediaPipe on every {args.landmark_every} frames, optical flow in between")
    _out(f"`lipreader caption` decodes: {'whole utterances' if whole else 'live windows'}")
    if done:
        names = {
            "greedy": "greedy (whole clip)",
            "default": f"{kind} (whole clip)",
            "utterances": f"{kind} (utterances)",
            "stream": f"{kind} (live)",
            "revised": f"{kind} (live, revised)",
        }
        _out(f"{'method':<24}{'CER':>8}{'WER':>8}")
        skipped = {"utterances"} if not whole else set()
        skipped |= {"revised"} if not engine.options.revise else set()  # it would repeat the live row
        for method in (m for m in METHODS if m not in skipped):
            cer, wer = error_rates([results[i].text(method) for i in done], [refs[i].text for i in done])
            _out(f"{names[method]:<24}{cer:>8.3f}{wer:>8.3f}")
    return 1 if report.failed or not done else 0


def cmd_assets_fetch(args: argparse.Namespace, stderr: TextIO) -> int:
    from core.assets import fetch_landmarker

    _out(f"installed {fetch_landmarker(args.source_dir)}")
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
        screenshot=args.screenshot,
        quit_after=args.quit_after,
        provider=args.provider,
    )
    return int(result or 0)


class _UsageError(Exception):
    """A bad combination of arguments found after parsing (exit status 2)."""


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
    except _UsageError as e:
        command = getattr(args, "command_parser", parser)
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout has gone (`| head`): stop quietly, as `cat` does
        _drop_stdout()  # no error again at exit
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
