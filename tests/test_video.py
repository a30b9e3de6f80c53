import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import pytest

from core.types import Frame, Idle
from core.video import CameraError, CameraSource, VideoError, VideoFileSource, _frame_time, resample
from tests.videos import noise_frames, read_frames, write_video

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", *args], check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("src_fps", [30.0, 29.97, 25.0, 24.0, 50.0, 15.0])
def test_resample_keeps_duration(src_fps):
    image = np.zeros((20, 20, 3), np.uint8)
    n = int(round(src_fps * 4))
    frames = [Frame(i, i / src_fps, image) for i in range(n)]
    out = list(resample(frames, 25.0))
    assert abs(len(out) / 25.0 - n / src_fps) <= 1 / 25.0 + 1e-9
    assert [f.index for f in out] == list(range(len(out)))
    assert np.allclose([f.timestamp for f in out], np.arange(len(out)) / 25.0)


def test_resample_picks_nearest_frame():
    frames = [Frame(i, i / 50.0, np.full((4, 4, 3), i, np.uint8)) for i in range(100)]
    out = list(resample(frames, 25.0))
    assert [int(f.image[0, 0, 0]) for f in out[:5]] == [0, 2, 4, 6, 8]


def test_resample_jittery_webcam_timestamps():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(1 / 40, 1 / 25, 300))  # between 25 and 40 fps, irregular
    frames = [Frame(i, t, np.zeros((4, 4, 3), np.uint8)) for i, t in enumerate(times)]
    out = list(resample(frames, 25.0))
    assert abs(len(out) / 25.0 - (times[-1] - times[0])) < 0.1


def test_resample_fills_a_short_gap():
    times = [i / 25.0 for i in range(25)] + [2.0 + i / 25.0 for i in range(25)]  # 1 s without frames
    frames = [Frame(i, t, np.zeros((4, 4, 3), np.uint8)) for i, t in enumerate(times)]
    out = list(resample(frames, 25.0))
    assert len(out) == 75  # the second lost is filled, the timeline kept


def test_30fps_file_resampled_to_25(tmp_path):
    path = write_video(tmp_path / "clip30.mp4", noise_frames(90), 30.0)
    source = VideoFileSource(path)
    assert source.fps == pytest.approx(30.0)
    out = list(resample(source, 25.0))
    assert len(out) == 75  # 3.0 s either way


def test_realtime_source_is_paced(tmp_path):
    import time

    path = write_video(tmp_path / "clip.avi", noise_frames(10), 25.0)
    start = time.monotonic()
    frames = list(VideoFileSource(path, realtime=True))
    assert len(frames) == 10
    assert time.monotonic() - start >= 9 / 25.0 - 0.02


def test_a_paused_realtime_source_yields_idle_until_resumed(tmp_path):
    path = write_video(tmp_path / "clip.avi", noise_frames(10), 25.0)
    source = VideoFileSource(path, realtime=True)
    seen = []
    for item in source:
        seen.append(item)
        if len(seen) == 2:
            source.pause()
        if sum(isinstance(i, Idle) for i in seen) == 3:
            source.resume()
    kinds = ["idle" if isinstance(i, Idle) else "frame" for i in seen]
    assert kinds == ["frame"] * 2 + ["idle"] * 3 + ["frame"] * 8
    assert [f.index for f in seen if isinstance(f, Frame)] == list(range(10))
    resampled = list(resample([*seen[:3], *seen[5:]], 25.0))  # IDLEs pass through resampling
    assert [isinstance(f, Idle) for f in resampled] == [False, False, True] + [False] * 8


def test_seek(tmp_path):
    path = write_video(tmp_path / "clip.avi", noise_frames(50), 25.0)
    source = VideoFileSource(path)
    seen = []
    for frame in source:
        seen.append(frame.index)
        if frame.index == 2:
            source.seek(1.2)
    assert seen[:4] == [0, 1, 2, 30]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.mp4", b"", "empty"),
        ("notes.txt", b"these are not the frames you are looking for\n" * 20, "not a video"),
        ("garbage.mp4", bytes(range(256)) * 64, "not a video"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message) as info:
        list(VideoFileSource(path))
    assert "\n" not in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        VideoFileSource(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="folder"):
        VideoFileSource(tmp_path)


