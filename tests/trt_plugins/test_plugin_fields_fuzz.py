"""Untrusted bytes into the plugins: both creators' createPlugin (build and runtime phase) and the
field reader they share, fuzzed with clang's libFuzzer under AddressSanitizer + UndefinedBehavior-
Sanitizer (fuzz/plugin_fields_fuzzer.cpp says what each input is and which properties it checks;
fuzz_build.py builds and runs it).

- the seeds do what their names say (the Python encoder and the C++ decoder agree);
- the kept corpus and every input that ever crashed replay clean against the 10.3 and 11.x headers;
- a time-boxed fuzz run (SSPNET_FUZZ_SECONDS, default 30) finds nothing new;
- the fuzzer can fail: with a bounds check or the field-array check taken out of a copy of the
  reader, it finds the overrun within a bounded time and the report names the file.

Skipped with the reason without clang++ / libFuzzer or TensorRT headers.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fuzz_build import (
    COVERAGE,
    REGRESSIONS,
    SEEDS,
    build_fuzzer,
    corpus_files,
    crash_files,
    fuzz,
    missing_fuzzer,
    outcomes,
    replay,
)
from trt_build import header_set
from trt_files import TENSORRT_SOURCES

# Replayed against JetPack's 10.3 and the newest 11.x (the compile matrix covers 10.16).
HEADER_VERSIONS = ["10.3", "11."]
FUZZ_SECONDS = int(os.environ.get("SSPNET_FUZZ_SECONDS", "30"))
PLANTED_BUG_SECONDS = 60  # the bound within which the fuzzer must find a planted bug

_REASON = None


def _skip_reason(version: str) -> str | None:
    global _REASON
    if _REASON is None:
        _REASON = missing_fuzzer() or ""
    if _REASON:
        return _REASON
    if header_set(version) is None:
        return f"no TensorRT {version}x C++ headers found (set TENSORRT_INCLUDE_DIRS)"
    return None


@pytest.fixture(scope="module", params=HEADER_VERSIONS, ids=lambda v: f"trt{v.rstrip('.')}")
def fuzzer(request):
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return build_fuzzer(header_set(request.param))


def _report(result) -> str:
    return (result.stdout + result.stderr)[-6000:]


def test_seeds_do_what_their_names_say(fuzzer):
    seeds = corpus_files(SEEDS)
    assert len(seeds) >= 10
    result = replay(fuzzer, seeds)
    assert result.returncode == 0, _report(result)
    found = outcomes(result)
    assert found == {seed.name: seed.name.split("-")[0] for seed in seeds}


def test_corpus_and_every_past_crash_replay_clean(fuzzer):
    files = corpus_files(SEEDS, COVERAGE, REGRESSIONS)
    regressions = corpus_files(REGRESSIONS)
    assert regressions, "the inputs of the bugs found so far must stay in fuzz_corpus/regressions"
    result = replay(fuzzer, files)
    assert result.returncode == 0, _report(result)
    assert set(outcomes(result)) == {f.name for f in files}


def test_time_boxed_fuzz_run_finds_nothing(tmp_path):
    reason = _skip_reason("10.3")
    if reason:
        pytest.skip(reason)
    binary = build_fuzzer(header_set("10.3"))
    result = fuzz(binary, tmp_path, FUZZ_SECONDS, corpus_files(SEEDS, COVERAGE, REGRESSIONS))
    crashes = crash_files(tmp_path)
    found = "\n".join(f"{c.name}: base64 {base64.b64encode(c.read_bytes()).decode()}" for c in crashes)
    assert result.returncode == 0 and not crashes, (
        f"the fuzzer found an input that crashes or breaks a property; add it to {REGRESSIONS} and fix the "
        f"plugin:\n{found}\n{_report(result)}"
    )
    assert "Done" in result.stderr and "stat::number_of_executed_units" in result.stderr


# (file, text taken out, what replaces it, where the report must point)
PLANTED_BUGS = {
    "array-bound": (
        TENSORRT_SOURCES / "common" / "fieldBinding.cpp",
        "(value.length < 1 || value.length > binding.capacity)",
        "(value.length < 1)",
        ("buffer-overflow", "fieldBinding.cpp"),
    ),
    "null-field-array": (
        TENSORRT_SOURCES / "common" / "pluginSupport.cpp",
        "(fc->nbFields < 0 || (fc->nbFields > 0 && fc->fields == nullptr))",
        "(fc->nbFields < 0)",
        ("pluginSupport.cpp",),
    ),
}


@pytest.mark.parametrize("bug", PLANTED_BUGS)
def test_fuzzer_finds_a_planted_bug(bug, tmp_path):
    reason = _skip_reason("10.3")
    if reason:
        pytest.skip(reason)
    source, correct, planted, expected = PLANTED_BUGS[bug]
    text = source.read_text()
    assert text.count(correct) == 1, f"the check to plant the bug in is no longer in {source.name}: update the test"
    binary = build_fuzzer(header_set("10.3"), replace={source: text.replace(correct, planted)})
    # Start from the valid seeds only: the corpus and the regressions may hold the trigger itself.
    start = [s for s in corpus_files(SEEDS) if s.name.startswith("accepted-")]
    began = time.monotonic()
    result = fuzz(binary, tmp_path, PLANTED_BUG_SECONDS, start, seed=1)
    elapsed = time.monotonic() - began
    crashes = crash_files(tmp_path)
    assert result.returncode != 0 and crashes, f"planted bug {bug} not found in {elapsed:.0f} s:\n{_report(result)}"
    report = result.stderr
    for part in expected:
        assert part in report, (part, _report(result))


def test_a_fuzzer_started_by_a_large_process_does_not_run_out_of_memory(tmp_path):
    # Linux carries the peak RSS of the parent through fork + exec; the suite's pytest process is large.
    reason = _skip_reason("10.3")
    if reason:
        pytest.skip(reason)
    script = (
        "import sys; from pathlib import Path; sys.path[:0] = sys.argv[1:3]\n"
        "from fuzz_build import build_fuzzer, crash_files, fuzz\n"
        "from trt_build import header_set\n"
        "ballast = bytearray(2600 * 2**20)\n"
        "ballast[::4096] = b'x' * len(ballast[::4096])  # touched: resident\n"
        "binary = build_fuzzer(header_set('10.3'))\n"
        "work = Path(sys.argv[3]); seeds = sorted(Path(sys.argv[4]).iterdir())\n"
        "result = fuzz(binary, work, 3, seeds)\n"
        "print(result.returncode, [c.name for c in crash_files(work)])\n"
    )
    here = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", script, str(here.parent), str(here), str(tmp_path), str(SEEDS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.stdout.split("\n")[0] == "0 []", done.stdout + done.stderr[-3000:]
