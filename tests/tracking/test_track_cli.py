"""`sspnet track` end to end on the hand-built ONNX marker model (every red pixel is a 5x5 px person),
on a MOTChallenge frame folder and on a short video, scored with `sspnet val --tracks`."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sspnet.cli import main
from sspnet.tracking.mot import SeqInfo, read_mot, write_seqinfo
from sspnet.tracking.tracker import TrackerSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
from cli_markers import TILE, K, build_marker_model, marker_frame  # noqa: E402

FRAME_H, FRAME_W = 150, 300  # 2 x 3 tiles of 96 x 128: people cross tile borders (cross-tile merge)
FRAMES = 14
R = 2  # the marker model's box: (x - R, y - R, x + R + 1, y + R + 1)


def people(frame):
    """(id, x, y, red) of 3 people on frame k (0-based): two walk 2-3 px/frame across tile borders, one stands."""
    return [(1, 20 + 3 * frame, 40, 230), (2, 260 - 2 * frame, 110 - frame, 200), (3, 150, 75, 180)]


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("track")
    seq = root / "seq"
    gt_lines = []
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (FRAME_W, FRAME_H))
    for k in range(FRAMES):
        markers = [(x, y, red, 0) for _, x, y, red in people(k)]
        bgr = np.ascontiguousarray(marker_frame(FRAME_H, FRAME_W, markers)[..., ::-1])
        (seq / "img1").mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(seq / "img1" / f"{k + 1:06d}.png"), bgr)
        writer.write(bgr)
        gt_lines += [f"{k + 1},{pid},{x - R},{y - R},{2 * R + 1},{2 * R + 1},1,1,1" for pid, x, y, _ in people(k)]
    writer.release()
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    write_seqinfo(
        seq, SeqInfo(folder=seq, name="seq", frames=FRAMES, width=FRAME_W, height=FRAME_H, fps=10.0, image_ext=".png")
    )
    model = build_marker_model(root / "marker.onnx", input_size=TILE, k=K)
    return root, seq, model


def track(source, model, out, *extra, tracker="bytetrack"):
    """ByteTrack by default here: its id rule (a track's first frame only starts it) gives the closed forms below."""
    return main(
        [
            "track",
            str(source),
            "--model",
            str(model),
            "--out",
            str(out),
            "--quiet",
            "--cmc",
            "none",
            "--tracker",
            tracker,
            *extra,
        ]
    )


def test_track_a_frame_folder_and_score_it(sequence, tmp_path, capsys):
    root, seq, model = sequence
    out = tmp_path / "out"
    assert track(seq / "img1", model, out, "--min-hits", "1") == 0
    printed = capsys.readouterr().out
    assert "tracks started" in printed and "bytetrack" in printed

    tracks = read_mot(out / "tracks.txt", "tracks", num_frames=FRAMES)
    # a track's first detection only starts it; with --min-hits 1 it is reported from its 2nd frame on
    assert sorted(set(tracks.id.tolist())) == [1, 2, 3] and tracks.frame.min() == 2
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in records] == list(range(1, FRAMES + 1))
    assert all(d["track_id"] is None for d in records[0]["detections"]) and len(records[0]["detections"]) == 3
    assert all(d["track_id"] in (1, 2, 3) for r in records[1:] for d in r["detections"])
    summary = json.loads((out / "track_summary.json").read_text())
    assert summary["tracks_started"] == 3 and summary["mean_track_length"] == pytest.approx(FRAMES - 1)
    assert len(list(out.glob("*.png"))) == FRAMES  # annotated frames

    assert main(["val", "--tracks", str(out / "tracks.txt"), "--gt", str(seq), "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["sequences"]["seq"]
    # the model's boxes are the gt boxes exactly and the ids never change; only frame 1 is missing:
    # DetA = 39/42 (3 people x 14 frames), AssA = 13/14 per true positive, IDTP = 39 of 42 + 39
    assert metrics["HOTA"] == pytest.approx(100 * 13 / 14) and metrics["MOTA"] == pytest.approx(100 * 39 / 42)
    assert metrics["IDF1"] == pytest.approx(100 * 78 / 81) and metrics["IDSW"] == 0


def test_track_a_video_gives_the_same_tracks(sequence, tmp_path):
    root, seq, model = sequence
    assert track(seq / "img1", model, tmp_path / "frames", "--min-hits", "1") == 0
    assert track(root / "clip.avi", model, tmp_path / "video", "--min-hits", "1") == 0
    assert (tmp_path / "video" / "tracks.txt").read_text() == (tmp_path / "frames" / "tracks.txt").read_text()
    capture = cv2.VideoCapture(str(tmp_path / "video" / "clip.avi"))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == FRAMES


def test_min_hits_delays_the_ids(sequence, tmp_path):
    root, seq, model = sequence
    assert track(seq / "img1", model, tmp_path / "out", "--min-hits", "3") == 0
    tracks = read_mot(tmp_path / "out" / "tracks.txt", "tracks")
    assert tracks.frame.min() == 3  # started on frame 1 (hit 1), matched on frames 2 and 3: reported from frame 3
    records = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert all(d["track_id"] is None for d in records[0]["detections"])  # detections still listed, without id


def test_vid_stride_keeps_source_frame_numbers(sequence, tmp_path):
    root, seq, model = sequence
    assert track(root / "clip.avi", model, tmp_path / "out", "--min-hits", "1", "--vid-stride", "2") == 0
    tracks = read_mot(tmp_path / "out" / "tracks.txt", "tracks")
    assert sorted(set(tracks.frame.tolist())) == list(range(3, FRAMES + 1, 2))
    assert sorted(set(tracks.id.tolist())) == [1, 2, 3]  # 4-6 px steps between kept frames: same ids


def test_the_default_tracker_scores_the_easy_case(sequence, tmp_path, capsys):
    root, seq, model = sequence
    out = tmp_path / "out"
    assert main(["track", str(root / "clip.avi"), "--model", str(model), "--out", str(out), "--quiet"]) == 0
    assert TrackerSettings().label() in capsys.readouterr().out  # the measured default (docs/tracking.md)
    assert main(["val", "--tracks", str(out / "tracks.txt"), "--gt", str(seq), "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["sequences"]["seq"]
    assert metrics["IDSW"] == 0 and metrics["IDF1"] > 90 and metrics["HOTA"] > 90