def test_truncated_file_never_tracebacks(grid_dir, tmp_path):
    data = (grid_dir / "video" / "bbaf2n.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    try:
        frames = list(VideoFileSource(path))
    except VideoError as e:
        assert "cannot read video" in str(e)
    else:
        assert 0 < len(frames) < 75


def test_cut_before_the_index_is_damaged_or_incomplete(grid_dir, tmp_path):
    path = tmp_path / "cut.mp4"  # the moov atom (the index) is at the end of this mp4
    path.write_bytes((grid_dir / "video" / "bbaf2n.mp4").read_bytes()[:20000])
    with pytest.raises(VideoError, match="damaged or incomplete file, or not a video$"):
        VideoFileSource(path)


def test_absurd_resolution(tmp_path):
    path = write_video(tmp_path / "tiny.avi", [np.zeros((8, 8, 3), np.uint8)] * 5, 25.0)
    with pytest.raises(VideoError, match="out of range"):
        list(VideoFileSource(path))


def test_grid_clip_decodes_75_frames(grid_dir):
    source = VideoFileSource(grid_dir / "video" / "bbaf2n.mp4")
    frames = list(source)
    assert len(frames) == 75 and source.fps == 25.0
    assert frames[0].image.shape == (288, 360, 3)
    assert len(read_frames(grid_dir / "video" / "bbaf2n.mp4", 3)) == 3


def test_missing_camera_is_a_clear_error():
    with pytest.raises(CameraError, match="cannot open camera 57"):
        next(iter(CameraSource(57)))


@pytest.mark.parametrize("name", ["face.png", "face.jpg", "face.mp4"])
def test_a_still_image_is_not_a_video(tmp_path, name):
    path = tmp_path / name
    ok, data = cv2.imencode(".jpg" if name.endswith(".jpg") else ".png", noise_frames(1)[0])
    path.write_bytes(data.tobytes())
    with pytest.raises(VideoError, match=f"cannot read video {path}: it is an image, not a video$"):
        VideoFileSource(path)


@needs_ffmpeg
def test_a_raw_mjpeg_stream_is_a_video_though_it_starts_as_an_image(tmp_path):
    path = tmp_path / "clip.mjpeg"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=2:r=25", "-c:v", "mjpeg", "-f", "mjpeg", str(path))
    assert path.read_bytes().startswith(b"\xff\xd8\xff")  # a JPEG image's first bytes
    source = VideoFileSource(path)
    assert len(list(source)) == 50 and source.ended_early is None


@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names are always Unicode")
def test_a_file_name_that_is_not_utf8_is_read(tmp_path, monkeypatch):
    """OpenCV crashed (SIGSEGV) on a name whose bytes are not UTF-8, e.g. Latin-1 "bébé.avi"."""
    made = write_video(tmp_path / "plain.avi", noise_frames(5), 25.0)
    latin1 = tmp_path / os.fsdecode(b"b\xe9b\xe9.avi")
    made.rename(latin1)
    links = tmp_path / "tmp"  # where the link it is opened through goes
    links.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(links))
    made_links = []
    symlink = os.symlink
    monkeypatch.setattr(os, "symlink", lambda *args: made_links.append(args) or symlink(*args))
    assert len(list(VideoFileSource(latin1))) == 5
    assert made_links and list(links.iterdir()) == []  # opened through a link, none left behind


@needs_ffmpeg
def test_a_file_with_sound_alone_has_no_video_track(tmp_path):
    path = tmp_path / "sound.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(path))
    with pytest.raises(
        VideoError, match=f"cannot read video {path}: it has no video track \\(audio only\\)$"
    ):
        VideoFileSource(path)


