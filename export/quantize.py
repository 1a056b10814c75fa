"""Post-training INT8 quantization of an exported sspnet ONNX model into an explicit Q/DQ graph.

    from sspnet.export.quantize import QuantizeSettings, quantize_onnx
    report = quantize_onnx("model.onnx", "model_int8.onnx", "data/synth", QuantizeSettings(method="entropy"))

`sspnet quantize MODEL.onnx --calib IMAGES_OR_DATA --out MODEL_int8.onnx` is the command.

The quantizer: ONNX Runtime's (`onnxruntime.quantization`: calibrators + QDQ quantizer). It ships
with the runtime this toolkit already depends on, its MinMax / Entropy / Percentile calibrators are
maintained and tested upstream (no calibration maths here), and it writes standard ONNX
QuantizeLinear / DequantizeLinear nodes with per-axis weights, which is TensorRT's explicit
quantization input (the only INT8 route TensorRT 11 keeps). NVIDIA's Model Optimizer places Q/DQ
for TensorRT too and is the reference benchmarks/bench_int8.py compares with, but it calibrates
TensorRT plugin nodes only through TensorRT, so it cannot quantize a `tensorrt`-flavour export on
a CPU (docs/int8.md).

Two forms (`activations`):
  symmetric (default)  int8 activations with zero point 0, int8 per-channel symmetric weights, float
                       biases: the form TensorRT 10/11 builds (it accepts no other zero point and no
                       int32 bias). Its Q/DQ nodes are moved to where TensorRT fuses them
                       (`placement`, export/trt_placement.py) and its other layers are fp16 with
                       post-processing in fp32 (`float_type`, export/float16_form.py): TensorRT 11
                       runs every layer in the type the ONNX gives it. ONNX Runtime runs it too, but
                       on x86 it cannot fold a ReLU into a quantized Conv when the zero point is 0
                       (ReLU is only redundant when the zero point is the range's bottom), so most
                       convolutions stay float there.
  asymmetric           uint8 activations (zero point from calibration), int8 per-channel weights
                       limited to 7 bits (reduce_range: no int16 saturation in AVX2's u8 x s8 dot
                       product on CPUs without VNNI), int32 biases: ONNX Runtime's form for x86
                       CPUs, where every Conv+ReLU becomes one QLinearConv. TensorRT cannot build it.

What is quantized: the network body, found from the graph: every node of a quantizable type whose
outputs are 4-D feature maps (backbone, neck and head convolutions with their ReLU, Add, Mul,
Resize, MaxPool, Concat), plus fully connected layers with constant weights (Faster R-CNN's box
head). Box decoding, score sigmoids, TopK, NMS, RoiAlign and every other post-processing node
always stay float. `float_groups` keep more in float (measured by benchmarks/bench_int8.py):

    attention  SSPNet's attention branch: the CAM.att_conv layers, their sigmoid maps and every
               gating Mul / Add / Resize they feed, up to the next convolution
    box        the final box-regression layers (conv_reg / rpn_reg / fc_reg): NMS box inputs
    score      the final classification layers (conv_cls / rpn_cls / fc_cls): NMS score inputs

Defaults (percentile calibration, no float group) are chosen by measured AP50-tiny on trained
demo models: the methods land within noise of each other and of fp32, and no float group is needed
(the bench's rule: the fewest float layers within 1.0 point of fp32). A model with wider logit or
regression ranges can keep groups in float with `--float`. Measured numbers:
benchmarks/results/int8.json (docs page results/int8.md).

Calibration: a folder of images, or a data folder's split (DIR/annotations/<split>.json). Every
image is cut into tiles of the model's input size exactly as the runtime's Detector does (a frame
of the input size is one tile), and up to `max_tiles` tiles, spread over the images and over each
image's tiles, are fed through the float body with a progress bar. Ranges are computed on the body
alone (a sub-graph ending where post-processing begins), so a `tensorrt`-flavour model, whose
plugin nodes ONNX Runtime cannot run, is calibrated the same way, except for the layers a plugin
feeds: Faster R-CNN's RoI box head (after the RoIAlign plugin) stays float in the `tensorrt` flavour
(reported as kept float "after plugins"); FoveaBox, whose only plugin is the final NMS, loses nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError

from .float16_form import fp16_region, to_float16
from .trt_placement import place_for_tensorrt

METHODS = ("minmax", "entropy", "percentile")
ACTIVATIONS = ("symmetric", "asymmetric")
PLACEMENTS = ("tensorrt", "onnxruntime")  # where the symmetric form's Q/DQ nodes sit (export/trt_placement.py)
FLOAT_TYPES = ("fp16", "fp32")  # the symmetric form's non-int8 layers (export/float16_form.py)
FLOAT_GROUPS = ("attention", "box", "score")
# Chosen by measured AP50-tiny: benchmarks/bench_int8.py on the demo model (see the module docstring).
DEFAULT_METHOD = "percentile"
DEFAULT_FLOAT_GROUPS: tuple[str, ...] = ()
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
METADATA_KEY = "quantization"  # metadata_props entry describing the Q/DQ model

# Node types that are part of the quantized body when their outputs are feature maps.
BODY_OP_TYPES = (
    "Conv",
    "Relu",
    "Add",
    "Mul",
    "Resize",
    "MaxPool",
    "Concat",
    "Sigmoid",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Expand",
)
WEIGHTED_OP_TYPES = ("Conv", "Gemm", "MatMul")
GROUP_WEIGHT_PATTERNS = {
    "box": re.compile(r"(conv_reg|rpn_reg|fc_reg)\.weight$"),
    "score": re.compile(r"(conv_cls|rpn_cls|fc_cls)\.weight$"),
    "attention": re.compile(r"CAM\.att_conv\.\d+\.weight$"),
}
# What the attention closure may pass through (the gating arithmetic), stopping at the next layer.
ATTENTION_PASS_THROUGH = ("Sigmoid", "Resize", "Mul", "Add", "Expand", "Concat")


@dataclass
class QuantizeSettings:
    """How to quantize (see the module docstring)."""

    method: str = DEFAULT_METHOD
    float_groups: tuple[str, ...] = DEFAULT_FLOAT_GROUPS
    activations: str = "symmetric"
    max_tiles: int = 64
    split: str = "train"  # for a data folder
    tile_overlap: int = 30
    reduce_range: bool | None = None  # None: True for asymmetric (x86 without VNNI), False for symmetric
    percentile: float = 99.999
    progress: bool = True
    placement: str = "tensorrt"  # symmetric form only; "onnxruntime" keeps ONNX Runtime's own placement
    float_type: str | None = None  # None: fp16 for the symmetric form, fp32 for the asymmetric one

    def check(self) -> None:
        if self.method not in METHODS:
            raise UsageError(
                "unknown calibration method", field="--method", expected=" / ".join(METHODS), got=self.method
            )
        if self.activations not in ACTIVATIONS:
            raise UsageError(
                "unknown activation form", field="--activations", expected=" / ".join(ACTIVATIONS), got=self.activations
            )
        unknown = [g for g in self.float_groups if g not in FLOAT_GROUPS]
        if unknown:
            raise UsageError(
                "unknown float group", field="--float", expected=", ".join(FLOAT_GROUPS), got=", ".join(unknown)
            )
        if isinstance(self.max_tiles, bool) or not isinstance(self.max_tiles, int) or self.max_tiles < 1:
            raise UsageError(
                "the calibration needs at least one tile",
                field="--max-tiles",
                expected="an integer >= 1",
                got=self.max_tiles,
            )
        if not 0.0 < self.percentile <= 100.0:
            raise UsageError(
                "percentile out of range", field="--percentile", expected="in (0, 100]", got=self.percentile
            )
        if self.placement not in PLACEMENTS:
            raise UsageError(
                "unknown Q/DQ placement", field="--placement", expected=" / ".join(PLACEMENTS), got=self.placement
            )
        if self.float_type is not None and self.float_type not in FLOAT_TYPES:
            raise UsageError(
                "unknown float type", field="--float-type", expected=" / ".join(FLOAT_TYPES), got=self.float_type
            )
        if self.activations == "asymmetric" and self.float_type == "fp16":
            raise UsageError(
                "the asymmetric (ONNX Runtime CPU) form keeps its float layers in fp32",
                field="--float-type",
                expected="fp32 with --activations asymmetric",
                got="fp16",
            )

    @property
    def resolved_float_type(self) -> str:
        if self.float_type is not None:
            return self.float_type
        return "fp16" if self.activations == "symmetric" else "fp32"

    @property
    def weight_bits_reduced(self) -> bool:
        return self.activations == "asymmetric" if self.reduce_range is None else bool(self.reduce_range)


def _ort_quantization():
    try:
        import onnxruntime.quantization as quantization
    except ImportError as error:
        raise MissingDependencyError("INT8 quantization needs onnxruntime (pip install 'sspnet[runtime]')") from error
    return quantization


# ---- the model ------------------------------------------------------------------------------------


def load_sspnet_model(path: str | Path):
    """(onnx.ModelProto, ModelMetadata) of an exported float sspnet model; InputError otherwise."""
    import onnx
    from sspnet.runtime.backend import MetadataError, ModelMetadata

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError("sspnet quantize reads an exported .onnx model", path=path, expected=".onnx", got=path.suffix)
    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError / OSError subclasses for a non-ONNX file
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(f"not a readable ONNX model ({type(error).__name__})", path=path) from None
    props = {prop.key: prop.value for prop in model.metadata_props}
    try:
        metadata = ModelMetadata.from_props(props, source=str(path))
    except MetadataError as error:
        raise InputError(f"{error}; quantize an export of `sspnet export`") from None
    if METADATA_KEY in props or any(
        node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node
    ):
        raise InputError(
            "the model is already quantized (it has QuantizeLinear / DequantizeLinear nodes); "
            "quantize the float export",
            path=path,
        )
    return model, metadata


def _tensor_ranks(model) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        if tensor.elem_type == onnx.TensorProto.FLOAT and tensor.HasField("shape"):
            ranks[value.name] = len(tensor.shape.dim)
    return ranks


@dataclass
class BodyPlan:
    """Which nodes are quantized, which stay float and why, and where post-processing begins."""

    quantize: list[str]  # node names
    kept_float: dict[str, list[str]]  # float group -> node names taken out of the body
    boundary: list[str]  # body tensors that post-processing (or a graph output) reads
    op_types: list[str]


AFTER_PLUGINS = "after plugins"  # kept_float entry: body layers fed by a TensorRT plugin node
STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")


def _after_plugin_nodes(model) -> set[str]:
    """Names of the nodes that depend on a plugin node's output (nodes are in topological order)."""
    tainted, names = set(), set()
    for node in model.graph.node:
        if node.domain not in STANDARD_DOMAINS or any(name in tainted for name in node.input):
            tainted.update(node.output)
            if node.domain in STANDARD_DOMAINS:
                names.add(node.name)
    return names


