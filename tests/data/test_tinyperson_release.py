"""`sspnet data tinyperson ROOT --out DIR` on a replica of the download (tests/tinyperson_replica.py): the
checks and counts, the 640x512 / 30 px pieces against the cutting rule worked out by hand, the YAML that
`train` reads, and the user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tinyperson_replica import write_replica

from sspnet.cli import main
from sspnet.data.tinyperson import load_annotations
from sspnet.engine.config import resolve_data


@pytest.fixture
def replica(tmp_path) -> Path:
    return write_replica(tmp_path / "tiny_set")


def run_data(root, out, *extra) -> int:
    return main(["data", "tinyperson", str(root), "--out", str(out), *extra])


def test_prepare_writes_the_pieces_and_the_yaml(replica, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert run_data(replica, out) == 0
    printed = capsys.readouterr().out
    # train: 2 images, 4 counted boxes of which 1 tiny (sqrt(10 * 10) < 20), 1 ignore, 1 uncertain, no dense image
    train_row = next(line for line in printed.splitlines() if line.startswith("train "))
    assert train_row.split()[1:8] == ["tiny_set_train.json", "2", "4", "1", "1", "1", "0"]
    test_row = next(line for line in printed.splitlines() if line.startswith("test "))
    assert test_row.split()[1:8] == ["tiny_set_test.json", "1", "2", "2", "1", "0", "0"]

    pieces = json.loads((out / "annotations" / "tiny_set_train_sw640_sh512_overlap30.json").read_text())
    by_corner = {tuple(p["corner"]): p for p in pieces["images"]}
    # 1000x700 image: step 640 - 30 = 610 -> ceil(970 / 610) = 2 columns at x = 0 and 1000 - 640 = 360 (shifted
    # back inside); ceil(670 / 482) = 2 rows at y = 0 and 700 - 512 = 188. The 600x400 image is one piece.
    assert set(by_corner) == {
        (0, 0, 640, 512),
        (360, 0, 1000, 512),
        (0, 188, 640, 700),
        (360, 188, 1000, 700),
        (0, 0, 600, 400),
    }
    assert all(p["file_name"].startswith("labeled_images/") for p in pieces["images"])

    def boxes_of(corner):
        piece = by_corner[corner]
        return sorted(
            (tuple(round(v, 3) for v in a["bbox"]), a["ignore"], a["uncertain"])
            for a in pieces["annotations"]
            if a["image_id"] == piece["id"]
        )

    assert boxes_of((0, 0, 640, 512)) == [((100, 100, 6, 12), False, True), ((620, 50, 20, 20), False, False)]
    assert boxes_of((360, 0, 1000, 512)) == [
        ((260, 50, 40, 20), False, False),
        ((270, 300, 40, 20), False, False),
        ((340, 100, 10, 10), False, False),
    ]
    assert boxes_of((0, 0, 600, 400)) == [((10, 10, 25, 25), False, False)]

    # the YAML is what `train` / `val` take: train = the pieces of the erased images, val = the whole test images
    data = resolve_data(out / "tinyperson.yaml")
    assert Path(data.train.images) == (replica / "erase_with_uncertain_dataset" / "train").resolve()
    assert Path(data.val.annotations) == (replica / "annotations" / "tiny_set_test.json").resolve()
    loaded = load_annotations(data.train.annotations, data.train.images)
    assert loaded.is_corner_file and len(loaded) == len(pieces["images"]) and loaded.classes == ["person"]


def test_the_piece_rule_against_hand_worked_boxes(replica, tmp_path):
    """The bottom-left piece (0, 188)-(640, 700): the ignore region (20, 600, 30x40) -> (20, 412); the
    uncertain box at y 100..112 lies above y = 188 and is not there."""
    out = tmp_path / "prepared"
    assert run_data(replica, out) == 0
    pieces = json.loads((out / "annotations" / "tiny_set_train_sw640_sh512_overlap30.json").read_text())
    (piece,) = [p for p in pieces["images"] if p["corner"] == [0, 188, 640, 700]]
    found = [(a["bbox"], a["ignore"]) for a in pieces["annotations"] if a["image_id"] == piece["id"]]
    assert found == [([20, 412, 30, 40], True)]
    # pieces without boxes are left out: (360, 188)-(1000, 700) holds the box at y 300..320 -> kept; none empty
    assert all(any(a["image_id"] == p["id"] for a in pieces["annotations"]) for p in pieces["images"])


def test_original_images_and_dense_option(replica, tmp_path):
    out = tmp_path / "prepared"
    assert run_data(replica, out, "--images", "original", "--with-dense") == 0
    data = resolve_data(out / "tinyperson.yaml")
    assert Path(data.train.images) == (replica / "train").resolve()


def test_train_takes_the_yaml(replica, tmp_path):
    """One training iteration on the prepared data (a small preset, CPU): the YAML and the corner pieces
    reach the trainer."""
    out = tmp_path / "prepared"
    assert run_data(replica, out) == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = (
        f"train --preset fovea_r18_sspnet_small --data {out / 'tinyperson.yaml'} --out {tmp_path / 'run'} "
        "--max-iters 1 --batch-size 1 --device cpu --workers 0 --eval-every 0"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sspnet", *command.split()], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "run" / "last.safetensors").is_file()


# ---- user mistakes: one line naming the file / field, exit 2, nothing written -------------------------


def mistake(capsys, argv) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sspnet data: "), lines
    return lines[0]


def test_mistakes(replica, tmp_path, capsys):
    out = tmp_path / "prepared"
    line = mistake(capsys, ["data", "tinyperson", str(tmp_path / "nowhere"), "--out", str(out)])
    assert "nowhere" in line
    line = mistake(capsys, ["data", "tinyperson", str(replica), "--out", str(replica / "prepared")])
    assert "prepared" in line and "tiny_set" in line

    (replica / "annotations" / "tiny_set_test.json").rename(replica / "annotations" / "elsewhere.json")
    line = mistake(capsys, ["data", "tinyperson", str(replica), "--out", str(out)])
    assert "annotations/tiny_set_test.json" in line
    (replica / "annotations" / "elsewhere.json").rename(replica / "annotations" / "tiny_set_test.json")

    image = replica / "erase_with_uncertain_dataset" / "train" / "labeled_images" / "bb_V0012_I0000140.jpg"
    image.rename(image.with_suffix(".bak"))
    line = mistake(capsys, ["data", "tinyperson", str(replica), "--out", str(out)])
    assert "1 of 2 images" in line and "bb_V0012_I0000140.jpg" in line and "tiny_set_train.json" in line
    image.with_suffix(".bak").rename(image)

    (replica / "annotations" / "tiny_set_train.json").write_text('{"images": [')
    line = mistake(capsys, ["data", "tinyperson", str(replica), "--out", str(out)])
    assert "tiny_set_train.json" in line and "not a JSON" in line
    assert not out.exists()
