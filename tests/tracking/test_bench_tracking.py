"""benchmarks/bench_tracking.py's scoring helpers: box formats and metrics wired the right way round."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sspnet.data.synth_video import find_sequences, write_sequences
from sspnet.tracking.mot import read_mot

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tracking.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tracking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    write_sequences(out, 1, frames=6, size=(320, 240), seed=4, progress=False)
    infos = find_sequences(out)
    return infos, {i.name: read_mot(i.gt, "gt", i.frames) for i in infos}


def gt_as_detections(infos, gts, centre_as_corner=False):
    """Every considered gt box as a detection (xyxy, score 0.9); centre_as_corner: the planted mistake of
    reading a centre-based box as corner-based (every box shifted by half its size)."""
    out = {}
    for info in infos:
        gt, per_frame = gts[info.name], []
        for k in range(1, info.frames + 1):
            box = gt.box[(gt.frame == k) & (gt.score == 1)]
            xyxy = np.c_[box[:, :2], box[:, :2] + box[:, 2:]]
            if centre_as_corner:
                xyxy = xyxy + np.c_[box[:, 2:], box[:, 2:]] / 2
            per_frame.append((xyxy, np.full(len(box), 0.9)))
        out[info.name] = per_frame
    return out


def test_perfect_detections_score_perfectly(bench, sequence):
    infos, gts = sequence
    detections = gt_as_detections(infos, gts)
    assert bench.ap50_tiny(infos, gts, detections) == pytest.approx(100.0)
    single = bench.score(infos, gts, bench.single_frame_rows(detections, infos, 0.5))["all"]
    assert single["DetA"] == pytest.approx(100.0) and single["FP"] == 0 and single["FN"] == 0
    # the same boxes handed over in the wrong format are caught by both metrics
    wrong = gt_as_detections(infos, gts, centre_as_corner=True)
    assert bench.ap50_tiny(infos, gts, wrong) < 50
    assert bench.score(infos, gts, bench.single_frame_rows(wrong, infos, 0.5))["all"]["DetA"] < 50


def test_tracked_boxes_round_trip(bench, sequence):
    infos, gts = sequence
    detections = gt_as_detections(infos, gts)
    from sspnet.tracking.tracker import TrackerSettings

    settings = TrackerSettings(tracker="bytetrack", cmc="none", min_hits=1)
    tracks = bench.run_tracker(settings, infos, detections, motions={})
    metrics = bench.score(infos, gts, tracks)["all"]
    assert metrics["DetPr"] == pytest.approx(100.0) and metrics["IDSW"] == 0  # every reported box is a gt box
    again = bench.rows_as_boxes(tracks, infos)
    assert bench.ap50_tiny(infos, gts, again) > 80  # only the first frame of each person is missing
