"""Results pages for the docs site, generated from benchmarks/results/*.json at every docs build.

Why generated: a number copied by hand into a page goes stale the day the benchmark is rerun. Every
number on these pages is read out of a results JSON through `Source`, which remembers what it handed
out; `check_traced` then refuses a page holding a number that did not come from its JSON (a number typed
into this file's prose, say), so the docs can only show what a benchmark wrote.

One page per JSON (results/<stem>.md). A JSON without a dedicated renderer below still gets a page: the
generic one lists its scalar fields. Run by the MkDocs hook (docs/gen/hooks.py) or by hand:
    python docs/gen/results.py --out /tmp/results_pages
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"

# Scripts that write a JSON without recording their own command line: named so each page still says
# how to rerun it (the exact options used are then "not recorded").
SCRIPT_OF = {
    "roi_align_cpu": "python benchmarks/bench_roi_align.py --device cpu",
    "nms_cpu": "python benchmarks/bench_nms.py --device cpu",
    "export_parity": "python benchmarks/bench_export_parity.py",
    "export_parity_trained": "python benchmarks/bench_export_parity.py --checkpoint RUN/last.safetensors --data DATA",
    "export_speed_cpu": "python benchmarks/bench_export_speed.py",
    "tile_memory": "python benchmarks/bench_tile_memory.py",
    "tile_memory_r50_random_4k": "python benchmarks/bench_tile_memory.py --model R50_EXPORT.onnx",
    "attention_diagnostics": "python benchmarks/attention_diagnostics.py",
    "demo_summary": "sspnet demo --out demo_out",  # the demo's summary.json, copied
}

# A number as it appears in running text: not part of a word or name (AP50, fp16, r50, tiny1 are names),
# but "2.12x" and "640 x 512" count. Dates and versions are kept whole so they are matched as one token.
_NUMBER = re.compile(r"(?<![\w.\-/])-?(?>\d+(?:[.,:\-]\d+)*)(?=x\b|%|(?![\w/]|\.\d))")


def number_tokens(text: str) -> list[str]:
    """The numeric tokens of a text, as `check_traced` compares them."""
    text = re.sub(r"(\d)x(\d)", r"\1 x \2", text)  # 640x512 -> two numbers
    return [t.lstrip("-") for t in _NUMBER.findall(text)]


class UntracedNumber(ValueError):
    """A generated page shows a number that its JSON did not supply."""


class Source:
    """One results JSON; every value a page shows goes through here so it can be traced back."""

    def __init__(self, path: Path):
        self.path = path
        self.stem = path.stem
        self.data = json.loads(path.read_text())
        self.handed_out: set[str] = set()

    def get(self, path: str, default=None, data=None):
        """The raw value at a dotted path ("int8.symmetric.ms_p50"); `default` where it is missing."""
        node = self.data if data is None else data
        for key in path.split(".") if path else []:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return default
        return node

    def show(self, value, spec: str = "") -> str:
        """Format a value read from this JSON and remember its number tokens."""
        if value is None:
            text = "-"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (int, float)):
            text = format(value, spec)
        elif isinstance(value, (list, tuple)):
            text = " x ".join(self.show(v, spec) for v in value)
        else:
            text = " ".join(str(value).split())  # one line: a newline would end a table row
        self.handed_out.update(number_tokens(text))
        return text

    def fmt(self, path: str, spec: str = "", data=None) -> str:
        return self.show(self.get(path, data=data), spec)


def check_traced(page: str, handed_out: set[str], name: str, origin: str) -> None:
    """Refuse a page with a number its JSON(s) did not hand out."""
    untraced = sorted({t for t in number_tokens(page) if t not in handed_out})
    if untraced:
        raise UntracedNumber(f"{name}: numbers not read from {origin}: {', '.join(untraced[:10])}")


# ---- shared pieces ---------------------------------------------------------------------------------


def machine(src: Source) -> str:
    """The machine as the JSON records it; never more than it says."""
    d = src.data
    parts = []
    m = d.get("machine")
    if isinstance(m, dict):
        for key in ("processor", "platform"):
            if m.get(key):
                parts.append(src.show(m[key]))
        cpus = m.get("cpu_count", m.get("cpus"))
        if cpus is not None:
            parts.append(f"{src.show(cpus)} CPUs")
        if m.get("cuda_device"):
            parts.append(f"GPU {src.show(m['cuda_device'])}")
        load = m.get("load_average")
        if load:
            parts.append(f"load average before the run: {src.show(load, '.2f').replace(' x ', ' / ')}")
    elif isinstance(m, str):
        parts.append(src.show(m))
    name = next((d[k] for k in ("device_name", "cpu") if isinstance(d.get(k), str) and d[k]), None)
    if not name and d.get("device") not in (None, "cpu", "cuda"):
        name = d["device"]
    if name:
        parts.insert(0, src.show(name))
    cpus = d.get("cpu_count", (d.get("threads") or {}).get("cpu_count") if isinstance(d.get("threads"), dict) else None)
    if cpus is not None:
        parts.append(f"{src.show(cpus)} CPUs")
    for key, when in (("load_average_before", "before the run"), ("load_average_before_after", "before / after")):
        load = d.get(key)
        if isinstance(load, dict):
            load = [load.get("before"), load.get("after")]
        if load:
            runs = load if all(isinstance(v, list) for v in load) else [load]
            text = " and ".join(src.show(v, ".2f").replace(" x ", " / ") for v in runs)
            parts.append(f"load average {when}: {text}")
    if not parts:
        return "not recorded in the JSON"
    if not name and not (isinstance(m, dict) and m.get("processor")):
        parts.append("CPU model not recorded")
    return ", ".join(parts)


def command(src: Source) -> str:
    cmd = src.get("command") or src.get("settings.command")
    if cmd:
        return f"`{src.show(cmd)}`"
    if src.stem in SCRIPT_OF:
        return f"`{SCRIPT_OF[src.stem]}` (the JSON does not record its exact command line)"
    return "not recorded in the JSON"


def header(src: Source, title: str, what: str) -> str:
    date = src.get("created") or src.get("date")
    lines = [
        f"# {title}",
        "",
        what,
        "",
        f"- **Command:** {command(src)}",
        f"- **Machine:** {machine(src)}",
        f"- **Data:** `benchmarks/results/{src.path.name}`",
    ]
    if date:
        lines.append(f"- **Date:** {src.show(date)}")
    return "\n".join(lines) + "\n"


def table(src: Source, rows, columns) -> str:
    """A Markdown table; columns are (header, dotted path or callable(row) -> str, format spec)."""
    out = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for _, path, spec in columns:
            cells.append(path(row) if callable(path) else src.fmt(path, spec, data=row))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def latency_columns(prefix: str = ""):
    p = f"{prefix}." if prefix else ""
    return [("p50 (ms)", f"{p}p50", ".1f"), ("p90 (ms)", f"{p}p90", ".1f"), ("p99 (ms)", f"{p}p99", ".1f")]


AP_COLUMNS = ["AP50_tiny", "AP50_tiny1", "AP50_tiny2", "AP50_tiny3", "AP50_small", "AP50_all"]


def ap_columns(prefix: str):
    return [(name.replace("_", "-"), f"{prefix}.{name}", ".2f") for name in AP_COLUMNS]


# ---- one renderer per results file ---------------------------------------------------------------


def render_demo_summary(src: Source) -> str:
    out = header(
        src,
        "The demo",
        "What `bash scripts/demo.sh` (`sspnet demo`) measured: a model trained on the "
        "synthetic set, its accuracy and latency in PyTorch and ONNX Runtime, fp32 and INT8.",
    )
    out += f"\nVerdict: **{src.fmt('verdict')}**. End to end {src.fmt('wall_time_s', '.0f')} s.\n\n"
    rows = [
        ("PyTorch eager", "AP50_tiny", "torch_ms_p50"),
        ("ONNX Runtime, portable graph (hard NMS)", "AP50_tiny_onnxruntime", "onnxruntime_ms_p50"),
        ("ONNX Runtime, INT8 TensorRT form (symmetric Q/DQ)", "AP50_tiny_int8", "onnxruntime_int8_ms_p50"),
        ("ONNX Runtime, INT8 CPU form (asymmetric Q/DQ)", "AP50_tiny_int8_cpu", "onnxruntime_int8_cpu_ms_p50"),
    ]
    out += "| model | AP50-tiny | latency p50 (ms) |\n|---|---|---|\n"
    for label, ap, ms in rows:
        out += f"| {label} | {src.fmt(ap, '.2f')} | {src.fmt(ms, '.1f')} |\n"
    out += (
        "\nSpeed-ups measured in the same run: ONNX Runtime over PyTorch "
        f"{src.fmt('speedup_onnxruntime_vs_torch', '.2f')}x; "
        f"INT8 TensorRT form over fp32 ONNX Runtime {src.fmt('speedup_int8_vs_fp32', '.2f')}x; "
        f"INT8 CPU form over fp32 ONNX Runtime {src.fmt('speedup_int8_cpu_vs_fp32', '.2f')}x "
        "(why the symmetric form is slower on a CPU: [INT8](int8.md)).\n"
    )
    stages = src.get("stage_seconds") or {}
    if stages:
        out += "\n**Time per stage (s)**\n\n| " + " | ".join(stages) + " |\n|" + "---|" * len(stages) + "\n| "
        out += " | ".join(src.show(v, ".1f") for v in stages.values()) + " |\n"
    metrics = src.get("metrics") or {}
    if metrics:
        out += "\n**All metrics of the PyTorch model (percent)**\n\n| metric | value |\n|---|---|\n"
        out += "".join(f"| {src.show(k)} | {src.show(v, '.2f')} |\n" for k, v in metrics.items())
    return out


def render_contention(src: Source) -> str:
    out = header(
        src,
        f"On a busy computer ({src.stem})",
        "Latency of each backend alone (quiet) and next to busy neighbour processes (loaded), "
        "each row quiet and loaded in the same run and in its own process. "
        "Why sspnet changes the OpenMP / ONNX Runtime defaults: "
        "[onboard inference](../inference.md#on-a-busy-computer).",
    )
    out += (
        f"\nNeighbours: {src.fmt('settings.neighbours')}; model input "
        f"{src.fmt('settings.model.input_size')}; trained weights: {src.fmt('settings.model.trained')}.\n\n"
    )
    out += table(
        src,
        src.get("rows", []),
        [
            ("setting", "label", ""),
            ("quiet p50 (ms)", "quiet.p50", ".0f"),
            ("loaded p50 (ms)", "loaded.p50", ".0f"),
            ("slow-down p50", lambda r: src.show(r.get("slowdown_p50"), ".1f") + "x", ""),
            ("quiet p99 (ms)", "quiet.p99", ".0f"),
            ("loaded p99 (ms)", "loaded.p99", ".0f"),
        ],
    )
    bounds = src.get("settings.one_core_bound", {}) or {}
    if bounds:
        out += (
            "\n**The lowest slow-down reachable.** The neighbour runs in its own session, so Linux gives this "
            "process about one of the two cores while it runs: no thread count can make a call faster than one "
            "thread on a quiet machine. Bound = one thread's quiet p50 / the sspnet default's quiet p50.\n\n"
            "| backend | one thread quiet p50 (ms) | default quiet p50 (ms) | bound | default's slow-down |\n"
            "|---|---|---|---|---|\n"
        )
        for group in bounds:
            key = f"settings.one_core_bound.{group}"
            out += (
                f"| {src.show(group)} | {src.fmt(key + '.one_thread_quiet_p50_ms', '.0f')} | "
                f"{src.fmt(key + '.default_quiet_p50_ms', '.0f')} | {src.fmt(key + '.bound', '.2f')}x | "
                f"{src.fmt(key + '.default_slowdown_p50', '.2f')}x |\n"
            )
    out += (
        '\nThe "before" rows collapse because OpenMP and ONNX Runtime worker threads spin-wait at barriers '
        "while a sibling thread is descheduled, burning the time slice the sibling needs; `runtime/threads.py` "
        "explains each setting sspnet chose.\n"
    )
    return out


def render_int8(src: Source) -> str:
    out = header(
        src,
        "INT8 quantization",
        "`sspnet quantize` on the demo model: accuracy of each calibration "
        "method and form, and ONNX Runtime CPU latency. How to use it: [INT8](../int8.md).",
    )
    dm = "demo_model"
    out += (
        f"\nfp32 AP50-tiny {src.fmt(dm + '.fp32_ap50_tiny', '.2f')}; AP budget {src.fmt('ap_loss_limit')} point; "
        f"speed-up goal {src.fmt('speedup_goal')}x.\n\n**Calibration methods and forms (demo model)**\n\n"
    )
    variant_columns = [
        ("method", "method", ""),
        ("form", "activations", ""),
        ("float groups", lambda r: src.show(", ".join(r.get("float_groups") or []) or "none"), ""),
        ("AP50-tiny", "ap50_tiny", ".2f"),
        ("quantized nodes", "quantized_nodes", ""),
    ]
    out += table(src, src.get(dm + ".methods", []), variant_columns)
    out += "\n**Layer groups kept float (best method)**\n\n"
    out += table(src, src.get(dm + ".float_groups", []), variant_columns)
    for form in ("symmetric", "asymmetric"):
        if src.get(f"{dm}.{form}"):
            out += (
                f"\n{form.capitalize()} form as chosen: {src.fmt(f'{dm}.{form}.method')} calibration, AP50-tiny "
                f"{src.fmt(f'{dm}.{form}.ap50_tiny', '.2f')}."
            )
    out += (
        "\n\nWhy two forms: the symmetric int8 form (zero point at zero) is the one TensorRT 10/11 build; ONNX Runtime "
        "on x86 runs much of it in float, so it is no faster there. The asymmetric uint8 form is ONNX "
        "Runtime's fast x86 path.\n"
    )
    for model, title in ((dm, "demo model"), ("faster_rcnn", "faster_rcnn_r50_sspnet, random weights (latency only)")):
        lat = src.get(model + ".latency_ms") or {}
        if not lat:
            continue
        out += f"\n**Latency, {title}, input {src.fmt(model + '.input_size')}**\n\n"
        rows = [dict(form=k, **v) for k, v in lat.items()]
        out += table(
            src,
            rows,
            [("form", "form", "")]
            + latency_columns()
            + [("speed-up vs fp32", lambda r, m=model: src.show(src.get(f"{m}.speedup.{r['form']}"), ".2f"), "")],
        )
    forms = src.get(dm + ".tensorrt_forms") or {}
    if forms:
        out += "\n**TensorRT form: Q/DQ placement and float type (best method)**\n\n"
        rows = [dict(variant=name, **row) for name, row in forms.items()]
        out += table(
            src,
            rows,
            [
                ("variant", "variant", ""),
                ("placement", "placement", ""),
                ("float type", "float_type", ""),
                ("AP50-tiny (Q/DQ as written)", "ap50_tiny", ".2f"),
                ("AP50-tiny (ONNX Runtime int8 kernels)", "ap50_tiny_onnxruntime_kernels", ".2f"),
                ("lint errors", "lint.errors", ""),
                ("fusion blockers", "lint.fusion_blockers_total", ""),
            ],
        )
    out += f"\nCode defaults when this ran: {src.fmt('code_defaults.method')} calibration.\n"
    return out


def render_int8_placement(src: Source) -> str:
    out = header(
        src,
        "INT8 Q/DQ placement for TensorRT",
        "Every preset's `tensorrt`-flavour export quantized with ONNX Runtime's Q/DQ placement (before) and "
        "the TensorRT placement (now): TensorRT-lint errors and fusion blockers; Model Optimizer's placement "
        "of the `portable` export beside ours. Rules: [INT8](../int8.md).",
    )
    out += f"\nInput {src.fmt('input_size')}; weights: {src.fmt('weights')}.\n\n"
    rows = []
    for preset, row in (src.get("presets") or {}).items():
        for variant, values in row.items():
            rows.append(dict(preset=preset, variant=variant, **values))
    out += table(
        src,
        rows,
        [
            ("preset", "preset", ""),
            ("variant", "variant", ""),
            ("Q/DQ nodes", "qdq_nodes", ""),
            ("lint errors", "errors", ""),
            ("fusion blockers", "fusion_blockers_total", ""),
            ("Q on weighted output", "fusion_blockers.q-on-weighted-output", ""),
            ("Q/DQ around ReLU", "fusion_blockers.qdq-around-relu", ""),
            ("Add both quantized", "fusion_blockers.add-both-quantized", ""),
            ("concat scales", "fusion_blockers.concat-scales", ""),
            ("DQ into plugin", "fusion_blockers.dq-into-plugin", ""),
        ],
    )
    return out


def render_tile_memory(src: Source) -> str:
    out = header(
        src,
        f"Memory for any frame size ({src.stem})",
        "Peak memory of tiled inference above the "
        "frame itself, with the tiles sent in chunks (`--max-tiles-per-batch`) or all at once. "
        "Tiling: [onboard inference](../inference.md#tiling).",
    )
    out += f"\nModel: {src.fmt('model')}. {src.fmt('note')}.\n\n"
    out += table(
        src,
        src.get("rows", []),
        [
            ("frame", "frame", ""),
            ("tiles", "tiles", ""),
            ("tiles per batch", lambda r: src.show(r.get("max_tiles_per_batch") or "all"), ""),
            ("model calls", "model_calls", ""),
            ("extra RSS (MB)", "detect_extra_mb", ".1f"),
            ("peak RSS (MB)", "rss_mb.peak", ".1f"),
            ("detect (s)", "detect_seconds", ".2f"),
        ],
    )
    return out


def render_fp16_rois(src: Source) -> str:
    out = header(
        src,
        f"fp16 vs fp32 RoIs ({src.stem})",
        "What rounding RoI coordinates to fp16 (as an fp16 "
        "TensorRT engine may do at the RoIAlign plugin's input) costs, emulated with the CPU kernels.",
    )
    out += (
        f"\nWeights: {src.fmt('weights.checkpoint') if isinstance(src.get('weights'), dict) else src.fmt('weights')}. "
    )
    out += f"Emulation: {src.fmt('emulation')}.\n"
    if src.get("training.note"):
        out += f"\nTraining: {src.fmt('training.note')}.\n"
    if src.get("evaluation"):
        out += f"\nEvaluation: {src.fmt('evaluation')}.\n"
    out += "\nStrict and loose detection matches are defined in `benchmarks/trt_fp16_rois.py`.\n\n"
    if src.get("layouts"):
        out += table(
            src,
            src.get("layouts"),
            [
                ("frame", "layout", ""),
                ("size", "frame_hw", ""),
                ("AP50-tiny fp32 RoIs", "ground_truth.fp32_rois.AP50_tiny", ".2f"),
                ("AP50-tiny fp16 RoIs", "ground_truth.fp16_rois.AP50_tiny", ".2f"),
                ("difference", "ground_truth.difference.AP50_tiny", "+.2f"),
                ("detections matched, strict (%)", "detections.matched_pct", ".1f"),
                ("detections matched, loose (%)", "detections.matched_pct_iou90_score01", ".1f"),
                ("median box change (px)", "detections.box_change_px_iou50_p50", ".2f"),
            ],
        )
    else:
        out += table(
            src,
            src.get("sizes", []),
            [
                ("input", "imgsz", ""),
                ("images", "images", ""),
                ("max RoI coordinate change (px)", "roi.max_coordinate_change_px", ".3f"),
                ("detections matched (%)", "detections.matched_pct", ".1f"),
                ("AP50 vs fp32 reference", "detections.ap50_vs_fp32_reference", ".1f"),
            ],
        )
    return out


def render_fovea(src: Source) -> str:
    out = header(
        src,
        "FoveaBox: v1 or v2 attention supervision",
        "The synthetic-cpu recipe with only the "
        "attention loss changed, several training seeds; AP50-tiny on the val split. "
        "What v1 and v2 are: [the model](../model.md#attention-supervision-v1-and-v2).",
    )
    seeds = [str(s) for s in src.get("seeds", [])]
    cols = [("supervision", "cell", "")]
    for s in seeds:
        cols.append(
            (
                f"seed {src.show(int(s))}",
                lambda r, s=s: src.show(src.get(f"runs.{r['cell']}.{s}.AP50_tiny_percent_plain"), ".2f"),
                "",
            )
        )
    for s in seeds:
        cols.append(
            (
                f"seed {src.show(int(s))}, 2 scales",
                lambda r, s=s: src.show(src.get(f"runs.{r['cell']}.{s}.AP50_tiny_percent_two_scale"), ".2f"),
                "",
            )
        )
    out += "\n" + table(src, [{"cell": c} for c in src.get("runs", {})], cols)
    out += (
        "\nA difference between v1 and v2 smaller than the spread between seeds cannot decide between them "
        "on accuracy; the default `fovea_r50_sspnet` is v1, the configuration that exists in full in the "
        "original repository (v2 needs a head the authors never published).\n"
    )
    summary = src.get("summary_percent")
    if summary:
        out += "\n**Means over seeds (percent)**\n\n" + table(
            src,
            [{"cell": c} for c in summary],
            [
                ("supervision", "cell", ""),
                (
                    "AP50-tiny",
                    lambda r: src.show(src.get(f"summary_percent.{r['cell']}.plain.AP50_tiny.mean"), ".2f"),
                    "",
                ),
                (
                    "AP50-tiny, 2 scales",
                    lambda r: src.show(src.get(f"summary_percent.{r['cell']}.two_scale.AP50_tiny.mean"), ".2f"),
                    "",
                ),
                (
                    "MR50-tiny",
                    lambda r: src.show(src.get(f"summary_percent.{r['cell']}.plain.MR50_tiny.mean"), ".2f"),
                    "",
                ),
            ],
        )
    return out


def render_mr(src: Source) -> str:
    out = header(
        src,
        "Miss rate: exact vs the official script",
        "The same detections scored with "
        "`--mr exact` (default) and `--mr official`; see [evaluation](../evaluation.md#miss-rate).",
    )
    for split in src.get("splits", {}):
        p = f"splits.{split}"
        out += f"\n**{split}** ({src.fmt(p + '.images')} images)\n\n"
        keys = [k for k in src.get(p + ".MR_exact", {}) if k.startswith("MR50")]
        rows = [{"k": k} for k in keys]
        out += table(
            src,
            rows,
            [
                ("metric", "k", ""),
                ("exact", lambda r, p=p: src.show(src.get(f"{p}.MR_exact.{r['k']}"), ".2f"), ""),
                ("official", lambda r, p=p: src.show(src.get(f"{p}.MR_official.{r['k']}"), ".2f"), ""),
                (
                    "official - exact",
                    lambda r, p=p: src.show(src.get(f"{p}.official_minus_exact.{r['k']}"), "+.2f"),
                    "",
                ),
            ],
        )
    return out


def render_roi_align(src: Source) -> str:
    out = header(
        src,
        "Multi-level RoIAlign kernel",
        "sspnet's multi-level RoIAlign against torchvision's "
        "`MultiScaleRoIAlign` and a per-level loop of `roi_align`, median of rounds.",
    )
    out += (
        f"\nCase: {src.fmt('config.num_rois')} RoIs, {src.fmt('config.channels')} channels, input "
        f"{src.fmt('config.image_hw')}, output {src.fmt('config.output_size')}, batch {src.fmt('config.batch')}, "
        f"{src.fmt('torch_threads')} threads. Largest difference from torchvision: "
        f"{src.fmt('max_abs_diff_vs_ours.multiscale', '.1e')}.\n\n"
    )
    rows = [{"pass": k} for k in ("forward", "forward_backward") if src.get(k)]
    out += table(
        src,
        rows,
        [
            ("pass", "pass", ""),
            ("sspnet (ms)", lambda r: src.show(src.get(f"{r['pass']}.median_ms.ours"), ".1f"), ""),
            ("MultiScaleRoIAlign (ms)", lambda r: src.show(src.get(f"{r['pass']}.median_ms.multiscale"), ".1f"), ""),
            ("per-level loop (ms)", lambda r: src.show(src.get(f"{r['pass']}.median_ms.per_level_loop"), ".1f"), ""),
            (
                "speed-up vs MultiScaleRoIAlign",
                lambda r: src.show(src.get(f"{r['pass']}.speedup_vs_multiscale"), ".2f") + "x",
                "",
            ),
        ],
    )
    out += f"\nTarget speed-up {src.fmt('target_speedup_vs_multiscale')}x; met: {src.fmt('target_met')}.\n"
    return out


def render_nms(src: Source) -> str:
    out = header(
        src,
        "Batched NMS kernel",
        "sspnet's batched NMS (hard and soft) against torchvision and a "
        "NumPy soft-NMS written from the paper's formula; the kept set is checked equal.",
    )
    out += f"\n{src.fmt('threads')} thread(s), median of {src.fmt('repeats')} repeats.\n\n"
    out += table(
        src,
        src.get("results", []),
        [
            ("method", "method", ""),
            ("boxes", "boxes", ""),
            ("classes", "classes", ""),
            ("same as baseline", "same_as_baseline", ""),
            ("sspnet (ms)", "sspnet_ms", ".2f"),
            ("baseline", "baseline", ""),
            ("baseline (ms)", "baseline_ms", ".2f"),
            ("speed-up", lambda r: src.show(r.get("speedup"), ".1f") + "x", ""),
            ("target", lambda r: src.show(r.get("target_speedup")) + "x", ""),
        ],
    )
    return out


def render_export_parity(src: Source) -> str:
    out = header(
        src,
        f"Export parity ({src.stem})",
        "Do the exported graphs detect what PyTorch detects? "
        "Export flavours: [Jetson](../jetson.md#two-onnx-flavours).",
    )
    out += f"\nMetric: {src.fmt('metric')}. Weights: {src.fmt('weights')}. Images: {src.fmt('images')}; "
    out += f"input {src.fmt('imgsz')}; {src.fmt('precision')}.\n\n"
    out += (
        "The portable graph has hard NMS only (no standard ONNX operator does soft-NMS), so it is compared with "
        "PyTorch switched to hard NMS; the row marked *info* compares it with the model as configured "
        "(soft-NMS), which is the accuracy the portable flavour gives up. The tensorrt flavour runs in onnx's "
        "ReferenceEvaluator with the plugin nodes in Python (TensorRT is not available here).\n\n"
    )
    for result in src.get("results", []):
        rows = [dict(name=k, **v) for k, v in result.get("rows", {}).items()]
        out += f"**{src.show(result.get('preset'))}**\n\n" + table(
            src,
            rows,
            [
                ("comparison", "name", ""),
                ("images", "images", ""),
                ("reference detections", "reference", ""),
                ("matched", "matched", ""),
                ("matched (%)", "matched_pct", ".1f"),
                ("meets target", "meets_target", ""),
            ],
        )
        ap_rows = [dict(name=k, **v) for k, v in (result.get("ap_rows") or {}).items()]
        if ap_rows:
            out += "\n" + table(
                src,
                ap_rows,
                [
                    ("comparison", "name", ""),
                    ("AP50-tiny PyTorch", "torch.AP50_tiny", ".2f"),
                    ("AP50-tiny exported", "onnx.AP50_tiny", ".2f"),
                    ("AP50-all PyTorch", "torch.AP50_all", ".2f"),
                    ("AP50-all exported", "onnx.AP50_all", ".2f"),
                    ("target (points)", "target_points", ""),
                ],
            )
        out += "\n"
    return out


def render_export_speed(src: Source) -> str:
    out = header(
        src,
        "CPU latency: ONNX Runtime vs PyTorch",
        f"{src.fmt('input')}; {src.fmt('statistic')}, {src.fmt('threads')} threads, {src.fmt('repeats')} repeats.",
    )
    out += f"\n{src.fmt('note')}\n\n" + table(
        src,
        src.get("rows", []),
        [
            ("model", "model", ""),
            ("runtime", "runtime", ""),
            ("median (ms)", lambda r: src.show(r.get("median_ms"), ".0f") if "median_ms" in r else "", ""),
            ("ratio", lambda r: src.show(r["ratio"], ".2f") + "x" if "ratio" in r else "", ""),
        ],
    )
    return out


def render_training(src: Source) -> str:
    out = header(
        src,
        "Training on the synthetic set",
        "The `synthetic-cpu` recipe trained from scratch for a "
        "fixed CPU budget, then scored on the held-out val split.",
    )
    out += (
        f"\nRecipe {src.fmt('recipe')} ({src.fmt('preset')}), {src.fmt('iterations')} iterations, "
        f"{src.fmt('torch_threads')} threads, training {src.fmt('train_wall_time_s', '.0f')} s, "
        f"budget {src.fmt('budget_s', '.0f')} s (within: {src.fmt('within_budget')}). "
        f"Target {src.fmt('target.metric')} >= {src.fmt('target.percent', '.0f')}. {src.fmt('evaluation')}.\n\n"
    )
    rows = [{"name": k} for k in src.get("metrics_percent", {})]
    out += table(
        src,
        rows,
        [("evaluation", "name", "")]
        + [
            (n.replace("_", "-"), lambda r, n=n: src.show(src.get(f"metrics_percent.{r['name']}.{n}"), ".1f"), "")
            for n in AP_COLUMNS
        ],
    )
    return out


def render_ablation(src: Source) -> str:
    out = header(
        src,
        f"Ablation of the SSFPN neck ({src.stem})",
        "The synthetic-cpu recipe with only the neck, "
        "the attention loss or the ignore-region handling changed; same data and iterations. "
        "What the cells mean: [the model](../model.md).",
    )
    out += (
        f"\n{src.fmt('iterations')} iterations each, {src.fmt('torch_threads')} threads; "
        "AP50 (percent) on the val split.\n\n"
    )
    cells = [dict(cell=k, **v) for k, v in src.get("cells", {}).items()]
    out += table(
        src,
        cells,
        [
            ("cell", "cell", ""),
            ("neck", "overrides.neck", ""),
            ("attention loss", "overrides.attention_loss", ""),
        ]
        + [(n.replace("_", "-"), f"metrics_percent.plain.{n}", ".1f") for n in AP_COLUMNS[:5]]
        + [("AP50-tiny, 2 scales", "AP50_tiny_percent_two_scale", ".1f"), ("train (s)", "train_wall_time_s", ".0f")],
    )
    out += (
        "\nWhat the cells isolate: `ssfpn` is SSPNet without its attention loss; `fpn+attention` (neck "
        "`fpn_cam`) keeps the supervised CAM maps but never gates with them; `fpn` is a plain FPN; "
        "`+erase_ignore` erases ignore regions from the training images (TinyBenchmark's option; the "
        "original code does not). Differences of a point or two are within seed-to-seed noise here: "
        "compare with the other seed's page before reading a small gap.\n"
    )
    tiny1 = "metrics_percent.plain.AP50_tiny1"
    if src.get(f"cells.ssfpn.{tiny1}") is not None and src.get(f"cells.fpn.{tiny1}") is not None:
        better = src.get(f"cells.ssfpn.{tiny1}") > src.get(f"cells.fpn.{tiny1}")
        out += (
            f"\nOn the smallest people (tiny1) the scale-selection neck {'beats' if better else 'does not beat'} "
            f"the plain FPN in this run: {src.fmt('cells.ssfpn.' + tiny1, '.1f')} vs "
            f"{src.fmt('cells.fpn.' + tiny1, '.1f')} AP50 without the attention loss. Why the attention loss "
            "behaves as it does in this short from-scratch regime: [attention diagnostics](attention_diagnostics.md).\n"
        )
    return out


def render_attention(src: Source) -> str:
    out = header(
        src,
        "Attention diagnostics",
        "What the attention maps and scale-selection gates of trained "
        "models look like, and how long the gradient stays clipped; see [the model](../model.md).",
    )
    runs = [dict(cell=k, **v) for k, v in src.get("runs", {}).items()]
    out += "\n" + table(
        src,
        runs,
        [
            ("cell", "cell", ""),
            (
                "mean attention A0 / A1 / A2 / A3",
                lambda r: " / ".join(src.show(v, ".2f") for v in r.get("mean_attention", [])),
                "",
            ),
            ("mean gate per level", lambda r: " / ".join(src.show(v, ".3f") for v in r.get("mean_gate", [])), ""),
            ("last iteration above the clip", "last_iteration_above_clip", ""),
        ],
    )
    out += (
        f"\nAt initialisation, median gradient L2 norm: detection losses "
        f"{src.fmt('initialised_gradient_norms.median_detection', '.1f')}, attention loss "
        f"{src.fmt('initialised_gradient_norms.median_attention', '.1f')} (gradient clip {src.fmt('clip_grad')}).\n"
    )
    out += (
        "\nHow to read it: a gate is the product of two adjacent attention maps, A(i-1) x up(A(i)); it sets how "
        "much of the coarser level flows into the finer one. Maps near zero close the top-down path (the fine "
        "levels keep their own features); maps near one open it, as in a plain FPN. A large attention "
        "gradient at the start keeps the whole gradient clipped for longer, which slows the detection head "
        "early in training.\n"
    )
    return out


def generic_scalars(src: Source, data=None, prefix: str = "") -> str:
    """Every scalar field of a JSON, dotted paths; long lists of raw samples are left out."""
    rows = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            if len(node) <= 4 and all(not isinstance(v, (dict, list)) for v in node):
                rows.append((path, node))
            elif len(node) <= 20:
                for i, value in enumerate(node):
                    walk(value, f"{path}.{i}")
        else:
            rows.append((path, node))

    walk(src.data if data is None else data, prefix)
    return "| field | value |\n|---|---|\n" + "".join(
        f"| `{src.show(p)}` | {src.show(v, '.4g' if _has_float(v) else '')} |\n" for p, v in rows
    )


def _has_float(value) -> bool:
    return isinstance(value, float) or (isinstance(value, list) and any(isinstance(v, float) for v in value))


def _flat_scalars(row: dict, prefix: str = "") -> dict:
    """A row's scalar fields, nested dicts one level deep as "a.b"; lists of raw samples left out."""
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict) and not prefix:
            flat.update(_flat_scalars(value, f"{key}."))
        elif not isinstance(value, (dict, list)):
            flat[f"{prefix}{key}"] = value
    return flat


