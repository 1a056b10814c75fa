"""FoveaBox + SSPNet: attention supervision v1 (root tree, weight 0.01) against v2 (latest_version,
weight 1e-4) on the synthetic set, same recipe, several training seeds; writes
benchmarks/results/compare_fovea_supervision.json.

    python benchmarks/compare_fovea_supervision.py [--max-iters 1518] [--seeds 0 1] [--threads 1]

Both cells are the `synthetic-cpu` recipe (sspnet/engine/recipes.py: FoveaBox + SSPNet R18, the
standard FoveaHead) with only `attention_loss` changed; `attention_lambda` stays at the version's
default (v1: 0.01, v2: 1e-4), as the two original config trees set it. Every run trains the same
number of iterations on the same synthetic data (seed 0, 200 train / 50 val images of 256 x 256),
and is evaluated on val plain and 2-scale (as benchmarks/train_synthetic.py). The default of
1518 iterations is the one of benchmarks/ablation_ssfpn.py, so the cells are comparable with it.

Runs go cell by cell (v1 for every seed, then v2): benchmarks/results/ablation_ssfpn*.json already
hold v2 runs of this recipe for training seeds 0 and 1 (1518 iterations, 2 threads), so an
interrupted comparison can still be read against them. The JSON is rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from train_synthetic import RECIPE, RESULTS, machine, make_data, run_benchmark  # noqa: E402

from sspnet.io.atomic import json_safe  # noqa: E402

CELLS = {"v1": {"attention_loss": "v1"}, "v2": {"attention_loss": "v2"}}
METRICS = ("AP50_tiny", "AP25_tiny", "AP75_tiny", "MR50_tiny")


def summarise(runs: dict) -> dict:
    """Per cell and test setting: each metric's per-seed values and mean (percent)."""
    summary = {}
    for cell, by_seed in runs.items():
        summary[cell] = {}
        for setting in ("plain", "two_scale"):
            entry = {}
            for metric in METRICS:
                values = [row["metrics_percent"][setting].get(metric) for row in by_seed.values()]
                values = [v for v in values if v is not None]
                entry[metric] = {"per_seed": values, "mean": statistics.mean(values) if values else None}
            summary[cell][setting] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iters", type=int, default=1518, help="training iterations of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (replicates)")
    parser.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set")
    parser.add_argument("--work", default="/tmp/sspnet_fovea_supervision")
    parser.add_argument("--out", default=str(RESULTS / "compare_fovea_supervision.json"))
    args = parser.parse_args()

    from sspnet.io.atomic import atomic_write_json

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data = make_data(work, args.images, args.val_fraction, RECIPE.image_size, args.data_seed)
    recipes = {
        cell: RECIPE.with_overrides(f"{RECIPE.name}/attention-{cell}", **change) for cell, change in CELLS.items()
    }
    report = {
        "benchmark": "compare_fovea_supervision",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "recipe": RECIPE.name,
        "preset": RECIPE.preset,
        "iterations": args.max_iters,
        "seeds": args.seeds,
        "torch_threads": args.threads,
        "cells": {cell: CELLS[cell] for cell in args.cells},
        "data": {"size_wh": list(RECIPE.image_size), "images": args.images, "seed": args.data_seed, "path": str(data)},
        "machine": machine(),
        "runs": {cell: {} for cell in args.cells},
    }
    for cell in args.cells:
        for seed in args.seeds:
            run_dir = work / f"{cell}_seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            row = run_benchmark(recipes[cell], data, run_dir, args.max_iters, seed=seed)
            report["runs"][cell][str(seed)] = row
            report["summary_percent"] = summarise(report["runs"])
            atomic_write_json(args.out, json_safe(report), indent=2)
            print(
                f"{cell} seed {seed}: AP50_tiny {row['AP50_tiny_percent_plain']:.2f} % plain, "
                f"{row['AP50_tiny_percent_two_scale']:.2f} % 2-scale, {row['wall_time_s']:.0f} s",
                flush=True,
            )
    print(json.dumps(json_safe(report["summary_percent"]), indent=1))


if __name__ == "__main__":
    main()