def plan_body(model, float_groups=()) -> BodyPlan:
    """Select the quantized body of `model` (see the module docstring)."""
    ranks = _tensor_ranks(model)
    initializers = {init.name for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)

    def constant_weight(node) -> str | None:
        if node.op_type in WEIGHTED_OP_TYPES and len(node.input) > 1 and node.input[1] in initializers:
            return node.input[1]
        return None

    body = {}
    for node in model.graph.node:
        feature_maps = node.output and all(ranks.get(out) == 4 for out in node.output)
        fully_connected = node.op_type in ("Gemm", "MatMul") and constant_weight(node) is not None
        after_fc = (
            node.op_type == "Relu"
            and node.input[0] in producers
            and producers[node.input[0]].op_type in ("Gemm", "MatMul")
            and producers[node.input[0]].name in body
        )
        if (node.op_type in BODY_OP_TYPES and feature_maps) or fully_connected or after_fc:
            body[node.name] = node

    kept_float: dict[str, list[str]] = {}
    after_plugins = _after_plugin_nodes(model)
    if any(name in body for name in after_plugins):
        # ONNX Runtime cannot run the TensorRT plugin nodes, so what they feed cannot be calibrated:
        # Faster R-CNN's RoI box head (after RoIAlign) stays float in the tensorrt flavour.
        kept_float[AFTER_PLUGINS] = sorted(name for name in body if name in after_plugins)
        body = {name: node for name, node in body.items() if name not in after_plugins}
    for group in float_groups:
        pattern = GROUP_WEIGHT_PATTERNS[group]
        seeds = [node for node in body.values() if (w := constant_weight(node)) is not None and pattern.search(w)]
        members = {node.name: node for node in seeds}
        if group == "attention":  # the maps and the gating arithmetic they feed, up to the next layer
            frontier = list(seeds)
            while frontier:
                node = frontier.pop()
                for out in node.output:
                    for consumer in consumers[out]:
                        if (
                            consumer.name in body
                            and consumer.name not in members
                            and consumer.op_type in ATTENTION_PASS_THROUGH
                        ):
                            members[consumer.name] = consumer
                            frontier.append(consumer)
        kept_float[group] = sorted(members)
    excluded = {name for names in kept_float.values() for name in names}
    quantize = [name for name in body if name not in excluded]
    quantized = set(quantize)

    graph_outputs = {out.name for out in model.graph.output}
    boundary = []
    for node in model.graph.node:
        if node.name not in quantized:
            continue
        for out in node.output:
            if out in graph_outputs or any(c.name not in quantized for c in consumers[out]):
                boundary.append(out)
    if not quantize:
        raise InputError("found no layers to quantize in the model (no 4-D convolution feature maps)")
    return BodyPlan(
        quantize=quantize,
        kept_float=kept_float,
        boundary=boundary,
        op_types=sorted({body[name].op_type for name in quantize}),
    )


