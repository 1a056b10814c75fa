"""Checkpoint file I/O (sspnet.io.checkpoint_files): imports no model code, and every unusable file
is reported as an InputError naming the file and what is wrong with it."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sspnet.errors import InputError
from sspnet.io.checkpoint_files import (
    check_checkpoint_file,
    checkpoint_format,
    read_checkpoint,
    read_mmdet_checkpoint,
    torch_load_restricted,
)

REPO = Path(__file__).resolve().parents[2]


def test_checkpoint_files_imports_no_model_code_and_no_torch():
    code = (
        "import sys, sspnet.io.checkpoint_files\n"
        "print([m for m in sys.modules if m.startswith('sspnet.models') or m == 'torch'])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def _imported_modules(source: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_model_code_never_imports_sspnet_checkpoint():
    """The cycle checkpoint -> presets -> detectors -> backbone -> checkpoint stays broken: model
    modules use sspnet.io.checkpoint_files (imports inside functions count too)."""
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imported_modules(path) if n.startswith("sspnet.checkpoint"))
        for path in (REPO / "sspnet" / "models").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    io_imports = set().union(*(_imported_modules(p) for p in (REPO / "sspnet" / "io").glob("*.py")))
    assert not [n for n in io_imports if n.startswith(("sspnet.models", "sspnet.checkpoint"))]


# ---- broken files -------------------------------------------------------------------------------


@pytest.fixture
def good_checkpoint(tmp_path) -> Path:
    path = tmp_path / "good.safetensors"
    info = {"format": "sspnet-checkpoint", "format_version": 1, "preset": "fovea_r18_sspnet_small"}
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(path), metadata={"sspnet": json.dumps(info)})
    return path


def _message(call, path) -> str:
    with pytest.raises(InputError) as error:
        call(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    return message


def test_good_checkpoint_reads(good_checkpoint):
    state, info = read_checkpoint(good_checkpoint)
    assert torch.equal(state["w"], torch.arange(64, dtype=torch.float32)) and info["preset"] == "fovea_r18_sspnet_small"
    assert check_checkpoint_file(good_checkpoint) == "safetensors"


def test_empty_safetensors_is_named_empty(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert "empty" in _message(read_checkpoint, path)
    assert "empty" in _message(check_checkpoint_file, path)


def test_truncated_safetensors_says_truncated_with_both_sizes(good_checkpoint):
    data = good_checkpoint.read_bytes()
    good_checkpoint.write_bytes(data[:-100])  # an interrupted copy
    message = _message(read_checkpoint, good_checkpoint)
    assert (
        "truncated" in message
        and f"expected {len(data)} bytes" in message
        and f"got {len(data) - 100} bytes" in message
    )
    assert "truncated" in _message(check_checkpoint_file, good_checkpoint)


def test_corrupt_safetensors_header_is_named(good_checkpoint):
    data = bytearray(good_checkpoint.read_bytes())
    data[9:20] = b"\xff" * 11  # garbage inside the JSON header, length field intact
    good_checkpoint.write_bytes(bytes(data))
    assert "header is not valid JSON" in _message(read_checkpoint, good_checkpoint)


def test_renamed_files_say_what_they_really_are(tmp_path):
    pth = tmp_path / "weights.safetensors"
    torch.save({"w": torch.zeros(2)}, pth)
    message = _message(read_checkpoint, pth)
    assert "PyTorch .pth checkpoint" in message and "sspnet convert" in message
    assert checkpoint_format(pth) == "torch"  # load_model reads it as what it is, whatever its name
    assert torch.equal(torch_load_restricted(pth)["w"], torch.zeros(2))
    png = tmp_path / "photo.safetensors"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    message = _message(checkpoint_format, png)
    assert "not a safetensors file" in message and "got an image" in message


def test_random_bytes_pth_is_not_a_torch_checkpoint(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(b"\x13" + os.urandom(4095))  # a first byte that is neither zip, pickle nor '{'
    for call in (checkpoint_format, torch_load_restricted, read_mmdet_checkpoint):
        message = _message(call, path)
        assert "not a torch checkpoint" in message and "unpickle" not in message


def test_corrupt_pickle_is_corrupt_not_refused(tmp_path):
    path = tmp_path / "bad_pickle.pth"
    path.write_bytes(b"\x80\x02" + b"\xfe" * 64)  # a pickle protocol header, then garbage
    message = _message(torch_load_restricted, path)
    assert "not a torch checkpoint" in message and "refusing" not in message


def test_truncated_torch_zip_is_named(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:1000])
    assert "truncated or corrupt torch checkpoint" in _message(torch_load_restricted, path)


def test_missing_and_folder_checkpoints_are_os_errors_with_the_path(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        checkpoint_format(tmp_path / "nope.safetensors")
    assert missing.value.filename == str(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError) as folder:
        read_checkpoint(tmp_path)
    assert folder.value.filename == str(tmp_path)
