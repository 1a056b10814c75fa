"""Benchmark output: the terminal table, the JSON file, the PNG plot, and the demo's Markdown / HTML report.

JSON layout (`benchmark_document`):
    {"schema": "sspnet-benchmark/1", "created": ISO time, "machine": {...versions, cpu, gpu},
     "settings": {iters, warmup, threads, data, ...},
     "rows": [{"name", "model", "backend", "mode", "precision", "device", "batch", "frame_size",
               "input_size", "tiles_per_frame", "iters", "warmup",
               "latency_ms": {"mean", "std", "min", "max", "p50", "p90", "p99"},
               "throughput_ips", "stages_ms": {"preprocess", "inference", "postprocess"},
               "host_memory_mb": {"peak", "start", "per_row"}, "device_memory_mb": {"peak", "scope"} | null,
               "ap50_tiny", "tegrastats", "speedup_vs_first", "latencies_ms": [...], "error"}]}
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path

from sspnet.benchmark.stats import speedups

SCHEMA = "sspnet-benchmark/1"
TABLE_HEADERS = (
    "#",
    "model",
    "backend",
    "mode",
    "prec",
    "batch",
    "frame",
    "mean ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "img/s",
    "pre/inf/post ms",
    "host MB",
    "dev MB",
    "AP50-tiny",
    "speed vs #1",
)


def add_speedups(rows: list[dict]) -> list[dict]:
    """Set each row's "speedup_vs_first": the first row's median latency per image over this
    row's (p50 / batch; None without timings)."""
    p50s = [row["latency_ms"]["p50"] if not row.get("error") and "latency_ms" in row else None for row in rows]
    for row, value in zip(rows, speedups(p50s, [row["batch"] for row in rows])):
        row["speedup_vs_first"] = value
    return rows


def _fmt(value, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def table_rows(rows: list[dict]) -> list[tuple]:
    """One tuple of formatted cells per row, matching TABLE_HEADERS."""
    out = []
    for number, row in enumerate(rows, 1):
        frame = "x".join(str(v) for v in row["frame_size"])
        head = (
            str(number),
            row["model_label"],
            row["backend"],
            row["mode"],
            row["precision"],
            str(row["batch"]),
            frame,
        )
        if row.get("error"):
            out.append(head + ("failed: " + row["error"][:60],) + ("",) * (len(TABLE_HEADERS) - len(head) - 1))
            continue
        latency, stages = row["latency_ms"], row["stages_ms"]
        tiles = row.get("tiles_per_frame", 1)
        if tiles and tiles > 1:
            head = head[:-1] + (f"{frame} ({tiles} tiles)",)
        out.append(
            head
            + (
                _fmt(latency["mean"], 2),
                _fmt(latency["p50"], 2),
                _fmt(latency["p90"], 2),
                _fmt(latency["p99"], 2),
                _fmt(row["throughput_ips"], 2),
                "/".join(_fmt(stages[k]) for k in ("preprocess", "inference", "postprocess")),
                _fmt(row["host_memory_mb"]["peak"], 0),
                _fmt((row["device_memory_mb"] or {}).get("peak"), 0),
                _fmt(row.get("ap50_tiny"), 2),
                _fmt(row.get("speedup_vs_first"), 2, "x"),
            )
        )
    return out


TEGRASTATS_HEADERS = ("#", "power W", "GPU %", "GPU MHz", "EMC MHz", "CPU %", "CPU MHz", "samples")


def tegrastats_rows(rows: list[dict]) -> list[tuple]:
    """Jetson power and clocks of the rows that have a tegrastats summary (others are left out)."""
    out = []
    for number, row in enumerate(rows, 1):
        stats = row.get("tegrastats")
        if not stats:
            continue
        power = stats.get("power_mw")
        out.append(
            (
                str(number),
                _fmt(None if power is None else power / 1e3, 2),
                _fmt(stats.get("gpu_percent")),
                _fmt(stats.get("gpu_mhz"), 0),
                _fmt(stats.get("emc_mhz"), 0),
                _fmt(stats.get("cpu_percent")),
                _fmt(stats.get("cpu_mhz"), 0),
                str(stats["samples"]),
            )
        )
    return out


def print_benchmark_table(rows: list[dict]) -> None:
    """The main table, and the tegrastats table when rows ran on a Jetson."""
    from sspnet.io.table import print_table

    print_table(table_rows(rows), headers=TABLE_HEADERS)
    jetson = tegrastats_rows(rows)
    if jetson:
        print("\ntegrastats (means over each row's timed iterations):")
        print_table(jetson, headers=TEGRASTATS_HEADERS)


def benchmark_document(rows: list[dict], machine: dict, settings: dict) -> dict:
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": settings,
        "rows": rows,
    }


