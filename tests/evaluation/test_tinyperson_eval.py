"""TinyPerson AP / MR against pycocotools and hand-computed cases."""

import contextlib
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sspnet.errors import InputError
from sspnet.evaluation.tinyperson import evaluate, print_results_table, results_table_rows

# ------------------------------------------------------------------------------------- helpers


def gt_json(images, boxes, categories=(("person", 1),)):
    """images: [(id, w, h)]; boxes: [(image_id, x, y, w, h, extra dict)] -> COCO dict (ids from 1)."""
    annotations = []
    for k, (image_id, x, y, w, h, *extra) in enumerate(boxes):
        annotation = {
            "id": k + 1,
            "image_id": image_id,
            "bbox": [x, y, w, h],
            "area": w * h,
            "category_id": 1,
            "iscrowd": 0,
        }
        annotation.update(extra[0] if extra else {})
        annotations.append(annotation)
    return {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": w, "height": h} for i, w, h in images],
        "annotations": annotations,
        "categories": [{"id": cid, "name": name} for name, cid in categories],
    }


def det(image_id, x, y, w, h, score, category_id=1):
    return {"image_id": image_id, "bbox": [x, y, w, h], "score": score, "category_id": category_id}


def random_case(rng, num_images, num_categories, sub_pixel_fraction=0.0):
    """Random GT and jittered / spurious detections; a fraction of GT boxes below 1 px² (ignored by
    the area range in both implementations)."""
    images = [(i + 1, 800, 600) for i in range(num_images)]
    boxes, dets = [], []
    for image_id, _, _ in images:
        for _ in range(rng.integers(0, 8)):
            w, h = rng.uniform(0.3, 0.9, 2) if rng.random() < sub_pixel_fraction else rng.uniform(2, 80, 2)
            x, y = rng.uniform(0, 800 - w), rng.uniform(0, 600 - h)
            category = int(rng.integers(1, num_categories + 1))
            boxes.append((image_id, x, y, w, h, {"category_id": category}))
            for _ in range(rng.integers(0, 3)):  # near-duplicates, jittered
                jx, jy, jw, jh = rng.normal(0, rng.uniform(0.02, 0.3), 4) * [w, h, w, h]
                dets.append(
                    det(image_id, x + jx, y + jy, max(w + jw, 1), max(h + jh, 1), float(rng.random()), category)
                )
        for _ in range(rng.integers(0, 6)):  # false positives
            w, h = rng.uniform(2, 80, 2)
            dets.append(
                det(
                    image_id,
                    rng.uniform(0, 700),
                    rng.uniform(0, 500),
                    w,
                    h,
                    float(rng.random()),
                    int(rng.integers(1, num_categories + 1)),
                )
            )
    if not dets:
        dets.append(det(1, 1, 1, 5, 5, 0.5))
    categories = [(f"class{c}", c) for c in range(1, num_categories + 1)]
    return gt_json(images, boxes, categories), dets


def pycocotools_ap(gt, dets, thresholds=(0.25, 0.5, 0.75), max_dets=200):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        result = coco.loadRes(json.loads(json.dumps(dets)))
        evaluator = COCOeval(coco, result, "bbox")
        evaluator.params.iouThrs = np.array(thresholds)
        evaluator.params.maxDets = [max_dets]
        evaluator.params.areaRng = [[1.0, 1e10]]  # the TinyPerson "all" range
        evaluator.params.areaRngLbl = ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    out = []
    for t in range(len(thresholds)):
        precision = evaluator.eval["precision"][t, :, :, 0, 0]
        valid = precision[precision > -1]
        out.append(100.0 * valid.mean() if valid.size else math.nan)
    return out


# ---------------------------------------------------------------------------- vs pycocotools


@settings(max_examples=25)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.sampled_from([1, 2]))
def test_ap_all_matches_pycocotools(seed, num_images, num_categories):
    gt, dets = random_case(np.random.default_rng(seed), num_images, num_categories)
    assert_matches_pycocotools(gt, dets, use_iod_for_ignore=True)


