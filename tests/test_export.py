"""ONNX export: parity with torch, the contract in the metadata, the model card, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.contract import STREAM_METADATA_KEY, ContractError, DecoderSettings, ModelContract, StreamGraphs
from core.crop import CropSpec, normalise_points
from core.inference import LipModel
from training import graphs
from training.card import model_card
from training.config import TrainConfig, config_from_dict
from training.data import GRID_GRAMMAR, VOCABULARY
from training.export import (
    ExportOptions,
    RunEvaluation,
    build_contract,
    export_onnx,
    export_run,
    load_checkpoint,
    parity,
    read_contract,
)
from training.model import LipNet, ModelConfig
from training.prepare import cache_dir, load_cached

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The tiny run's best checkpoint exported as models/tiny.onnx + tiny.md."""
    models = tmp_path_factory.mktemp("models")
    onnx_path, card = export_run(tiny_run / "best.pt", models, "tiny")
    return onnx_path, card


def test_contract_round_trips_through_the_metadata(exported, tiny_run):
    onnx_path, _ = exported
    contract = read_contract(onnx_path)
    assert isinstance(contract, ModelContract)
    assert contract.vocabulary == VOCABULARY and contract.blank == 0 and contract.crop == CropSpec()
    assert (contract.fps, contract.window, contract.hop) == (25.0, 75, 2)
    assert (contract.video_input, contract.points_input, contract.output) == ("video", "points", "log_probs")
    assert contract.decoder.kind == "grammar" and contract.decoder.grammar == GRID_GRAMMAR
    assert contract.decoder.beam_width == 10 and len(contract.decoder.lexicon) == 51
    assert contract.decoder.word_score == 0.0  # TrainConfig's default
    _, ck, cfg = load_checkpoint(tiny_run / "best.pt")
    assert config_from_dict(contract.training) == cfg
    assert (contract.mean, contract.std) == (cfg.mean, cfg.std)
    data, metrics = contract.data, contract.metrics
    assert (data["dataset"], data["kind"], data["clips"], data["train_clips"], data["val_clips"]) == (
        "s1",
        "grid",
        4,
        3,
        1,
    )
    assert data["seed"] == 1337 and data["speakers"] == ["s1"] and data["left_out_count"] == 0
    assert metrics["epochs"] == 2 and metrics["steps"] == 4 and metrics["decoder"] == "grammar"
    for key in ("val_cer_greedy", "val_wer_greedy", "val_cer", "val_wer"):
        assert 0 <= metrics[key] <= 1.5, key
    assert metrics["parity_max_abs_diff"] < TOLERANCE and metrics["wall_seconds"] > 0
    assert metrics["machine"] and metrics["reproduce"].startswith("lipreader-train --data=")


def test_dynamic_axes_and_parity_at_two_shapes(exported, tiny_run):
    onnx_path, _ = exported
    graph = onnx.load(str(onnx_path)).graph
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }
    assert dims == {"video": ["N", "T", 48, 96], "points": ["N", "T", 80], "log_probs": ["N", "T", 28]}
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    diff = parity(model, cfg, onnx_path, ((1, 75), (3, 40), (2, 7)))
    print(f"tiny model: ONNX Runtime vs torch max abs diff {diff:.2e}")
    assert diff < TOLERANCE


def test_the_app_runs_the_export_like_torch(exported, tiny_run, mini_grid):
    """core.inference reads the contract (normalisation, crop) and gets torch's log-probs."""
    onnx_path, _ = exported
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    clip = load_cached(cache_dir(mini_grid["cache"], cfg.crop, cfg.fps) / "s1_bbaf2n.npz")
    app = LipModel.load(onnx_path, provider="cpu", threads=1)
    got = app(clip.crops, clip.lip_points)
    video = (torch.from_numpy(clip.crops).float() / 255 - cfg.mean) / cfg.std
    points = torch.from_numpy(normalise_points(clip.lip_points, cfg.crop))
    with torch.no_grad():
        expected = model(video[None], points[None])[0].numpy()
    assert got.shape == (75, 28) and float(np.max(np.abs(got - expected))) < TOLERANCE


def test_model_card(exported):
    onnx_path, card = exported
    text = card.read_text()
    assert card == onnx_path.with_suffix(".md")
    for part in (
        "# tiny",
        "## Data",
        "3 training / 1 validation",
        "seed 1337",
        "## Training",
        "| greedy |",
        "| grammar (beam 10) (default) |",
        "## Known limits",
        "**One speaker** (s1)",
        "**GRID grammar**",
        "**Frontal studio video**",
        "lipreader-train --data=",
    ):
        assert part in text, part


