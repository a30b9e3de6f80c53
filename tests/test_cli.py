"""The `lipreader` command: captioning runs in a subprocess (it redirects the process's stderr)."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from lipreader_app import batch_commands, cli
from tests.videos import noise_frames, read_frames, two_speakers, write_video


def lipreader(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lipreader_app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def clips(grid_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for name in ("bbaf2n", "bbaf3s"):
        shutil.copy(grid_dir / "video" / f"{name}.mp4", folder / f"{name}.mp4")
    return folder


@pytest.fixture(scope="module")
def bad_files(grid_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    (folder / "notes.txt").write_text("not a video\n")
    data = (grid_dir / "video" / "bbaf2n.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    write_video(folder / "noface.avi", noise_frames(15), 25)
    return folder


def test_bad_files_one_line_each_and_the_good_one_is_captioned(tiny_model, clips, bad_files, landmarker):
    bad = [bad_files / n for n in ("empty.mp4", "garbage.mp4", "notes.txt", "truncated.mp4", "noface.avi")]
    missing = bad_files / "missing.mp4"
    good = clips / "bbaf2n.mp4"
    run = lipreader("caption", *map(str, [*bad, missing, good]), "--model", str(tiny_model))
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 6, run.stderr
    assert all(line.startswith("lipreader: error: ") for line in lines)
    for path in [*bad, missing]:
        assert sum(f"{path}:" in line for line in lines) == 1, (path, lines)
    assert "Traceback" not in run.stderr
    (result,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert result["video"] == str(good)
    assert result["provider"] == "CPUExecutionProvider" and result["seconds"] > 0
    assert result["text"] == " ".join(w["word"] for w in result["words"])
    assert all(0 <= w["start"] < w["end"] <= 3.0 for w in result["words"])


def test_face_reads_the_face_at_that_pixel(real_model, grid_dir, clips, tmp_path, landmarker):
    frames, small = two_speakers(grid_dir, "bbaf2n", "praxzp")
    video = str(write_video(tmp_path / "two.avi", frames, 25.0))
    common = ("--model", str(real_model), "--format", "json")
    largest = lipreader("caption", video, *common)
    assert largest.returncode == 0, largest.stderr
    assert word_errors(json.loads(largest.stdout)["text"], "bin blue at f two now") <= 1, largest.stdout
    (notice,) = largest.stderr.strip().splitlines()  # one line says another face was there
    assert notice.startswith(f"lipreader: warning: video {video}: up to 2 faces in view (first at 0.0 s, ")
    assert notice.endswith(" s in all): read the largest; --face X,Y (or a click in the app) reads another")
    assert json.loads(largest.stdout)["warnings"] == [notice.removeprefix("lipreader: warning: ")]
    # the small face; then a clip whose only face is not at that pixel: one line, the others go on
    one_face = str(clips / "bbaf3s.mp4")
    picked = lipreader("caption", video, one_face, *common, "--face", "{:.0f},{:.0f}".format(*small))
    assert picked.returncode == 1
    at = f"({small[0]:.0f}, {small[1]:.0f})"  # right of the GRID clip's 360 columns
    assert picked.stderr.strip() == (
        f"lipreader: error: cannot caption video {one_face}: no face at {at}, outside the 360x288 frame"
    )
    (result,) = [json.loads(line) for line in picked.stdout.splitlines()]
    assert result["video"] == video
    assert word_errors(result["text"], "place red at x zero please") <= 1, result
    bad = lipreader("caption", video, "--face", "here")
    assert bad.returncode == 2 and "expected X,Y in pixels" in bad.stderr


def word_errors(hypothesis: str, reference: str) -> int:
    """Words of `reference` not at their place in `hypothesis` (both of GRID's six words)."""
    hyp, ref = hypothesis.split(), reference.split()
    return sum(h != r for h, r in zip(hyp, ref, strict=False)) + abs(len(hyp) - len(ref))


def test_folder_with_two_workers(tiny_model, clips, landmarker):
    run = lipreader("caption", str(clips), "--model", str(tiny_model), "--workers", "2", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    videos = [json.loads(line)["video"] for line in run.stdout.splitlines()]
    assert videos == [str(clips / "bbaf2n.mp4"), str(clips / "bbaf3s.mp4")]
    # a video named twice, or also in a folder given, is read once under its first name
    again = str(clips / "bbaf3s.mp4")
    run = lipreader("caption", again, str(clips), again, "--model", str(tiny_model), "--format", "json")
    assert run.returncode == 0, run.stderr
    videos = [json.loads(line)["video"] for line in run.stdout.splitlines()]
    assert videos == [again, str(clips / "bbaf2n.mp4")]


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def ffmpeg_copy(clip: Path, target: Path, seconds: float = 1.0) -> Path:
    """The first `seconds` of `clip` as H.264 in the container `target`'s suffix names."""
    command = ["ffmpeg", "-loglevel", "error", "-i", str(clip), "-t", str(seconds), "-an", "-c:v", "libx264"]
    subprocess.run([*command, str(target)], check=True, capture_output=True, timeout=60)
    return target


@needs_ffmpeg
def test_a_folder_s_videos_in_other_containers_are_captioned(tiny_model, grid_dir, tmp_path, landmarker):
    clip = grid_dir / "video" / "bbaf2n.mp4"
    only = tmp_path / "onlym4v"
    only.mkdir()
    ffmpeg_copy(clip, only / "d.m4v")
    run = lipreader("caption", str(only), "--model", str(tiny_model), "--format", "json")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert [json.loads(line)["video"] for line in run.stdout.splitlines()] == [str(only / "d.m4v")]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    names = ["a.mp4", "b.ts", "c.MTS", "d.3gp", "e.mov"]
    for name in names:
        ffmpeg_copy(clip, mixed / name)
    (mixed / "notes.txt").write_text("not a video\n")  # passed over, unsaid
    (mixed / "web").mkdir()  # TypeScript sources (and Qt Linguist's .ts): passed over, by their bytes
    (mixed / "web" / "app.ts").write_text("import { x } from './x';\n" * 20)
    (mixed / "web" / "config.mts").write_text("Gexport default {};\n" * 20)  # "G": the sync byte's value
    run = lipreader("caption", str(mixed), "--model", str(tiny_model), "--format", "json")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert [json.loads(line)["video"] for line in run.stdout.splitlines()] == [str(mixed / n) for n in names]


def test_a_broken_link_in_a_folder_is_one_line_not_left_out(tiny_model, grid_dir, tmp_path, landmarker):
    shutil.copy(grid_dir / "video" / "bbaf2n.mp4", tmp_path / "good.mp4")
    (tmp_path / "broken.mp4").symlink_to(tmp_path / "gone.mp4")
    run = lipreader("caption", str(tmp_path), "--model", str(tiny_model), "--format", "json")
    assert run.returncode == 1
    broken = tmp_path / "broken.mp4"
    assert run.stderr.strip() == f"lipreader: error: cannot read video {broken}: no such file"
    assert [json.loads(line)["video"] for line in run.stdout.splitlines()] == [str(tmp_path / "good.mp4")]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_warning_is_printed_once(real_model, clips, grid_dir, tmp_path, landmarker, workers):
    full = write_video(tmp_path / "full.avi", read_frames(grid_dir / "video" / "bbaf2n.mp4"), 25)
    cut = tmp_path / "cut.avi"  # the header still says 75 frames
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    short = write_video(tmp_path / "short.avi", read_frames(grid_dir / "video" / "bbaf2n.mp4", 3), 25)
    run = lipreader(
        "caption",
        str(cut),
        str(short),
        str(clips / "bbaf3s.mp4"),
        "--model",
        str(real_model),
        "--workers",
        workers,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count(f"lipreader: warning: video {cut} ended after") == 1, run.stderr
    unread = f"video {short}: no word read in 0.12 s of video (the video is shorter than a spoken word)"
    assert run.stderr.count(f"lipreader: warning: {unread}\n") == 1, run.stderr
    results = {r["video"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert len(results) == 3 and results[str(short)]["warnings"] == [unread]  # JSON says what stderr said
    (ended,) = results[str(cut)]["warnings"]
    assert ended.startswith(f"video {cut} ended after ")


@pytest.mark.parametrize("output", [[], ["--format", "srt", "--out", "{tmp}"]], ids=["json", "srt"])
def test_closed_stdout_ends_quietly(tiny_model, clips, tmp_path, landmarker, output):
    command = [sys.executable, "-m", "lipreader_app.cli", "caption", str(clips / "bbaf2n.mp4")]
    command += ["--model", str(tiny_model), *(o.format(tmp=tmp_path) for o in output)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        proc.stdout.close()  # as `| head -c 0` does
        stderr = proc.stderr.read()
    assert proc.returncode == cli.EXIT_BROKEN_PIPE and stderr == ""


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "srt", "--out", "{file}"], "is not a folder"),
        (["--out", "{folder}"], "--out is for --format srt/vtt/txt files; json goes to stdout"),
    ],
)
def test_out_usage_errors_show_the_caption_usage(tmp_path, flags, message):
    file, folder = tmp_path / "file", tmp_path / "new"
    file.write_text("")
    flags = [f.format(file=file, folder=folder) for f in flags]
    run = lipreader("caption", "x.mp4", "--model", "/no/such/model.onnx", *flags)
    assert run.returncode == 2
    assert run.stderr.startswith("usage: lipreader caption ")
    assert run.stderr.splitlines()[-1].startswith("lipreader caption: error: ") and message in run.stderr
    assert not folder.exists()


def test_out_that_cannot_be_made_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "sub"
    run = lipreader(
        "caption", "x.mp4", "--model", "/no/such/model.onnx", "--format", "srt", "--out", str(out)
    )
    assert run.returncode == 1
    assert run.stderr == f"lipreader: error: cannot write subtitles to {out}: not a directory\n"


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's /sys, where no file can be made")
def test_a_folder_where_no_subtitle_can_be_written_is_found_before_reading(tiny_model, clips, tmp_path):
    video = str(clips / "bbaf3s.mp4")
    run = lipreader("caption", video, "--model", str(tiny_model), "--format", "srt", "--out", "/sys")
    assert run.returncode == 1 and run.stdout == ""
    why = "(permission denied|read-only file system)"  # /sys as a host or a container mounts it
    assert re.search(f"error: cannot write /sys/bbaf3s.srt: {why}; {re.escape(video)} skipped", run.stderr)


def test_subtitle_files_are_not_overwritten(tiny_model, clips, tmp_path, landmarker):
    video = str(clips / "bbaf3s.mp4")
    common = ("--model", str(tiny_model), "--format", "srt", "--out", str(tmp_path))
    run = lipreader("caption", video, *common)
    assert run.returncode == 0, run.stderr
    srt = tmp_path / "bbaf3s.srt"
    assert run.stdout.strip() == str(srt)
    assert srt.read_text().startswith("1\n00:00:0")
    srt.write_text("mine")
    again = lipreader("caption", video, *common)
    assert again.returncode == 1 and "already exists (use --overwrite)" in again.stderr
    assert srt.read_text() == "mine"
    forced = lipreader("caption", video, *common, "--overwrite")
    assert forced.returncode == 0 and srt.read_text().startswith("1\n00:00:0")


def test_eval_on_a_grid_folder_and_a_manifest(tiny_model, grid_dir, tmp_path, landmarker):
    (tmp_path / "video").mkdir()
    (tmp_path / "align").mkdir()
    shutil.copy(grid_dir / "video" / "bbaf2n.mp4", tmp_path / "video")
    shutil.copy(grid_dir / "align" / "bbaf2n.align", tmp_path / "align")
    run = lipreader("eval", str(tmp_path), "--model", str(tiny_model))
    assert run.returncode == 0, run.stderr
    assert "1 clips evaluated, 0 failed)" in run.stdout
    methods = ("greedy (whole clip)", "grammar (whole clip)", "grammar (utterances)", "grammar (live)")
    for method in (*methods, "grammar (live, revised)"):
        (row,) = [line for line in run.stdout.splitlines() if line.startswith(f"{method} ")]
        cer, wer, wrong, spread = row.removeprefix(method).split()
        errors, words = map(int, wrong.split("/"))
        assert words == 6 and errors == round(float(wer) * 6) and spread == "-", row  # no range of 1 clip
    assert "`lipreader caption` decodes: whole utterances" in run.stdout
    manifest = tmp_path / "set.csv"
    manifest.write_text("video,transcript\nvideo/bbaf2n.mp4,bin blue at f two now\nmissing.mp4,x\n")
    run = lipreader(
        "eval", str(manifest), "--model", str(tiny_model), "--decoder", "greedy", "--no-whole-utterances"
    )
    assert run.returncode == 1
    assert "1 clips evaluated, 1 failed" in run.stdout
    assert "decodes: live windows" in run.stdout and "(utterances)" not in run.stdout
    assert run.stderr.count("lipreader: error:") == 1 and "missing.mp4" in run.stderr
    # a row that cannot be a reference is skipped, counted, and fails the run like a bad video
    rows = ["video,transcript,start", "video/bbaf2n.mp4,bin blue at f two now,", "video/bbaf2n.mp4,bin,abc"]
    manifest.write_text("\n".join(rows) + "\n")
    run = lipreader("eval", str(manifest), "--model", str(tiny_model), "--decoder", "greedy")
    assert run.returncode == 1
    assert "1 clips evaluated, 0 failed, 1 skipped" in run.stdout and "line 3" in run.stderr


def test_eval_over_ten_clips_gives_the_wer_s_resampled_range(tiny_model, grid_dir, tmp_path, landmarker):
    rows = [f"{grid_dir / 'video' / n}.mp4,{t}" for n, t in (("bbaf2n", "bin blue at f two now"),) * 10]
    (tmp_path / "ten.csv").write_text("video,transcript\n" + "\n".join(rows) + "\n")
    run = lipreader("eval", str(tmp_path / "ten.csv"), "--model", str(tiny_model))
    assert run.returncode == 0, run.stderr
    (row,) = [line for line in run.stdout.splitlines() if line.startswith("greedy (whole clip) ")]
    cer, wer, wrong, spread = row.removeprefix("greedy (whole clip)").split()
    low, high = map(float, spread.split("-"))
    assert wrong.endswith("/60") and low <= float(wer) <= high, row


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["caption", "x.mp4", "--workers", "0"], 2, "must be a positive integer"),
        (
            ["caption", "x.mp4", "--workers", "abc"],
            2,
            "argument --workers: must be a positive integer, not 'abc'",
        ),
        (["eval", "x", "--landmark-every", "0"], 2, "argument --landmark-every: must be 1..4"),
        (["eval", "x", "--stable-frames", "-1"], 2, "argument --stable-frames: must be 0..100"),
        (["caption", "x.mp4", "--format", "doc"], 2, "invalid choice"),
        (["caption"], 2, "required"),
        (["caption", "x.mp4", "--model", "/no/such/model.onnx"], 1, "no such file"),
        (["caption", "x.mp4", "--model", str(Path(__file__).parent)], 1, "is a folder, not a model file"),
        (
            ["caption", "x.mp4", "--landmark-every", "5"],
            2,
            "must be 1..4 (optical flow drifts over longer gaps)",
        ),
        (["eval", "x", "--window", "1001"], 2, "argument --window: must be 2..1000, not '1001'"),
        (["eval", "x", "--hop", "1001"], 2, "argument --hop: must be 1..1000"),
        (
            ["eval", "x", "--window", "10", "--hop", "20"],
            2,
            "lipreader eval: error: hop 20 is more than the window of 10 frames",
        ),
        (["eval", "x", "--stable-frames", "101"], 2, "argument --stable-frames: must be 0..100"),
        (["caption", "x.mp4", "--word-score", "nan"], 2, "--word-score: must be a finite number, not 'nan'"),
        (["eval", "x", "--word-score", "inf"], 2, "--word-score: must be a finite number, not 'inf'"),
        (["eval", "x", "--word-score=-inf"], 2, "--word-score: must be a finite number, not '-inf'"),
        (["caption", "x.mp4", "--face", "nan,130"], 2, "argument --face: expected X,Y in pixels"),
        (["gui", "--quit-after", "nan"], 2, "argument --quit-after: must be a positive number of seconds"),
        (["gui", "--quit-after", "-1"], 2, "argument --quit-after: must be a positive number of seconds"),
        (["gui", "--camera", "-1"], 2, "argument --camera: must be 0 or more"),
        (
            ["gui", "--screen", "1,2"],
            2,
            "argument --screen: screen region '1,2' must be a monitor number or X,Y",
        ),
        (
            ["gui", "--screen", "0,0,8,8"],
            2,
            "argument --screen: screen rectangle 8x8 must be 16..8192 pixels",
        ),
        (["gui", "--screen", "--camera", "0"], 2, "argument --camera: not allowed with argument --screen"),
        (["eval", "/no/such/data"], 1, "no such file or folder"),
        (["assets", "fetch", "--from", "/no/such/folder"], 1, "no face_landmarker.task in /no/such/folder"),
    ],
)
def test_user_errors_are_one_line(args, status, message):
    run = lipreader(*args)
    assert run.returncode == status
    assert message in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("lipreader")