def body_submodel(model, plan: BodyPlan, path: Path) -> Path:
    """The float sub-graph from the images input to the body's boundary tensors (standard ops only)."""
    import onnx
    from onnx.utils import Extractor

    inputs = [value.name for value in model.graph.input if value.name not in {i.name for i in model.graph.initializer}]
    sub = Extractor(model).extract_model(inputs, plan.boundary)
    onnx.save(sub, str(path))
    return path


# ---- calibration data ------------------------------------------------------------------------------


def calibration_images(source: str | Path, split: str = "train") -> list[Path]:
    """Image files of a folder (sorted by name), or of a data folder's split."""
    source = Path(source)
    if not source.exists():
        raise InputError("calibration data not found", path=source)
    if not source.is_dir():
        raise InputError(
            "calibration data must be a folder of images or a data folder",
            path=source,
            expected="a folder",
            got="a file",
        )
    annotations = source / "annotations" / f"{split}.json"
    if annotations.is_file():
        from sspnet.data.tinyperson import dataset_paths, load_annotations

        gt_path, image_root = dataset_paths(source, split)
        paths = [Path(record.path) for record in load_annotations(gt_path, image_root=image_root).records]
        seen = set()
        paths = [p for p in paths if not (p in seen or seen.add(p))]  # corner records share files
    elif (source / "annotations").is_dir():
        available = sorted(p.stem for p in (source / "annotations").glob("*.json"))
        raise InputError(
            "the data folder has no such split",
            path=source,
            field="--split",
            expected=" / ".join(available) or "an annotations/<split>.json",
            got=split,
        )
    else:
        paths = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError("no calibration images", path=source, expected=f"{'/'.join(IMAGE_SUFFIXES)} files")
    return paths


