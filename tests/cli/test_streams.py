"""Live links that drop (sspnet.inference.sources: ReconnectPolicy, link events), --vid-stride and
GStreamer pipeline strings.

The end-to-end test serves a generated clip with ffmpeg over HTTP (MPEG-TS, 127.0.0.1 only), cuts
the server mid-run, restarts it, and lets it end for good: `sspnet predict` must reconnect, count
the outage and the frames lost in the gap, end with exit status 3 once the stream stays down, and
keep every frame it had written. The unit tests drive the same reconnect logic through a scripted
OpenCV capture (no network, no timing assertions beyond "ends")."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sspnet.runtime.backend import load_backend
from sspnet.runtime.detector import Detector
from test_predict import summary_table

from sspnet.errors import MissingDependencyError, UsageError
from sspnet.inference import sources
from sspnet.inference.predict import PredictOptions, predict
from sspnet.inference.sources import Frame, FrameQueue, FrameSource, ReconnectPolicy, open_source

FFMPEG = shutil.which("ffmpeg")
# CI installs ffmpeg: there a missing ffmpeg fails the test instead of skipping it
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None and os.environ.get("CI") != "true", reason="ffmpeg (Debian package) is not installed"
)


# ---- the policy ---------------------------------------------------------------------------------
def test_reconnect_waits_double_up_to_the_cap():
    waits = ReconnectPolicy(first_wait_s=0.5, max_wait_s=3.0).waits()
    assert [next(waits) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "field, value",
    [("first_wait_s", -1), ("give_up_after_s", float("nan")), ("max_wait_s", float("inf")), ("read_timeout_s", 0)],
)
def test_reconnect_policy_refuses_bad_values(field, value):
    with pytest.raises(UsageError, match=field):
        ReconnectPolicy(**{field: value})


# ---- reconnecting, through a scripted capture ----------------------------------------------------
class ScriptedCapture:
    """Stands in for cv2.VideoCapture: each opening plays the next script, a list of True (a frame)
    and False (a failed read); an opening whose script is None does not open."""

    scripts: list = []
    opened_with: list = []

    def __init__(self, target, *api):
        ScriptedCapture.opened_with.append((target, api[:1]))
        script = ScriptedCapture.scripts.pop(0) if ScriptedCapture.scripts else None
        self.script = None if script is None else list(script)

    def isOpened(self):
        return self.script is not None

    def get(self, prop):
        import cv2

        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.script and self.script.pop(0):
            return True, np.full((8, 8, 3), 7, np.uint8)
        return False, None

    def grab(self):
        return self.read()[0]

    def release(self):
        pass


@pytest.fixture
def scripted(monkeypatch):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", ScriptedCapture)
    ScriptedCapture.opened_with = []

    def play(*scripts):
        ScriptedCapture.scripts = list(scripts)

    return play


FAST = ReconnectPolicy(first_wait_s=0.01, max_wait_s=0.02, give_up_after_s=0.3)


def test_a_stream_that_drops_reconnects_and_skips_the_lost_frames(scripted):
    # 3 frames, the link drops; two reopen attempts fail, the third delivers 2 frames; then it stays down.
    scripted([True] * 3 + [False], None, None, [True, True, False])
    items = list(open_source("http://127.0.0.1:9/live.ts", reconnect=FAST))
    events = [(f.link, f.index) for f in items if f.link]
    frames = [f.index for f in items if f.link is None]
    assert [link for link, _ in events] == ["down", "back", "down", "gave-up"]
    back = next(f for f in items if f.link == "back")
    assert frames[:3] == [0, 1, 2]
    # the first frame after the gap is numbered past the frames lost in it (25 fps x the gap)
    assert frames[3] == 3 + back.lost and back.lost >= 1
    assert frames[4] == frames[3] + 1 and len(frames) == 5


def test_reconnect_off_ends_at_the_first_failed_read(scripted):
    scripted([True, True, False], [True] * 5)
    items = list(open_source("http://127.0.0.1:9/live.ts", reconnect=ReconnectPolicy(give_up_after_s=0)))
    assert [(f.index, f.link) for f in items] == [(0, None), (1, None), (2, "gave-up")]  # still said, not silent
    assert "reconnecting is off" in items[-1].error and len(ScriptedCapture.opened_with) == 1


def test_files_and_cameras_do_not_reconnect(scripted):
    scripted([True, True, False], [True] * 5)
    assert [f.index for f in open_source("0", reconnect=FAST)] == [0, 1]


def test_stop_cuts_a_reconnect_wait_short(scripted):
    scripted([True, False])
    source = open_source(
        "http://127.0.0.1:9/live.ts", reconnect=ReconnectPolicy(first_wait_s=30, max_wait_s=30, give_up_after_s=60)
    )
    queue = FrameQueue(source, maxsize=2, drop_when_full=True)
    started = time.monotonic()
    seen = []
    for frame in queue:
        seen.append(frame.link)
        if frame.link == "down":
            break  # closes the queue: the 30 s wait must not hold it up
    assert seen == [None, "down"] and time.monotonic() - started < 10


def test_the_live_queue_never_drops_link_events():
    events = [Frame(k, f"f{k}", np.zeros((2, 2, 3), np.uint8)) for k in range(3)]
    events.insert(1, Frame(1, "down", None, link="down", error="down"))
    done = threading.Event()

    def frames():
        yield from events
        done.set()

    queue = FrameQueue(frames(), maxsize=1, drop_when_full=True)
    consumed = []
    for item in queue:
        consumed.append(item)
        if len(consumed) == 1:
            assert done.wait(5)
    assert any(f.link == "down" for f in consumed)
    assert queue.dropped == len(events) - len(consumed)


# ---- predict's summary and exit status -----------------------------------------------------------
class ScriptedLink(FrameSource):
    """A live source playing link events between frames (what VideoCapture yields on a drop)."""

    kind, live, description, fps, stem = "stream", True, "scripted stream", 25.0, "stream"

    def __init__(self, image):
        self.items = [
            Frame(0, "s_0", image),
            Frame(1, "s_1", image),
            Frame(2, "s_2", None, link="down", lost=0, error="link dropped"),
            Frame(2, "s_2", None, link="back", lost=40, error="link back; ~40 frames lost"),
            Frame(42, "s_42", image),
            Frame(43, "s_43", None, link="down", lost=0, error="link dropped"),
            Frame(43, "s_43", None, link="gave-up", lost=0, error="did not come back within 30 s"),
        ]

    def __iter__(self):
        for item in self.items:
            time.sleep(0.01)  # the live queue is not overrun
            yield item


def test_predict_counts_outages_and_ends_with_the_link_lost(marker_onnx, tmp_path):
    from cli_markers import TILE, marker_frame
    from sspnet.runtime.backend import load_backend

    from sspnet.cli.predict import EXIT_LINK_LOST, run_exit_code

    image = marker_frame(*TILE, [(30, 40, 200, 0)])[..., ::-1].copy()
    warnings = []
    summary = predict(
        Detector(load_backend(marker_onnx), color_order="bgr"),
        ScriptedLink(image),
        PredictOptions(out=tmp_path / "out", progress=False, warn=warnings.append),
    )
    assert (summary.frames, summary.outages, summary.lost_in_gaps, summary.link_lost) == (3, 2, 40, True)
    assert summary.skipped == 0 and "within 30 s" in summary.link_problem
    assert sum("link dropped" in w for w in warnings) == 2
    ids = [json.loads(line)["image_id"] for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert ids == [1, 2, 43]  # frame numbers keep the time axis across the gap
    assert run_exit_code(summary) == EXIT_LINK_LOST == 3
    assert dict(summary.rows())["link outages"] == "2"


# ---- the real thing: ffmpeg on 127.0.0.1, cut and restored ---------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(url: str, seconds: float) -> subprocess.Popen:
    """ffmpeg serving a generated 25 fps clip as MPEG-TS over HTTP on `url`, in real time, ending by itself."""
    return subprocess.Popen(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=192x128:rate=25",
            "-t",
            str(seconds),
            "-c:v",
            "mpeg2video",
            "-q:v",
            "5",
            "-f",
            "mpegts",
            "-listen",
            "1",
            url,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# aio-rtsp-toolkit's RTSP server (RTSP over TCP, interleaved RTP) publishing a folder, stopped after N s.
# ffmpeg cannot serve RTSP itself; this small server from the package index (Apache-2.0) can, and
# OpenCV's FFmpeg backend reads RTSP over TCP as it would from a camera.
RTSP_SERVER = """
import asyncio, sys
import aio_rtsp_toolkit.server as server
folder, port, control, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
async def main():
    try:
        await asyncio.wait_for(server.serve(folder, "127.0.0.1", port, control_port=control), seconds)
    except asyncio.TimeoutError:
        pass
