"""`lipreader --selftest`: the whole pipeline passes from source; failures give one-line reasons."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.assets import ENV_VAR as LANDMARKER_ENV_VAR
from core.inference import MODEL_ENV_VAR
from lipreader_app import face_clip, selftest_checks
from lipreader_app.selftest import CHECKS, CheckResult, SelfTestOptions, run_selftest, summary
from tests.videos import noise_frames, write_video

REPO = Path(__file__).resolve().parent.parent


def _run_cli(env_changes: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", **env_changes}
    return subprocess.run(
        [sys.executable, "-m", "lipreader_app.cli", "--selftest", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _lines(stdout: str) -> dict[str, str]:
    """check name -> its status, from the printed lines `  name  STATUS  ms  detail`."""
    rows = [line.split() for line in stdout.splitlines() if line.startswith("  ")]
    return {row[0]: row[1] for row in rows if len(row) > 1}


@pytest.mark.slow
def test_selftest_passes_from_source(tiny_model, landmarker):
    done = _run_cli({MODEL_ENV_VAR: str(tiny_model)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert _lines(done.stdout) == {name: "OK" for name in CHECKS}
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("self-test passed: 10 checks")
    assert "lips" in done.stdout and "opening with it" in done.stdout  # the drawn mouth was found
    assert "ExecutionProvider (" in done.stdout  # the provider really used, and why CUDA is or is not


def test_missing_asset_fails_with_one_line_reason(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv(LANDMARKER_ENV_VAR, str(tmp_path / "nowhere" / "face_landmarker.task"))
    monkeypatch.setenv(MODEL_ENV_VAR, str(tiny_model))
    out = io.StringIO()
    results = {r.name: r for r in run_selftest(SelfTestOptions(gui=False), out)}
    assert results["asset"].status == "FAIL"
    assert "is missing" in results["asset"].detail and LANDMARKER_ENV_VAR in results["asset"].detail
    assert results["model"].status == "OK" and results["video"].status == "OK"
    assert {results[n].status for n in ("landmarks", "crops", "inference", "decoding", "captions")} == {
        "SKIP"
    }
    assert results["landmarks"].detail == "needs asset"
    line = summary(list(results.values()), 1.0)
    assert line.startswith("self-test FAILED (2 passed, 1 failed, 5 skipped): asset: landmark model ")
    assert "\n" not in line


def test_the_summary_counts_skipped_checks_apart_from_failed_ones():
    statuses = {"asset": "OK", "model": "FAIL", "video": "OK", "landmarks": "OK", "crops": "SKIP"}
    results = [CheckResult(name, status, 1.0, f"{name} detail") for name, status in statuses.items()]
    assert summary(results, 2.0) == "self-test FAILED (3 passed, 1 failed, 1 skipped): model: model detail"
    passed = [CheckResult(name, "OK", 1.0, "") for name in statuses]
    assert summary(passed, 2.0) == "self-test passed: 5 checks in 2.0 s"


def test_missing_asset_exits_non_zero_from_the_cli(tiny_model, tmp_path):
    done = _run_cli({LANDMARKER_ENV_VAR: str(tmp_path / "none.task"), MODEL_ENV_VAR: str(tiny_model)})
    assert done.returncode == 1
    assert _lines(done.stdout)["asset"] == "FAIL"
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("self-test FAILED") and "none.task is missing" in last


def test_missing_model_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "grid-s1.onnx"))
    results = {r.name: r for r in run_selftest(SelfTestOptions(gui=False), io.StringIO())}
    assert results["model"].status == "FAIL"
    assert "no such file" in results["model"].detail and MODEL_ENV_VAR in results["model"].detail
    assert results["crops"].status == "SKIP" and results["captions"].status == "SKIP"


def test_a_video_without_a_face_fails_the_landmarks(tiny_model, landmarker, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tiny_model))
    video = write_video(tmp_path / "noise.avi", noise_frames(20), fps=25.0)
    options = SelfTestOptions(video=video, gui=False)
    results = {r.name: r for r in run_selftest(options, io.StringIO())}
    assert results["video"].status == "OK"
    assert results["landmarks"].status == "FAIL"
    assert results["landmarks"].detail == f"no face found in 20 frames of {video}"


def test_a_real_recording_is_used_instead_of_the_drawn_face(tiny_model, landmarker, grid_clip, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tiny_model))
    video, _ = grid_clip
    options = SelfTestOptions(video=video, gui=False, max_frames=30)
    out = io.StringIO()
    results = {r.name: r for r in run_selftest(options, out)}
    assert all(r.status == "OK" for r in results.values()), out.getvalue()
    assert results["landmarks"].detail == f"face found in 30/30 frames of {video.name}"


def test_the_drawn_mouth_opens_and_closes_on_its_script():
    """What the landmark check compares MediaPipe with: the drawing follows mouth_opening(t)."""

    def dark_mouth_pixels(t: float) -> int:
        x, y = (int(v) for v in face_clip.mouth_centre(t))
        grey = cv2.cvtColor(face_clip.draw_face(t), cv2.COLOR_BGR2GRAY)
        return int((grey[y - 30 : y + 30, x - 40 : x + 40] < 70).sum())

    half = face_clip.SYLLABLE_PERIOD / 2
    assert face_clip.mouth_opening(0.0) == 0.0 and face_clip.mouth_opening(half) == 1.0
    assert face_clip.draw_face(0.0).shape == (*face_clip.CLIP_SIZE, 3)
    closed, ajar, wide = (dark_mouth_pixels(t) for t in (0.0, half / 2, half))
    assert 0 < closed < ajar < wide


def test_known_sentence_is_spelled_back_by_every_decoder_kind(tiny_model):
    """The synthetic log-probs used by the decoding check decode exactly, whatever the decoder."""
    from core.decoding import KINDS, make_decoder
    from core.inference import LipModel

    c = LipModel.load(tiny_model, provider="cpu").contract
    sentence = selftest_checks._known_sentence(c)
    log_probs = selftest_checks._spell(sentence, c.vocabulary, c.blank)
    assert np.allclose(np.exp(log_probs).sum(axis=1), 1, atol=1e-5)
    for kind in KINDS:
        if kind == "lexicon":
            continue  # the tiny model declares no lexicon
        decoder = make_decoder(c.vocabulary, c.blank, c.decoder, kind=kind)
        assert " ".join(w.text for w in decoder.decode(log_probs)) == sentence, kind


def test_options_are_verified():
    with pytest.raises(ValueError, match="clip length"):
        run_selftest(SelfTestOptions(seconds=0.1), io.StringIO())


@pytest.mark.parametrize(
    ("library", "note"),
    [(False, "CPU-only build: no CUDA provider library"), (True, "CUDA provider present but not loadable")],
)
def test_the_cuda_note_finds_the_provider_library_as_the_model_loader_does(monkeypatch, library, note):
    monkeypatch.setattr(selftest_checks, "has_cuda_library", lambda: library)
    assert selftest_checks._cuda_note("CPUExecutionProvider").startswith(note)
    assert selftest_checks._cuda_note("CUDAExecutionProvider") == "CUDA in use"
