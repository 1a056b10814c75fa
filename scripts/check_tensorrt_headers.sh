#!/usr/bin/env bash
# Compile-check the TensorRT plugin sources (csrc/tensorrt) against a folder of TensorRT headers,
# without building or linking anything: a quick way to see, on a machine with TensorRT's headers
# (a Jetson, a TensorRT tar), that the plugins match that TensorRT's API before a full CMake build.
#
#   bash scripts/check_tensorrt_headers.sh /usr/include/aarch64-linux-gnu     # JetPack
#   TENSORRT_INCLUDE=/opt/TensorRT-10.3.0/include bash scripts/check_tensorrt_headers.sh
#   bash scripts/check_tensorrt_headers.sh ../shared/third_party/tensorrt/*/include   # a matrix
#
# Each folder must hold NvInferRuntime.h; a TensorRT root with include/ in it works too. Without
# arguments: $TENSORRT_INCLUDE, else the ':'-separated $TENSORRT_INCLUDE_DIRS.
# Compiles every file of SSPNET_PLUGIN_SOURCES in csrc/tensorrt/CMakeLists.txt with the build's flags
# (C++17, -Wall -Wextra, SSPNET_WITH_CUDA=1) plus -fsyntax-only. TensorRT's and CUDA's headers are
# system headers, so a warning means one in our code; warnings fail the check unless
# SSPNET_CHECK_WERROR=0. CUDA's headers come from $CUDA_HOME, the nvcc on PATH or /usr/local/cuda.
# CXX picks the compiler (default g++). Exit status 0 only when every file compiles against every
# folder.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
sources_dir="$repo/csrc/tensorrt"

fail() {
  echo "check_tensorrt_headers: $*" >&2
  exit 1
}

# ---- TensorRT header folders --------------------------------------------------------------------
folders=("$@")
if ((${#folders[@]} == 0)) && [[ -n "${TENSORRT_INCLUDE:-}" ]]; then
  folders=("$TENSORRT_INCLUDE")
elif ((${#folders[@]} == 0)) && [[ -n "${TENSORRT_INCLUDE_DIRS:-}" ]]; then
  IFS=: read -r -a folders <<<"$TENSORRT_INCLUDE_DIRS"
fi
((${#folders[@]} > 0)) || fail "no TensorRT header folder given: pass it as the first argument or set TENSORRT_INCLUDE" \
  "(the folder holding NvInferRuntime.h, e.g. /usr/include/aarch64-linux-gnu on JetPack)"
for i in "${!folders[@]}"; do
  folder="${folders[$i]}"
  if [[ ! -f "$folder/NvInferRuntime.h" && -f "$folder/include/NvInferRuntime.h" ]]; then
    folders[$i]="$folder/include"
  fi
  [[ -f "${folders[$i]}/NvInferRuntime.h" ]] || fail "no NvInferRuntime.h in '$folder' (nor in '$folder/include')"
done

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

# NV_TENSORRT_MAJOR is a number in some releases and an alias of TRT_MAJOR_ENTERPRISE in others.
version_part() {
  local value
  value="$(sed -nE "s/^#define[[:space:]]+(NV_TENSORRT_$2|TRT_$2_ENTERPRISE)[[:space:]]+([0-9]+).*/\2/p" \
    "$1/NvInferVersion.h" 2>/dev/null | head -n 1)"
  echo "${value:-?}"
}

# Compiles every plugin source against one header folder; status 1 when any fails.
check_folder() {
  local trt_include="$1" version
  version="$(version_part "$trt_include" MAJOR).$(version_part "$trt_include" MINOR).$(version_part "$trt_include" PATCH)"
  echo "TensorRT headers: $trt_include (TensorRT $version)"
  local flags=(-std=c++17 -fsyntax-only -Wall -Wextra -DSSPNET_WITH_CUDA=1
    -I"$sources_dir" -I"$repo/csrc/kernels" -isystem "$trt_include" -isystem "$cuda_include")
  if [[ "${SSPNET_CHECK_WERROR:-1}" != "0" ]]; then
    flags+=(-Werror)
  fi
  local failed=() source
  for source in "${sources[@]}"; do
    echo "--- $source"
    if ! "$cxx" "${flags[@]}" "$sources_dir/$source"; then
      failed+=("$source")
    fi
  done
  echo
  if ((${#failed[@]} > 0)); then
    echo "FAILED: ${#failed[@]} of ${#sources[@]} plugin sources do not compile against TensorRT $version ($trt_include):" >&2
    printf '  csrc/tensorrt/%s\n' "${failed[@]}" >&2
    return 1
  fi
  echo "OK: all ${#sources[@]} plugin sources compile against TensorRT $version ($cxx, C++17, -Wall -Wextra)."
}

status=0
for folder in "${folders[@]}"; do
  check_folder "$folder" || status=1
done
exit "$status"