asyncio.run(main())
"""


class Server:
    """A local live stream that can be started (for N seconds) and killed: ffmpeg over HTTP, or an
    H.264 clip (made by ffmpeg) looped by an RTSP server."""

    def __init__(self, protocol: str, folder):
        self.protocol, self.folder = protocol, folder
        if protocol == "http":
            self.url = f"http://127.0.0.1:{free_port()}/live.ts"
            return
        clip = folder / "clip.mp4"
        subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=192x128:rate=25"]
            + ["-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", str(clip)],
            check=True,
        )
        self.ports = (free_port(), free_port())
        self.url = f"rtsp://127.0.0.1:{self.ports[0]}/clip.mp4?play_count=0"  # loop the clip

    def start(self, seconds: float) -> subprocess.Popen:
        if self.protocol == "http":
            return serve(self.url, seconds)
        command = [sys.executable, "-c", RTSP_SERVER, str(self.folder), *map(str, self.ports), str(seconds)]
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lines(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


@needs_ffmpeg
@pytest.mark.parametrize("verb, protocol", [("predict", "http"), ("track", "http"), ("track", "rtsp")])
def test_a_real_stream_cut_is_survived_and_ends_when_it_stays_down(verb, protocol, marker_onnx, tmp_path):
    # `track` runs the same pipeline with a tracker: its tracks must bridge the gap's frame numbers too
    assert FFMPEG, "ffmpeg is not on PATH (CI installs the Debian package)"
    if protocol == "rtsp" and importlib.util.find_spec("aio_rtsp_toolkit") is None:
        pytest.skip("aio-rtsp-toolkit (the local RTSP server; scripts/env.sh installs it) is not installed")
    server = Server(protocol, tmp_path)
    url = server.url
    out = tmp_path / "out"
    servers = [server.start(30)]
    try:
        time.sleep(0.5)
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sspnet",
                verb,
                url,
                "--model",
                str(marker_onnx),
                "--out",
                str(out),
                "--quiet",
                "--reconnect-wait",
                "0.2",
                "--reconnect-max-wait",
                "1",
                "--reconnect-timeout",
                "4",
                "--read-timeout",
                "3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 40
        while lines(out / "detections.jsonl") < 20 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
        written_before_the_cut = lines(out / "detections.jsonl")
        assert written_before_the_cut >= 20, run.communicate(timeout=10)
        servers[0].kill()  # the link drops mid-run
        servers[0].wait()
        time.sleep(1.5)
        servers.append(server.start(2 if protocol == "http" else 3))  # back for 2-3 s, then gone for good
        stdout, stderr = run.communicate(timeout=60)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert run.returncode == 3, stderr
    assert "link dropped" in stderr and "link back after" in stderr and "did not come back within 4 s" in stderr
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(records) >= written_before_the_cut + 10  # nothing written was lost; frames came after the cut
    ids = [record["image_id"] for record in records]
    assert ids == sorted(set(ids))
    assert max(b - a for a, b in zip(ids, ids[1:])) > 10  # the gap shows in the frame numbers
    table = summary_table(stdout)
    assert table["frames"] == str(len(records))
    assert table["link outages"] == "2" and int(table["frames lost in link gaps (estimated)"]) > 10
    coco = json.loads((out / "detections.json").read_text())
    assert coco == [row for record in records for row in record["detections"]]
    assert (out / "stream.mp4").is_file()
    if verb == "track":
        from sspnet.tracking.hook import SUMMARY_NAME, TRACKS_NAME

        summary = json.loads((out / SUMMARY_NAME).read_text())
        assert summary["frames_lost"] == int(table["frames lost in link gaps (estimated)"])
        assert all("track_id" in row for record in records for row in record["detections"])
        # tracks.txt numbers frames as image_id does (from 1, the gap included): the same time axis
        frames = {int(line.split(",")[0]) for line in (out / TRACKS_NAME).read_text().splitlines()}
        tracked = {record["image_id"] for record in records if any(row["track_id"] for row in record["detections"])}
        assert frames == tracked and max(b - a for a, b in zip(sorted(frames), sorted(frames)[1:])) > 10


# ---- --vid-stride ---------------------------------------------------------------------------------
def test_vid_stride_keeps_every_nth_frame_of_a_file(marker_onnx, tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for k in range(10):
        writer.write(np.full((24, 32, 3), 20 * k, np.uint8))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    every = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        every.append(image)
    source = open_source(str(path), vid_stride=3)
    assert source.total == 4
    frames = list(source)
    assert [f.index for f in frames] == [0, 3, 6, 9]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, every[frame.index])
    # through predict: frame numbers of the source, and an annotated video at the source's speed
    summary = predict(
        Detector(load_backend(marker_onnx), color_order="bgr"),
        open_source(str(path), vid_stride=3),
        PredictOptions(out=tmp_path / "out", progress=False),
    )
    ids = [json.loads(line)["image_id"] for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert ids == [1, 4, 7, 10] and summary.frames == 4
    video = cv2.VideoCapture(str(tmp_path / "out" / "clip.avi"))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0 / 3, abs=0.01)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_vid_stride_is_refused_for_still_images(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UsageError, match="vid-stride"):
        open_source(str(tmp_path), vid_stride=2)
    with pytest.raises(UsageError, match="vid-stride"):
        open_source(str(tmp_path / "a.png"), vid_stride=0)


# ---- GStreamer pipelines ---------------------------------------------------------------------------
PIPELINE = "videotestsrc num-buffers=5 ! videoconvert ! video/x-raw,format=BGR ! appsink"


def test_opencv_backends_reads_the_build_information(monkeypatch):
    import cv2

    info = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   NO\n"
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: info)
    assert sources.opencv_backends() == {"FFMPEG": True, "GStreamer": False}
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: info.replace("NO", "YES (1.22.0)"))
    assert sources.opencv_backends()["GStreamer"] is True


def test_a_pipeline_without_gstreamer_in_opencv_is_refused(monkeypatch):
    monkeypatch.setattr(sources, "opencv_backends", lambda: {"FFMPEG": True, "GStreamer": False})
    with pytest.raises(MissingDependencyError, match="built without GStreamer"):
        open_source(PIPELINE)


def test_a_pipeline_goes_to_opencvs_gstreamer_backend(monkeypatch, scripted):
    import cv2

    monkeypatch.setattr(sources, "opencv_backends", lambda: {"FFMPEG": True, "GStreamer": True})
    with pytest.raises(UsageError, match="appsink"):
        open_source("videotestsrc ! fakesink")
    scripted([True, True, False])
    source = open_source(PIPELINE, reconnect=ReconnectPolicy(give_up_after_s=0))
    assert source.kind == "gstreamer" and source.live
    assert ScriptedCapture.opened_with == [(PIPELINE, (cv2.CAP_GSTREAMER,))]
    assert [(f.index, f.link) for f in source] == [(0, None), (1, None), (2, "gave-up")]


def test_predict_cli_refuses_a_pipeline_in_one_line_when_opencv_lacks_gstreamer(marker_onnx, tmp_path, capsys):
    from sspnet.cli import main

    if sources.opencv_backends()["GStreamer"]:
        pytest.skip("this OpenCV has GStreamer")
    assert main(["predict", PIPELINE, "--model", str(marker_onnx), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "built without GStreamer" in err[0] and "sspnet doctor" in err[0]


def test_doctor_says_whether_opencv_has_gstreamer(monkeypatch):
    import re

    import cv2

    from sspnet.cli.doctor import Report, check_opencv

    report = Report()
    check_opencv(report)
    ((check, status, detail),) = report.rows
    has_it = re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.MULTILINE) is not None
    assert check == "OpenCV" and status == "ok" and cv2.__version__ in detail
    assert ("GStreamer yes" if has_it else "GStreamer no") in detail
    monkeypatch.setattr(sources, "opencv_backends", lambda: {"FFMPEG": True, "GStreamer": not has_it})
    report = Report()
    check_opencv(report)
    assert ("GStreamer no" if has_it else "GStreamer yes") in report.rows[0][2]
