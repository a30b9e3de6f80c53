"""*Adapt to my face*'s training: AdaptTraining runs lipreader-train as a child process on a manifest
of takes and hands over a model the app loads; cancelling leaves no model; failures are one line."""

from __future__ import annotations

import csv
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.inference import LipModel
from core.recording import MAX_TAKE_FRAMES
from core.transcripts import read_align
from lipreader_app import adapt_training
from lipreader_app.adapt_training import AdaptTraining, error_line
from tests.conftest import MINI_CLIPS, REPO
from training import progress
from training.data import Clip, Word

EXTRA_CLIP = "bgaa6n"  # a fifth GRID clip, not in the mini set's crop cache: the child cuts its crops
RUN_TIMEOUT_MS = 120_000  # a whole run of the tiny model takes about 10 s here


def write_manifest(path: Path, rows: list[tuple[Path, str]]) -> Path:
    """A manifest.csv (video, transcript, speaker) of `rows`, the videos named relative to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "transcript", "speaker"])
        for video, text in rows:
            writer.writerow([Path(video).relative_to(path.parent), text, "s1"])
    return path


@pytest.fixture(scope="module")
def start(tiny_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint to adapt (the tiny run's last, its recipe the tiny model's), as a model ships
    it: tiny.resume.pt beside tiny.onnx (window 75, hop 10). The validation clips of its run are
    dropped: the takes reuse its clip ids."""
    folder = tmp_path_factory.mktemp("start")
    ck = torch.load(tiny_run / "last.pt", weights_only=False)
    ck["state"]["val_clips"] = []
    torch.save(ck, folder / "tiny.resume.pt")
    shutil.copy(tiny_model, folder / "tiny.onnx")
    return folder / "tiny.resume.pt"


