"""The pipeline benchmark compares like with like: SAHI's sliced prediction through the benchmark's
DetectionModel wrapper (over sspnet's ONNX Runtime backend) finds exactly what sspnet's Detector finds
on a frame where both cut the same tiles, with SAHI's own slicing and NMS as the reference."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from cli_markers import TILE, marker_frame
from sspnet.runtime.backend import load_backend
from sspnet.runtime.detector import Detector
from sspnet.runtime.tiling import tile_grid

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pipeline.py"
OVERLAP = 16
# markers in tile interiors and in the overlaps of two and of four tiles (found there twice / four times)
MARKERS = [
    (20, 30, 200, 0),
    (60, 85, 150, 0),
    (120, 40, 220, 0),
    (118, 88, 90, 0),
    (230, 150, 250, 0),
    (290, 190, 180, 0),
    (5, 190, 40, 0),
]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sahi_through_the_wrapper_finds_what_sspnet_finds(marker_onnx):
    if os.environ.get("CI") != "true":  # CI installs sahi (scripts/env.sh): there it must be present
        pytest.importorskip("sahi")
    bench = load_bench()
    height, width = 200, 300
    backend = load_backend(marker_onnx)
    assert bench.sahi_tiles(height, width, TILE, OVERLAP) == len(tile_grid(height, width, *TILE, OVERLAP))
    rgb = marker_frame(height, width, MARKERS)
    found = Detector(backend, tile_overlap=OVERLAP, score_threshold=0.25).detect(rgb)

    model = bench.sahi_model(backend, 0.25)
    result = bench.sahi_predict(model, rgb, TILE, OVERLAP, batch=4)
    theirs = sorted((round(p.score.value, 4), *np.round(p.bbox.to_xyxy(), 3)) for p in result.object_prediction_list)
    ours = sorted((round(float(s), 4), *np.round(b, 3)) for s, b in zip(found.scores, found.boxes))
    assert len(ours) == sum(value / 255 >= 0.25 for _, _, value, _ in MARKERS) == len(theirs)
    assert ours == theirs
    assert model.model_seconds > 0