@settings(max_examples=25)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_ap_with_range_ignored_gt_matches_pycocotools(seed, num_images):
    # GT below 1 px² is ignored by the range; pycocotools has no IoD rule, so switch it off here
    gt, dets = random_case(np.random.default_rng(seed), num_images, 1, sub_pixel_fraction=0.3)
    assert_matches_pycocotools(gt, dets, use_iod_for_ignore=False)


def assert_matches_pycocotools(gt, dets, use_iod_for_ignore):
    results = evaluate(gt, dets, compute_mr=False, use_iod_for_ignore=use_iod_for_ignore)
    expected = pycocotools_ap(gt, dets)
    for key, value in zip(("AP25_all", "AP50_all", "AP75_all"), expected):
        if math.isnan(value):
            assert math.isnan(results[key])
        else:
            assert results[key] == pytest.approx(value, abs=1e-4), key


def test_max_detections_200_matches_pycocotools():
    rng = np.random.default_rng(7)
    gt, _ = random_case(rng, 2, 1)
    gt["annotations"] = gt["annotations"] or [
        {"id": 1, "image_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "category_id": 1, "iscrowd": 0}
    ]
    dets = [det(1, *rng.uniform(0, 500, 2), 20, 20, float(rng.random())) for _ in range(260)]
    for a in gt["annotations"]:
        dets.append(det(a["image_id"], *a["bbox"], float(rng.random())))
    results = evaluate(gt, dets, compute_mr=False)
    for key, value in zip(("AP25_all", "AP50_all", "AP75_all"), pycocotools_ap(gt, dets)):
        assert results[key] == pytest.approx(value, abs=1e-4)


# ---------------------------------------------------------------------------------- hand cases


def ap_from_points(precision_by_recall):
    """AP from a step function: list of (max recall, precision) pieces -> mean over 101 points."""
    points = np.linspace(0, 1, 101)
    values = np.zeros(101)
    for recall_limit, precision in reversed(precision_by_recall):
        values[points <= recall_limit + 1e-12] = precision
    return 100.0 * values.mean()


IMAGE = [(1, 400, 300)]


def test_ignore_region_absorbs_detections_by_iod():
    # a regular person and a big ignore region; three detections inside the region (IoU < 0.5,
    # IoD = 1) score above the true positive
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20), (1, 100, 100, 100, 100, {"ignore": True})])
    dets = [
        det(1, 110, 110, 10, 20, 0.9),
        det(1, 150, 150, 10, 20, 0.85),
        det(1, 120, 170, 12, 20, 0.8),
        det(1, 10, 10, 10, 20, 0.7),
    ]
    assert evaluate(gt, dets)["AP50_all"] == pytest.approx(100.0)
    # without the IoD rule the three are false positives before the only true positive: precision 1/4
    no_iod = evaluate(gt, dets, use_iod_for_ignore=False)["AP50_all"]
    assert no_iod == pytest.approx(25.0)


def test_iod_threshold_depends_on_iou_threshold():
    # detection 190..210 against the region 100..200: half of it inside -> IoD 0.5
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20), (1, 100, 100, 100, 100, {"ignore": True})])
    dets = [det(1, 190, 140, 20, 20, 0.9), det(1, 10, 10, 10, 20, 0.7)]
    results = evaluate(gt, dets)
    assert results["AP50_all"] == pytest.approx(100.0)  # IoD 0.5 >= 0.5: ignored
    assert results["AP75_all"] == pytest.approx(50.0)  # IoD 0.5 < 0.75: false positive first


