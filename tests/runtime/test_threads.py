"""Threading defaults (runtime/threads.py): what is set, what the user's settings override, and that
the `sspnet` command sets OpenMP's variables before a verb can load torch."""

import subprocess
import sys

import pytest

from sspnet.runtime import threads


def test_openmp_defaults_are_set_only_when_the_user_chose_nothing():
    environ = {}
    assert threads.apply_openmp_defaults(environ) == {"GOMP_SPINCOUNT": "4000"}
    assert environ == {"GOMP_SPINCOUNT": "4000"}
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10"}, {"SSPNET_OPENMP_DEFAULTS": "0"}):
        environ = dict(user)
        assert threads.apply_openmp_defaults(environ) == {}
        assert environ == user  # untouched


def test_onnxruntime_spinning_switch():
    assert threads.onnxruntime_spinning({}) is False
    assert threads.onnxruntime_spinning({"SSPNET_ORT_SPINNING": "1"}) is True
    assert threads.onnxruntime_spinning({"SSPNET_ORT_SPINNING": "off"}) is False


def test_session_options_get_spinning_off_or_on():
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    threads.configure_onnxruntime_session(options, spinning=False)
    for key in threads.ORT_SPINNING_KEYS:
        assert options.get_session_config_entry(key) == "0"
    assert options.get_session_config_entry("optimization.disable_specified_optimizers") == "QDQS8ToU8Transformer"
    threads.configure_onnxruntime_session(options, spinning=True)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_the_onnxruntime_backend_does_not_spin(tmp_path, monkeypatch):
    from runtime_models import build_marker_model

    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    monkeypatch.delenv("SSPNET_ORT_SPINNING", raising=False)
    seen = []
    original = threads.configure_onnxruntime_session
    monkeypatch.setattr("sspnet.runtime.onnxruntime_backend.configure_onnxruntime_session",
                        lambda options: (original(options), seen.append(
                            options.get_session_config_entry("session.intra_op.allow_spinning"))))
    OnnxRuntimeBackend(build_marker_model(tmp_path / "m.onnx"))
    assert seen == ["0"]


def test_the_command_sets_openmp_variables_before_torch_loads():
    # A fresh interpreter: the CLI entry must put GOMP_SPINCOUNT into the environment before the
    # verb module (here `info`, which imports torch) loads libgomp.
    code = ("import os, sys\n"
            "from sspnet.cli import main\n"
            "main(['--help'])\n"
            "from sspnet.runtime.threads import openmp_runtime_loaded\n"
            "print('RESULT', os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules, openmp_runtime_loaded())\n")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SSPNET_OPENMP_DEFAULTS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    assert line == "RESULT 4000 False False"  # set, and no OpenMP runtime was loaded yet
