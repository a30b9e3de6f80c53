"""*Model → Adapt to my face…*, its training half: `lipreader-train` on the takes recorded, run as a
child process, turned into a model of the user's own in the app's data folder.

The app never imports `training/` or torch (an import-linter contract): `AdaptTraining` runs
`python -m training.cli` with QProcess, the shipped model's recipe taken from its checkpoint
(`--config-from` and `--init-from` `models/grid-s1.resume.pt`, so no config/ file is needed),
`--word-weight=0` (the takes have no word times), `--ema=0` (the recipe's weight average, 0.995 a
step, would still be 82 % the starting weights after the 40 steps of 30 takes and 20 epochs: on 24
GRID clips it moved a quarter as far as the weights trained), `--decoder=grammar` (else the model would ship a
lexicon of the words read only) and the last epoch exported (`--checkpoint=<run>/last.pt`: best.pt
is chosen by the WER on a tenth of the takes, 2 or 3 of 24-30, which ties from the first epoch on,
as on 24 GRID clips of speaker 1, and keeps the first of a tie: the model after 2 steps), the live
window and hop of the model beside that checkpoint, and
$LIPREADER_PROGRESS set, so that the child prints a progress line per clip cut and step trained
(training/progress.py) besides its tqdm bars and log on stderr, which are read only for the
child's last error line. Where it writes, under QStandardPaths' AppDataLocation:

    models/<name>/<name>.onnx   the model (with its streaming parts and card beside it, 25 MB in all)
    training/runs/<name>/       the run: train.log, split.json, val.csv (its checkpoints go when it ends,
                                failed too)
    training/cache/             the lip crops cut, kept: training again on the same takes cuts none

Cancelling kills the child, then removes that run's two folders: export writes the model to a
temporary file renamed into place only once it is whole, so a model is never half-written, and a
model written just before the kill is removed with its folder.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from core.inference import MODEL_NAME, LipModel, ModelError, default_model_path
from core.recording import MAX_TAKE_FRAMES
from lipreader_app.settings import data_folder

log = logging.getLogger("lipreader")

EPOCHS = 20  # ~30 takes make 2 steps an epoch (batch 16): 40 steps at the recipe's learning rate, ~1 min
TRAIN_MODULE = "training.cli"  # what the child runs: `python -m training.cli`, i.e. lipreader-train
TRAIN_COMMAND = "lipreader-train"  # the same, as a user runs it by hand
TRAIN_EXTRA_MODULES = ("torch", "onnx")  # what the train extra adds to the app's own dependencies
PROGRESS_ENV = "LIPREADER_PROGRESS"  # training.progress.PROGRESS_ENV: set, the child prints progress lines
PROGRESS_PREFIX = "lipreader-progress "  # training.progress.PREFIX: each one starts with it, then JSON
ERROR_PREFIX = "lipreader-train: error: "  # how lipreader-train says why it failed, in one line
PHASES = {"prepare": (0.0, 0.2), "fit": (0.2, 0.95), "export": (0.95, 1.0)}  # each stage's share of
# the whole: on 24 GRID takes and 20 epochs here (2 cores), cutting crops took 10 s, training 41 s
# (2 s an epoch), export 2.5 s; training again on the same takes cuts none
KEPT_STDERR = 64 * 1024  # bytes of the child's stderr kept to find its last line (tqdm redraws a lot)
RESUME_SUFFIX = ".resume.pt"  # a model's checkpoint beside it: <name>.resume.pt next to <name>.onnx
RUN_CHECKPOINTS = ("best.pt", "last.pt")  # removed from an ended run, as <name>.resume.pt beside the
# model is (28 MB; the app adapts from the shipped checkpoint, never from an adapted model's)
_TQDM_BAR = re.compile(r"\|\s*\d+/\d+\s*\[")  # "prepare:  40%|████ | 4/10 [00:02<00:03, ...]"
_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")  # the log's time stamp before a message
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def shipped_checkpoint() -> Path:
    """The shipped model's last checkpoint, beside it: models/grid-s1.resume.pt (a source checkout)."""
    model = default_model_path()
    return model.with_name(model.name.removesuffix(".onnx") + RESUME_SUFFIX)


