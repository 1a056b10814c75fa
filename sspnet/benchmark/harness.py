"""Benchmark rows: which configurations to time, and how one is timed.

A row is one model file on one backend in one mode and precision, fed `batch` frames of
`frame_size` per call. Every row runs through the runtime's Detector, exactly as `sspnet predict`
and an onboard application do, so its latency is end to end (frames in, detections in frame
pixels out) and its stage breakdown is the Detector's:

    preprocess   colour order, cutting tiles / padding, HWC -> NCHW          (NumPy)
    inference    backend.infer: host -> device, the model, device -> host
    postprocess  per-tile outputs -> frame pixels, cross-tile merge (NMS), sorting

Timing: `warmup` untimed calls, then `iters` timed calls (time.perf_counter around each
detect_batch; every backend returns host arrays, so each call has finished when it returns).
Frames are synthetic tiny-person scenes (sspnet.data.synth), so post-processing sees realistic
detection counts. Rows that share a model, backend, mode, precision and input size share one
loaded backend; AP50-tiny (with a data set) is computed once per such backend.

Modes: torch "eager" or "cuda-graph" (CUDA only); onnxruntime the execution provider ("cpu",
"cuda"); tensorrt "eager" or "cuda-graph". Precision: torch "fp32" / "fp16" (CUDA autocast); an
exported file runs the precision it was exported / built with ("model").
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sspnet.benchmark.memory import PeakMemory
from sspnet.benchmark.stats import latency_stats, throughput
from sspnet.benchmark.tegrastats import TegraStats
from sspnet.errors import UsageError
from sspnet.runtime.backend import backend_for_path

REFERENCE = "torchvision"  # RowSpec.model of the torchvision reference row
STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms")


@dataclass(frozen=True)
class RowSpec:
    """One configuration to time (see the module docstring)."""

    model: str  # a model file, or REFERENCE
    backend: str  # torch | onnxruntime | tensorrt
    mode: str  # eager | cuda-graph | an onnxruntime provider (cpu, cuda)
    precision: str  # fp32 | fp16 | model
    device: str  # cpu | cuda
    batch: int
    frame_size: tuple[int, int]  # (H, W) of the frames fed to the Detector
    input_size: tuple[int, int] | None = None  # torch: model input (tile) size; exported files: their own

    @property
    def model_label(self) -> str:
        return "torchvision R50-FPN (ref)" if self.model == REFERENCE else Path(self.model).name

    @property
    def name(self) -> str:
        h, w = self.frame_size
        return f"{self.model_label} {self.backend} {self.mode} {self.precision} b{self.batch} {h}x{w}"

    def backend_key(self) -> tuple:
        return (self.model, self.backend, self.mode, self.precision, self.device, self.input_size)


@dataclass
class BenchSettings:
    iters: int = 50
    warmup: int = 10
    threads: int | None = None  # torch intra-op threads and onnxruntime intra_op_num_threads
    tile_overlap: int = 30
    data: str | None = None  # a data folder: AP50-tiny of each backend on its split
    split: str = "val"
    max_eval_images: int | None = None
    tegrastats: bool = True
    progress: bool = True
    seed: int = 0

    def check(self) -> None:
        for name in ("iters", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "iters" else 0):
                raise UsageError(f"--{name} must be an integer >= {1 if name == 'iters' else 0}, got {value!r}")


def round_up(value: int, multiple: int = 32) -> int:
    return -(-int(value) // multiple) * multiple


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def onnxruntime_providers(requested) -> list[str]:
    """ "auto" -> ["cpu"] plus "cuda" where onnxruntime-gpu provides it; else the given names."""
    if requested not in (None, "auto", ["auto"]):
        return list(requested)
    try:
        import onnxruntime
    except ImportError:
        return ["cpu"]
    return ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else [])


def plan_rows(
    models: list[str],
    batches: list[int],
    frame_sizes: list[tuple[int, int]],
    precisions: list[str] = ("fp32",),
    device: str | None = None,
    providers=None,
    cuda_graph: bool | None = None,
    reference: bool | None = None,
    tile: tuple[int, int] | None = None,
) -> list[RowSpec]:
    """Every row of a benchmark run, in table order: per model (in the order given; the
    torchvision reference last), per mode and precision, per frame size, per batch.

    device: torch device (default cuda when available). cuda_graph: None = both eager and
    cuda-graph rows on CUDA. reference: None = on when a torch model is benchmarked. tile: torch
    models' input size (default: the frame size rounded up to a multiple of 32).
    """
    if not models:
        raise UsageError("give at least one --model")
    for b in batches:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise UsageError(f"--batch values must be positive integers, got {b!r}")
    for size in frame_sizes:
        if len(size) != 2 or min(size) < 1:
            raise UsageError(f"--imgsz must be H W, two positive integers, got {size!r}")
    device = device or ("cuda" if cuda_available() else "cpu")
    on_cuda = device.startswith("cuda")
    torch_modes = ["eager"] + (["cuda-graph"] if on_cuda and cuda_graph is not False else [])
    if cuda_graph and not on_cuda:
        raise UsageError("--cuda-graph needs CUDA (--device cuda)")
    if cuda_graph is True:
        torch_modes = ["cuda-graph"]
    for precision in precisions:
        if precision not in ("fp32", "fp16"):
            raise UsageError(f"--precision must be fp32 or fp16, got {precision!r}")
        if precision == "fp16" and not on_cuda:
            raise UsageError("--precision fp16 is for CUDA (torch autocast); on CPU use fp32")

    def torch_input(frame_size):
        return tuple(tile) if tile else (round_up(frame_size[0]), round_up(frame_size[1]))

    rows = []
    try:
        backends = [backend_for_path(model) for model in models]
    except ValueError as error:  # an unknown suffix: the user's argument
        raise UsageError(str(error)) from None
    for model, backend in zip(models, backends):
        if backend == "torch":
            variants = [(mode, precision, device) for mode in torch_modes for precision in precisions]
        elif backend == "onnxruntime":
            variants = [
                (provider, "model", "cuda" if provider == "cuda" else "cpu")
                for provider in onnxruntime_providers(providers)
            ]
        else:
            variants = [
                (mode, "model", "cuda")
                for mode in (
                    ["eager", "cuda-graph"] if cuda_graph is None else ["cuda-graph" if cuda_graph else "eager"]
                )
            ]
        for mode, precision, row_device in variants:
            for frame_size in frame_sizes:
                for batch in batches:
                    rows.append(
                        RowSpec(
                            model=str(model),
                            backend=backend,
                            mode=mode,
                            precision=precision,
                            device=row_device,
                            batch=batch,
                            frame_size=tuple(frame_size),
                            input_size=torch_input(frame_size) if backend == "torch" else None,
                        )
                    )
    if reference is None:
        reference = "torch" in backends
    if reference:
        for frame_size in frame_sizes:
            for batch in batches:
                rows.append(
                    RowSpec(
                        REFERENCE, "torch", "eager", "fp32", device, batch, tuple(frame_size), torch_input(frame_size)
                    )
                )
    return rows


def open_row_backend(spec: RowSpec, threads: int | None = None):
    """The Backend of a row (loads the model)."""
    if spec.model == REFERENCE:
        from sspnet.benchmark.reference import reference_backend

        return reference_backend(spec.input_size, device=spec.device, precision=spec.precision)
    from sspnet.runtime.backend import load_backend

    if spec.backend == "torch":
        return load_backend(
            spec.model,
            "torch",
            input_size=spec.input_size,
            device=spec.device,
            precision=spec.precision,
            cuda_graph=spec.mode == "cuda-graph",
            threads=threads,
        )
    if spec.backend == "onnxruntime":
        return load_backend(spec.model, "onnxruntime", providers=[spec.mode], threads=threads)
    return load_backend(spec.model, "tensorrt", cuda_graph=spec.mode == "cuda-graph")


_FRAMES: dict = {}


def synthetic_frames(frame_size: tuple[int, int], count: int, seed: int = 0, distinct: int = 4) -> list[np.ndarray]:
    """`count` RGB frames of (H, W): up to `distinct` different synthetic scenes, repeated."""
    from sspnet.data.synth import generate_image

    height, width = frame_size
    key = (height, width, seed)
    scenes = _FRAMES.setdefault(key, [])
    rng_seeds = np.random.SeedSequence([seed, height, width]).spawn(distinct)
    while len(scenes) < min(count, distinct):
        image, _ = generate_image(np.random.default_rng(rng_seeds[len(scenes)]), max(width, 64), max(height, 64))
        scenes.append(np.ascontiguousarray(image[:height, :width]))
    return [scenes[k % len(scenes)] for k in range(count)]


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def evaluate_backend(
    backend,
    data: str,
    split: str = "val",
    tile_overlap: int = 30,
    limit: int | None = None,
    compute_mr: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """TinyPerson metrics (percent, sspnet.evaluation.evaluate) of `backend` behind a Detector at the
    deployed settings (fit="tile", the model's own score threshold) on a data folder's split
    (DIR/annotations/<split>.json, DIR/images); at most `limit` images."""
    from sspnet.data.images import read_image
    from sspnet.data.tinyperson import dataset_paths, load_annotations
    from sspnet.evaluation.tinyperson import evaluate
    from sspnet.runtime.detector import Detector

    gt_path, image_root = dataset_paths(data, split)
    annotations = load_annotations(gt_path, image_root=image_root)
    if limit:
        annotations.records = annotations.records[:limit]
    detector = Detector(backend, fit="tile", tile_overlap=tile_overlap)
    records = annotations.records
    if progress:
        from tqdm import tqdm

        records = tqdm(records, desc=f"evaluate {backend.name}", unit="img", leave=False)
    detections = {}
    for record in records:
        found = detector.detect(read_image(record))
        detections[record.image_id] = {"boxes": found.boxes, "scores": found.scores, "labels": found.labels}
    return evaluate(annotations, detections, compute_mr=compute_mr)


def accuracy(
    backend, data: str, split: str = "val", tile_overlap: int = 30, limit: int | None = None, progress: bool = False
) -> float:
    """AP50-tiny (percent) of `backend` on a data folder's split (see evaluate_backend)."""
    return float(evaluate_backend(backend, data, split, tile_overlap, limit, progress=progress)["AP50_tiny"])


def time_row(spec: RowSpec, backend, settings: BenchSettings) -> dict:
    """Warm up, then time `settings.iters` calls of detect_batch; the row's result dict (no AP)."""
    from sspnet.runtime.detector import Detector
    from sspnet.runtime.tiling import tile_grid

    detector = Detector(backend, fit="tile", tile_overlap=settings.tile_overlap)
    frames = synthetic_frames(spec.frame_size, spec.batch, settings.seed)
    for _ in range(settings.warmup):
        detector.detect_batch(frames)
    if hasattr(backend, "reset_peak_device_memory"):
        backend.reset_peak_device_memory()
    latencies, stage_sums = [], dict.fromkeys(STAGES, 0.0)
    iterator = range(settings.iters)
    if settings.progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=spec.name, unit="it", leave=False, mininterval=0.5)
    with PeakMemory() as memory, TegraStats() if settings.tegrastats else _Nothing() as tegra:
        for _ in iterator:
            start = time.perf_counter()
            detector.detect_batch(frames)
            latencies.append(1e3 * (time.perf_counter() - start))
            for stage in STAGES:
                stage_sums[stage] += detector.timings[stage]
    device_mb = device_memory_mb(backend, spec.device)
    tile_h, tile_w = backend.input_size
    tiles = len(tile_grid(spec.frame_size[0], spec.frame_size[1], tile_h, tile_w, settings.tile_overlap))
    return {
        "latency_ms": latency_stats(latencies),
        "throughput_ips": throughput(spec.batch, latencies),
        "stages_ms": {stage[:-3]: value / settings.iters for stage, value in stage_sums.items()},
        "host_memory_mb": {"peak": memory.peak_mb, "start": memory.start_mb, "per_row": memory.per_row},
        "device_memory_mb": device_mb,
        "tegrastats": getattr(tegra, "summary", None),
        "input_size": [int(tile_h), int(tile_w)],
        "tiles_per_frame": tiles,
        "latencies_ms": [round(v, 4) for v in latencies],
    }


