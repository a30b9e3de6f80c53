"""`lipreader-train nose-range`: the face proportions of the training clips into a model's files."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.inference import LipModel
from training.checkpoint import load_checkpoint
from training.cli import main
from training.export import export_run, read_contract, rewrite_contract


def _args(mini_grid, tmp_path, *more):
    data = ["--data", str(mini_grid["data"]), "--cache", str(mini_grid["cache"]), "--val-fraction=0.25"]
    return ["nose-range", *data, "--out", str(tmp_path / "run"), *more]


def test_the_range_of_the_training_clips_goes_into_the_model_and_its_checkpoint(
    tiny_run, mini_grid, tmp_path, capsys
):
    onnx_path, _ = export_run(tiny_run / "best.pt", tmp_path / "models", "tiny")
    resume = onnx_path.with_suffix(".resume.pt")
    before = LipModel.load(onnx_path, provider="cpu")
    crop = before.contract.crop
    crops = np.random.default_rng(0).integers(0, 255, (30, crop.height, crop.width), np.uint8)
    points = np.full((30, 40, 2), 20.0, np.float32)
    expected = before(crops, points)
    weights = torch.load(resume, map_location="cpu", weights_only=False)["model"]

    assert main(_args(mini_grid, tmp_path, "--onnx", str(onnx_path), "--checkpoint", str(resume))) == 0
    said = capsys.readouterr().out
    crop = read_contract(onnx_path).crop
    # GRID s1's eye-line-to-nose-bottom distance is about 0.6 eye-corner distances
    assert 0.5 < crop.nose_low < crop.nose_high < 0.7
    assert f"nose range {crop.nose_low:g}-{crop.nose_high:g}" in said and "3 training clips" in said
    after = LipModel.load(onnx_path, provider="cpu")
    assert after.streams  # the split's files still belong to it
    assert after.contract.crop == crop
    assert np.array_equal(after(crops, points), expected)  # the graph is untouched
    _, _, cfg = load_checkpoint(resume)
    assert (cfg.crop.nose_low, cfg.crop.nose_high) == (crop.nose_low, crop.nose_high)
    kept = torch.load(resume, map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(kept[k], v) for k, v in weights.items())


def test_bad_files_are_refused_in_one_line_before_anything_is_written(tiny_run, mini_grid, tmp_path, capsys):
    onnx_path, _ = export_run(tiny_run / "best.pt", tmp_path / "models", "tiny")
    before = onnx_path.read_bytes()
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    runs = {
        "notes.pt": ["--onnx", str(onnx_path), "--checkpoint", str(text)],
        "crops are not": ["--onnx", str(onnx_path), "--crop-height=32", "--crop-width=64"],
    }
    for said, more in runs.items():
        assert main(_args(mini_grid, tmp_path, *more)) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
        assert onnx_path.read_bytes() == before
    assert not (tmp_path / "run").exists()  # no run folder made for its log either
    # written once, the range may be measured again; a model trained on ranged crops keeps its own
    assert main(_args(mini_grid, tmp_path, "--onnx", str(onnx_path))) == 0
    assert main(_args(mini_grid, tmp_path, "--onnx", str(onnx_path))) == 0
    capsys.readouterr()
    trained = tmp_path / "ranged.onnx"
    contract = read_contract(onnx_path)
    ranged = replace(contract, training={**contract.training, "crop": contract.crop.to_dict()})
    shutil.copy(onnx_path, trained)
    rewrite_contract(trained, lambda _: ranged)
    assert main(_args(mini_grid, tmp_path, "--onnx", str(trained))) != 0
    assert "keeps that one" in capsys.readouterr().err
    # a range that is not one is refused with the other flags
    with pytest.raises(SystemExit):
        main(_args(mini_grid, tmp_path, "--onnx", str(onnx_path), "--crop-nose-low=0.6"))


def test_a_file_that_is_not_a_model_is_refused_in_one_line(mini_grid, tmp_path, capsys):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    assert main(_args(mini_grid, tmp_path, "--onnx", str(text))) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.onnx" in err[0]
    assert text.read_text() == "not a model"
