"""The CLI's single error handler: user errors are one line + exit 2, bugs show a traceback + hint."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from sspnet.cli import run_verb
from sspnet.errors import InputError, UsageError


def _verb(error: BaseException):
    def run(args):
        raise error

    return SimpleNamespace(run=run)


def test_user_error_is_one_line_and_exit_2(capsys):
    error = InputError(
        "box outside the image",
        path="gt.json",
        field="annotations[3].bbox",
        expected="inside 640x512",
        got="[600, 10, 80, 20]",
    )
    assert run_verb("val", _verb(error), None, debug=False) == 2
    err = capsys.readouterr().err
    assert err == (
        "sspnet val: box outside the image (gt.json: annotations[3].bbox: expected inside 640x512, "
        "got [600, 10, 80, 20])\n"
    )


def test_debug_shows_the_traceback_of_a_user_error(capsys):
    assert run_verb("val", _verb(UsageError("bad")), None, debug=True) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("sspnet val: bad")


@pytest.mark.parametrize(
    "error, code",
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "missing.json"), 2),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 2),
        (OSError(errno.ENOSPC, "No space left on device", "model.onnx"), 1),
    ],
)
def test_os_errors_about_a_file_are_one_line(capsys, error, code):
    assert run_verb("export", _verb(error), None, debug=False) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and error.filename in err


def test_a_bug_shows_the_traceback_and_a_hint(capsys):
    assert run_verb("train", _verb(ZeroDivisionError("oops")), None, debug=False) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "bug in sspnet" in err


def test_interrupt_exits_130(capsys):
    assert run_verb("predict", _verb(KeyboardInterrupt()), None, debug=False) == 130


def test_debug_flag_and_environment_variable_reach_the_handler(tmp_path):
    """End to end: a user mistake without --debug is one line; with SSPNET_DEBUG=1 the traceback shows."""
    command = [
        sys.executable,
        "-m",
        "sspnet",
        "convert",
        str(tmp_path / "missing.pth"),
        str(tmp_path / "o.safetensors"),
    ]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert "missing.pth" in quiet.stderr and quiet.stderr.strip().count("\n") == 0
    loud = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
    environment = {**os.environ, "SSPNET_DEBUG": "1"}
    loud = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