def device_memory_mb(backend, device: str) -> dict | None:
    """{"peak": MiB, "scope": ...}: torch's peak allocation for torch rows; for other CUDA rows the
    memory in use on the whole GPU at the end of the row (cudaMemGetInfo via torch, when torch is
    installed); None on CPU."""
    if hasattr(backend, "peak_device_memory_mb"):
        peak = backend.peak_device_memory_mb()
        return None if peak is None else {"peak": peak, "scope": "torch peak allocated"}
    if not device.startswith("cuda") or not cuda_available():
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return {"peak": (total - free) / 2**20, "scope": "in use on the GPU (all processes) after the row"}


class _Nothing:
    summary = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _spec_dict(spec: RowSpec) -> dict:
    return {
        "name": spec.name,
        "model": spec.model,
        "model_label": spec.model_label,
        "backend": spec.backend,
        "mode": spec.mode,
        "precision": spec.precision,
        "device": spec.device,
        "batch": spec.batch,
        "frame_size": list(spec.frame_size),
        "input_size": list(spec.input_size) if spec.input_size else None,
    }


def run_benchmark(specs: list[RowSpec], settings: BenchSettings, log=print) -> list[dict]:
    """Time every row; a row that fails (e.g. a missing runtime) records its error and the run goes
    on. Returns one dict per row (see `time_row`, plus the spec, "ap50_tiny" and "error")."""
    settings.check()
    _set_threads(settings.threads)
    backends: dict = {}
    ap_cache: dict = {}
    rows = []
    for number, spec in enumerate(specs, 1):
        row = _spec_dict(spec) | {"iters": settings.iters, "warmup": settings.warmup, "ap50_tiny": None, "error": None}
        log(f"[{number}/{len(specs)}] {spec.name}")
        try:
            key = spec.backend_key()
            if key not in backends:
                backends.clear()  # one loaded model at a time keeps memory figures comparable
                backends[key] = open_row_backend(spec, settings.threads)
            backend = backends[key]
            row.update(time_row(spec, backend, settings))
            if settings.data and spec.model != REFERENCE:
                if key not in ap_cache:
                    ap_cache[key] = accuracy(
                        backend,
                        settings.data,
                        settings.split,
                        settings.tile_overlap,
                        settings.max_eval_images,
                        progress=settings.progress,
                    )
                row["ap50_tiny"] = ap_cache[key]
        except Exception as error:  # a row that cannot run is reported, not fatal
            row["error"] = f"{type(error).__name__}: {error}"
            log(f"    failed: {row['error']}")
        rows.append(row)
    return rows


def cpu_model() -> str:
    """The CPU model as lscpu's "Model name" says it (platform.processor() is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            found = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    except OSError:
        found = None
    return found or platform.processor() or platform.machine()


def machine_info() -> dict:
    """Versions and hardware, written into the JSON next to the rows."""
    import os

    import sspnet

    info = {
        "sspnet": sspnet.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    for name in ("torch", "torchvision", "onnxruntime", "tensorrt"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "installed")
        except Exception:
            info[name] = None
    if info["torch"]:
        import torch

        info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    return info


__all__ = [
    "RowSpec",
    "BenchSettings",
    "REFERENCE",
    "plan_rows",
    "run_benchmark",
    "time_row",
    "accuracy",
    "evaluate_backend",
    "open_row_backend",
    "synthetic_frames",
    "machine_info",
    "cpu_model",
]
