"""Latency on a busy computer: every row timed quiet and next to K busy neighbours, in one run.

    rows = [ContentionRow("ORT no spin", "detector", model="model.onnx", backend="onnxruntime"), ...]
    results = run_contention(rows, ContentionSettings(neighbours=1))
    write_contention_json("out.json", results, settings); plot_contention(results, "out.png")

Used by `sspnet benchmark --neighbours K` and benchmarks/bench_neighbours.py.

Each row runs in its own worker process (`python -m sspnet.benchmark.contention JOB`): settings that
a runtime reads once when it loads (OpenMP's OMP_WAIT_POLICY / GOMP_SPINCOUNT, read at `import
torch`) can then differ per row, and rows share no thread pools. The worker loads the model, warms
up and reports ready; on request it times the quiet phase; the parent then starts the neighbours
(sspnet.benchmark.neighbours: separate sessions, always stopped), asks for the loaded phase and
stops them. Both phases of a row therefore use the same loaded model in the same process.

A phase is `iters` timed calls after `warmup` untimed ones, cut short after `max_seconds` (at
least `min_iters` calls), so that a row that collapses under load (seconds per call) still ends
in bounded time. Row kinds:

    detector     frames -> detections through the runtime's Detector (as `sspnet predict`),
                 torch (a checkpoint) or onnxruntime (.onnx)
    train-step   one training step of a recipe (sspnet.engine.recipes), forward + backward + SGD
    roi-align    sspnet's CPU multi-level RoIAlign kernel (OpenMP) on a Faster R-CNN-sized
                 workload: 1000 RoIs over 256-channel stride-4..32 maps of a 640 x 512 image
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from sspnet.errors import UsageError

SCHEMA = "sspnet-contention/1"
KINDS = ("detector", "train-step", "roi-align")


@dataclass
class ContentionRow:
    """One configuration to time quiet and loaded (see the module docstring).

    env: environment of the worker on top of this process's; a None value removes the variable
    (e.g. {"GOMP_SPINCOUNT": None} runs OpenMP with its own defaults). threads: torch intra-op
    threads / ONNX Runtime intra_op_num_threads (None: the runtime's default). baseline: label of
    the row whose quiet p50 this row's quiet p50 is compared with. goal_slowdown: the loaded/quiet
    p50 ratio this row should stay under (None: no goal)."""

    label: str
    kind: str = "detector"
    model: str | None = None  # detector: a checkpoint or .onnx file
    backend: str | None = None  # detector: torch | onnxruntime (default: from the suffix)
    frame_size: tuple[int, int] = (512, 640)  # detector: (H, W) of the frames
    batch: int = 1
    input_size: tuple[int, int] | None = None  # torch detector: model input size (default: frame size)
    recipe: str = "synthetic-cpu"  # train-step
    image_size: tuple[int, int] | None = None  # train-step: (W, H) images (default: the recipe's)
    threads: int | None = None
    env: dict = field(default_factory=dict)
    group: str = ""
    baseline: str | None = None
    goal_slowdown: float | None = None

    def check(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"row {self.label!r}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.kind == "detector" and not self.model:
            raise UsageError(f"row {self.label!r}: a detector row needs a model file")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise UsageError(f"row {self.label!r}: threads must be a positive integer, got {self.threads!r}")

    def to_job(self) -> dict:
        return asdict(self)

    @classmethod
    def from_job(cls, job: dict) -> ContentionRow:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in job.items() if k in known}
        for key in ("frame_size", "input_size", "image_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class ContentionSettings:
    neighbours: int = 1
    iters: int = 30
    warmup: int = 3
    min_iters: int = 3
    max_seconds_quiet: float = 6.0
    max_seconds_loaded: float = 12.0
    load_timeout_s: float = 180.0  # worker start-up: imports, model load, warm-up

    def check(self) -> None:
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise UsageError(f"--neighbours must be an integer >= 1, got {self.neighbours!r}")
        for name in ("iters", "min_iters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise UsageError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        if not (self.max_seconds_quiet > 0 and self.max_seconds_loaded > 0):
            raise UsageError("the phase time limits must be > 0 s")

    def estimated_seconds_per_row(self) -> float:
        """Upper estimate of one row: start-up and warm-up (~15 s on 2 cores) plus both phases."""
        return 15.0 + self.max_seconds_quiet + self.max_seconds_loaded + 1.0


# ---- the worker (runs in its own process) ---------------------------------------------------------


def _detector_step(row: ContentionRow):
    from sspnet.benchmark.harness import RowSpec, open_row_backend, synthetic_frames
    from sspnet.runtime.backend import backend_for_path
    from sspnet.runtime.detector import Detector

    backend_name = row.backend or backend_for_path(row.model)
    if backend_name == "torch" and row.threads:
        import torch

        torch.set_num_threads(row.threads)
    spec = RowSpec(
        model=row.model,
        backend=backend_name,
        mode="eager" if backend_name == "torch" else "cpu",
        precision="fp32" if backend_name == "torch" else "model",
        device="cpu",
        batch=row.batch,
        frame_size=tuple(row.frame_size),
        input_size=tuple(row.input_size or row.frame_size) if backend_name == "torch" else None,
    )
    detector = Detector(open_row_backend(spec, row.threads), fit="tile")
    frames = synthetic_frames(spec.frame_size, row.batch)
    return lambda: detector.detect_batch(frames)


def _train_step(row: ContentionRow):
    import torch

    from sspnet.engine.recipes import get_recipe

    if row.threads:
        torch.set_num_threads(row.threads)
    return get_recipe(row.recipe).training_step(row.image_size)


def _roi_align_step(row: ContentionRow):
    import math

    import torch

    from sspnet.ops import multi_level_roi_align

    if row.threads:
        torch.set_num_threads(row.threads)
    height, width, strides, rois_count = 512, 640, [4, 8, 16, 32], 1000
    generator = torch.Generator().manual_seed(0)
    features = [torch.randn(1, 256, height // s, width // s, generator=generator) for s in strides]
    centres = torch.rand(rois_count, 2, generator=generator) * torch.tensor([width, height])
    sides = torch.exp(torch.empty(rois_count, 2).uniform_(math.log(8), math.log(512), generator=generator))
    boxes = torch.cat([centres - sides / 2, centres + sides / 2], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    rois = torch.cat([torch.zeros(rois_count, 1), boxes], dim=1)
    return lambda: multi_level_roi_align(features, rois, strides, 7, 2, aligned=False)


STEP_BUILDERS = {"detector": _detector_step, "train-step": _train_step, "roi-align": _roi_align_step}


def time_phase(step, iters: int, warmup: int, min_iters: int, max_seconds: float) -> list[float]:
    """Milliseconds of up to `iters` calls of `step` after `warmup` untimed ones; stops early once
    `max_seconds` have passed and at least `min_iters` calls are timed."""
    for _ in range(warmup):
        step()
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < iters:
        start = time.perf_counter()
        step()
        latencies.append(1e3 * (time.perf_counter() - start))
        if len(latencies) >= min_iters and time.perf_counter() - started > max_seconds:
            break
    return latencies


def worker_settings() -> dict:
    """What the worker actually runs with (threads, OpenMP variables, ONNX Runtime spinning)."""
    from sspnet.runtime.threads import describe

    info = describe()
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    return info


def worker_main(argv: list[str]) -> int:
    """The worker's protocol: JSON lines on stdout (library output goes to stderr), commands on stdin.
    Applies sspnet's OpenMP defaults first, as the `sspnet` command does (a row's own env wins)."""
    from sspnet.runtime.threads import apply_openmp_defaults

    apply_openmp_defaults()
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints lands on stderr, never in the protocol

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    row = ContentionRow.from_job(json.loads(argv[0]))
    try:
        row.check()
        step = STEP_BUILDERS[row.kind](row)
        step()  # first call: lazy initialisation
    except Exception as error:
        send({"event": "error", "error": f"{type(error).__name__}: {error}"})
        return 1
    send({"event": "ready", "settings": worker_settings()})
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("command") != "measure":
            break
        try:
            latencies = time_phase(
                step, command["iters"], command["warmup"], command["min_iters"], command["max_seconds"]
            )
        except Exception as error:
            send({"event": "error", "error": f"{type(error).__name__}: {error}"})
            return 1
        send({"event": "measured", "phase": command["phase"], "latencies_ms": latencies})
    return 0


# ---- the parent -------------------------------------------------------------------------------------


class WorkerFailed(RuntimeError):
    pass


class _Worker:
    """A running worker process and a reader thread turning its stdout into messages."""

    def __init__(self, row: ContentionRow, stderr_file):
        env = dict(os.environ)
        for name, value in row.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sspnet.benchmark.contention", json.dumps(row.to_job())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=env,
            text=True,
            bufsize=1,
        )
        self.messages: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.messages.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.messages.put(None)  # end of output

    def receive(self, timeout: float) -> dict:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise WorkerFailed(f"no answer within {timeout:.0f} s") from None
        if message is None:
            raise WorkerFailed(f"the worker exited (status {self.process.wait()})")
        if message.get("event") == "error":
            raise WorkerFailed(message["error"])
        return message

    def send(self, command: dict) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"command": "exit"})
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def _phase(worker: _Worker, phase: str, settings: ContentionSettings, warmup: int) -> list[float]:
    max_seconds = settings.max_seconds_quiet if phase == "quiet" else settings.max_seconds_loaded
    worker.send(
        {
            "command": "measure",
            "phase": phase,
            "iters": settings.iters,
            "warmup": warmup,
            "min_iters": settings.min_iters,
            "max_seconds": max_seconds,
        }
    )
    # a call may take many seconds under load: allow the warm-up and min_iters of them on top
    return worker.receive(timeout=max_seconds + 120.0)["latencies_ms"]


def run_row(row: ContentionRow, settings: ContentionSettings) -> dict:
    """Time one row quiet, then loaded; returns its result dict (see `run_contention`)."""
    from sspnet.benchmark.neighbours import BusyNeighbours
    from sspnet.benchmark.stats import latency_stats

    result = {
        **row.to_job(),
        "quiet": None,
        "loaded": None,
        "slowdown_p50": None,
        "slowdown_p99": None,
        "worker_settings": None,
        "error": None,
    }
    with tempfile.TemporaryFile("w+") as stderr_file:
        worker = _Worker(row, stderr_file)
        try:
            result["worker_settings"] = worker.receive(settings.load_timeout_s)["settings"]
            quiet = _phase(worker, "quiet", settings, settings.warmup)
            with BusyNeighbours(settings.neighbours):
                loaded = _phase(worker, "loaded", settings, min(settings.warmup, 2))
            result["quiet"] = latency_stats(quiet) | {"latencies_ms": [round(v, 3) for v in quiet]}
            result["loaded"] = latency_stats(loaded) | {"latencies_ms": [round(v, 3) for v in loaded]}
            result["slowdown_p50"] = result["loaded"]["p50"] / result["quiet"]["p50"]
            result["slowdown_p99"] = result["loaded"]["p99"] / result["quiet"]["p99"]
        except WorkerFailed as failure:
            stderr_file.seek(0)
            tail = " | ".join(line.strip() for line in stderr_file.read().splitlines()[-3:] if line.strip())
            result["error"] = f"{failure}" + (f" (worker stderr: {tail})" if tail else "")
        finally:
            worker.close()
    return result


def evaluate_goals(results: list[dict]) -> list[dict]:
    """Add "quiet_vs_baseline" (this row's quiet p50 over its baseline row's) and "meets_goal"
    (slow-down under goal_slowdown, and quiet at most 10 % slower than the baseline) to each row."""
    by_label = {row["label"]: row for row in results}
    for row in results:
        row["quiet_vs_baseline"] = None
        baseline = by_label.get(row.get("baseline") or "")
        if baseline and baseline.get("quiet") and row.get("quiet"):
            row["quiet_vs_baseline"] = row["quiet"]["p50"] / baseline["quiet"]["p50"]
        row["meets_goal"] = None
        if row.get("goal_slowdown") and row.get("slowdown_p50") is not None:
            quiet_ok = row["quiet_vs_baseline"] is None or row["quiet_vs_baseline"] <= 1.10
            row["meets_goal"] = bool(row["slowdown_p50"] <= row["goal_slowdown"] and quiet_ok)
    return results


def run_contention(rows: list[ContentionRow], settings: ContentionSettings, log=print) -> list[dict]:
    """Time every row quiet and loaded (a row that fails records its error; the run goes on)."""
    settings.check()
    for row in rows:
        row.check()
    results = []
    for number, row in enumerate(rows, 1):
        log(f"[{number}/{len(rows)}] {row.label}: quiet, then with {settings.neighbours} busy neighbour(s)")
        started = time.perf_counter()
        result = run_row(row, settings)
        if result["error"]:
            log(f"    failed: {result['error']}")
        else:
            log(
                f"    p50 {result['quiet']['p50']:.1f} ms quiet, {result['loaded']['p50']:.1f} ms loaded "
                f"({result['slowdown_p50']:.2f}x) in {time.perf_counter() - started:.0f} s"
            )
        results.append(result)
    return evaluate_goals(results)


# ---- output -----------------------------------------------------------------------------------------

TABLE_HEADERS = (
    "#",
    "row",
    "quiet p50",
    "quiet p99",
    "loaded p50",
    "loaded p99",
    "slow-down p50",
    "p99",
    "quiet vs base",
    "goal",
)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_rows(results: list[dict]) -> list[tuple]:
    out = []
    for number, row in enumerate(results, 1):
        if row.get("error"):
            out.append((str(number), row["label"], "failed: " + row["error"][:70]) + ("",) * 7)
            continue
        quiet, loaded = row["quiet"], row["loaded"]
        goal = "-"
        if row.get("meets_goal") is not None:
            goal = ("met" if row["meets_goal"] else "MISSED") + f" (<= {row['goal_slowdown']:g}x)"
        base = row.get("quiet_vs_baseline")
        out.append(
            (
                str(number),
                row["label"],
                _ms(quiet["p50"]),
                _ms(quiet["p99"]),
                _ms(loaded["p50"]),
                _ms(loaded["p99"]),
                f"{row['slowdown_p50']:.2f}x",
                f"{row['slowdown_p99']:.2f}x",
                "-" if base is None else f"{base:.2f}x",
                goal,
            )
        )
    return out


def print_contention_table(results: list[dict], neighbours: int) -> None:
    from sspnet.io.table import print_table

    print_table(table_rows(results), headers=TABLE_HEADERS)
    print(
        f"times in ms per call; loaded = next to {neighbours} busy process(es) in their own session(s); "
        "slow-down = loaded / quiet; quiet vs base = quiet p50 over the baseline row's (goal: <= 1.10x)"
    )


def contention_document(results: list[dict], settings: ContentionSettings, extra: dict | None = None) -> dict:
    from sspnet.benchmark.harness import machine_info

    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": asdict(settings) | (extra or {}),
        "rows": results,
    }


def write_contention_json(path, results: list[dict], settings: ContentionSettings, extra: dict | None = None) -> Path:
    from sspnet.io.atomic import atomic_write_json

    return atomic_write_json(path, contention_document(results, settings, extra))


def plot_contention(results: list[dict], path, title: str = "latency quiet vs loaded") -> Path:
    """PNG: per row, quiet and loaded p50 as bars with p99 markers, the slow-down written beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sspnet.benchmark.report import save_figure

    ok = [row for row in results if not row.get("error")]
    fig, axis = plt.subplots(figsize=(11, max(3.0, 0.55 * len(ok) + 1.5)))
    if ok:
        y = np.arange(len(ok))
        quiet = [row["quiet"]["p50"] for row in ok]
        loaded = [row["loaded"]["p50"] for row in ok]
        axis.barh(y - 0.2, quiet, height=0.38, color="#4c72b0", label="quiet p50")
        axis.barh(y + 0.2, loaded, height=0.38, color="#dd8452", label="loaded p50")
        axis.plot([row["quiet"]["p99"] for row in ok], y - 0.2, "k|", markersize=9, label="p99")
        axis.plot([row["loaded"]["p99"] for row in ok], y + 0.2, "k|", markersize=9)
        top = max(max(row["loaded"]["p99"], row["quiet"]["p99"]) for row in ok)
        for k, row in enumerate(ok):
            axis.text(
                max(row["loaded"]["p99"], row["loaded"]["p50"]) * 1.08,
                k + 0.2,
                f"{row['slowdown_p50']:.2f}x",
                va="center",
                fontsize=8,
            )
        axis.set_xscale("log")
        axis.set_xlim(min(quiet + loaded) / 3, top * 2.5)
        axis.set_yticks(y, [row["label"] for row in ok], fontsize=8)
        axis.invert_yaxis()
        axis.legend(fontsize=8, loc="lower right")
    axis.set_xlabel("ms per call (log scale)")
    axis.set_title(title, fontsize=10)
    axis.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = [
    "ContentionRow",
    "ContentionSettings",
    "run_contention",
    "run_row",
    "time_phase",
    "evaluate_goals",
    "print_contention_table",
    "write_contention_json",
    "plot_contention",
    "contention_document",
]


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
