"""The layer rules of pyproject.toml's [tool.importlinter] hold, and the checker catches a planted break.

`lint-imports` reads the package from the file system. In this repository runtime/ and export/ are
top-level folders that install as sspnet.runtime / sspnet.export, so each test first lays the sources
out as they are installed (a copy of the .py files in a temporary folder) and runs lint-imports there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def installed_layout(destination: Path) -> Path:
    """Copy sspnet/, export/ and runtime/ (Python files and package data) into destination/sspnet/... as
    installed, plus pyproject.toml (the contracts). Returns destination."""
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "lib")
    shutil.copytree(ROOT / "sspnet", destination / "sspnet", ignore=ignore)
    for folder in ("export", "runtime"):
        shutil.copytree(ROOT / folder, destination / "sspnet" / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def lint_imports(layout: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extras (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(layout)}  # the copy, ahead of the editable install
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=layout, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installed_layout(tmp_path_factory.mktemp("installed"))


def test_the_tree_keeps_the_layer_rules(layout):
    result = lint_imports(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_library_package_is_bound_by_the_cli_rule():
    """A new sub-package cannot slip past the rule: every module under sspnet/ except the CLI itself
    (and the `python -m sspnet` entry point) is a source of the `sspnet.cli` contract."""
    names = {path.stem for path in (ROOT / "sspnet").glob("*.py")} | {
        path.name for path in (ROOT / "sspnet").iterdir() if (path / "__init__.py").is_file()
    }
    names = {f"sspnet.{name}" for name in names - {"__init__", "__main__", "cli"}} | {"sspnet.export", "sspnet.runtime"}
    (cli_rule,) = [c for c in contracts() if c["forbidden_modules"] == ["sspnet.cli"]]
    assert set(cli_rule["source_modules"]) == names
    (above_runtime,) = [c for c in contracts() if "sspnet.models" in c["forbidden_modules"]]
    assert set(above_runtime["forbidden_modules"]) == (names | {"sspnet.cli"}) - {
        "sspnet.errors",
        "sspnet.io",
        "sspnet.runtime",
    }


@pytest.mark.parametrize(
    "module, planted, broken",
    [
        ("runtime/preprocess.py", "import torch", "sspnet.runtime runs without torch"),
        # a lazy import counts: the aircraft would still need torch the first time the function runs
        ("runtime/tiling.py", "def _f():\n    from torchvision.ops import nms", "sspnet.runtime runs without torch"),
        ("runtime/detector.py", "from sspnet.models import presets", "sspnet.runtime imports nothing above it"),
        ("evaluation/tinyperson.py", "from sspnet.cli import main", "nothing imports the command line"),
        ("export/parity.py", "import sspnet.cli.info", "nothing imports the command line"),
    ],
)
def test_a_planted_forbidden_import_is_caught(tmp_path, module, planted, broken):
    layout = installed_layout(tmp_path)
    target = layout / "sspnet" / module
    target.write_text(target.read_text() + "\n\n" + planted + "\n")
    result = lint_imports(layout)
    assert result.returncode != 0, result.stdout
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(broken)]
    assert verdicts and verdicts[0].endswith("BROKEN"), result.stdout
