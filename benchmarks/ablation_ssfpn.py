"""Ablation on the synthetic set: SSFPN vs a plain FPN neck, each with and without the attention
loss, and erasing ignore regions or not; same data and training budget; writes
benchmarks/results/ablation_ssfpn.json.

    python benchmarks/ablation_ssfpn.py [--budget-min 10] [--work /tmp/sspnet_ablation]

The four cells are the `synthetic-cpu` recipe (sspnet/engine/recipes.py) with only the neck and
the attention loss changed:

    cell                 neck      attention loss   what it isolates
    ssfpn+attention      ssfpn     v2               SSPNet as published (the recipe itself)
    ssfpn                ssfpn     none             the gating without its mask supervision
    fpn+attention        fpn_cam   v2               the mask supervision without the gating: a plain
                                                    FPN whose CAM maps feed only the attention loss
    fpn                  fpn       none             the plain FPN baseline
    ssfpn+attention      ssfpn     v2               with ignore / uncertain regions of the training
      +erase_ignore                                 images filled with the image's mean colour
                                                    (TinyBenchmark's option; the original does not)

Every cell trains for the SAME number of iterations (calibrated on the most expensive cell,
SSFPN with the attention loss, to fit --budget-min) with the same seed and is evaluated on the same
val split, plain and 2-scale (as train_synthetic.py). About 5 x 10 minutes of a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_synthetic import (  # noqa: E402
    RECIPE,
    RESULTS,
    choose_threads,
    machine,
    make_data,
    run_benchmark,
    thread_candidates,
)

from sspnet.engine.recipes import iterations_for_budget  # noqa: E402
from sspnet.io.atomic import atomic_write_json, json_safe  # noqa: E402
from sspnet.models.presets import load_preset  # noqa: E402

ATTENTION_LOSS = load_preset(RECIPE.preset, **RECIPE.overrides).attention_loss  # the recipe's own (v2)
# cell -> (model overrides, further TrainConfig fields)
CELLS = {
    "ssfpn+attention": ({"neck": "ssfpn", "attention_loss": ATTENTION_LOSS}, {}),
    "ssfpn": ({"neck": "ssfpn", "attention_loss": "none"}, {}),
    "fpn+attention": ({"neck": "fpn_cam", "attention_loss": ATTENTION_LOSS}, {}),
    "fpn": ({"neck": "fpn", "attention_loss": "none"}, {}),
    "ssfpn+attention+erase_ignore": ({"neck": "ssfpn", "attention_loss": ATTENTION_LOSS}, {"erase_ignore": True}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-min", type=float, default=10.0, help="wall-time budget of EACH configuration")
    parser.add_argument("--eval-reserve-s", type=float, default=60.0)
    parser.add_argument("--max-iters", type=int, help="fixed iterations instead of the calibrated number")
    parser.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS), help="cells to run")
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    parser.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help="training seed (initialisation, data order); another seed = a replicate",
    )
    parser.add_argument("--threads", default="auto", help="torch threads, or 'auto' (see train_synthetic.py)")
    parser.add_argument("--work", default="/tmp/sspnet_ablation")
    parser.add_argument("--out", default=str(RESULTS / "ablation_ssfpn.json"))
    args = parser.parse_args()

    work = Path(args.work)
    data = make_data(work, args.images, args.val_fraction, RECIPE.image_size, args.seed)
    recipes = {name: RECIPE.with_overrides(f"{RECIPE.name}/{name}", **change) for name, (change, _) in CELLS.items()}
    threads, timings = choose_threads(recipes["ssfpn+attention"], thread_candidates(args.threads))
    calibration = timings[threads]
    max_iters = args.max_iters or iterations_for_budget(calibration, 60.0 * args.budget_min - args.eval_reserve_s)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "ablation_ssfpn",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "recipe": RECIPE.name,
        "iterations": max_iters,
        "train_seed": args.train_seed,
        "torch_threads": threads,
        "calibrated_sec_per_iter_ssfpn_attention": calibration,
        "data": {"size_wh": list(RECIPE.image_size), "images": args.images, "path": str(data)},
        "machine": machine(),
        "cells": {},
    }
    for name in args.cells:
        run_dir = work / name
        shutil.rmtree(run_dir, ignore_errors=True)
        row = run_benchmark(recipes[name], data, run_dir, max_iters, seed=args.train_seed, **CELLS[name][1])
        report["cells"][name] = row
        atomic_write_json(out, json_safe(report), indent=2)  # partial results survive an interruption
        print(
            f"{name}: AP50_tiny {row['AP50_tiny_percent_plain']:.2f} % plain, "
            f"{row['AP50_tiny_percent_two_scale']:.2f} % 2-scale, in {row['wall_time_s']:.0f} s",
            flush=True,
        )
    report["AP50_tiny_percent"] = {
        name: {"plain": cell["AP50_tiny_percent_plain"], "two_scale": cell["AP50_tiny_percent_two_scale"]}
        for name, cell in report["cells"].items()
    }
    atomic_write_json(out, json_safe(report), indent=2)
    print(json.dumps(json_safe(report["AP50_tiny_percent"]), indent=2))


if __name__ == "__main__":
    main()
