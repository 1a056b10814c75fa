"""`sspnet val`: TinyPerson evaluation (AP and MR per size range) of detections or of a checkpoint.

    sspnet val --results RESULTS.json --annotations GT.json [--corners CORNERS.json] [--json OUT.json]
    sspnet val --checkpoint CKPT --data DIR|DATA.yaml [--split val] [--published | --tile H W --tta paper]
               [--save-results DETS.json] [--json OUT.json]
    sspnet val --tracks TRACKS.txt|DIR --gt SEQ|SEQ/gt/gt.txt|DIR [--json OUT.json]   (sspnet/cli/val_tracks.py)

Inputs are checked before any work: the ground truth is read as the official evaluation reads it
and any bad record is refused (one line naming the file and the field, exit 2), and so is a results
file with a bad record, NaN / inf values or unknown image ids (sspnet.evaluation.results: refused
as a whole, never partly scored). Outputs (--json, --save-results) are checked against the inputs
before any work and written atomically. `val` exits 2 when nothing could be evaluated (no image
left, or no ground-truth box that counts in any size range) instead of printing NaN.
"""

from __future__ import annotations

import errno
import math
import time
from pathlib import Path

from sspnet.cli import val_tracks
from sspnet.errors import InputError, UsageError

HELP = "TinyPerson AP/MR of a COCO results file or of a checkpoint on a data set; --tracks: HOTA/MOTA/IDF1"

DEFAULT_OVERLAP = 30
DEFAULT_BATCH = 8
TILE_MULTIPLE = 32
# The paper's test setting (docs/evaluation.md): whole images, two keep-ratio scales, soft-NMS.
PUBLISHED_POSTPROCESS = {
    "score_thr": 0.05,
    "nms_method": "linear",
    "nms_iou_thr": 0.3,
    "nms_min_score": 0.05,
    "max_detections": 500,
}


def add_arguments(parser):
    source = parser.add_argument_group("what to evaluate (one of)")
    source.add_argument("--results", metavar="RESULTS.json", help="COCO results file from any detector")
    source.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint (.safetensors or original .pth)")
    gt = parser.add_argument_group("ground truth")
    gt.add_argument("--annotations", metavar="GT.json", help="TinyPerson / COCO ground-truth JSON of whole images")
    gt.add_argument(
        "--data",
        metavar="DIR|DATA.yaml",
        help="data folder (DIR/annotations/<split>.json, DIR/images/) or dataset YAML (train/val)",
    )
    gt.add_argument("--split", default="val", help="split name (default val)")
    gt.add_argument(
        "--corners",
        metavar="CORNERS.json",
        help="the results are of the sub-images of this TinyBenchmark corner file: merge them into "
        "whole images (NMS 0.5, as TinyBenchmark) before scoring against --annotations",
    )
    model = parser.add_argument_group("model inference (with --checkpoint)")
    model.add_argument(
        "--published",
        action="store_true",
        help="the paper's test setting: whole images at (1280, 1024) and (1920, 1536) keep-ratio, "
        "soft-NMS (linear, IoU 0.3), 500 detections per image",
    )
    model.add_argument(
        "--tile",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="cut images into tiles of this size, multiples of 32 (e.g. the export size 512 640); "
        "default: whole images",
    )
    model.add_argument("--overlap", type=int, help=f"tile overlap in pixels (default {DEFAULT_OVERLAP})")
    model.add_argument(
        "--tta",
        choices=("none", "paper"),
        help="paper: the original 2-scale test, (1280,1024) and (1920,1536) keep-ratio (default none)",
    )
    model.add_argument("--batch", type=int, help=f"images or tiles per forward (default {DEFAULT_BATCH})")
    model.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    model.add_argument("--save-results", metavar="PATH", help="also write the detections as COCO results JSON")
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="OUT.json", help="write the metrics (percent) and the setting as JSON")
    out.add_argument("--no-mr", action="store_true", help="skip the miss-rate metrics")
    out.add_argument(
        "--mr",
        choices=("exact", "official"),
        default="exact",
        help="exact (default): the correct miss rate; official: reproduce the official TinyBenchmark "
        "MR script, quirks included, to compare with published tables",
    )
    out.add_argument(
        "--keep-dense",
        action="store_true",
        help="also evaluate dense images (boxes flagged in_dense_image), which the protocol leaves out",
    )
    out.add_argument(
        "--keep-uncertain",
        action="store_true",
        help="count 'uncertain' GT boxes as regular (default: ignored, as TinyBenchmark)",
    )
    val_tracks.add_arguments(parser)


# ------------------------------------------------------------------------------------ arguments


