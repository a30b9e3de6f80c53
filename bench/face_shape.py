"""How the models read a face of another shape: the same clips made taller or flatter.

    python bench/face_shape.py [--data config/grid-s1-val.csv] [--model PATH ...]
                               [--heights 0.75,1,1.4] [--workers 2] [--keep DIR]

The shipped model learnt one GRID speaker. There is no other speaker here, so this is a stand-in for
another face's proportions: every video of DATA is scaled to HEIGHT times its height (its width
kept) with ffmpeg (libx264, CRF 18) and square pixels (`setsar=1`: a reader that honours the
sample aspect ratio, as LipReader's does, would otherwise show the picture as it was), and each
model reads the scaled videos through `lipreader eval`, the whole pipeline: MediaPipe finds the
face in the scaled picture and the crop is cut from its landmarks, so a taller mouth reaches the
model as a taller mouth, not as the same crop, unless the model's contract names the nose range of
the faces it learnt (core.crop: a face outside it is scaled vertically into it). A table gives
the WER (greedy, and the default decoder over whole utterances, as `lipreader caption` reads) per
model and height, and a first row reading DATA as recorded: height 1 is encoded as the others
are, so that the rows differ by the face's shape alone (a second generation of H.264, even at CRF
18, costs the shipped model 4 words in 534 on GRID's clips). It says how much a face's shape
costs, not how well another person is read: their lips move differently too.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.inference import default_model_path  # noqa: E402
from core.transcripts import read_references  # noqa: E402

ROW = re.compile(r"^(?P<method>.+?)\s+(?P<cer>[0-9.]+)\s+(?P<wer>[0-9.]+)\s+(?P<errors>\d+/\d+)")
SHOWN = ("greedy (whole clip)", "utterances)")  # eval rows shown: greedy, and what `caption` reads
CRF = "18"  # near-lossless: the scaling, not the encoding, should be what changes


def _scale(refs: list, height: float, folder: Path) -> Path:
    """Write each reference video scaled to `height` times its height into `folder`; the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["video", "transcript", "start", "end"])
        for i, ref in enumerate(refs):
            out = folder / f"{i:04d}-{ref.video.stem}.mp4"
            if not out.exists():
                scale = f"scale=iw:trunc(ih*{height}/2)*2,setsar=1"  # square pixels: no reader undoes it
                subprocess.run(
                    ["ffmpeg", "-loglevel", "error", "-y", "-i", str(ref.video), "-vf", scale]
                    + ["-c:v", "libx264", "-preset", "veryfast", "-crf", CRF, "-an", str(out)],
                    check=True,
                )
            rows.writerow([out, ref.text, ref.start, "" if ref.end is None else ref.end])
    return manifest


def _eval(manifest: Path, model: Path, workers: int) -> dict[str, tuple[float, str]]:
    """`lipreader eval` of `manifest` with `model`: {method: (WER, word errors)}."""
    command = [sys.executable, "-m", "lipreader_app.cli", "eval", str(manifest), "--model", str(model)]
    done = subprocess.run(
        command + ["--workers", str(workers)], capture_output=True, text=True, cwd=manifest.parent
    )
    rows = {}
    for line in done.stdout.splitlines():
        if (m := ROW.match(line)) and any(m["method"].endswith(s) for s in SHOWN):
            rows[m["method"]] = (float(m["wer"]), m["errors"])
    if not rows:
        raise RuntimeError(f"lipreader eval {manifest} failed: {done.stderr.strip().splitlines()[-1:]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="config/grid-s1-val.csv", help="GRID folder or manifest")
    parser.add_argument("--model", action="append", type=Path, help="ONNX model (repeat; default: shipped)")
    parser.add_argument("--heights", default="0.75,1,1.4", help="height factors, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="processes per evaluation (default 2)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the scaled videos here, reused")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("face_shape: ffmpeg is needed to scale the videos (apt-get install ffmpeg)")
    models = [m.resolve() for m in args.model or [default_model_path()]]
    heights = [float(h) for h in args.heights.split(",")]
    refs, problems = read_references(args.data)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    work = (args.keep or Path(tempfile.mkdtemp(prefix="face-shape-"))).resolve()
    started = time.monotonic()
    data = Path(args.data).resolve()
    manifests = {"recorded": data} | {f"{h:g}": _scale(refs, h, work / f"height-{h:g}") for h in heights}
    print(f"{len(refs)} clips of {args.data}, scaled in {time.monotonic() - started:.0f} s into {work}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':<36}{'height':>9}{'greedy WER':>18}{'default WER':>18}{'seconds':>9}")
    for model in models:
        for height, manifest in manifests.items():
            started = time.monotonic()
            rows = _eval(manifest, model, args.workers)
            greedy = next(v for k, v in rows.items() if k.startswith("greedy"))
            default = next(v for k, v in rows.items() if k.endswith("utterances)"))
            cells = [f"{100 * wer:.1f} % {errors:>7}" for wer, errors in (greedy, default)]
            took = time.monotonic() - started
            print(f"{model.name:<36}{height:>9}{cells[0]:>18}{cells[1]:>18}{took:>9.0f}", flush=True)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
