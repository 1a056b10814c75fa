"""`sspnet synth`: write a synthetic tiny-person data set in the TinyPerson format, or (--video N)
synthetic UAV video sequences with ground-truth tracks in MOTChallenge layout.

    sspnet synth data/synth --images 200
    sspnet synth data/synth_mot --video 4 --frames 150 --size 1280 720

Every setting and the output folder are checked before the first image is drawn (see
sspnet/data/synth.py and sspnet/data/synth_video.py): OUT must be new, empty or an earlier synth output.
"""

from __future__ import annotations

import time

from sspnet.io.table import print_table

HELP = "generate a synthetic tiny-person data set (TinyPerson JSON + JPEG images) or --video MOT sequences"
VIDEO_SIZE = (1280, 720)  # above one 640x512 model tile: tiling and the cross-tile merge are exercised


def add_arguments(parser):
    parser.add_argument(
        "out",
        metavar="OUT",
        help="output folder (images/ and annotations/ are created); new, empty, or an earlier synth output",
    )
    parser.add_argument("--images", type=int, default=200, help="number of images, at least 2 (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed -> same bytes (default 0)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.25, help="share of images in val.json, between 0 and 1 (default 0.25)"
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("W", "H"),
        help="image size, 64 to 8192 per side (default 640 512); with --video the frame size, "
        "128 to 4096 (default 1280 720)",
    )
    video = parser.add_argument_group("video sequences (MOTChallenge layout: OUT/<name>/seqinfo.ini, img1/, gt/gt.txt)")
    video.add_argument(
        "--video",
        type=int,
        metavar="N",
        help="write N sequences instead of still images; camera modes in turn: hover, pan, rotate, zoom",
    )
    video.add_argument("--frames", type=int, default=150, help="frames per sequence (default 150, 30 fps)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_video(args) -> int:
    from sspnet.data.synth_video import write_sequences

    start = time.perf_counter()
    summaries = write_sequences(
        args.out,
        args.video,
        frames=args.frames,
        size=tuple(args.size or VIDEO_SIZE),
        seed=args.seed,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    print_table(
        [(s["name"], s["camera"], s["frames"], s["ids"], s["boxes"], s["ignored"]) for s in summaries],
        headers=("sequence", "camera", "frames", "people", "gt boxes", "ignore rows"),
    )
    frames = sum(s["frames"] for s in summaries)
    print(f"wrote {len(summaries)} sequences to {args.out} in {seconds:.1f} s ({frames / seconds:.1f} frames/s)")
    return 0


def run(args) -> int:
    from sspnet.data.synth import write_dataset

    if args.video is not None:
        return run_video(args)
    start = time.perf_counter()
    summary = write_dataset(
        args.out,
        args.images,
        seed=args.seed,
        val_fraction=args.val_fraction,
        size=tuple(args.size or (640, 512)),
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    rows = [
        (split, s["images"], s["boxes"], s["ignore"], s["uncertain"])
        for split, s in ((name, summary[name]) for name in ("train", "val"))
    ]
    print_table(rows, headers=("split", "images", "person boxes", "ignore regions", "uncertain"))
    print(
        f"wrote {args.out}/images and {args.out}/annotations/{{train,val}}.json "
        f"in {seconds:.1f} s ({args.images / seconds:.1f} images/s)"
    )
    return 0
