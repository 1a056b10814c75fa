#!/usr/bin/env bash
# Creates (or reuses) the local virtual environment and installs everything sspnet needs:
# torch 2.14.1 + torchvision 0.29.1 (standard CUDA build; runs on CPU too), the project in
# editable mode with its test extras, and the compiled extension. Safe to run repeatedly:
# the extension is rebuilt only when csrc/ or setup.py changed.
#
# Long steps run quietly: their output goes to $VENV/env-setup.log, a line every 30 s says they are
# still running, and a failure prints the log's last lines.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SSPNET_VENV:-.venv}
LOG="$VENV/env-setup.log"

# quietly "what" "how long, roughly" COMMAND...: run COMMAND with its output in $LOG.
quietly() {
  local what=$1 expected=$2 start=$SECONDS
  shift 2
  echo "[env] $what ($expected)"
  echo "=== $what: $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 &
  local pid=$! next=30
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - start >= next )); then
      echo "[env]   ... still $what: $((SECONDS - start)) s so far"
      next=$((next + 30))
    fi
  done
  if ! wait "$pid"; then
    echo "[env] FAILED: $what after $((SECONDS - start)) s; the last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  echo "[env]   done in $((SECONDS - start)) s"
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
: >"$LOG"
echo "[env] full output of each step: $LOG"
PY="$VENV/bin/python"
quietly "updating pip, setuptools, wheel and ninja" "seconds" \
  "$PY" -m pip install --upgrade pip setuptools wheel ninja

if ! "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
  quietly "downloading and installing torch 2.14.1 + torchvision 0.29.1" \
    "about 2.5 GB with the CUDA libraries: a few minutes on a fast link" \
    "$PY" -m pip install --progress-bar off torch==2.14.1 torchvision==0.29.1
fi

# Small arch list by default here (Jetson Orin); users building for other GPUs set it themselves.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.7}
build_hash=$( (cat setup.py pyproject.toml; find csrc -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' \) -not -path 'csrc/tensorrt/*' | sort | xargs cat; echo "$TORCH_CUDA_ARCH_LIST") | sha256sum | cut -c1-16)
stamp="$VENV/.sspnet-build-$build_hash"
if [ ! -f "$stamp" ] || ! "$PY" -c "import sspnet.ops.extension as e; e.load()" 2>/dev/null; then
  rm -f "$VENV"/.sspnet-build-*
  jobs=${MAX_JOBS:-2}
  quietly "installing sspnet (editable, test extras) and compiling its C++/CUDA extension with $jobs jobs, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST" \
    "the compile takes ~1-3 min on 2 cores, longer when nvcc builds the CUDA kernels" \
    env MAX_JOBS="$jobs" "$PY" -m pip install -v --progress-bar off --no-build-isolation -e ".[test]"
  grep -h "^sspnet: " "$LOG" | sed 's/^/[env]   /' || true  # what setup.py found (CUDA, TensorRT)
  touch "$stamp"
fi
# Tracking: `trackers` without its dependencies (the [track] extra, part of [test], holds them): its
# opencv-python requirement would install a second cv2 over opencv-python-headless (docs/tracking.md).
if ! "$PY" -c "import trackers" 2>/dev/null; then
  quietly "installing trackers (--no-deps: one OpenCV)" "seconds" \
    "$PY" -m pip install --no-deps "trackers==2.6.1"  # the release sspnet.tracking.array_tracker mirrors
fi
# Tests: a local RTSP server (tests/cli/test_streams.py cuts and restores an RTSP stream; ffmpeg cannot
# serve RTSP). Pure Python; its media dependency (av) is in the [track] extra.
if ! "$PY" -c "import aio_rtsp_toolkit" 2>/dev/null; then
  quietly "installing aio-rtsp-toolkit (the tests' local RTSP server)" "seconds" \
    "$PY" -m pip install "aio-rtsp-toolkit==0.1.4"
fi
# Benchmarks: SAHI (benchmarks/bench_pipeline.py) without its opencv-python, for the same reason (the
# [bench] extra lists the rest of its dependencies; the others are already in [test]).
if ! "$PY" -c "import sahi" 2>/dev/null; then
  quietly "installing sahi's dependencies" "seconds" "$PY" -m pip install "shapely>=2.0" fire click
  quietly "installing sahi (--no-deps: one OpenCV)" "seconds" "$PY" -m pip install --no-deps "sahi>=0.12.8,<0.13"
fi
echo "[env] ready: $VENV (activate with: source $VENV/bin/activate)"
