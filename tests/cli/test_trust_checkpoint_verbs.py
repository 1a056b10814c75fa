"""`sspnet convert / export / build-engine / info / doctor` with bad input, run as a user would
(subprocesses): exit 2, one line naming the file or option, no traceback, every input unchanged"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]


def sspnet(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SSPNET_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sspnet", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(run: subprocess.CompletedProcess, verb: str, *named: str) -> str:
    """The one error line of a refused command, after checking exit code and form."""
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sspnet {verb}: "), run.stderr
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path) -> Path:
    """A folder of inputs: an original-style .pth, an sspnet checkpoint, a JPEG, an image folder."""
    torch.save(
        {"meta": {"CLASSES": "person"}, "state_dict": {"bbox_head.conv_reg.weight": torch.zeros(4)}},
        tmp_path / "original.pth",
    )
    info = {"format": "sspnet-checkpoint", "format_version": 1, "preset": "fovea_r18_sspnet_small"}
    save_file({"w": torch.zeros(8)}, str(tmp_path / "best.safetensors"), metadata={"sspnet": json.dumps(info)})
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    return tmp_path


# ---- convert ----------------------------------------------------------------------------------


def test_convert_in_in_is_refused_and_the_input_kept(files):
    before = hashes(files)
    line = refused(sspnet("convert", "original.pth", "original.pth", cwd=files), "convert", "original.pth")
    assert "input" in line
    assert hashes(files) == before


def test_convert_refuses_an_output_holding_another_kind_of_file(files):
    before = hashes(files)
    line = refused(sspnet("convert", "original.pth", "photo.jpg", cwd=files), "convert", "photo.jpg")
    assert "image" in line
    assert hashes(files) == before


# ---- export -----------------------------------------------------------------------------------


def test_export_out_naming_the_checkpoint_is_refused(files):
    before = hashes(files)
    refused(sspnet("export", "best.safetensors", "--out", "best.safetensors", cwd=files), "export", "best.safetensors")
    assert hashes(files) == before


def test_export_out_an_existing_folder_is_refused_at_once(files):
    before = hashes(files)
    start = time.monotonic()
    line = refused(sspnet("export", "best.safetensors", "--out", "images", cwd=files), "export", "images")
    assert "folder" in line and time.monotonic() - start < 10
    assert hashes(files) == before


def test_export_imgsz_not_a_multiple_of_32_fails_at_once(files):
    start = time.monotonic()
    line = refused(sspnet("export", "best.safetensors", "--imgsz", "100", "100", cwd=files), "export", "--imgsz")
    assert time.monotonic() - start < 10
    assert "multiples of 32" in line and "100 100" in line


@pytest.mark.parametrize(
    "args, named",
    [
        (["--batch", "0"], "--batch"),
        (["--opset", "12"], "--opset"),
        (["--verify", "--verify-images", "no_such_folder"], "no_such_folder"),
        (["--preset", "fovea_r99"], "fovea_r99"),
    ],
)
def test_export_bad_arguments_are_named_before_any_work(files, args, named):
    before = hashes(files)
    refused(sspnet("export", "original.pth", "--out", "m.onnx", *args, cwd=files), "export", named)
    assert hashes(files) == before and not (files / "m.onnx").exists()


def _truncated(folder: Path) -> Path:
    data = (folder / "best.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[:-10])
    return folder / "cut.safetensors"


def _renamed(folder: Path) -> Path:
    (folder / "renamed.safetensors").write_bytes((folder / "photo.jpg").read_bytes())
    return folder / "renamed.safetensors"


def _renamed_pth(folder: Path) -> Path:
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(2)}}, folder / "was_a_pth.safetensors")
    return folder / "was_a_pth.safetensors"


def _empty(folder: Path) -> Path:
    (folder / "empty.safetensors").write_bytes(b"")
    return folder / "empty.safetensors"


def _corrupt_header(folder: Path) -> Path:
    data = bytearray((folder / "best.safetensors").read_bytes())
    data[10:30] = b"\x00" * 20
    (folder / "corrupt.safetensors").write_bytes(bytes(data))
    return folder / "corrupt.safetensors"


def _random_pth(folder: Path) -> Path:
    (folder / "random.pth").write_bytes(b"\x07" + os.urandom(2047))
    return folder / "random.pth"


@pytest.mark.parametrize(
    "make, words",
    [
        (_empty, "empty"),
        (_truncated, "truncated"),
        (_corrupt_header, "not valid JSON"),
        (_renamed, "got an image"),
        (_renamed_pth, "cannot tell the variant"),  # read as the .pth it is; its keys are the problem
        (_random_pth, "not a torch checkpoint"),
    ],
)
def test_unusable_checkpoint_files_give_one_line_naming_the_file(files, make, words):
    path = make(files)
    before = hashes(files)
    line = refused(sspnet("export", path.name, "--out", "m.onnx", cwd=files), "export", path.name, words)
    assert "refusing to unpickle" not in line and "SafetensorError" not in line
    assert hashes(files) == before


def test_export_missing_checkpoint_names_it(files):
    refused(sspnet("export", "absent.safetensors", cwd=files), "export", "absent.safetensors", "does not exist")


# ---- build-engine -----------------------------------------------------------------------------


def test_build_engine_missing_onnx_is_a_missing_file_not_a_tensorrt_problem(files):
    line = refused(
        sspnet("build-engine", "absent_trt.onnx", "--out", "m.engine", cwd=files),
        "build-engine",
        "absent_trt.onnx",
        "No such file",
    )
    assert "TensorRT" not in line and "tensorrt" not in line


def test_build_engine_refuses_to_overwrite_its_onnx(files):
    from onnx import TensorProto, helper
    from sspnet.export.onnx_export import save_onnx

    metadata = {
        "sspnet_version": "0.1.0",
        "preset": "fovea_r18_sspnet_small",
        "variant": "fovea",
        "classes": json.dumps(["person"]),
        "input_size": json.dumps([32, 32]),
        "max_detections": "4",
        "score_threshold": "0.05",
        "nms": json.dumps({"method": "hard", "iou_threshold": 0.5}),
        "flavor": "tensorrt",
        "batch": "dynamic",
    }
    images = helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", 3, 32, 32])
    out = helper.make_tensor_value_info("out", TensorProto.UINT8, ["N", 3, 32, 32])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [images], [out])
    )
    helper.set_model_props(model, metadata)
    save_onnx(model, files / "m_trt.onnx")
    before = hashes(files)
    for flag in ("--out", "--engine"):  # --engine is the old name of --out
        line = refused(
            sspnet("build-engine", "m_trt.onnx", flag, "m_trt.onnx", cwd=files), "build-engine", "m_trt.onnx"
        )
        assert "input" in line
    refused(sspnet("build-engine", "m_trt.onnx", "--timing-cache", "photo.jpg", cwd=files), "build-engine", "photo.jpg")
    assert hashes(files) == before


# ---- info, doctor -----------------------------------------------------------------------------


def test_info_unknown_preset_is_one_line(files):
    refused(sspnet("info", "--model", "fovea_r99", cwd=files), "info", "--model", "fovea_r99")


def test_doctor_refuses_bad_arguments_before_any_check(files):
    refused(sspnet("doctor", "--imgsz", "100", "100", cwd=files), "doctor", "--imgsz")
    refused(sspnet("doctor", "--portable-onnx", "x.onnx", cwd=files), "doctor", "--portable-onnx")
    before = hashes(files)
    (files / "work").mkdir()
    (files / "work" / "doctor_trt.onnx").write_bytes((files / "photo.jpg").read_bytes())
    refused(sspnet("doctor", "--workdir", "work", cwd=files), "doctor", "doctor_trt.onnx")
    assert hashes(files) == {**before, "work/doctor_trt.onnx": before["photo.jpg"]}
