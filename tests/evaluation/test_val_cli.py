"""`sspnet val` with bad input: every user mistake is one line naming the file / field, exit 2, no
traceback, and no input file changes. Most cases run the CLI in-process (`sspnet.cli.main`, the same
dispatcher and error handler); `test_exit_codes_in_a_real_process` runs representative cases as
subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sspnet.cli import main

OK_GT = {
    "images": [
        {"id": 1, "file_name": "1.jpg", "width": 96, "height": 64},
        {"id": 2, "file_name": "2.jpg", "width": 96, "height": 64},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "bbox": [10, 10, 8, 12], "area": 96, "category_id": 1, "iscrowd": 0},
        {"id": 2, "image_id": 2, "bbox": [30, 20, 10, 10], "area": 100, "category_id": 1, "iscrowd": 0},
    ],
    "categories": [{"id": 1, "name": "person"}],
}
OK_RESULTS = [
    {"image_id": 1, "bbox": [10, 10, 8, 12], "score": 0.9, "category_id": 1},
    {"image_id": 2, "bbox": [30, 20, 10, 10], "score": 0.8, "category_id": 1},
]


def gt_with(**changes) -> dict:
    """OK_GT with the first annotation / image record changed: changes like annotation={...}."""
    gt = json.loads(json.dumps(OK_GT))
    for key, value in changes.items():
        if key == "annotation":
            gt["annotations"][0].update(value)
        elif key == "drop_annotation_key":
            del gt["annotations"][0][value]
        elif key == "image":
            gt["images"][0].update(value)
        elif key == "drop_image_key":
            del gt["images"][0][value]
        else:
            gt[key] = value
    return gt


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A data folder (two 96x64 images, annotations/val.json), gt.json and res.json; cwd = tmp_path."""
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    (tmp_path / "data" / "annotations").mkdir()
    for i in (1, 2):
        Image.fromarray(np.full((64, 96, 3), 90, np.uint8)).save(images / f"{i}.jpg")
    (tmp_path / "data" / "annotations" / "val.json").write_text(json.dumps(OK_GT))
    (tmp_path / "gt.json").write_text(json.dumps(OK_GT))
    (tmp_path / "res.json").write_text(json.dumps(OK_RESULTS))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small untrained FoveaBox checkpoint (what it detects does not matter here)."""
    import torch

    from sspnet.checkpoint import save_checkpoint
    from sspnet.models import build_model

    overrides = {"neck_channels": 32, "fovea_feat_channels": 32, "fovea_stacked_convs": 1}
    torch.manual_seed(0)
    model = build_model("fovea_r18_sspnet_small", **overrides)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, model, preset="fovea_r18_sspnet_small", overrides=overrides)
    return path


def hashes(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_val(argv, capsys):
    code = main(["val", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(workdir, capsys, argv, *needles, write=None):
    """Write `write` {name: text} files, run val, assert exit 2, one line naming all needles, and that
    no file changed."""
    for name, text in (write or {}).items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text if isinstance(text, str) else json.dumps(text))
    before = hashes(workdir)
    code, out, err = run_val(argv, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("sspnet val: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    assert hashes(workdir) == before
    return err


# ------------------------------------------------------------------------------ ground truth

R = ["--results", "res.json", "--annotations", "gt.json"]

GT_CASES = {
    "missing file": (["--results", "res.json", "--annotations", "none.json"], None, ["none.json", "not found"]),
    "empty": (R, "", ["gt.json", "empty"]),
    "invalid JSON": (R, '{"images": [', ["gt.json", "not valid JSON", "line 1 column"]),
    "a list": (R, "[1, 2]", ["gt.json", "not an annotation file"]),
    "no images key": (R, {"annotations": [], "categories": OK_GT["categories"]}, ["gt.json", "images"]),
    "no images": (R, gt_with(images=[]), ["gt.json", "no images"]),
    "no annotations key": (
        R,
        {"images": OK_GT["images"], "categories": OK_GT["categories"]},
        ["gt.json", "annotations"],
    ),
    "no categories": (R, gt_with(categories=[]), ["gt.json", "categories"]),
    "bbox missing": (R, gt_with(drop_annotation_key="bbox"), ["gt.json", "annotations[0].bbox"]),
    "bbox of strings": (R, gt_with(annotation={"bbox": ["10", 10, 8, 12]}), ["gt.json", "annotations[0].bbox"]),
    "bbox NaN": (
        R,
        '{"images": [{"id": 1, "file_name": "1.jpg", "width": 96, "height": 64}], "annotations": '
        '[{"id": 1, "image_id": 1, "bbox": [NaN, 1, 2, 3], "category_id": 1}], '
        '"categories": [{"id": 1, "name": "person"}]}',
        ["gt.json", "annotations[0].bbox"],
    ),
    "image_id a string": (R, gt_with(annotation={"image_id": "1"}), ["gt.json", "annotations[0].image_id"]),
    "negative width": (
        R,
        gt_with(annotation={"bbox": [10, 10, -8, 12]}),
        ["gt.json", "annotations[0].bbox", "negative"],
    ),
    "box outside the image": (
        R,
        gt_with(annotation={"bbox": [200, 10, 8, 12]}),
        ["gt.json", "annotations[0].bbox", "outside"],
    ),
    "unknown image id": (R, gt_with(annotation={"image_id": 9}), ["gt.json", "annotations[0].image_id"]),
    "unknown category": (R, gt_with(annotation={"category_id": 5}), ["gt.json", "annotations[0].category_id"]),
    "bad flag": (R, gt_with(annotation={"ignore": "yes"}), ["gt.json", "annotations[0].ignore"]),
    "negative area": (R, gt_with(annotation={"area": -4}), ["gt.json", "annotations[0].area"]),
    "duplicate image id": (R, gt_with(image={"id": 2}), ["gt.json", "images[1].id"]),
    "image without width": (R, gt_with(drop_image_key="width"), ["gt.json", "images[0].width"]),
    "image id a float": (R, gt_with(image={"id": 1.5}), ["gt.json", "images[0].id"]),
}


@pytest.mark.parametrize("case", sorted(GT_CASES))
def test_bad_ground_truth(workdir, capsys, case):
    argv, content, needles = GT_CASES[case]
    assert_refused(workdir, capsys, argv, *needles, write=None if content is None else {"gt.json": content})


def test_annotation_path_is_a_folder(workdir, capsys):
    assert_refused(workdir, capsys, ["--results", "res.json", "--annotations", "data"], "data", "folder")


def test_corner_file_as_ground_truth_asks_for_the_whole_images(workdir, capsys):
    corner = gt_with(image={"corner": [0, 0, 48, 32]})
    assert_refused(workdir, capsys, R, "gt.json", "sub-images", "--corners", write={"gt.json": corner})


def test_all_dense_or_all_ignored_is_not_a_result(workdir, capsys):
    dense = json.loads(json.dumps(OK_GT))
    for a in dense["annotations"]:
        a["in_dense_image"] = True
    assert_refused(workdir, capsys, R, "gt.json", "dense", write={"gt.json": dense})
    ignored = json.loads(json.dumps(OK_GT))
    for a in ignored["annotations"]:
        a["ignore"] = True
    assert_refused(workdir, capsys, R, "gt.json", "nothing to evaluate", write={"gt.json": ignored})


# -------------------------------------------------------------------------------- results file

RESULT_CASES = {
    "missing file": (["--results", "none.json", "--annotations", "gt.json"], None, ["none.json", "not found"]),
    "empty": (R, "", ["res.json", "empty"]),
    "invalid JSON": (R, "[{", ["res.json", "not valid JSON"]),
    "an object": (R, {"image_id": 1}, ["res.json", "not a COCO results file"]),
    "a number in the list": (R, [3], ["res.json", "[0]"]),
    "no image_id": (R, [{"bbox": [1, 1, 2, 2], "score": 0.5}], ["res.json", "[0].image_id"]),
    "image_id a string": (R, [{"image_id": "1", "bbox": [1, 1, 2, 2], "score": 0.5}], ["res.json", "[0].image_id"]),
    "no score": (R, [{"image_id": 1, "bbox": [1, 1, 2, 2]}], ["res.json", "[0].score"]),
    "score a string": (R, [{"image_id": 1, "bbox": [1, 1, 2, 2], "score": "high"}], ["res.json", "[0].score"]),
    "bbox of three": (R, [{"image_id": 1, "bbox": [1, 1, 2], "score": 0.5}], ["res.json", "[0].bbox"]),
    "negative height": (R, [{"image_id": 1, "bbox": [1, 1, 2, -2], "score": 0.5}], ["res.json", "[0].bbox"]),
    "NaN score": (
        R,
        '[{"image_id": 1, "bbox": [1, 1, 2, 2], "score": 0.5}, {"image_id": 1, "bbox": [1, 1, 2, 2], "score": NaN}]',
        ["res.json", "[1].score", "got NaN", "1 of 2 records"],
    ),
    "inf in a box": (
        R,
        '[{"image_id": 1, "bbox": [1, 1, Infinity, 2], "score": 0.5}]',
        ["res.json", "[0].bbox", "inf"],
    ),
    "null score": (R, [{"image_id": 1, "bbox": [1, 1, 2, 2], "score": None}], ["res.json", "[0].score", "null"]),
    "unknown image id": (
        R,
        OK_RESULTS + [{"image_id": 7, "bbox": [1, 1, 2, 2], "score": 0.5}],
        ["res.json", "[2].image_id", "got 7", "--corners"],
    ),
    "a folder": (["--results", "data", "--annotations", "gt.json"], None, ["data", "folder"]),
}


@pytest.mark.parametrize("case", sorted(RESULT_CASES))
def test_bad_results(workdir, capsys, case):
    argv, content, needles = RESULT_CASES[case]
    assert_refused(workdir, capsys, argv, *needles, write=None if content is None else {"res.json": content})


# ------------------------------------------------------------------------------------ arguments

ARGUMENT_CASES = {
    "neither source": (["--annotations", "gt.json"], ["--results", "--checkpoint"]),
    "both sources": (
        ["--results", "res.json", "--checkpoint", "m.safetensors", "--annotations", "gt.json"],
        ["exactly one"],
    ),
    "no ground truth": (["--results", "res.json"], ["--annotations"]),
    "model option with results": (R + ["--tile", "512", "640"], ["--tile", "--checkpoint"]),
    "published with results": (R + ["--published"], ["--published"]),
    "checkpoint without images": (["--checkpoint", "m.safetensors", "--annotations", "gt.json"], ["--data"]),
    "tile not a multiple of 32": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--tile", "100", "100"],
        ["--tile", "multiples of 32", "100 100"],
    ),
    "overlap too large": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--tile", "64", "64", "--overlap", "64"],
        ["--overlap", "64"],
    ),
    "overlap without tiles": (["--checkpoint", "m.safetensors", "--data", "data", "--overlap", "8"], ["--overlap"]),
    "batch 0": (["--checkpoint", "m.safetensors", "--data", "data", "--batch", "0"], ["--batch"]),
    "published with tiles": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--published", "--tile", "64", "64"],
        ["--published"],
    ),
    "corners with a checkpoint": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--corners", "gt.json"],
        ["--corners"],
    ),
    "data folder without annotations": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--split", "test"],
        ["data", "annotations/test.json"],
    ),
    "data folder missing": (["--checkpoint", "m.safetensors", "--data", "nowhere"], ["nowhere", "not found"]),
    "json and save-results the same": (
        ["--checkpoint", "m.safetensors", "--data", "data", "--json", "o.json", "--save-results", "o.json"],
        ["same file", "o.json"],
    ),
}


@pytest.mark.parametrize("case", sorted(ARGUMENT_CASES))
def test_bad_arguments(workdir, capsys, case):
    argv, needles = ARGUMENT_CASES[case]
    assert_refused(workdir, capsys, argv, *needles)


# -------------------------------------------------------------------------------------- outputs


def test_json_naming_the_annotation_file_is_refused_and_gt_unchanged(workdir, capsys):
    err = assert_refused(workdir, capsys, R + ["--json", "gt.json"], "gt.json", "input")
    assert "refusing to write" in err


def test_save_results_naming_the_annotation_file_is_refused(workdir, capsys, checkpoint):
    assert_refused(
        workdir,
        capsys,
        ["--checkpoint", str(checkpoint), "--data", "data", "--save-results", "data/annotations/val.json"],
        "val.json",
        "refusing",
    )


def test_outputs_that_would_replace_another_kind_of_file(workdir, capsys):
    assert_refused(workdir, capsys, R + ["--json", "data/images/1.jpg"], "1.jpg", "image")
    assert_refused(workdir, capsys, R + ["--json", "data"], "data", "folder")


# ----------------------------------------------------------------------------------- checkpoints


def test_checkpoint_missing_empty_or_corrupt(workdir, capsys):
    base = ["--data", "data"]
    assert_refused(workdir, capsys, ["--checkpoint", "none.safetensors", *base], "none.safetensors")
    assert_refused(
        workdir,
        capsys,
        ["--checkpoint", "empty.safetensors", *base],
        "empty.safetensors",
        write={"empty.safetensors": ""},
    )
    (workdir / "random.safetensors").write_bytes(os.urandom(256))
    assert_refused(workdir, capsys, ["--checkpoint", "random.safetensors", *base], "random.safetensors")


def test_images_missing_or_unreadable_on_disk(workdir, capsys, checkpoint):
    (workdir / "data" / "images" / "2.jpg").unlink()
    assert_refused(
        workdir, capsys, ["--checkpoint", str(checkpoint), "--data", "data"], "val.json", "images[1].file_name", "2.jpg"
    )
    (workdir / "data" / "images" / "2.jpg").write_bytes(b"not a jpeg")
    assert_refused(
        workdir,
        capsys,
        ["--checkpoint", str(checkpoint), "--data", "data"],
        "val.json",
        "images[1].file_name",
        "cannot read",
    )


def test_checkpoint_evaluation_writes_results_and_metrics(workdir, capsys, checkpoint):
    code, out, err = run_val(
        [
            "--checkpoint",
            str(checkpoint),
            "--data",
            "data",
            "--tile",
            "32",
            "64",
            "--overlap",
            "8",
            "--json",
            "out/metrics.json",
            "--save-results",
            "out/dets.json",
        ],
        capsys,
    )
    assert code == 0, err
    assert "test setting: 32x64 tiles (H x W), overlap 8 px" in out and "--published" in out
    metrics = json.loads((workdir / "out" / "metrics.json").read_text())
    assert metrics["setting"]["tile_hw"] == [32, 64] and "AP50_tiny" in metrics
    assert isinstance(json.loads((workdir / "out" / "dets.json").read_text()), list)
    code, out, err = run_val(["--checkpoint", str(checkpoint), "--data", "data", "--published"], capsys)
    assert code == 0, err
    assert "test setting: published (whole images at 1280x1024 and 1920x1536 keep-ratio, soft-NMS" in out
    assert "NMS linear IoU 0.3" in out


def test_results_evaluation_prints_the_setting(workdir, capsys):
    code, out, err = run_val(R + ["--mr", "official", "--json", "m.json"], capsys)
    assert code == 0, err
    assert "test setting: detections read from res.json" in out and "MR official" in out
    document = json.loads((workdir / "m.json").read_text())
    assert document["AP50_all"] == 100.0 and document["setting"]["mr_mode"] == "official"


# ------------------------------------------------------------------------------- real processes


@pytest.mark.parametrize(
    "argv, write, needle",
    [
        (R, {"res.json": '[{"image_id": 1, "bbox": [1, 1, 2, 2], "score": NaN}]'}, "[0].score"),
        (R, {"gt.json": gt_with(annotation={"bbox": [10, 10, -8, 12]})}, "annotations[0].bbox"),
        (R + ["--json", "gt.json"], {}, "refusing to write gt.json"),
        (["--checkpoint", "m.safetensors", "--data", "data", "--tile", "100", "96"], {}, "--tile"),
    ],
)
def test_exit_codes_in_a_real_process(workdir, argv, write, needle):
    for name, text in write.items():
        (workdir / name).write_text(text if isinstance(text, str) else json.dumps(text))
    before = hashes(workdir)
    done = subprocess.run(
        [sys.executable, "-m", "sspnet", "val", *argv], capture_output=True, text=True, timeout=300, cwd=workdir
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and needle in done.stderr and done.stderr.count("\n") == 1
    assert hashes(workdir) == before