def test_decoding_flags_reach_the_stream_options():
    flags = ["eval", "x", "--word-score", "1.5", "--stable-frames", "0", "--no-revise"]
    options = batch_commands._engine_config(cli.build_parser().parse_args(flags)).options
    assert (options.word_score, options.stable_frames, options.revise) == (1.5, 0, False)
    defaults = batch_commands._engine_config(cli.build_parser().parse_args(["eval", "x"])).options
    # the model's, 4 frames, sentences read again
    assert (defaults.word_score, defaults.stable_frames, defaults.revise) == (None, 4, True)


def test_bad_model_file(tmp_path, clips):
    model = tmp_path / "model.onnx"
    model.write_text("nope")
    run = lipreader("caption", str(clips / "bbaf2n.mp4"), "--model", str(model))
    assert run.returncode == 1
    assert run.stderr.startswith(f"lipreader: error: cannot load model {model}: not a valid ONNX model")
    assert len(run.stderr.splitlines()) == 1 and run.stdout == ""


def test_a_unigram_language_model_is_one_line_with_kenlm_s_reason(tiny_model, clips, tmp_path):
    lm = tmp_path / "lm1.arpa"
    lm.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-0.5\t<s>\n-0.5\t</s>\n-0.5\tbin\n\n\\end\\\n")
    video = str(clips / "bbaf2n.mp4")
    run = lipreader("caption", video, "--model", str(tiny_model), "--decoder", "lexicon", "--lm", str(lm))
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (
        f"lipreader: error: cannot read language model {lm}: KenLM needs at least a bigram model "
        "(this ARPA file has only 1-grams)\n"
    )


