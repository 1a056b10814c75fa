"""In CI a test that skips for lack of a tool CI installs must fail (tests/conftest.py), elsewhere skip."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.parametrize("ci, outcome", [("true", "1 failed"), ("", "1 skipped")])
def test_a_missing_ci_tool_fails_in_ci_and_skips_elsewhere(tmp_path, ci, outcome):
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n\ndef test_probe():\n    pytest.skip('no clang++ on PATH (Debian: apt-get install clang)')\n"
        "\ndef test_gpu():\n    pytest.skip('needs a CUDA device')\n"
    )
    env = {**os.environ, "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # the GPU test skips either way: CI has no GPU
    assert (
        f"{outcome}, 1 skipped" in result.stdout
        or f"1 skipped, {outcome}" in result.stdout
        or (outcome == "1 skipped" and "2 skipped" in result.stdout)
    ), result.stdout