def read_rgb(path: Path) -> np.ndarray:
    """uint8 [H, W, 3] RGB; InputError naming the file when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError("calibration image cannot be read", path=path, got=type(error).__name__) from None


def _spread(count: int, take: int) -> list[int]:
    """`take` indices spread evenly over range(count) (all of them when take >= count)."""
    if take >= count:
        return list(range(count))
    return sorted({int(k * count / take) for k in range(take)})


def calibration_tiles(paths: list[Path], input_size: tuple[int, int], max_tiles: int, overlap: int = 30):
    """Yield up to `max_tiles` uint8 [1, 3, H, W] RGB model inputs: tiles cut as the Detector cuts
    frames (runtime.tiling), spread over the images and over each image's tiles."""
    from sspnet.runtime.tiling import cut_tiles, tile_grid

    tile_h, tile_w = input_size
    chosen = [paths[k] for k in _spread(len(paths), max_tiles)]
    per_image = math.ceil(max_tiles / len(chosen))
    produced = 0
    for path in chosen:
        image = read_rgb(path)
        grid = tile_grid(image.shape[0], image.shape[1], tile_h, tile_w, min(overlap, min(tile_h, tile_w) - 1))
        grid = grid[_spread(len(grid), per_image)]
        for tile in cut_tiles(image, grid, tile_h, tile_w):
            if produced == max_tiles:
                return
            produced += 1
            yield np.ascontiguousarray(tile.transpose(2, 0, 1)[None])