@pytest.fixture
def takes(mini_grid: dict[str, Path], grid_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """{"manifest": the takes' manifest.csv (the mini GRID set and one clip more, linked into the
    takes folder), "data": the app's data folder, holding the mini set's crops in its cache}."""
    folder = tmp_path / "takes"
    folder.mkdir()
    rows = []
    for stem in (*MINI_CLIPS, EXTRA_CLIP):
        video = folder / f"{stem}.mp4"
        video.symlink_to(grid_dir / "video" / f"{stem}.mp4")
        rows.append((video, " ".join(w.text for w in read_align(grid_dir / "align" / f"{stem}.align"))))
    data = tmp_path / "data"
    shutil.copytree(mini_grid["cache"], data / "training" / "cache")
    return {"manifest": write_manifest(folder / "manifest.csv", rows), "data": data}


def watch(trainer: AdaptTraining) -> dict[str, list]:
    """What the trainer emits, signal by signal."""
    seen: dict[str, list] = {"progress": [], "finished": [], "errored": [], "cancelled": []}
    trainer.progress.connect(lambda done, total, text: seen["progress"].append((done, total, text)))
    trainer.finished.connect(seen["finished"].append)
    trainer.errored.connect(seen["errored"].append)
    trainer.cancelled.connect(lambda: seen["cancelled"].append(True))
    return seen


def test_adapting_writes_a_model_the_app_loads_while_progress_goes_from_0_to_1(qtbot, start, takes):
    trainer = AdaptTraining(takes["data"], start, epochs=1)
    seen = watch(trainer)
    with qtbot.waitSignal(trainer.finished, timeout=RUN_TIMEOUT_MS):
        assert trainer.start(takes["manifest"], name="me") and trainer.busy
    assert not seen["errored"] and not trainer.busy
    model_path = seen["finished"][0]
    assert model_path == takes["data"] / "models" / "me" / "me.onnx"
    assert not list(model_path.parent.glob("*.pt"))  # its checkpoint goes: the app never adapts from it

    model = LipModel.load(model_path, "cpu")
    assert model.streams  # its streaming parts beside it
    c = model.contract
    assert (c.window, c.hop, c.decoder.kind) == (75, 10, "grammar")  # the window: the model beside start's
    assert (c.training["word_weight"], c.training["ema"], c.training["epochs"]) == (0, 0, 1)
    assert c.training["data"] == str(takes["manifest"]) and c.training["model"]["hidden"] == 16
    frames = 30
    crops = np.full((frames, c.crop.height, c.crop.width), 128, np.uint8)
    log_probs = model(crops, np.zeros((frames, 40, 2), np.float32))
    assert log_probs.shape == (frames, len(c.vocabulary)) and np.isfinite(log_probs).all()

    done = [d for d, total, _ in seen["progress"] if total > 0]
    assert seen["progress"][0][1] == 0  # busy while the child starts
    assert done == sorted(done) and done[0] < 0.2 and done[-1] == 1.0
    texts = [text for *_, text in seen["progress"]]
    assert "Cutting lip crops: 1 of 1 takes" in texts  # the fifth clip; the others were cached
    assert "Training: epoch 1 of 1" in texts and texts[-1] == "Model written"
    run = takes["data"] / "training" / "runs" / "me"
    assert (run / "train.log").is_file() and not list(run.glob("*.pt"))  # the checkpoints went

    # another run of the same name goes beside it, never over it
    assert trainer.start(takes["manifest"], name="me")
    assert trainer.name == "me-2"
    trainer.cancel()
    assert trainer.wait()


def test_the_longest_take_the_dialog_keeps_is_trained_on(tmp_path):
    """Takes have no word times: training leaves out one longer than --samples-max-frames, which
    the run sets to the longest take the dialog keeps."""
    from training.split import drop_long

    args = AdaptTraining(tmp_path).arguments(tmp_path / "manifest.csv", "me")
    (limit,) = [int(a.split("=")[1]) for a in args if a.startswith("--samples-max-frames=")]
    assert limit == MAX_TAKE_FRAMES
    words = tuple(Word(w, np.nan, np.nan) for w in "bin blue".split())
    clip = Clip("me_take0001", tmp_path / "take0001.mp4", words)
    long = SimpleNamespace(clip=clip, data=SimpleNamespace(crops=np.zeros((MAX_TAKE_FRAMES, 2, 2))))
    assert drop_long([long], limit, 25.0)[0] == [long]
    assert drop_long([long], limit - 1, 25.0)[0] == []


def test_cancel_kills_the_run_and_leaves_no_model(qtbot, start, takes):
    trainer = AdaptTraining(takes["data"], start, epochs=50)
    seen = watch(trainer)
    with qtbot.waitSignal(
        trainer.progress, check_params_cb=lambda done, total, text: total > 0, timeout=60_000
    ):
        assert trainer.start(takes["manifest"], name="me")
    with qtbot.waitSignal(trainer.cancelled, timeout=30_000):
        trainer.cancel()
    assert not seen["finished"] and not seen["errored"] and not trainer.busy
    assert not list((takes["data"] / "models").rglob("*.onnx"))
    assert not (takes["data"] / "models" / "me").exists()
    assert not (takes["data"] / "training" / "runs" / "me").exists()


def test_a_run_that_fails_leaves_no_checkpoints_behind(qtbot, tmp_path):
    """A run failing after it saved checkpoints (export, a crash) keeps its log for the reason, not
    its checkpoints (tens of MB each): the app never resumes a run."""
    child = tmp_path / "child"  # stands in for python -m training.cli: a run that fails in export
    child.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case $arg in --out=*) out=${arg#--out=};; esac; done\n'
        'mkdir -p "$out" && touch "$out/best.pt" "$out/last.pt" "$out/train.log"\n'
        'echo "lipreader-train: error: cannot export" >&2; exit 1\n'
    )
    child.chmod(0o755)
    checkpoint = tmp_path / "start.resume.pt"
    checkpoint.write_bytes(b"")
    manifest = write_manifest(tmp_path / "takes" / "manifest.csv", [])
    trainer = AdaptTraining(tmp_path / "data", checkpoint, python=str(child))
    seen = watch(trainer)
    with qtbot.waitSignal(trainer.errored, timeout=30_000):
        assert trainer.start(manifest, name="me")
    assert seen["errored"] == ["cannot export"]
    run = trainer.run_folder("me")
    assert (run / "train.log").is_file() and not list(run.glob("*.pt"))


def test_a_missing_manifest_is_one_line_at_once(qtbot, start, tmp_path):
    trainer = AdaptTraining(tmp_path / "data", start)
    seen = watch(trainer)
    assert not trainer.start(tmp_path / "nowhere" / "manifest.csv")
    assert seen["errored"] == [
        f"no takes to train on: {tmp_path / 'nowhere' / 'manifest.csv'} does not exist"
    ]
    assert not trainer.busy


