"""`lipreader --selftest`: run the whole pipeline once and print what works, one line per check.

    asset      face_landmarker.task is found and its SHA-256 verified
    model      the model loads with a valid contract; the provider really used, and the CUDA situation
    video      a generated clip decodes through VideoFileSource and is resampled to the model's fps
    landmarks  MediaPipe finds the face in the clip's frames and none in a blank frame
    crops      lip crops of the contract's size, centred on the mouth
    inference  the model maps the crops to (T, C) log-probs whose probabilities sum to 1
    decoding   greedy and the model's default decoder spell a known sentence from synthetic log-probs,
               then decode the model's output
    captions   the live generator `iter_captions` (what the GUI, CLI and export run) over the clip
    qt         a QApplication starts: Qt's platform plugin loads (offscreen when there is no display)
    gui        the main window opens, loads the model, plays the clip and receives its first live frame

The checks themselves, and the drawn face they run on, are `selftest_checks.py`'s; this module runs
them in order, skips those whose prerequisites failed, and reports one line each and a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from core.decoding import quiet_native_stderr
from lipreader_app.selftest_checks import SelfTestChecks

DISTRIBUTION = "lipreader-desktop"  # the package name, for the version
CHECKS = {  # check -> the checks it needs
    "asset": (),
    "model": (),
    "video": (),
    "landmarks": ("asset", "video"),
    "crops": ("model", "landmarks"),
    "inference": ("crops",),
    "decoding": ("inference",),
    "captions": ("asset", "model", "video"),
    "qt": (),
    "gui": ("asset", "model", "video", "qt"),
}
LOUD_CHECKS = ("qt",)  # checks that keep native stderr: Qt prints why a platform plugin cannot load


@dataclass(frozen=True)
class SelfTestOptions:
    """What the self-test runs on."""

    video: Path | None = None  # a real recording to use instead of the generated clip
    seconds: float = 3.0  # length of the generated clip
    max_frames: int = 250  # frames of `video` examined, at the model's fps
    gui: bool = True  # start Qt and open the main window (offscreen when there is no display)
    gui_timeout: float = 30.0  # seconds to wait for the window's first live frame


def _verify_options(o: SelfTestOptions) -> SelfTestOptions:
    if not 1.0 <= o.seconds <= 60.0:
        raise ValueError(f"clip length {o.seconds} s must be 1..60 s")
    if o.max_frames < 1 or o.gui_timeout <= 0:
        raise ValueError("max_frames and gui_timeout must be positive")
    return o


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    status: str  # "OK", "FAIL", or "SKIP" (a check it needs failed)
    ms: float  # wall time of the check
    detail: str  # what was verified, or one line saying why it failed


def _where() -> str:
    """What is being tested: version, bundle or source folder, Python, OS and C library."""
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "(version unknown)"
    frozen = getattr(sys, "frozen", False)
    where = f"bundle {Path(sys.executable).parent}" if frozen else f"source {Path(__file__).parent.parent}"
    libc = " ".join(platform.libc_ver()).strip()
    system = f"{platform.system()} {platform.machine()}" + (f", {libc}" if libc else "")
    return f"LipReader {version}, {where} (Python {platform.python_version()}, {system})"


def run_selftest(
    options: SelfTestOptions | None = None, out: TextIO | None = None, quiet: bool = False
) -> list[CheckResult]:
    """Run every check in order, printing one line each to `out`; returns the results.

    A check whose prerequisites failed is skipped. quiet: silence native libraries' stderr during
    the checks (not while Qt starts, so that its reasons for aborting stay visible).
    """
    options = _verify_options(options or SelfTestOptions())
    out = out or sys.stdout
    print(f"self-test of {_where()}", file=out, flush=True)
    results: dict[str, CheckResult] = {}
    with tempfile.TemporaryDirectory(prefix="lipreader-selftest-") as tmp:
        test = SelfTestChecks(options, Path(tmp))
        for name, needs in CHECKS.items():
            if name in ("qt", "gui") and not options.gui:
                continue
            print(f"  {name:<10}", end=" ", file=out, flush=True)
            missing = [n for n in needs if results.get(n) is None or results[n].status != "OK"]
            check: Callable[[], str] = getattr(test, f"check_{name}")
            t0 = time.perf_counter()
            if missing:
                status, detail = "SKIP", f"needs {', '.join(missing)}"
            else:
                try:
                    with (
                        quiet_native_stderr()
                        if quiet and name not in LOUD_CHECKS
                        else contextlib.nullcontext()
                    ):
                        status, detail = "OK", check()
                except Exception as e:  # every failure becomes this check's one-line reason
                    status = "FAIL"
                    detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result = CheckResult(name, status, (time.perf_counter() - t0) * 1000, detail)
            results[name] = result
            print(f"{status:<4} {result.ms:>6.0f} ms  {detail}", file=out, flush=True)
    return list(results.values())


def summary(results: list[CheckResult], seconds: float) -> str:
    """The last line: passed, or how many checks passed, failed and were skipped (because a check
    they need failed) and the first failure's one-line reason."""
    counts = {status: sum(r.status == status for r in results) for status in ("OK", "FAIL", "SKIP")}
    not_ok = [r for r in results if r.status != "OK"]
    if not not_ok:
        return f"self-test passed: {len(results)} checks in {seconds:.1f} s"
    first = next((r for r in not_ok if r.status == "FAIL"), not_ok[0])
    tally = f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
    return f"self-test FAILED ({tally}): {first.name}: {first.detail}"


def main(video: str | Path | None = None, verbose: bool = False) -> int:
    """`lipreader --selftest`: 0 when every check passed, else 1."""
    t0 = time.perf_counter()
    options = SelfTestOptions(video=Path(video) if video else None)
    results = run_selftest(options, sys.stdout, quiet=not verbose)
    print(summary(results, time.perf_counter() - t0), flush=True)
    return 0 if all(r.status == "OK" for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m lipreader_app.selftest", description="LipReader self-test"
    )
    parser.add_argument("--video", type=Path, default=None, help="a recording instead of the generated clip")
    parser.add_argument("-v", "--verbose", action="store_true", help="keep native libraries' stderr")
    args = parser.parse_args()
    sys.exit(main(args.video, args.verbose))