def test_uncertain_boxes_are_ignored():
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20), (1, 60, 60, 10, 20, {"uncertain": True})])
    dets = [det(1, 60, 60, 10, 20, 0.9), det(1, 10, 10, 10, 20, 0.8)]
    # the detection on the uncertain box is neither TP nor FP
    assert evaluate(gt, dets)["AP50_all"] == pytest.approx(100.0)
    # the uncertain box undetected: does not lower recall when ignored ...
    only_regular = [det(1, 10, 10, 10, 20, 0.8)]
    assert evaluate(gt, only_regular)["AP50_all"] == pytest.approx(100.0)
    # ... but halves it when counted: precision 1 up to recall 0.5 -> 51 of 101 points
    assert evaluate(gt, only_regular, ignore_uncertain=False)["AP50_all"] == pytest.approx(100 * 51 / 101)


def test_dense_images_are_left_out_with_their_detections():
    # image 2 is dense: its one regular box is missed and it holds a high-scoring false positive
    gt = gt_json([(1, 300, 300), (2, 300, 300)], [(1, 10, 10, 10, 20), (2, 50, 50, 10, 20, {"in_dense_image": True})])
    dets = [det(2, 200, 200, 10, 20, 0.95), det(1, 10, 10, 10, 20, 0.8)]
    assert evaluate(gt, dets)["AP50_all"] == pytest.approx(100.0)
    # kept: the false positive comes first (precision 1/2 at recall 0.5), the dense box is never found
    assert evaluate(gt, dets, exclude_dense_images=False)["AP50_all"] == pytest.approx(100 * 0.5 * 51 / 101)


def test_out_of_range_gt_and_detections():
    # a 10x10 person (tiny) and a 40x40 person (reasonable)
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 10), (1, 100, 100, 40, 40)])
    dets = [
        det(1, 100, 100, 40, 40, 0.95),  # on the big person
        det(1, 300, 200, 40, 40, 0.90),  # big false positive
        det(1, 300, 10, 10, 10, 0.85),  # tiny false positive
        det(1, 10, 10, 10, 10, 0.80),  # on the tiny person
    ]
    results = evaluate(gt, dets)
    # tiny: the big person is ignored and so is the detection on it; the big FP is outside the
    # range and unmatched -> ignored; left: FP then TP -> precision 0.5 everywhere
    assert results["AP50_tiny"] == pytest.approx(50.0)
    # all: TP, FP, FP, TP -> precision 1 up to recall 0.5, then 0.5
    assert results["AP50_all"] == pytest.approx(ap_from_points([(0.5, 1.0), (1.0, 0.5)]))
    # reasonable: TP, then the big FP (the tiny FP is outside the range) -> AP 1
    assert results["AP50_reasonable"] == pytest.approx(100.0)
    # small (20-32 px): no regular GT
    assert math.isnan(results["AP50_small"])
    assert ("small", "-", "-", "-", "-", "-", "-") in results_table_rows(results)


def test_regular_match_is_not_stolen_by_ignore_region():
    # a person inside an ignore region: the detection on the person is a TP, the second one falls
    # into the region and is ignored
    gt = gt_json(IMAGE, [(1, 110, 110, 10, 20), (1, 100, 100, 100, 100, {"ignore": True})])
    dets = [det(1, 110, 110, 10, 20, 0.9), det(1, 111, 111, 10, 20, 0.95)]
    assert evaluate(gt, dets)["AP50_all"] == pytest.approx(100.0)
    # a regular and an uncertain person side by side; the detection overlaps the uncertain one more
    # (IoU 180/220) than the regular one (160/240 >= 0.5): regular GTs come first -> TP
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20), (1, 13, 10, 10, 20, {"uncertain": True})])
    assert evaluate(gt, [det(1, 12, 10, 10, 20, 0.9)])["AP50_all"] == pytest.approx(100.0)


def log_average_miss_rate(recall_at_references):
    return 100 * math.exp(np.mean(np.log(1 - np.asarray(recall_at_references))))