@needs_ffmpeg
def test_frames_of_non_square_pixels_are_shown_as_a_player_does(tmp_path):
    """A 480×288 video of 3:4 pixels (anamorphic) shows 360×288: the face is not stretched."""
    video = tmp_path / "anamorphic.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=d=0.4:s=480x288:r=25",
        "-vf",
        "setsar=3/4",
        "-c:v",
        "libx264",
        str(video),
    )
    source = VideoFileSource(video)
    assert source.display_size == (360, 288)
    assert {f.image.shape for f in source} == {(288, 360, 3)}
    turned = tmp_path / "turned.mp4"  # stored sideways, as a phone does: shown upright, 288×360
    ffmpeg("-i", str(video), "-c", "copy", "-metadata:s:v", "rotate=90", str(turned))
    assert {f.image.shape for f in VideoFileSource(turned)} == {(360, 288, 3)}
    square = write_video(tmp_path / "square.avi", noise_frames(3), 25.0)
    assert VideoFileSource(square).display_size is None


@needs_ffmpeg
def test_damaged_bytes_in_mid_file_are_passed_over_with_a_warning(tmp_path, caplog):
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=8:s=320x240:r=25", "-c:v", "libx264", "-g", "25", str(whole))
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    source = VideoFileSource(damaged)
    frames = list(source)
    assert 180 < len(frames) < 200 and frames[-1].timestamp > 7.9  # read to its end, not to the damage
    assert source.ended_early is None
    assert len(caplog.messages) == 1 and "could not be decoded (damaged file?): passed over" in caplog.text


def test_a_file_cut_short_says_how_far_it_got(tmp_path, caplog):
    full = write_video(tmp_path / "full.avi", noise_frames(50), 25.0)
    cut = tmp_path / "cut.avi"  # its header still says 50 frames
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    source = VideoFileSource(cut)
    read = len(list(source))
    assert 0 < read < 45 and source.ended_early == f"ended after {read} of 50 frames (truncated?)"
    assert caplog.messages == [f"video {cut} {source.ended_early}"]
    caplog.clear()
    quiet = VideoFileSource(cut, warn_truncated=False)  # the caller reports it
    assert len(list(quiet)) == read and quiet.ended_early == source.ended_early and caplog.messages == []
    whole = VideoFileSource(full)
    assert len(list(whole)) == 50 and whole.ended_early is None
    past = VideoFileSource(cut, warn_truncated=False)
    past.seek(1.8)  # into the part cut off: not "ended after 45 of 50 frames"
    assert list(past) == []
    declares = "of the 2.0 s it declares (truncated?)"
    assert past.ended_early == f"has no frame at 1.8 s, where it was sought, {declares}"


@needs_ffmpeg
@pytest.mark.parametrize("name", ["vfr.webm", "vfr.mkv"])
def test_a_whole_variable_frame_rate_file_is_not_taken_for_one_cut_short(tmp_path, caplog, name):
    """Seconds 0-1 and 3-4 of a 30 fps clip: 60 frames spanning 4 s, for which OpenCV declares 120."""
    path = tmp_path / name
    gap = ["-vf", "select='lt(t,1)+gte(t,3)'", "-fps_mode", "vfr"]
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=4:r=30", *gap, str(path))
    source = VideoFileSource(path)
    assert source.frame_count == 120 and source.duration == pytest.approx(4.0)  # the premise
    assert len(list(source)) == 60 and source.ended_early is None and caplog.messages == []
    cut = tmp_path / f"cut{path.suffix}"  # its header still says 4 s
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    short = VideoFileSource(cut)
    read = len(list(short))
    assert 0 < read < 60 and short.ended_early == f"ended after {read} of 120 frames (truncated?)"


