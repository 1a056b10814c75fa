"""sspnet.io.outputs: outputs never overwrite inputs or files of another kind."""

from __future__ import annotations

import json
import os

import pytest

from sspnet.errors import OutputConflictError
from sspnet.io.outputs import OutputGuard, sniff_kind


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    (tmp_path / "gt.json").write_text(json.dumps({"images": [], "annotations": []}))
    (tmp_path / "results.json").write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    (tmp_path / "metrics.json").write_text(json.dumps({"AP50_tiny": 61.7}))
    header = json.dumps({"__metadata__": {}}).encode()
    (tmp_path / "w.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x08\x12\x04test")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.json").write_bytes(b"")
    return tmp_path


def test_sniffed_kinds(files):
    kinds = {
        name: sniff_kind(files / name)
        for name in (
            "imgs",
            "imgs/a.jpg",
            "gt.json",
            "results.json",
            "metrics.json",
            "w.safetensors",
            "model.onnx",
            "notes.txt",
            "empty.json",
        )
    }
    assert kinds == {
        "imgs": "folder",
        "imgs/a.jpg": "image",
        "gt.json": "coco-annotations",
        "results.json": "coco-results",
        "metrics.json": "json",
        "w.safetensors": "safetensors",
        "model.onnx": "onnx",
        "notes.txt": "text",
        "empty.json": "empty",
    }


def test_an_input_is_never_an_output(files):
    guard = OutputGuard([files / "w.safetensors"], verb="convert")
    with pytest.raises(OutputConflictError) as caught:
        guard.check_file(files / "w.safetensors", "safetensors")
    assert str(files / "w.safetensors") in str(caught.value)
    # the same file through another spelling of the path
    with pytest.raises(OutputConflictError):
        guard.check_file(files / "imgs" / ".." / "w.safetensors", "safetensors")


def test_a_hard_link_to_an_input_is_refused(files):
    os.link(files / "gt.json", files / "link.json")
    guard = OutputGuard([files / "gt.json"])
    with pytest.raises(OutputConflictError, match="hard link"):
        guard.check_file(files / "link.json", "coco-annotations")


def test_a_file_of_another_kind_is_refused_but_own_earlier_output_is_not(files):
    guard = OutputGuard([])
    with pytest.raises(OutputConflictError, match="coco-annotations"):
        guard.check_file(files / "gt.json", "json")  # val --json over someone's ground truth
    with pytest.raises(OutputConflictError, match="safetensors"):
        guard.check_file(files / "w.safetensors", "onnx")  # export --out over weights
    with pytest.raises(OutputConflictError, match="text"):
        guard.check_file(files / "notes.txt", "json")
    assert guard.check_file(files / "metrics.json", "json") == files / "metrics.json"
    assert guard.check_file(files / "results.json", "coco-results")
    assert guard.check_file(files / "model.onnx", "onnx")
    assert guard.check_file(files / "empty.json", "json")
    assert guard.check_file(files / "new.json", "json")


def test_output_folders_and_inputs_never_meet(files):
    guard = OutputGuard([files / "imgs"], verb="predict")
    with pytest.raises(OutputConflictError, match="is the input folder"):
        guard.check_dir(files / "imgs")
    with pytest.raises(OutputConflictError, match="inside the input folder"):
        guard.check_dir(files / "imgs" / "pred")
    with pytest.raises(OutputConflictError, match="inside the input folder"):
        guard.check_file(files / "imgs" / "b.jpg", "image")
    assert guard.check_dir(files / "pred") == files / "pred"
    single = OutputGuard([files / "imgs" / "a.jpg"])
    with pytest.raises(OutputConflictError, match="folder of the input"):
        single.check_dir(files / "imgs")
    with pytest.raises(OutputConflictError, match="expected a folder"):
        OutputGuard([]).check_dir(files / "notes.txt")
    with pytest.raises(OutputConflictError, match="expected a file"):
        OutputGuard([]).check_file(files / "imgs", "json")
