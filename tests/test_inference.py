"""Loading models and running them: providers, the metadata contract, clear errors."""

import dataclasses
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from core import inference
from core.inference import CPU, CUDA, LipModel, ModelError, ProviderError, build_session, default_model_path
from tests.conftest import GRID_VOCABULARY, tiny_contract

CPU_ONLY_MESSAGE = (
    "this is a CPU-only build (no CUDA provider library); install the GPU build (onnxruntime-gpu), "
    "or use the cpu or auto provider"
)


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
        if inference.has_cuda_library():  # the library is there, the GPU or CUDA's own libraries are not
            assert "the CUDA provider failed to load (no GPU" in str(err.value)


@pytest.fixture
def asked_for(monkeypatch) -> list[list[str]]:
    """The providers each new session asks ONNX Runtime for, which lists CUDA as available."""
    import onnxruntime

    asked = []
    real = onnxruntime.InferenceSession

    def spy(path: str, options: object, providers: list[str]) -> object:
        asked.append(providers)
        return real(path, options, providers=providers)

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    return asked


@pytest.mark.parametrize("library", [True, False])
def test_auto_asks_for_cuda_only_where_its_provider_library_is(tiny_model, asked_for, monkeypatch, library):
    monkeypatch.setattr(inference, "has_cuda_library", lambda: library)
    assert build_session(tiny_model, provider="auto", threads=1).get_providers()[-1] == CPU
    assert asked_for == [[CUDA, CPU] if library else [CPU]]


def test_cuda_in_a_cpu_only_build_says_so(tiny_model, asked_for, monkeypatch):
    monkeypatch.setattr(inference, "has_cuda_library", lambda: False)
    with pytest.raises(ProviderError) as err:
        LipModel.load(tiny_model, provider="cuda", threads=1)
    assert str(err.value) == f"cannot use CUDA for {tiny_model}: {CPU_ONLY_MESSAGE}"
    assert asked_for == []  # nothing was tried


def test_the_provider_library_is_found_in_onnx_runtimes_folder(monkeypatch, tmp_path):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "__file__", str(tmp_path / "__init__.py"))
    (tmp_path / "capi").mkdir()
    assert not inference.has_cuda_library()
    (tmp_path / "capi" / "libonnxruntime_providers_cuda.so").touch()
    assert inference.has_cuda_library()


@pytest.mark.parametrize("entry_point", ["lipreader_app.cli", "training.cli"])
def test_onnx_runtime_is_loaded_with_its_telemetry_off(tiny_model, tmp_path, repo_dir, entry_point):
    # ONNX Runtime reads ORT_DISABLE_TELEMETRY once, as it is loaded: what it is then is what counts.
    # Without it, loading ONNX Runtime writes a device id and an event queue under ~/.cache/Microsoft/.
    code = f"""
import json, os, sys

class Spy:  # records ORT_DISABLE_TELEMETRY as onnxruntime is imported
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime":
            seen.append(os.environ.get("ORT_DISABLE_TELEMETRY"))

seen = []
sys.meta_path.insert(0, Spy())
import {entry_point}
from core.inference import LipModel

LipModel.load(sys.argv[1], "auto", threads=1)
print(json.dumps(seen))
"""
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    env |= {"HOME": str(tmp_path), "ORT_DISABLE_TELEMETRY": "0"}  # even when the user's shell turns it on
    done = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model)],
        cwd=repo_dir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["1"]
    assert not (tmp_path / ".cache" / "Microsoft").exists()


def test_input_is_normalised_with_the_contract(onnx_factory):
    # class 0 gets mean(video) as logit: the model sees (crop / 255 - mean) / std
    weights = np.zeros(28, np.float32)
    weights[0] = 1.0
    contract = tiny_contract(mean=0.4, std=0.2).to_json()
    model = LipModel.load(onnx_factory("norm.onnx", contract, video_weights=weights), threads=1)
    out = model(np.full((5, 48, 96), 255, np.uint8), np.tile(np.array([48, 24], np.float32), (5, 40, 1)))
    assert np.allclose(out[:, 0] - out[:, 1], (1 - 0.4) / 0.2, atol=1e-4)  # points at the centre -> 0


def test_a_model_of_crops_cut_by_another_front_end_version_is_loaded_with_a_warning(onnx_factory, caplog):
    plain = LipModel.load(onnx_factory("v1.onnx", tiny_contract().to_json()), threads=1)
    assert plain.contract.crop_version == 1 and caplog.messages == []
    path = onnx_factory("v2.onnx", dataclasses.replace(tiny_contract(), crop_version=2).to_json())
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        LipModel.load(path, threads=1)
    assert caplog.messages == [
        "model v2.onnx was trained on crops cut by version 2 of the front end, this one cuts version 1: "
        "it may read worse"
    ]


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


def _edited(**fields: object) -> str:
    """The tiny model's contract as JSON with `fields` replaced."""
    return json.dumps({**json.loads(tiny_contract().to_json()), **fields})


