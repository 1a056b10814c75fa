"""Building and running the plugin field fuzzer (fuzz/plugin_fields_fuzzer.cpp) with clang's
libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.

The binary holds the plugin library's own sources (csrc/tensorrt, the list CMake builds, plus
every .cpp of csrc/kernels for the kernels' validate()), the stub libnvinfer (cpp/fake_nvinfer.cpp)
and stand-ins for the CUDA entry points the fuzz target never reaches (fuzz/no_device.cpp).
Objects are cached one by one under the temp folder (trt_build.CACHE) by a hash of what goes into
them, so a planted-bug build recompiles only the file it changes.

Corpus (tests/trt_plugins/fuzz_corpus/):
  seeds/        hand-made inputs written by fuzz_seeds.py (names say what each holds)
  coverage/     a minimised corpus from earlier runs (libFuzzer -merge=1), so a short run
                starts deep
  regressions/  every input that ever crashed or violated a property: replayed on every run

Run longer by hand (new finds go to the working folder; copy crashes into regressions/):
    python tests/trt_plugins/fuzz_build.py --seconds 600 [--headers 11.1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from trt_build import (
    CPP,
    KERNELS,
    HeaderSet,
    cached_folder,
    check_run,
    content_key,
    cuda_root,
    header_set,
    mark_done,
    plugin_sources,
)
from trt_files import TENSORRT_SOURCES

FUZZ = Path(__file__).resolve().parent / "fuzz"
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
SEEDS = CORPUS / "seeds"
COVERAGE = CORPUS / "coverage"
REGRESSIONS = CORPUS / "regressions"

CLANG = "clang++"
SANITIZE = "-fsanitize=address,undefined"
COMPILE_FLAGS = [
    "-std=c++17",
    "-g",
    "-O1",
    "-fno-omit-frame-pointer",
    SANITIZE,
    "-fno-sanitize-recover=undefined",
    "-fsanitize=fuzzer-no-link",
    "-DSSPNET_WITH_CUDA=1",
    # TensorRT's deprecated V1 plugin classes in the fake registry; the kernels' OpenMP pragmas
    # (OpenMP is off here: only validate() runs).
    "-Wno-deprecated-declarations",
    "-Wno-inconsistent-missing-override",
    "-Wno-unknown-pragmas",
]
LINK_FLAGS = [SANITIZE, "-fsanitize=fuzzer"]


def missing_fuzzer() -> str | None:
    """A skip reason when clang++ with libFuzzer is not usable here, else None."""
    if shutil.which(CLANG) is None:
        return "no clang++ on PATH (Debian: apt-get install clang libclang-rt-14-dev)"
    if cuda_root() is None:
        return "no CUDA headers (cuda_runtime_api.h; set CUDA_HOME)"
    probe = Path(tempfile.mkdtemp(prefix="sspnet-fuzz-probe-"))
    try:
        source = probe / "probe.cpp"
        source.write_text(
            "#include <cstdint>\n#include <cstddef>\n"
            'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n'
        )
        result = subprocess.run(
            [CLANG, *LINK_FLAGS, str(source), "-o", str(probe / "probe")], capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [""])[-1]
            return f"clang++ cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-14-dev): {last}"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return None


def fuzz_sources() -> list[Path]:
    # Of the kernels only the validate() functions are reached (batched_nms_cpu.cpp holds NMS's).
    kernels = [KERNELS / "batched_nms_cpu.cpp", KERNELS / "multi_level_roi_align.cpp"]
    return [
        *plugin_sources(),
        *kernels,
        CPP / "fake_nvinfer.cpp",
        FUZZ / "no_device.cpp",
        FUZZ / "plugin_fields_fuzzer.cpp",
    ]


def _clang_version() -> str:
    return subprocess.run([CLANG, "--version"], capture_output=True, text=True).stdout


def _include_flags(headers: HeaderSet) -> list[str]:
    return [
        f"-I{TENSORRT_SOURCES}",
        f"-I{KERNELS}",
        f"-I{CPP}",
        "-isystem",
        str(headers.include),
        "-isystem",
        str(cuda_root() / "include"),
    ]


def _includes_tensorrt(source: Path) -> bool:
    """False for the sources that compile without TensorRT (the field tables, the kernels, the CUDA
    stand-ins): one object of each serves every header set."""
    tensorrt_free = (
        source.parent == KERNELS
        or source.name == "no_device.cpp"
        or source.name.endswith(("Fields.cpp", "fieldBinding.cpp"))
    )
    return not tensorrt_free


def _compile(source: Path, text: str | None, headers: HeaderSet) -> Path:
    """One object, cached; `text` replaces the file's contents (a planted bug), same includes."""
    # Every header the source may include is part of the key (our folders; TensorRT's by version).
    tensorrt = (headers.include.resolve(), headers.version) if _includes_tensorrt(source) else ()
    key = content_key(
        "fuzz-object",
        source.name,
        text if text is not None else source,
        TENSORRT_SOURCES,
        KERNELS,
        CPP / "fake_tensorrt.h",
        *tensorrt,
        COMPILE_FLAGS,
        _clang_version(),
    )
    folder, ready = cached_folder("fuzz-object", key)
    target = folder / f"{source.stem}.o"
    if not ready:
        folder.mkdir(parents=True, exist_ok=True)
        compiled = source
        if text is not None:
            compiled = folder / source.name
            compiled.write_text(text)
        check_run(
            [CLANG, *COMPILE_FLAGS, *_include_flags(headers), "-c", str(compiled), "-o", str(target)],
            f"compiling {source.name} for the fuzzer",
        )
        mark_done(folder)
    return target


