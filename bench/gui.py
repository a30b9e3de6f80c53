"""The desktop app while it plays GRID clips live: redraw rate, frames processed per second, lag.

    python bench/gui.py [--model models/grid-s1.onnx] [--clips 3] [--data ../shared/grid/s1]

Plays the clips one after the other in the real MainWindow (realtime VideoFileSource, the live
path, the redraw timer at REDRAW_HZ) and prints, per clip and overall: panel redraws per second,
frames processed per second, the lag from a frame's capture (its due time in the paced file) to the
redraw that first shows it (mean, p50, p95), the pipeline's per-stage milliseconds, and the time
from opening a clip to its first frame on screen. Uses the offscreen Qt platform when there is no
display and a temporary settings file (the user's preferences are never touched).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

from core.inference import default_model_path  # noqa: E402
from lipreader_app.app import make_application  # noqa: E402
from lipreader_app.live_state import STAGES, Rates  # noqa: E402
from lipreader_app.settings import ini_settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLIP_TIMEOUT_S = 60.0


def play(window, clip: Path) -> dict:
    """Play one clip to its end in `window`; returns what was measured."""
    rates: list[Rates] = []
    shown: list[float] = []

    def on_rates(r: Rates) -> None:
        rates.append(r)

    def on_changed() -> None:
        if not shown:
            shown.append(time.monotonic())

    loop = QEventLoop()
    window.state.rates_changed.connect(on_rates)
    window.state.changed.connect(on_changed)
    window.stream_ended.connect(loop.quit)
    QTimer.singleShot(int(CLIP_TIMEOUT_S * 1000), loop.quit)
    opened = time.monotonic()
    if not window.open_video(clip):
        raise RuntimeError(window.errors[-1])
    loop.exec()
    wall = time.monotonic() - opened
    for signal, slot in (
        (window.state.rates_changed, on_rates),
        (window.state.changed, on_changed),
        (window.stream_ended, loop.quit),
    ):
        signal.disconnect(slot)
    full = [r for r in rates if r.processed_fps > 0][1:]  # the first second includes start-up
    lags = np.array(window.state.lags)
    return {
        "clip": clip.name,
        "frames": window.state.frames_processed,
        "wall": wall,
        "start": shown[0] - opened if shown else float("nan"),
        "redraw": float(np.mean([r.redraw_fps for r in full])) if full else float("nan"),
        "processed": float(np.mean([r.processed_fps for r in full])) if full else float("nan"),
        "lags": lags,
        "stages": {
            s: float(np.mean([r.stage_ms[s] for r in full if s in r.stage_ms]) if full else 0.0)
            for s in STAGES
        },
        "said": window.state.transcript(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--clips", type=int, default=3, help="GRID clips to play")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "grid" / "s1")
    parser.add_argument("--provider", default="cpu", choices=("auto", "cuda", "cpu"))
    args = parser.parse_args()
    clips = sorted((args.data / "video").glob("*.mp4"))[: args.clips]
    if not clips:
        print(f"no clips in {args.data / 'video'}", file=sys.stderr)
        return 1
    app = make_application()
    from lipreader_app.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(ini_settings(Path(tmp) / "bench.ini"), provider=args.provider)
        window.show()
        model = args.model or default_model_path()
        if not window.load_model(model):
            print(window.errors[-1], file=sys.stderr)
            return 1
        results = [play(window, clip) for clip in clips]
        window.close()
    print(
        f"model {Path(model).name} on {window.model.provider}, platform {app.platformName()}, "
        f"{os.cpu_count()} CPUs (shared)"
    )
    header = (
        f"{'clip':<14}{'frames':>7}{'wall s':>8}{'start s':>8}{'redraw/s':>9}{'proc/s':>8}"
        f"{'lag mean':>9}{'p50':>6}{'p95':>6}  " + " ".join(f"{s:>9}" for s in STAGES)
    )
    print(header)
    print("-" * len(header))
    for r in results:
        lags = r["lags"] if len(r["lags"]) else np.array([np.nan])
        print(
            f"{r['clip']:<14}{r['frames']:>7}{r['wall']:>8.2f}{r['start']:>8.2f}{r['redraw']:>9.1f}"
            f"{r['processed']:>8.1f}{np.mean(lags):>9.0f}{np.percentile(lags, 50):>6.0f}"
            f"{np.percentile(lags, 95):>6.0f}  " + " ".join(f"{r['stages'][s]:>9.1f}" for s in STAGES)
        )
    print("lag and stage times in ms; redraw/s and proc/s averaged over full seconds after the first")
    for r in results:
        print(f"{r['clip']}: {r['said']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