def test_takes_none_of_which_is_usable_are_one_line_from_the_child(qtbot, start, tmp_path):
    folder = tmp_path / "takes"
    manifest = write_manifest(folder / "manifest.csv", [(folder / "gone.mp4", "bin blue at f two now")])
    trainer = AdaptTraining(tmp_path / "data", start, epochs=1)
    seen = watch(trainer)
    with qtbot.waitSignal(trainer.errored, timeout=60_000):
        assert trainer.start(manifest)
    assert seen["errored"] == [
        f"0 usable clips in {manifest}, 2 needed at least (one to train on, one to validate on): 1 "
        f"skipped (manifest {manifest} line 2: video {folder / 'gone.mp4'} does not exist)"
    ]
    assert not seen["finished"] and not list((tmp_path / "data").rglob("*.onnx"))


def test_without_pytorch_it_says_how_to_install_it_and_what_to_run(qtbot, start, tmp_path, monkeypatch):
    real = adapt_training.importlib.util.find_spec
    monkeypatch.setattr(
        adapt_training.importlib.util, "find_spec", lambda name: None if name == "torch" else real(name)
    )
    trainer = AdaptTraining(tmp_path / "data", start)
    seen = watch(trainer)
    manifest = write_manifest(tmp_path / "takes" / "manifest.csv", [])
    assert not trainer.start(manifest, name="me") and not trainer.busy
    (message,) = seen["errored"]
    assert "\n" not in message
    assert message.startswith(f"adapting needs torch (the train extra), which {sys.executable} lacks: ")
    assert shlex.join([sys.executable, "-m", "pip", "install", "-e", f"{REPO}[train]"]) in message
    assert f"lipreader-train --config-from={start} --init-from={start} --data={manifest} " in message
    assert "--word-weight=0 --ema=0 --decoder=grammar" in message


def test_another_python_without_pytorch_gets_the_same_line(qtbot, start, tmp_path):
    """A python whose run fails on `import torch` (a bare venv seeing this repository, no packages)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert site != sysconfig.get_paths()["purelib"]
    (Path(site) / "lipreader.pth").write_text(f"{REPO}\n")
    manifest = write_manifest(tmp_path / "takes" / "manifest.csv", [])
    trainer = AdaptTraining(tmp_path / "data", start, python=str(python))
    seen = watch(trainer)
    with qtbot.waitSignal(trainer.errored, timeout=30_000):
        assert trainer.start(manifest, name="me")
    (message,) = seen["errored"]
    assert message.startswith(
        f"adapting needs torch (the train extra), which {python} lacks: install it with "
    )
    assert "lipreader-train --config-from=" in message and "\n" not in message


def test_progress_lines_are_those_training_prints(capsys, monkeypatch):
    assert (adapt_training.PROGRESS_ENV, adapt_training.PROGRESS_PREFIX) == (
        progress.PROGRESS_ENV,
        progress.PREFIX,
    )
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    progress.report("fit", 3, 40, epoch=2, epochs=20)
    line = capsys.readouterr().out
    trainer = AdaptTraining(Path("unused"), Path("unused.resume.pt"))
    seen = watch(trainer)
    trainer._on_progress_line(line.strip().removeprefix(adapt_training.PROGRESS_PREFIX))
    trainer._on_progress_line("{not json")  # passed over
    trainer._on_progress_line('{"stage": "prepare", "done": 1, "total": 4}')  # an earlier stage: not back
    trainer._on_progress_line('{"stage": "export", "done": 1, "total": 1, "model": "m/m.onnx"}')
    assert seen["progress"] == [
        (pytest.approx(0.2 + 0.75 * 3 / 40), 1.0, "Training: epoch 2 of 20"),
        (pytest.approx(0.2 + 0.75 * 3 / 40), 1.0, "Cutting lip crops: 1 of 4 takes"),
        (1.0, 1.0, "Model written"),
    ]
    assert trainer._model == Path("m/m.onnx")


def test_the_error_line_is_the_childs_last_not_its_bars_or_traceback():
    bars = "prepare:  40%|████  | 4/10 [00:02<00:03,  1.9clip/s]\rprepare:  50%|█████| 5/10 [00:02<00:02]"
    said = "2026-12-05 08:35:15,205 manifest data x.csv: 0 clips, 0 left out, 1 skipped\n"
    assert error_line(f"{bars}\n{said}lipreader-train: error: no clips\n{bars}", 1) == "no clips"
    traceback = 'Traceback (most recent call last):\n  File "x", line 1\nMemoryError: out of memory\n'
    assert error_line(bars + "\n" + traceback, 1) == "MemoryError: out of memory"
    assert error_line(said, 1) == "manifest data x.csv: 0 clips, 0 left out, 1 skipped"
    assert error_line(bars, 9) == "training stopped with exit status 9"