def write_json(path: str | Path, document: dict) -> Path:
    from sspnet.io.atomic import atomic_write_json

    return atomic_write_json(path, json.loads(json.dumps(document, default=str)))


def plot(rows: list[dict], path: str | Path, title: str = "sspnet benchmark") -> Path:
    """PNG with two panels: the latency distribution of every row (box plot, p1-p99 whiskers) and
    throughput against batch size, one line per configuration (model, backend, mode, precision,
    frame size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [(number, row) for number, row in enumerate(rows, 1) if not row.get("error") and row.get("latencies_ms")]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, max(3.5, 0.45 * len(ok) + 1.5)), gridspec_kw={"width_ratios": [3, 2]}
    )
    if ok:
        labels = [
            f"#{n} {row['model_label']} {row['backend']} {row['mode']} {row['precision']} b{row['batch']} "
            + "x".join(str(v) for v in row["frame_size"])
            for n, row in ok
        ]
        # matplotlib 3.10 replaced vert=False by orientation="horizontal"
        major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
        horizontal = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        left.boxplot(
            [row["latencies_ms"] for _, row in ok],
            **horizontal,
            whis=(1, 99),
            showfliers=True,
            flierprops={"markersize": 2},
        )
        left.set_yticks(range(1, len(ok) + 1), labels, fontsize=8)
        left.invert_yaxis()
    left.set_xlabel("latency per call (ms)")
    left.set_title("latency distribution (box: p25-p75, whiskers: p1-p99)", fontsize=10)
    left.grid(axis="x", alpha=0.3)

    series: dict[str, list[tuple[int, float]]] = {}
    for _, row in ok:
        frame = "x".join(str(v) for v in row["frame_size"])
        key = f"{row['model_label']} {row['backend']} {row['mode']} {row['precision']} {frame}"
        series.setdefault(key, []).append((row["batch"], row["throughput_ips"]))
    for key, points in series.items():
        points.sort()
        right.plot([b for b, _ in points], [t for _, t in points], marker="o", label=key)
    right.set_xlabel("batch (frames per call)")
    right.set_ylabel("throughput (images/s)")
    right.set_title("throughput vs batch", fontsize=10)
    right.grid(alpha=0.3)
    if series:
        right.legend(fontsize=7, loc="best")
        batches = sorted({b for points in series.values() for b, _ in points})
        right.set_xticks(batches)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG through the atomic writer, then close it."""
    import matplotlib.pyplot as plt

    from sspnet.io.atomic import atomic_output

    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path


# ---- the demo report ---------------------------------------------------------------------------

MIN_AP50_TINY = 50.0  # percent: below it the demo's model is "not trained well enough"


def training_verdict(ap50_tiny: float | None, iterations: int, quick: bool) -> tuple[bool, str]:
    """(trained well enough, one sentence saying so) for a model of this AP50-tiny (percent) after this many
    iterations; None or NaN counts as not trained."""
    trained = ap50_tiny is not None and math.isfinite(ap50_tiny) and ap50_tiny >= MIN_AP50_TINY
    if trained:
        return True, f"trained well enough: AP50-tiny {ap50_tiny:.2f} % >= {MIN_AP50_TINY:g} %"
    advice = (
        " (--quick trains only a few iterations)"
        if quick
        else "; do not use this model (rerun the demo; if it happens again, report it)"
    )
    return False, (
        f"NOT TRAINED WELL ENOUGH: AP50-tiny {_fmt(ap50_tiny, 2)} % is below {MIN_AP50_TINY:g} % after "
        f"{iterations} iterations{advice}"
    )