def count_calibration_tiles(paths: list[Path], input_size: tuple[int, int], max_tiles: int, overlap: int = 30) -> int:
    """How many tiles calibration_tiles yields (reads only image sizes)."""
    from PIL import Image
    from sspnet.runtime.tiling import tile_grid

    total, chosen = 0, [paths[k] for k in _spread(len(paths), max_tiles)]
    per_image = math.ceil(max_tiles / len(chosen))
    for path in chosen:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise InputError("calibration image cannot be read", path=path, got=type(error).__name__) from None
        grid = tile_grid(height, width, input_size[0], input_size[1], min(overlap, min(input_size) - 1))
        total += min(per_image, len(grid))
    return min(total, max_tiles)


def calibration_method(quantization, method: str):
    """ONNX Runtime's CalibrationMethod for one of METHODS."""
    return {
        "minmax": quantization.CalibrationMethod.MinMax,
        "entropy": quantization.CalibrationMethod.Entropy,
        "percentile": quantization.CalibrationMethod.Percentile,
    }[method]


@contextlib.contextmanager
def quiet_onnxruntime_logging():
    """Silence the hints ONNX Runtime's quantizer logs (through the root logger) for the duration
    only: the caller's logging configuration is restored afterwards."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def calibrate(
    body_path: Path,
    tiles,
    total: int,
    method: str,
    settings: QuantizeSettings,
    input_name: str,
    op_types: list[str],
    work: Path,
):
    """Run ONNX Runtime's calibrator over the tiles; returns its TensorsData (tensor ranges)."""
    quantization = _ort_quantization()
    # MinMax ranges are kept as measured (the quantizer symmetrises them for the symmetric form), so
    # one MinMax calibration serves both forms; the histogram methods search thresholds per form.
    options = {"symmetric": settings.activations == "symmetric" and method != "minmax"}
    if method == "percentile":
        options["percentile"] = settings.percentile
    calibrator = quantization.create_calibrator(
        body_path,
        op_types,
        augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=calibration_method(quantization, method),
        extra_options=options,
    )
    progress = None
    if settings.progress:
        from tqdm import tqdm

        progress = tqdm(total=total, desc=f"calibration ({method})", unit="tile")
    chunk: list[np.ndarray] = []
    done = 0

    def flush():
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime's calibrators print as they go
            calibrator.collect_data(_Reader(input_name, chunk))  # bounded memory: a few tiles at a time
        if progress is not None:
            progress.update(len(chunk))
        chunk.clear()

    try:
        for tile in tiles:
            chunk.append(tile)
            done += 1
            if len(chunk) == 8:
                flush()
        if chunk:
            flush()
    finally:
        if progress is not None:
            progress.close()
    if done == 0:
        raise InputError("calibration produced no tiles")
    with contextlib.redirect_stdout(io.StringIO()):
        return calibrator.compute_data()


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of model inputs."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self.input_name = input_name
        self.batches = iter(list(batches))

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}


