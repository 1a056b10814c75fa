"""Results of sub-images ("corner" files) merged back into whole images before scoring, as
TinyBenchmark / SSPNet merge_evaluate do. Expected numbers are worked out in
the comments."""

import json

import numpy as np
import pytest

from sspnet.cli import main
from sspnet.data.cutting import cut_annotations
from sspnet.data.tinyperson import load_annotations
from sspnet.errors import InputError
from sspnet.evaluation.results import merge_corner_results
from sspnet.evaluation.tinyperson import evaluate

# One 200 x 150 image cut into 128 x 96 pieces (w x h) with 30 px overlap. Per axis (TinyBenchmark's cutting tool):
#   x: pieces = ceil((200 - 30) / 98) = 2, starts 0, 98 -> the last shifted back to 200 - 128 = 72
#   y: pieces = ceil((150 - 30) / 66) = 2, starts 0, 66 -> shifted back to 150 - 96 = 54
# pieces (x1, y1, x2, y2): p1 (0, 0, 128, 96), p2 (72, 0, 200, 96), p3 (0, 54, 128, 150), p4 (72, 54, 200, 150)
TILE_WH, OVERLAP = (128, 96), 30
PERSONS = {  # name: (bbox x, y, w, h, score of its perfect detection)
    "A": ([10, 10, 8, 12], 0.9),  # x 10..18,  y 10..22:  p1 only
    "B": ([150, 120, 10, 10], 0.8),  # x 150..160, y 120..130: p4 only
    "C": ([90, 60, 10, 20], 0.7),  # x 90..100, y 60..80: inside the overlap of all four pieces
    "D": ([60, 20, 20, 10], 0.6),  # x 60..80, y 20..30: whole in p1; in p2 clipped to x 72..80, keeps
    # sqrt(80 / 200) = 0.63 < 0.7 of its size -> not in p2
}


def whole_gt():
    return {
        "images": [{"id": 1, "file_name": "big.jpg", "width": 200, "height": 150}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 1,
                "bbox": bbox,
                "area": bbox[2] * bbox[3],
                "category_id": 1,
                "iscrowd": 0,
                "person": name,
            }
            for k, (name, (bbox, _)) in enumerate(PERSONS.items())
        ],
        "categories": [{"id": 1, "name": "person"}],
    }


def perfect_sub_image_results(corner_gt):
    """Every piece's own GT boxes as detections (piece coordinates), scored by person."""
    return [
        {"image_id": a["image_id"], "bbox": a["bbox"], "score": PERSONS[a["person"]][1], "category_id": 1}
        for a in corner_gt["annotations"]
    ]


def test_cut_detect_perfectly_merge_gives_the_whole_image_result():
    whole = whole_gt()
    corner = cut_annotations(whole, tile_size=TILE_WH, overlap=OVERLAP)
    assert [image["corner"] for image in corner["images"]] == [
        [0, 0, 128, 96],
        [72, 0, 200, 96],
        [0, 54, 128, 150],
        [72, 54, 200, 150],
    ]
    # p1: A, C, D; p2: C; p3: C; p4: B, C  -> 7 sub-image detections, C four times
    assert sorted(a["person"] for a in corner["annotations"]) == ["A", "B", "C", "C", "C", "C", "D"]
    results = perfect_sub_image_results(corner)

    gt = load_annotations(whole, evaluation=True)
    merged = merge_corner_results(results, load_annotations(corner, evaluation=True), gt)
    boxes, scores = merged[1][0], merged[1][1]
    # the four copies of C are one box after the shift (IoU 1 > 0.5): exactly the four persons remain,
    # in whole-image coordinates, by decreasing score A, B, C, D
    expected = [[x, y, x + w, y + h] for (x, y, w, h), _ in PERSONS.values()]
    np.testing.assert_array_equal(boxes, expected)
    assert scores.tolist() == [0.9, 0.8, 0.7, 0.6]

    # scored: every person found once, no false positive -> AP 100 and MR 0 wherever there is GT
    results_merged = evaluate(whole, results, corners=corner)
    assert results_merged["AP50_all"] == pytest.approx(100.0) and results_merged["AP75_all"] == pytest.approx(100.0)
    assert results_merged["MR50_all"] == 0.0
    whole_image = evaluate(
        whole, [{"image_id": 1, "bbox": bbox, "score": score, "category_id": 1} for bbox, score in PERSONS.values()]
    )
    assert list(results_merged) == list(whole_image)
    np.testing.assert_array_equal(list(results_merged.values()), list(whole_image.values()))  # NaN == NaN
    # without the corner file the sub-image ids 2..4 are not images of the whole-image GT
    with pytest.raises(InputError, match=r"--corners.*\[\d\]\.image_id"):
        evaluate(whole, results)


