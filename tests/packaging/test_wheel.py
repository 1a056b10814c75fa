"""A non-editable wheel installs and runs on its own: built from a copy of the sources (pure Python,
SSPNET_BUILD_EXTENSION=0: the compiled parts are not what this checks), installed into a fresh virtual
environment, it holds every package-data file of the tree, `sspnet info --presets` lists every preset, and
a runtime-only `predict` (torch blocked) runs an ONNX model. Nothing is downloaded: the fresh environment
borrows this environment's packages through a .pth line (which does not pull in the editable install)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
from runtime_models import build_marker_model  # noqa: E402

pytestmark = pytest.mark.timeout(240)

BLOCK_TORCH_AND_RUN_CLI = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for this test)", name=name)
sys.meta_path.insert(0, BlockTorch())
from sspnet.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.split(".")[0] == "torch"], "torch was imported"
sys.exit(code)
"""


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=180, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tracked_package_files() -> dict[str, Path]:
    """Installed name (sspnet/...) -> source file, for every tracked file of the three package folders."""
    listed = run(["git", "ls-files", "sspnet", "runtime", "export"], cwd=ROOT).stdout.split()
    names = {}
    for name in listed:
        installed = name if name.startswith("sspnet/") else f"sspnet/{name}"
        names[installed] = ROOT / name
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of what setup.py reads (no build/ or egg-info in the shared tree)."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "lib")
    for folder in ("sspnet", "runtime", "export"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "SSPNET_BUILD_EXTENSION": "0"}
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", out, source],
        env=env,
    )
    assert "would be ignored" not in built.stdout + built.stderr, "setuptools warns about a package it ignores"
    (path,) = out.glob("sspnet-*.whl")
    return path


def test_the_wheel_holds_every_package_file(wheel):
    inside = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(name for name in tracked_package_files() if name not in inside)
    assert not missing, f"files of the tree missing from the wheel: {missing}"
    assert (
        "sspnet/runtime/plugin_fields.json" in inside and "sspnet/models/presets/faster_rcnn_r50_sspnet.yaml" in inside
    )


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (no dependencies fetched); -> its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel])
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # numpy, onnxruntime, yaml, ... from this environment; a plain path line does not run its .pth files, so the
    # editable install of the working tree stays out
    Path(site, "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = run(
        [python, "-c", "import sspnet, sspnet.runtime; print(sspnet.__file__, sspnet.runtime.__file__)"], cwd=venv
    )  # not the repository: `python -c` puts the working folder first on sys.path
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout
    return venv / "bin"


def test_info_presets_from_the_wheel(installed):
    listed = run([installed / "sspnet", "info", "--presets"], cwd=installed).stdout
    for preset in sorted((ROOT / "sspnet" / "models" / "presets").glob("*.yaml")):
        assert preset.stem in listed


def test_runtime_only_predict_from_the_wheel(installed, tmp_path):
    import cv2
    import numpy as np

    model = build_marker_model(tmp_path / "marker.onnx", input_size=(96, 128), k=16)
    frame = np.zeros((96, 128, 3), np.uint8)
    frame[40, 50, 2], frame[40, 50, 1] = 200, 1  # a red marker (BGR on disk): one detection
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "frame.png"), frame)
    result = run(
        [
            installed / "python",
            "-c",
            BLOCK_TORCH_AND_RUN_CLI,
            "predict",
            images,
            "--model",
            model,
            "--out",
            tmp_path / "out",
            "--quiet",
            "--no-media",
        ],
        cwd=tmp_path,
    )
    assert "onnxruntime backend" in result.stdout
    records = (tmp_path / "out" / "detections.jsonl").read_text().splitlines()
    assert len(records) == 1 and '"bbox"' in records[0]
