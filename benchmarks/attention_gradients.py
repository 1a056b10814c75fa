"""Why the attention loss costs AP in the 10-minute synthetic ablation: gradient norms of the
detection losses (loss_cls + loss_bbox) and of the attention losses (loss_seg + loss_reg), taken
separately on the same training batches, for the freshly initialised synthetic-cpu model and for a
trained checkpoint; and, from training logs, how long the gradient norm stays above the clip
threshold. Writes benchmarks/results/attention_gradients.json.

    python benchmarks/attention_gradients.py --data SYNTH_DIR --checkpoint RUN/last.safetensors \\
        --log ssfpn+attention=RUN_A/log.jsonl --log ssfpn=RUN_B/log.jsonl

The recipe clips the whole gradient at an L2 norm of 5: when one term's gradient is several times
the other's, clipping shrinks both, so a large attention gradient slows the detection head down.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from sspnet.engine.recipes import SYNTHETIC_CPU

RESULTS = Path(__file__).resolve().parent / "results"


def gradient_norms(model, dataset, batches: int) -> list[dict]:
    """Per batch: L2 norms of d(detection loss)/d(params) and d(attention loss)/d(params)."""
    from sspnet.data.dataset import collate

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]

    def norm(grads):
        return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))

    rows = []
    for b in range(batches):
        images, targets = collate([dataset[2 * b], dataset[2 * b + 1]])
        losses = model(images, targets)
        detection = losses["loss_cls"] + losses["loss_bbox"]
        attention = losses["loss_seg"] + losses["loss_reg"]
        rows.append({
            "detection": norm(torch.autograd.grad(detection, params, retain_graph=True, allow_unused=True)),
            "attention": norm(torch.autograd.grad(attention, params, allow_unused=True)),
        })
    return rows


def clipped_share(log_path: Path, clip: float) -> dict:
    """Logged windows (mean over log_every iterations) whose gradient norm exceeds `clip`."""
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if '"train"' in line]
    over = [r["iter"] for r in rows if r["grad_norm"] > clip]
    return {"windows": len(rows), "windows_above_clip": len(over), "last_iteration_above_clip": max(over, default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the synthetic set the ablation trained on")
    parser.add_argument("--checkpoint", required=True, help="a trained ssfpn+attention checkpoint")
    parser.add_argument("--log", action="append", default=[], metavar="CELL=LOG.jsonl", help="training logs to scan")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--out", default=str(RESULTS / "attention_gradients.json"))
    args = parser.parse_args()

    from sspnet.checkpoint import load_model
    from sspnet.engine.builders import build_train_dataset
    from sspnet.models import build_model

    recipe = SYNTHETIC_CPU
    dataset = build_train_dataset(recipe.train_config(args.data, "/tmp/unused", max_iters=1))
    torch.manual_seed(0)
    report = {"recipe": recipe.name, "clip_grad": recipe.clip_grad, "batches": args.batches, "norms": {}}
    for name, model in (("initialised", build_model(recipe.preset, **recipe.overrides)),
                        ("trained", load_model(args.checkpoint))):
        rows = gradient_norms(model, dataset, args.batches)
        report["norms"][name] = {
            "median_detection": statistics.median(r["detection"] for r in rows),
            "median_attention": statistics.median(r["attention"] for r in rows),
            "per_batch": rows,
        }
        print(f"{name:12s} median |grad| detection {report['norms'][name]['median_detection']:.2f}  "
              f"attention {report['norms'][name]['median_attention']:.2f}")
    report["logs"] = {}
    for item in args.log:
        cell, _, path = item.partition("=")
        report["logs"][cell] = clipped_share(Path(path), recipe.clip_grad)
        print(f"{cell}: {report['logs'][cell]}")
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