def demo_report(summary: dict, benchmark_rows: list[dict], samples: list[str], attention: list[str]) -> tuple[str, str]:
    """The demo's report as (Markdown, HTML), rendered from its summary.json content and nothing else but
    the benchmark rows and the pictures' paths (relative to the report's folder).

    Summary fields read: "trained_well_enough" and "verdict" (a warning banner right under the title when
    not trained), "wall_time_s", "quick", the headline "AP50_tiny", "AP50_tiny_onnxruntime", "torch_ms_p50",
    "onnxruntime_ms_p50", "speedup_onnxruntime_vs_torch"; "int8" (fp32_ms_p50; per form "symmetric" /
    "asymmetric": file, AP50_tiny, ms_p50, speedup_vs_fp32; the symmetric form's method, calibration_tiles,
    float_groups); "stage_seconds"; "data" (size_wh, seed, train / val images and boxes); "train" (preset,
    iterations, batch_size, lr, seconds, overrides); "metrics" (the TinyPerson AP / MR table); "files"
    (benchmark_plot and the files table). `benchmark_rows` are benchmark.json's rows (the speed table).
    """
    blocks = _demo_report_blocks(summary, benchmark_rows, samples, attention)
    return render_markdown(blocks), render_html(blocks)


def _demo_report_blocks(summary: dict, benchmark_rows: list[dict], samples: list[str], attention: list[str]):
    """The report as blocks: ("h1"|"h2"|"p"|"warning", text), ("table", headers, rows),
    ("images", [(path, caption)])."""
    from sspnet.evaluation.tinyperson import TABLE_HEADERS as METRIC_HEADERS
    from sspnet.evaluation.tinyperson import results_table_rows

    train, data, int8 = summary["train"], summary["data"], summary["int8"]
    width, height = data["size_wh"]
    blocks = [("h1", "sspnet demo report")]
    if not summary["trained_well_enough"]:
        blocks.append(("warning", f"WARNING: {summary['verdict']}."))
    blocks += [
        (
            "p",
            "Synthetic tiny-person data -> training -> TinyPerson evaluation -> ONNX export -> ONNX Runtime -> "
            f"INT8 -> benchmark, on this machine's CPU in {summary['wall_time_s']:.0f} s"
            + (" (--quick: tiny data and few iterations, numbers are not meaningful)." if summary["quick"] else "."),
        ),
        (
            "table",
            (
                "AP50-tiny PyTorch (%)",
                "AP50-tiny ONNX Runtime (%)",
                "PyTorch p50 (ms)",
                "ONNX Runtime p50 (ms)",
                "ONNX Runtime speed-up",
            ),
            [
                (
                    _fmt(summary["AP50_tiny"], 2),
                    _fmt(summary["AP50_tiny_onnxruntime"], 2),
                    _fmt(summary["torch_ms_p50"]),
                    _fmt(summary["onnxruntime_ms_p50"]),
                    _fmt(summary["speedup_onnxruntime_vs_torch"], 2, "x"),
                )
            ],
        ),
        ("h2", "INT8 (Q/DQ) beside fp32, ONNX Runtime CPU"),
        (
            "table",
            ("model", "AP50-tiny (%)", "p50 (ms)", "speed vs fp32"),
            [("fp32 (model.onnx)", _fmt(summary["AP50_tiny_onnxruntime"], 2), _fmt(int8["fp32_ms_p50"]), "1.00x")]
            + [
                (
                    f"INT8 {what} ({int8[form]['file']})",
                    _fmt(int8[form]["AP50_tiny"], 2),
                    _fmt(int8[form]["ms_p50"]),
                    _fmt(int8[form]["speedup_vs_fp32"], 2, "x"),
                )
                for form, what in (("symmetric", "TensorRT form"), ("asymmetric", "ONNX Runtime CPU form"))
            ],
        ),
        (
            "p",
            f"Calibrated ({int8['symmetric']['method']}) on {int8['symmetric']['calibration_tiles']} train images; "
            f"layers kept in float: {', '.join(int8['symmetric']['float_groups']) or 'none'}. The TensorRT form "
            "(int8, zero point 0, float biases) is what `sspnet build-engine` takes; ONNX Runtime on x86 cannot "
            "fuse its Conv+ReLU, so the CPU form (uint8 activations, int32 biases) is the fast one here. "
            "Latencies come from one interleaved measurement of the three models (batch 1).",
        ),
        ("h2", "Stages"),
        (
            "table",
            ("stage", "seconds"),
            [(name, f"{seconds:.1f}") for name, seconds in summary["stage_seconds"].items()],
        ),
        ("h2", "Data and training"),
        (
            "p",
            f"{data['train']['images']} training and {data['val']['images']} validation "
            f"images of {width}x{height} px ({data['train']['boxes']} + {data['val']['boxes']} people), "
            f"seed {data['seed']}. Preset `{train['preset']}` trained "
            f"from scratch for {train['iterations']} iterations (batch {train['batch_size']}, lr {train['lr']}) "
            f"in {train['seconds']:.0f} s; overrides: `{json.dumps(train['overrides'])}`.",
        ),
        ("h2", "Accuracy (TinyPerson protocol, val split, PyTorch)"),
        ("table", METRIC_HEADERS, results_table_rows(summary["metrics"])),
        (
            "p",
            "ONNX Runtime (portable export, hard NMS) on the same images: AP50-tiny "
            f"{_fmt(summary['AP50_tiny_onnxruntime'], 2)} %.",
        ),
        ("h2", "Speed (CPU, batch 1, one frame of the export size per call)"),
        ("table", TABLE_HEADERS, table_rows(benchmark_rows)),
        (
            "p",
            "speed vs #1: median latency per image of row 1 over the row's. "
            "pre/inf/post: mean pre-process / inference / post-process time per call.",
        ),
        ("images", [(summary["files"]["benchmark_plot"], "latency distribution and throughput")]),
        ("h2", "Sample detections (ONNX Runtime)"),
        ("images", [(path, Path(path).name) for path in samples]),
        ("h2", "Attention maps (PyTorch)"),
        (
            "p",
            "SSPNet's context attention module predicts one map per pyramid level (A0..A3, strides 4-32); "
            "each panel shows one level blended over the image.",
        ),
        ("images", [(path, Path(path).name) for path in attention]),
        ("h2", "Files"),
        ("table", ("what", "path"), list(summary["files"].items())),
    ]
    return blocks


