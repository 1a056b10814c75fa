"""The runtime runs on a device without torch: a subprocess where importing torch fails loads an ONNX
model, runs the Detector on a tiled frame and checks the detections; torch is never imported."""

import subprocess
import sys
import textwrap

from runtime_models import MARKER_RADIUS, build_marker_model

SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        # A meta path finder that makes every torch import fail, as on a device without torch.
        blocked = ("torch", "torchvision")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker failed: torch imported")

    import sspnet.runtime
    heavy = sorted(name for name in ("numpy", "onnxruntime") if name in sys.modules)
    assert not heavy, f"import sspnet.runtime alone imported {heavy}"

    import numpy as np
    from sspnet.runtime import Detector, load_backend

    model_path, radius = sys.argv[1], int(sys.argv[2])
    backend = load_backend(model_path)
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[150, 120, 0], frame[150, 120, 1] = 200, 1  # red "markers": one detection each
    frame[20, 390, 0] = 100
    found = Detector(backend, tile_overlap=32).detect(frame)  # 300x400 frame -> 96x128 tiles
    r = radius
    expected = [[120 - r, 150 - r, 121 + r, 151 + r], [390 - r, 20 - r, 391 + r, 21 + r]]
    assert found.boxes.tolist() == expected, found
    assert found.labels.tolist() == [1, 0], found

    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "torchvision"))
    assert not loaded, f"torch modules were imported: {loaded}"
    # the runtime may use the torch-free error hierarchy (sspnet.errors) and nothing else of sspnet
    torch_side = sorted(
        name for name in sys.modules
        if name.startswith("sspnet.") and not name.startswith("sspnet.runtime") and name != "sspnet.errors"
    )
    assert not torch_side, f"sspnet modules outside sspnet.runtime were imported: {torch_side}"
    print("NO_TORCH_OK", len(found))
    """
)


def test_runtime_runs_where_torch_cannot_be_imported(tmp_path):
    model = build_marker_model(tmp_path / "marker.onnx", input_size=(96, 128), k=16)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, model, str(MARKER_RADIUS)],
        cwd=tmp_path,  # not the repo root: `runtime` must come from the installed sspnet.runtime
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NO_TORCH_OK 2" in result.stdout


ACCURACY_SCRIPT = SCRIPT.split("import sspnet.runtime")[0] + textwrap.dedent(
    """
    # `sspnet benchmark --data` on a device without torch: read annotations and images, run the
    # backend through the Detector, score with the TinyPerson protocol.
    from sspnet.benchmark.harness import evaluate_backend
    from sspnet.runtime import load_backend

    metrics = evaluate_backend(load_backend(sys.argv[1]), sys.argv[2], "val")
    assert 0.0 <= metrics["AP50_all"] <= 100.0, metrics
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "torchvision"))
    assert not loaded, f"torch modules were imported: {loaded}"
    print("ACCURACY_NO_TORCH_OK")
    """
)


def test_accuracy_on_a_dataset_needs_no_torch(tmp_path):
    from sspnet.data.synth import write_dataset

    model = build_marker_model(tmp_path / "marker.onnx", input_size=(96, 128), k=16)
    write_dataset(tmp_path / "data", 4, seed=0, val_fraction=0.5, size=(160, 128), progress=False)
    result = subprocess.run(
        [sys.executable, "-c", ACCURACY_SCRIPT, model, str(tmp_path / "data")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ACCURACY_NO_TORCH_OK" in result.stdout
