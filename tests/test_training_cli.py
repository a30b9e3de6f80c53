"""`lipreader-train`: flags and @files build the TrainConfig; one command goes from videos to a model."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.crop import CropSpec
from tests.conftest import MINI_CLIPS, REPO, make_grid_layout
from training import progress
from training.cli import _recipe_config, _resumed_config, build_parser, config_from_args, main
from training.config import TrainConfig, _verify_config, config_args, config_from_dict
from training.data import Clip
from training.export import ExportOptions, load_checkpoint, read_contract
from training.model import ModelConfig
from training.split import split_clips

TINY = [
    "--threads=1",
    "--workers=1",
    "--model-channels=8,8,8",
    "--model-hidden=16",
    "--model-visual-dim=16",
    "--batch-size=2",
    "--val-fraction=0.25",
    "--no-tensorboard",
]


def parse(argv: list[str]) -> tuple[str, TrainConfig]:
    args = build_parser().parse_args(argv)
    return args.stage, config_from_args(args)


# the shipped model's training, stage by stage: each fine-tunes the previous stage's best or last weights
SHIPPED_STAGES = (
    "config/grid-s1.args",
    "config/grid-s1-polish.args",
    "config/grid-s1-stage3.args",
    "config/grid-s1-stage4.args",
    "config/grid-s1-stage5.args",
    "config/grid-s1-stage6.args",
    "config/grid-s1-stage7.args",
    "config/grid-s1-stage8.args",
    "config/grid-s1-stage9.args",
    "config/grid-s1-stage10.args",
    "config/grid-s1-stage11.args",
    "config/grid-s1-stage12.args",
    "config/grid-s1-stage13.args",
    "config/grid-s1-stage14.args",
    "config/grid-s1-stage15.args",
    "config/grid-s1-stage16.args",
    "config/grid-s1-stage17.args",
)


def test_the_lip_points_depth_widens_the_models_point_input():
    _, flat = parse(["fit", "--data=x"])
    _, deep = parse(["fit", "--data=x", "--crop-depth"])
    assert (flat.model.num_points, deep.model.num_points) == (80, 120) and deep.crop.depth
    with pytest.raises(ValueError, match="lip-point features"):  # a config naming the wrong width
        _verify_config(replace(deep, model=replace(deep.model, num_points=80)))


def test_shipped_config_files_are_the_shipped_models_config(monkeypatch):
    monkeypatch.chdir(REPO)  # @files are read relative to the working directory, like the paths in them
    args = build_parser().parse_args([f"@{SHIPPED_STAGES[0]}"])
    first = previous = config_from_args(args)
    assert args.stage == "all"
    assert (first.data, first.out, first.cache, first.init_from) == (
        "../shared/grid/s1",
        "runs/grid-s1",
        "cache",
        "",
    )
    for stage in SHIPPED_STAGES[1:]:
        args = build_parser().parse_args([f"@{stage}"])
        cfg = config_from_args(args)
        # stages 6 to 12 started from the previous stage's last epoch (6, 7 and 12 from a resume.pt)
        assert cfg.init_from in (f"{previous.out}/best.pt", f"{previous.out}/last.pt"), stage
        assert cfg.out != previous.out, stage
        # the landmark way may change between stages (stage 6 moved to following the face), and the
        # trunk's temporal kernel (stage 11: the weights are carried over exactly)
        assert (
            cfg.data,
            cfg.cache,
            replace(cfg.model, trunk_time=1),
            replace(cfg.crop, follow_face=False),
        ) == (
            first.data,
            first.cache,
            first.model,
            first.crop,
        )
        previous = cfg
    # the last stage is the config the shipped model was exported with
    contract = read_contract(REPO / "models" / "grid-s1.onnx")
    assert args.name == "grid-s1" and previous == config_from_dict(contract.training)
    assert (args.hop or ExportOptions().hop) == contract.hop
    # and its crop, but for the nose range `lipreader-train nose-range` wrote after (the config's header)
    assert replace(contract.crop, nose_low=0.0, nose_high=0.0) == previous.crop
    assert 0.5 < contract.crop.nose_low < 0.6 < contract.crop.nose_high < 0.7
    resumed = torch.load(REPO / "models" / "grid-s1.resume.pt", map_location="cpu", weights_only=False)
    assert CropSpec.from_dict(resumed["config"]["crop"]) == contract.crop  # Adapt to my face cuts so too
    assert (args.window or ExportOptions().window) == contract.window == 60
    assert contract.decoder.word_score == previous.word_score > 0
    # its card ends with the hand-written notes as they are now (edited after an export: re-export)
    card = (REPO / "models" / "grid-s1.md").read_text()
    assert card.endswith("\n" + (REPO / "models" / "grid-s1.notes.md").read_text())


def test_experiment_configs_start_from_a_shipped_stage_or_an_experiment_that_does(monkeypatch):
    monkeypatch.chdir(REPO)
    stages = {config_from_args(build_parser().parse_args([f"@{s}"])).out for s in SHIPPED_STAGES}
    stages.add("models/grid-s1.resume.pt")  # the shipped model's own weights (the last stage's kept epoch)
    experiments = sorted((REPO / "config" / "experiments").glob("*.args"))
    assert experiments
    starts = {}  # run folder -> the run folder it starts from
    for path in experiments:
        args = build_parser().parse_args([f"@{path.relative_to(REPO)}"])
        cfg = config_from_args(args)
        assert cfg.out not in stages and cfg.out not in starts, path
        starts[cfg.out] = cfg.init_from.removesuffix("/best.pt").removesuffix("/last.pt")
        assert args.name != "grid-s1", path  # exporting it must not overwrite the shipped model
    for out, start in starts.items():
        seen = {out}
        while start not in stages:  # back along the chain to a shipped stage
            assert start in starts and start not in seen, f"{out} starts from {start}"
            seen.add(start)
            start = starts[start]


def test_later_arguments_override_and_stages_go_anywhere(tmp_path):
    args = tmp_path / "a.args"
    args.write_text("# a comment\n\n--epochs=36\n  --lr=0.001  \n--no-amp\n")
    stage, cfg = parse(["export", f"@{args}", "--epochs", "40"])
    assert (stage, cfg.epochs, cfg.lr, cfg.amp) == ("export", 40, 0.001, False)
    stage, cfg = parse(["--epochs=5", f"@{args}", "evaluate"])
    assert (stage, cfg.epochs) == ("evaluate", 36)


def test_args_files_name_others_beside_them_and_take_flags_with_spaces_and_comments(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "base.args").write_text("--workers 2\n--epochs=3  # three epochs\n--data my videos/s1\n")
    (folder / "top.args").write_text("# starts from base\n@base.args\n--lr=0.001\n")
    (folder / "old.args").write_text("@configs/base.args\n")  # named from the working folder, as before
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, cfg = parse(["fit", f"@{folder / 'top.args'}"])
    assert (cfg.workers, cfg.epochs, cfg.lr, cfg.data) == (2, 3, 0.001, "my videos/s1")
    monkeypatch.chdir(tmp_path)
    assert parse([f"@{folder / 'old.args'}"])[1] == replace(cfg, lr=TrainConfig().lr)
    # the shipped stages name the stage before them: read alike from the repository and from elsewhere
    stage17 = build_parser().parse_args([f"@{REPO / SHIPPED_STAGES[-1]}"])
    monkeypatch.chdir(REPO)
    assert build_parser().parse_args([f"@{SHIPPED_STAGES[-1]}"]) == stage17


def test_nested_flags_and_the_model_follows_the_crop():
    _, cfg = parse(
        [
            "--crop-height=64",
            "--no-crop-grayscale",
            "--model-hidden=32",
            "--model-channels=8,16,24",
            "--augment-mirror=0",
            "--samples-max-frames=120",
            "--split=speaker",
            "--val-speakers=s2,s3",
        ]
    )
    assert cfg.crop == CropSpec(height=64, grayscale=False)
    assert cfg.model == ModelConfig(height=64, in_channels=3, hidden=32, channels=(8, 16, 24))
    assert cfg.augment.mirror == 0 and cfg.samples.max_frames == 120 and cfg.val_speakers == ("s2", "s3")


def test_config_args_round_trip():
    base = TrainConfig()
    cfg = replace(
        base,
        epochs=7,
        amp=False,
        val_speakers=("s2",),
        split="speaker",
        crop=replace(base.crop, width=64, span=1.3),
        model=replace(base.model, width=64, layers=1),
        augment=replace(base.augment, time_mask=0),
    )
    args = config_args(cfg)
    assert (
        "--no-amp" in args
        and "--crop-width=64" in args
        and not any(a.startswith("--model-width") for a in args)
    )
    assert parse(args)[1] == cfg
    assert config_args(TrainConfig(epochs=36)) == ["--epochs=36"]


def test_help_documents_every_field_from_its_comment(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for part in (
        "--crop-height",
        "crop height in pixels",
        "--model-hidden",
        "GRU hidden size",
        "--val-speakers",
        "--no-resume",
        "--samples-speed",
        "{all,prepare,fit,resume,evaluate,export,nose-range}",
        "live window in frames, for the metadata (default: 75)",  # ExportOptions' default
    ):
        assert part in text, part
    # a comment that goes on in lines of its own is all there
    words = " ".join(text.split())
    assert "held still at their mean, so the model must read the motion from the pixels too" in words


def test_a_fields_help_is_its_comment_with_the_lines_that_go_on_from_it():
    from dataclasses import dataclass

    from training.cli import _comments

    @dataclass
    class Options:
        first: int = 1  # the first field,
        # said over two lines

        # a comment of its own, about what follows
        second: int = 2  # the second field
        third: int = 3

    assert _comments(Options) == {
        "first": "the first field, said over two lines",
        "second": "the second field",
    }


def test_bad_values_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--split=speaker"])
    assert "needs val_speakers" in capsys.readouterr().err
    # held out without a split by speaker, they would be trained on: refused before data is read
    with pytest.raises(SystemExit):
        main(["fit", "--val-speakers=s2", f"--data={tmp_path}", f"--out={tmp_path / 'run'}"])
    assert "error: val_speakers needs split 'speaker'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flag",
    ["--lr=nan", "--augment-scale=inf", "--word-score=-inf", "--samples-speed=NaN", "--crop-span=1e999"],
)
def test_a_float_flag_that_is_no_finite_number_is_a_usage_error(tmp_path, capsys, flag):
    # a NaN passes every range check (nan <= 0 is False) and a run would train on NaN losses
    with pytest.raises(SystemExit) as stopped:
        main(["prepare", flag, f"--data={tmp_path / 'none'}", f"--out={tmp_path / 'run'}"])
    assert stopped.value.code == 2 and not (tmp_path / "run").exists()
    name, value = flag.split("=")
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"lipreader-train: error: argument {name}: must be a finite number, not {value!r}"
    )


def test_a_config_with_a_number_that_is_not_finite_is_refused():
    from training.config import _verify_config

    cfg = TrainConfig()
    with pytest.raises(ValueError, match="^augment_scale must be a finite number, not inf$"):
        _verify_config(replace(cfg, augment=replace(cfg.augment, scale=float("inf"))))
    with pytest.raises(ValueError, match="^lr must be a finite number, not nan$"):
        _verify_config(config_from_dict({**cfg.to_dict(), "lr": float("nan")}))  # e.g. a checkpoint's


def test_missing_data_is_one_line_and_status_1(tmp_path, capsys):
    status = main(["prepare", f"--data={tmp_path / 'nowhere'}", f"--out={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and err[-1].startswith("lipreader-train: error: cannot read data ")
    assert err[-1].endswith("nowhere: no such file or folder")


def test_data_without_two_usable_clips_is_one_line_saying_why(tmp_path, capsys):
    manifest = tmp_path / "takes.csv"
    manifest.write_text("video,transcript\ngone.mp4,bin blue at f two now\n")
    assert main([f"--data={manifest}", f"--out={tmp_path / 'run'}", f"--cache={tmp_path / 'cache'}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lipreader-train: error: 0 usable clips in {manifest}, 2 needed at least (one to train on, one "
        f"to validate on): 1 skipped (manifest {manifest} line 2: video {tmp_path / 'gone.mp4'} does not "
        "exist)"
    )


def test_config_from_takes_a_runs_recipe_but_not_where_it_read_wrote_or_started(tiny_run, tmp_path, capsys):
    trained = load_checkpoint(tiny_run / "last.pt")[2]
    recipe = replace(trained, init_from="runs/a/best.pt", teachers=("t.pt",), distill_weight=0.5, max_steps=3)
    ck = torch.load(tiny_run / "last.pt", weights_only=False)
    torch.save({**ck, "config": recipe.to_dict()}, tmp_path / "recipe.pt")
    argv = [f"--config-from={tmp_path / 'recipe.pt'}", "--data=takes.csv", "--out=runs/me", "--epochs=5"]
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(args, _recipe_config(args))
    assert cfg == replace(
        trained,
        data="takes.csv",
        out="runs/me",
        cache=TrainConfig().cache,
        epochs=5,
        init_from="",
        teachers=(),
        distill_weight=0.0,
        max_steps=0,
    )
    assert cfg.model.hidden == 16 and trained.model != TrainConfig().model  # the tiny recipe's network
    # a run resuming from its own last.pt takes that one's config instead
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = parser.parse_args(["fit", f"--out={run}", f"--config-from={tmp_path / 'recipe.pt'}"])
    assert (_resumed_config(args) or _recipe_config(args)).data == trained.data
    assert main([f"--config-from={tmp_path / 'none.pt'}", f"--out={tmp_path / 'out'}"]) == 1
    assert capsys.readouterr().err.startswith(
        f"lipreader-train: error: cannot read the config of checkpoint {tmp_path / 'none.pt'}: "
    )


def test_progress_lines_only_when_asked_for(capsys, monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    progress.report("fit", 1, 2)
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    progress.report("fit", 1, 2)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    progress.report("fit", 1, 2, epoch=1, epochs=1)
    assert (
        capsys.readouterr().out
        == 'lipreader-progress {"stage": "fit", "done": 1, "total": 2, "epoch": 1, "epochs": 1}\n'
    )


def test_a_run_prints_a_progress_line_per_clip_step_and_export_when_asked(
    mini_grid, grid_dir, tmp_path, capsys, monkeypatch
):
    data = make_grid_layout(tmp_path / "s1", grid_dir, (*MINI_CLIPS, "bgaa6n"))  # one clip more: cut here
    shutil.copytree(mini_grid["cache"], tmp_path / "cache")
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    common = [f"--data={data}", f"--cache={tmp_path / 'cache'}", f"--out={tmp_path / 'run'}", *TINY]
    assert main([*common, "--epochs=2", f"--models-dir={tmp_path / 'models'}"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [
        json.loads(line.removeprefix(progress.PREFIX)) for line in out if line.startswith(progress.PREFIX)
    ]
    stages = [(line["stage"], line["done"], line["total"]) for line in lines]
    # 5 clips: 1 validates, 4 train in 2 steps of 2 an epoch
    assert stages == [
        ("prepare", 0, 1),
        ("prepare", 1, 1),
        *[("fit", step, 4) for step in range(5)],
        ("export", 0, 1),
        ("export", 1, 1),
    ]
    assert [line.get("epoch") for line in lines[2:7]] == [1, 1, 1, 2, 2]
    assert lines[-1]["model"] == str(tmp_path / "models" / "run.onnx")
    assert any(line.startswith("best epoch") for line in out)  # the output for people is still there


def test_resume_needs_a_checkpoint(tmp_path, capsys):
    status = main(["resume", f"--out={tmp_path / 'run'}"])
    assert status == 1 and "nothing to resume" in capsys.readouterr().err


def test_a_run_folder_that_cannot_be_made_is_one_line_and_status_1(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file of that name")
    for out, why in ((taken, "File exists"), (taken / "run", "Not a directory")):
        assert main(["prepare", f"--data={tmp_path}", f"--out={out}"]) == 1
        err = capsys.readouterr().err
        assert err == f"lipreader-train: error: cannot create run folder {out}: {why}\n"
    # evaluate and export read a run: a missing one is said, not made with a log in it
    for stage in ("evaluate", "export"):
        assert main([stage, f"--out={tmp_path / 'none'}", f"--models-dir={tmp_path / 'models'}"]) == 1
        assert "cannot read checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "none").exists() and not (tmp_path / "models").exists()


def test_resume_goes_on_with_the_runs_own_config_and_refuses_other_validation_clips(
    mini_grid, tiny_run, tmp_path, capsys, caplog
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    held = json.loads((run / "split.json").read_text())
    # its data or split changed, best.pt would compare WERs over other clips: refused, run untouched
    others = [s for s in MINI_CLIPS if f"s1_{s}" not in held["val"]]
    other = make_grid_layout(tmp_path / "other" / "s1", mini_grid["data"], others)
    assert main(["resume", f"--out={run}", f"--data={other}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lipreader-train: error: cannot resume from {run / 'last.pt'}: the clips of {other} changed "
        "since the run started, so it would validate on other clips than its best.pt was chosen on; "
        "use --no-resume or another --out"
    )
    clips = [Clip(name, Path(f"{name}.mp4")) for name in held["train"] + held["val"]]
    seed = next(s for s in range(100) if split_clips(clips, 0.25, s)[1][0].clip_id != held["val"][0])
    assert main(["fit", f"--out={run}", f"--seed={seed}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lipreader-train: error: cannot resume from {run / 'last.pt'}: the split (--seed={seed}) "
        "changed since the run started, so it would validate on other clips than its best.pt was "
        "chosen on; use --no-resume or another --out"
    )
    assert json.loads((run / "split.json").read_text()) == held
    # the tiny model and its 2 epochs come from the checkpoint, a flag given changes them; the same
    # clips elsewhere are the same data (a warning); a smoke test's step limit is not carried over
    moved = tmp_path / "moved" / "s1"  # the same speaker's folder: the same clip ids
    shutil.copytree(mini_grid["data"], moved)
    trained = load_checkpoint(tiny_run / "last.pt")[2]
    limited = replace(trained, max_steps=1)
    ck = torch.load(run / "last.pt", weights_only=False)
    torch.save({**ck, "config": limited.to_dict()}, run / "last.pt")
    with caplog.at_level(logging.WARNING, logger="lipreader"):
        assert main(["resume", f"--out={run}", "--epochs=3", f"--data={moved}"]) == 0
    assert f"trained on --data {mini_grid['data']}, on {moved}" in caplog.text
    resumed = load_checkpoint(run / "last.pt")
    assert resumed[1]["state"]["epoch"] == 3 and resumed[2].model.hidden == 16
    assert resumed[2] == replace(trained, out=str(run), epochs=3, data=str(moved))


def test_a_checkpoint_without_its_validation_clips_is_checked_against_its_runs_split(
    mini_grid, tiny_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ck = torch.load(run / "last.pt", weights_only=False)
    del ck["state"]["val_clips"]  # written before they were kept
    torch.save(ck, run / "last.pt")
    held = json.loads((run / "split.json").read_text())
    others = [s for s in MINI_CLIPS if f"s1_{s}" not in held["val"]]
    other = make_grid_layout(tmp_path / "other" / "s1", mini_grid["data"], others)
    assert main(["resume", f"--out={run}", f"--data={other}"]) == 1
    assert f"the clips of {other} changed since the run started" in capsys.readouterr().err


def test_one_command_from_videos_to_an_evaluated_model(mini_grid, tmp_path, capsys):
    out, models = tmp_path / "runs" / "mini", tmp_path / "models"
    common = [f"--data={mini_grid['data']}", f"--cache={mini_grid['cache']}", f"--out={out}", *TINY]
    assert main([*common, "--epochs=2", f"--models-dir={models}"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {models / 'mini.onnx'}" in printed and "grammar" in printed and "greedy" in printed
    assert (models / "mini.md").is_file() and (out / "train.log").is_file()
    assert read_contract(models / "mini.onnx").metrics["epochs"] == 2
    assert "epoch 2 loss" in (out / "train.log").read_text()
    # and ends with the nose range of its training faces, in the model and the checkpoint beside it
    crop = read_contract(models / "mini.onnx").crop
    assert 0.5 < crop.nose_low < crop.nose_high < 0.7 and "nose range" in printed
    _, _, resumed = load_checkpoint(models / "mini.resume.pt")
    assert resumed.crop == crop

    assert main(["evaluate", *common]) == 0
    assert "1 validation clips" in capsys.readouterr().out
    assert main(["resume", *common, "--epochs=3"]) == 0  # continues the run for one more epoch
    assert "best epoch" in capsys.readouterr().out
    assert read_contract(models / "mini.onnx").metrics["epochs"] == 2  # export is a separate stage
    assert main(["export", *common, f"--models-dir={models}", "--name=again"]) == 0
    assert read_contract(models / "again.onnx").metrics["epochs"] == 3

    # an existing model (the shipped one, for the stages' configs) is replaced only when asked:
    # else it is kept and the export goes to the run's folder
    capsys.readouterr()
    assert main(["export", *common, f"--models-dir={models}"]) == 0
    assert f"wrote {out / 'mini.onnx'}" in capsys.readouterr().out
    assert f"{models / 'mini.onnx'} exists and is kept" in (out / "train.log").read_text()
    assert read_contract(models / "mini.onnx").metrics["epochs"] == 2
    assert read_contract(out / "mini.onnx").metrics["epochs"] == 3
    assert main(["export", *common, f"--models-dir={models}", "--overwrite"]) == 0
    assert read_contract(models / "mini.onnx").metrics["epochs"] == 3