@pytest.mark.parametrize(
    "contract",
    [
        "{not json",
        json.dumps({"format_version": 99}),
        tiny_contract(blank=40).to_json(),
        tiny_contract().to_json().replace('"kind": "grammar"', '"kind": "magic"'),
        # malformed by hand: one line each, never a TypeError or AttributeError from inside
        json.dumps([1, 2]),
        _edited(fps="x"),
        _edited(decoder=None),
        _edited(window=2.5),
        _edited(mean=None),
        _edited(vocabulary=[1, 2, 3]),
        _edited(vocabulary=None),
        _edited(crop=7),
        _edited(crop={"height": "32"}),
        _edited(vocabulary="abc"),
        _edited(fps=float("nan")),
        _edited(std=float("inf")),
        _edited(stream="x"),
        _edited(stream={"encoder": "e.onnx", "head": "h.onnx", "context": "4", "features": 80}),
        _edited(stream={"encoder": "e.onnx", "head": "h.onnx", "context": 4, "features": None}),
    ],
)
def test_invalid_contracts(onnx_factory, contract):
    path = onnx_factory("bad-contract.onnx", contract)
    with pytest.raises(
        ModelError, match="invalid model contract|contract format|blank index|decoder kind"
    ) as err:
        LipModel.load(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_a_contract_missing_a_field_names_it():
    from core.contract import ContractError, ModelContract

    values = json.loads(tiny_contract().to_json())
    del values["vocabulary"]
    with pytest.raises(ContractError, match="missing field 'vocabulary'"):
        ModelContract.from_json(json.dumps(values))


def test_a_newer_writers_decoder_settings_are_ignored():
    from core.contract import ModelContract

    values = json.loads(tiny_contract().to_json())
    values["decoder"]["lm_weight_schedule"] = [1, 2]  # a setting this version does not know
    assert ModelContract.from_json(json.dumps(values)) == tiny_contract()


def test_a_newer_writers_fields_are_ignored():
    from core.contract import ModelContract, StreamGraphs

    stream = StreamGraphs("m.encoder.onnx", "m.head.onnx", 2, 80, "features", "abc")
    values = json.loads(dataclasses.replace(tiny_contract(), stream=stream).to_json())
    values["speaker_embedding"] = "spk.onnx"  # optional parts a later version may add
    values["stream"]["future_part"] = "m.future.onnx"
    assert ModelContract.from_json(json.dumps(values)) == dataclasses.replace(tiny_contract(), stream=stream)


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
    assert 2 <= c.hop <= c.window and model.has_tail  # the shipped split has its tail
    out = model(
        np.zeros((c.window, c.crop.height, c.crop.width), np.uint8), np.zeros((c.window, 40, 2), np.float32)
    )
    assert out.shape == (c.window, len(c.vocabulary))


# -- the streaming split: encoder + head beside the model ----------------------------------------


def _copy_split(split_model, folder, parts=("encoder", "head", "encoder-tail")):
    """The split model copied to `folder` with only the given parts."""
    import shutil

    folder.mkdir(exist_ok=True)
    shutil.copy(split_model, folder / split_model.name)
    for part in parts:
        name = split_model.name.replace(".onnx", f".{part}.onnx")
        shutil.copy(split_model.with_name(name), folder / name)
    return folder / split_model.name


def _restamp(path, **props):
    """Rewrite metadata properties of an ONNX file in place."""
    import onnx

    proto = onnx.load(str(path))
    old = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**old, **props})
    onnx.save(proto, str(path))


def test_split_model_loads_its_encoder_and_head(split_model):
    model = LipModel.load(split_model, provider="cpu", threads=1)
    split = model.contract.stream
    assert model.streams and (split.context, split.features, split.feature_name) == (2, 80, "features")
    assert model.has_tail and model.files == (
        split_model,
        split_model.with_name("split.encoder.onnx"),
        split_model.with_name("split.head.onnx"),
        split_model.with_name("split.encoder-tail.onnx"),
    )
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (30, 48, 96), dtype=np.uint8)
    points = rng.uniform(0, 96, (30, 40, 2)).astype(np.float32)
    features = model.encode(crops, points)
    assert features.shape == (30, 80) and features.dtype == np.float32
    log_probs = model.decode_features(features)
    assert log_probs.shape == (30, 28) and np.max(np.abs(log_probs - model(crops, points))) < 1e-4
    # a chunk's inner frames need only `context` frames either side
    inner = model.encode(crops[8:22], points[8:22])[2:-2]
    assert np.max(np.abs(inner - features[10:20])) < 1e-4
    assert np.max(np.abs(model.encode(crops[10:20], points[10:20])[:2] - features[10:12])) > 1e-3
    # the tail: the same features of a chunk's frames after its first `context`, the rest not computed
    tail = model.encode_tail(crops[8:22], points[8:22])
    assert (
        tail.shape == (12, 80) and np.max(np.abs(tail - model.encode(crops[8:22], points[8:22])[2:])) < 1e-5
    )
    assert np.max(np.abs(tail[:10] - features[10:20])) < 1e-4
    model.warm_up()