def test_a_card_of_speakers_not_named_says_so(tmp_path):
    state = {"epoch": 1, "step": 2, "best": {}, "history": [], "machine": "here"}
    contract = build_contract(
        TrainConfig(), state, RunEvaluation(None, {}, DecoderSettings()), ExportOptions()
    )
    unnamed = dataclasses.replace(contract, data={**contract.data, "speakers": [], "split": "random"})
    card = model_card(unnamed, "x", Path("runs/x/best.pt"), tmp_path / "x.onnx", 1000)
    assert "speakers: not named" in card and "One speaker" not in card
    assert "Validation clips come from the training speakers" in card


def test_a_distilled_model_names_its_teachers_files(tmp_path):
    teacher, digest = "runs/a/best.pt", "ab" * 32
    cfg = TrainConfig(teachers=(teacher,), distill_weight=0.5)
    state = {"epoch": 1, "step": 2, "best": {}, "history": [], "machine": "here"}
    run = RunEvaluation(None, {}, DecoderSettings())
    contract = build_contract(cfg, {**state, "teacher_digests": {teacher: digest}}, run, ExportOptions())
    contract = ModelContract.from_json(contract.to_json())
    assert contract.metrics["teacher_sha256"] == {teacher: digest}
    card = model_card(contract, "x", Path("runs/x/best.pt"), tmp_path / "x.onnx", 1000)
    assert f"- Distilled: taught by `{teacher}` (sha256 {digest}), weight 0.5\n" in card
    untaught = build_contract(TrainConfig(), state, run, ExportOptions())
    assert "teacher_sha256" not in untaught.metrics
    assert "Distilled" not in model_card(untaught, "x", Path("runs/x/best.pt"), tmp_path / "x.onnx", 1000)


def test_full_size_model_parity_and_size(tmp_path):
    """The shipped architecture (3.4 M parameters) exports small and matches torch."""
    cfg = TrainConfig()
    torch.manual_seed(0)
    model = LipNet(replace(cfg.model, num_classes=len(VOCABULARY))).eval()
    contract = ModelContract(VOCABULARY, 0, cfg.crop, cfg.fps, 75, 10, cfg.mean, cfg.std)
    path = tmp_path / "full.onnx"
    diff = export_onnx(model, cfg, path, contract)
    print(
        f"full-size model: ONNX Runtime vs torch max abs diff {diff:.2e}, {path.stat().st_size / 1e6:.1f} MB"
    )
    assert diff < TOLERANCE and path.stat().st_size < 16e6
    metrics = read_contract(path).metrics
    assert metrics["parity_max_abs_diff"] == diff and metrics["stream_parity_max_abs_diff"] < TOLERANCE
    parts = [path.with_name("full.encoder.onnx"), path.with_name("full.head.onnx")]
    assert sum(p.stat().st_size for p in parts) < 16e6


def test_a_temporal_trunk_exports_with_its_wider_context(tmp_path):
    """Trunk blocks with a temporal kernel of 3 (ModelConfig.trunk_time): a frame's features depend
    on 4 frames either side, which the contract says and the stream parity checks."""
    cfg = TrainConfig()
    net = ModelConfig(height=48, width=96, channels=(4, 4, 8), visual_dim=16, points_dim=8, hidden=8)
    torch.manual_seed(0)
    model = LipNet(replace(net, num_classes=len(VOCABULARY), trunk_time=3)).eval()
    contract = ModelContract(VOCABULARY, 0, cfg.crop, cfg.fps, 75, 10, cfg.mean, cfg.std)
    path = tmp_path / "temporal.onnx"
    assert export_onnx(model, cfg, path, contract) < TOLERANCE
    written = read_contract(path)
    assert written.stream.context == 4 and written.metrics["stream_parity_max_abs_diff"] < TOLERANCE
    app = LipModel.load(path, provider="cpu", threads=1)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (40, 48, 96), np.uint8)
    points = rng.uniform(10, 80, (40, 40, 2)).astype(np.float32)
    whole = app.encode(crops, points)
    # a chunk's features equal the whole clip's where it carries 4 frames of real context
    assert np.max(np.abs(app.encode(crops[10:30], points[10:30])[4:-4] - whole[14:26])) < TOLERANCE
    assert np.max(np.abs(app.encode(crops[12:30], points[12:30])[2:-4] - whole[14:26])) > TOLERANCE