def render_markdown(blocks: list[tuple]) -> str:
    """Report blocks (see _demo_report_blocks) as Markdown: tables as pipe tables, images as links."""
    lines = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "warning":
            lines += [f"> **{block[1]}**", ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "|".join("---" for _ in headers) + "|")
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "images":
            lines += [f"![{caption}]({path})" for path, caption in block[1]] + [""]
    return "\n".join(lines)


def render_html(blocks: list[tuple]) -> str:
    """Report blocks as one self-contained HTML page (inline style; images referenced by path)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sspnet demo report</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px}"
        "img{max-width:100%;margin:4px;border:1px solid #ddd}figure{display:inline-block;margin:4px}",
        "</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "warning":
            parts.append(
                "<p style='border:3px solid #c00;background:#fee;color:#900;padding:1em;font-size:1.3em;"
                f"font-weight:bold'>{html.escape(block[1])}</p>"
            )
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1]) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2]]
            parts.append("</table>")
        elif kind == "images":
            parts += [
                f"<figure><img src='{html.escape(path)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                for path, caption in block[1]
            ]
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = [
    "SCHEMA",
    "TABLE_HEADERS",
    "add_speedups",
    "save_figure",
    "table_rows",
    "tegrastats_rows",
    "print_benchmark_table",
    "benchmark_document",
    "write_json",
    "plot",
    "MIN_AP50_TINY",
    "training_verdict",
    "demo_report",
    "render_markdown",
    "render_html",
]