def build_fuzzer(headers: HeaderSet, replace: dict[Path, str] | None = None) -> Path:
    """The libFuzzer binary against `headers`; `replace` maps sources to planted-bug texts."""
    replace = replace or {}
    objects = [_compile(source, replace.get(source), headers) for source in fuzz_sources()]
    key = content_key("fuzz-link", *objects, LINK_FLAGS, _clang_version())
    folder, ready = cached_folder("fuzz-binary", key)
    binary = folder / "plugin_fields_fuzzer"
    if not ready:
        folder.mkdir(parents=True, exist_ok=True)
        check_run([CLANG, *LINK_FLAGS, *map(str, objects), "-o", str(binary)], "linking the fuzzer")
        mark_done(folder)
    return binary


def corpus_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_file())


def replay(binary: Path, files: list[Path], timeout: int = 300) -> subprocess.CompletedProcess:
    """Each file once (no mutation); SSPNET_FUZZ_OUTCOMES makes the target print what it did."""
    env = dict(os.environ, SSPNET_FUZZ_OUTCOMES="1")
    return subprocess.run([str(binary), *map(str, files)], capture_output=True, text=True, timeout=timeout, env=env)


def outcomes(result: subprocess.CompletedProcess) -> dict[str, str]:
    """{file name: refused | accepted | read} from a replay's output (libFuzzer names each file
    it runs in a "Running: PATH" line; the target prints "sspnet-fuzz-outcome: WHAT" after it)."""
    found, current = {}, None
    for line in result.stderr.splitlines():
        running = re.match(r"Running: (.+)$", line)
        outcome = re.match(r"sspnet-fuzz-outcome: (\w+)$", line)
        if running:
            current = Path(running.group(1)).name
        elif outcome and current is not None:
            found[current] = outcome.group(1)
    return found


def fuzz(
    binary: Path,
    workdir: Path,
    seconds: int,
    start_from: list[Path],
    seed: int | None = None,
    extra: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """A time-boxed libFuzzer run: new inputs go to workdir/corpus, a crash to workdir/crash-*.

    One process, one job; -max_len bounds inputs at 4 KiB (a field collection is far smaller).
    """
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in start_from:
        shutil.copy(path, corpus / path.name)
    command = [
        str(binary),
        f"-max_total_time={seconds}",
        "-max_len=4096",
        "-timeout=10",
        # No RSS limit: libFuzzer reads its peak RSS from getrusage(), which Linux carries through
        # fork + exec from the parent, so a fuzzer started by a large pytest process "runs out of memory"
        # before its first input. A per-allocation limit still catches a field length that allocates
        # without bound, and LeakSanitizer catches leaks.
        "-rss_limit_mb=0",
        "-malloc_limit_mb=2048",
        f"-artifact_prefix={workdir}/",
        "-print_final_stats=1",
        *(extra or []),
    ]
    if seed is not None:
        command.append(f"-seed={seed}")
    command.append(str(corpus))
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300, cwd=workdir)


def crash_files(workdir: Path) -> list[Path]:
    return sorted(p for p in workdir.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the plugin field fuzzer for a while.")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--headers", default="10.3", help="TensorRT header version prefix (10.3, 10.16, 11.)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument(
        "--merge-into-coverage",
        action="store_true",
        help="afterwards, minimise coverage/ + the new inputs back into coverage/",
    )
    args = parser.parse_args()
    reason = missing_fuzzer()
    headers = header_set(args.headers)
    if reason or headers is None:
        print(reason or f"no TensorRT {args.headers} headers found", file=sys.stderr)
        return 2
    binary = build_fuzzer(headers)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sspnet-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = fuzz(binary, workdir, args.seconds, corpus_files(SEEDS, COVERAGE, REGRESSIONS))
    print(result.stderr[-3000:])
    crashes = crash_files(workdir)
    for crash in crashes:
        print(f"FOUND {crash}: copy it into {REGRESSIONS} and fix the bug it shows")
    if args.merge_into_coverage and not crashes:
        merged = workdir / "merged"
        merged.mkdir(exist_ok=True)
        check_run(
            [str(binary), "-merge=1", str(merged), str(COVERAGE), str(workdir / "corpus")], "merging", timeout=600
        )
        for old in COVERAGE.glob("*"):
            old.unlink()
        for new in merged.iterdir():
            shutil.copy(new, COVERAGE / new.name)
        print(f"coverage/ now holds {len(list(COVERAGE.iterdir()))} inputs")
    print(f"working folder: {workdir}")
    return 1 if crashes or result.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
