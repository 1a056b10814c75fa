"""`sspnet benchmark`: statistics against closed forms, the row plan, JSON schema, plot, table,
the torchvision reference row and tegrastats parsing."""

import json

import numpy as np
import pytest

from sspnet.benchmark.harness import REFERENCE, BenchSettings, plan_rows, run_benchmark
from sspnet.benchmark.report import TABLE_HEADERS, add_speedups, plot, table_rows
from sspnet.benchmark.stats import latency_stats, speedups, throughput
from sspnet.benchmark.tegrastats import parse_line, summarize
from sspnet.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_latency_stats_of_1_to_100():
    # linear interpolation at position (n - 1) q / 100 of the sorted values 1..100:
    # p50 -> 1 + 49.5 = 50.5, p90 -> 1 + 89.1 = 90.1, p99 -> 1 + 98.01 = 99.01
    values = np.random.default_rng(0).permutation(np.arange(1, 101, dtype=float))
    stats = latency_stats(values)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["mean"] == pytest.approx(50.5) and stats["min"] == 1 and stats["max"] == 100
    assert stats["std"] == pytest.approx(np.sqrt((100**2 - 1) / 12))  # population std of 1..n


def test_latency_stats_small_and_bad_inputs():
    assert latency_stats([7.0])["p99"] == 7.0
    assert latency_stats([10.0, 20.0])["p90"] == pytest.approx(19.0)
    with pytest.raises(ValueError, match="no timings"):
        latency_stats([])
    with pytest.raises(ValueError, match="finite"):
        latency_stats([1.0, float("nan")])


def test_throughput_and_speedups():
    # batch 4, calls of 100 ms and 300 ms: 8 images in 0.4 s
    assert throughput(4, [100.0, 300.0]) == pytest.approx(20.0)
    # per-image p50: 10, 5, 10 / 4 = 2.5 ms -> speed vs row 1: 1, 2, 4; a failed row stays None
    assert speedups([10.0, 5.0, 10.0, None], [1, 1, 4, 1]) == pytest.approx([1.0, 2.0, 4.0, None])
    assert speedups([None, 5.0]) == [None, None]


def test_plan_rows_on_cpu(tmp_path):
    rows = plan_rows(["best.safetensors", "model.onnx"], [1, 2], [(500, 640)], device="cpu", providers=["cpu"])
    names = [(r.model, r.backend, r.mode, r.precision, r.batch) for r in rows]
    assert names == [
        ("best.safetensors", "torch", "eager", "fp32", 1),
        ("best.safetensors", "torch", "eager", "fp32", 2),
        ("model.onnx", "onnxruntime", "cpu", "model", 1),
        ("model.onnx", "onnxruntime", "cpu", "model", 2),
        (REFERENCE, "torch", "eager", "fp32", 1),
        (REFERENCE, "torch", "eager", "fp32", 2),
    ]
    assert rows[0].input_size == (512, 640)  # the frame size rounded up to a multiple of 32
    assert plan_rows(["model.onnx"], [1], [(512, 640)], device="cpu", providers=["cpu"])[-1].model == "model.onnx"
    with pytest.raises(ValueError, match="fp16 is for CUDA"):
        plan_rows(["best.safetensors"], [1], [(512, 640)], ["fp16"], device="cpu")
    with pytest.raises(ValueError, match="--batch values must be positive"):
        plan_rows(["model.onnx"], [0], [(512, 640)], device="cpu")
    with pytest.raises(ValueError, match="cannot tell the backend"):
        plan_rows(["model.bin"], [1], [(512, 640)], device="cpu")


def test_plan_rows_on_cuda_add_graph_and_fp16_rows():
    rows = plan_rows(["best.safetensors"], [1], [(512, 640)], ["fp32", "fp16"], device="cuda", reference=False)
    assert [(r.mode, r.precision) for r in rows] == [
        ("eager", "fp32"),
        ("eager", "fp16"),
        ("cuda-graph", "fp32"),
        ("cuda-graph", "fp16"),
    ]


def test_marker_model_rows_json_plot_and_table(marker_onnx, tmp_path):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(
        [
            "benchmark",
            "--model",
            str(marker_onnx),
            "--batch",
            "1",
            "3",
            "--imgsz",
            "96",
            "128",
            "--imgsz",
            "150",
            "300",
            "--iters",
            "4",
            "--warmup",
            "1",
            "--providers",
            "cpu",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
            "--quiet",
        ]
    )
    assert code == 0
    document = json.loads(out_json.read_text())
    assert document["schema"] == "sspnet-benchmark/1"
    assert {"machine", "settings", "rows", "created"} <= set(document)
    rows = document["rows"]
    assert [(r["batch"], r["frame_size"]) for r in rows] == [
        (1, [96, 128]),
        (3, [96, 128]),
        (1, [150, 300]),
        (3, [150, 300]),
    ]
    for row in rows:
        assert row["error"] is None and row["backend"] == "onnxruntime" and row["input_size"] == [96, 128]
        assert len(row["latencies_ms"]) == 4
        stats = latency_stats(row["latencies_ms"])
        assert row["latency_ms"]["p50"] == pytest.approx(stats["p50"], rel=1e-3)
        assert row["throughput_ips"] == pytest.approx(throughput(row["batch"], row["latencies_ms"]), rel=1e-3)
        assert set(row["stages_ms"]) == {"preprocess", "inference", "postprocess"}
        assert sum(row["stages_ms"].values()) <= row["latency_ms"]["mean"] * 1.01
        assert row["host_memory_mb"]["peak"] > 0
    assert [r["tiles_per_frame"] for r in rows] == [1, 1, 6, 6]  # 150 x 300 -> 2 x 3 tiles of 96 x 128
    per_image_p50 = [r["latency_ms"]["p50"] / r["batch"] for r in rows]
    assert [r["speedup_vs_first"] for r in rows] == pytest.approx([per_image_p50[0] / p for p in per_image_p50])
    assert out_png.read_bytes()[:8] == PNG_SIGNATURE


