#!/usr/bin/env bash
# Compile-check the TensorRT plugin sources (csrc/tensorrt) against a folder of TensorRT headers,
# without building or linking anything: a quick way to see, on a machine with TensorRT's headers
# (a Jetson, a TensorRT tar), that the plugins match that TensorRT's API before a full CMake build.
#
#   bash scripts/check_tensorrt_headers.sh /usr/include/aarch64-linux-gnu     # JetPack
#   TENSORRT_INCLUDE=/opt/TensorRT-10.3.0/include bash scripts/check_tensorrt_headers.sh
#
# The folder must hold NvInferRuntime.h; a TensorRT root with include/ in it works too.
# Compiles every file of SSPNET_PLUGIN_SOURCES in csrc/tensorrt/CMakeLists.txt with the build's flags
# (C++17, -Wall -Wextra, SSPNET_WITH_CUDA=1) plus -fsyntax-only. TensorRT's and CUDA's headers are
# system headers, so a warning means one in our code; warnings fail the check unless
# SSPNET_CHECK_WERROR=0. CUDA's headers come from $CUDA_HOME, the nvcc on PATH or /usr/local/cuda.
# CXX picks the compiler (default g++). Exit status 0 only when every file compiles.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
sources_dir="$repo/csrc/tensorrt"

fail() {
  echo "check_tensorrt_headers: $*" >&2
  exit 1
}

# ---- TensorRT headers -------------------------------------------------------------------------
trt_include="${1:-${TENSORRT_INCLUDE:-}}"
[[ -n "$trt_include" ]] || fail "no TensorRT header folder given: pass it as the first argument or set TENSORRT_INCLUDE" \
  "(the folder holding NvInferRuntime.h, e.g. /usr/include/aarch64-linux-gnu on JetPack)"
if [[ ! -f "$trt_include/NvInferRuntime.h" && -f "$trt_include/include/NvInferRuntime.h" ]]; then
  trt_include="$trt_include/include"
fi
[[ -f "$trt_include/NvInferRuntime.h" ]] || fail "no NvInferRuntime.h in '$trt_include' (nor in '$trt_include/include')"

# NV_TENSORRT_MAJOR is a number in some releases and an alias of TRT_MAJOR_ENTERPRISE in others.
version_part() {
  local value
  value="$(sed -nE "s/^#define[[:space:]]+(NV_TENSORRT_$1|TRT_$1_ENTERPRISE)[[:space:]]+([0-9]+).*/\2/p" \
    "$trt_include/NvInferVersion.h" 2>/dev/null | head -n 1)"
  echo "${value:-?}"
}
echo "TensorRT headers: $trt_include (TensorRT $(version_part MAJOR).$(version_part MINOR).$(version_part PATCH))"

# ---- CUDA headers (NvInferRuntimeBase.h includes cuda_runtime_api.h) --------------------------
cuda_include=""
for root in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")")" /usr/local/cuda; do
  if [[ -n "$root" && -f "$root/include/cuda_runtime_api.h" ]]; then
    cuda_include="$root/include"
    break
  fi
done
[[ -n "$cuda_include" ]] || fail "no CUDA headers (cuda_runtime_api.h): set CUDA_HOME to the CUDA toolkit root"
echo "CUDA headers:     $cuda_include"

# ---- the plugin sources, as listed for the library in CMakeLists.txt ---------------------------
mapfile -t sources < <(sed -n '/^set(SSPNET_PLUGIN_SOURCES/,/)/p' "$sources_dir/CMakeLists.txt" |
  grep -oE '[A-Za-z0-9_/]+\.cpp')
((${#sources[@]} > 0)) || fail "found no SSPNET_PLUGIN_SOURCES list in $sources_dir/CMakeLists.txt"

cxx="${CXX:-g++}"
command -v "$cxx" >/dev/null || fail "C++ compiler '$cxx' not found (set CXX)"
flags=(-std=c++17 -fsyntax-only -Wall -Wextra -DSSPNET_WITH_CUDA=1
  -I"$sources_dir" -I"$repo/csrc/kernels" -isystem "$trt_include" -isystem "$cuda_include")
if [[ "${SSPNET_CHECK_WERROR:-1}" != "0" ]]; then
  flags+=(-Werror)
fi

failed=()
for source in "${sources[@]}"; do
  echo "--- $source"
  if ! "$cxx" "${flags[@]}" "$sources_dir/$source"; then
    failed+=("$source")
  fi
done

echo
if ((${#failed[@]} > 0)); then
  echo "FAILED: ${#failed[@]} of ${#sources[@]} plugin sources do not compile against these TensorRT headers:" >&2
  printf '  csrc/tensorrt/%s\n' "${failed[@]}" >&2
  exit 1
fi
echo "OK: all ${#sources[@]} plugin sources compile against these TensorRT headers ($cxx, C++17, -Wall -Wextra)."
