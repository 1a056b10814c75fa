"""`sspnet val --tracks`: score MOTChallenge tracks (HOTA, DetA, AssA, MOTA, IDF1, ID switches).

    sspnet val --tracks runs/track/tracks.txt --gt SEQ              # one sequence (SEQ/seqinfo.ini, SEQ/gt/gt.txt)
    sspnet val --tracks runs/track/tracks.txt --gt SEQ/gt/gt.txt
    sspnet val --tracks runs/tracks --gt synth_mot                  # every sequence: runs/tracks/<name>.txt
                                                                    # or runs/tracks/<name>/tracks.txt

Metrics: sspnet.tracking.evaluate (the `trackers` evaluator, TrackEval's definitions). Every file
is read and checked first; a bad row is refused with one line naming file, line and field (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from sspnet.errors import UsageError

TRACK_OPTIONS = ("tracks", "gt")
COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


def add_arguments(parser) -> None:
    group = parser.add_argument_group("tracking (instead of --results / --checkpoint)")
    group.add_argument(
        "--tracks",
        metavar="TRACKS",
        help="tracks.txt (MOTChallenge rows frame,id,x,y,w,h,score,...) "
        "or a folder of <sequence>.txt / <sequence>/tracks.txt",
    )
    group.add_argument(
        "--gt",
        metavar="SEQ",
        help="with --tracks: a sequence folder (seqinfo.ini, gt/gt.txt), its gt.txt, or a folder of sequence folders",
    )


def check_arguments(args) -> None:
    """--tracks mode: only --gt and --json apply."""
    if not args.gt:
        raise UsageError(
            "--tracks needs the ground truth: --gt SEQ (a sequence folder, its gt/gt.txt, or a folder of sequences)"
        )
    other = [
        flag
        for flag, given in (
            ("--results", args.results),
            ("--checkpoint", args.checkpoint),
            ("--annotations", args.annotations),
            ("--data", args.data),
            ("--corners", args.corners),
            ("--save-results", args.save_results),
        )
        if given
    ]
    if other:
        raise UsageError(f"{', '.join(other)} score detections; --tracks scores tracks against --gt (leave them out)")


def _sequences(gt: Path):
    """(SeqInfo list, or None with the gt.txt path when a bare gt file without seqinfo.ini is given)."""
    from sspnet.data.synth_video import find_sequences
    from sspnet.tracking.mot import read_seqinfo

    if gt.is_file():
        folder = gt.parent.parent
        if (folder / "seqinfo.ini").is_file():
            info = read_seqinfo(folder)
            if info.gt.resolve() == gt.resolve():
                return [info], None
        return None, gt
    if not gt.exists():
        raise FileNotFoundError(2, "--gt not found", str(gt))
    return find_sequences(gt), None


def run(args) -> int:
    import time

    from sspnet.io.atomic import atomic_write_json
    from sspnet.io.outputs import OutputGuard
    from sspnet.io.table import print_table
    from sspnet.tracking.evaluate import evaluate_sequences, evaluate_tracks

    check_arguments(args)
    tracks, gt = Path(args.tracks), Path(args.gt)
    if not tracks.exists():
        raise FileNotFoundError(2, "--tracks not found", str(tracks))
    if args.json:
        OutputGuard(inputs=[tracks, gt], verb="val").check_file(args.json, "json")
    start = time.perf_counter()
    sequences, bare_gt = _sequences(gt)
    if bare_gt is not None:
        if tracks.is_dir():
            raise UsageError(
                "one gt.txt needs one tracks file",
                field="--tracks",
                expected="a tracks.txt file",
                got=f"folder {tracks}",
            )
        results = {bare_gt.parent.parent.name or "sequence": evaluate_tracks(tracks, bare_gt)}
    else:
        results = evaluate_sequences(sequences, tracks)
    rows = [
        (name, *(f"{m[c]:.2f}" if isinstance(m[c], float) else str(m[c]) for c in COLUMNS))
        for name, m in results.items()
    ]
    print_table(rows, headers=("sequence", *COLUMNS))
    print(
        f"evaluator: trackers.eval (TrackEval definitions; HOTA over IoU 0.05..0.95, CLEAR / Identity at IoU 0.5), "
        f"{len(results) - ('COMBINED' in results)} sequence(s), {time.perf_counter() - start:.1f} s"
    )
    if args.json:
        atomic_write_json(
            args.json, {"sequences": results, "tracks": str(tracks), "gt": str(gt), "evaluator": "trackers.eval"}
        )
        print(f"metrics written to {args.json}")
    return 0