def test_each_graph_of_a_split_model_is_checked_once(split_model, monkeypatch):
    checked = []
    check = LipModel._check_graph
    monkeypatch.setattr(
        LipModel,
        "_check_graph",
        staticmethod(lambda session, path, *io: checked.append(path.name) or check(session, path, *io)),
    )
    LipModel.load(split_model, provider="cpu", threads=1)
    assert sorted(checked) == sorted(
        ["split.onnx", "split.encoder.onnx", "split.head.onnx", "split.encoder-tail.onnx"]
    )


def test_a_missing_or_foreign_tail_leaves_the_split_without_it(split_model, tmp_path, caplog):
    path = _copy_split(split_model, tmp_path / "m", ("encoder", "head"))
    model = LipModel.load(path, provider="cpu", threads=1)
    assert model.streams and not model.has_tail and len(model.files) == 3
    assert "split.encoder-tail.onnx missing; encoding each window's context frames in full" in caplog.text
    with pytest.raises(ModelError, match="no tail encoder"):
        model.encode_tail(np.zeros((6, 48, 96), np.uint8), np.zeros((6, 40, 2), np.float32))
    path = _copy_split(split_model, tmp_path / "n")
    _restamp(path.with_name("split.encoder-tail.onnx"), **{"lipreader.stream": '{"id": "x", "part": "tail"}'})
    model = LipModel.load(path, provider="cpu", threads=1)
    assert model.streams and not model.has_tail
    assert "split.encoder-tail.onnx is not the tail exported with split.onnx" in caplog.text


def test_split_is_optional(split_model, tiny_model):
    model = LipModel.load(split_model, provider="cpu", threads=1, stream=False)
    assert not model.streams and model.files == (split_model,)
    with pytest.raises(ModelError, match="no streaming encoder"):
        model.encode(np.zeros((5, 48, 96), np.uint8), np.zeros((5, 40, 2), np.float32))
    with pytest.raises(ModelError, match="no streaming head"):
        model.decode_features(np.zeros((5, 80), np.float32))
    assert not LipModel.load(tiny_model, provider="cpu", threads=1).streams  # its contract has none


@pytest.mark.parametrize("parts", [(), ("encoder",), ("head",)])
def test_missing_split_files_fall_back_to_the_full_model(split_model, tmp_path, caplog, parts):
    path = _copy_split(split_model, tmp_path / "m", parts)
    model = LipModel.load(path, provider="cpu", threads=1)
    assert not model.streams and model.files == (path,)
    assert "are not beside it; running the full model on every window" in caplog.text


@pytest.mark.parametrize("stamp", ['{"id": "another export", "part": "encoder"}', '{"id": "x"', ""])
def test_split_files_of_another_export_are_not_used(split_model, tmp_path, caplog, stamp):
    path = _copy_split(split_model, tmp_path / "m")
    _restamp(path.with_name("split.encoder.onnx"), **{"lipreader.stream": stamp})
    assert not LipModel.load(path, provider="cpu", threads=1).streams
    assert "split.encoder.onnx is not the encoder exported with split.onnx" in caplog.text


def test_broken_split_files_are_errors(split_model, tmp_path):
    path = _copy_split(split_model, tmp_path / "m")
    path.with_name("split.head.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="split.head.onnx: not a valid ONNX model"):
        LipModel.load(path, provider="cpu", threads=1)


def test_split_graphs_must_match_the_contract(split_model, tmp_path):
    from core.contract import ModelContract

    path = _copy_split(split_model, tmp_path / "m")
    contract = LipModel.load(split_model, provider="cpu", threads=1, stream=False).contract
    wrong = dataclasses.replace(contract, stream=dataclasses.replace(contract.stream, features=81))
    _restamp(path, **{"lipreader.contract": wrong.to_json()})
    with pytest.raises(ModelError, match=r"split\.(encoder|head)\.onnx: 'features' has shape"):
        LipModel.load(path, provider="cpu", threads=1)
    assert ModelContract.from_json(wrong.to_json()) == wrong


def test_sessions_sleep_when_idle(tiny_model):
    options = build_session(tiny_model, provider="cpu", threads=2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_model_of_the_wrong_shape_fails_before_its_streaming_parts_are_looked_for(onnx_factory, caplog):
    from core.contract import StreamGraphs

    stream = StreamGraphs("m.encoder.onnx", "m.head.onnx", 2, 80, "features", "abc")
    contract = dataclasses.replace(tiny_contract(), stream=stream).to_json()
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        with pytest.raises(ModelError, match="'log_probs' has shape"):
            LipModel.load(onnx_factory("wrong-classes.onnx", contract, classes=30), threads=1)
    assert "m.encoder.onnx" not in caplog.text  # no warning about files the user never named
