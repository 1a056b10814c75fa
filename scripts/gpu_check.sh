#!/usr/bin/env bash
# The one command for a machine with an NVIDIA GPU (torch preinstalled, no network), about 8
# minutes: every GPU-only check of the project, every figure written as JSON.
#
#   bash scripts/gpu_check.sh [--out DIR] [--dry-run]
#
# Steps (each with its own time limit; a failing step is recorded and the next one runs):
#   1 build     sspnet._C for the host GPU (pip install --no-build-isolation --no-deps -e .,
#               TORCH_CUDA_ARCH_LIST = the GPU's compute capability)
#   2 tests     the CUDA tests of the kernels and ops (tests/ops: CUDA cases run, CPU ones too)
#   3 memcheck  compute-sanitizer --tool memcheck over the CUDA kernel tests (where the tool exists)
#   4 kernels   benchmarks/bench_roi_align.py and bench_nms.py on CUDA vs torchvision
#   5 detector  faster_rcnn_r50_sspnet (random weights) at 640x512, eager vs CUDA graph, and
#               torchvision's Faster R-CNN in the same run (sspnet benchmark --json)
#   6 harness   tests/trt_plugins/test_plugin_harness.py: the TensorRT plugin library built for
#               this GPU, driven as TensorRT does, enqueue compared with sspnet.ops (fp32/fp16/mixed)
#   7 trt_int8  (where trtexec exists) fovea_r18_sspnet_small (random weights, tensorrt flavour,
#               512x640, batch 1) as an fp16 engine and as an INT8 engine of its `sspnet quantize`
#               Q/DQ model, both with trtexec --profilingVerbosity=detailed --dumpLayerInfo
#               --dumpProfile; sspnet.benchmark.trt_layers counts Reformat, standalone
#               Quantize/Dequantize and pointwise layers and compares the latencies
#               (DIR/trt_int8_layers.json)
# Output: DIR/summary.json (status and seconds of every step) plus each step's JSON and log.
# DIR: --out, else $OUT (the device machine's output folder), else ./gpu_check_out.
# --dry-run: no GPU step runs; checks the tools, files and commands and writes the summary with
# every step "skipped (dry run)", so the script can be checked on a CPU-only machine.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${OUT:-$repo/gpu_check_out}"
dry_run=0
while (($# > 0)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "gpu_check: unknown argument '$1' (usage: gpu_check.sh [--out DIR] [--dry-run])" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
python="${PYTHON:-$(command -v python3 || command -v python)}"
[[ -x "$repo/.venv/bin/python" ]] && python="${PYTHON:-$repo/.venv/bin/python}"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
export PYTHONDONTWRITEBYTECODE=1

# ---- the host GPU ---------------------------------------------------------------------------------
capability=""
if command -v nvidia-smi >/dev/null 2>&1; then
  capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ')"
fi
if [[ -z "$capability" ]]; then
  if ((dry_run)); then
    capability="8.7"  # what the steps would use on an Orin; nothing is built in a dry run
  else
    echo "gpu_check: no GPU (nvidia-smi reports none); use --dry-run on a CPU-only machine" >&2
    exit 2
  fi
fi
arch="${capability/./}"
export TORCH_CUDA_ARCH_LIST="$capability"
export SSPNET_TEST_CUDA_ARCH="$arch"      # the harness's CMake build (tests/trt_plugins/trt_build.py)
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"

# ---- steps ----------------------------------------------------------------------------------------
steps_json=()
json_string() { "$python" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# run_step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, log in DIR/NAME.log.
run_step() {
  local name="$1" limit="$2"
  shift 2
  local command="$*" status seconds start
  echo "=== $name (limit ${limit}s): $command"
  if ((dry_run)); then
    status="skipped (dry run)"
    seconds=0
  else
    start=$(date +%s)
    timeout --kill-after=10 "$limit" bash -c "$command" >"$out/$name.log" 2>&1
    local rc=$?
    seconds=$(($(date +%s) - start))
    if ((rc == 0)); then status="ok"; elif ((rc == 124 || rc == 137)); then status="timed out"; else status="failed (exit $rc)"; fi
    tail -n 5 "$out/$name.log"
  fi
  echo "--- $name: $status (${seconds}s)"
  steps_json+=("{\"step\": $(json_string "$name"), \"status\": $(json_string "$status"), \"seconds\": $seconds, \"command\": $(json_string "$command")}")
}

# Checks a dry run can make: the files and tools the steps use.
check() {
  local missing=()
  for file in setup.py benchmarks/bench_roi_align.py benchmarks/bench_nms.py tests/ops \
    tests/trt_plugins/test_plugin_harness.py tests/trt_plugins/trt_build.py csrc/tensorrt/CMakeLists.txt; do
    [[ -e "$repo/$file" ]] || missing+=("$file")
  done
  ((${#missing[@]} == 0)) || { echo "gpu_check: missing ${missing[*]}" >&2; exit 1; }
  "$python" -c "import torch, torchvision, pytest" 2>/dev/null ||
    { echo "gpu_check: $python lacks torch / torchvision / pytest" >&2; exit 1; }
  for tool in cmake g++ nm; do
    command -v "$tool" >/dev/null || echo "gpu_check: note: no $tool (the harness step will skip)"
  done
  [[ -x "$CUDA_HOME/bin/nvcc" ]] || echo "gpu_check: note: no nvcc in CUDA_HOME=$CUDA_HOME"
  # every option the steps pass exists (a typo would otherwise surface only on the GPU machine)
  local help
  help="$("$python" -m sspnet benchmark --help 2>&1; "$python" benchmarks/bench_roi_align.py --help 2>&1;
    "$python" benchmarks/bench_nms.py --help 2>&1)"
  for flag in --model --imgsz --device --iters --warmup --reference-torchvision --quiet --json --rounds --out-dir \
    --repeats; do
    grep -q -- "$flag" <<<"$help" || { echo "gpu_check: no option $flag in the benchmark commands" >&2; exit 1; }
  done
  # the trt_int8 step's commands
  help="$("$python" -m sspnet quantize --help 2>&1; "$python" -m sspnet build-engine --help 2>&1;
    "$python" -m sspnet synth --help 2>&1; "$python" -m sspnet.benchmark.trt_layers --help 2>&1)"
  for flag in --calib --max-tiles --print-trtexec --trt-major --plugins --images --size --fp16 --int8; do
    grep -q -- "$flag" <<<"$help" || { echo "gpu_check: no option $flag in the trt_int8 commands" >&2; exit 1; }
  done
}
check

sanitizer="$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")"
checkpoint="$out/faster_rcnn_r50_sspnet_random.safetensors"
pytest=("$python" -m pytest -q -p no:cacheprovider)

run_step build 240 "cd '$repo' && SSPNET_WITH_TENSORRT=0 '$python' -m pip install --no-build-isolation --no-deps --no-index -e . \
  && '$python' -c 'import torch, sspnet.ops; assert torch.cuda.is_available(); print(torch.cuda.get_device_name())'"
run_step tests 150 "cd '$repo' && ${pytest[*]} tests/ops -x --junitxml='$out/tests.xml'"
if [[ -x "$sanitizer" ]]; then
  run_step memcheck 120 "cd '$repo' && '$sanitizer' --tool memcheck --error-exitcode 3 --log-file '$out/memcheck_report.txt' \
    ${pytest[*]} tests/ops -x -k 'cuda or gpu'"
else
  steps_json+=("{\"step\": \"memcheck\", \"status\": \"skipped (no compute-sanitizer)\", \"seconds\": 0, \"command\": \"\"}")
  echo "--- memcheck: skipped (no compute-sanitizer)"
fi
run_step kernels 120 "cd '$repo' && '$python' benchmarks/bench_roi_align.py --device cuda --rounds 9 --out-dir '$out' \
  && '$python' benchmarks/bench_nms.py --device cuda --repeats 9 && cp benchmarks/results/nms_cuda.json '$out/'"
run_step detector 150 "cd '$repo' && '$python' -c \"
import torch
from sspnet.checkpoint import save_checkpoint
from sspnet.models import build_model
torch.manual_seed(0)
save_checkpoint('$checkpoint', build_model('faster_rcnn_r50_sspnet').eval(), preset='faster_rcnn_r50_sspnet')
\" && '$python' -m sspnet benchmark --model '$checkpoint' --imgsz 512 640 --device cuda --iters 30 --warmup 5 \
  --reference-torchvision --quiet --json '$out/detector_latency.json'"
run_step harness 240 "cd '$repo' && ${pytest[*]} tests/trt_plugins/test_plugin_harness.py -rs --junitxml='$out/harness.xml'"

# 7: INT8 vs fp16 engines of one export. trtexec's version gives the TensorRT major: 10 builds with
# --fp16 / --fp16 --int8 flags, 11 is strongly typed (the fp16 baseline is then the float model
# converted to fp16 by the same pass as the fp16 TensorRT form).
trt="$out/trt_int8"
profile="--profilingVerbosity=detailed --dumpLayerInfo --dumpProfile --separateProfileRun"
export_model="import torch; from sspnet.export.onnx_export import export_onnx; from sspnet.models import build_model
torch.manual_seed(0); export_onnx(build_model('fovea_r18_sspnet_small').eval(), '$trt/model.onnx', flavor='tensorrt',
    imgsz=(512, 640), batch=1)"
fp16_model="import onnx; from sspnet.export.float16_form import float16_copy
onnx.save(float16_copy(onnx.load('$trt/model.onnx')), '$trt/model_fp16.onnx')"
engine() {  # engine NAME ONNX: the build-engine trtexec command plus the profiling exports
  echo "cmd=\$('$python' -m sspnet build-engine \"$2\" --print-trtexec --trt-major \$major --plugins '$trt/plugins/libsspnet_trt_plugins.so' \
    --out '$trt/$1.engine') && \$cmd $profile --exportLayerInfo='$trt/$1.layers.json' --exportProfile='$trt/$1.profile.json' \
    --exportTimes='$trt/$1.times.json' > '$trt/$1.trtexec.log' 2>&1"
}
if command -v trtexec >/dev/null 2>&1 || ((dry_run)); then
  run_step trt_int8 420 "cd '$repo' && mkdir -p '$trt' \
  && major=\$(trtexec --version 2>&1 | sed -n 's/.*TensorRT v\\([0-9]*\\)[0-9][0-9][0-9][0-9].*/\\1/p' | head -n 1) \
  && major=\${major:-10} && cmake -S csrc/tensorrt -B '$trt/plugins' -DCMAKE_CUDA_ARCHITECTURES=$arch \
  && cmake --build '$trt/plugins' -j $MAX_JOBS \
  && '$python' -c \"$export_model\" && '$python' -m sspnet synth '$trt/data' --images 16 --size 640 512 \
  && '$python' -m sspnet quantize '$trt/model.onnx' --calib '$trt/data' --out '$trt/model_int8.onnx' --max-tiles 32 --quiet \
  && if ((major >= 11)); then '$python' -c \"$fp16_model\"; fp16_onnx='$trt/model_fp16.onnx'; else fp16_onnx='$trt/model.onnx'; fi \
  && $(engine fp16 "\$fp16_onnx") && $(engine int8 "$trt/model_int8.onnx") \
  && '$python' -m sspnet.benchmark.trt_layers --fp16 '$trt/fp16' --int8 '$trt/int8' --out '$out/trt_int8_layers.json'"
else
  steps_json+=("{\"step\": \"trt_int8\", \"status\": \"skipped (no trtexec)\", \"seconds\": 0, \"command\": \"\"}")
  echo "--- trt_int8: skipped (no trtexec)"
fi

{
  echo "{\"gpu_compute_capability\": $(json_string "$capability"), \"dry_run\": $( ((dry_run)) && echo true || echo false),"
  echo " \"steps\": ["
  for i in "${!steps_json[@]}"; do
    echo "  ${steps_json[$i]}$( ((i + 1 < ${#steps_json[@]})) && echo ,)"
  done
  echo " ]}"
} >"$out/summary.json"
"$python" -c "import json,sys; json.load(open(sys.argv[1]))" "$out/summary.json" || exit 1
echo "gpu_check: summary in $out/summary.json"
failed=$(grep -c '"status": "\(failed\|timed out\)' "$out/summary.json")
exit $((failed > 0 ? 1 : 0))
