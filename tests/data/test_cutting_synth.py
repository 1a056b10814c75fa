"""Cutting whole images into corner pieces, and the synthetic data set."""

import json

import numpy as np
import pytest
from sspnet.runtime.tiling import tile_grid

from sspnet.cli import main as sspnet_main
from sspnet.data.cutting import cut_annotation_file, cut_annotations
from sspnet.data.synth import write_dataset
from sspnet.data.tinyperson import load_annotations


def whole_image_json(width, height, boxes):
    return {
        "images": [{"id": 1, "file_name": "big.jpg", "width": width, "height": height}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 1,
                "bbox": list(b),
                "area": b[2] * b[3],
                "category_id": 2,
                "ignore": k == 3,
                "uncertain": False,
                "iscrowd": 0,
            }
            for k, b in enumerate(boxes)
        ],
        "categories": [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}],
    }


def test_cut_1920x1080_keep_rule():
    boxes = [
        (630, 100, 20, 20),  # 10 px of 20 inside piece 0: sqrt(200 / 400) = 0.707 -> kept there
        (631, 200, 20, 20),  # 9 px inside piece 0: sqrt(180 / 400) = 0.67 -> dropped there
        (100, 100, 10, 10),  # inside piece 0 only
        (1500, 900, 50, 50),  # an ignore box, fully inside the bottom-right pieces
    ]
    out = cut_annotations(whole_image_json(1920, 1080, boxes), tile_size=(640, 512), overlap=30)
    grid = tile_grid(1080, 1920, 512, 640, 30)
    assert [p["corner"] for p in out["images"]] == grid.tolist()
    assert all(p["file_name"] == "big.jpg" and p["width"] == 640 and p["height"] == 512 for p in out["images"])
    assert out["old_images"][0]["width"] == 1920
    piece0 = [a for a in out["annotations"] if a["image_id"] == 1]
    assert [a["bbox"] for a in piece0] == [[630, 100, 10, 20], [100, 100, 10, 10]]
    piece1 = [a for a in out["annotations"] if a["image_id"] == 2]  # corner x 610
    assert [a["bbox"] for a in piece1] == [[20, 100, 20, 20], [21, 200, 20, 20]]
    ignore = [a for a in out["annotations"] if a["ignore"]]
    corners = {p["id"]: p["corner"] for p in out["images"]}
    for a in ignore:  # flags kept, boxes shifted by the corner
        x1, y1 = corners[a["image_id"]][:2]
        assert [a["bbox"][0] + x1, a["bbox"][1] + y1] == [1500, 900]
    assert len(ignore) == sum(1 for c in grid if c[0] <= 1500 and c[2] >= 1550 and c[1] <= 900 and c[3] >= 950)


def test_small_image_is_one_piece_and_loader_reads_pieces(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(tmp_path / "big.jpg")
    src, dst = tmp_path / "whole.json", tmp_path / "cut" / "pieces.json"
    src.write_text(json.dumps(whole_image_json(400, 300, [(10, 10, 5, 10)])))
    out = cut_annotation_file(src, dst)
    assert [p["corner"] for p in out["images"]] == [[0, 0, 400, 300]]
    loaded = load_annotations(dst, image_root=tmp_path)
    assert loaded.report.ok and loaded.records[0].corner == (0, 0, 400, 300)
    with pytest.raises(ValueError, match="already a corner piece"):
        cut_annotations(out)
    empty = cut_annotations(whole_image_json(1920, 1080, [(10, 10, 5, 10)]), drop_empty=True)
    assert len(empty["images"]) == 1


def test_synth_is_deterministic_and_tinyperson_like(tmp_path):
    a = write_dataset(tmp_path / "a", images=6, seed=11, val_fraction=0.34, progress=False)
    write_dataset(tmp_path / "b", images=6, seed=11, val_fraction=0.34, progress=False)
    write_dataset(tmp_path / "c", images=2, seed=12, val_fraction=0.5, progress=False)
    for name in (
        "annotations/train.json",
        "annotations/val.json",
        "images/synth_000000.jpg",
        "images/synth_000005.jpg",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/images/synth_000000.jpg").read_bytes() != (
        tmp_path / "c/images/synth_000000.jpg"
    ).read_bytes()
    assert a["train"]["images"] == 4 and a["val"]["images"] == 2

    boxes, flags = [], {"ignore": 0, "uncertain": 0}
    for split in ("train", "val"):
        data = json.loads((tmp_path / "a" / "annotations" / f"{split}.json").read_text())
        assert {c["name"] for c in data["categories"]} == {"sea_person", "earth_person"}
        for annotation in data["annotations"]:
            assert {"ignore", "uncertain", "in_dense_image", "bbox", "area"} <= set(annotation)
            flags["ignore"] += annotation["ignore"]
            flags["uncertain"] += annotation["uncertain"]
            if not annotation["ignore"]:
                boxes.append(annotation["bbox"])
        loaded = load_annotations(
            tmp_path / "a" / "annotations" / f"{split}.json", image_root=tmp_path / "a" / "images"
        )
        assert loaded.report.ok, str(loaded.report)
        assert all((r.width, r.height) == (640, 512) for r in loaded.records)
    sizes = np.sqrt([w * h for _, _, w, h in boxes])
    assert len(sizes) > 30
    assert sizes.min() >= 2 and sizes.max() <= 31
    assert (sizes < 20).mean() > 0.6 and (sizes < 8).mean() > 0.15
    assert flags["uncertain"] > 0


def test_synth_command(tmp_path, capsys):
    assert (
        sspnet_main(["synth", str(tmp_path / "s"), "--images", "2", "--seed", "1", "--size", "320", "256", "--quiet"])
        == 0
    )
    data = json.loads((tmp_path / "s/annotations/train.json").read_text())
    assert data["images"][0]["width"] == 320 and data["images"][0]["height"] == 256
    assert "images/s" in capsys.readouterr().out


# --- a user's mistakes and the user's data ------------------------------------------------------------


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _synth(capsys, *argv):
    code = sspnet_main(["synth", *map(str, argv), "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--images", "0"], "--images: expected an integer from 2"),
        (["--images", "-3"], "--images: expected an integer from 2"),
        (["--images", "1"], "--images: expected an integer from 2"),
        (["--size", "10", "10"], "--size: expected W and H each between 64 and 8192 pixels, got 10 10"),
        (["--size", "9000", "64"], "--size: expected W and H each between 64 and 8192 pixels, got 9000 64"),
        (["--val-fraction", "2"], "--val-fraction: expected a number between 0 and 1 (exclusive), got 2.0"),
        (["--val-fraction", "0"], "--val-fraction: expected a number between 0 and 1"),
        (["--val-fraction", "nan"], "--val-fraction: expected a number between 0 and 1"),
        (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
    ],
)
def test_synth_bad_settings_are_one_line_and_write_nothing(tmp_path, capsys, argv, fragment):
    code, err = _synth(capsys, tmp_path / "s", *argv)
    assert code == 2 and err.startswith("sspnet synth: ") and len(err.strip().splitlines()) == 1
    assert fragment in err
    assert list(tmp_path.iterdir()) == []


