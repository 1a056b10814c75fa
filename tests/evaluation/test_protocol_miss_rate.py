"""The opt-in MR mode that reproduces the official TinyBenchmark MR script and its two quirks (issue
14, section 3), beside the exact default. Expected numbers are worked out in the comments."""

import math

import numpy as np
import pytest
from test_tinyperson_eval import det
from test_tinyperson_eval import gt_json as tinyperson_gt

from sspnet.evaluation.tinyperson import FPPI_POINTS, OFFICIAL_FPPI_POINTS, evaluate

PERSON = [10, 20]  # w, h: size sqrt(200) = 14.1, inside "all", "tiny" and "tiny3"


def gt_json(num_images, boxes):
    """num_images 400x300 images; boxes: [(image_id, x, y, w, h, extra dict)]."""
    return tinyperson_gt([(i, 400, 300) for i in range(1, num_images + 1)], boxes)


def test_top_false_positive_on_a_small_set_reads_the_last_recall():
    # 20 images; persons in images 1 and 2; detections by score: a false positive (image 3), then
    # the person of image 1. The person of image 2 is never found.
    #   recall = [0, 0.5], FPPI = [1/20, 1/20] = [0.05, 0.05]
    # FPPI references .01 .0178 .0316 | .0562 .1 .178 .316 .562 1: the first three lie below 0.05
    # (no point at or below them: index -1), the other six read recall 0.5.
    #   exact:    recall 0 at the first three -> MR = exp((3 ln 1 + 6 ln 0.5) / 9) = 0.5 ** (2/3)
    #   official: index -1 reads recall[-1] = 0.5 at all nine -> MR = 0.5
    gt = gt_json(20, [(1, 10, 10, *PERSON, {}), (2, 10, 10, *PERSON, {})])
    dets = [det(3, 200, 100, *PERSON, 0.9), det(1, 10, 10, *PERSON, 0.8)]
    exact = evaluate(gt, dets)
    official = evaluate(gt, dets, mr_mode="official")
    assert exact["MR50_all"] == pytest.approx(100 * 0.5 ** (2 / 3))  # 63.00
    assert official["MR50_all"] == pytest.approx(50.0)
    aps = [k for k in exact if k.startswith("AP")]
    np.testing.assert_array_equal([exact[k] for k in aps], [official[k] for k in aps])  # NaN == NaN here


def test_unmatched_detection_near_an_ignore_region_gets_the_second_iod_pass():
    # One image: regular persons P1 (found) and P2 (never found), an ignore region R = [100, 100,
    # 100, 100] (area 10000). Detection d2 = [190, 140, 20, 20] (area 400), score 0.95, lies half
    # inside R: intersection 10 * 20 = 200, IoD = 200 / 400 = 0.5. Then d1 on P1, score 0.9.
    # t = 0.75: IoD 0.5 < 0.75 -> d2 matches nothing in the first pass.
    #   exact: d2 is a false positive: recall [0, 0.5], FPPI [1, 1]; references below 1 read 0,
    #          the reference 1 reads 0.5 -> MR = exp(ln 0.5 / 9) = 0.5 ** (1/9) = 0.9259
    #   official: second pass IoD' = 0.5 / 1.5 * (1 + 10000 / 400) = 26 / 3 = 8.67 > 0.5 -> d2 is
    #          ignored: FPPI [0, 0], every reference reads 0.5 -> MR = 0.5
    # t = 0.5: IoD 0.5 >= 0.5 -> d2 falls into R in the first pass, in both modes -> MR 0.5
    gt = gt_json(1, [(1, 10, 10, *PERSON, {}), (1, 10, 200, *PERSON, {}), (1, 100, 100, 100, 100, {"ignore": True})])
    dets = [det(1, 190, 140, 20, 20, 0.95), det(1, 10, 10, *PERSON, 0.9)]
    exact = evaluate(gt, dets)
    official = evaluate(gt, dets, mr_mode="official")
    assert exact["MR75_all"] == pytest.approx(100 * 0.5 ** (1 / 9))  # 92.59
    assert official["MR75_all"] == pytest.approx(50.0)
    assert exact["MR50_all"] == pytest.approx(50.0) and official["MR50_all"] == pytest.approx(50.0)


def test_official_fppi_references_are_the_same_nine_points():
    # TinyBenchmark's get_fppi: exp(arange(ln 0.01, ln 1 + 1e-10, ln(100) / 8)) -> 9 points, equal
    # to the log-spaced ones up to the last bits
    assert len(OFFICIAL_FPPI_POINTS) == 9
    np.testing.assert_allclose(OFFICIAL_FPPI_POINTS, FPPI_POINTS, rtol=1e-12)
    np.testing.assert_allclose(FPPI_POINTS, [10 ** (-2 + k / 4) for k in range(9)], rtol=1e-12)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mr_mode"):
        evaluate(gt_json(1, [(1, 10, 10, *PERSON, {})]), [], mr_mode="paper")
    assert not math.isnan(evaluate(gt_json(1, [(1, 10, 10, *PERSON, {})]), [])["MR50_all"])