@needs_ffmpeg
def test_a_file_trimmed_without_re_encoding_or_with_sound_running_on_is_not_taken_for_one_cut_short(
    tmp_path, caplog
):
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=6:s=160x120:r=25", "-c:v", "libx264", "-g", "50", str(whole))
    trimmed = tmp_path / "trimmed.mp4"  # holds the frames from the key frame before 2.5 s, plays 2 s
    ffmpeg("-ss", "2.5", "-t", "2", "-i", str(whole), "-c", "copy", str(trimmed))
    source = VideoFileSource(trimmed)
    assert source.frame_count > 60 and source.duration == pytest.approx(2.08, abs=0.05)  # the premise
    assert 50 <= len(list(source)) <= 53 and source.ended_early is None
    for talk in (tmp_path / "talk.mkv", tmp_path / "talk.mpg"):  # 1 s of video, 3 s of sound
        ffmpeg("-f", "lavfi", "-i", "testsrc=d=1:s=160x120:r=25", "-f", "lavfi", "-i", "sine=d=3", str(talk))
        source = VideoFileSource(talk)  # OpenCV declares 75 frames
        assert source.frame_count == 75 and len(list(source)) == 25 and source.ended_early is None, talk
    assert caplog.messages == []
    both = tmp_path / "both.mkv"  # 6 s of video and of sound, then cut: its Segment says it was
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=6:s=160x120:r=25", "-f", "lavfi", "-i", "sine=d=6", str(both))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(both.read_bytes()[: both.stat().st_size // 3])
    source = VideoFileSource(cut, warn_truncated=False)
    read = len(list(source))
    assert 0 < read < 140 and source.ended_early == f"ended after {read} of 150 frames (truncated?)"


@needs_ffmpeg
def test_a_variable_frame_rate_file_plays_at_its_own_frame_times(tmp_path):
    """About one second at 25 fps, then two at 12.5: the one rate OpenCV declares is wrong for both."""
    path = tmp_path / "vfr.mp4"
    times = "setpts='if(lt(N,25),N,25+(N-25)*2)/25/TB'"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=d=2:r=25:size=160x120",
        "-vf",
        times,
        "-fps_mode",
        "passthrough",
        str(path),
    )
    probe = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "frame=pts_time",
        "-of",
        "csv=p=0",
    ]
    out = subprocess.run([*probe, str(path)], check=True, capture_output=True, text=True, timeout=60).stdout
    expected = [float(line.strip(",")) for line in out.split()]
    source = VideoFileSource(path)
    steps = np.diff(expected)
    assert (
        len(expected) == 50 and steps.min() < 0.05 and steps.max() > 0.07 and source.fps < 20
    )  # the premise
    assert [f.timestamp for f in source] == pytest.approx(expected, abs=1e-6)
    played = list(resample(source, 25.0))
    assert len(played) / 25.0 == pytest.approx(
        expected[-1] + steps[-1], abs=1 / 25
    )  # the last frame lasts too
    for target in (0.5, 1.1, 1.6, 2.5):  # OpenCV alone misses such seeks by up to a third of a second
        seen = []
        for frame in source:
            seen.append(frame.timestamp)
            if len(seen) == 3:
                source.seek(target)
        first = min(t for t in expected if t >= target - 0.5 / source.fps)
        assert seen[:3] == pytest.approx(expected[:3]) and seen[3:] == pytest.approx(
            expected[expected.index(first) :]
        )


@pytest.mark.parametrize(
    ("stamp", "previous", "counted", "time"),
    [
        (0.0, None, 0.0, 0.0),  # a file's first frame
        (0.52, None, 0.48, 0.52),  # the first after a seek: the file's time
        (0.0, None, 0.48, 0.48),  # ... which the file does not give
        (0.6, 0.52, 0.52, 0.6),
        (0.0, 0.52, 0.52, 0.56),  # no time: one declared period on
        (0.52, 0.52, 0.52, 0.56),  # a time that does not move on: the same
    ],
)
def test_a_frame_without_its_own_time_is_counted_at_the_declared_rate(stamp, previous, counted, time):
    assert _frame_time(stamp, previous, counted, 25.0) == pytest.approx(time)


def test_a_frame_time_far_past_the_files_duration_is_broken_and_counted():
    assert _frame_time(3600.0, 2.0, 2.0, 25.0, duration=3.0) == pytest.approx(2.04)  # an hour's jump
    assert _frame_time(3600.0, None, 2.0, 25.0, duration=3.0) == pytest.approx(2.0)
    assert _frame_time(7.9, 2.0, 2.0, 25.0, duration=3.0) == pytest.approx(7.9)  # within the slack
    assert _frame_time(3600.0, 2.0, 2.0, 25.0) == pytest.approx(3600.0)  # no duration declared: kept


