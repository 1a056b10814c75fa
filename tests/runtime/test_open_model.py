"""One way to open a model: sspnet.runtime.Detector / load_backend accept every file `sspnet predict --model`
accepts, with the CLI's error types, and one Detector serves several threads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import numpy as np
import pytest
from sspnet.runtime import Detector, load_backend
from sspnet.runtime.backend import MODEL_SUFFIXES, backend_for_path

from sspnet.errors import MissingDependencyError, UsageError

PRESET = "fovea_r18_sspnet_small"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from sspnet.checkpoint import save_checkpoint
    from sspnet.models import build_model

    torch.manual_seed(0)
    model = build_model(PRESET)
    with torch.no_grad():  # untrained scores sit below the score threshold: raise them so boxes come out
        model.bbox_head.conv_cls.bias.fill_(0.0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.safetensors", model, preset=PRESET)


def test_detector_opens_a_checkpoint_like_predict(checkpoint, tmp_path):
    """The library path (Detector(path)) and `sspnet predict --model path` give the same detections."""
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)  # RGB
    image = tmp_path / "images" / "frame.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), frame[..., ::-1])

    detector = Detector(checkpoint)  # the defaults predict uses: 512x640 tiles, cuda if present else cpu
    assert detector.backend.name == "torch" and detector.backend.input_size == (512, 640)
    found = detector.detect(frame)

    out = tmp_path / "pred"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sspnet",
            "predict",
            str(image),
            "--model",
            str(checkpoint),
            "--conf",
            "0",
            "--no-media",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    boxes = np.array([d["bbox"] for d in record["detections"]], np.float32).reshape(-1, 4)
    scores = np.array([d["score"] for d in record["detections"]], np.float32)
    expected = found.boxes.copy()
    expected[:, 2:] -= expected[:, :2]  # x1 y1 x2 y2 -> COCO x y w h
    assert len(found) == len(scores) > 0
    np.testing.assert_allclose(scores, found.scores, atol=1e-4)
    np.testing.assert_allclose(boxes, expected, atol=1e-2)


def test_every_suffix_has_one_backend():
    suffixes = [suffix for group in MODEL_SUFFIXES.values() for suffix in group]
    assert len(suffixes) == len(set(suffixes))
    for backend, group in MODEL_SUFFIXES.items():
        for suffix in group:
            assert backend_for_path(f"model{suffix.upper()}") == backend


@pytest.mark.parametrize(
    "name, options, pattern",
    [
        ("model.bin", {}, r"suffix '\.bin'"),
        ("model.onnx", {"backend": "torch"}, "backend 'torch' cannot run 'model.onnx'"),
        ("model.onnx", {"backend": "trt"}, "backend must be one of"),
        ("model.safetensors", {"providers": ["cpu"]}, r"torch backend .* no option 'providers' \(onnxruntime only\)"),
        ("model.safetensors", {"threads": -1}, "threads must be an integer >= 0"),
        ("model.engine", {"precision": "fp16"}, r"no option 'precision' \(torch only\)"),
    ],
)
def test_library_users_get_the_cli_errors(tmp_path, name, options, pattern):
    path = tmp_path / name
    path.write_bytes(b"x")
    backend = options.pop("backend", None)
    with pytest.raises(UsageError, match=pattern):
        load_backend(path, backend, **options)
    if not options and backend is None:
        with pytest.raises(UsageError, match=pattern):
            Detector(path)


def test_a_checkpoint_without_torch_is_one_clear_error(tmp_path):
    """On a device without torch a checkpoint is refused with MissingDependencyError, not an ImportError
    from deep inside (subprocess: torch blocked)."""
    path = tmp_path / "best.safetensors"
    path.write_bytes(b"x")
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from sspnet.errors import MissingDependencyError\n"
        "from sspnet.runtime import Detector\n"
        "try:\n"
        "    Detector(sys.argv[1])\n"
        "except MissingDependencyError as error:\n"
        "    print('MISSING', error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MISSING checkpoints (.safetensors, .pth, .pt) need torch"), result.stdout
    assert issubclass(MissingDependencyError, ImportError)


# ---- one Detector, several threads ---------------------------------------------------------------


def test_one_detector_serves_several_threads(marker_model):
    """Threads sharing a Detector get the detections a serial run gives, and each timings dict a thread
    reads describes one whole call (frames, inputs and batches agree)."""
    detector = Detector(load_backend(marker_model(input_size=(32, 32), k=16)), max_tiles_per_batch=2, tile_overlap=4)
    rng = np.random.default_rng(1)
    frames = []
    for k in range(12):
        frame = np.zeros((32 + 24 * (k % 4), 40 + 20 * (k % 3), 3), np.uint8)
        y, x = rng.integers(2, frame.shape[0] - 2), rng.integers(2, frame.shape[1] - 2)
        frame[y, x, 0], frame[y, x, 1] = 200, 1  # a red marker: one detection
        frames.append(frame)
    serial = [detector.detect(frame) for frame in frames]

    results, problems = {}, []

    def work(start):
        for repeat in range(6):
            for k in range(start, len(frames), 3):
                results[(k, repeat, start)] = detector.detect(frames[k])
                timings = dict(detector.timings)
                if timings["frames"] != 1 or timings["batches"] != math.ceil(timings["inputs"] / 2):
                    problems.append(timings)

    threads = [threading.Thread(target=work, args=(start,)) for start in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems[:3]
    assert len(results) == 6 * len(frames)
    for (k, _, _), found in results.items():
        np.testing.assert_array_equal(found.boxes, serial[k].boxes)
        np.testing.assert_array_equal(found.scores, serial[k].scores)
