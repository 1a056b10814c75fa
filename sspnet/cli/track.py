"""`sspnet track`: detect AND follow every person through a video, a folder of frames, a camera or a stream.

    sspnet track flight.mp4 --model demo_out/model.onnx --out runs/track
    sspnet track SEQ/img1 --model model.onnx --out runs/seq --tracker bytetrack --cmc none
    sspnet track rtsp://10.0.0.5/live --model model_fp16.engine --out runs/live

Everything `predict` does (the same source and model options, tiling with cross-tile merge, the
decode / model / writer pipeline, reconnecting streams, file safety), plus a tracker on the
detections of each frame (sspnet.tracking: Roboflow's `trackers` package, installed with the
[track] extra). `predict` itself never tracks; `track` is `predict` with ids.

A folder of frames is read in sorted file order and each file is one frame (a MOTChallenge img1/
folder works as is); frame numbers in tracks.txt are the source frame numbers from 1.
"""

from __future__ import annotations

import argparse

HELP = "detect and track people through videos / frame folders / cameras / streams (ids, tracks.txt, trails)"

EPILOG = """\
outputs in --out (besides predict's detections.jsonl / detections.json / annotated video or images):
  tracks.txt          MOTChallenge rows: frame,id,x,y,w,h,score,-1,-1,-1 (frame = source frame number
                      from 1, id from 1; confirmed tracks only), written when the run ends
  detections.jsonl    as predict's, each detection with "track_id": an id, or null while the detection
                      is not part of a confirmed track (yet); one record per frame, flushed per frame
  <video stem>.mp4    boxes in one colour per track, the id above each box, a trail of recent centres
  track_summary.json  tracker settings, tracks started / ended, mean track length, frames lost
tracker options: defaults measured on sspnet's synthetic UAV sequences (docs/tracking.md,
benchmarks/bench_tracking.py). --cmc estimates the camera's motion between frames on a frame
downscaled --cmc-downscale times and moves every track with it (a drone that pans or turns).
Detections below --track-high only continue existing tracks; --conf (the detector threshold) sets the
lowest score the tracker sees. Score the tracks: sspnet val --tracks OUT/tracks.txt --gt SEQ.
needs: pip install "sspnet[track]" && pip install --no-deps "trackers>=2.6.1,<3"
exit status: 0 done, 2 a user mistake (one line), 3 the stream's link was lost, 130 Ctrl-C."""


def add_arguments(parser):
    from sspnet.cli import predict as predict_cli
    from sspnet.tracking.tracker import ASSOCIATIONS, CMC_METHODS, TRACKERS, TrackerSettings

    predict_cli.add_arguments(parser)
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(conf=0.1)
    parser._option_string_actions["--labels"].help = "draw the track id above each box (default on)"
    parser._option_string_actions["--conf"].help = (  # track's default differs from predict's
        "detector score threshold: the lowest score the tracker sees (default 0.1; --track-high decides "
        "which detections may start a track)"
    )
    defaults = TrackerSettings()
    group = parser.add_argument_group("tracking")
    group.add_argument(
        "--tracker", choices=TRACKERS, default=defaults.tracker, help=f"tracking algorithm (default {defaults.tracker})"
    )
    group.add_argument(
        "--association",
        choices=ASSOCIATIONS,
        default=defaults.association,
        help="box similarity for matching detections to tracks: iou, biou (buffered IoU: boxes "
        "grown by --buffer-ratio first; fits tiny fast people), diou, giou "
        f"(default {defaults.association})",
    )
    group.add_argument(
        "--buffer-ratio",
        type=float,
        default=defaults.buffer_ratio,
        help=f"biou / cbiou: margin added to each box side as a share of its size (default {defaults.buffer_ratio:g})",
    )
    group.add_argument(
        "--cmc",
        choices=CMC_METHODS,
        default=defaults.cmc,
        help=f"camera-motion compensation method, or none (default {defaults.cmc})",
    )
    group.add_argument(
        "--cmc-downscale",
        type=int,
        default=defaults.cmc_downscale,
        metavar="N",
        help=f"estimate camera motion on the frame shrunk N times (default {defaults.cmc_downscale})",
    )
    group.add_argument(
        "--track-high",
        type=float,
        default=defaults.high_threshold,
        metavar="SCORE",
        help=f"detections at or above this score may start tracks (default {defaults.high_threshold:g})",
    )
    group.add_argument(
        "--min-hits",
        type=int,
        default=defaults.min_hits,
        metavar="N",
        help="matched detections a track needs before it gets an id; a track's first detection only starts "
        f"it (except on a video's first frame with botsort / cbiou) (default {defaults.min_hits})",
    )
    group.add_argument(
        "--lost-buffer",
        type=int,
        default=defaults.lost_track_buffer,
        metavar="FRAMES",
        help="frames (at 30 fps; scaled to the source's rate) a lost track waits to be picked up "
        f"again, e.g. over a link gap (default {defaults.lost_track_buffer})",
    )


def settings_from_args(args, fps: float | None):
    from sspnet.tracking.tracker import TrackerSettings

    return TrackerSettings(
        tracker=args.tracker,
        association=args.association,
        buffer_ratio=args.buffer_ratio,
        cmc=args.cmc,
        cmc_downscale=args.cmc_downscale,
        high_threshold=args.track_high,
        min_hits=args.min_hits,
        lost_track_buffer=args.lost_buffer,
        fps=fps or 30.0,
    ).check()


def run(args) -> int:
    from sspnet.cli import predict as predict_cli
    from sspnet.errors import UsageError
    from sspnet.tracking.hook import TrackingHook
    from sspnet.tracking.tracker import import_trackers

    if args.attention:
        raise UsageError("track draws ids and trails; attention panels are predict's (sspnet predict --attention)")
    settings_from_args(args, None)  # bad tracker options: refused before the source or model is opened
    import_trackers()  # and a missing package too

    def make_hook(source):
        fps = getattr(source, "fps", None)
        return TrackingHook(settings_from_args(args, fps), show_labels=args.labels)

    return predict_cli.run(args, hook_factory=make_hook, title="track")
