"""sspnet.io.atomic: a failed or killed write never damages the old file and leaves no litter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sspnet.io.atomic import (
    atomic_output,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temporaries,
    temporary_path_for,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "sspnet-tmp" in p.name)


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_failure_mid_write_keeps_the_old_file_intact(tmp_path):
    target = tmp_path / "weights.safetensors"
    target.write_bytes(b"the good old weights")

    def write_half_then_fail(f):
        f.write(b"half of the new")
        raise OSError(28, "No space left on device")  # what a full disk raises

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, write_half_then_fail)
    assert target.read_bytes() == b"the good old weights"
    assert _leftovers(tmp_path) == []


def test_interrupt_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("{}")

    def interrupted(f):
        f.write(b"[")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "{}"
    assert _leftovers(tmp_path) == []


def test_atomic_output_keeps_the_suffix_for_format_picking_writers(tmp_path):
    target = tmp_path / "clip.mp4"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".clip.mp4.")
        tmp.write_bytes(b"video")
    assert target.read_bytes() == b"video"


def test_atomic_output_refuses_when_the_writer_wrote_nothing(tmp_path):
    target = tmp_path / "x.png"
    with pytest.raises(FileNotFoundError):
        with atomic_output(target):
            pass
    assert not target.exists()


def test_json_is_strict_with_nan_as_null(tmp_path):
    path = atomic_write_json(tmp_path / "m.json", {"AP": float("nan"), "MR": [1.0, float("inf")]})
    assert json.loads(path.read_text()) == {"AP": None, "MR": [1.0, None]}


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    """SIGKILL gives no chance to clean up: the next write into the folder sweeps what the dead
    process left, and never touches a live process's temporary."""
    target = tmp_path / "big.onnx"
    script = (
        f"import sys, time; sys.path[:0] = {sys.path!r}\n"
        "from sspnet.io.atomic import atomic_write\n"
        "def slow(f):\n"
        "    f.write(b'x' * 1000000); f.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write({str(target)!r}, slow)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    live = _leftovers(tmp_path)
    assert len(live) == 1
    assert remove_stale_temporaries(tmp_path) == []  # the writer is alive: its file stays
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert _leftovers(tmp_path) == live  # the dead writer's litter is still there...
    removed = remove_stale_temporaries(tmp_path)  # ...until someone sweeps
    assert [p.name for p in removed] == live
    assert not target.exists()


def test_sweep_ignores_files_that_only_look_similar(tmp_path):
    mine = temporary_path_for(tmp_path / "a.json")
    assert str(os.getpid()) in mine.name
    (tmp_path / "notes.sspnet-tmp.txt").write_text("user file")
    (tmp_path / ".a.json.999999999-abcd.sspnet-tmp.json").write_text("dead writer")  # pid cannot exist
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".a.json.999999999-abcd.sspnet-tmp.json"]
    assert (tmp_path / "notes.sspnet-tmp.txt").exists()
