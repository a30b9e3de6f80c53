"""Live captioning benchmark: GRID clips played back to back at real-time speed through iter_captions.

The clips are decoded up front and served like a camera at 25 fps: a frame is due at i / fps
seconds; when the pipeline is more than a frame late, the frames it missed are dropped (and
counted), as a webcam with a one-frame buffer would. Prints per-stage frame costs, window
inference time (split into the streaming encoder and head when the model has them), word
emission lag (from each word's end in the GRID alignment to its first partial and its final
emission; matched to the reference by text) and dropped frames. Each sentence is read again whole
when it ends (StreamOptions.revise, unless --no-revise): the cost of that run (in the model's
worker thread, or in the frame loop with --sync), the time from a sentence's last word to its
revision, and the WER after revisions.

    python bench/live.py [--clips 6] [--model models/grid-s1.onnx] [--window 75] [--hop 2]
                         [--decoder grammar] [--final-margin 3] [--stable-frames 4]
                         [--word-pause N] [--still-frames 16] [--no-revise]
                         [--threads 1] [--full-model] [--sync] [--fast] [--landmark-every 1]

Targets: window inference <= 10 ms, median final-word lag <= 300 ms, no dropped frames.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.captioning import error_rates  # noqa: E402
from core.engine import CaptionEngine, OptionsError, StreamOptions  # noqa: E402
from core.inference import default_model_path  # noqa: E402
from core.revision import WordLog  # noqa: E402
from core.streaming import iter_captions  # noqa: E402
from core.transcripts import Word, grid_pairs, read_align  # noqa: E402
from core.types import Frame  # noqa: E402
from core.video import VideoFileSource  # noqa: E402

GRID = Path(__file__).resolve().parent.parent.parent / "shared" / "grid" / "s1"
FPS = 25.0


class LiveClips:
    """Frames of several videos in a row, served in real time like a camera (or as fast as asked)."""

    def __init__(self, videos: list[Path], realtime: bool) -> None:
        self.frames = [f.image for v in videos for f in VideoFileSource(v)]
        self.realtime = realtime
        self.dropped = 0
        self.start = 0.0

    def __iter__(self):
        self.start = time.perf_counter()
        i = 0
        while i < len(self.frames):
            if self.realtime:
                late = time.perf_counter() - (self.start + i / FPS)
                if late < 0:
                    time.sleep(-late)
                elif late >= 1 / FPS:  # the camera moved on: frames in between are lost
                    skip = min(int(late * FPS), len(self.frames) - 1 - i)
                    self.dropped += skip
                    i += skip
            yield Frame(i, i / FPS, self.frames[i])
            i += 1


@dataclass
class Emitted:
    text: str
    start: float  # seconds of stream time
    end: float
    frame: int  # stream frame at which it was emitted
    wall: float  # seconds since the stream started


def percentiles(values: list[float]) -> str:
    if not values:
        return f"{'n/a':>9}{'n/a':>9}"
    return f"{np.median(values):9.1f}{np.percentile(values, 90):9.1f}"


def match(refs: list[Word], hyps: list[Emitted]) -> list[tuple[Word, Emitted]]:
    """Reference and emitted words paired by an alignment of their texts."""
    matcher = difflib.SequenceMatcher(a=[w.text for w in refs], b=[h.text for h in hyps], autojunk=False)
    return [(refs[b.a + k], hyps[b.b + k]) for b in matcher.get_matching_blocks() for k in range(b.size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GRID)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (the app uses 1)")
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--hop", type=int, default=None)
    parser.add_argument("--decoder", default=None)
    parser.add_argument("--final-margin", type=int, default=StreamOptions.final_margin)
    parser.add_argument("--stable-frames", type=int, default=StreamOptions.stable_frames)
    parser.add_argument(
        "--word-pause",
        type=int,
        default=None,
        help="silent frames that complete a word (default: core.engine.WORD_PAUSE, 4 for a model "
        "trained with --quiet-weight, else 8)",
    )
    parser.add_argument("--still-frames", type=int, default=StreamOptions.still_frames)
    parser.add_argument(
        "--landmark-every", type=int, default=1, help="MediaPipe on every Nth frame (flow between)"
    )
    parser.add_argument(
        "--revise", action=argparse.BooleanOptionalAction, default=True, help="read each sentence again whole"
    )
    parser.add_argument("--fast", action="store_true", help="do not pace the frames (no drops, no wall lag)")
    parser.add_argument(
        "--sync", action="store_true", help="run the model in the frame loop, not in a worker"
    )
    parser.add_argument(
        "--full-model", action="store_true", help="run the full model per window, not the encoder + head"
    )
    args = parser.parse_args()

    pairs = [(v, a) for v, a in grid_pairs(args.data) if a is not None]
    chosen = [pairs[i * len(pairs) // args.clips] for i in range(args.clips)]
    refs, offset, last = [], 0.0, set()  # last: id() of each clip's last reference word
    for video, align in chosen:
        refs += [Word(w.text, w.start + offset, w.end + offset) for w in read_align(align)]
        last.add(id(refs[-1]))
        offset += VideoFileSource(video).frame_count / FPS
    options = StreamOptions(
        window=args.window,
        hop=args.hop,
        decoder=args.decoder,
        final_margin=args.final_margin,
        stable_frames=args.stable_frames,
        word_pause=args.word_pause,
        still_frames=args.still_frames,
        background_model=not args.sync,
        split_model=not args.full_model,
        landmark_every=args.landmark_every,
        revise=args.revise,
    )
    model = args.model or default_model_path()
    try:
        engine = CaptionEngine.load(model, threads=args.threads, options=options)
    except OptionsError as e:  # a --hop over the model's window
        parser.error(str(e))
    source = LiveClips([v for v, _ in chosen], realtime=not args.fast)

    stages: dict[str, list[float]] = {
        k: [] for k in ("landmarks", "crop", "model", "decode", "revise", "total")
    }
    windows: dict[str, list[float]] = {k: [] for k in ("model", "encoder", "head")}
    finals, partial_seen, log, revisions, revise_ms = [], {}, WordLog(), [], []
    frames = 0
    for update in iter_captions(source, engine):
        wall = time.perf_counter() - source.start
        frames += 1
        for k in stages:
            if k != "total":
                stages[k].append(update.timings.get(k, 0.0))
        # the frame loop's own time: background windows and revisions ran in parallel with it
        frame_stages = ("landmarks", "crop", "decode") + (("model", "revise") if args.sync else ())
        stages["total"].append(sum(update.timings.get(k, 0.0) for k in frame_stages))
        if update.probs is not None:
            for k in windows:
                windows[k].append(update.timings.get(k, 0.0))
        idx = update.frame.index
        log.add(update)
        if "revise" in update.timings:  # revisions landed: their whole-utterance runs
            revise_ms.append(update.timings["revise"])
        revisions += [(r.words[-1].end, idx, wall) for r in update.revised if r.words]
        finals += [Emitted(w.text, w.start, w.end, idx, wall) for w in update.final]
        for w in (*update.final, *update.partial):
            partial_seen.setdefault((w.text, round(w.start, 2)), Emitted(w.text, w.start, w.end, idx, wall))

    pairs_final = match(refs, finals)
    final_lag = [(h.wall - r.end) * 1000 for r, h in pairs_final]
    final_lag_stream = [((h.frame + 1) / FPS - r.end) * 1000 for r, h in pairs_final]
    last_lag = [(h.wall - r.end) * 1000 for r, h in pairs_final if id(r) in last]
    last_lag_stream = [((h.frame + 1) / FPS - r.end) * 1000 for r, h in pairs_final if id(r) in last]
    first_lag, first_lag_stream = [], []
    for r, _ in pairs_final:
        seen = [
            e
            for (text, _), e in partial_seen.items()
            if text == r.text and e.start < r.end + 0.3 and e.end > r.start - 0.3
        ]
        if seen:
            first = min(seen, key=lambda e: e.wall)
            first_lag.append((first.wall - r.end) * 1000)
            first_lag_stream.append(((first.frame + 1) / FPS - r.end) * 1000)
    _, wer = error_rates([" ".join(h.text for h in finals)], [" ".join(r.text for r in refs)])
    _, revised_wer = error_rates([" ".join(w.text for w in log.words)], [" ".join(r.text for r in refs)])
    # a sentence's revision, timed from the end of the reference's last word nearest its own last word
    ends = np.array([r.end for r in refs if id(r) in last])
    revision_lag, revision_lag_stream = [], []
    for end, idx, wall in revisions:
        ref_end = float(ends[np.argmin(np.abs(ends - end))])
        revision_lag.append((wall - ref_end) * 1000)
        revision_lag_stream.append(((idx + 1) / FPS - ref_end) * 1000)

    print(
        f"LipReader live benchmark: {args.clips} GRID clips back to back ({offset:.1f} s), "
        f"{'as fast as possible' if args.fast else 'real time at 25 fps'}"
    )
    split = "full model per window"
    if engine.split:
        split = (
            "streaming encoder (and its tail) + head" if engine.model.has_tail else "streaming encoder + head"
        )
    print(
        f"model {model} on {engine.provider} ({args.threads} threads), "
        f"window {engine.window}, hop {engine.hop}, decoder {engine.decoder.kind}, "
        f"final margin {options.final_margin} frames, stable over {options.stable_frames} frames, "
        f"words complete after {engine.options.word_pause} silent frames, "
        f"utterances closed after {options.still_frames} still frames, "
        f"model in {'the frame loop' if args.sync else 'a worker thread'}, "
        f"MediaPipe on every {args.landmark_every} frame(s), "
        f"{split}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"\n{'per frame (ms)':<34}{'median':>9}{'p90':>9}")
    for k, v in stages.items():
        print(f"{k:<34}{percentiles(v)}")
    runs = f"window inference ({len(windows['model'])} runs)"
    print(f"{runs:<34}{percentiles(windows['model'])}")
    if engine.split:
        print(f"{'  encoder':<34}{percentiles(windows['encoder'])}")
        print(f"{'  head':<34}{percentiles(windows['head'])}")
    print(f"\n{f'word lag (ms), {len(pairs_final)}/{len(refs)} words matched':<34}{'median':>9}{'p90':>9}")
    if not args.fast:
        print(f"{'first partial (wall clock)':<34}{percentiles(first_lag)}")
        print(f"{'final (wall clock)':<34}{percentiles(final_lag)}")
        print(f"{'  last word of a sentence':<34}{percentiles(last_lag)}")
    print(f"{'first partial (stream time)':<34}{percentiles(first_lag_stream)}")
    print(f"{'final (stream time)':<34}{percentiles(final_lag_stream)}")
    print(f"{'  last word of a sentence':<34}{percentiles(last_lag_stream)}")
    if args.revise:
        print(f"\n{f'sentences read again ({len(revisions)})':<34}{'median':>9}{'p90':>9}{'max':>9}")
        top = f"{max(revise_ms):9.1f}" if revise_ms else ""
        where = "frame loop" if args.sync else "worker"
        print(f"{f'model + decoder ({where}, ms)':<34}{percentiles(revise_ms)}{top}")
        if not args.fast:
            print(f"{'after its last word (wall, ms)':<34}{percentiles(revision_lag)}")
        print(f"{'after its last word (stream, ms)':<34}{percentiles(revision_lag_stream)}")
    print(
        f"\ndropped frames: {source.dropped} of {len(source.frames)}   updates: {frames}   "
        f"WER of the final words: {wer:.3f}"
        + (f", after revisions: {revised_wer:.3f}" if args.revise else "")
    )


if __name__ == "__main__":
    main()
