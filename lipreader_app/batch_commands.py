"""The `caption` and `eval` commands of `lipreader` (lipreader_app.cli parses their flags).

Each runs its videos through run_jobs (lipreader_app.batch: 1..N processes, one engine each) and
returns the exit status: results go to stdout, a progress bar and one line per failed video or clip
to `stderr`, and they go on with the rest (status 1 if anything failed). Flags that do not go
together raise UsageError (status 2); a closed stdout raises BrokenPipeError, another failed write
to it RuntimeError.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from core.assets import landmarker_path
from core.captioning import (
    INTERVAL_CLIPS,
    METHODS,
    ClipResult,
    caption_video,
    error_rates,
    evaluate_clip,
    wer_interval,
    word_errors,
)
from core.engine import CaptionEngine, OptionsError, StreamOptions, verify_options
from core.inference import default_model_path
from core.streaming import CaptionWord
from core.subtitles import write_subtitles
from core.transcripts import Reference, is_video_file, read_references
from lipreader_app.batch import EngineConfig, Outcome, run_jobs

PROG = "lipreader"

log = logging.getLogger("lipreader")


class UsageError(Exception):
    """A bad combination of arguments found after parsing (exit status 2)."""


def _engine_config(args: argparse.Namespace) -> EngineConfig:
    """The engine the flags ask for, not loaded yet (loading raises ModelError for a --model that is
    a folder: core.inference.build_session); raises UsageError for a --hop over --window, ValueError
    for other options core refuses (core.engine.verify_options: a --lm that does not exist)."""
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
    try:
        verify_options(options)
    except OptionsError as e:
        raise UsageError(str(e)) from e
    threads = args.threads or (1 if args.workers > 1 else 2)
    model = args.model or default_model_path()
    return EngineConfig(model, args.provider, threads, options, args.verbose)


def _load_engine(config: EngineConfig) -> CaptionEngine:
    """Load the engine (before any progress bar shows): options that do not fit the model, as a
    --hop over its window without --window, are usage errors."""
    try:
        return config.load()
    except OptionsError as e:
        raise UsageError(str(e)) from e


def _walk(paths: list[str]) -> tuple[list[str], list[str]]:
    """Videos under the given paths (folders walked for video suffixes), and one error per bad path.

    Videos are named as given (a folder's videos as the folder argument joined with their path in it);
    a path named twice (or also found in a folder given) is read once, under its first name; links to
    one file under other names are read under each.
    """
    videos, errors = [], []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            # a broken link is listed too: it fails with one line instead of vanishing
            found = sorted(p for p in path.rglob("*") if (p.is_file() or p.is_symlink()) and is_video_file(p))
            if not found:
                errors.append(f"{arg}: no video file in this folder")
            videos += [os.path.join(arg, str(p.relative_to(path))) for p in found]
        elif path.exists():
            videos.append(arg)
        else:
            errors.append(f"cannot read video {arg}: no such file or folder")
    unique: dict[str, str] = {}
    for video in videos:
        unique.setdefault(os.path.normpath(os.path.abspath(video)), video)
    return list(unique.values()), errors


def _caption_job(engine: CaptionEngine, path: str, face: tuple[float, float] | None = None) -> dict:
    t = caption_video(path, engine, face=face)
    if t.unread:
        log.warning("video %s: no word read in %.2f s of video (%s)", path, t.duration, t.unread)
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
    unwritable: dict[Path, str | None] = {}  # folder -> why no file can be written there
    for video in videos:
        target = (args.out or Path(video).parent) / f"{Path(video).stem}.{args.format}"
        if target.parent not in unwritable:
            unwritable[target.parent] = _unwritable(target.parent)
        if target in seen:
            errors.append(f"{video}: {target} would also be written for another video; skipped")
        elif target.exists() and not args.overwrite:
            errors.append(f"{target} already exists (use --overwrite); {video} skipped")
        elif unwritable[target.parent]:
            errors.append(f"cannot write {target}: {unwritable[target.parent]}; {video} skipped")
        else:
            seen.add(target)
            jobs.append((video, target))
    return jobs, errors


def _unwritable(folder: Path) -> str | None:
    """Why no file can be written in `folder` (tried: permissions, a read-only or immutable file
    system), found before any video is read; None when one can."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            return None
    except OSError as e:
        return _why(e)


def _why(e: OSError) -> str:
    """The system's reason, e.g. "not a directory", without the errno and path around it."""
    return (e.strerror or str(e)).lower()


def drop_stdout() -> None:
    """Point stdout at /dev/null, so that nothing fails again when Python flushes it at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def write_stdout(line: str) -> None:
    """Print `line` on stdout at once. A closed pipe raises BrokenPipeError; another failed write
    (e.g. a full disk) raises RuntimeError saying that stdout could not be written."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise RuntimeError(f"cannot write to standard output: {_why(e)}") from e


def cmd_caption(args: argparse.Namespace, stderr: TextIO) -> int:
    if args.out is not None and args.format == "json":
        raise UsageError("--out is for --format srt/vtt/txt files; json goes to stdout")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is not a folder")
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
        engine = _load_engine(config)
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
                write_stdout(json.dumps(result | {"warnings": list(outcome.warnings)}))  # as stderr said
                continue
            words = [CaptionWord(w["word"], w["start"], w["end"], True) for w in result["words"]]
            try:
                write_subtitles(target, words, args.format, overwrite=args.overwrite)
            except OSError as e:
                report.error(f"cannot write {target}: {_why(e)}")
            else:
                write_stdout(str(target))  # outside the try: a closed stdout is not a write failure
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
    engine = _load_engine(config)
    report = _Report(len(refs), stderr, "clip")
    for problem in problems:  # counted apart from the clips that failed, and failing the run as they do
        report.line(f"error: {problem}")
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
    skipped = f", {len(problems)} skipped" if problems else ""  # rows or clips unreadable as references
    write_stdout(f"data: {args.data} ({len(done)} clips evaluated, {report.failed} failed{skipped})")
    whole = engine.offline_whole_utterances
    write_stdout(f"model: {config.model} ({engine.provider}), default decoder: {kind}")
    if args.landmark_every > 1:
        write_stdout(f"front end: MediaPipe on every {args.landmark_every} frames, optical flow in between")
    write_stdout(f"`lipreader caption` decodes: {'whole utterances' if whole else 'live windows'}")
    if done:
        names = {
            "greedy": "greedy (whole clip)",
            "default": f"{kind} (whole clip)",
            "utterances": f"{kind} (utterances)",
            "stream": f"{kind} (live)",
            "revised": f"{kind} (live, revised)",
        }
        write_stdout(
            f"{'method':<24}{'CER':>8}{'WER':>8}{'word errors':>14}{'WER 95 % range (resampled)':>29}"
        )
        left_out = {"utterances"} if not whole else set()
        left_out |= {"revised"} if not engine.options.revise else set()  # it would repeat the live row
        texts = [refs[i].text for i in done]
        for method in (m for m in METHODS if m not in left_out):
            hyps = [results[i].text(method) for i in done]
            (cer, wer), (edits, words) = error_rates(hyps, texts), word_errors(hyps, texts)
            wrong = f"{edits.sum()}/{words.sum()}"
            spread = "-"  # too few clips to resample
            if len(done) >= INTERVAL_CLIPS:
                spread = "{:.3f}-{:.3f}".format(*wer_interval(edits, words))
            write_stdout(f"{names[method]:<24}{cer:>8.3f}{wer:>8.3f}{wrong:>14}{spread:>29}")
    return 1 if report.failed or problems or not done else 0