def _check_arguments(args) -> None:
    """Every argument mistake, before any file is read (UsageError)."""
    if args.tracks:
        return val_tracks.check_arguments(args)
    if args.gt:
        raise UsageError("--gt is the ground truth of --tracks; detections use --annotations / --data")
    if bool(args.results) == bool(args.checkpoint):
        raise UsageError("give exactly one of --results RESULTS.json and --checkpoint CKPT")
    if not args.annotations and not args.data:
        raise UsageError("give the ground truth with --annotations GT.json or --data DIR")
    if args.results:
        model_only = [
            name
            for name, given in (
                ("--published", args.published),
                ("--tile", args.tile),
                ("--overlap", args.overlap is not None),
                ("--tta", args.tta),
                ("--batch", args.batch is not None),
                ("--device", args.device),
                ("--save-results", args.save_results),
            )
            if given
        ]
        if model_only:
            raise UsageError(
                f"{', '.join(model_only)} only apply with --checkpoint (a results file is scored as it is)"
            )
        return
    if args.corners:
        raise UsageError("--corners applies to --results; with --checkpoint cut tiles with --tile H W")
    if not args.data:
        raise UsageError("--checkpoint needs the images: give --data DIR (with --annotations, DIR/images is used)")
    if args.published and (args.tile or args.tta == "none"):
        raise UsageError("--published is whole images at the paper's two scales; leave out --tile / --tta none")
    if args.tile:
        height, width = args.tile
        if min(height, width) <= 0 or height % TILE_MULTIPLE or width % TILE_MULTIPLE:
            raise UsageError(
                "bad tile size",
                field="--tile",
                expected=f"H W, positive multiples of {TILE_MULTIPLE}",
                got=f"{height} {width}",
            )
        overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
        if not 0 <= overlap < min(height, width):
            raise UsageError(
                "bad tile overlap", field="--overlap", expected=f"0 <= overlap < {min(height, width)}", got=overlap
            )
    elif args.overlap is not None:
        raise UsageError("--overlap applies to tiles: give --tile H W too")
    if args.batch is not None and args.batch < 1:
        raise UsageError("bad batch size", field="--batch", expected="an int >= 1", got=args.batch)


def _ground_truth_paths(args) -> tuple[Path, Path | None]:
    """(annotation JSON, image folder or None)."""
    from sspnet.data.tinyperson import dataset_paths

    image_root = None
    if args.data:
        data = Path(args.data)
        if data.is_file():
            from sspnet.engine.config import resolve_data

            described = resolve_data(data)
            split = {"train": described.train, "val": described.val}.get(args.split)
            if split is None:
                raise UsageError(
                    f"{data} has no {args.split!r} split", field="--split", expected="train or val", got=args.split
                )
            json_path, image_root = Path(split.annotations), Path(split.images)
        else:
            json_path, image_root = dataset_paths(data, args.split)
        if args.annotations is None:
            return json_path, image_root
    return Path(args.annotations), image_root


def _check_outputs(args, inputs: list) -> None:
    """Refuse outputs that would destroy an input or another kind of file, before any work."""
    from sspnet.io.outputs import OutputGuard

    outputs = [(args.json, "json"), (args.save_results, "coco-results")]
    given = [(Path(p), kind) for p, kind in outputs if p]
    if len(given) == 2 and given[0][0].resolve() == given[1][0].resolve():
        raise UsageError("--json and --save-results name the same file", got=str(given[0][0]))
    guard = OutputGuard(inputs=inputs, verb="val")
    for path, kind in given:
        guard.check_file(path, kind)
        existing = next(parent for parent in path.resolve().parents if parent.exists())
        if not existing.is_dir():
            raise UsageError("the output's folder is a file", path=path, got=f"{existing} is a file")


# --------------------------------------------------------------------------------------- running


def _test_setting(args, model_postprocess: dict | None = None) -> tuple[dict, str]:
    """How the detections were produced: (JSON-able facts, one line). model_postprocess: the loaded
    model's score threshold / NMS / detections per image (with --checkpoint)."""
    from sspnet.evaluation.inference import PAPER_TTA_SCALES

    if args.results:
        line = f"detections read from {args.results} (how they were produced is not recorded in the file)"
        if args.corners:
            line += f"; sub-image results of {args.corners} merged into whole images (NMS 0.5, +1 px, as TinyBenchmark)"
        return {"source": "results", "results": args.results, "corners": args.corners}, line
    scales = [list(s) for s in PAPER_TTA_SCALES] if args.published or args.tta == "paper" else None
    tile = list(args.tile) if args.tile else None
    overlap = (DEFAULT_OVERLAP if args.overlap is None else args.overlap) if tile else None
    published = tile is None and scales is not None and model_postprocess == PUBLISHED_POSTPROCESS
    facts = {
        "source": "checkpoint",
        "checkpoint": args.checkpoint,
        "published": published,
        "tile_hw": tile,
        "overlap": overlap,
        "scales_long_short": scales,
        "model_postprocess": model_postprocess,
    }
    where = f"{tile[0]}x{tile[1]} tiles (H x W), overlap {overlap} px, merged with NMS 0.5" if tile else "whole images"
    at = " and ".join(f"{long}x{short}" for long, short in scales) + " keep-ratio" if scales else "native size"
    post = model_postprocess or {}
    nms = (
        f"{'soft-NMS linear' if post.get('nms_method') == 'linear' else post.get('nms_method')} "
        f"IoU {post.get('nms_iou_thr')}, {post.get('max_detections')} per image"
    )
    line = f"{where} at {at}, {nms}"
    line = f"published ({line})" if published else f"{line} (not the paper's setting; --published gives it)"
    return facts, line


