"""Tracking metrics (HOTA, DetA, AssA, MOTA, IDF1, ID switches) through the `trackers` evaluator.

    metrics = evaluate_tracks("runs/track/tracks.txt", "SEQ/gt/gt.txt", num_frames=300)
    table = evaluate_folder("synth_mot", "runs/tracks")       # SEQ/gt/gt.txt vs runs/tracks/SEQ.txt

The metric code is `trackers.eval` (Roboflow), written to match TrackEval's matching and metric
definitions, MOTChallenge preprocessing included (gt rows with consider 0 or another class than
pedestrian are not scored; a tracker box that best matches a distractor-class row is removed).
tests/tracking/test_evaluate.py checks it against hand-worked HOTA / MOTA / IDF1 values.
Files are read by sspnet.tracking.mot first, so a bad row is refused with one line naming the
file, the line and the field (the evaluator's own loader names neither).

Numbers are percentages (like `sspnet val`), except the counts (IDSW, FP, FN, tracks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sspnet.errors import InputError
from sspnet.tracking.mot import MotRows, SeqInfo, read_mot
from sspnet.tracking.tracker import import_trackers

HEADLINE = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")


def _frames(rows: MotRows) -> dict:
    """MotRows -> {frame: trackers' per-frame record}, the evaluator's input."""
    import_trackers()
    from trackers.io.mot import _MOTFrameData  # the evaluator's record type (trackers 2.x)

    out = {}
    for frame in np.unique(rows.frame):
        mask = rows.frame == frame
        out[int(frame)] = _MOTFrameData(
            ids=rows.id[mask].astype(np.intp),
            boxes=rows.box[mask],
            confidences=rows.score[mask],
            classes=rows.cls[mask].astype(np.intp),
        )
    return out


def _raw_metrics(gt: MotRows, tracks: MotRows, num_frames: int) -> dict:
    """The evaluator's three metric families for one sequence (its dicts, fractions)."""
    import_trackers()
    from trackers.eval.clear import compute_clear_metrics
    from trackers.eval.hota import compute_hota_metrics
    from trackers.eval.identity import compute_identity_metrics
    from trackers.io.mot import _prepare_mot_sequence

    tracks = MotRows(tracks.frame, tracks.id, tracks.box, tracks.score, np.ones_like(tracks.cls), tracks.visibility)
    data = _prepare_mot_sequence(_frames(gt), _frames(tracks), num_frames=num_frames)
    arguments = (data.gt_ids, data.tracker_ids, data.similarity_scores)
    return {
        "CLEAR": compute_clear_metrics(*arguments, threshold=0.5),
        "HOTA": compute_hota_metrics(*arguments),
        "Identity": compute_identity_metrics(*arguments, threshold=0.5),
    }


def _summary(raw: dict, gt: MotRows | None = None, tracks: MotRows | None = None) -> dict:
    hota, clear, identity = raw["HOTA"], raw["CLEAR"], raw["Identity"]
    summary = {name: 100.0 * float(np.mean(hota[name])) for name in ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "LocA")}
    summary.update(
        {
            "MOTA": 100.0 * float(clear["MOTA"]),
            "MOTP": 100.0 * float(clear["MOTP"]),
            "IDF1": 100.0 * float(identity["IDF1"]),
            "IDSW": int(clear["IDSW"]),
            "FP": int(clear["CLR_FP"]),
            "FN": int(clear["CLR_FN"]),
            "Frag": int(clear["Frag"]),
        }
    )
    if gt is not None and tracks is not None:
        summary["gt_ids"] = int(len(np.unique(gt.id[(gt.score != 0) & (gt.cls == 1)])))
        summary["track_ids"] = int(len(np.unique(tracks.id)))
    return summary


def evaluate_rows(gt: MotRows, tracks: MotRows, num_frames: int) -> tuple[dict, dict]:
    """(summary in percent, the evaluator's raw dicts for aggregation) of one sequence."""
    raw = _raw_metrics(gt, tracks, num_frames)
    return _summary(raw, gt, tracks), raw


def evaluate_tracks(tracks_path: str | Path, gt_path: str | Path, num_frames: int | None = None) -> dict:
    """Metrics (percent) of one tracks.txt against one gt.txt. num_frames: the sequence length
    (seqinfo.ini); without it, the last frame in either file."""
    gt = read_mot(gt_path, "gt", num_frames)
    tracks = read_mot(tracks_path, "tracks", num_frames)
    if not len(gt):
        raise InputError("no ground-truth rows", path=gt_path, expected="at least one row frame,id,x,y,w,h,...")
    if num_frames is None:
        num_frames = int(max(gt.frame.max(), tracks.frame.max() if len(tracks) else 0))
    return evaluate_rows(gt, tracks, num_frames)[0]


def aggregate(raws: list[dict]) -> dict:
    """Combine per-sequence raw metrics as TrackEval does (sums of counts, HOTA per threshold)."""
    from trackers.eval.clear import aggregate_clear_metrics
    from trackers.eval.hota import aggregate_hota_metrics
    from trackers.eval.identity import aggregate_identity_metrics

    return {
        "CLEAR": aggregate_clear_metrics([r["CLEAR"] for r in raws]),
        "HOTA": aggregate_hota_metrics([r["HOTA"] for r in raws]),
        "Identity": aggregate_identity_metrics([r["Identity"] for r in raws]),
    }


def tracks_file_for(tracks: Path, info: SeqInfo, many: bool) -> Path:
    """Where a sequence's tracks are: TRACKS itself (one sequence), TRACKS/<name>.txt (TrackEval's
    layout) or TRACKS/<name>/tracks.txt (one `sspnet track --out` folder per sequence)."""
    if tracks.is_file() and not many:
        return tracks
    candidates = (
        tracks / f"{info.name}.txt",
        tracks / info.name / "tracks.txt",
        tracks / info.folder.name / "tracks.txt",
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(
        "no tracks for sequence",
        path=tracks,
        field=info.name,
        expected=f"{info.name}.txt or {info.name}/tracks.txt in the tracks folder",
    )


def evaluate_sequences(sequences: list[SeqInfo], tracks: str | Path) -> dict:
    """{sequence name: summary, ..., "COMBINED": summary} for sequences against a tracks file or folder.
    Every file is read and checked before any score is computed."""
    tracks = Path(tracks)
    many = len(sequences) > 1
    if tracks.is_file() and many:
        raise InputError(
            "one tracks file for several sequences",
            path=tracks,
            expected="a folder with <sequence>.txt or <sequence>/tracks.txt per sequence",
        )
    loaded = []
    for info in sequences:
        gt = read_mot(info.gt, "gt", info.frames)
        if not len(gt):
            raise InputError("no ground-truth rows", path=info.gt, expected="at least one row frame,id,x,y,w,h,...")
        loaded.append((info, gt, read_mot(tracks_file_for(tracks, info, many), "tracks", info.frames)))
    results, raws = {}, []
    for info, gt, rows in loaded:
        results[info.name], raw = evaluate_rows(gt, rows, info.frames)
        raws.append(raw)
    if many:
        results["COMBINED"] = _summary(aggregate(raws))
    return results


__all__ = ["evaluate_tracks", "evaluate_rows", "evaluate_sequences", "aggregate", "HEADLINE"]