def test_cuda_in_a_cpu_only_build_says_so_in_one_line(tiny_model, clips):
    # a CPU-only build leaves ONNX Runtime's CUDA provider library out; ONNX Runtime lists CUDA all the same
    cpu_only = "from core import inference; inference.has_cuda_library = lambda: False"
    code = f"import sys; {cpu_only}; from lipreader_app import cli; sys.exit(cli.main(sys.argv[1:]))"
    video = clips / "bbaf2n.mp4"
    args = ["caption", str(video), "--model", str(tiny_model), "--provider", "cuda"]
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (
        f"lipreader: error: cannot use CUDA for {tiny_model}: this is a CPU-only build (no CUDA provider "
        "library); install the GPU build (onnxruntime-gpu), or use the cpu or auto provider\n"
    )


def test_assets_fetch_copies_and_says_where(shared_dir, tmp_path, monkeypatch, capsys):
    from core import assets

    monkeypatch.setattr(assets, "assets_dir", lambda: tmp_path)
    assert cli.main(["assets", "fetch", "--from", str(shared_dir / "assets")]) == 0
    assert str(tmp_path / "face_landmarker.task") in capsys.readouterr().out
    assert (tmp_path / "face_landmarker.task").stat().st_size > 0


@pytest.fixture
def fake_gui(monkeypatch):
    calls = []
    module = types.ModuleType("lipreader_app.app")
    module.run_gui = lambda **kwargs: calls.append(kwargs) or 0
    module.make_application = lambda: None
    monkeypatch.setitem(sys.modules, "lipreader_app.app", module)
    monkeypatch.setattr(cli, "quiet_native_stderr", lambda: sys.stderr)  # not this process's fd 2
    return calls