def render_tracking(src: Source) -> str:
    out = header(
        src,
        "Tracking tiny people",
        "What `benchmarks/bench_tracking.py` measured on held-out synthetic UAV sequences (`sspnet synth --video`): "
        "each tracker x association with and without camera-motion compensation (CMC), scored by the `trackers` "
        "evaluator (TrackEval's HOTA / CLEAR / Identity); the detector's own accuracy beside it; the camera-motion "
        "estimate's "
        "accuracy. Timings: the tracking cost page. See the tracking guide for what the settings mean.",
    )
    seq = src.get("sequences", {})
    det = src.get("detector", {})
    out += (
        f"\nSequences: {src.fmt('sequences.count')} x {src.fmt('sequences.frames')} frames of "
        f"{src.fmt('sequences.size')} px ({src.show(', '.join(seq.get('names', [])))}), "
        f"{src.fmt('sequences.gt_ids')} people. Detector: `{src.fmt('detector.model')}`, "
        f"score >= {src.fmt('detector.score_threshold')}, {src.fmt('detector.ms_per_frame', '.0f')} ms per frame; "
        f"single-frame AP50-tiny {src.fmt('detector.AP50_tiny_single_frame', '.2f')}. "
        f"Run took {src.fmt('seconds', '.0f')} s.\n"
    )
    if det.get("ms_per_frame") is None:
        out += "\n(Detections made from the ground truth, not by a model: a smoke run.)\n"
    best = src.get("best", {})
    out += (
        f"\n**Best setting (highest HOTA over all sequences): `{src.show(best.get('label'))}`**, start threshold "
        f"{src.fmt('best.settings.high_threshold')}, confirmed after {src.fmt('best.settings.min_hits')} hits, "
        f"lost tracks kept {src.fmt('best.settings.lost_track_buffer')} frames: HOTA "
        f"{src.fmt('best.metrics.all.HOTA', '.2f')}, IDF1 {src.fmt('best.metrics.all.IDF1', '.2f')}, "
        f"ID switches {src.fmt('best.metrics.all.IDSW')}. sspnet track's defaults match it: "
        f"{src.fmt('defaults_match_best')}.\n"
    )

    def group_columns(group):
        return [(f"HOTA {group}", f"metrics.{group}.HOTA", ".2f")]

    main = [
        ("HOTA", "metrics.all.HOTA", ".2f"),
        ("DetA", "metrics.all.DetA", ".2f"),
        ("AssA", "metrics.all.AssA", ".2f"),
        ("MOTA", "metrics.all.MOTA", ".2f"),
        ("IDF1", "metrics.all.IDF1", ".2f"),
        ("ID switches", "metrics.all.IDSW", ""),
    ]
    out += "\n## Start threshold (ByteTrack, buffered IoU, no CMC)\n\n"
    out += table(src, src.get("stage0", []), [("setting", "varied", "")] + main)
    out += "\n## Trackers x association, with and without CMC\n\nAll sequences, then hovering vs moving camera.\n\n"
    out += table(
        src,
        src.get("stage1", []),
        [("tracker", "label", "")]
        + main
        + group_columns("hover")
        + group_columns("moving")
        + [("ID switches moving", "metrics.moving.IDSW", "")],
    )
    out += "\n## One setting at a time around the best tracker\n\n"
    out += table(src, src.get("stage2", []), [("tracker", "label", ""), ("varied", "varied", "")] + main)
    out += (
        "\n## What tracking does to detection\n\nAt the same score threshold: every single-frame box, vs "
        "only boxes of tracks that were matched k times (FP / FN as CLEAR counts them; DetA / DetRe / DetPr are "
        "HOTA's).\n\n"
    )
    out += table(
        src,
        src.get("tracking_vs_detection", []),
        [
            ("boxes", "boxes", ""),
            ("score >=", "score_threshold", ""),
            ("tracks need k hits", "min_hits", ""),
            ("AP50-tiny", "AP50_tiny", ".2f"),
            ("DetA", "DetA", ".2f"),
            ("DetRe", "DetRe", ".2f"),
            ("DetPr", "DetPr", ".2f"),
            ("FP", "FP", ""),
            ("FN", "FN", ""),
        ],
    )
    out += (
        "\n## Camera-motion estimate vs the generator's true camera\n\nWorst frame-corner error of the "
        "frame-to-frame motion (median over frames), and the same for no compensation.\n\n"
    )
    out += table(
        src,
        src.get("cmc_accuracy_on_sequences", []),
        [
            ("method", "method", ""),
            ("downscale", "downscale", ""),
            ("hover error (px)", "hover_corner_error_px_median", ".2f"),
            ("hover, no CMC (px)", "hover_without_cmc_px_median", ".2f"),
            ("moving error (px)", "moving_corner_error_px_median", ".2f"),
            ("moving, no CMC (px)", "moving_without_cmc_px_median", ".2f"),
        ],
    )
    return out


