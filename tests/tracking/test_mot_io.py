"""MOTChallenge file reading / writing (sspnet.tracking.mot): round trip and strict, one-line refusals."""

import numpy as np
import pytest

from sspnet.errors import InputError
from sspnet.tracking.mot import MotRows, SeqInfo, read_mot, read_seqinfo, write_mot, write_seqinfo


def test_tracks_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    rows = MotRows(
        frame=rng.integers(1, 20, n),
        id=np.arange(1, n + 1),
        box=np.round(rng.uniform(0, 500, (n, 4)), 2),
        score=np.round(rng.uniform(0, 1, n), 4),
        cls=np.ones(n, np.int64),
        visibility=np.ones(n),
    )
    path = write_mot(tmp_path / "tracks.txt", rows)
    back = read_mot(path, "tracks")
    order = np.lexsort((rows.id, rows.frame))
    np.testing.assert_array_equal(back.frame, rows.frame[order])
    np.testing.assert_array_equal(back.id, rows.id[order])
    np.testing.assert_allclose(back.box, rows.box[order], atol=5e-3)
    np.testing.assert_allclose(back.score, rows.score[order], atol=5e-5)
    line = path.read_text().splitlines()[0].split(",")
    assert len(line) == 10 and line[7:] == ["-1", "-1", "-1"]  # frame,id,x,y,w,h,score,-1,-1,-1


def test_gt_round_trip_keeps_flags(tmp_path):
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8.5], [2, 2, 3, 4]])
    rows = MotRows(
        frame=np.array([1, 1, 2]),
        id=np.array([1, 2, 1]),
        box=boxes,
        score=np.array([1.0, 0.0, 1.0]),
        cls=np.array([1, 8, 1]),
        visibility=np.array([1.0, 0.2, 0.75]),
    )
    back = read_mot(write_mot(tmp_path / "gt.txt", rows, kind="gt"), "gt", num_frames=2)
    np.testing.assert_array_equal(back.score, rows.score)
    np.testing.assert_array_equal(back.cls, rows.cls)
    np.testing.assert_allclose(back.visibility, rows.visibility)


def test_short_rows_get_the_defaults_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1, 3, 10, 20, 4, 8\n\n2,3,11,20,4,8,1\n")
    rows = read_mot(path, "gt")
    assert rows.frame.tolist() == [1, 2] and rows.cls.tolist() == [1, 1] and rows.visibility.tolist() == [1.0, 1.0]


def test_an_empty_tracks_file_is_valid(tmp_path):
    (tmp_path / "t.txt").write_text("")
    assert len(read_mot(tmp_path / "t.txt", "tracks")) == 0


BAD = [
    ("1,1,2,3\n", "missing columns", "line 1"),
    ("1,1,2,3,x,4\n", "not a number", "line 1: w"),
    ("1.5,1,2,3,4,4\n", "not an integer", "line 1: frame"),
    ("1,1,2,3,4,nan\n", "not a finite number", "line 1: h"),
    ("1,1,2,3,-4,4\n", "negative box size", "line 1: w"),
    ("1,1,2,3,4,4\n1,2,2,3,4,4\n1,1,5,5,4,4\n", "id repeated within one frame", "line 3: id"),
    ("0,1,2,3,4,4\n", "frame out of range", "line 1: frame"),
    ("1,1,2,3,4,4\n11,1,2,3,4,4\n", "frame out of range", "line 2: frame"),
    ("1,-1,2,3,4,4\n", "bad id", "line 1: id"),
    ("1,1,2,3,4,4,1,1,1.5\n", "bad visibility", "line 1: visibility"),
    ("1,1,2,3,4,4,2\n", "bad consider flag", "line 1: consider"),
]


@pytest.mark.parametrize("text,message,field", BAD)
def test_bad_rows_are_refused_naming_file_line_and_field(tmp_path, text, message, field):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_mot(path, "gt", num_frames=10)
    line = str(caught.value)
    assert message in line and f"{path}: {field}" in line and "\n" not in line


def test_seqinfo_round_trip_and_refusals(tmp_path):
    info = SeqInfo(folder=tmp_path, name="seq", frames=12, width=1280, height=720, fps=25.0)
    write_seqinfo(tmp_path, info, extra={"camera": "pan"})
    back = read_seqinfo(tmp_path)
    assert (back.name, back.frames, back.width, back.height, back.fps) == ("seq", 12, 1280, 720, 25.0)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\nseqLength=ten\nimWidth=5\nimHeight=5\nframeRate=30\n")
    with pytest.raises(InputError, match="seqLength: expected int, got ten"):
        read_seqinfo(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\nimWidth=5\nimHeight=5\nframeRate=30\n")
    with pytest.raises(InputError, match="missing key .*seqLength"):
        read_seqinfo(tmp_path)
    (tmp_path / "seqinfo.ini").unlink()
    with pytest.raises(InputError, match="no seqinfo.ini"):
        read_seqinfo(tmp_path)