def test_failed_parity_leaves_nothing_behind(tiny_run, tmp_path):
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    contract = ModelContract(VOCABULARY, 0, cfg.crop, cfg.fps, 75, 10, cfg.mean, cfg.std)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the previous model")
    with pytest.raises(RuntimeError, match="differs from torch by"):
        export_onnx(model, cfg, path, contract, ExportOptions(tolerance=1e-30))
    assert path.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_failed_stream_parity_leaves_nothing_behind(tiny_run, tmp_path, monkeypatch):
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    contract = ModelContract(VOCABULARY, 0, cfg.crop, cfg.fps, 75, 8, cfg.mean, cfg.std)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the previous model")
    monkeypatch.setattr(graphs, "stream_parity", lambda *args: 0.5)
    with pytest.raises(RuntimeError, match="m.encoder.onnx differs from torch by 5.00e-01"):
        export_onnx(model, cfg, path, contract)
    assert path.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_export_without_the_data_keeps_the_recorded_numbers(tiny_run, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    split = json.loads((run / "split.json").read_text())
    (run / "split.json").write_text(json.dumps({**split, "val": ["s1_gone"]}))
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        onnx_path, _ = export_run(run / "best.pt", tmp_path / "models")
    assert onnx_path.name == "run.onnx"
    assert any("1 validation clips not in" in r.getMessage() for r in caplog.records)
    metrics = read_contract(onnx_path).metrics
    best = torch.load(run / "best.pt", weights_only=False)["state"]["best"]
    assert metrics["val_wer_greedy"] == best["val_wer"] and "val_wer" not in metrics


# -- the streaming split ----------------------------------------------------------------------


def _dims(path) -> dict[str, list]:
    graph = onnx.load(str(path)).graph
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }


def test_stream_graphs_beside_the_model(exported):
    onnx_path, _ = exported
    split = read_contract(onnx_path).stream
    assert (split.encoder, split.head) == ("tiny.encoder.onnx", "tiny.head.onnx")
    assert (split.context, split.features, split.feature_name) == (2, 16 + 64, "features")
    assert len(split.id) == 32
    encoder, head = onnx_path.with_name(split.encoder), onnx_path.with_name(split.head)
    assert _dims(encoder) == {
        "video": ["N", "T", 48, 96],
        "points": ["N", "T", 80],
        "features": ["N", "T", 80],
    }
    assert _dims(head) == {"features": ["N", "T", 80], "log_probs": ["N", "T", 28]}
    tail = onnx_path.with_name(split.tail)
    assert split.tail == "tiny.encoder-tail.onnx"
    assert _dims(tail) == {**_dims(encoder), "features": ["N", "T_tail", 80]}  # fewer frames out than in
    for path, part in ((encoder, "encoder"), (head, "head"), (tail, "tail")):
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert json.loads(props[STREAM_METADATA_KEY]) == {"id": split.id, "part": part}
    assert read_contract(onnx_path).metrics["stream_parity_max_abs_diff"] < TOLERANCE
    assert "tiny.encoder.onnx" in exported[1].read_text()  # the model card names the split
    assert "`tiny.encoder-tail.onnx`, also beside it" in exported[1].read_text()


def test_a_tail_is_cut_only_from_a_graph_it_matches(exported, tiny_run, tmp_path, caplog):
    onnx_path, _ = exported
    split = read_contract(onnx_path).stream
    encoder, tail = onnx_path.with_name(split.encoder), onnx_path.with_name(split.tail)
    _, _, cfg = load_checkpoint(tiny_run / "best.pt")
    assert graphs._tail_matches(encoder, tail, cfg, split.context)
    # a context the convolutions' padding does not add up to: nothing written
    assert not graphs.write_tail(encoder, tmp_path / "t.onnx", split.context + 1, split.id)
    assert not (tmp_path / "t.onnx").exists()
    # a graph it does not know (a convolution without its pads): no tail, no exception
    proto = onnx.load(str(encoder))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    conv.attribute.remove(next(a for a in conv.attribute if a.name == "pads"))
    onnx.save(proto, str(tmp_path / "odd.onnx"))
    assert not graphs.write_tail(tmp_path / "odd.onnx", tmp_path / "t.onnx", split.context, split.id)
    assert not (tmp_path / "t.onnx").exists()
    # a "tail" that is not one (here the encoder itself) is refused before export keeps it
    assert not graphs._tail_matches(encoder, encoder, cfg, split.context)
    assert "exported without a tail" in caplog.text


def test_stream_parity_on_a_real_clip(exported, tiny_run, mini_grid):
    """Encoder features = torch's, also for a chunk carrying 2 frames of context either side;
    head(encoder) over the whole clip = the full torch model."""
    onnx_path, _ = exported
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    split = read_contract(onnx_path).stream
    diff = graphs.stream_parity(
        model,
        cfg,
        onnx_path.with_name(split.encoder),
        onnx_path.with_name(split.head),
        ((1, 75), (2, 30)),
        onnx_path.with_name(split.tail),
    )
    assert diff < TOLERANCE
    clip = load_cached(cache_dir(mini_grid["cache"], cfg.crop, cfg.fps) / "s1_bbaf2n.npz")
    app = LipModel.load(onnx_path, provider="cpu", threads=1)
    video = (torch.from_numpy(clip.crops).float() / 255 - cfg.mean) / cfg.std
    points = torch.from_numpy(normalise_points(clip.lip_points, cfg.crop))
    with torch.no_grad():
        features = model.encode(video[None], points[None])[0].numpy()
        expected = model(video[None], points[None])[0].numpy()
    assert np.max(np.abs(app.encode(clip.crops, clip.lip_points) - features)) < TOLERANCE
    chunk = app.encode(clip.crops[28:52], clip.lip_points[28:52])
    assert np.max(np.abs(chunk[2:-2] - features[30:50])) < TOLERANCE
    assert np.max(np.abs(app.decode_features(app.encode(clip.crops, clip.lip_points)) - expected)) < TOLERANCE