def test_a_seek_to_the_end_of_a_whole_file_is_not_taken_for_a_cut(tmp_path, caplog):
    source = VideoFileSource(write_video(tmp_path / "clip.avi", noise_frames(50), 25.0))
    for target in (source.duration, source.duration - 0.01, source.duration + 1):
        for frame in source:
            if frame.index == 0:
                source.seek(target)
        assert source.ended_early is None and caplog.messages == []


@needs_ffmpeg
def test_a_stop_does_not_wait_out_a_long_frame(tmp_path, caplog):
    """Half a second of video, then one frame five seconds later: played at its pace, it waits."""
    import threading
    import time

    path = tmp_path / "still.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=d=6:r=10:size=64x48",
        "-vf",
        "select='lt(t,0.5)+gte(t,5.5)'",
        "-fps_mode",
        "vfr",
        str(path),
    )
    source = VideoFileSource(path, realtime=True)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(f.timestamp for f in source))
    reader.start()
    time.sleep(1.5)  # in the gap
    stopped = time.monotonic()
    source.stop()
    reader.join(timeout=10)
    assert time.monotonic() - stopped < 1.0 and not reader.is_alive()
    assert (
        seen == pytest.approx([i / 10 for i in range(5)])
        and source.ended_early is None
        and caplog.messages == []
    )


@needs_ffmpeg
def test_an_mpeg_1_file_whose_sound_starts_with_its_video_reads_as_ever(grid_dir, tmp_path):
    """As GRID's own files, MPEG-1 .mpg: no delay, 75 frames 40 ms apart, 3 s long."""
    path = tmp_path / "clip.mpg"
    ffmpeg("-i", str(grid_dir / "video" / "bbaf2n.mp4"), "-c:v", "mpeg1video", "-c:a", "pcm_s16be", str(path))
    source = VideoFileSource(path)
    times = [frame.timestamp for frame in source]
    assert source.delay == 0.0 and source.frame_count == 75 and source.duration == 3.0
    assert times == pytest.approx([i / 25 for i in range(75)]) and source.ended_early is None


GOPS = {  # FFmpeg's arguments for 6 s of frames that each show their number, keyframes every 2 s
    "gop.ts": ["-c:v", "libx264", "-g", "50"],
    "gop.mpg": ["-c:v", "mpeg1video", "-g", "50"],
    "gop.vob": ["-c:v", "mpeg2video", "-g", "50"],
    "one-keyframe.ts": ["-c:v", "libx264", "-x264-params", "keyint=infinite:scenecut=0"],
}


@needs_ffmpeg
@pytest.mark.parametrize("name", GOPS)
def test_a_seek_finds_the_frame_sought_before_the_second_keyframe_too(tmp_path, name):
    """FFmpeg seeks to keyframes: in a file without an index (MPEG-TS, program stream) it gives the
    frame of the second keyframe (or the one after it) for a time before it, and none in a transport
    stream with one keyframe. The frames are read from the start to the time sought instead."""
    path = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=6:s=160x120:r=25", *GOPS[name], str(path))
    frames = list(VideoFileSource(path))
    for seconds in (0.0, 0.31, 1.0, 1.96, 2.0, 2.04, 3.11, 5.0):
        source = VideoFileSource(path)
        source.seek(seconds)
        found, sought = next(iter(source)), frames[round(seconds * 25)]
        assert found.timestamp == pytest.approx(sought.timestamp), seconds
        assert np.array_equal(found.image, sought.image), seconds


@needs_ffmpeg
def test_a_transport_stream_is_not_sought_in_where_opencv_cannot(tmp_path, monkeypatch):
    """Before its second keyframe (marked by its packets) OpenCV's seek is not tried: it would find
    no frame only after decoding to the end of the file (seconds in a long one), or a later one."""
    path = tmp_path / "one-keyframe.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=6:s=160x120:r=25", *GOPS["one-keyframe.ts"], str(path))
    frames = list(VideoFileSource(path))
    monkeypatch.setattr("core.video._seek", lambda *args: pytest.fail("OpenCV's seek was tried"))
    source = VideoFileSource(path)
    source.seek(5.0)
    assert np.array_equal(next(iter(source)).image, frames[125].image)