def test_synth_refuses_a_file_and_an_unwritable_place(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    code, err = _synth(capsys, notes, "--images", "2")
    assert code == 2 and f"refusing to write {notes}: it is an existing text file" in err
    assert notes.read_text() == "keep me"
    code, err = _synth(capsys, "/proc/sspnet-synth-out", "--images", "2")  # nobody, not even root, writes there
    assert code == 2 and err.startswith("sspnet synth: ") and "/proc/sspnet-synth-out" in err


def test_synth_refuses_an_existing_folder_it_cannot_write_into(tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    def refuse(dir=None, **kwargs):  # what a read-only folder does (root ignores chmod, so simulate it)
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    code, err = _synth(capsys, tmp_path / "s", "--images", "2")
    assert code == 2 and f"cannot write into {tmp_path / 's' / 'images'} (Permission denied)" in err


def test_synth_refuses_a_real_data_set_and_rewrites_its_own_output(tmp_path, capsys):
    real = tmp_path / "real"
    (real / "annotations").mkdir(parents=True)
    (real / "images").mkdir()
    (real / "annotations" / "tiny_set_train.json").write_text(json.dumps(whole_image_json(64, 64, [(1, 1, 5, 5)])))
    (real / "images" / "big.jpg").write_bytes(b"\xff\xd8\xff user photo")
    before = _snapshot(real)
    code, err = _synth(capsys, real, "--images", "2", "--size", "64", "64")
    assert (
        code == 2 and f"{real / 'annotations' / 'tiny_set_train.json'} is an annotation file synth did not write" in err
    )
    assert _snapshot(real) == before

    out = tmp_path / "s"
    assert _synth(capsys, out, "--images", "3", "--size", "64", "64")[0] == 0
    first = _snapshot(out)
    assert json.loads(first["annotations/train.json"])["info"]["generator"] == "sspnet synth"
    assert _synth(capsys, out, "--images", "3", "--size", "64", "64")[0] == 0  # its own output: allowed
    assert _snapshot(out) == first  # same seed, same bytes, and no temporary file left behind


def test_interrupted_synth_leaves_no_annotations_that_mismatch_the_images(tmp_path, monkeypatch):
    from sspnet.data import synth

    out = tmp_path / "s"
    write_dataset(out, 4, seed=1, size=(64, 64), progress=False)
    real_generate, calls = synth.generate_image, []

    def dies_at_the_third_image(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_generate(*args)

    monkeypatch.setattr(synth, "generate_image", dies_at_the_third_image)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(out, 4, seed=2, size=(64, 64), progress=False)
    assert list((out / "annotations").iterdir()) == []
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"synth_{k:06d}.jpg" for k in range(4)]


def test_cutting_refuses_to_overwrite_its_source(tmp_path):
    from sspnet.errors import OutputConflictError

    src = tmp_path / "whole.json"
    src.write_text(json.dumps(whole_image_json(400, 300, [(10, 10, 5, 10)])))
    before = src.read_bytes()
    with pytest.raises(OutputConflictError, match="it is an input of this command"):
        cut_annotation_file(src, src)
    (tmp_path / "link.json").hardlink_to(src)
    with pytest.raises(OutputConflictError, match="same file"):
        cut_annotation_file(src, tmp_path / "link.json")
    assert src.read_bytes() == before
    cut_annotation_file(src, tmp_path / "pieces.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pieces.json", "whole.json"]
