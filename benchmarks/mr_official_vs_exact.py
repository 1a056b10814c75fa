"""How far the official TinyBenchmark MR script's numbers lie from the exact MR, on real detections:
a checkpoint's detections on the splits of a data set, scored in both MR modes
(sspnet.evaluation.tinyperson, `mr_mode`); writes benchmarks/results/mr_official_vs_exact.json.

    python benchmarks/mr_official_vs_exact.py CKPT DATA_DIR [--splits val train] [--out PATH]

Splits with fewer than 100 images show the second quirk (a top false positive reads the final
recall); larger ones only the first (the second IoD pass near ignore regions).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data", help="data folder as `sspnet synth` writes it")
    parser.add_argument("--splits", nargs="+", default=["val", "train"])
    parser.add_argument("--out", default=str(RESULTS / "mr_official_vs_exact.json"))
    args = parser.parse_args()

    import torch

    from sspnet.checkpoint import load_model
    from sspnet.data.tinyperson import dataset_paths, load_annotations
    from sspnet.evaluation.inference import detect_dataset
    from sspnet.evaluation.tinyperson import evaluate
    from sspnet.io.atomic import atomic_write_json

    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    report = {
        "benchmark": "mr_official_vs_exact",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "checkpoint": args.checkpoint,
        "data": args.data,
        "splits": {},
    }
    for split in args.splits:
        gt_path, image_root = dataset_paths(args.data, split)
        annotations = load_annotations(gt_path, image_root=image_root, evaluation=True)
        start = time.perf_counter()
        detections = detect_dataset(model, annotations, progress=False)
        modes = {mode: evaluate(annotations, detections, mr_mode=mode) for mode in ("exact", "official")}
        keys = [k for k in modes["exact"] if k.startswith("MR")]
        report["splits"][split] = {
            "images": len(annotations),
            "seconds": round(time.perf_counter() - start, 1),
            "MR_exact": {k: modes["exact"][k] for k in keys},
            "MR_official": {k: modes["official"][k] for k in keys},
            "official_minus_exact": {k: modes["official"][k] - modes["exact"][k] for k in keys},
        }
        difference = report["splits"][split]["official_minus_exact"]
        print(
            f"{split} ({len(annotations)} images): MR50_tiny exact {modes['exact']['MR50_tiny']:.2f}, "
            f"official {modes['official']['MR50_tiny']:.2f} ({difference['MR50_tiny']:+.2f})",
            flush=True,
        )
    atomic_write_json(args.out, report, indent=2)


if __name__ == "__main__":
    main()
