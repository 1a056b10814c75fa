"""Model files (ONNX, engine sidecar, calibration data) are written atomically, and build-engine's
output paths are checked before any TensorRT work."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sspnet.export.onnx_export import save_onnx
from sspnet.runtime import engine_builder as eb
from sspnet.runtime.sidecar import write_sidecar

from sspnet.errors import OutputConflictError, UsageError


def tiny_onnx(doc: str) -> onnx.ModelProto:
    images = helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "tiny", [images], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=doc)
    model.ir_version = 8
    return model


def test_save_onnx_writes_a_loadable_model(tmp_path):
    path = save_onnx(tiny_onnx("v1"), tmp_path / "m.onnx")
    assert onnx.load(str(path)).doc_string == "v1"
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_a_failure_mid_write_leaves_the_older_onnx_intact(tmp_path, monkeypatch):
    path = save_onnx(tiny_onnx("old"), tmp_path / "m.onnx")
    old_bytes = path.read_bytes()
    real_save = onnx.save

    def disk_full_half_way(proto, f, *args, **kwargs):
        data = proto.SerializeToString()
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save", disk_full_half_way)
    with pytest.raises(OSError) as error:
        save_onnx(tiny_onnx("new" * 1000), path)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.setattr(onnx, "save", real_save)
    assert path.read_bytes() == old_bytes and onnx.load(str(path)).doc_string == "old"
    assert os.listdir(tmp_path) == ["m.onnx"]  # the partial temporary is gone


def test_sidecar_write_failure_keeps_the_old_sidecar(tmp_path, monkeypatch):
    engine = tmp_path / "m.engine"
    sidecar = write_sidecar(engine, {"sidecar_version": 1, "note": "old"})
    assert json.loads(sidecar.read_text())["note"] == "old"

    def rename_fails(src, dst):  # e.g. the disk filled up while writing the temporary
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", rename_fails)
    with pytest.raises(OSError):
        write_sidecar(engine, {"sidecar_version": 1, "note": "new"})
    monkeypatch.undo()
    assert json.loads(sidecar.read_text())["note"] == "old"
    assert sorted(os.listdir(tmp_path)) == ["m.engine.json"]


def test_calibration_array_is_written_atomically(tmp_path):
    out = tmp_path / "calib.npy"
    batches = [np.full((2, 3, 4, 4), 7, np.uint8), np.zeros((1, 3, 4, 4), np.uint8)]
    assert eb.save_calibration_array(batches, out) == out
    assert np.load(out).shape == (3, 3, 4, 4) and os.listdir(tmp_path) == ["calib.npy"]


# ---- build-engine output paths ------------------------------------------------------------------


@pytest.fixture
def onnx_file(tmp_path) -> Path:
    return save_onnx(tiny_onnx("model"), tmp_path / "m_trt.onnx")


def test_build_outputs_default_engine_and_allowed_rewrites(onnx_file):
    options = eb.BuildOptions(precision="int8", timing_cache=onnx_file.with_name("timing.cache"))
    assert eb.check_build_outputs(onnx_file, None, options) == onnx_file.with_name("m_trt_int8.engine")
    # earlier outputs of the same kinds may be replaced: engine, sidecar, caches (text or binary)
    onnx_file.with_name("m_trt_int8.engine").write_bytes(b"\x00engine")
    onnx_file.with_name("m_trt_int8.engine.json").write_text('{"sidecar_version": 1}')
    onnx_file.with_name("timing.cache").write_bytes(bytes(range(256)))
    onnx_file.with_name("m_trt.calib").write_text("TRT-100300-EntropyCalibration2\nimages: 3c010a14\n")
    assert eb.check_build_outputs(onnx_file, None, options) == onnx_file.with_name("m_trt_int8.engine")


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(engine="ONNX"), "it is an input of this command"),
        (dict(engine="FOLDER"), "it is a folder"),
        (dict(timing_cache="ONNX"), "it is an input of this command"),
        (dict(timing_cache="ENGINE"), "name the same file"),
        (dict(calibration_cache="JSON"), "already holds a json file"),
    ],
)
def test_build_outputs_refuse_destroying_paths(onnx_file, change, words):
    folder = onnx_file.parent
    (folder / "annotations.json").write_text('{"info": "precious", "licenses": []}')
    places = {"ONNX": onnx_file, "FOLDER": folder, "ENGINE": folder / "e.engine", "JSON": folder / "annotations.json"}
    engine = places[change.pop("engine", "ENGINE")]
    options = eb.BuildOptions(precision="int8", **{k: places[v] for k, v in change.items()})
    before = {p: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises((OutputConflictError, UsageError), match=words):
        eb.check_build_outputs(onnx_file, engine, options)
    assert {p: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
