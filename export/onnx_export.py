"""Export an SSPNet detector to ONNX: the whole detector in one graph, uint8 images in, the
fixed-shape contract outputs out (runtime/contract.py), in two flavours:

- `portable`: standard ONNX ops only (RoiAlign, NonMaxSuppression, TopK ...): any ONNX runtime.
- `tensorrt`: multi-level RoIAlign and batched NMS as single custom nodes matching the sspnet
  TensorRT plugins (runtime/plugin_fields.json); soft-NMS stays soft.

    from sspnet.export.onnx_export import export_onnx
    export_onnx("runs/best.pt", "model.onnx", flavor="portable", imgsz=(512, 640), batch="dynamic")

Exporter choice: torch's `torch.export`-based exporter (`torch.onnx.export(..., dynamo=True)`)
with a `custom_translation_table`. The model's only non-standard pieces are two torch custom ops
(torch.ops.sspnet.multi_level_roi_align / batched_nms) that have fake kernels, so torch.export
captures the detector as one graph without tracing through their C++ code, and each op becomes a
small onnxscript function (export/ops_portable.py, export/ops_tensorrt.py) that receives the op's
real arguments (feature list, attribute values). The TorchScript exporter with
register_custom_op_symbolic is deprecated in current torch, traces Python control flow silently
and handles Tensor[] arguments of custom ops poorly; dynamo=True fails loudly instead when the
model has data-dependent shapes, which is what the fixed-shape contract needs to know.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import torch
from sspnet.export.options import DEFAULT_OPSET, FLAVORS, check_export_options, check_export_paths, check_flavor
from sspnet.runtime.contract import INPUT_NAME, OUTPUT_NAMES

from sspnet.errors import UsageError
from sspnet.io.atomic import atomic_write

PREFIX = "ONNX:"


def _log(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


# ---- the translation of the sspnet custom ops ------------------------------------------------


def translation_table(flavor: str) -> dict:
    """{torch op overload: onnxscript translation} for `flavor` (portable or tensorrt)."""
    import sspnet.ops  # noqa: F401  (registers torch.ops.sspnet.*)

    check_flavor(flavor)
    if flavor == "portable":
        from sspnet.export import ops_portable as ops
    else:
        from sspnet.export import ops_tensorrt as ops
    table = {}
    for name in ("multi_level_roi_align", "batched_nms"):
        if not hasattr(torch.ops.sspnet, name):
            raise RuntimeError(
                f"torch.ops.sspnet.{name} is not registered: sspnet's compiled extension is missing "
                "or outdated (rebuild with `pip install --no-build-isolation -e .`)"
            )
        table[getattr(torch.ops.sspnet, name).default] = getattr(ops, name)
    return table


def export_module(
    module,
    example_inputs: tuple,
    *,
    flavor: str,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes=None,
    opset: int = DEFAULT_OPSET,
):
    """torch.onnx.export (dynamo) of any module that may call the sspnet ops -> onnx.ModelProto.

    The building block of `export_onnx`; tests use it on tiny modules that call the ops directly.
    """
    with warnings.catch_warnings():
        # torch.export's own chatter about the exporter being new; our warnings still show.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
        program = torch.onnx.export(
            module,
            example_inputs,
            dynamo=True,
            custom_translation_table=translation_table(flavor),
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    return program.model_proto


# ---- the detector ----------------------------------------------------------------------------


class ContractOutputs(torch.nn.Module):
    """Wraps a detector so that it returns the contract outputs as a tuple, in contract order."""

    def __init__(self, detector: torch.nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.detector(images)
        return tuple(outputs[name] for name in OUTPUT_NAMES)


def load_detector(model_or_checkpoint, preset: str | None = None):
    """An eval-mode detector from a module, or from a checkpoint file (sspnet.checkpoint)."""
    if isinstance(model_or_checkpoint, torch.nn.Module):
        model = model_or_checkpoint
    else:
        from sspnet.checkpoint import load_model

        model = load_model(Path(model_or_checkpoint), preset=preset)  # missing / unreadable files: named
    config = getattr(model, "config", None)
    if config is None:
        raise UsageError(
            f"{type(model).__name__} has no `config` (an sspnet ModelConfig): build it with "
            "sspnet.models.build_model or load it with sspnet.checkpoint.load_model"
        )
    return model.eval()


def _custom_nodes(model) -> list[tuple[str, str]]:
    return [(node.domain, node.op_type) for node in model.graph.node if node.domain not in ("", "ai.onnx")]


def slim(model):
    """onnxslim clean-up (constant folding, dead nodes, fusions). Returns (model, note).

    Falls back to the unslimmed graph when onnxslim fails or changes the interface / custom nodes.
    """
    try:
        import onnxslim

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slimmed = onnxslim.slim(model)
    except Exception as error:  # onnxslim is a best-effort optimiser: never fail the export on it
        return model, f"onnxslim failed ({type(error).__name__}: {error}); kept the unslimmed graph"
    same_io = [i.name for i in slimmed.graph.input] == [i.name for i in model.graph.input] and [
        o.name for o in slimmed.graph.output
    ] == [o.name for o in model.graph.output]
    if not same_io or sorted(_custom_nodes(slimmed)) != sorted(_custom_nodes(model)):
        return model, "onnxslim changed the graph interface or custom nodes; kept the unslimmed graph"
    return slimmed, f"onnxslim {onnxslim.__version__}: {len(model.graph.node)} -> {len(slimmed.graph.node)} nodes"


def export_onnx(
    model_or_checkpoint,
    out_path,
    flavor: str = "portable",
    imgsz: tuple[int, int] = (512, 640),
    batch="dynamic",
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    verify_images=None,
    preset: str | None = None,
    trt_lint: str = "report",
) -> Path:
    """Export a detector (module or checkpoint path) to `out_path`; returns the path.

    imgsz (H, W) is fixed per export; batch "dynamic" or a fixed integer. verify_images (an image
    count, a folder, or a uint8 [N, 3, H, W] array) runs PyTorch and the exported graph and prints
    a parity table. trt_lint: "report" / "strict" / "off", the TensorRT parser check (trt_lint.py).
    """
    import onnx
    from sspnet.export.trt_lint import check_lint_mode, lint_export

    imgsz, batch = check_export_options(flavor, imgsz, batch, opset)
    check_lint_mode(trt_lint)
    checkpoint = None if isinstance(model_or_checkpoint, torch.nn.Module) else model_or_checkpoint
    out_path = check_export_paths(checkpoint, out_path, verify_images)
    model = load_detector(model_or_checkpoint, preset)
    config = model.config
    start = time.perf_counter()
    _log(
        f"starting export of {config.name} ({config.variant}) with torch {torch.__version__}, "
        f"onnx {onnx.__version__}, opset {opset}, flavor {flavor}, input [{batch}, 3, {imgsz[0]}, {imgsz[1]}]..."
    )
    if flavor == "portable" and config.nms_method != "hard":
        _log(
            f"note: the model's {config.nms_method} soft-NMS is exported as HARD NMS (iou {config.nms_iou_thr}): "
            "standard ONNX has no soft-NMS. Use --flavor tensorrt to keep soft-NMS."
        )

    # torch.export treats a size-1 example dimension as static: use 2 images for a dynamic batch.
    example_batch = 2 if batch == "dynamic" else batch
    example = torch.randint(
        0, 256, (example_batch, 3, *imgsz), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    dynamic_shapes = None
    if batch == "dynamic":
        dynamic_shapes = {"images": {0: torch.export.Dim("batch", min=1, max=4096)}}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*portable ONNX: NMS method.*")  # said above
        proto = export_module(
            ContractOutputs(model).eval(),
            (example,),
            flavor=flavor,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dynamic_shapes,
            opset=opset,
        )
    _log(f"traced and converted in {time.perf_counter() - start:.1f}s ({len(proto.graph.node)} nodes)")
    actual_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if actual_opset != opset:
        _log(f"note: the graph has opset {actual_opset} (torch could not convert it to {opset})")

    if simplify:
        _log("slimming with onnxslim...")
        proto, note = slim(proto)
        _log(note)

    from sspnet.export.metadata import export_metadata, write_metadata

    write_metadata(proto, export_metadata(config, flavor=flavor, imgsz=imgsz, batch=batch))
    proto.producer_name = "sspnet"
    onnx.checker.check_model(proto)
    lint_export(proto, trt_lint, _log)
    save_onnx(proto, out_path)
    size_mb = out_path.stat().st_size / 1e6
    _log(f"export success {time.perf_counter() - start:.1f}s, saved as {out_path} ({size_mb:.1f} MB)")

    if verify_images is not None:
        verify_export(model, out_path, flavor, imgsz, batch, verify_images)
    return out_path


def save_onnx(proto, path) -> Path:
    """Write an ONNX model atomically: a crash or a full disk leaves the previous file (if any)
    untouched, never a truncated one (sspnet.io.atomic)."""
    import onnx

    return atomic_write(path, lambda f: onnx.save(proto, f))


def verify_export(model, onnx_path, flavor: str, imgsz, batch, images_spec) -> dict:
    """Run PyTorch and the exported graph on the same images; print and return the parity stats."""
    from sspnet.export.parity import compare_detections, print_parity, run_onnx, run_pytorch, verification_images

    images = verification_images(images_spec, imgsz)
    runner = "ONNX Runtime" if flavor == "portable" else "onnx ReferenceEvaluator (plugins in Python)"
    if flavor == "portable" and model.config.nms_method != "hard":
        # Compare like with like: the portable graph has hard NMS, so the reference does too.
        model = copy.deepcopy(model)
        model.config.nms_method = "hard"
        runner += "; PyTorch switched to hard NMS like the graph"
    _log(f"verifying on {len(images)} images: PyTorch eager vs {runner}...")
    start = time.perf_counter()
    batch_size = 2 if batch == "dynamic" else int(batch)
    reference = run_pytorch(model, images, batch_size=batch_size)
    exported = run_onnx(onnx_path, images, flavor, batch_size=batch_size)
    stats = compare_detections(reference, exported)
    print_parity({f"{flavor} ({Path(onnx_path).name})": stats})
    _log(f"verification done in {time.perf_counter() - start:.1f}s")
    return stats


def contract_shapes(model_path) -> dict[str, tuple[str, list]]:
    """{name: (ONNX element type name, shape with dim names or ints)} of a graph's inputs/outputs."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    result = {}
    for value in list(model.graph.input) + list(model.graph.output):
        tensor = value.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
        result[value.name] = (onnx.TensorProto.DataType.Name(tensor.elem_type), dims)
    return result


__all__ = ["export_onnx", "export_module", "save_onnx", "translation_table", "verify_export", "FLAVORS"]
