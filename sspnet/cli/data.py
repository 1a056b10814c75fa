"""`sspnet data tinyperson ROOT --out DIR`: check a TinyPerson download and write what `train` / `val` take.

    sspnet data tinyperson ~/datasets/tiny_set --out data/tinyperson
    sspnet train --preset faster_rcnn_r50_sspnet --data data/tinyperson/tinyperson.yaml --pretrained imagenet

What is checked, counted and written: sspnet.data.tinyperson_release. Nothing is written inside ROOT.
"""

from __future__ import annotations

import argparse

from sspnet.io.table import print_table

HELP = "prepare a data set: `data tinyperson ROOT --out DIR` checks a TinyPerson download and writes its YAML"


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    tiny = sets.add_parser(
        "tinyperson",
        help="the TinyPerson download (tiny_set/)",
        description=(
            "Checks the unpacked TinyPerson download (annotations/tiny_set_train.json, annotations/tiny_set_test.json, "
            "train/, test/, erase_with_uncertain_dataset/), counts images, boxes, ignore regions and uncertain boxes, "
            "cuts the training images into 640x512 pieces with 30 px overlap (the original training) and writes "
            "DIR/tinyperson.yaml for `sspnet train --data` / `sspnet val --data`."
        ),
    )
    tiny.add_argument("root", metavar="ROOT", help="the unpacked tiny_set/ folder")
    tiny.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for tinyperson.yaml and the cut training annotations (not inside ROOT)",
    )
    tiny.add_argument(
        "--with-dense",
        action="store_true",
        help="train on tiny_set_train_with_dense.json (also the images with > 200 boxes)",
    )
    tiny.add_argument(
        "--images",
        choices=("erased", "original"),
        help="training images: erase_with_uncertain_dataset/train (default when present) or train/",
    )


def run(args) -> int:
    from sspnet.data.tinyperson_release import PIECE_OVERLAP, PIECE_SIZE, check_release, prepare_release
    from sspnet.io.outputs import OutputGuard

    guard = OutputGuard(inputs=[args.root], verb="data tinyperson")
    guard.check_dir(args.out)  # refused before the (long) checks
    erased = None if args.images is None else args.images == "erased"
    release = check_release(args.root, with_dense=args.with_dense, erased=erased)
    headers = ("split", "annotations", "images", "boxes", "tiny (<20 px)", "ignore", "uncertain", "dense images")
    print_table([release.train.row("train"), release.test.row("test")], headers=headers)
    written = prepare_release(release, args.out, guard=guard)
    print_table(
        [
            ("training images", str(release.train.images_dir)),
            (
                f"pieces {PIECE_SIZE[0]}x{PIECE_SIZE[1]}, {PIECE_OVERLAP} px overlap",
                f"{written['pieces']} ({written['piece_boxes']} boxes; pieces without boxes left out)",
            ),
            ("training annotations", str(written["train_annotations"])),
            ("dataset YAML", str(written["yaml"])),
        ],
        headers=("prepared", ""),
    )
    print(f"next: sspnet train --preset faster_rcnn_r50_sspnet --data {written['yaml']} --pretrained imagenet")
    return 0
