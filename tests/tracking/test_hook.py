"""The tracking frame hook inside predict's loop: gaps counted, tracks.txt written only when the run ends."""

import numpy as np

from sspnet.inference.sources import Frame
from sspnet.io.outputs import OutputGuard
from sspnet.tracking.hook import TrackingHook
from sspnet.tracking.tracker import TrackerSettings


class Summary:
    def __init__(self):
        self.extra_rows, self.outputs, self.frames, self.dropped = [], {}, 0, 0


def row(x, y, score=0.9):
    return {"bbox": [x, y, 4.0, 8.0], "score": score}


def test_gaps_are_counted_and_tracks_continue_across_them(tmp_path):
    hook = TrackingHook(TrackerSettings(tracker="bytetrack", cmc="none", min_hits=1))
    hook.plan(OutputGuard(inputs=[]), tmp_path)
    image = np.zeros((64, 96, 3), np.uint8)
    ids = []
    for k in range(4):
        rows = hook.on_frame(Frame(k, f"f{k}", image), None, [row(10 + 2 * k, 20)])
        ids.append(rows[0]["track_id"])
    hook.on_gap(Frame(4, "f4", None, error="link down", link="down", lost=0))
    hook.on_gap(Frame(7, "f7", None, error="link back", link="back", lost=3))
    hook.on_gap(Frame(8, "f8", None, error="undecodable"))
    rows = hook.on_frame(Frame(9, "f9", image), None, [row(10 + 2 * 9, 20)])
    ids.append(rows[0]["track_id"])
    assert ids == [None, 1, 1, 1, 1]  # the same person after a 5-frame gap keeps its id
    assert hook.lost_frames == 4
    assert not (tmp_path / "tracks.txt").exists()  # streamed to a temporary file until the run ends
    summary = Summary()
    hook.finish(summary)
    lines = (tmp_path / "tracks.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["2", "3", "4", "10"]  # source frame numbers from 1
    assert ("frames lost (unreadable / link gaps)", "4") in summary.extra_rows
    assert not [p for p in tmp_path.iterdir() if "sspnet-tmp" in p.name]


def test_a_run_without_tracks_leaves_an_empty_tracks_file(tmp_path):
    hook = TrackingHook(TrackerSettings(cmc="none"))
    hook.plan(OutputGuard(inputs=[]), tmp_path)
    hook.finish(Summary())
    assert (tmp_path / "tracks.txt").read_text() == ""


def test_drawing_uses_one_colour_per_id(tmp_path):
    hook = TrackingHook(TrackerSettings(cmc="none", min_hits=1))
    hook.plan(None, None)  # no --out: nothing written
    image = np.zeros((64, 96, 3), np.uint8)
    for k in range(3):
        frame = Frame(k, f"f{k}", image)
        hook.on_frame(frame, None, [row(10 + 2 * k, 20), row(60, 40 - k)])
    drawn = hook.draw(image, frame)
    colours = {tuple(drawn[20, 14 + 2]), tuple(drawn[40 - 2, 60])}  # left edges of the two boxes
    assert len(colours) == 2 and (0, 0, 0) not in colours
