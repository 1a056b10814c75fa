"""bench_neighbours' one-core bound: the lowest loaded / quiet ratio reachable when a neighbour takes one
of two cores, from the one-thread row and the sspnet-default row of the same run."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_neighbours.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_neighbours", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(label, group, quiet, slowdown=None, error=None):
    return {"label": label, "group": group, "quiet": {"p50": quiet}, "slowdown_p50": slowdown, "error": error}


def test_bound_is_one_threads_quiet_time_over_the_defaults():
    results = [
        row("onnxruntime, spinning (before)", "onnxruntime", 40.0, 3.0),
        row("onnxruntime, no spinning + adaptive threads (sspnet default)", "onnxruntime", 50.0, 1.75),
        row("onnxruntime, 1 thread", "onnxruntime", 85.0, 1.0),
        row("torch eager, 1 thread", "torch", 110.0, 1.0),  # no default row: no torch bound
        row("RoIAlign kernel, sspnet default", "kernels", 50.0, 1.5),
    ]
    bounds = load_bench().one_core_bounds(results)
    assert list(bounds) == ["onnxruntime"]
    assert bounds["onnxruntime"]["bound"] == pytest.approx(85.0 / 50.0)
    assert bounds["onnxruntime"]["default_slowdown_p50"] == 1.75


def test_a_failed_row_gives_no_bound():
    results = [
        row("onnxruntime, no spinning + adaptive threads (sspnet default)", "onnxruntime", 50.0, 1.7),
        row("onnxruntime, 1 thread", "onnxruntime", None, None, error="worker exited"),
    ]
    results[1]["quiet"] = None
    assert load_bench().one_core_bounds(results) == {}


def test_the_defaults_plan_includes_the_one_thread_rows():
    labels = [r.label for r in load_bench().plan("ckpt", "model.onnx", None, "defaults")]
    assert "torch eager, 1 thread" in labels and "onnxruntime, 1 thread" in labels
