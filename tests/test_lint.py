"""ruff (pyproject.toml [tool.ruff]: line length 120; pycodestyle, pyflakes, import order, bugbear, pyupgrade)
finds nothing in the tree, and `ruff format --check` has nothing to reformat. The checker's own test plants a
finding of each kind in a temporary file and sees ruff report it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def ruff(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    if not RUFF.is_file():
        pytest.fail(f"{RUFF} is missing: install the test extras (pip install -e '.[test]')")
    return subprocess.run([str(RUFF), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_check_finds_nothing():
    result = ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_format_has_nothing_to_change():
    result = ruff("format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    "source, code",
    [
        ("import os\n", "F401"),  # unused import
        ("import sys\nimport os\n\nprint(os, sys)\n", "I001"),  # import order
        ("def f(x=[]):\n    return x\n", "B006"),  # mutable default
        ("x = 1\nprint(f'{x}' if x == None else x)\n", "E711"),  # comparison to None
        ("from typing import List\n\n\ndef f(x: List[int]) -> None:\n    print(x)\n", "UP006"),  # old typing
        (f"x = '{'a' * 130}'\n", "E501"),  # line too long (> 120)
    ],
)
def test_the_lint_catches_a_planted_finding(tmp_path, source, code):
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # the same settings
    (tmp_path / "planted.py").write_text(source)
    result = ruff("check", "--no-cache", "--output-format", "concise", "planted.py", cwd=tmp_path)
    assert result.returncode == 1 and code in result.stdout, result.stdout


def test_the_format_check_catches_unformatted_code(tmp_path):
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "planted.py").write_text("x = {  'a':1 }\n")
    result = ruff("format", "--no-cache", "--check", "planted.py", cwd=tmp_path)
    assert result.returncode == 1 and "planted.py" in result.stdout