def render_tracking_cost(src: Source) -> str:
    out = header(
        src,
        "Tracking cost",
        "What `benchmarks/bench_tracking.py --part cost` measured: the tracker step per frame (`trackers`' own "
        "trackers, and sspnet's array form of its ByteTrack and BoT-SORT, which gives the same tracks) and the "
        "camera-motion estimate per frame, medians over the frames timed.",
    )
    out += (
        f"\nRun took {src.fmt('seconds', '.0f')} s.\n\n## Tracker step\n\nTarget: "
        f"{src.fmt('targets.tracker_step_ms_300_detections')} ms per frame at the largest detection count.\n\n"
    )
    out += table(
        src,
        src.get("tracker_step", []),
        [
            ("tracker", "tracker", ""),
            ("implementation", "implementation", ""),
            ("detections", "detections", ""),
            ("frames", "frames", ""),
            ("median (ms)", "median_ms", ".2f"),
            ("p90 (ms)", "p90_ms", ".2f"),
        ],
    )
    out += (
        f"\n## Camera-motion estimate\n\nTarget: {src.fmt('targets.cmc_ms_1920x1080')} ms per frame. The "
        "corner error is the worst frame-corner error against the generator's true camera (median).\n\n"
    )
    out += table(
        src,
        src.get("cmc", []),
        [
            ("method", "method", ""),
            ("downscale", "downscale", ""),
            ("frame", "frame", ""),
            ("median (ms)", "median_ms", ".1f"),
            ("p90 (ms)", "p90_ms", ".1f"),
            ("corner error (px)", "corner_error_px_median", ".2f"),
        ],
    )
    return out


