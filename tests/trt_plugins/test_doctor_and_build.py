"""Degrading cleanly without TensorRT: `sspnet doctor` prints what is missing and exits non-zero,
the CMake configure step stops with one clear message, setup.py skips the plugins with one line."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trt_files import REPO, tensorrt_installed

from sspnet.cli import main

no_tensorrt = pytest.mark.skipif(tensorrt_installed(), reason="checks the behaviour where TensorRT is NOT installed")


def row(output: str, check: str) -> list[str]:
    """The (status, detail) cells of one doctor table row."""
    for line in output.splitlines():
        if line.startswith(check + "  "):
            return line[len(check) :].split(None, 1)
    raise AssertionError(f"no row {check!r} in:\n{output}")


@no_tensorrt
def test_doctor_without_tensorrt_prints_a_table_and_fails(capsys, monkeypatch):
    monkeypatch.delenv("SSPNET_TRT_PLUGINS", raising=False)
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].split() == ["check", "status", "detail"]
    assert row(out, "TensorRT")[0] == "MISSING"
    assert row(out, "sspnet")[0] == "ok"
    assert row(out, "creator sspnet::SSPNetBatchedNMS v1")[0] == "skipped"
    assert row(out, "creator sspnet::SSPNetMultiLevelRoIAlign v1")[0] == "skipped"
    status, detail = row(out, "engine build")
    assert status == "skipped" and detail.startswith("needs tensorrt, plugins")
    assert row(out, "parity")[0] == "skipped"
    assert "not ready for TensorRT inference; fix: " in out and "TensorRT" in out.splitlines()[-1]
    assert "Traceback" not in out


@no_tensorrt
def test_doctor_names_a_missing_model_file(capsys, tmp_path):
    code = main(["doctor", "--onnx", str(tmp_path / "absent_trt.onnx")])
    err = capsys.readouterr().err
    assert code == 2  # a user mistake, refused before any check runs
    assert err.startswith("sspnet doctor: ") and "absent_trt.onnx" in err


@no_tensorrt
def test_doctor_reports_an_explicit_plugin_path(capsys, tmp_path):
    main(["doctor", "--plugins", str(tmp_path / "nope.so")])
    status, detail = row(capsys.readouterr().out, "plugin library")
    assert status == "MISSING" and "nope.so" in detail


# ---- CMake ---------------------------------------------------------------------------------------


def system_has_tensorrt_headers() -> bool:
    return any(
        Path(d, "NvInferRuntime.h").is_file()
        for d in (
            "/usr/include",
            "/usr/include/aarch64-linux-gnu",
            "/usr/include/x86_64-linux-gnu",
            "/usr/local/tensorrt/include",
            "/opt/tensorrt/include",
            "/usr/src/tensorrt/include",
        )
    )


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
@pytest.mark.skipif(system_has_tensorrt_headers() or tensorrt_installed(), reason="TensorRT is present here")
def test_cmake_configure_stops_with_one_clear_message(tmp_path):
    empty_root = tmp_path / "no_tensorrt"
    empty_root.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "TENSORRT_ROOT"}
    run = subprocess.run(
        [
            "cmake",
            "-S",
            str(REPO / "csrc" / "tensorrt"),
            "-B",
            str(tmp_path / "build"),
            f"-DTENSORRT_ROOT={empty_root}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode != 0
    message = " ".join(run.stderr.split())
    assert "sspnet: TensorRT not found" in message
    assert "Set TENSORRT_ROOT to the directory holding include/NvInfer.h" in message
    assert "CUDA" not in run.stdout  # stopped before CUDA was even looked for


# ---- setup.py --------------------------------------------------------------------------------


def setup_functions(**names):
    """find_tensorrt_headers / build_tensorrt_plugins from setup.py, run in a namespace where
    subprocess.run fails the test (setup.py itself calls setup() at import, so it is not imported)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    wanted = {"TENSORRT_HEADER_DIRS", "find_tensorrt_headers", "build_tensorrt_plugins"}
    nodes = [
        n
        for n in tree.body
        if (isinstance(n, ast.FunctionDef) and n.name in wanted)
        or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted for t in n.targets))
    ]

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"setup.py ran {args} although TensorRT is absent")

    namespace = {
        "os": os,
        "sys": sys,
        "shutil": shutil,
        "Path": Path,
        "ROOT": REPO,
        "subprocess": type("S", (), {"run": staticmethod(no_subprocess), "CalledProcessError": Exception}),
        **names,
    }
    exec(compile(ast.Module(body=nodes, type_ignores=[]), "setup.py", "exec"), namespace)
    return namespace


@pytest.mark.skipif(system_has_tensorrt_headers(), reason="TensorRT headers are installed here")
def test_setup_skips_the_plugins_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TENSORRT_ROOT", str(tmp_path))  # an install root without include/NvInferRuntime.h
    functions = setup_functions(CUDA_HOME=Path("/usr/local/cuda"))
    assert functions["find_tensorrt_headers"]() is None
    target = tmp_path / "sspnet" / "lib"
    functions["build_tensorrt_plugins"]([target])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sspnet: no TensorRT headers (set TENSORRT_ROOT) -> skipping the TensorRT plugins (csrc/tensorrt)"]
    assert not target.exists()


def test_setup_finds_headers_under_tensorrt_root(tmp_path, monkeypatch):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "NvInferRuntime.h").write_text("// placeholder file: only its presence is checked\n")
    monkeypatch.setenv("TENSORRT_ROOT", str(tmp_path))
    assert setup_functions(CUDA_HOME=None)["find_tensorrt_headers"]() == tmp_path / "include"


def test_setup_opt_out(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("SSPNET_WITH_TENSORRT", "0")
    setup_functions(CUDA_HOME=Path("/usr/local/cuda"))["build_tensorrt_plugins"]([tmp_path / "lib"])
    assert "skipping the TensorRT plugins" in capsys.readouterr().err
