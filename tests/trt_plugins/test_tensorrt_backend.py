"""The TensorRT backend's TensorRT-free parts (runtime/tensorrt_backend.py, runtime/tensorrt_common.py):
buffer planning from the contract, engine I/O checks, run-batch choice, finding the plugin library,
clear errors without TensorRT, and importing without torch / tensorrt / cuda."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sspnet.runtime import tensorrt_backend as tb
from sspnet.runtime import tensorrt_common as tc
from sspnet.runtime.backend import load_backend
from trt_files import REPO, tensorrt_installed


def test_plan_io_buffers_follows_the_contract():
    plan = tb.plan_io_buffers(batch=4, input_size=(512, 640), max_detections=500)
    assert [(b.name, b.shape, b.dtype, b.is_input) for b in plan] == [
        ("images", (4, 3, 512, 640), np.uint8, True),
        ("num_dets", (4, 1), np.int32, False),
        ("boxes", (4, 500, 4), np.float32, False),
        ("scores", (4, 500), np.float32, False),
        ("labels", (4, 500), np.int32, False),
    ]
    assert [b.nbytes for b in plan] == [4 * 3 * 512 * 640, 4 * 4, 4 * 500 * 4 * 4, 4 * 500 * 4, 4 * 500 * 4]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch=0, input_size=(8, 8), max_detections=1), "batch must be a positive integer"),
        (dict(batch=1, input_size=(8, -8), max_detections=1), "input W must be a positive integer"),
        (dict(batch=1, input_size=(8, 8), max_detections=2.5), "max_detections must be a positive integer"),
        (dict(batch=True, input_size=(8, 8), max_detections=1), "batch must be a positive integer"),
    ],
)
def test_plan_io_buffers_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tb.plan_io_buffers(**kwargs)


def engine_io_of(plan):
    return {b.name: (b.is_input, b.dtype, b.shape) for b in plan}


def test_check_engine_io_accepts_the_contract():
    plan = tb.plan_io_buffers(2, (96, 128), 16)
    tb.check_engine_io(plan, engine_io_of(plan), "m.engine")


def test_check_engine_io_lists_every_difference():
    plan = tb.plan_io_buffers(2, (96, 128), 16)
    io = engine_io_of(plan)
    io["boxes"] = (False, np.dtype(np.float16), (2, 16, 4))  # an fp16 output
    io["scores"] = (False, np.dtype(np.float32), (2, 100))  # another K
    del io["labels"]
    io["rois"] = (True, np.dtype(np.float32), (10, 5))  # an extra input
    with pytest.raises(ValueError) as error:
        tb.check_engine_io(plan, io, "m.engine")
    message = str(error.value)
    assert message.startswith("m.engine: the engine does not follow the sspnet contract")
    assert "'boxes' is float16, the contract says float32" in message
    assert "'scores' has shape (2, 100), expected (2, 16)" in message
    assert "missing output 'labels'" in message
    assert "extra input 'rois'" in message


def test_choose_run_batch():
    assert tb.choose_run_batch(1, 8, None) == 8
    assert tb.choose_run_batch(1, 8, 3) == 3
    assert tb.choose_run_batch(4, 4, None) == 4
    with pytest.raises(ValueError, match=r"range \[1, 8\], got 9"):
        tb.choose_run_batch(1, 8, 9)


# ---- the plugin library (tensorrt_common.py, shared with the engine builder) ---------------------


def test_explicit_plugin_library_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"plugin_library\) does not exist: .*missing\.so"):
        tc.find_plugin_library(tmp_path / "missing.so")


def test_environment_variable_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(tc.PLUGIN_LIBRARY_ENV, str(tmp_path / "env.so"))
    with pytest.raises(FileNotFoundError, match=r"\$SSPNET_TRT_PLUGINS.*env\.so"):
        tc.find_plugin_library()


def test_environment_variable_wins(tmp_path, monkeypatch):
    library = tmp_path / "libsspnet_trt_plugins.so"
    library.write_bytes(b"")
    monkeypatch.setenv(tc.PLUGIN_LIBRARY_ENV, str(library))
    assert tc.plugin_library_candidates()[0] == library
    assert tc.find_plugin_library() == library


def test_not_found_lists_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.delenv(tc.PLUGIN_LIBRARY_ENV, raising=False)
    candidates = [tmp_path / "a" / tc.PLUGIN_LIBRARY_NAME, tmp_path / "b" / tc.PLUGIN_LIBRARY_NAME]
    monkeypatch.setattr(tc, "plugin_library_candidates", lambda: candidates)
    with pytest.raises(FileNotFoundError) as error:
        tc.find_plugin_library()
    message = str(error.value)
    assert all(str(c) in message for c in candidates)
    assert "cmake -S csrc/tensorrt -B build/tensorrt" in message


def test_default_candidates_are_the_package_and_the_build_folder(monkeypatch):
    monkeypatch.delenv(tc.PLUGIN_LIBRARY_ENV, raising=False)
    assert tc.plugin_library_candidates() == [
        REPO / "sspnet" / "lib" / tc.PLUGIN_LIBRARY_NAME,
        REPO / "build" / "tensorrt" / tc.PLUGIN_LIBRARY_NAME,
    ]


# ---- without TensorRT ---------------------------------------------------------------------------


@pytest.mark.skipif(tensorrt_installed(), reason="checks the behaviour where TensorRT is NOT installed")
def test_load_backend_without_tensorrt_is_a_clear_import_error(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    with pytest.raises(ImportError, match="needs the `tensorrt` Python package.*ONNX Runtime"):
        load_backend(engine)


def test_cuda_errors_are_named():
    pytest.importorskip("cuda.bindings", reason="cuda-python is not installed")
    from cuda.bindings import runtime as cudart

    with pytest.raises(RuntimeError, match="CUDA error in cudaMalloc: cudaErrorMemoryAllocation"):
        tc.cuda_call((cudart.cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc")
    assert tc.cuda_call((cudart.cudaError_t.cudaSuccess, 7), "x") == 7
    assert tc.cuda_call((cudart.cudaError_t.cudaSuccess,), "x") is None


def test_tensorrt_modules_import_without_torch_tensorrt_or_cuda():
    script = textwrap.dedent("""
        import sys

        class Block:
            blocked = ("torch", "torchvision", "tensorrt", "cuda")

            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in self.blocked:
                    raise ImportError(f"blocked for this test: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import sspnet.runtime.calibration, sspnet.runtime.engine_builder, sspnet.runtime.sidecar
        import sspnet.runtime.tensorrt_backend
        import sspnet.runtime.tensorrt_common as tc
        try:
            tc.import_tensorrt()
        except ImportError as error:
            assert "needs the `tensorrt` Python package" in str(error)
        else:
            raise SystemExit("import_tensorrt did not fail")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in Block.blocked)
        assert not loaded, loaded
        print("IMPORT_OK")
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "IMPORT_OK" in run.stdout