# ---- quantize ------------------------------------------------------------------------------------------


@dataclass
class QuantizeReport:
    out: str
    method: str
    activations: str
    float_groups: list[str]
    calibration: dict
    quantized_nodes: int
    kept_float: dict
    qdq: dict
    seconds: dict = field(default_factory=dict)
    placement: str = "onnxruntime"
    float_type: str = "fp32"
    placement_stats: dict | None = None


def quantize_onnx(
    model_path,
    out_path,
    calib,
    settings: QuantizeSettings | None = None,
    calibration_cache: str | Path | None = None,
    log=print,
) -> QuantizeReport:
    """Quantize `model_path` into a Q/DQ model at `out_path` (written atomically).

    calib: a folder of images or a data folder (see calibration_images). calibration_cache: a JSON
    file of tensor ranges to reuse (written after the first calibration; benchmarks reuse it across
    float-group variants); None calibrates every time."""
    import onnx

    from sspnet.io.atomic import atomic_output

    settings = settings or QuantizeSettings()
    settings.check()
    quantization = _ort_quantization()
    started = time.perf_counter()
    model, metadata = load_sspnet_model(model_path)
    plan = plan_body(model, settings.float_groups)
    input_name = next(value.name for value in model.graph.input)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="sspnet-quantize-") as tmp:
        work = Path(tmp)
        cache = Path(calibration_cache) if calibration_cache else work / "ranges.json"
        calibration_info = {"source": str(calib), "split": settings.split, "cache": str(calibration_cache or "")}
        if cache.is_file():
            log(f"calibration ranges from {cache}")
            calibration_info["reused"] = True
        else:
            paths = calibration_images(calib, settings.split)
            total = count_calibration_tiles(paths, metadata.input_size, settings.max_tiles, settings.tile_overlap)
            full_plan = plan_body(model, ())  # ranges for every body tensor: any float-group choice can reuse them
            body = body_submodel(model, full_plan, work / "body.onnx")
            log(
                f"calibrating on {total} tiles of {metadata.input_size[0]}x{metadata.input_size[1]} from "
                f"{len(paths)} images ({settings.method})"
            )
            start = time.perf_counter()
            tiles = calibration_tiles(paths, metadata.input_size, settings.max_tiles, settings.tile_overlap)
            ranges = calibrate(body, tiles, total, settings.method, settings, input_name, full_plan.op_types, work)
            quantization.save_tensors_data(ranges, cache)
            seconds["calibration"] = time.perf_counter() - start
            calibration_info.update(images=len(paths), tiles=total)

        start = time.perf_counter()
        source = work / "model.onnx"
        onnx.save(model, str(source))
        symmetric = settings.activations == "symmetric"
        extra = {
            "ActivationSymmetric": symmetric,
            "WeightSymmetric": True,
            "QuantizeBias": not symmetric,  # TensorRT takes float biases; ORT's QLinearConv needs int32 ones
        }
        with quiet_onnxruntime_logging():  # the pre-processing hint
            quantization.quantize_static(
                str(source),
                str(work / "quantized.onnx"),
                calibration_data_reader=None,
                calibration_cache_path=str(cache),
                quant_format=quantization.QuantFormat.QDQ,
                op_types_to_quantize=plan.op_types,
                nodes_to_quantize=plan.quantize,
                per_channel=True,
                reduce_range=settings.weight_bits_reduced,
                activation_type=quantization.QuantType.QInt8 if symmetric else quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                calibrate_method=calibration_method(quantization, settings.method),
                extra_options=extra,
            )
        quantized = onnx.load(str(work / "quantized.onnx"))
        placement = None
        float_type = settings.resolved_float_type
        if symmetric and settings.placement == "tensorrt":
            quantized, placement = place_for_tensorrt(quantized, model, share_concat_scales=float_type == "fp32")
        if float_type == "fp16":
            body = set(plan.quantize) | set(plan.kept_float.get(AFTER_PLUGINS, []))
            body |= {
                node.name for node in quantized.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
            }
            quantized = to_float16(quantized, fp16_region(quantized, body))
        seconds["quantize"] = time.perf_counter() - start

    import onnxruntime

    description = {
        "format": "qdq",
        "activations": settings.activations,
        "activation_type": "int8" if symmetric else "uint8",
        "weights": "int8 per-channel symmetric" + (" (7-bit range)" if settings.weight_bits_reduced else ""),
        "bias": "float" if symmetric else "int32",
        "method": settings.method,
        "float_groups": list(settings.float_groups),
        "tensorrt_compatible": symmetric,
        "tool": f"onnxruntime.quantization {onnxruntime.__version__}",
        "calibration": calibration_info,
        "placement": settings.placement if symmetric else "onnxruntime",
        "float_type": float_type,
    }
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(
        quantized,
        {**{p.key: p.value for p in model.metadata_props}, METADATA_KEY: json.dumps(description, sort_keys=True)},
    )
    quantized.producer_name = "sspnet"
    onnx.checker.check_model(quantized)
    with atomic_output(out_path) as tmp_out:
        onnx.save(quantized, str(tmp_out))
    seconds["total"] = time.perf_counter() - started
    report = QuantizeReport(
        out=str(out_path),
        method=settings.method,
        activations=settings.activations,
        float_groups=list(settings.float_groups),
        calibration=calibration_info,
        quantized_nodes=len(plan.quantize),
        kept_float=plan.kept_float,
        qdq=qdq_summary(quantized),
        seconds=seconds,
        placement=description["placement"],
        float_type=float_type,
        placement_stats=None if placement is None else asdict(placement),
    )
    return report


