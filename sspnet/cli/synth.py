"""`sspnet synth`: write a synthetic tiny-person data set in the TinyPerson format.

Every setting and the output folder are checked before the first image is drawn (see
sspnet/data/synth.py): OUT must be new, empty or an earlier synth output.
"""

from __future__ import annotations

import time

from sspnet.io.table import print_table

HELP = "generate a synthetic tiny-person data set (TinyPerson JSON + JPEG images)"


def add_arguments(parser):
    parser.add_argument("out", metavar="OUT", help="output folder (images/ and annotations/ are created); "
                                                   "new, empty, or an earlier synth output")
    parser.add_argument("--images", type=int, default=200, help="number of images, at least 2 (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed -> same bytes (default 0)")
    parser.add_argument("--val-fraction", type=float, default=0.25,
                        help="share of images in val.json, between 0 and 1 (default 0.25)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 512), metavar=("W", "H"),
                        help="image size, 64 to 8192 per side (default 640 512)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from sspnet.data.synth import write_dataset

    start = time.perf_counter()
    summary = write_dataset(
        args.out, args.images, seed=args.seed, val_fraction=args.val_fraction,
        size=tuple(args.size), progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    rows = [(split, s["images"], s["boxes"], s["ignore"], s["uncertain"]) for split, s in
            ((name, summary[name]) for name in ("train", "val"))]
    print_table(rows, headers=("split", "images", "person boxes", "ignore regions", "uncertain"))
    print(f"wrote {args.out}/images and {args.out}/annotations/{{train,val}}.json "
          f"in {seconds:.1f} s ({args.images / seconds:.1f} images/s)")
    return 0
