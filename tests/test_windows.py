"""The window runner: cached streaming features give the log-probs of the whole run's features."""

import numpy as np
import pytest

from core.inference import LipModel
from core.windows import WindowRunner
from tests.conftest import GRID_VOCABULARY

TOLERANCE = 1e-4
C = len(GRID_VOCABULARY)


@pytest.fixture(scope="module")
def model(split_model):
    return LipModel.load(split_model, provider="cpu", threads=1)


def frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random crops uint8 (n, 48, 96) and lip points float32 (n, 40, 2)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 96), dtype=np.uint8), rng.uniform(0, 96, (n, 40, 2)).astype(
        np.float32
    )


def expected(model: LipModel, crops: np.ndarray, points: np.ndarray, run: int, start: int, newest: int):
    """The window's log-probs from the features of the whole run up to `newest`, encoded at once."""
    features = model.encode(crops[run : newest + 1], points[run : newest + 1])
    return model.decode_features(features[start - run :])


def stream(runner: WindowRunner, crops, points, due) -> list:
    """Push every frame; run (and merge) a window after frame i when due(i). Returns the outputs."""
    outputs = []
    for i, (crop, lips) in enumerate(zip(crops, points, strict=True)):
        runner.append(crop, lips)
        if due(i):
            output = runner.run(runner.job())
            runner.merge(output)
            outputs.append(output)
    return outputs


def test_every_window_matches_the_whole_runs_features(model):
    crops, points = frames(100)
    outputs = stream(WindowRunner(model, 30), crops, points, lambda i: i % 8 == 7)
    assert [o.job.newest for o in outputs] == list(range(7, 100, 8))
    for o in outputs:
        job = o.job
        assert job.start == max(0, job.newest - 29) and o.log_probs.shape == (job.newest - job.start + 1, C)
        want = expected(model, crops, points, 0, job.start, job.newest)
        assert np.max(np.abs(o.log_probs - want)) < TOLERANCE, job
        assert set(o.timings) == {"encoder", "head", "model"} and o.timings["model"] > 0


def test_each_frame_is_encoded_about_once(model):
    crops, points = frames(100)
    outputs = stream(WindowRunner(model, 30), crops, points, lambda i: i % 8 == 7)
    ctx = model.contract.stream.context
    assert len(outputs[0].job.crops) == 8 and outputs[0].job.skip == 0  # the run's start: no context
    for o in outputs[1:]:  # hop + context before + the previous newest `ctx` frames again
        assert len(o.job.crops) == 8 + 2 * ctx and o.job.skip == ctx
        assert len(o.job.cached) == o.job.newest - o.job.start + 1 - 8 - ctx


def test_windows_in_mid_run_encode_with_the_tail(model, monkeypatch):
    assert model.has_tail
    calls = []
    for name in ("encode", "encode_tail"):
        real = getattr(model, name)
        monkeypatch.setattr(model, name, lambda c, p, real=real, name=name: calls.append(name) or real(c, p))
    crops, points = frames(60)
    outputs = stream(WindowRunner(model, 30), crops, points, lambda i: i % 8 == 7)
    assert calls == ["encode"] + ["encode_tail"] * (len(outputs) - 1)  # the run's start has no context
    for o in outputs:
        want = expected(model, crops, points, 0, o.job.start, o.job.newest)
        assert np.max(np.abs(o.log_probs - want)) < TOLERANCE, o.job


def test_windows_from_the_run_start_are_the_full_model(model):
    """Both see zero padding before the run's first frame and after the newest frame."""
    crops, points = frames(100)
    outputs = stream(WindowRunner(model, 75), crops, points, lambda i: i % 8 == 7)
    for o in outputs:
        full = model(crops[o.job.start : o.job.newest + 1], points[o.job.start : o.job.newest + 1])
        diff = np.abs(o.log_probs - full).max(axis=1)
        if o.job.start == 0:
            assert diff.max() < TOLERANCE
        else:  # a sliding window's first frames see the real frames before it, not zero padding
            assert diff[:2].max() > 100 * TOLERANCE


def test_irregular_runs_and_a_runner_a_window_behind(model):
    # a slow background model: runs at uneven gaps, one longer than the window
    crops, points = frames(120, seed=1)
    due = {5, 9, 10, 22, 30, 75, 77, 90, 119}
    outputs = stream(WindowRunner(model, 30), crops, points, lambda i: i in due)
    assert [o.job.newest for o in outputs] == sorted(due)
    for o in outputs:
        want = expected(model, crops, points, 0, o.job.start, o.job.newest)
        assert np.max(np.abs(o.log_probs - want)) < TOLERANCE, o.job


def test_a_new_run_starts_afresh_and_ignores_the_old_ones_output(model):
    crops, points = frames(60, seed=2)
    runner = WindowRunner(model, 30)
    stream(runner, crops[:20], points[:20], lambda i: i % 8 == 7)
    stale = runner.job()
    runner.reset(25)  # the face was lost at frames 20..24
    for i in range(25, 60):
        runner.append(crops[i], points[i])
        if i == 40:
            runner.merge(runner.run(stale))  # a window of the previous run landing late
        if i % 8 == 7:
            o = runner.run(runner.job())
            runner.merge(o)
            assert o.job.start >= 25
            want = expected(model, crops, points, 25, o.job.start, o.job.newest)
            assert np.max(np.abs(o.log_probs - want)) < TOLERANCE, o.job


def test_without_the_split_every_window_runs_the_full_model(model, tiny_model):
    crops, points = frames(50)
    for runner in (
        WindowRunner(model, 30, split=False),
        WindowRunner(LipModel.load(tiny_model, "cpu", 1), 30),
    ):
        assert not runner.split
        for o in stream(runner, crops, points, lambda i: i % 10 == 9):
            window = slice(o.job.start, o.job.newest + 1)
            assert (
                o.job.cached is None and o.features is None and len(o.job.crops) == min(30, o.job.newest + 1)
            )
            assert np.max(np.abs(o.log_probs - runner.model(crops[window], points[window]))) < TOLERANCE
            assert o.timings["encoder"] == o.timings["head"] == 0 < o.timings["model"]