def test_merge_uses_the_legacy_plus_one_pixel_nms():
    # Two detections of one person from p1 and p2, whole-image coordinates:
    #   d1 (p1, score 0.9) x 80..90, y 10..20       d2 (p2, score 0.8) x 80..90, y 10..30
    # plain IoU: intersection 10*10 = 100, union 100 + 200 - 100 = 200 -> 0.5, not > 0.5: both kept
    # +1 px:     intersection 11*11 = 121, union 121 + 11*21 - 121 = 231 -> 0.5238 > 0.5: d2 removed
    whole = whole_gt()
    corner = cut_annotations(whole, tile_size=TILE_WH, overlap=OVERLAP)
    results = [
        {"image_id": 1, "bbox": [80, 10, 10, 10], "score": 0.9, "category_id": 1},
        {"image_id": 2, "bbox": [80 - 72, 10, 10, 20], "score": 0.8, "category_id": 1},
    ]
    merged = merge_corner_results(
        results, load_annotations(corner, evaluation=True), load_annotations(whole, evaluation=True)
    )
    np.testing.assert_array_equal(merged[1][0], [[80, 10, 90, 20]])
    assert merged[1][1].tolist() == [0.9]


def test_merge_keeps_the_file_scores_and_refuses_mismatched_files():
    whole = whole_gt()
    corner = cut_annotations(whole, tile_size=TILE_WH, overlap=OVERLAP)
    gt, corners = load_annotations(whole, evaluation=True), load_annotations(corner, evaluation=True)
    score = 0.123456789012345678  # more digits than float32 holds
    merged = merge_corner_results([{"image_id": 1, "bbox": [1, 1, 5, 5], "score": score}], corners, gt)
    assert merged[1][1].tolist() == [score]

    other = json.loads(json.dumps(whole))
    other["images"][0]["file_name"] = "other.jpg"
    with pytest.raises(InputError, match=r"images\[0\]\.file_name: expected a file_name of .*got big.jpg"):
        merge_corner_results([], corners, load_annotations(other, evaluation=True))
    two = json.loads(json.dumps(whole))
    two["images"].append({"id": 2, "file_name": "second.jpg", "width": 200, "height": 150})
    with pytest.raises(InputError, match="1 images of the ground truth have no sub-image.*second.jpg"):
        merge_corner_results([], corners, load_annotations(two, evaluation=True))
    with pytest.raises(InputError, match="not a corner"):
        evaluate(whole, [], corners=whole)


def test_val_merges_corner_results(tmp_path, capsys, monkeypatch):
    whole = whole_gt()
    corner = cut_annotations(whole, tile_size=TILE_WH, overlap=OVERLAP)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "whole.json").write_text(json.dumps(whole))
    (tmp_path / "corner.json").write_text(json.dumps(corner))
    (tmp_path / "res.json").write_text(json.dumps(perfect_sub_image_results(corner)))
    assert main(["val", "--results", "res.json", "--annotations", "whole.json", "--corners", "corner.json"]) == 0
    out = capsys.readouterr().out
    assert "sub-image results of corner.json merged into whole images" in out and "AP50_tiny 100.00" in out
    # the corner file given as the ground truth: val asks for the whole-image file
    assert main(["val", "--results", "res.json", "--annotations", "corner.json"]) == 2
    assert "--corners" in capsys.readouterr().err