def _load_model(args):
    """The checkpoint's model on its device, and its post-processing settings."""
    import torch

    from sspnet.checkpoint import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.checkpoint, **(PUBLISHED_POSTPROCESS if args.published else {})).to(device)
    config = model.config
    postprocess = {key: getattr(config, key) for key in PUBLISHED_POSTPROCESS}
    print(
        f"model: {getattr(model, 'preset', '?')}, score >= {config.score_thr}, NMS {config.nms_method} "
        f"IoU {config.nms_iou_thr}, {config.max_detections} per image"
    )
    return model, postprocess


def _detect(args, model, annotations, setting: dict):
    from sspnet.evaluation.inference import PAPER_TTA_SCALES, detect_dataset

    return detect_dataset(
        model,
        annotations,
        tile=tuple(args.tile) if args.tile else None,
        overlap=setting["overlap"] or DEFAULT_OVERLAP,
        scales=PAPER_TTA_SCALES if setting["scales_long_short"] else None,
        batch_size=args.batch or DEFAULT_BATCH,
        max_detections=setting["model_postprocess"]["max_detections"],
    )


def run(args) -> int:
    from sspnet.data.tinyperson import load_annotations
    from sspnet.evaluation.results import load_corner_file
    from sspnet.evaluation.tinyperson import (
        dense_image_ids,
        detections_to_coco_results,
        evaluate,
        print_results_table,
    )
    from sspnet.io.atomic import atomic_write_json

    _check_arguments(args)
    if args.tracks:
        return val_tracks.run(args)
    gt_path, image_root = _ground_truth_paths(args)
    inputs = [gt_path, args.results, args.corners, args.checkpoint, image_root if args.checkpoint else None]
    _check_outputs(args, inputs)
    for option, path in (("--results", args.results), ("--corners", args.corners), ("--checkpoint", args.checkpoint)):
        if path and not Path(path).is_file():
            if Path(path).is_dir():
                raise UsageError(f"{option} names a folder, expected a file", path=path)
            raise FileNotFoundError(errno.ENOENT, f"{option} file not found", path)

    start = time.perf_counter()
    annotations = load_annotations(gt_path, image_root=image_root if args.checkpoint else None, evaluation=True)
    print(annotations.report)
    if annotations.is_corner_file:
        raise UsageError(
            f"{gt_path} holds sub-images (image records with 'corner'); val scores whole images "
            "as the protocol does: give the whole-image annotation file with --annotations, and "
            + ("this file with --corners" if args.results else "cut tiles with --tile H W")
        )
    corners = load_corner_file(args.corners) if args.corners else None
    if args.checkpoint:
        model, postprocess = _load_model(args)
        setting, setting_line = _test_setting(args, postprocess)
        detections = _detect(args, model, annotations, setting)
        if args.save_results:
            atomic_write_json(args.save_results, detections_to_coco_results(detections, annotations), indent=None)
            print(f"detections written to {args.save_results}")
    else:
        setting, setting_line = _test_setting(args)
        detections = Path(args.results)
    results = evaluate(
        annotations,
        detections,
        ignore_uncertain=not args.keep_uncertain,
        compute_mr=not args.no_mr,
        exclude_dense_images=not args.keep_dense,
        corners=corners,
        mr_mode=args.mr,
    )
    dense = 0 if args.keep_dense else len(dense_image_ids(annotations))
    evaluated = len(annotations) - dense
    if all(math.isnan(v) for k, v in results.items() if k.startswith("AP")):
        raise InputError(
            "nothing to evaluate: no ground-truth box counts in any size range (every box is "
            "ignore / uncertain / crowd, in a dense image, or outside the ranges); AP is undefined",
            path=gt_path,
            got=f"{annotations.report.boxes} boxes in {evaluated} images",
        )
    print_results_table(results)
    note = f", {dense} dense images left out (--keep-dense to include them)" if dense else ""
    print(f"test setting: {setting_line}")
    print(
        f"evaluation: TinyPerson protocol, {evaluated} images{note}, uncertain boxes "
        f"{'counted' if args.keep_uncertain else 'ignored'}, MR {'not computed' if args.no_mr else args.mr}"
    )
    print(f"AP50_tiny {results['AP50_tiny']:.2f}  ({time.perf_counter() - start:.1f} s)")
    if args.json:
        document = {
            **{k: (None if math.isnan(v) else round(v, 4)) for k, v in results.items()},
            "setting": {
                **setting,
                "images": evaluated,
                "dense_left_out": dense,
                "uncertain_ignored": not args.keep_uncertain,
                "mr_mode": None if args.no_mr else args.mr,
            },
        }
        atomic_write_json(args.json, document)
        print(f"metrics written to {args.json}")
    return 0
