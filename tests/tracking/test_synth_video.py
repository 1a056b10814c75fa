"""`sspnet synth --video`: MOTChallenge layout, ground truth consistent with the frames and the camera."""

import cv2
import numpy as np
import pytest

from sspnet.cli import main
from sspnet.data.synth_video import SequenceGenerator, find_sequences, read_camera, write_sequences
from sspnet.tracking.mot import read_mot

SIZE = (480, 320)
FRAMES = 12


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_mot")
    write_sequences(out, 4, frames=FRAMES, size=SIZE, seed=3, progress=False)
    return out


def test_layout_and_seqinfo(sequences):
    infos = find_sequences(sequences)
    assert [i.name for i in infos] == ["synth000-hover", "synth001-pan", "synth002-rotate", "synth003-zoom"]
    for info in infos:
        assert (info.frames, info.width, info.height, info.fps, info.image_dir, info.image_ext) == (
            FRAMES,
            *SIZE,
            30.0,
            "img1",
            ".jpg",
        )
        frames = sorted((info.folder / "img1").glob("*.jpg"))
        assert [p.name for p in frames] == [f"{k:06d}.jpg" for k in range(1, FRAMES + 1)]
        assert cv2.imread(str(frames[0])).shape == (SIZE[1], SIZE[0], 3)
        camera = read_camera(info)  # the true camera per frame: a world -> frame affine with zoom ~1
        assert camera.shape == (FRAMES, 2, 3)
        assert np.allclose(np.abs(np.linalg.det(camera[:, :, :2])), 1.0, atol=0.9)


def test_ground_truth_is_consistent(sequences):
    for info in find_sequences(sequences):
        gt = read_mot(info.gt, "gt", num_frames=info.frames)  # strict reader: ids unique per frame, frames in range
        assert len(gt) > 0 and set(gt.frame.tolist()) == set(range(1, FRAMES + 1))
        x, y, w, h = gt.box.T
        assert (x >= 0).all() and (y >= 0).all() and (x + w <= SIZE[0] + 1e-6).all() and (y + h <= SIZE[1] + 1e-6).all()
        assert ((w >= 1) & (h >= 1)).all() and (np.sqrt(w * h) < 20 * 1.4).all()  # tiny people (zoom up to 1.35)
        ignore = gt.score == 0
        assert (gt.cls[ignore] == 8).all() and (gt.cls[~ignore] == 1).all()
        assert (gt.visibility[ignore] < 0.3).all() and (gt.visibility[~ignore] >= 0.3).all()


def per_id_steps(gt):
    """Displacement of each id's box centre between consecutive frames (frame px)."""
    steps = []
    for track_id in np.unique(gt.id):
        mask = gt.id == track_id
        order = np.argsort(gt.frame[mask])
        frames, boxes = gt.frame[mask][order], gt.box[mask][order]
        full = (boxes[:, 2] > 2) & (boxes[:, 3] > 2)
        centre = boxes[:, :2] + boxes[:, 2:] / 2
        consecutive = (np.diff(frames) == 1) & full[1:] & full[:-1]
        steps.append((centre[1:] - centre[:-1])[consecutive])
    return np.concatenate(steps)


def test_people_walk_at_most_3_px_per_frame_and_the_pan_moves_everyone(sequences):
    hover, pan = find_sequences(sequences)[:2]
    hover_steps = np.hypot(*per_id_steps(read_mot(hover.gt, "gt")).T)
    # walking 0-3 px/frame + whole-pixel sprite placement (<= 1 px) + hover jitter; clipping at the edge excluded
    assert np.percentile(hover_steps, 99) <= 4.5 and hover_steps.max() > 0.5
    pan_steps = np.hypot(*np.median(per_id_steps(read_mot(pan.gt, "gt")), axis=0))
    assert pan_steps >= 1.0  # the camera's own motion dominates: everybody drifts the same way


def test_same_seed_same_sequence(sequences, tmp_path):
    write_sequences(tmp_path, 1, frames=FRAMES, size=SIZE, seed=3, progress=False)
    assert (tmp_path / "synth000-hover/gt/gt.txt").read_bytes() == (sequences / "synth000-hover/gt/gt.txt").read_bytes()


def test_gt_boxes_sit_on_drawn_people():
    # render the same sequence with and without people: every considered gt box covers changed pixels
    def render(with_people):
        generator = SequenceGenerator(np.random.default_rng(5), "pan", 3, 320, 240)
        if not with_people:
            generator.people = []
        generator.noise[:] = 0
        return generator.frame(0)

    (image, gt), (empty, _) = render(True), render(False)
    difference = np.abs(image.astype(int) - empty.astype(int)).sum(axis=2)
    for _, x, y, w, h, visible in gt:
        if visible >= 0.9:
            assert difference[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))].max() > 20


def test_cli_refuses_a_folder_holding_a_real_sequence(tmp_path, capsys):
    real = tmp_path / "synth000-hover"
    real.mkdir()
    (real / "seqinfo.ini").write_text("[Sequence]\nname=MOT17-02\n")
    assert main(["synth", str(tmp_path), "--video", "1", "--frames", "2", "--quiet"]) == 2
    assert "synth did not write" in capsys.readouterr().err
    assert (real / "seqinfo.ini").read_text() == "[Sequence]\nname=MOT17-02\n"