def test_failed_rows_are_reported_not_fatal(marker_onnx, tmp_path, capsys):
    specs = plan_rows(
        [str(marker_onnx), str(tmp_path / "missing.onnx")], [1], [(96, 128)], device="cpu", providers=["cpu"]
    )
    rows = add_speedups(run_benchmark(specs, BenchSettings(iters=2, warmup=0, progress=False), log=lambda *_: None))
    assert rows[0]["error"] is None and "does not exist" in rows[1]["error"]
    assert rows[1]["speedup_vs_first"] is None
    cells = table_rows(rows)
    assert len(cells[0]) == len(TABLE_HEADERS) == len(cells[1])
    assert cells[1][7].startswith("failed: FileNotFoundError")
    assert plot(rows, tmp_path / "p.png").read_bytes()[:8] == PNG_SIGNATURE
    # the command checks its model files up front: a missing one is a user mistake (exit 2, one line)
    code = main(
        ["benchmark", "--model", str(tmp_path / "missing.onnx"), "--iters", "1", "--quiet", "--providers", "cpu"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"sspnet benchmark: model file not found: {tmp_path / 'missing.onnx'}"


def test_accuracy_of_the_marker_model_on_a_data_folder(marker_onnx, tmp_path):
    # Ground truth = exactly the marker boxes (closed form), so AP50 on every range with GT is 100 %.
    from cli_markers import marker_frame, write_rgb
    from runtime_models import expected_detections
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    from sspnet.benchmark.harness import accuracy

    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "annotations").mkdir()
    images, annotations = [], []
    for k, markers in enumerate([[(20, 30, 200, 0), (100, 60, 150, 0)], [(60, 40, 220, 0)]]):
        write_rgb(tmp_path / "data" / "images" / f"{k}.png", marker_frame(96, 128, markers))
        images.append({"id": k + 1, "file_name": f"{k}.png", "width": 128, "height": 96})
        boxes, _, _ = expected_detections(markers, 96, 128)
        for x1, y1, x2, y2 in boxes.tolist():
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "data" / "annotations" / "val.json").write_text(json.dumps(gt))
    assert accuracy(OnnxRuntimeBackend(marker_onnx), str(tmp_path / "data")) == pytest.approx(100.0)


def test_torchvision_reference_row_runs():
    specs = [s for s in plan_rows(["x.safetensors"], [1], [(64, 96)], device="cpu") if s.model == REFERENCE]
    rows = run_benchmark(specs, BenchSettings(iters=1, warmup=0, progress=False, tegrastats=False), log=lambda *_: None)
    assert rows[0]["error"] is None, rows[0]["error"]
    assert rows[0]["model_label"].startswith("torchvision") and rows[0]["input_size"] == [64, 96]


ORIN = (
    "RAM 2345/30536MB (lfb 6655x4MB) SWAP 0/15268MB (cached 0MB) CPU [20%@729,10%@1190,off,off] "
    "EMC_FREQ 3%@3199 GR3D_FREQ 45%@[305,305] VIC_FREQ 729 APE 174 CPU@46.5C GPU@44C "
    "VDD_GPU_SOC 2392mW/2392mW VDD_CPU_CV 399mW/399mW VIN_SYS_5V0 3124mW/3000mW"
)
NANO = (
    "RAM 1637/3964MB (lfb 239x4MB) SWAP 0/1982MB (cached 0MB) CPU [3%@102,2%@102,0%@102,0%@102] "
    "EMC_FREQ 0%@1600 GR3D_FREQ 7%@76 APE 25 PLL@23C CPU@25.5C thermal@24.75C POM_5V_IN 1364/1364 "
    "POM_5V_GPU 0/0 POM_5V_CPU 124/124"
)


def test_tegrastats_lines_parse():
    orin = parse_line(ORIN)
    assert orin["ram_used_mb"] == 2345 and orin["cpu_percent"] == 15 and orin["cpu_mhz"] == (729 + 1190) / 2
    assert (orin["gpu_percent"], orin["gpu_mhz"], orin["emc_percent"], orin["emc_mhz"]) == (45, 305, 3, 3199)
    assert orin["temps_c"] == {"CPU": 46.5, "GPU": 44.0}
    assert orin["rails_mw"] == {"VDD_GPU_SOC": 2392, "VDD_CPU_CV": 399, "VIN_SYS_5V0": 3124}
    nano = parse_line(NANO)
    assert (nano["gpu_percent"], nano["gpu_mhz"]) == (7, 76)
    assert nano["rails_mw"] == {"POM_5V_IN": 1364, "POM_5V_GPU": 0, "POM_5V_CPU": 124}
    summary = summarize([NANO, NANO.replace("POM_5V_IN 1364/1364", "POM_5V_IN 1636/1500"), ""])
    assert summary["samples"] == 2 and summary["power_mw"] == 1500 and summary["gpu_percent"] == 7
    assert summarize(["nothing here"]) is None


def test_tegrastats_table_rows():
    from sspnet.benchmark.report import tegrastats_rows

    rows = [{"tegrastats": None}, {"tegrastats": summarize([ORIN])}]
    assert tegrastats_rows(rows) == [("2", "3.12", "45.0", "305", "3199", "15.0", "960", "1")]
