"""The demo's report renderer (sspnet.benchmark.report.demo_report): its Markdown and HTML tables carry the
summary's values, and the "not trained well enough" banner stands under the title exactly below AP50-tiny 50."""

import html

import pytest

from sspnet.benchmark.report import MIN_AP50_TINY, demo_report, training_verdict

SAMPLES = ["samples/val_0001.png", "samples/val_0002.png"]
ATTENTION = ["torch/attention/val_0001_A0.png"]


def _summary(ap50_tiny: float) -> dict:
    """A summary.json of a small run, with values that are easy to find in the report."""
    trained, verdict = training_verdict(ap50_tiny, 1600, quick=False)
    int8 = {
        "fp32_ms_p50": 41.25,
        "symmetric": {
            "file": "model_int8.onnx",
            "AP50_tiny": 59.876,
            "ms_p50": 33.0,
            "speedup_vs_fp32": 1.25,
            "method": "percentile",
            "calibration_tiles": 64,
            "float_groups": ["box", "score"],
        },
        "asymmetric": {"file": "model_int8_cpu.onnx", "AP50_tiny": 60.125, "ms_p50": 20.6, "speedup_vs_fp32": 2.0},
    }
    return {
        "trained_well_enough": trained,
        "verdict": verdict,
        "wall_time_s": 612.0,
        "quick": False,
        "AP50_tiny": ap50_tiny,
        "AP50_tiny_onnxruntime": 60.5,
        "torch_ms_p50": 100.04,
        "onnxruntime_ms_p50": 50.0,
        "speedup_onnxruntime_vs_torch": 2.0008,
        "int8": int8,
        "stage_seconds": {"data": 3.04, "train": 480.5},
        "data": {
            "images": 250,
            "size_wh": [256, 192],
            "seed": 7,
            "train": {"images": 200, "boxes": 900},
            "val": {"images": 50, "boxes": 230},
        },
        "train": {
            "preset": "sspnet_tiny",
            "iterations": 1600,
            "batch_size": 8,
            "lr": 0.02,
            "seconds": 480.0,
            "overrides": {"neck": "narrow"},
        },
        "metrics": {"AP50_tiny": ap50_tiny, "AP25_tiny": 70.0, "MR50_tiny": None},
        "files": {"report": "report.md", "benchmark_plot": "benchmark.png", "odd": "a&b.onnx"},
    }


def _row(backend: str, p50: float, speedup: float) -> dict:
    latency = {"mean": p50 + 1, "p50": p50, "p90": p50 + 2, "p99": p50 + 3}
    return {
        "model_label": "sspnet_tiny",
        "backend": backend,
        "mode": "eager",
        "precision": "fp32",
        "batch": 1,
        "frame_size": [256, 192],
        "latency_ms": latency,
        "throughput_ips": 1000 / p50,
        "stages_ms": {"preprocess": 1.0, "inference": p50 - 2, "postprocess": 1.0},
        "host_memory_mb": {"peak": 512.0},
        "device_memory_mb": None,
        "speedup_vs_first": speedup,
        "error": None,
    }


ROWS = [_row("torch", 100.04, 1.0), _row("onnxruntime", 50.0, 2.0008)]


def _md_row(*cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _html_row(*cells) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"


# the summary's values above, formatted as the report shows them (2 decimals for AP and ratios, 1 for ms)
EXPECTED_ROWS = [
    ("61.23", "60.50", "100.0", "50.0", "2.00x"),  # headline: AP PyTorch / ONNX Runtime, p50s, speed-up
    ("fp32 (model.onnx)", "60.50", "41.2", "1.00x"),  # 41.25 rounds half to even
    ("INT8 TensorRT form (model_int8.onnx)", "59.88", "33.0", "1.25x"),
    ("INT8 ONNX Runtime CPU form (model_int8_cpu.onnx)", "60.12", "20.6", "2.00x"),
    ("data", "3.0"),
    ("train", "480.5"),
    ("tiny", "70.00", "61.23", "-", "-", "-", "-"),  # TinyPerson table: AP25, AP50, AP75, MR25, MR50, MR75
    (
        "1",
        "sspnet_tiny",
        "torch",
        "eager",
        "fp32",
        "1",
        "256x192",
        "101.04",
        "100.04",
        "102.04",
        "103.04",
        "10.00",
        "1.0/98.0/1.0",
        "512",
        "-",
        "-",
        "1.00x",
    ),
    (
        "2",
        "sspnet_tiny",
        "onnxruntime",
        "eager",
        "fp32",
        "1",
        "256x192",
        "51.00",
        "50.00",
        "52.00",
        "53.00",
        "20.00",
        "1.0/48.0/1.0",
        "512",
        "-",
        "-",
        "2.00x",
    ),
    ("odd", "a&b.onnx"),
]


def test_tables_carry_the_summary_values():
    markdown, page = demo_report(_summary(61.234), ROWS, SAMPLES, ATTENTION)
    lines = markdown.splitlines()
    for cells in EXPECTED_ROWS:
        assert _md_row(*cells) in lines, cells
        assert _html_row(*cells) in page, cells
    assert "a&amp;b.onnx" in page and "a&b.onnx" not in page  # HTML escapes what it shows
    for path in ["benchmark.png", *SAMPLES, *ATTENTION]:
        assert f"]({path})" in markdown and f"<img src='{path}'" in page
    assert "256x192 px (900 + 230 people), seed 7" in markdown
    assert "for 1600 iterations (batch 8, lr 0.02)" in markdown and '`{"neck": "narrow"}`' in markdown
    assert "WARNING" not in markdown and "WARNING" not in page


@pytest.mark.parametrize("ap50_tiny", [MIN_AP50_TINY - 0.01, 3.8, None, float("nan")])
def test_a_model_below_50_gets_the_banner_under_the_title(ap50_tiny):
    summary = _summary(ap50_tiny)
    assert summary["trained_well_enough"] is False
    markdown, page = demo_report(summary, ROWS, SAMPLES, ATTENTION)
    assert markdown.splitlines()[:3] == ["# sspnet demo report", "", f"> **WARNING: {summary['verdict']}.**"]
    assert summary["verdict"].startswith("NOT TRAINED WELL ENOUGH: AP50-tiny ")
    assert "is below 50 % after 1600 iterations; do not use this model" in summary["verdict"]
    assert page.index("NOT TRAINED WELL ENOUGH") < page.index("<h2>")


def test_50_and_above_is_trained_and_has_no_banner():
    for ap50_tiny in (MIN_AP50_TINY, 50.001, 99.0):
        summary = _summary(ap50_tiny)
        assert summary["trained_well_enough"] is True
        assert summary["verdict"] == f"trained well enough: AP50-tiny {ap50_tiny:.2f} % >= 50 %"
        markdown, page = demo_report(summary, ROWS, SAMPLES, ATTENTION)
        assert "NOT TRAINED" not in markdown and "NOT TRAINED" not in page


def test_quick_runs_say_why_they_are_not_trained():
    trained, verdict = training_verdict(3.8, 2, quick=True)
    assert not trained and verdict.endswith("after 2 iterations (--quick trains only a few iterations)")