def missing_train_modules(python: str) -> tuple[str, ...]:
    """The train extra's modules that `python` lacks, when it is this process's own interpreter
    (found without importing them); () for another interpreter, whose run says so itself."""
    if Path(python) != Path(sys.executable):
        return ()
    return tuple(m for m in TRAIN_EXTRA_MODULES if importlib.util.find_spec(m) is None)


def install_command(python: str) -> str:
    """The command installing the train extra for `python`: from this source checkout when the app
    runs from one, else from PyPI."""
    repo = Path(__file__).resolve().parent.parent
    source = ["-e", f"{repo}[train]"] if (repo / "pyproject.toml").is_file() else ["lipreader-desktop[train]"]
    return shlex.join([python, "-m", "pip", "install", *source])


def error_line(stderr: str, exit_code: int) -> str:
    """The one line saying why the child failed: lipreader-train's own error line, else the last line
    it wrote (a traceback's last: the exception), tqdm's bars and the log's time stamps left out."""
    lines = [part.strip() for line in stderr.splitlines() for part in line.split("\r")]
    lines = [line for line in lines if line and not _TQDM_BAR.search(line)]
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line.removeprefix(ERROR_PREFIX)
    if lines:
        return _LOG_TIME.sub("", lines[-1])
    return f"training stopped with exit status {exit_code}"