def test_gui_gets_its_flags(fake_gui):
    argv = ["gui", "--video", "v.mp4", "--model", "m.onnx", "--screenshot", "s.png", "--quit-after", "2"]
    assert cli.main([*argv, "--provider", "cpu"]) == 0
    assert fake_gui == [
        {
            "video": cli.Path("v.mp4"),
            "camera": None,
            "model": cli.Path("m.onnx"),
            "screenshot": cli.Path("s.png"),
            "quit_after": 2.0,
            "provider": "cpu",
            "screen": None,
        }
    ]


@pytest.mark.parametrize(
    ("flags", "region"),
    [
        (["--screen"], cli.LAST_SCREEN),  # no value: the region chosen last (see test_app_app)
        (["--screen", "2"], 2),
        (["--screen", "100,80,640,480"], (100, 80, 640, 480)),
        (["--screen=-1920,0,640,480"], (-1920, 0, 640, 480)),  # a monitor left of the first
    ],
)
def test_gui_reads_the_screen_region_given(fake_gui, flags, region):
    assert cli.main(["gui", *flags]) == 0
    assert fake_gui[0]["screen"] == region and fake_gui[0]["camera"] is None


def test_no_arguments_start_the_gui(fake_gui):
    assert cli.main([]) == 0
    assert fake_gui == [
        dict.fromkeys(("video", "camera", "model", "screenshot", "quit_after", "provider", "screen"))
    ]