def test_export_without_the_split(tiny_run, tmp_path):
    model, _, cfg = load_checkpoint(tiny_run / "best.pt")
    contract = ModelContract(VOCABULARY, 0, cfg.crop, cfg.fps, 75, 8, cfg.mean, cfg.std)
    export_onnx(model, cfg, tmp_path / "m.onnx", contract, ExportOptions(stream=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert read_contract(tmp_path / "m.onnx").stream is None
    assert not LipModel.load(tmp_path / "m.onnx", provider="cpu", threads=1).streams


def test_contract_stream_round_trip_and_older_contracts():
    split = StreamGraphs("m.encoder.onnx", "m.head.onnx", 2, 320, "features", "abc")
    contract = ModelContract(VOCABULARY, 0, CropSpec(), 25.0, 75, 8, 0.4, 0.2, stream=split)
    assert ModelContract.from_json(contract.to_json()) == contract
    older = json.loads(contract.to_json())
    del older["stream"]  # written before the split existed
    assert ModelContract.from_json(json.dumps(older)).stream is None
    for bad in (
        replace(split, encoder="../m.encoder.onnx"),
        replace(split, head="sub\\m.head.onnx"),
        replace(split, head=split.encoder),
        replace(split, context=-1),
        replace(split, features=0),
    ):
        with pytest.raises(ContractError, match="stream"):
            ModelContract.from_json(replace(contract, stream=bad).to_json())


def test_resume_checkpoint_beside_the_model(exported, tiny_run):
    onnx_path, _ = exported
    resume = onnx_path.with_suffix(".resume.pt")
    small = torch.load(resume, map_location="cpu", weights_only=False)
    last = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    assert small["state"]["epoch"] == last["state"]["epoch"]
    for name, value in last["model"].items():
        assert torch.equal(small["model"][name], value), name
    moments = [v for s in small["optimizer"]["state"].values() for k, v in s.items() if k != "step"]
    assert moments and all(v.dtype == torch.bfloat16 for v in moments)
    # loading casts the moments back to the parameters' dtype, close to the originals
    model, _, _ = load_checkpoint(tiny_run / "last.pt")
    opt = torch.optim.AdamW(model.parameters())
    opt.load_state_dict(small["optimizer"])
    restored = [v for s in opt.state_dict()["state"].values() for k, v in s.items() if k != "step"]
    original = [v for s in last["optimizer"]["state"].values() for k, v in s.items() if k != "step"]
    for r, o in zip(restored, original, strict=True):
        assert r.dtype == torch.float32 and torch.allclose(r, o, rtol=1e-2, atol=1e-6)


def test_resume_checkpoint_halves_the_weight_average(tmp_path):
    from training.export import write_resume_checkpoint

    ema = {"head.weight": torch.randn(4, 3), "bn.num_batches_tracked": torch.tensor(7)}
    torch.save({"optimizer": {"state": {}}, "model": {"w": torch.randn(2)}, "ema": ema}, tmp_path / "last.pt")
    write_resume_checkpoint(tmp_path / "last.pt", tmp_path / "small.pt")
    small = torch.load(tmp_path / "small.pt", weights_only=False)
    assert small["ema"]["head.weight"].dtype == torch.bfloat16 and small["model"]["w"].dtype == torch.float32
    assert torch.allclose(small["ema"]["head.weight"].float(), ema["head.weight"], rtol=1e-2)
    assert small["ema"]["bn.num_batches_tracked"].item() == 7  # counters stay as they are


def test_hand_written_notes_end_the_card_and_the_name_is_reproduced(tiny_run, tmp_path):
    (tmp_path / "tiny.notes.md").write_text("## Notes\n\nhand-written findings\n")
    onnx_path, card = export_run(tiny_run / "best.pt", tmp_path, "tiny", ExportOptions(hop=6))
    text = card.read_text()
    assert text.endswith("## Notes\n\nhand-written findings\n") and "## Known limits" in text
    reproduce = read_contract(onnx_path).metrics["reproduce"]
    assert reproduce.endswith(" --hop=6 --name=tiny")  # the export flags too (the run folder is "run")