# ---- what a Q/DQ graph holds ---------------------------------------------------------------------------


def qdq_summary(model) -> dict:
    """Facts of a Q/DQ graph: node counts, the element types and zero points of its Q/DQ pairs, and
    which weighted layers have per-channel int8 weights and which stayed float."""
    import onnx
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    q_nodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dq_nodes = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    zero_point_types, nonzero_zero_points = set(), 0
    for node in q_nodes + dq_nodes:
        if len(node.input) > 2 and node.input[2] in initializers:
            zero_point = initializers[node.input[2]]
            zero_point_types.add(onnx.TensorProto.DataType.Name(zero_point.data_type))
            nonzero_zero_points += int(np.count_nonzero(numpy_helper.to_array(zero_point)))
    per_channel, per_tensor, float_layers = [], [], []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OP_TYPES or len(node.input) < 2:
            continue
        source = producers.get(node.input[1])
        if source is None or source.op_type != "DequantizeLinear":
            if node.input[1] in initializers:
                float_layers.append(node.name)
            continue
        weight = initializers.get(source.input[0])
        scale = initializers.get(source.input[1])
        if weight is None or scale is None:
            continue
        channels = weight.dims[0] if node.op_type == "Conv" else weight.dims[-1]
        one_scale_per_channel = len(scale.dims) == 1 and scale.dims[0] == channels
        (per_channel if one_scale_per_channel else per_tensor).append(node.name)
    return {
        "quantize_linear": len(q_nodes),
        "dequantize_linear": len(dq_nodes),
        "zero_point_types": sorted(zero_point_types),
        "nonzero_zero_points": nonzero_zero_points,
        "per_channel_weight_layers": len(per_channel),
        "per_tensor_weight_layers": len(per_tensor),
        "float_weight_layers": sorted(float_layers),
    }


def read_quantization(model_path) -> dict | None:
    """The "quantization" metadata entry of a model written by quantize_onnx (None for a float model)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


__all__ = [
    "ACTIVATIONS",
    "DEFAULT_FLOAT_GROUPS",
    "DEFAULT_METHOD",
    "FLOAT_GROUPS",
    "FLOAT_TYPES",
    "METHODS",
    "PLACEMENTS",
    "QuantizeReport",
    "QuantizeSettings",
    "calibration_images",
    "calibration_tiles",
    "plan_body",
    "qdq_summary",
    "quantize_onnx",
    "read_quantization",
]