def test_gui_without_a_display(fake_gui, monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["gui"]) == 1
    assert "no display" in capsys.readouterr().err and fake_gui == []


def test_selftest_hook(monkeypatch):
    module = types.ModuleType("lipreader_app.selftest")
    seen = []

    def fake_main(video=None, verbose=False):
        seen.append(video)
        return 3

    module.main = fake_main
    monkeypatch.setitem(sys.modules, "lipreader_app.selftest", module)
    assert cli.main(["--selftest"]) == 3
    assert cli.main(["--selftest", "--selftest-video", "face.mp4"]) == 3
    assert seen == [None, Path("face.mp4")]


def test_the_app_keeps_native_libraries_quiet(tiny_model, clips, landmarker, tmp_path):
    """MediaPipe and ONNX Runtime write to the terminal from native code; a scripted run of the app
    leaves the terminal to its own messages (-v keeps the native output)."""
    shot = tmp_path / "shot.png"
    args = (
        "gui",
        "--video",
        str(clips / "bbaf2n.mp4"),
        "--model",
        str(tiny_model),
        "--screenshot",
        str(shot),
    )
    run = lipreader(*args, "--quit-after", "1.5")
    assert run.returncode == 0 and shot.is_file(), run.stderr
    assert run.stderr == ""
    loud = lipreader("-v", *args, "--quit-after", "1.5")
    assert loud.returncode == 0 and loud.stderr != ""


