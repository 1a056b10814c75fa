"""Benchmark output: the terminal table, the JSON file and the PNG plot.

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

import json
import time
from pathlib import Path

from sspnet.benchmark.stats import speedups

SCHEMA = "sspnet-benchmark/1"
TABLE_HEADERS = ("#", "model", "backend", "mode", "prec", "batch", "frame", "mean ms", "p50 ms", "p90 ms",
                 "p99 ms", "img/s", "pre/inf/post ms", "host MB", "dev MB", "AP50-tiny", "speed vs #1")


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
        head = (str(number), row["model_label"], row["backend"], row["mode"], row["precision"], str(row["batch"]), frame)
        if row.get("error"):
            out.append(head + ("failed: " + row["error"][:60],) + ("",) * (len(TABLE_HEADERS) - len(head) - 1))
            continue
        latency, stages = row["latency_ms"], row["stages_ms"]
        tiles = row.get("tiles_per_frame", 1)
        if tiles and tiles > 1:
            head = head[:-1] + (f"{frame} ({tiles} tiles)",)
        out.append(head + (
            _fmt(latency["mean"], 2), _fmt(latency["p50"], 2), _fmt(latency["p90"], 2), _fmt(latency["p99"], 2),
            _fmt(row["throughput_ips"], 2),
            "/".join(_fmt(stages[k]) for k in ("preprocess", "inference", "postprocess")),
            _fmt(row["host_memory_mb"]["peak"], 0),
            _fmt((row["device_memory_mb"] or {}).get("peak"), 0),
            _fmt(row.get("ap50_tiny"), 2), _fmt(row.get("speedup_vs_first"), 2, "x"),
        ))
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
        out.append((str(number), _fmt(None if power is None else power / 1e3, 2), _fmt(stats.get("gpu_percent")),
                    _fmt(stats.get("gpu_mhz"), 0), _fmt(stats.get("emc_mhz"), 0), _fmt(stats.get("cpu_percent")),
                    _fmt(stats.get("cpu_mhz"), 0), str(stats["samples"])))
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.45 * len(ok) + 1.5)),
                                      gridspec_kw={"width_ratios": [3, 2]})
    if ok:
        labels = [f"#{n} {row['model_label']} {row['backend']} {row['mode']} {row['precision']} b{row['batch']} "
                  + "x".join(str(v) for v in row["frame_size"]) for n, row in ok]
        # matplotlib 3.10 replaced vert=False by orientation="horizontal"
        major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
        horizontal = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        left.boxplot([row["latencies_ms"] for _, row in ok], **horizontal, whis=(1, 99), showfliers=True,
                     flierprops={"markersize": 2})
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


__all__ = ["SCHEMA", "TABLE_HEADERS", "add_speedups", "save_figure", "table_rows", "tegrastats_rows", "print_benchmark_table",
           "benchmark_document", "write_json", "plot"]
