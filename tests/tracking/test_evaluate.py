"""The tracking metrics (sspnet.tracking.evaluate -> trackers.eval) against hand-worked values.

HOTA (Luiten et al., IJCV 2021, as TrackEval computes it): for each IoU threshold a in 0.05..0.95
(19 values), DetA_a = TP / (TP + FN + FP) and AssA_a = mean over TPs c of
|TPA(c)| / (|TPA(c)| + |FNA(c)| + |FPA(c)|); HOTA = mean_a sqrt(DetA_a * AssA_a).
MOTA = 1 - (FN + FP + IDSW) / #gt and IDF1 = 2 IDTP / (#gt + #tracker) at IoU 0.5.
"""

import math

import numpy as np
import pytest

from sspnet.tracking.evaluate import evaluate_rows, evaluate_sequences
from sspnet.tracking.mot import MotRows, SeqInfo, write_mot, write_seqinfo

BOX = [0.0, 0.0, 10.0, 10.0]


def rows(table, kind="tracks"):
    """[(frame, id, x, y, w, h[, consider, class])] -> MotRows."""
    table = [tuple(r) + ((1, 1) if len(r) == 6 else ()) for r in table]
    a = np.array(table, np.float64)
    return MotRows(
        frame=a[:, 0].astype(int),
        id=a[:, 1].astype(int),
        box=a[:, 2:6],
        score=a[:, 6],
        cls=a[:, 7].astype(int),
        visibility=np.ones(len(a)),
    )


def test_one_id_switch():
    gt = rows([(f, 1, *BOX) for f in range(1, 5)])
    tracks = rows([(1, 7, *BOX), (2, 7, *BOX), (3, 9, *BOX), (4, 9, *BOX)])
    metrics, _ = evaluate_rows(gt, tracks, num_frames=4)
    # every detection right: DetA 1; each TP shares its id pair with 2 of the gt's 4 detections: AssA 2/4
    assert metrics["DetA"] == pytest.approx(100.0)
    assert metrics["AssA"] == pytest.approx(50.0)
    assert metrics["HOTA"] == pytest.approx(100.0 * math.sqrt(0.5))
    assert metrics["IDSW"] == 1 and metrics["MOTA"] == pytest.approx(75.0)  # 1 - 1/4
    assert metrics["IDF1"] == pytest.approx(50.0)  # IDTP 2 of 4 + 4


def test_localisation_enters_hota_through_the_thresholds():
    # frame 2: IoU 0.62 -> a true positive for the 12 thresholds 0.05..0.60, a miss + a false alarm above
    gt = rows([(1, 1, *BOX), (2, 1, *BOX)])
    tracks = rows([(1, 1, *BOX), (2, 1, 0.0, 0.0, 10.0, 6.2)])
    metrics, _ = evaluate_rows(gt, tracks, num_frames=2)
    expected = (12 * 1.0 + 7 * (1 / 3)) / 19  # DetA_a = AssA_a = 1, or 1/3 (TP 1, FN 1, FP 1; TPA 1 of 3)
    assert metrics["HOTA"] == pytest.approx(100 * expected)
    assert metrics["DetA"] == pytest.approx(100 * expected)
    assert metrics["MOTA"] == pytest.approx(100.0) and metrics["MOTP"] == pytest.approx(100 * (1 + 0.62) / 2)


def test_misses_and_false_alarms():
    far = (100.0, 100.0, 10.0, 10.0)
    gt = rows([(1, 1, *BOX), (2, 1, *BOX), (1, 2, 50.0, 50.0, 10.0, 10.0), (2, 2, 50.0, 50.0, 10.0, 10.0)])
    tracks = rows([(1, 4, *BOX), (2, 4, *BOX), (1, 5, *far)])
    metrics, _ = evaluate_rows(gt, tracks, num_frames=2)
    assert metrics["DetA"] == pytest.approx(100 * 2 / 5)  # TP 2, FN 2, FP 1
    assert metrics["AssA"] == pytest.approx(100.0)
    assert metrics["HOTA"] == pytest.approx(100 * math.sqrt(0.4))
    assert metrics["MOTA"] == pytest.approx(100 * (1 - 3 / 4))
    assert metrics["IDF1"] == pytest.approx(100 * 2 * 2 / 7)
    assert (metrics["FP"], metrics["FN"]) == (1, 2)


def test_ignore_rows_neither_count_nor_punish():
    # gt id 2 is an ignore row (consider 0, class 8 distractor): a tracker box on it is removed
    gt = rows([(1, 1, *BOX, 1, 1), (1, 2, 50.0, 50.0, 10.0, 10.0, 0, 8)], kind="gt")
    tracks = rows([(1, 1, *BOX), (1, 2, 50.0, 50.0, 10.0, 10.0)])
    metrics, _ = evaluate_rows(gt, tracks, num_frames=1)
    assert metrics["DetA"] == pytest.approx(100.0) and metrics["FP"] == 0 and metrics["FN"] == 0


def test_sequences_and_combined(tmp_path):
    # two copies of the id-switch case: combined = the same numbers (sums of the same counts)
    gt = rows([(f, 1, *BOX) for f in range(1, 5)])
    tracks = rows([(1, 7, *BOX), (2, 7, *BOX), (3, 9, *BOX), (4, 9, *BOX)])
    infos = []
    for name in ("a", "b"):
        folder = tmp_path / "gt" / name
        write_mot(folder / "gt" / "gt.txt", gt, kind="gt")
        info = SeqInfo(folder=folder, name=name, frames=4, width=64, height=64, fps=30)
        write_seqinfo(folder, info)
        infos.append(info)
        write_mot(tmp_path / "tracks" / f"{name}.txt", tracks)
    results = evaluate_sequences(infos, tmp_path / "tracks")
    assert set(results) == {"a", "b", "COMBINED"}
    assert results["COMBINED"]["HOTA"] == pytest.approx(100 * math.sqrt(0.5))
    assert results["COMBINED"]["IDSW"] == 2