def render_generic(src: Source) -> str:
    """No dedicated layout: each top-level list of records as a table (its first 12 scalar columns),
    then every other scalar field."""
    out = header(src, src.stem, "A results file without a dedicated page layout: its records and fields as stored.")
    rest = dict(src.data) if isinstance(src.data, dict) else {"data": src.data}
    for key, value in list(rest.items()):
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            flat_rows = [_flat_scalars(v) for v in value]
            columns = list(dict.fromkeys(k for r in flat_rows for k in r))[:12]
            out += f"\n**{src.show(key)}**\n\n" + table(
                src,
                flat_rows,
                [
                    (src.show(c), lambda r, c=c: src.show(r.get(c), ".4g" if _has_float(r.get(c)) else ""), "")
                    for c in columns
                ],
            )
            del rest[key]
    return out + "\n**Other fields**\n\n" + generic_scalars(src, rest)


RENDERERS = [
    ("demo_summary", render_demo_summary),
    ("neighbours", render_contention),
    ("int8_placement", render_int8_placement),
    ("int8", render_int8),
    ("tile_memory", render_tile_memory),
    ("trt_fp16_rois", render_fp16_rois),
    ("compare_fovea_supervision", render_fovea),
    ("mr_official_vs_exact", render_mr),
    ("roi_align", render_roi_align),
    ("nms", render_nms),
    ("export_parity", render_export_parity),
    ("export_speed", render_export_speed),
    ("train_synthetic", render_training),
    ("ablation_ssfpn", render_ablation),
    ("attention_diagnostics", render_attention),
    ("tracking_cost", render_tracking_cost),
    ("tracking", render_tracking),
]


