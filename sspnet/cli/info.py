"""`sspnet info`: versions, the compiled extension, importable backends (and, later, presets)."""

from __future__ import annotations

import importlib
import platform

import sspnet
from sspnet.io.table import print_table

HELP = "versions, compiled-extension facts, available backends, model presets"


def add_arguments(parser):
    parser.add_argument("--presets", action="store_true", help="list the model presets")
    parser.add_argument("--model", metavar="PRESET", help="parameters and GFLOPs of a preset")
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs=2,
        default=(512, 640),
        metavar=("H", "W"),
        help="input size for --model GFLOPs, multiples of 32 (default 512 640)",
    )


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception:  # not installed, or broken: both mean "not available" here
        return "-"
    return str(getattr(module, "__version__", "installed"))


def environment_rows() -> list[tuple[str, str]]:
    rows = [
        ("sspnet", sspnet.__version__),
        ("python", platform.python_version()),
        ("platform", f"{platform.system()} {platform.machine()}"),
    ]
    for name in ("numpy", "torch", "torchvision", "onnx", "onnxruntime", "tensorrt", "cuda"):
        rows.append((name, _version("cuda.bindings" if name == "cuda" else name)))
    torch_version = _version("torch")
    if torch_version != "-":
        import torch

        rows.append(("torch CUDA device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"))
        from sspnet.ops.extension import build_info

        info = build_info()
        if info["built"]:
            rows.append(("extension sspnet._C", "built"))
            rows.append(("  CUDA kernels", f"yes ({info['cuda_archs']})" if info["cuda"] else "no (CPU only)"))
            rows.append(("  CPU threads", str(info["openmp_threads"])))
        else:
            rows.append(("extension sspnet._C", f"NOT BUILT: {info['error']}"))
    return rows


def run(args) -> int:
    if args.presets or args.model:
        from sspnet.checkpoint import check_preset_name
        from sspnet.export.options import check_imgsz
        from sspnet.models.presets import describe_model, list_presets

        if args.model:  # checked before the presets table is printed
            check_preset_name(args.model, "--model")
            imgsz = check_imgsz(args.imgsz, "--imgsz")
        if args.presets:
            print_table(list_presets(), headers=("preset", "variant", "backbone", "backbone weights", "description"))
        if args.model:
            print_table(describe_model(args.model, imgsz), headers=("quantity", "value"))
        return 0
    print_table(environment_rows(), headers=("component", "version / state"))
    return 0
