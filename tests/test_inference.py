"""Loading models and running them: providers, the metadata contract, clear errors."""

import json
import sys

import numpy as np
import pytest

from core import inference
from core.inference import CPU, CUDA, LipModel, ModelError, build_session, default_model_path
from tests.conftest import GRID_VOCABULARY, tiny_contract


def test_tiny_model_loads_with_its_contract(tiny_model):
    model = LipModel.load(tiny_model, provider="cpu", threads=1)
    assert model.provider == CPU
    assert model.contract.vocabulary == GRID_VOCABULARY
    assert (model.contract.window, model.contract.hop, model.contract.fps) == (75, 10, 25.0)
    assert model.contract.decoder.kind == "grammar" and len(model.contract.decoder.grammar) == 6
    crops = np.zeros((30, 48, 96), np.uint8)
    points = np.zeros((30, 40, 2), np.float32)
    out = model(crops, points)
    assert out.shape == (30, 28) and out.dtype == np.float32
    assert np.allclose(np.exp(out).sum(axis=1), 1, atol=1e-5)
    model.warm_up()


def test_session_options_and_providers(tiny_model):
    session = build_session(tiny_model, provider="cpu", threads=3)
    options = session.get_session_options()
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert session.get_providers() == [CPU]


def test_auto_falls_back_quietly_and_cuda_insists(tiny_model, capfd):
    session = build_session(tiny_model, provider="auto", threads=1)
    used = session.get_providers()
    assert used[-1] == CPU
    assert "CUDA" not in capfd.readouterr().err  # no wall of provider-bridge errors
    if CUDA in used:  # a machine with a working GPU
        assert LipModel.load(tiny_model, provider="cuda").provider == CUDA
    else:
        with pytest.raises(ModelError, match="cannot use CUDA") as err:
            LipModel.load(tiny_model, provider="cuda")
        assert str(tiny_model) in str(err.value) and "\n" not in str(err.value)


def test_input_is_normalised_with_the_contract(onnx_factory):
    # class 0 gets mean(video) as logit: the model sees (crop / 255 - mean) / std
    weights = np.zeros(28, np.float32)
    weights[0] = 1.0
    contract = tiny_contract(mean=0.4, std=0.2).to_json()
    model = LipModel.load(onnx_factory("norm.onnx", contract, video_weights=weights), threads=1)
    out = model(np.full((5, 48, 96), 255, np.uint8), np.tile(np.array([48, 24], np.float32), (5, 40, 1)))
    assert np.allclose(out[:, 0] - out[:, 1], (1 - 0.4) / 0.2, atol=1e-4)  # points at the centre -> 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a valid ONNX model"),
        (b"\x00\xff" * 500, "not a valid ONNX model"),
        (b"hello, I am a text file\n", "not a valid ONNX model"),
    ],
)
def test_files_that_are_not_onnx(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as err:
        LipModel.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        LipModel.load(tmp_path / "nope.onnx")


def test_model_without_contract(onnx_factory):
    with pytest.raises(ModelError, match="no 'lipreader.contract' metadata"):
        LipModel.load(onnx_factory("bare.onnx", None))


@pytest.mark.parametrize(
    "contract",
    [
        "{not json",
        json.dumps({"format_version": 99}),
        tiny_contract(blank=40).to_json(),
        tiny_contract().to_json().replace('"kind": "grammar"', '"kind": "magic"'),
    ],
)
def test_invalid_contracts(onnx_factory, contract):
    path = onnx_factory("bad-contract.onnx", contract)
    with pytest.raises(
        ModelError, match="invalid model contract|contract format|blank index|decoder kind"
    ) as err:
        LipModel.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"video_dims": (64, 64)}, "'video' has shape"),
        ({"points_dim": 42}, "'points' has shape"),
        ({"classes": 30}, "'log_probs' has shape"),
        ({"video_name": "frames"}, "lacks"),
    ],
)
def test_graph_that_does_not_match_the_contract(onnx_factory, kwargs, message):
    path = onnx_factory("mismatch.onnx", tiny_contract().to_json(), **kwargs)
    with pytest.raises(ModelError, match=message):
        LipModel.load(path)


def test_bad_provider_and_threads(tiny_model):
    with pytest.raises(ValueError, match="unknown provider"):
        build_session(tiny_model, provider="tpu")
    with pytest.raises(ValueError, match="threads"):
        build_session(tiny_model, threads=0)


def test_default_model_path_from_source_bundle_and_env(monkeypatch, tmp_path, repo_dir):
    monkeypatch.delenv(inference.MODEL_ENV_VAR, raising=False)
    assert default_model_path() == repo_dir / "models" / "grid-s1.onnx"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert default_model_path() == tmp_path / "models" / "grid-s1.onnx"
    monkeypatch.setenv(inference.MODEL_ENV_VAR, str(tmp_path / "mine.onnx"))
    assert default_model_path() == tmp_path / "mine.onnx"


def test_real_model_contract(real_model):
    model = LipModel.load(real_model, threads=2)
    c = model.contract
    assert c.vocabulary[c.blank] == "_" and " " in c.vocabulary
    assert 2 <= c.hop <= c.window
    out = model(
        np.zeros((c.window, c.crop.height, c.crop.width), np.uint8), np.zeros((c.window, 40, 2), np.float32)
    )
    assert out.shape == (c.window, len(c.vocabulary))