def renderer_for(stem: str):
    """The renderer of the longest matching prefix (int8_placement before int8; reruns such as
    neighbours_defaults_rerun1 share their study's layout), else the generic one."""
    matches = [(len(prefix), render) for prefix, render in RENDERERS if stem.startswith(prefix)]
    return max(matches, key=lambda match: match[0])[1] if matches else render_generic


def render_file(path: Path) -> tuple[str, str]:
    """(page title, Markdown) for one results JSON; raises UntracedNumber on a number it did not read."""
    src = Source(path)
    page = renderer_for(src.stem)(src)
    page += "\n\n*Generated from the JSON at docs build time (`docs/gen/results.py`); do not edit.*\n"
    check_traced(page, src.handed_out, f"results/{src.stem}.md", src.path.name)
    return page.splitlines()[0].lstrip("# "), page


def pages(results_dir: Path = RESULTS) -> dict[str, tuple[str, str]]:
    """{"results/<stem>.md": (title, markdown)} for every JSON, plus results/index.md listing them."""
    out = {}
    index = [
        "# Results",
        "",
        "Every measured number of this project, one page per JSON that a benchmark wrote to "
        "`benchmarks/results/`. How to rerun each: [benchmarking](../benchmarking.md).",
        "",
        "| page | command | machine |",
        "|---|---|---|",
    ]
    handed_out: set[str] = set()  # the index's numbers: its rows' JSONs and the (checked) page titles
    for path in sorted(results_dir.glob("*.json")):
        title, page = render_file(path)
        out[f"results/{path.stem}.md"] = (title, page)
        src = Source(path)
        index.append(f"| [{title}]({path.stem}.md) | {command(src)} | {machine(src)} |")
        handed_out |= src.handed_out | set(number_tokens(title))
    text = "\n".join(index) + "\n"
    check_traced(text, handed_out, "results/index.md", "the results JSONs")
    out["results/index.md"] = ("Results", text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the Markdown pages to")
    args = parser.parse_args()
    for name, (_, text) in pages().items():
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(target)


if __name__ == "__main__":
    main()
