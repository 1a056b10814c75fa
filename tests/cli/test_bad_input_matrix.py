"""The bad-input matrix: user mistakes across every verb, each run as a subprocess
`python -m sspnet VERB ...`, must

- exit 2 (a user mistake, not a bug),
- print no Python traceback,
- say what is wrong in one line `sspnet VERB: ...` that names the offending file(s) or field(s)
  (an output that would overwrite an input names both), and
- leave every input file byte-for-byte as it was (sha256), with nothing added to or removed from
  the input folders.

The input files are built once per session (bad_inputs.build_inputs: a 4-image data set, one
untrained checkpoint, the hand-built marker ONNX, broken variants); each case writes its outputs to
its own temporary folder. A case that changed the inputs restores them for the cases after it.

Case syntax: "VERB ARGS..." where {name} is an input from build_inputs, {out} the case's own empty
output folder and {folder} an existing empty folder (for "the output is a folder" cases).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from bad_inputs import build_inputs, error_line, names_missing, run_sspnet, tree_digest

CASE_TIMEOUT_S = 90  # a case that gets this far has missed an up-front check

# (case id, command line, names the error line must contain; {placeholders} as in the command line)
CASES = [
    # ---- info
    ("info-unknown-preset", "info --model no_such_preset", ("no_such_preset",)),
    # ---- synth
    ("synth-out-is-an-existing-file", "synth {picture} --images 4 --size 64 64", ("picture.png",)),
    ("synth-images-1", "synth {out}/synth --images 1 --size 64 64", ("images",)),
    ("synth-size-0", "synth {out}/synth --images 4 --size 0 0", ("size",)),
    ("synth-val-fraction-1.5", "synth {out}/synth --images 4 --size 64 64 --val-fraction 1.5", ("val-fraction",)),
    # ---- train (every case would otherwise train for one iteration only)
    (
        "train-missing-data",
        "train --preset fovea_r18_sspnet_small --data {out}/nodata --out {out}/run "
        "--max-iters 1 --device cpu --workers 0",
        ("nodata",),
    ),
    (
        "train-unknown-preset",
        "train --preset no_such_preset --data {data} --out {out}/run --max-iters 1 --device cpu --workers 0",
        ("no_such_preset",),
    ),
    (
        "train-max-iters-0",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/run --max-iters 0 --device cpu --workers 0",
        ("max-iters",),
    ),
    (
        "train-batch-size-0",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/run --max-iters 1 "
        "--batch-size 0 --device cpu --workers 0",
        ("batch-size",),
    ),
    (
        "train-lr-negative",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/run --max-iters 1 "
        "--lr -0.1 --device cpu --workers 0",
        ("lr",),
    ),
    (
        "train-out-is-an-existing-file",
        "train --preset fovea_r18_sspnet_small --data {data} --out {picture} --max-iters 1 --device cpu --workers 0",
        ("picture.png",),
    ),
    (
        "train-out-inside-the-data-folder",
        "train --preset fovea_r18_sspnet_small --data {data} --out {data}/run --max-iters 1 --device cpu --workers 0",
        ("run", "data"),
    ),
    (
        "train-annotations-bad-json",
        "train --preset fovea_r18_sspnet_small --data {broken_data} --out {out}/run "
        "--max-iters 1 --device cpu --workers 0",
        ("train.json",),
    ),
    (
        "train-set-unknown-key",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/run --max-iters 1 "
        "--device cpu --workers 0 --set no_such_key=1",
        ("no_such_key",),
    ),
    (
        "train-resume-without-a-run",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/fresh_run "
        "--resume --max-iters 1 --device cpu --workers 0",
        ("fresh_run",),
    ),
    (
        "train-pretrained-file-missing",
        "train --preset fovea_r18_sspnet_small --data {data} --out {out}/run "
        "--max-iters 1 --device cpu --workers 0 --pretrained {out}/resnet18.pth",
        ("resnet18.pth", "pretrained"),
    ),
    # ---- data
    ("data-tinyperson-root-missing", "data tinyperson {out}/nowhere --out {out}/prepared", ("nowhere",)),
    ("data-tinyperson-not-the-download", "data tinyperson {data} --out {out}/prepared", ("tiny_set_train.json",)),
    (
        "data-tinyperson-out-inside-the-download",
        "data tinyperson {tiny_set} --out {tiny_set}/prepared",
        ("prepared", "tiny_set"),
    ),
    # ---- val
    (
        "val-save-results-is-the-annotations",
        "val --checkpoint {ckpt} --data {data} --device cpu --save-results {val_json}",
        ("val.json",),
    ),
    ("val-json-is-the-annotations", "val --results {results} --data {data} --json {val_json}", ("val.json",)),
    ("val-json-is-the-results", "val --results {results} --data {data} --json {results}", ("results.json",)),
    ("val-json-is-a-folder", "val --results {results} --data {data} --json {folder}", ("existing_folder",)),
    ("val-missing-annotations", "val --results {results} --annotations {out}/missing.json", ("missing.json",)),
    ("val-annotations-bad-json", "val --results {results} --annotations {bad_json}", ("bad.json",)),
    (
        "val-annotations-without-images",
        "val --results {results} --annotations {no_images_json}",
        ("no_images.json", "images"),
    ),
    ("val-results-bad-json", "val --results {bad_json} --data {data}", ("bad.json",)),
    (
        "val-checkpoint-of-an-unknown-preset",
        "val --checkpoint {future_ckpt} --data {data} --device cpu",
        ("future.safetensors", "preset", "sspnet_v9_r50"),
    ),
    ("val-results-is-a-folder", "val --results {frames} --data {data}", ("frames",)),
    (
        "val-annotations-bbox-of-2-numbers",
        "val --results {results} --annotations {bad_bbox_json}",
        ("bad_bbox.json", "bbox"),
    ),
    ("val-results-for-an-unknown-image", "val --results {foreign_results} --data {data}", ("foreign_results.json",)),
    (
        "val-no-image-can-be-evaluated",
        "val --checkpoint {ckpt} --data {data_without_images} --device cpu",
        ("data_without_images",),
    ),
    ("val-missing-split", "val --results {results} --data {data} --split no_such_split", ("no_such_split",)),
    ("val-corrupt-checkpoint", "val --checkpoint {corrupt_ckpt} --data {data} --device cpu", ("corrupt.safetensors",)),
    ("val-batch-0", "val --checkpoint {ckpt} --data {data} --device cpu --batch 0", ("batch",)),
    # ---- convert
    ("convert-in-in", "convert {pth} {pth} --preset fovea_r18_sspnet_small", ("model.pth",)),
    ("convert-missing-source", "convert {out}/missing.pth {out}/m.safetensors", ("missing.pth",)),
    ("convert-random-bytes", "convert {random_pth} {out}/m.safetensors", ("random.pth",)),
    ("convert-out-is-a-folder", "convert {pth} {folder} --preset fovea_r18_sspnet_small", ("existing_folder",)),
    ("convert-out-is-an-onnx", "convert {pth} {onnx} --preset fovea_r18_sspnet_small", ("marker.onnx",)),
    # ---- export
    ("export-out-is-the-checkpoint", "export {ckpt} --imgsz 128 128 --out {ckpt}", ("model.safetensors",)),
    ("export-out-is-an-image", "export {ckpt} --imgsz 128 128 --out {picture}", ("picture.png",)),
    ("export-out-is-a-folder", "export {ckpt} --imgsz 128 128 --out {folder}", ("existing_folder",)),
    ("export-imgsz-100", "export {ckpt} --imgsz 100 100 --out {out}/m.onnx", ("imgsz",)),
    ("export-batch-0", "export {ckpt} --imgsz 128 128 --batch 0 --out {out}/m.onnx", ("batch",)),
    ("export-opset-12", "export {ckpt} --imgsz 128 128 --opset 12 --out {out}/m.onnx", ("opset",)),
    ("export-missing-checkpoint", "export {out}/missing.safetensors --out {out}/m.onnx", ("missing.safetensors",)),
    ("export-empty-checkpoint", "export {empty_ckpt} --out {out}/m.onnx", ("empty.safetensors",)),
    ("export-corrupt-checkpoint", "export {corrupt_ckpt} --out {out}/m.onnx", ("corrupt.safetensors",)),
    ("export-renamed-checkpoint", "export {renamed_ckpt} --out {out}/m.onnx", ("renamed.safetensors",)),
    # ---- build-engine (TensorRT is absent on most test machines: the input checks come first)
    ("build-engine-missing-onnx", "build-engine {out}/missing.onnx --out {out}/m.engine", ("missing.onnx",)),
    ("build-engine-corrupt-onnx", "build-engine {corrupt_onnx} --out {out}/m.engine", ("corrupt.onnx",)),
    ("build-engine-out-is-the-onnx", "build-engine {onnx} --out {onnx}", ("marker.onnx",)),
    ("build-engine-engine-alias-is-the-onnx", "build-engine {onnx} --engine {onnx}", ("marker.onnx",)),
    ("build-engine-out-is-a-folder", "build-engine {onnx} --out {folder}", ("existing_folder",)),
    ("build-engine-batch-0", "build-engine {onnx} --out {out}/m.engine --batch 0", ("batch",)),
    # ---- predict
    ("predict-out-is-the-source-folder", "predict {frames} --model {onnx} --out {frames} --quiet", ("frames",)),
    (
        "predict-out-inside-the-source-folder",
        "predict {frames} --model {onnx} --out {frames}/annotated --quiet",
        ("frames", "annotated"),
    ),
    ("predict-out-is-an-existing-file", "predict {frames} --model {onnx} --out {picture} --quiet", ("picture.png",)),
    ("predict-missing-source", "predict {out}/missing.jpg --model {onnx} --out {out}/p --quiet", ("missing.jpg",)),
    ("predict-broken-image", "predict {broken_image} --model {onnx} --out {out}/p --quiet", ("broken.jpg",)),
    ("predict-broken-video", "predict {broken_video} --model {onnx} --out {out}/p --quiet", ("broken.mp4",)),
    ("predict-glob-matches-nothing", "predict {out}/*.jpg --model {onnx} --out {out}/p --quiet", ("*.jpg",)),
    ("predict-empty-image", "predict {empty_image} --model {onnx} --out {out}/p --quiet", ("empty.png",)),
    ("predict-missing-model", "predict {frames} --model {out}/missing.onnx --out {out}/p --quiet", ("missing.onnx",)),
    ("predict-corrupt-onnx", "predict {frames} --model {corrupt_onnx} --out {out}/p --quiet", ("corrupt.onnx",)),
    ("predict-empty-checkpoint", "predict {frames} --model {empty_ckpt} --out {out}/p --quiet", ("empty.safetensors",)),
    ("predict-model-is-a-folder", "predict {picture} --model {frames} --out {out}/p --quiet", ("frames",)),
    ("predict-conf-2", "predict {frames} --model {onnx} --out {out}/p --conf 2 --quiet", ("conf",)),
    ("predict-conf-nan", "predict {frames} --model {onnx} --out {out}/p --conf nan --quiet", ("conf",)),
    (
        "predict-max-tiles-per-batch-0",
        "predict {frames} --model {onnx} --out {out}/p --max-tiles-per-batch 0 --quiet",
        ("max-tiles-per-batch",),
    ),
    (
        "predict-imgsz-100-torch",
        "predict {frames} --model {ckpt} --imgsz 100 100 --device cpu --out {out}/p --quiet",
        ("imgsz",),
    ),
    ("predict-vid-stride-0", "predict {frames} --model {onnx} --out {out}/p --vid-stride 0 --quiet", ("vid-stride",)),
    (
        "predict-vid-stride-on-still-images",
        "predict {frames} --model {onnx} --out {out}/p --vid-stride 2 --quiet",
        ("vid-stride", "frames"),
    ),
    (
        "predict-reconnect-timeout-negative",
        "predict {frames} --model {onnx} --out {out}/p --reconnect-timeout -1 --quiet",
        ("reconnect-timeout",),
    ),
    (
        "predict-read-timeout-0",
        "predict {frames} --model {onnx} --out {out}/p --read-timeout 0 --quiet",
        ("read-timeout",),
    ),
    # without GStreamer in OpenCV: refused as such; with it: refused for not ending in appsink
    (
        "predict-gstreamer-pipeline",
        "predict videotestsrc!fakesink --model {onnx} --out {out}/p --quiet",
        ("GStreamer",),
    ),
    # ---- track (predict's source / model / output checks apply too: the cases above)
    ("track-out-is-the-source-folder", "track {frames} --model {onnx} --out {frames} --quiet", ("frames",)),
    ("track-unknown-tracker", "track {frames} --model {onnx} --out {out}/t --tracker deepsort --quiet", ("tracker",)),
    (
        "track-buffer-ratio-negative",
        "track {frames} --model {onnx} --out {out}/t --buffer-ratio -1 --quiet",
        ("buffer-ratio",),
    ),
    ("track-track-high-2", "track {frames} --model {onnx} --out {out}/t --track-high 2 --quiet", ("track-high",)),
    ("track-min-hits-0", "track {frames} --model {onnx} --out {out}/t --min-hits 0 --quiet", ("min-hits",)),
    (
        "track-cmc-downscale-0",
        "track {frames} --model {onnx} --out {out}/t --cmc-downscale 0 --quiet",
        ("cmc-downscale",),
    ),
    (
        "track-ocsort-with-cmc",
        "track {frames} --model {onnx} --out {out}/t --tracker ocsort --association iou --cmc orb --quiet",
        ("cmc",),
    ),
    ("track-attention", "track {frames} --model {onnx} --out {out}/t --attention --quiet", ("attention",)),
    ("track-missing-model", "track {frames} --model {out}/missing.onnx --out {out}/t --quiet", ("missing.onnx",)),
    # ---- val --tracks
    (
        "val-tracks-missing-columns",
        "val --tracks {tracks_missing_columns} --gt {seq}",
        ("tracks_missing_columns.txt", "line 1"),
    ),
    ("val-tracks-not-a-number", "val --tracks {tracks_not_a_number} --gt {seq}", ("tracks_not_a_number.txt", "x")),
    ("val-tracks-negative-size", "val --tracks {tracks_negative_size} --gt {seq}", ("tracks_negative_size.txt", "w")),
    (
        "val-tracks-id-repeated-in-a-frame",
        "val --tracks {tracks_repeated_id} --gt {seq}",
        ("tracks_repeated_id.txt", "line 2", "id"),
    ),
    (
        "val-tracks-frame-out-of-range",
        "val --tracks {tracks_frame_out_of_range} --gt {seq}",
        ("tracks_frame_out_of_range.txt", "line 2", "frame"),
    ),
    (
        "val-tracks-gt-without-seqinfo",
        "val --tracks {tracks} --gt {seq_without_seqinfo}",
        ("seq_without_seqinfo", "seqinfo.ini"),
    ),
    (
        "val-tracks-gt-is-a-tracks-file-with-bad-rows",
        "val --tracks {tracks} --gt {tracks_not_a_number}",
        ("tracks_not_a_number.txt",),
    ),
    ("val-tracks-without-gt", "val --tracks {tracks}", ("gt",)),
    ("val-tracks-json-is-the-tracks", "val --tracks {tracks} --gt {seq} --json {tracks}", ("tracks.txt",)),
    # ---- synth --video
    ("synth-video-0", "synth {out}/mot --video 0", ("video",)),
    ("synth-video-frames-1", "synth {out}/mot --video 1 --frames 1", ("frames",)),
    ("synth-video-size-100", "synth {out}/mot --video 1 --frames 2 --size 100 100", ("size",)),
    # ---- benchmark
    ("benchmark-missing-model", "benchmark --model {out}/missing.onnx --iters 1 --warmup 0 --quiet", ("missing.onnx",)),
    ("benchmark-batch-0", "benchmark --model {onnx} --batch 0 --iters 1 --warmup 0 --quiet", ("batch",)),
    ("benchmark-iters-0", "benchmark --model {onnx} --iters 0 --warmup 0 --quiet", ("iters",)),
    (
        "benchmark-json-is-the-model",
        "benchmark --model {onnx} --iters 1 --warmup 0 --json {onnx} --quiet",
        ("marker.onnx",),
    ),
    (
        "benchmark-plot-is-an-input-image",
        "benchmark --model {onnx} --iters 1 --warmup 0 --data {data} --plot {first_image} --quiet",
        ("{first_image_name}",),
    ),
    (
        "benchmark-json-is-a-folder",
        "benchmark --model {onnx} --iters 1 --warmup 0 --json {folder} --quiet",
        ("existing_folder",),
    ),
    (
        "benchmark-missing-data",
        "benchmark --model {onnx} --iters 1 --warmup 0 --data {out}/nodata --quiet",
        ("nodata",),
    ),
    # ---- doctor
    ("doctor-missing-onnx", "doctor --onnx {out}/missing.onnx", ("missing.onnx",)),
    ("doctor-images-0", "doctor --images 0", ("images",)),
    ("doctor-imgsz-100", "doctor --imgsz 100 100", ("imgsz",)),
    ("doctor-workdir-is-a-file", "doctor --workdir {picture}", ("picture.png",)),
    # ---- demo
    ("demo-out-is-an-existing-file", "demo --out {picture} --quick", ("picture.png",)),
    ("demo-images-1", "demo --out {out}/demo --quick --images 1", ("images",)),
    ("demo-bench-iters-0", "demo --out {out}/demo --quick --bench-iters 0", ("bench-iters",)),
    ("demo-train-iters-0", "demo --out {out}/demo --quick --train-iters 0", ("train-iters",)),
]


@pytest.fixture(scope="session")
def matrix_inputs(tmp_path_factory):
    """(inputs folder, placeholder -> path, pristine copy of the folder, its digest)."""
    folder = tmp_path_factory.mktemp("bad_input_matrix") / "inputs"
    paths = build_inputs(folder)
    paths["first_image"] = sorted((paths["data"] / "images").iterdir())[0]
    paths["first_image_name"] = paths["first_image"].name
    pristine = folder.parent / "pristine"
    shutil.copytree(folder, pristine)
    return folder, paths, pristine, tree_digest(folder)


def placeholders(paths: dict, out, folder) -> dict[str, str]:
    return {**{k: str(v) for k, v in paths.items()}, "out": str(out), "folder": str(folder)}


@pytest.mark.timeout(CASE_TIMEOUT_S + 60)
@pytest.mark.parametrize("case, names", [pytest.param(line, names, id=case_id) for case_id, line, names in CASES])
def test_user_mistake_is_one_named_line_exit_2_and_destroys_nothing(matrix_inputs, tmp_path, case, names):
    inputs, paths, pristine, digest = matrix_inputs
    out = tmp_path / "out"
    out.mkdir()
    folder = tmp_path / "existing_folder"
    folder.mkdir()
    values = placeholders(paths, out, folder)
    argv = [token.format(**values) for token in case.split()]
    names = tuple(name.format(**values) for name in names)
    verb = argv[0]
    try:
        result = run_sspnet(argv, cwd=out, timeout=CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        result = None
    changed = sorted(set(digest.items()) ^ set(tree_digest(inputs).items()))
    if changed:  # put the inputs back for the cases after this one, then fail
        shutil.rmtree(inputs)
        shutil.copytree(pristine, inputs)
    assert result is not None, f"still running after {CASE_TIMEOUT_S} s: the mistake was not caught up front"
    report = f"exit {result.returncode}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr + result.stdout, report
    assert result.returncode == 2, report
    line = error_line(result.stderr, verb)
    assert line is not None, f"no line starting 'sspnet {verb}:'\n{report}"
    missing = names_missing(line, names)
    assert not missing, f"the error line does not name {missing}: {line!r}"
    print(f"exit {result.returncode}: {line}")  # shown with pytest -rP
    assert not changed, f"inputs changed, added or removed: {sorted({path for path, _ in changed})}"
    assert not (folder.exists() and any(folder.iterdir())), "something was written into the existing folder"
