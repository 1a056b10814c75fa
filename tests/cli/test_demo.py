"""`sspnet demo`: the quick end-to-end run, and failures that name their stage."""

import dataclasses
import json

import pytest

from sspnet.cli import demo, main
from sspnet.engine import recipes

SUMMARY_KEYS = {"AP50_tiny", "AP50_tiny_onnxruntime", "onnxruntime_ms_p50", "torch_ms_p50",
                "speedup_onnxruntime_vs_torch", "stage_seconds", "wall_time_s"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    for stage in demo.STAGES:
        assert f"] {stage}: " in printed  # each stage announces itself

    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert 0.0 <= summary["AP50_tiny"] <= 100.0 and 0.0 <= summary["AP50_tiny_onnxruntime"] <= 100.0
    assert summary["torch_ms_p50"] > 0 and summary["onnxruntime_ms_p50"] > 0
    assert summary["speedup_onnxruntime_vs_torch"] == pytest.approx(
        summary["torch_ms_p50"] / summary["onnxruntime_ms_p50"], rel=1e-6)
    assert set(summary["stage_seconds"]) == set(demo.STAGES) - {"report"}

    for name in ("report.md", "report.html", "model.onnx", "benchmark.json"):
        assert (out / name).is_file(), name
    assert (out / "benchmark.png").read_bytes()[:8] == PNG_SIGNATURE
    samples = sorted((out / "samples").glob("*.png"))
    panels = sorted((out / "torch" / "attention").glob("*.png"))
    assert len(samples) == demo.QUICK["samples"] and len(panels) == demo.QUICK["samples"]
    report = (out / "report.md").read_text()
    for path in samples + panels + [out / "benchmark.png"]:
        assert str(path.relative_to(out)) in report  # the report shows every picture it made
    assert "| range | AP25 | AP50 | AP75 |" in report
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
    assert main(["demo", "--out", str(tmp_path), "--train-minutes", "0"]) == 2
    assert "--train-minutes must be > 0" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--images", "2"]) == 2
    assert "--images must be at least 4" in capsys.readouterr().err


def test_training_stops_when_the_budget_is_spent(tmp_path, monkeypatch, capsys):
    # A calibrated 1 s per iteration and a 0.6 s budget plan the minimum run, 10 iterations; the
    # first quarter (3 iterations) already takes longer, so training stops there, checkpointed.
    settings = demo.DemoSettings(out=tmp_path, images=8, val_fraction=0.25, size=(128, 128), train_minutes=0.01)
    demo.make_data(settings)
    fast = dataclasses.replace(recipes.SYNTHETIC_CPU, batch_size=1)  # keep the test fast
    monkeypatch.setattr(recipes, "SYNTHETIC_CPU", fast)
    monkeypatch.setattr(recipes.Recipe, "seconds_per_iteration", lambda self, **kwargs: 1.0)  # -> the minimum, 10
    result = demo.train_model(settings)
    assert result["planned_iterations"] == 10 and result["iterations"] == 3
    assert (tmp_path / "run" / "last.safetensors").is_file()
    assert "stopping at iteration 3 of 10" in capsys.readouterr().out