def test_a_display_qt_cannot_use_says_why():
    """Native output is hidden only once Qt has started: its reason for not starting still shows."""
    run = subprocess.run(
        [sys.executable, "-m", "lipreader_app.cli", "gui"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DISPLAY": ":55", "QT_QPA_PLATFORM": "xcb"},  # no X server there
    )
    assert run.returncode != 0 and "xcb" in run.stderr  # "could not connect to display", or the plugin


def test_a_job_s_warnings_are_collected_and_its_other_messages_shown(monkeypatch):
    import io
    import logging

    from lipreader_app import batch

    shown = io.StringIO()
    monkeypatch.setattr(batch.log, "handlers", [logging.StreamHandler(shown)])
    monkeypatch.setattr(batch.log, "level", logging.INFO)

    def job(engine, path):
        batch.log.info("reading %s", path)
        batch.log.warning("%s ended early", path)
        return "text"

    outcome = batch._run(job, None, 0, "a.mp4", verbose=True)
    assert outcome.result == "text" and outcome.warnings == ("a.mp4 ended early",)
    assert shown.getvalue() == "reading a.mp4\n"  # -v's messages as before, the warning once (in the outcome)
    batch.log.warning("after the job")
    assert shown.getvalue().endswith("after the job\n")


def test_eval_reads_a_manifest_as_training_does(tiny_model, grid_dir, tmp_path, landmarker):
    """Only the seconds from start to end are evaluated, references lose their punctuation, and a
    row with no words is skipped with a one-line error."""
    noise = write_video(tmp_path / "noise.avi", noise_frames(50), 25)
    clip = grid_dir / "video" / "bbaf2n.mp4"
    manifest = tmp_path / "set.csv"
    manifest.write_text(
        f'video,transcript,start,end\n{noise},bin,0,1.0\n{clip},"Bin Blue, at F two now!",,\n{clip},,,\n'
    )
    run = lipreader("-v", "eval", str(manifest), "--model", str(tiny_model))
    assert run.returncode == 1
    assert "1 clips evaluated, 1 failed, 1 skipped" in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("lipreader: error: cannot")]
    assert errors == [f"lipreader: error: cannot evaluate video {noise}: no face found in 25 frames"]
    assert f"lipreader: {clip}: 'bin blue at f two now' -> " in run.stderr
    assert f"lipreader: error: manifest {manifest} line 4: {clip}: empty transcript; skipped" in run.stderr


