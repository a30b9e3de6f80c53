"""The PyInstaller bundle: size by component, self-test time, cold start of the GUI to its first frame.

    python bench/bundle.py [--bundle dist/lipreader] [--runs 3] [--source]

Cold start: `lipreader gui --video ONE_FRAME.mp4 --screenshot PNG` on a one-frame generated clip;
the window quits 0.3 s after the clip ended (`SCREENSHOT_GRACE_MS`), so the time to the first frame
is at most the wall time minus that grace. The first run may find a cold file cache, the others a
warm one. --source measures `python -m lipreader_app.cli` the same way for comparison. Runs use
a temporary XDG_CONFIG_HOME (the user's preferences are never touched) and the offscreen Qt
platform when there is no display.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipreader_app.app import SCREENSHOT_GRACE_MS  # noqa: E402
from lipreader_app.face_clip import write_face_clip  # noqa: E402

MIB = 1 << 20
OVERRIDES = ("LIPREADER_MODEL", "LIPREADER_LANDMARKER")  # unset for the bundle: it must use its own files
COMPONENTS = (  # (label, fnmatch patterns of paths under _internal/); the first match wins
    ("ONNX Runtime CUDA + TensorRT providers", ("onnxruntime/capi/*providers_cuda*",
                                                "onnxruntime/capi/*providers_tensorrt*")),
    ("ONNX Runtime (CPU)", ("onnxruntime/*",)),
    ("MediaPipe", ("mediapipe/*",)),
    ("OpenCV (cv2 + its FFmpeg, OpenBLAS)", ("cv2/*", "opencv_*.libs/*")),
    ("Qt (PySide6, shiboken6)", ("PySide6/*", "shiboken6/*")),
    ("NumPy", ("numpy/*", "numpy.libs/*")),
    ("models + landmark asset", ("models/*", "assets/*")),
)  # fmt: skip


def sizes(bundle: Path) -> list[tuple[str, int]]:
    """Bytes per component of the bundle (symlinks not counted); the rest (Python, app...) last."""
    internal = bundle / "_internal"
    totals = {label: 0 for label, _ in COMPONENTS}
    rest = 0
    for f in bundle.rglob("*"):
        if not f.is_file() or f.is_symlink():
            continue
        rel = (f.relative_to(internal) if internal in f.parents else f.relative_to(bundle)).as_posix()
        label = next((lb for lb, patterns in COMPONENTS if any(fnmatch(rel, p) for p in patterns)), None)
        if label is None:
            rest += f.stat().st_size
        else:
            totals[label] += f.stat().st_size
    return [*totals.items(), ("Python, stdlib, app and the rest", rest)]


def timed(command: list[str], env: dict[str, str], timeout: float = 300) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, done.returncode, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("dist/lipreader"))
    parser.add_argument("--runs", type=int, default=3, help="cold-start runs")
    parser.add_argument("--source", action="store_true", help="also time the app run from source")
    args = parser.parse_args()
    exe = args.bundle / ("lipreader.exe" if sys.platform == "win32" else "lipreader")
    if not exe.is_file():
        sys.exit(f"bench/bundle.py: no bundle at {exe}: run packaging/build.sh first")

    parts = sizes(args.bundle)
    total = sum(n for _, n in parts)
    cuda = parts[0][1]
    print(f"{'bundle ' + str(args.bundle):<44}{'MiB':>8}")
    for label, n in parts:
        print(f"  {label:<42}{n / MIB:>8.0f}")
    print(f"  {'total':<42}{total / MIB:>8.0f}")
    print(f"  {'total without the CUDA/TensorRT providers':<42}{(total - cuda) / MIB:>8.0f}")

    source_env = dict(os.environ)  # from source, $LIPREADER_MODEL may name the model to use
    headless = not (source_env.get("DISPLAY") or source_env.get("WAYLAND_DISPLAY"))
    if headless and sys.platform.startswith("linux"):
        source_env["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="lipreader-bench-") as tmp:
        source_env["XDG_CONFIG_HOME"] = tmp
        env = {k: v for k, v in source_env.items() if k not in OVERRIDES}  # the bundle's own files
        seconds, code, output = timed([str(exe), "--selftest"], env)
        print(f"\nself-test ({exe} --selftest): exit {code} in {seconds:.1f} s")
        print(
            "\n".join(
                "  " + line for line in output.strip().splitlines() if not line.startswith(("W0000", "I0000"))
            )
        )

        clip = write_face_clip(Path(tmp) / "one-frame.mp4", seconds=0.04, fps=25.0)
        commands = {"bundle": ([str(exe)], env)}
        if args.source:
            commands["source"] = ([sys.executable, "-m", "lipreader_app.cli"], source_env)
        print(
            f"\ncold start to first frame: `lipreader gui --video {clip.name} --screenshot PNG`, wall s "
            f"(first frame shown <= wall - {SCREENSHOT_GRACE_MS / 1000:g} s)"
        )
        print(f"{'':<10}{'run 1':>8}" + "".join(f"{f'run {i + 1}':>8}" for i in range(1, args.runs)))
        for name, (command, run_env) in commands.items():
            row = []
            for i in range(args.runs):
                shot = Path(tmp) / f"{name}-{i}.png"
                seconds, code, output = timed(
                    [*command, "gui", "--video", str(clip), "--screenshot", str(shot)], run_env
                )
                ok = code == 0 and shot.is_file() and shot.stat().st_size > 0
                row.append(f"{seconds:>8.2f}" if ok else f"{'FAIL':>8}")
                if not ok:
                    print(f"  {name} run {i + 1} failed (exit {code}): {output.strip().splitlines()[-1:]}")
            print(f"{name:<10}" + "".join(row))


if __name__ == "__main__":
    main()