def test_miss_rate_hand_case():
    # 8 images (FPPI steps of 1/8), 4 persons (10x20, size 14.1) in images 1-4, false positives in
    # images 5-8. Detections by decreasing score: T F T F F F T F F F F F F F T
    images = [(i, 400, 300) for i in range(1, 9)]
    persons = [(i, 10, 10, 10, 20) for i in range(1, 5)]
    dets, person, fp = [], 0, 0
    for k, kind in enumerate("TFTFFFTFFFFFFFT"):
        score = 1.0 - 0.01 * k
        if kind == "T":
            dets.append(det(*persons[person], score))
            person += 1
        else:
            dets.append(det(5 + fp % 4, 200, 100, 10, 20, score))
            fp += 1
    gt = gt_json(images, persons)
    # FPPI after each detection: 0 .125 .125 .25 .375 .5 .5 .625 ... ; recall read at the FPPI
    # references .01 .0178 .0316 .0562 .1 .178 .316 .562 1 (last point with FPPI <= reference):
    expected = log_average_miss_rate([0.25] * 5 + [0.5, 0.5] + [0.75, 0.75])
    results = evaluate(gt, dets)
    assert results["MR50_all"] == pytest.approx(expected)
    assert results["MR50_tiny"] == pytest.approx(expected)

    # a 1x1 false positive on top: below the tiny range's size filter (2 / 1.25 = 1.6 px) so
    # MR50_tiny is unchanged; in "all" it shifts every FPPI by 1/8 and no point lies below .125
    with_extra = evaluate(gt, [det(7, 300, 250, 1, 1, 2.0)] + dets)
    assert with_extra["MR50_tiny"] == pytest.approx(expected)
    assert with_extra["MR50_all"] == pytest.approx(log_average_miss_rate([0.0] * 5 + [0.25, 0.5, 0.5, 0.75]))


def test_miss_rate_ignore_absorbs_detections():
    gt = gt_json([(1, 400, 300)], [(1, 10, 10, 10, 20), (1, 100, 100, 100, 100, {"ignore": True})])
    dets = [det(1, 110 + 5 * k, 110, 10, 20, 0.9 - 0.01 * k) for k in range(5)] + [det(1, 10, 10, 10, 20, 0.5)]
    # the five detections in the region are neither TP nor FP -> recall 1 at every FPPI -> MR 0
    assert evaluate(gt, dets)["MR50_all"] == pytest.approx(0.0)


# ------------------------------------------------------------------------------ API and errors


def test_result_keys_and_table(capsys):
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20)])
    results = evaluate(gt, [det(1, 10, 10, 10, 20, 0.9)])
    ranges = ("all", "tiny", "tiny1", "tiny2", "tiny3", "small", "reasonable")
    for t in ("25", "50", "75"):
        for r in ranges:
            assert f"AP{t}_{r}" in results
        for r in ranges[:-1]:
            assert f"MR{t}_{r}" in results
    print_results_table(results)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["range", "AP25", "AP50", "AP75", "MR25", "MR50", "MR75"]
    assert out[2].split()[:3] == ["all", "100.00", "100.00"]


def test_array_detections_and_errors(tmp_path):
    gt = gt_json(IMAGE, [(1, 10, 10, 10, 20)])
    arrays = {1: {"boxes": np.array([[10, 10, 20, 30.0]]), "scores": np.array([0.9]), "labels": np.array([0])}}
    assert evaluate(gt, arrays)["AP50_all"] == pytest.approx(100.0)
    with pytest.raises(InputError, match=r"\[0\]\.image_id: expected an image id of .*got 99"):
        evaluate(gt, [det(99, 1, 1, 5, 5, 0.5)])
    with pytest.raises(InputError, match=r"\[0\]\.bbox: expected \[x, y, w, h\] numbers, got nothing"):
        evaluate(gt, [{"image_id": 1, "score": 0.5}])
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(InputError, match="not valid JSON"):
        evaluate(gt, bad)
    two_classes = gt_json(IMAGE, [(1, 10, 10, 10, 20)], categories=(("car", 1), ("boat", 2)))
    with pytest.raises(InputError, match=r"category_id: expected one of \[1, 2\], got 7"):
        evaluate(two_classes, [det(1, 10, 10, 10, 20, 0.9, category_id=7)])
