"""Input files for the bad-input matrix (tests/cli/test_bad_input_matrix.py) and the checks it runs.

`build_inputs(folder)` writes, once per session, every file a matrix case names: a small synthetic
data set, one untrained checkpoint (as .safetensors and as an mmdetection-style .pth), the runtime
tests' hand-built marker ONNX, images, and broken variants of each (empty, random bytes, renamed,
invalid JSON). `tree_digest(folder)` is the sha256 of every file under a folder, so a test can
prove that a command changed, added or removed nothing there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from cli_markers import TILE, K, build_marker_model, marker_frame, write_rgb

PRESET = "fovea_r18_sspnet_small"
PYTHON = sys.executable


def build_inputs(folder: Path) -> dict[str, Path]:
    """Write the matrix's input files under `folder`; -> placeholder name -> path."""
    import torch

    from sspnet.checkpoint import save_checkpoint
    from sspnet.data.synth import write_dataset
    from sspnet.models import build_model

    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    data = folder / "data"
    write_dataset(data, 4, seed=5, val_fraction=0.5, size=(128, 128), progress=False)
    paths["data"] = data
    paths["val_json"] = data / "annotations" / "val.json"

    # The same data set with an unreadable train.json (train must name that file).
    broken_data = folder / "broken_data"
    shutil.copytree(data, broken_data)
    (broken_data / "annotations" / "train.json").write_text('{"images": [{"id": 1, ')
    paths["broken_data"] = broken_data
    # The same data set without its images folder (val can evaluate no image).
    imageless = folder / "data_without_images"
    shutil.copytree(data / "annotations", imageless / "annotations")
    paths["data_without_images"] = imageless

    # A valid COCO results file for the data set's val split: one detection per val image.
    val = json.loads(paths["val_json"].read_text())
    results = [
        {"image_id": image["id"], "category_id": 1, "bbox": [10.0, 10.0, 8.0, 16.0], "score": 0.9}
        for image in val["images"]
    ]
    paths["results"] = folder / "results.json"
    paths["results"].write_text(json.dumps(results))
    paths["bad_json"] = folder / "bad.json"
    paths["bad_json"].write_text('[{"image_id": 1, "bbox": [1, 2,')
    paths["foreign_results"] = folder / "foreign_results.json"  # detections on an image the set does not have
    paths["foreign_results"].write_text(json.dumps([{**results[0], "image_id": 999}]))
    bad_bbox = json.loads(paths["val_json"].read_text())
    bad_bbox["annotations"][0]["bbox"] = [1, 2]
    paths["bad_bbox_json"] = folder / "bad_bbox.json"
    paths["bad_bbox_json"].write_text(json.dumps(bad_bbox))
    paths["no_images_json"] = folder / "no_images.json"
    paths["no_images_json"].write_text(json.dumps({"annotations": [], "categories": [{"id": 1, "name": "person"}]}))

    # One untrained model, saved in our format and as an original (mmdetection-style) .pth.
    torch.manual_seed(0)
    model = build_model(PRESET)
    paths["ckpt"] = save_checkpoint(folder / "model.safetensors", model, preset=PRESET)
    paths["pth"] = folder / "model.pth"
    torch.save(
        {"meta": {"CLASSES": ("person",), "mmdet_version": "2.19.0"}, "state_dict": model.state_dict()}, paths["pth"]
    )
    del model
    paths["empty_ckpt"] = folder / "empty.safetensors"
    paths["empty_ckpt"].write_bytes(b"")
    paths["corrupt_ckpt"] = folder / "corrupt.safetensors"
    paths["corrupt_ckpt"].write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    paths["renamed_ckpt"] = folder / "renamed.safetensors"  # a torch .pth (pickle zip) renamed
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(2, 3, 1, 1)}}, paths["renamed_ckpt"])
    # A checkpoint from another sspnet version: its preset is one this version does not know.
    from sspnet.io.checkpoint_files import read_checkpoint, write_checkpoint

    state, info = read_checkpoint(paths["ckpt"])
    paths["future_ckpt"] = write_checkpoint(folder / "future.safetensors", state, {**info, "preset": "sspnet_v9_r50"})
    paths["random_pth"] = folder / "random.pth"
    paths["random_pth"].write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())

    # A replica of the TinyPerson download (release folder and file names, annotation fields).
    from tinyperson_replica import write_replica

    paths["tiny_set"] = write_replica(folder / "tiny_set")

    # The runtime tests' hand-built ONNX (sspnet metadata, the output contract), and a broken one.
    paths["onnx"] = Path(build_marker_model(folder / "marker.onnx", input_size=TILE, k=K))
    paths["corrupt_onnx"] = folder / "corrupt.onnx"
    paths["corrupt_onnx"].write_bytes(b"\x08\x07" + bytes(range(256)) * 8)

    # Images: a folder of two good frames, one stray good image, and broken ones.
    frames = folder / "frames"
    frames.mkdir()
    for k in range(2):
        write_rgb(frames / f"frame{k}.png", marker_frame(*TILE, [(20 + 30 * k, 40, 200, 0)]))
    paths["frames"] = frames
    paths["picture"] = write_rgb(folder / "picture.png", marker_frame(*TILE, [(50, 50, 200, 0)]))
    paths["broken_image"] = folder / "broken.jpg"
    paths["broken_image"].write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG" * 10)
    paths["empty_image"] = folder / "empty.png"
    paths["empty_image"].write_bytes(b"")
    paths["broken_video"] = folder / "broken.mp4"
    paths["broken_video"].write_bytes(np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8).tobytes())

    # Tracking: a 3-frame MOTChallenge sequence (val --tracks reads seqinfo.ini and gt/gt.txt, no frames),
    # the same without seqinfo.ini, one good tracks file and one broken variant per mistake.
    gt_rows = "1,1,10,10,4,8,1,1,1\n2,1,12,10,4,8,1,1,1\n3,1,14,10,4,8,1,1,1\n"
    for name, seqinfo in (("seq", True), ("seq_without_seqinfo", False)):
        (folder / name / "gt").mkdir(parents=True)
        (folder / name / "gt" / "gt.txt").write_text(gt_rows)
        if seqinfo:
            (folder / name / "seqinfo.ini").write_text(
                "[Sequence]\nname=seq\nimDir=img1\nframeRate=30\nseqLength=3\nimWidth=64\nimHeight=64\nimExt=.jpg\n"
            )
        paths[name] = folder / name
    tracks_files = {
        "tracks": "1,1,10,10,4,8,0.9,-1,-1,-1\n",
        "tracks_missing_columns": "1,1,10,10\n",
        "tracks_not_a_number": "1,1,ten,10,4,8,0.9\n",
        "tracks_negative_size": "1,1,10,10,-4,8,0.9\n",
        "tracks_repeated_id": "1,1,10,10,4,8,0.9\n1,1,30,30,4,8,0.8\n",
        "tracks_frame_out_of_range": "1,1,10,10,4,8,0.9\n4,1,10,10,4,8,0.9\n",
    }
    for name, text in tracks_files.items():
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text(text)
    return paths


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder` (folders alone count as entries too)."""
    digest = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            digest[os.path.relpath(os.path.join(root, name), folder) + "/"] = "folder"
        for name in files:
            path = os.path.join(root, name)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest[os.path.relpath(path, folder)] = h.hexdigest()
    return digest


def run_sspnet(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """`python -m sspnet ARGV` in a subprocess: one torch thread, no debug tracebacks, no GPU."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSPNET_DEBUG", "PYTHONWARNINGS")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [PYTHON, "-m", "sspnet", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def normalise(text: str) -> str:
    """Case- and spelling-insensitive form for name matching: lower case, '_' -> '-'."""
    return text.lower().replace("_", "-")


def names_missing(line: str, names: tuple[str, ...]) -> list[str]:
    """The names (file or field names) that do not occur as whole words in `line`."""
    text = normalise(line)
    return [name for name in names if not re.search(rf"(?<![a-z0-9]){re.escape(normalise(name))}(?![a-z0-9])", text)]


def error_line(stderr: str, verb: str) -> str | None:
    """The last stderr line that starts with `sspnet VERB:` (the dispatcher's and argparse's prefix)."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"sspnet {verb}:")]
    return lines[-1] if lines else None
