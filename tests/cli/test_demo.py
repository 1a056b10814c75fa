"""`sspnet demo`: the quick end-to-end run, and failures that name their stage."""

import json

import pytest

from sspnet.cli import demo, main
from sspnet.engine import recipes

SUMMARY_KEYS = {
    "AP50_tiny",
    "AP50_tiny_onnxruntime",
    "onnxruntime_ms_p50",
    "torch_ms_p50",
    "speedup_onnxruntime_vs_torch",
    "stage_seconds",
    "wall_time_s",
    "trained_well_enough",
    "verdict",
    "AP50_tiny_int8",
    "AP50_tiny_int8_cpu",
    "onnxruntime_int8_ms_p50",
    "onnxruntime_int8_cpu_ms_p50",
    "speedup_int8_vs_fp32",
    "speedup_int8_cpu_vs_fp32",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick"]) == 0  # --quick cannot train: it says so, exit 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "NOT TRAINED WELL ENOUGH" in captured.err
    assert "training 2 iterations; measured" in printed  # the estimate comes before training
    assert f"report: {out / 'report.md'}" in printed
    for stage in demo.STAGES:
        assert f"] {stage}: " in printed  # each stage announces itself

    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert 0.0 <= summary["AP50_tiny"] <= 100.0 and 0.0 <= summary["AP50_tiny_onnxruntime"] <= 100.0
    assert summary["torch_ms_p50"] > 0 and summary["onnxruntime_ms_p50"] > 0
    assert summary["speedup_onnxruntime_vs_torch"] == pytest.approx(
        summary["torch_ms_p50"] / summary["onnxruntime_ms_p50"], rel=1e-6
    )
    assert set(summary["stage_seconds"]) == set(demo.STAGES) - {"report"}

    assert summary["trained_well_enough"] is False and "NOT TRAINED WELL ENOUGH" in summary["verdict"]
    assert summary["speedup_int8_cpu_vs_fp32"] == pytest.approx(
        summary["onnxruntime_fp32_ms_p50_int8_run"] / summary["onnxruntime_int8_cpu_ms_p50"], rel=1e-6
    )
    for name in ("report.md", "report.html", "model.onnx", "benchmark.json", "model_int8.onnx", "model_int8_cpu.onnx"):
        assert (out / name).is_file(), name
    assert (out / "benchmark.png").read_bytes()[:8] == PNG_SIGNATURE
    samples = sorted((out / "samples").glob("*.png"))
    panels = sorted((out / "torch" / "attention").glob("*.png"))
    assert len(samples) == demo.QUICK["samples"] and len(panels) == demo.QUICK["samples"]
    report = (out / "report.md").read_text()
    for path in samples + panels + [out / "benchmark.png"]:
        assert str(path.relative_to(out)) in report  # the report shows every picture it made
    assert "| range | AP25 | AP50 | AP75 |" in report
    assert report.splitlines()[2].startswith("> **WARNING: NOT TRAINED WELL ENOUGH")  # right under the title
    assert "| INT8 TensorRT form (model_int8.onnx) |" in report and "| INT8 ONNX Runtime CPU form" in report
    benchmark = json.loads((out / "benchmark.json").read_text())
    assert [row["backend"] for row in benchmark["rows"]] == ["torch", "onnxruntime"]
    assert benchmark["rows"][0]["latency_ms"]["p50"] == pytest.approx(summary["torch_ms_p50"])


def test_a_failing_stage_is_named(tmp_path, monkeypatch, capsys):
    def broken(settings):
        raise OSError("disk full")

    monkeypatch.setattr(demo, "make_data", broken)
    assert main(["demo", "--out", str(tmp_path / "d"), "--quick"]) == 1
    err = capsys.readouterr().err
    assert "stage 'data' failed: OSError: disk full" in err
    assert "disk full" in (tmp_path / "d" / "demo_error.log").read_text()


def test_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # refused by its argparse type: one line, exit 2
        main(["demo", "--out", str(tmp_path), "--train-iters", "0"])
    assert exit_.value.code == 2
    assert "argument --train-iters: must be a positive integer, got '0'" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--images", "2"]) == 2
    assert "--images must be at least 4" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "file"), "--quick"]) == 2
    assert "expected a folder" in capsys.readouterr().err


def test_training_length_is_fixed_and_the_time_is_estimated_first(tmp_path, monkeypatch, capsys):
    # A machine measured at 0.9 s per iteration (3x a quiet 2-core CPU) trains the same 1600
    # iterations; it only says up front that it will take longer.
    calls = []
    monkeypatch.setattr(recipes.Recipe, "seconds_per_iteration", lambda self, **kwargs: 0.9)
    monkeypatch.setattr(
        "sspnet.engine.trainer.train",
        lambda config: calls.append(config) or type("R", (), {"iteration": config.max_iters})(),
    )
    settings = demo.DemoSettings(out=tmp_path, images=8, val_fraction=0.25)
    demo.make_data(settings)
    result = demo.train_model(settings)
    assert [config.max_iters for config in calls] == [recipes.SYNTHETIC_CPU.iterations] == [1600]
    assert result["iterations"] == 1600 and result["estimated_seconds"] == pytest.approx(1.05 * 0.9 * 1600)
    printed = capsys.readouterr().out
    assert "training 1600 iterations; measured 0.90 s per iteration" in printed and "about 25.2 min" in printed
    assert "3.0x slower than a quiet 2-core CPU" in printed


def _results(ap50_tiny):
    """The stage results summary_dict reads, with round numbers."""
    row = {"latency_ms": {"p50": 100.0}, "throughput_ips": 10.0, "model": "m"}
    int8 = {
        "fp32_ms_p50": 40.0,
        "symmetric": {
            "file": "model_int8.onnx",
            "AP50_tiny": 60.0,
            "ms_p50": 40.0,
            "speedup_vs_fp32": 1.0,
            "method": "percentile",
            "float_groups": ["box", "score"],
            "calibration_tiles": 64,
        },
        "asymmetric": {"file": "model_int8_cpu.onnx", "AP50_tiny": 60.5, "ms_p50": 20.0, "speedup_vs_fp32": 2.0},
    }
    return {
        "benchmark": [row | {"backend": "torch"}, row | {"backend": "onnxruntime", "latency_ms": {"p50": 50.0}}],
        "metrics": {"AP50_tiny": ap50_tiny},
        "onnxruntime": {"AP50_tiny": ap50_tiny},
        "int8": int8,
        "train": {"iterations": 1600, "checkpoint": "/x/run/last.safetensors"},
        "data": {"train": {"images": 200}, "val": {"images": 50}},
    }


def test_a_model_below_50_percent_is_reported_as_not_trained(tmp_path, monkeypatch, capsys):
    settings = demo.DemoSettings(out=tmp_path)
    weak = demo.summary_dict(settings, _results(3.8), {}, 1.0)
    assert weak["trained_well_enough"] is False
    assert weak["verdict"].startswith("NOT TRAINED WELL ENOUGH: AP50-tiny 3.80 % is below 50 % after 1600")
    good = demo.summary_dict(settings, _results(50.0), {}, 1.0)
    assert good["trained_well_enough"] is True and good["speedup_int8_cpu_vs_fp32"] == 2.0
    monkeypatch.setattr(demo, "run_demo", lambda settings: weak | {"wall_time_s": 1.0})
    assert main(["demo", "--out", str(tmp_path / "d")]) == demo.NOT_TRAINED_EXIT == 3
    assert "!!! NOT TRAINED WELL ENOUGH" in capsys.readouterr().err
    monkeypatch.setattr(demo, "run_demo", lambda settings: good | {"wall_time_s": 1.0})
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
