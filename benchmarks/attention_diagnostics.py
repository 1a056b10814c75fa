"""Why the attention loss costs AP in the 10-minute synthetic ablation: gradient norms of the
detection losses (loss_cls + loss_bbox) and of the attention losses (loss_seg + loss_reg), taken
separately on the same training batches, for the freshly initialised synthetic-cpu model and for a
trained checkpoint; and, from training logs, how long the gradient norm stays above the clip
threshold. Writes benchmarks/results/attention_diagnostics.json.

    python benchmarks/attention_diagnostics.py --data SYNTH_DIR \\
        --run ssfpn+attention=RUN_A --run ssfpn=RUN_B      # ablation run folders (last.safetensors, log.jsonl)

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
from sspnet.io.atomic import atomic_write_json

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
        rows.append(
            {
                "detection": norm(torch.autograd.grad(detection, params, retain_graph=True, allow_unused=True)),
                "attention": norm(torch.autograd.grad(attention, params, allow_unused=True)),
            }
        )
    return rows


def attention_statistics(model, images) -> dict:
    """Mean attention per level and mean SSM gate per level pair on uint8 [N, 3, H, W] images."""
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        _, attention = model.extract_features(torch.from_numpy(images))
    if not attention:
        return {}
    gates = [
        attention[i - 1] * F.interpolate(attention[i], size=attention[i - 1].shape[-2:], mode="nearest")
        for i in range(1, len(attention))
    ]
    return {
        "mean_attention": [round(float(a.mean()), 4) for a in attention],
        "mean_gate": [round(float(g.mean()), 4) for g in gates],
    }


def clipped_share(log_path: Path, clip: float) -> dict:
    """Logged windows (mean over log_every iterations) whose gradient norm exceeds `clip`."""
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if '"train"' in line]
    over = [r["iter"] for r in rows if r["grad_norm"] > clip]
    return {"windows": len(rows), "windows_above_clip": len(over), "last_iteration_above_clip": max(over, default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the synthetic set the ablation trained on")
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="CELL=RUN_DIR",
        help="an ablation run folder (last.safetensors, log.jsonl); repeatable",
    )
    parser.add_argument("--batches", type=int, default=8, help="training batches for the gradient norms")
    parser.add_argument("--images", type=int, default=16, help="val images for the attention statistics")
    parser.add_argument("--out", default=str(RESULTS / "attention_diagnostics.json"))
    args = parser.parse_args()

    from sspnet.export.parity import dataset_images

    from sspnet.checkpoint import load_model
    from sspnet.engine.builders import build_train_dataset
    from sspnet.models import build_model

    recipe = SYNTHETIC_CPU
    dataset = build_train_dataset(recipe.train_config(args.data, "/tmp/unused", max_iters=1))
    images, _ = dataset_images(args.data, "val", limit=args.images)
    report = {"recipe": recipe.name, "clip_grad": recipe.clip_grad, "batches": args.batches, "runs": {}}

    def summarise(rows):
        return {
            "median_detection": statistics.median(r["detection"] for r in rows),
            "median_attention": statistics.median(r["attention"] for r in rows),
            "per_batch": rows,
        }

    torch.manual_seed(0)
    report["initialised_gradient_norms"] = summarise(
        gradient_norms(build_model(recipe.preset, **recipe.overrides), dataset, args.batches)
    )
    print(
        f"initialised: median |grad| detection {report['initialised_gradient_norms']['median_detection']:.2f}, "
        f"attention {report['initialised_gradient_norms']['median_attention']:.2f}"
    )
    for item in args.run:
        cell, _, folder = item.partition("=")
        model = load_model(Path(folder) / "last.safetensors")
        entry = {**attention_statistics(model, images), **clipped_share(Path(folder) / "log.jsonl", recipe.clip_grad)}
        if model.attention_supervision is not None:
            entry["trained_gradient_norms"] = summarise(gradient_norms(model, dataset, args.batches))
        report["runs"][cell] = entry
        print(f"{cell}: " + ", ".join(f"{k} {v}" for k, v in entry.items() if k != "trained_gradient_norms"))
    atomic_write_json(args.out, report, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