def test_a_file_cut_short_before_any_word_is_an_error(real_model, grid_dir, tmp_path, landmarker):
    """The first 23 of bbaf2n's 75 frames, before it speaks: no empty subtitle file, exit status 1."""
    full = write_video(tmp_path / "full.avi", read_frames(grid_dir / "video" / "bbaf2n.mp4"), 25)
    cut = tmp_path / "cut.avi"  # the header still says 75 frames
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 3 // 10])
    run = lipreader(
        "caption", str(cut), "--model", str(real_model), "--format", "srt", "--out", str(tmp_path)
    )
    assert run.returncode == 1 and run.stdout == ""
    assert re.fullmatch(
        f"lipreader: error: cannot caption video {re.escape(str(cut))}: it ended after 2[0-9] of 75 frames "
        r"\(truncated\?\) and no word was read\n",
        run.stderr,
    )
    assert not (tmp_path / "cut.srt").exists()


def test_no_face_in_one_frame(tiny_model, tmp_path, landmarker):
    video = write_video(tmp_path / "one.avi", noise_frames(1), 25)
    run = lipreader("caption", str(video), "--model", str(tiny_model))
    assert run.returncode == 1
    assert run.stderr == f"lipreader: error: cannot caption video {video}: no face found in 1 frame\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_says_what_could_not_be_written(tiny_model, clips, landmarker):
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "lipreader_app.cli", "caption", str(clips / "bbaf2n.mp4")]
            + ["--model", str(tiny_model)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert run.returncode == 1
    assert run.stderr == "lipreader: error: cannot write to standard output: no space left on device\n"


def test_hop_over_the_model_s_window_is_a_usage_error(tiny_model, clips, landmarker):
    run = lipreader("caption", str(clips / "bbaf2n.mp4"), "--model", str(tiny_model), "--hop", "76")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines()[-1] == (
        "lipreader caption: error: hop 76 is more than the model's window of 75 frames"
    )


def test_a_hop_over_the_model_s_window_is_refused_before_a_progress_bar_shows(
    tiny_model, clips, landmarker, tmp_path, monkeypatch
):
    """The check needs the loaded model; a bar left open would garble the terminal's last line."""
    bars = []

    class Report(batch_commands._Report):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(batch_commands, "_Report", Report)
    manifest = tmp_path / "set.csv"
    manifest.write_text(f"video,transcript\n{clips / 'bbaf2n.mp4'},bin blue at f two now\n")
    for argv in (["caption", str(clips / "bbaf2n.mp4")], ["eval", str(manifest)]):
        args = cli.build_parser().parse_args([*argv, "--model", str(tiny_model), "--hop", "76"])
        with pytest.raises(cli.UsageError, match="^hop 76 is more than the model's window of 75 frames$"):
            args.func(args, io.StringIO())
    assert bars == []


def test_verbose_before_or_after_the_command():
    parse = cli.build_parser().parse_args
    argvs = [["caption", "x"], ["-v", "caption", "x"], ["caption", "x", "-v"], ["eval", "d", "--verbose"]]
    argvs += [["assets", "fetch", "-v"], ["gui", "-v"], ["gui"]]
    assert [parse(argv).verbose for argv in argvs] == [False, True, True, True, True, True, False]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--selftest-video", "face.mp4"], "--selftest-video is for --selftest"),
        (["--selftest", "caption", "x.mp4"], "--selftest runs alone, not with `caption`"),
    ],
)
def test_selftest_flags_out_of_place_are_usage_errors(fake_gui, monkeypatch, capsys, argv, message):
    selftest = types.ModuleType("lipreader_app.selftest")
    selftest.main = lambda video=None, verbose=False: fake_gui.append("selftest") or 0
    monkeypatch.setitem(sys.modules, "lipreader_app.selftest", selftest)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and fake_gui == []
    assert capsys.readouterr().err.splitlines()[-1] == f"lipreader: error: {message}"
