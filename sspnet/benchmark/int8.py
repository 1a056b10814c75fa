"""INT8 against fp32 on ONNX Runtime: accuracy of a quantized model and interleaved latency.

    ap = ap50_tiny("model_int8.onnx", "data/synth")                       # percent, val split
    timings = interleaved_latency(["model.onnx", "model_int8.onnx"], (256, 256))
    timings["model_int8.onnx"]["p50"]

Used by `sspnet demo` and benchmarks/bench_int8.py. Latency is measured in rounds: every round
times each model `iters` times in turn, so that load from other processes and clock changes hit
all models alike; the statistics pool the rounds. Models run through the runtime's Detector with
the toolkit's ONNX Runtime settings (runtime/threads.py), as `sspnet predict` runs them.
"""

from __future__ import annotations

import time


def open_onnx(path: str, threads: int | None = None, exact_qdq: bool = False):
    """An OnnxRuntimeBackend; exact_qdq: with ONNX Runtime's Q/DQ fusions off (see ap50_tiny)."""
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from sspnet.runtime.threads import configure_onnxruntime_session

    class ExactQDQBackend(OnnxRuntimeBackend):
        def _new_session(self, threads):  # the backend's session, plus one ONNX Runtime setting
            options = self._ort.SessionOptions()
            configure_onnxruntime_session(options)
            options.add_session_config_entry("session.disable_quant_qdq", "1")
            if threads:
                options.intra_op_num_threads = threads
            return self._ort.InferenceSession(str(self.path), options, providers=self._requested)

    return (ExactQDQBackend if exact_qdq else OnnxRuntimeBackend)(path, intra_op_num_threads=threads)


def ap50_tiny(
    path: str,
    data: str,
    split: str = "val",
    limit: int | None = None,
    progress: bool = False,
    exact_qdq: bool | None = None,
) -> float:
    """AP50-tiny (percent) of an .onnx model on a data folder's split, at the deployed settings.

    exact_qdq (None: True for the TensorRT form of `sspnet quantize`): score with ONNX Runtime's
    Q/DQ fusions off, so every QuantizeLinear / DequantizeLinear computes as the graph says, as
    TensorRT's int8 layers do. With them on, ONNX Runtime's x86 int8 kernels (and its handling of
    fp16 Q/DQ) compute something else for the symmetric form; the CPU (asymmetric) form is scored
    as ONNX Runtime runs it."""
    from sspnet.benchmark.harness import accuracy

    if exact_qdq is None:
        from sspnet.export.quantize import read_quantization

        exact_qdq = bool((read_quantization(path) or {}).get("tensorrt_compatible", False))
    return accuracy(open_onnx(path, exact_qdq=exact_qdq), data, split, limit=limit, progress=progress)


def interleaved_latency(
    paths: list[str],
    frame_size: tuple[int, int],
    rounds: int = 5,
    iters: int = 10,
    warmup: int = 2,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, dict]:
    """{path: latency_stats (ms per frame, batch 1) + "latencies_ms"}, models timed in turn per round."""
    from sspnet.benchmark.harness import synthetic_frames
    from sspnet.benchmark.stats import latency_stats
    from sspnet.runtime.detector import Detector

    frames = synthetic_frames(tuple(frame_size), 1)
    detectors = {path: Detector(open_onnx(path, threads), fit="tile") for path in paths}
    for detector in detectors.values():
        for _ in range(warmup):
            detector.detect_batch(frames)
    samples: dict[str, list[float]] = {path: [] for path in paths}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=rounds * iters * len(paths), desc="latency", unit="call", leave=False)
    for _ in range(rounds):
        for path, detector in detectors.items():
            for _ in range(iters):
                start = time.perf_counter()
                detector.detect_batch(frames)
                samples[path].append(1e3 * (time.perf_counter() - start))
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return {
        path: latency_stats(values) | {"latencies_ms": [round(v, 3) for v in values]}
        for path, values in samples.items()
    }


__all__ = ["ap50_tiny", "interleaved_latency", "open_onnx"]
