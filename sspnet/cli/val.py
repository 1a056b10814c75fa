"""`sspnet val`: TinyPerson evaluation (AP and MR per size range) of detections or of a checkpoint.

    sspnet val --results RESULTS.json --annotations GT.json [--json OUT.json]
    sspnet val --checkpoint CKPT --data DIR [--split val] [--tile H W] [--tta paper] [--json OUT.json]
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

HELP = "TinyPerson AP/MR of a COCO results file or of a checkpoint on a data set"


def add_arguments(parser):
    source = parser.add_argument_group("what to evaluate (one of)")
    source.add_argument("--results", metavar="RESULTS.json", help="COCO results file from any detector")
    source.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint (sspnet.checkpoint.load_model)")
    gt = parser.add_argument_group("ground truth")
    gt.add_argument("--annotations", metavar="GT.json", help="TinyPerson / COCO ground-truth JSON")
    gt.add_argument("--data", metavar="DIR", help="data folder: DIR/annotations/<split>.json, DIR/images/")
    gt.add_argument("--split", default="val", help="split name under DIR/annotations (default val)")
    model = parser.add_argument_group("model inference (with --checkpoint)")
    model.add_argument("--tile", type=int, nargs=2, metavar=("H", "W"),
                       help="cut images into tiles of this size (e.g. the export size 512 640); default: whole images")
    model.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    model.add_argument("--tta", choices=("none", "paper"), default="none",
                       help="paper: the original 2-scale test, (1280,1024) and (1920,1536) keep-ratio")
    model.add_argument("--batch", type=int, default=8, help="images or tiles per forward (default 8)")
    model.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    model.add_argument("--save-results", metavar="PATH", help="also write the detections as COCO results JSON")
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="OUT.json", help="write the metrics (percent) as JSON")
    out.add_argument("--no-mr", action="store_true", help="skip the miss-rate metrics")
    out.add_argument("--keep-dense", action="store_true",
                     help="also evaluate dense images (boxes flagged in_dense_image), which the protocol leaves out")
    out.add_argument("--keep-uncertain", action="store_true",
                     help="count 'uncertain' GT boxes as regular (default: ignored, as TinyBenchmark)")


def _fail(message: str) -> int:
    print(f"sspnet val: {message}", file=sys.stderr)
    return 2


def _detections_from_checkpoint(args, annotations):
    import torch

    try:
        from sspnet.checkpoint import load_model
    except ImportError as err:
        raise RuntimeError(f"cannot load checkpoints: sspnet.checkpoint is not available ({err})") from None
    from sspnet.evaluation.inference import PAPER_TTA_SCALES, detect_dataset

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.checkpoint).to(device)
    return detect_dataset(
        model, annotations, tile=tuple(args.tile) if args.tile else None, overlap=args.overlap,
        scales=PAPER_TTA_SCALES if args.tta == "paper" else None, batch_size=args.batch,
    )


def run(args) -> int:
    from sspnet.data.tinyperson import dataset_paths, load_annotations
    from sspnet.evaluation.tinyperson import (
        dense_image_ids,
        detections_to_coco_results,
        evaluate,
        print_results_table,
    )

    if bool(args.results) == bool(args.checkpoint):
        return _fail("give exactly one of --results and --checkpoint")
    if args.annotations:
        gt_path, image_root = Path(args.annotations), None
        if args.data:
            image_root = Path(args.data) / "images"
    elif args.data:
        gt_path, image_root = dataset_paths(args.data, args.split)
    else:
        return _fail("give the ground truth with --annotations GT.json or --data DIR")
    if args.checkpoint and image_root is None:
        return _fail("--checkpoint needs images: give --data DIR")

    start = time.perf_counter()
    annotations = load_annotations(gt_path, image_root=image_root if args.checkpoint else None)
    print(annotations.report)
    if args.checkpoint:
        detections = _detections_from_checkpoint(args, annotations)
        if args.save_results:
            Path(args.save_results).write_text(json.dumps(detections_to_coco_results(detections, annotations)))
            print(f"detections written to {args.save_results}")
    else:
        detections = Path(args.results)
    results = evaluate(annotations, detections, ignore_uncertain=not args.keep_uncertain,
                       compute_mr=not args.no_mr, exclude_dense_images=not args.keep_dense)
    print_results_table(results)
    dense = 0 if args.keep_dense else len(dense_image_ids(annotations))
    note = f", {dense} dense images left out (--keep-dense to include them)" if dense else ""
    print(f"AP50_tiny {results['AP50_tiny']:.2f}  ({len(annotations) - dense} images{note}, "
          f"{time.perf_counter() - start:.1f} s)")
    if args.json:
        clean = {k: (None if math.isnan(v) else round(v, 4)) for k, v in results.items()}
        Path(args.json).write_text(json.dumps(clean, indent=1))
        print(f"metrics written to {args.json}")
    return 0