class AdaptTraining(QObject):
    """Trains a model of the user's own from the shipped one on a manifest of takes, in a child
    process; one run at a time.

    data_dir: where models/ and training/ go (default: the app's data folder, `data_folder()`).
    checkpoint: the checkpoint whose weights and recipe the run starts from (default: the shipped
    model's, `shipped_checkpoint()`); the live window and hop come from the model beside it
    (<stem>.onnx for <stem>.resume.pt), when there is one. epochs: of the run. python: the
    interpreter that runs training (default: this one). extra_args: more `lipreader-train`
    arguments, after the others (tests: `--max-steps=1`).

    Signals: progress(done, total, text): done of total (1.0) across cutting crops, training and
    export, never going back, with what is being done ("Training: epoch 3 of 20"); total 0 while
    the child starts (a busy bar). finished(Path): the model written, to load. errored(str): one
    line saying why it failed (or why it cannot run: the command that installs PyTorch, and the one
    to run by hand). cancelled(): after cancel(), once the child has ended and its files are gone.
    """

    progress = Signal(float, float, str)
    finished = Signal(Path)
    errored = Signal(str)
    cancelled = Signal()

    def __init__(
        self,
        data_dir: Path | None = None,
        checkpoint: Path | None = None,
        epochs: int = EPOCHS,
        python: str | None = None,
        extra_args: Sequence[str] = (),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if epochs < 1:
            raise ValueError(f"epochs must be positive, not {epochs}")
        self.data_dir = Path(data_dir) if data_dir is not None else data_folder()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
        self.epochs = epochs
        self.python = python or sys.executable
        self.extra_args = tuple(extra_args)
        self.name = ""  # the model's name, once a run started
        self._args: list[str] = []  # the run's lipreader-train arguments
        self._process: QProcess | None = None
        self._stdout = b""  # what the child printed after its last whole line
        self._stderr = b""  # the last KEPT_STDERR bytes of its stderr
        self._done = 0.0  # the progress emitted last (it never goes back)
        self._model: Path | None = None  # the model export wrote, from its progress line
        self._cancelling = False

    @property
    def busy(self) -> bool:
        return self._process is not None

    def model_folder(self, name: str) -> Path:
        """Where the model `name` is written: models/<name>/ in the data folder."""
        return self.data_dir / "models" / name

    def run_folder(self, name: str) -> Path:
        """The run folder of the model `name`: training/runs/<name>/ in the data folder."""
        return self.data_dir / "training" / "runs" / name

    def arguments(self, manifest: Path, name: str) -> list[str]:
        """The `lipreader-train` arguments training `name` on `manifest`."""
        checkpoint = self.checkpoint.resolve()
        args = [
            f"--config-from={checkpoint}",
            f"--init-from={checkpoint}",
            f"--data={Path(manifest).resolve()}",
            f"--out={self.run_folder(name)}",
            f"--cache={self.data_dir / 'training' / 'cache'}",
            f"--models-dir={self.model_folder(name)}",
            f"--name={name}",
            f"--epochs={self.epochs}",
            f"--checkpoint={self.run_folder(name) / 'last.pt'}",
            "--word-weight=0",
            "--ema=0",
            "--decoder=grammar",
            "--no-tensorboard",
            f"--samples-max-frames={MAX_TAKE_FRAMES}",  # a take without word times is trained on whole
        ]
        args += [f"--{key}={value}" for key, value in self._live_window().items()]
        return args + list(self.extra_args)

    def start(self, manifest: Path, name: str | None = None) -> bool:
        """Start training a model named `name` (default: adapted-<date>-<time>, made unique) on the
        takes of `manifest` (a CSV or JSONL manifest, or a folder holding manifest.csv). False, with
        errored, when it cannot start: a run going on, no manifest, no checkpoint, no PyTorch."""
        if self._process is not None:
            self.errored.emit("a model is already being trained; cancel it first")
            return False
        manifest = Path(manifest)
        if not manifest.exists():
            self.errored.emit(f"no takes to train on: {manifest} does not exist")
            return False
        if not self.checkpoint.is_file():
            self.errored.emit(
                f"cannot adapt: the checkpoint to start from, {self.checkpoint}, is not there (it comes "
                f"with a source checkout, beside models/{MODEL_NAME})"
            )
            return False
        if name is not None and not _SAFE_NAME.match(name):
            self.errored.emit(f"cannot name a model {name!r}: letters, digits, '-' and '_' only")
            return False
        name = self._free_name(name or time.strftime("adapted-%Y%m%d-%H%M%S"))
        args = self.arguments(manifest, name)
        missing = missing_train_modules(self.python)
        if getattr(sys, "frozen", False) or missing:
            self.errored.emit(self._no_torch_message(args, missing))
            return False
        self.name, self._args, self._model, self._done, self._cancelling = name, args, None, 0.0, False
        self._stdout = self._stderr = b""
        (self.data_dir / "training").mkdir(parents=True, exist_ok=True)
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert(PROGRESS_ENV, "1")
        environment.insert("PYTHONIOENCODING", "utf-8")
        process.setProcessEnvironment(environment)
        process.setWorkingDirectory(str(self.data_dir / "training"))
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.readyReadStandardError.connect(self._on_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_process_error)
        self._process = process
        command = [self.python, "-m", TRAIN_MODULE, *args]
        log.info("adapting the model: %s", shlex.join(command))
        self.progress.emit(0.0, 0.0, "Starting: loading PyTorch and the model")
        process.start(command[0], command[1:])
        return True

    def cancel(self) -> None:
        """Kill the child; cancelled follows once it has ended and its files are removed."""
        if self._process is not None and not self._cancelling:
            self._cancelling = True
            self._process.kill()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the child ends (the app is closing, after cancel()); whether it did."""
        return self._process is None or self._process.waitForFinished(msecs)

    def _free_name(self, name: str) -> str:
        """`name`, or `name-2`, `name-3`... when a model or run of that name is there already."""
        taken = lambda n: self.model_folder(n).exists() or self.run_folder(n).exists()  # noqa: E731
        free, number = name, 1
        while taken(free):
            number += 1
            free = f"{name}-{number}"
        return free

    def _live_window(self) -> dict[str, int]:
        """The live window and hop of the model beside the checkpoint, for the export's metadata
        (the shipped model's 60 frames, not export's default 75); {} when there is none."""
        stem = self.checkpoint.name.removesuffix(RESUME_SUFFIX)
        model = self.checkpoint.with_name(f"{stem}.onnx")
        if stem == self.checkpoint.name or not model.is_file():
            return {}
        try:
            contract = LipModel.load(model, "cpu", threads=1, stream=False).contract
        except ModelError as e:
            log.warning("%s; the adapted model gets export's live window", e)
            return {}
        return {"window": contract.window, "hop": contract.hop}

    def _no_torch_message(self, args: list[str], missing: tuple[str, ...]) -> str:
        by_hand = shlex.join([TRAIN_COMMAND, *args])
        if getattr(sys, "frozen", False):
            return (
                "this build of LipReader cannot train (it has no PyTorch): in LipReader installed from "
                f"source with the train extra (pip install -e '.[train]'), run: {by_hand}"
            )
        return (
            f"adapting needs {' and '.join(missing)} (the train extra), which {self.python} lacks: "
            f"install it with {install_command(self.python)}, then try again or run: {by_hand}"
        )

    def _on_stdout(self) -> None:
        if self._process is None:
            return
        self._stdout += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(PROGRESS_PREFIX):
                self._on_progress_line(text.removeprefix(PROGRESS_PREFIX))

    def _on_stderr(self) -> None:
        if self._process is not None:
            self._stderr = (self._stderr + bytes(self._process.readAllStandardError()))[-KEPT_STDERR:]

    def _on_progress_line(self, text: str) -> None:
        """One progress line's JSON: the stage's share of the whole, as far as it is done."""
        try:
            report = json.loads(text)
            stage, done, total = report["stage"], float(report["done"]), float(report["total"])
        except (ValueError, KeyError, TypeError):
            log.debug("not a progress line: %s", text)
            return
        if stage not in PHASES:
            return
        if stage == "export" and report.get("model"):
            self._model = Path(report["model"])
        start, end = PHASES[stage]
        share = min(1.0, done / total) if total > 0 else 0.0
        self._done = max(self._done, start + (end - start) * share)
        if stage == "prepare":
            text = f"Cutting lip crops: {done:.0f} of {total:.0f} takes"
        elif stage == "fit":
            text = f"Training: epoch {report.get('epoch', '?')} of {report.get('epochs', '?')}"
        else:
            text = "Exporting the model" if done < total else "Model written"
        self.progress.emit(self._done, 1.0, text)

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            why = self._process.errorString()
            self._end()
            self.errored.emit(f"cannot start {self.python}: {why}")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._process is None:
            return
        self._on_stdout()
        self._on_stderr()
        if self._stdout.strip().startswith(PROGRESS_PREFIX.encode()):  # a last line without "\n"
            self._on_progress_line(self._stdout.decode("utf-8", "replace").strip()[len(PROGRESS_PREFIX) :])
        stderr = self._stderr.decode("utf-8", "replace")
        cancelled, name = self._cancelling, self.name
        self._end()
        if cancelled:
            for folder in (self.model_folder(name), self.run_folder(name)):
                shutil.rmtree(folder, ignore_errors=True)
            self.cancelled.emit()
            return
        for checkpoint in RUN_CHECKPOINTS:  # a run ended, well or not, is never resumed: its log stays
            (self.run_folder(name) / checkpoint).unlink(missing_ok=True)
        model = self._model or self.model_folder(name) / f"{name}.onnx"
        model.with_name(model.name.removesuffix(".onnx") + RESUME_SUFFIX).unlink(missing_ok=True)
        if exit_status == QProcess.ExitStatus.NormalExit and exit_code == 0 and model.is_file():
            self.progress.emit(1.0, 1.0, "Model written")
            self.finished.emit(model)
            return
        if exit_status != QProcess.ExitStatus.NormalExit:
            self.errored.emit(f"training stopped: the process crashed ({error_line(stderr, exit_code)})")
            return
        if exit_code == 0:
            self.errored.emit(f"training ended without writing a model ({model} is not there)")
            return
        no_module = _NO_MODULE.search(stderr)
        package = no_module.group(1).split(".")[0] if no_module else ""
        if package in (*TRAIN_EXTRA_MODULES, "training"):  # another python than this one, without them
            self.errored.emit(self._no_torch_message(self._args, (package,)))
            return
        self.errored.emit(error_line(stderr, exit_code))

    def _end(self) -> None:
        """Forget the child (it has ended)."""
        process, self._process, self._cancelling = self._process, None, False
        if process is not None:
            process.deleteLater()
