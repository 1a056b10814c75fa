#!/usr/bin/env bash
# Creates (or reuses) the local virtual environment and installs everything sspnet needs:
# torch 2.14.1 + torchvision 0.29.1 (standard CUDA build; runs on CPU too), the project in
# editable mode with its test extras, and the compiled extension. Safe to run repeatedly:
# the extension is rebuilt only when csrc/ or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SSPNET_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip setuptools wheel ninja

if ! "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
  echo "[env] installing torch 2.14.1 + torchvision 0.29.1"
  "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
fi

# Small arch list by default here (Jetson Orin); users building for other GPUs set it themselves.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.7}
build_hash=$( (cat setup.py pyproject.toml; find csrc -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' \) -not -path 'csrc/tensorrt/*' | sort | xargs cat; echo "$TORCH_CUDA_ARCH_LIST") | sha256sum | cut -c1-16)
stamp="$VENV/.sspnet-build-$build_hash"
if [ ! -f "$stamp" ] || ! "$PY" -c "import sspnet.ops.extension as e; e.load()" 2>/dev/null; then
  echo "[env] building sspnet and its compiled extension (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
  rm -f "$VENV"/.sspnet-build-*
  MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip install -q --no-build-isolation -e ".[test]"
  touch "$stamp"
fi
# Tracking: `trackers` without its dependencies (the [track] extra, part of [test], holds them): its
# opencv-python requirement would install a second cv2 over opencv-python-headless (docs/tracking.md).
if ! "$PY" -c "import trackers" 2>/dev/null; then
  echo "[env] installing trackers (--no-deps: one OpenCV)"
  "$PY" -m pip install -q --no-deps "trackers>=2.6.1,<3"
fi
# Benchmarks: SAHI (benchmarks/bench_pipeline.py) without its opencv-python, for the same reason (the
# [bench] extra lists the rest of its dependencies; the others are already in [test]).
if ! "$PY" -c "import sahi" 2>/dev/null; then
  echo "[env] installing sahi (--no-deps: one OpenCV)"
  "$PY" -m pip install -q "shapely>=2.0" fire click && "$PY" -m pip install -q --no-deps "sahi>=0.12.8,<0.13"
fi
echo "[env] ready: $VENV"
