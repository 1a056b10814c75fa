"""Latency statistics of one benchmark row, and the speed-up column across rows.

Percentiles use linear interpolation between order statistics (NumPy's default method): for
sorted values v_0..v_{n-1}, the q-th percentile is at position (n - 1) * q / 100.
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 99)


def latency_stats(latencies_ms) -> dict[str, float]:
    """Milliseconds per iteration -> {"mean", "std", "min", "max", "p50", "p90", "p99"}."""
    values = np.asarray(latencies_ms, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("latency_stats: no timings (iters must be >= 1)")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("latency_stats: timings must be finite and >= 0")
    stats = {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }
    for q in PERCENTILES:
        stats[f"p{q}"] = float(np.percentile(values, q))
    return stats


def throughput(batch: int, latencies_ms) -> float:
    """Images per second: all images of the timed iterations over their total time."""
    values = np.asarray(latencies_ms, dtype=np.float64).reshape(-1)
    total_s = values.sum() / 1e3
    return float(batch * values.size / total_s) if total_s > 0 else float("inf")


def speedups(p50s: list[float | None], batches: list[int] | None = None) -> list[float | None]:
    """The ratio column: speed of each row relative to the first, from the median latency per
    image (p50 / batch): first row's / this row's (2.0 = twice as fast as row 1). None where a row
    (or the first row) has no timing."""
    batches = batches or [1] * len(p50s)
    if len(batches) != len(p50s):
        raise ValueError(f"speedups: {len(p50s)} p50 values but {len(batches)} batch sizes")
    per_image = [None if p is None else p / b for p, b in zip(p50s, batches)]
    if not per_image or per_image[0] is None or per_image[0] <= 0:
        return [None] * len(p50s)
    first = per_image[0]
    return [None if p is None or p <= 0 else first / p for p in per_image]


__all__ = ["latency_stats", "throughput", "speedups", "PERCENTILES"]
