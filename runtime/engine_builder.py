"""ONNX (`tensorrt` flavour) -> TensorRT engine + JSON sidecar. CLI: `sspnet build-engine`.

    engine, sidecar = build_engine("model_trt.onnx", options=BuildOptions(precision="fp16", batch=(1, 4, 8)))

What a build does (TensorRT 10; TensorRT 11 differences in brackets):
- loads libsspnet_trt_plugins.so and checks its creators are registered (the ONNX parser finds the
  plugin nodes by op type + plugin_version + plugin_namespace);
- parses the ONNX; precision fp32 / fp16 with builder flags [11: no precision flags, the network is
  strongly typed, so an fp16 engine needs an ONNX exported in fp16]; int8 either from a Q/DQ model
  (`sspnet quantize`, symmetric form: explicit quantization, no calibrator; the sidecar records
  "int8": "explicit-qdq") or with an entropy calibrator over a folder of images and a reusable
  calibration cache [11: implicit calibration is gone, INT8 needs a Q/DQ model, built strongly
  typed; see INT8_ON_TENSORRT_11];
- one optimisation profile for the batch range (min, opt, max) of a dynamic-batch ONNX;
- workspace limit, optional timing cache (read and updated), optional DLA core with GPU fallback
  (the sspnet plugins only run on the GPU);
- writes the engine and its sidecar (runtime/sidecar.py), the timing cache and the calibration
  cache atomically (sspnet.io.atomic), and prints the equivalent trtexec command.

build_engine runs these steps in order: parse_network (TensorRT's ONNX parser), configure_builder
(precision flags, batch profile, DLA, timing cache), attach_calibrator (INT8 entropy calibration),
then write_outputs (engine, timing cache, sidecar), each tested against fake TensorRT objects. The
option checks, the output-path checks (check_build_outputs), the precision plan and the trtexec
command are pure functions; `tensorrt` is imported (runtime/tensorrt_common.py) only inside
build_engine / write_sidecar_only, after the ONNX file has been read and every output path checked,
so a missing ONNX is reported as a missing file, not as a TensorRT problem.
"""

from __future__ import annotations

import errno
import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from sspnet.errors import InputError, MissingDependencyError, UsageError
from sspnet.io.atomic import atomic_write, atomic_write_bytes
from sspnet.io.outputs import OutputGuard, sniff_kind

from .backend import ModelMetadata
from .contract import INPUT_NAME
from .sidecar import (
    expected_plugin_versions,
    make_sidecar,
    read_onnx_metadata,
    sha256_of,
    sidecar_path,
    tensorrt_major,
    write_sidecar,
)
from .tensorrt_common import gpu_facts, import_tensorrt, load_plugin_library, registered_plugin_versions

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_BATCH = (1, 4, 8)
MIN_TENSORRT_MAJOR = 10  # IPluginV3

INT8_ON_TENSORRT_11 = (
    "TensorRT 11 removed implicit INT8 calibration (IInt8Calibrator and the INT8 builder flag). "
    "Build INT8 from a model with Q/DQ nodes instead: (1) `sspnet quantize MODEL.onnx --calib IMAGES_OR_DATA "
    "--out MODEL_int8.onnx` (symmetric int8, the form TensorRT needs); (2) `sspnet build-engine MODEL_int8.onnx` "
    "(a Q/DQ model builds as INT8 and needs no calibrator)."
)


@dataclass(frozen=True)
class BuildOptions:
    """Everything `sspnet build-engine` can set. batch is (min, opt, max) for a dynamic-batch ONNX
    (None: DEFAULT_BATCH, or the ONNX's fixed batch)."""

    precision: str = "fp16"
    batch: tuple[int, int, int] | None = None
    workspace_mib: int = 1024
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = False
    strongly_typed: bool = False
    calibration_images: Path | None = None
    calibration_cache: Path | None = None
    calibration_batch: int = 8
    calibration_max_images: int = 512
    plugin_library: Path | None = None
    device: int = 0
    verbose: bool = False


@dataclass(frozen=True)
class PrecisionPlan:
    """How a precision request becomes builder settings on one TensorRT version."""

    flags: tuple[str, ...]  # tensorrt.BuilderFlag names to set
    strongly_typed: bool  # create the network with NetworkDefinitionCreationFlag.STRONGLY_TYPED
    calibrate: bool  # attach an INT8 entropy calibrator
    note: str = ""  # what the user should know (printed)


# ---- pure option logic --------------------------------------------------------------------------


def parse_batch(spec) -> tuple[int, int, int]:
    """ "8" / 8 -> (8, 8, 8); "1,4,8" / (1, 4, 8) -> (1, 4, 8); needs 1 <= min <= opt <= max."""
    if isinstance(spec, bool):
        raise UsageError(f"batch must be N or MIN,OPT,MAX, got {spec!r}")
    if isinstance(spec, str):
        try:
            values = [int(part) for part in spec.split(",")]
        except ValueError:
            raise UsageError(f"batch must be N or MIN,OPT,MAX (integers), got {spec!r}") from None
    elif isinstance(spec, int) and not isinstance(spec, bool):
        values = [spec]
    else:
        values = list(spec)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UsageError(f"batch must be N or MIN,OPT,MAX, got {spec!r}")
    smallest, optimum, largest = values
    if not 1 <= smallest <= optimum <= largest:
        raise UsageError(f"batch needs 1 <= MIN <= OPT <= MAX, got {smallest},{optimum},{largest}")
    return smallest, optimum, largest


def resolve_batch(requested: tuple[int, int, int] | None, onnx_batch: int | None) -> tuple[int, int, int]:
    """The profile's batch range: an ONNX with a fixed batch B only allows (B, B, B)."""
    if onnx_batch is not None:
        if requested is not None and tuple(requested) != (onnx_batch,) * 3:
            raise UsageError(
                f"the ONNX has a fixed batch of {onnx_batch}; --batch {','.join(map(str, requested))} "
                "needs an ONNX exported with --batch dynamic"
            )
        return (onnx_batch,) * 3
    return parse_batch(requested if requested is not None else DEFAULT_BATCH)


def qdq_layer_precisions(trt_major: int, strongly_typed: bool, float_type: str | None) -> dict[str, str]:
    """For a Q/DQ model: which layers run in int8, fp16 and fp32 on TensorRT `trt_major`.

    float_type: the model's non-int8 type as `sspnet quantize` recorded it ("fp16": the default
    TensorRT form, "fp32"); None for a Q/DQ model from another tool (taken as fp32)."""
    int8 = (
        "the layers between Q/DQ pairs: convolutions and fully connected layers with quantized inputs "
        "(with their fused bias, ReLU and residual Add), max pooling, shared-scale concats"
    )
    if trt_major < 11 and not strongly_typed:
        return {
            "int8": int8,
            "fp16": "every other layer where TensorRT finds fp16 faster (the FP16 flag), the plugins included",
            "fp32": "layers TensorRT times faster in fp32 or that have no fp16 kernel (weakly typed: its choice)",
        }
    if float_type == "fp16":
        return {
            "int8": int8,
            "fp16": (
                "the rest of the network body as the ONNX types it: activations, sigmoid gating, resizes, "
                "the RoIAlign plugin's features and output, Faster R-CNN's box head"
            ),
            "fp32": (
                "what the ONNX keeps in fp32: anchors and box decoding, scores before NMS, the NMS plugin, "
                "the RoI coordinates"
            ),
        }
    return {
        "int8": int8,
        "fp16": "nothing: the ONNX has no fp16 tensor",
        "fp32": (
            "every layer outside the Q/DQ pairs, plugins included (quantize again with `sspnet quantize`'s "
            "default --float-type fp16 for the fp16 TensorRT form)"
        ),
    }


def format_layer_precisions(precisions: dict[str, str]) -> str:
    return "; ".join(f"{kind}: {layers}" for kind, layers in precisions.items())


def precision_plan(
    precision: str,
    trt_major: int,
    strongly_typed: bool = False,
    has_qdq: bool = False,
    qdq_float_type: str | None = None,
) -> PrecisionPlan:
    """Builder settings for `precision` on TensorRT `trt_major`; UsageError when impossible."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if trt_major < MIN_TENSORRT_MAJOR:
        raise UsageError(f"TensorRT {trt_major} is too old: the sspnet plugins are IPluginV3 (TensorRT >= 10)")
    if trt_major >= 11 or strongly_typed:
        if precision == "int8" and not has_qdq:
            if trt_major >= 11:
                raise UsageError(INT8_ON_TENSORRT_11)
            raise UsageError(
                "a strongly typed INT8 build needs an ONNX with Q/DQ nodes (drop --strongly-typed to calibrate)"
            )
        why = f"TensorRT {trt_major} builds strongly typed networks" if trt_major >= 11 else "--strongly-typed"
        note = {
            "fp32": f"{why}: layers run in the ONNX model's own types",
            "fp16": f"{why}: there is no FP16 flag; the engine is fp16 only if the ONNX was exported in fp16",
            "int8": (
                f"{why}: INT8 comes from the model's Q/DQ nodes; "
                + format_layer_precisions(qdq_layer_precisions(trt_major, True, qdq_float_type))
            ),
        }[precision]
        return PrecisionPlan(flags=(), strongly_typed=True, calibrate=False, note=note)
    if precision == "fp32":
        return PrecisionPlan(flags=(), strongly_typed=False, calibrate=False)
    if precision == "fp16":
        return PrecisionPlan(flags=("FP16",), strongly_typed=False, calibrate=False)
    # INT8 plus FP16, so layers without an INT8 kernel (and the plugins) fall back to fp16, not fp32.
    note = ""
    if has_qdq:
        note = "Q/DQ model: INT8 scales come from the model, no calibration; " + format_layer_precisions(
            qdq_layer_precisions(trt_major, False, qdq_float_type)
        )
    return PrecisionPlan(flags=("FP16", "INT8"), strongly_typed=False, calibrate=not has_qdq, note=note)


def check_dla(dla_core: int | None, gpu_fallback: bool, precision: str) -> None:
    """DLA builds: fp16 / int8 only, and GPU fallback on (the plugin layers cannot run on DLA)."""
    if dla_core is None:
        if gpu_fallback:
            raise UsageError("--allow-gpu-fallback only applies with --dla-core")
        return
    if isinstance(dla_core, bool) or not isinstance(dla_core, int) or dla_core < 0:
        raise UsageError(f"dla_core must be a non-negative integer, got {dla_core!r}")
    if precision == "fp32":
        raise UsageError("DLA runs fp16 or int8 layers only: use --precision fp16 or int8 with --dla-core")
    if not gpu_fallback:
        raise UsageError(
            "the sspnet plugins (multi-level RoIAlign, batched NMS) run on the GPU only: "
            "a DLA build needs --allow-gpu-fallback"
        )


def onnx_has_qdq(path: str | Path) -> bool:
    """True when the ONNX holds QuantizeLinear / DequantizeLinear nodes (op types are plain strings
    in the protobuf, so a byte search suffices)."""
    data = Path(path).read_bytes()
    return b"QuantizeLinear" in data or b"DequantizeLinear" in data


def quantization_of(props: dict[str, str]) -> dict | None:
    """The "quantization" metadata entry `sspnet quantize` writes (None: float model, or a Q/DQ
    model from another tool)."""
    text = props.get("quantization")
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def resolve_precision(requested: str | None, has_qdq: bool) -> str:
    """--precision when given, else int8 for a Q/DQ model and fp16 for a float one."""
    if requested is not None:
        return requested
    return "int8" if has_qdq else "fp16"


def check_qdq_build(onnx_path: str | Path, props: dict[str, str], precision: str, has_qdq: bool) -> str | None:
    """How the engine gets its INT8 scales: "explicit-qdq" (from the model's Q/DQ nodes),
    "calibrated" (TensorRT 10's entropy calibrator), or None (no INT8). UsageError for a Q/DQ model
    built at another precision, or one quantized in the ONNX Runtime CPU form TensorRT cannot build."""
    if not has_qdq:
        return "calibrated" if precision == "int8" else None
    quantization = quantization_of(props)
    if quantization is not None and not quantization.get("tensorrt_compatible", True):
        raise UsageError(
            f"{onnx_path} is quantized in the ONNX Runtime CPU form (asymmetric uint8 activations, int32 biases), "
            "which TensorRT cannot build: quantize the float model again with `sspnet quantize ... "
            "--activations symmetric` (the default)",
            field="quantization.activations",
            expected="symmetric",
            got=quantization.get("activations"),
        )
    if precision != "int8":
        raise UsageError(
            f"{onnx_path} is a Q/DQ (INT8) model: its precision comes from its Q/DQ nodes; build it with "
            "--precision int8 (the default for a Q/DQ model)",
            field="--precision",
            expected="int8",
            got=precision,
        )
    return "explicit-qdq"


def trtexec_command(
    *,
    onnx: str | Path,
    engine: str | Path,
    plugin_library: str | Path,
    input_size: tuple[int, int],
    batch: tuple[int, int, int] | None,
    precision: str,
    trt_major: int,
    workspace_mib: int,
    strongly_typed: bool = False,
    has_qdq: bool = False,
    timing_cache: str | Path | None = None,
    dla_core: int | None = None,
    gpu_fallback: bool = False,
    calibration_cache: str | Path | None = None,
) -> list[str]:
    """The trtexec arguments equivalent to a build. batch None: a fixed-batch ONNX (no shape flags).

    TensorRT 10: --fp16 / --int8 (+ --calib=CACHE) / --stronglyTyped; TensorRT 11 has no precision
    flags (strong typing is the default), so none is written. INT8 without a calibration cache or
    Q/DQ model cannot be expressed (trtexec would use random scales): UsageError.
    """
    plan = precision_plan(precision, trt_major, strongly_typed, has_qdq)
    height, width = input_size
    command = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}", f"--staticPlugins={plugin_library}"]
    if batch is not None:
        for flag, size in zip(("--minShapes", "--optShapes", "--maxShapes"), batch):
            command.append(f"{flag}={INPUT_NAME}:{size}x3x{height}x{width}")
    if trt_major < 11:
        if plan.strongly_typed:
            command.append("--stronglyTyped")
        command += [f"--{flag.lower()}" for flag in plan.flags]
        if plan.calibrate:
            if calibration_cache is None:
                raise UsageError("trtexec can only repeat an INT8 build from its calibration cache (--calib)")
            command.append(f"--calib={calibration_cache}")
    command.append(f"--memPoolSize=workspace:{workspace_mib}M")
    if timing_cache is not None:
        command.append(f"--timingCacheFile={timing_cache}")
    if dla_core is not None:
        command.append(f"--useDLACore={dla_core}")
        if gpu_fallback:
            command.append("--allowGPUFallback")
    return command


def build_trtexec_command(
    onnx_path,
    engine_path,
    options: BuildOptions,
    *,
    plugin_library,
    input_size,
    batch,
    trt_major: int,
    has_qdq: bool,
    calibration_cache,
) -> list[str]:
    """trtexec_command for a build with `options` (batch None: a fixed-batch ONNX): the one place
    both `build_engine` and `build-engine --print-trtexec` spell it out."""
    return trtexec_command(
        onnx=onnx_path,
        engine=engine_path,
        plugin_library=plugin_library,
        input_size=input_size,
        batch=batch,
        precision=options.precision,
        trt_major=trt_major,
        workspace_mib=options.workspace_mib,
        strongly_typed=options.strongly_typed,
        has_qdq=has_qdq,
        timing_cache=options.timing_cache,
        dla_core=options.dla_core,
        gpu_fallback=options.gpu_fallback,
        calibration_cache=calibration_cache,
    )


def format_command(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)


def default_engine_path(onnx_path: str | Path, precision: str) -> Path:
    """model_trt.onnx -> model_trt_fp16.engine (next to the ONNX)."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}_{precision}.engine")


def default_calibration_cache(onnx_path: str | Path) -> Path:
    """model_trt.onnx -> model_trt.calib: one cache per ONNX, reused by every INT8 build of it."""
    return Path(onnx_path).with_suffix(".calib")


def read_model_metadata(onnx_path: str | Path) -> tuple[dict[str, str], ModelMetadata]:
    """(raw metadata_props, parsed ModelMetadata) of an exported ONNX. Needs no TensorRT.

    FileNotFoundError (with the path) when the file is missing; InputError (a ValueError) when it is
    not a `tensorrt`-flavour sspnet export."""
    props = read_onnx_metadata(onnx_path)
    metadata = ModelMetadata.from_props(props, source=str(onnx_path))
    if metadata.flavor != "tensorrt":
        raise InputError(
            f"{onnx_path}: flavour {metadata.flavor!r}; TensorRT engines are built from the `tensorrt` "
            "flavour (plugin nodes): sspnet export ... --flavor tensorrt"
        )
    return props, metadata


def save_calibration_array(batches, path: str | Path) -> Path:
    """All calibration images as one uint8 [N, 3, H, W] .npy (ModelOpt's calibration_data input)."""
    import numpy as np

    array = np.concatenate(list(batches))
    return atomic_write(path, lambda f: np.save(f, array))


def _check_cache_path(guard: OutputGuard, path: str | Path) -> Path:
    """A cache file is read if present and rewritten: it may replace an earlier cache (text or
    binary data) but never an input or a file of any other kind."""
    path = Path(path)
    existing = sniff_kind(path) if path.is_file() else None
    return guard.check_file(path, kind=existing if existing in ("text", "binary") else "binary")


def check_build_outputs(onnx_path: str | Path, engine_path: str | Path | None, options: BuildOptions) -> Path:
    """Before any work: the engine, its sidecar, the timing cache and (INT8) the calibration cache
    may be written without destroying an input (the ONNX, the calibration images, the plugin
    library) or another kind of file, and are distinct. Returns the engine path."""
    engine_path = Path(engine_path) if engine_path is not None else default_engine_path(onnx_path, options.precision)
    guard = OutputGuard(inputs=[onnx_path, options.calibration_images, options.plugin_library], verb="build-engine")
    outputs = {
        "--out": guard.check_file(engine_path, kind="tensorrt-engine"),
        "the sidecar": guard.check_file(sidecar_path(engine_path), kind="json"),
    }
    if options.timing_cache is not None:
        outputs["--timing-cache"] = _check_cache_path(guard, options.timing_cache)
    if options.precision == "int8":
        outputs["--calib-cache"] = _check_cache_path(
            guard, options.calibration_cache or default_calibration_cache(onnx_path)
        )
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        resolved = path.resolve()
        if resolved in seen:
            raise UsageError(f"{seen[resolved]} and {option} name the same file", path=path)
        seen[resolved] = option
    return engine_path


# ---- TensorRT -----------------------------------------------------------------------------------


def _parser_error(error) -> str:
    """One ONNX parser error as text (IParserError: desc() and the failing node's name)."""
    if callable(getattr(error, "desc", None)):
        node = error.node_name() if callable(getattr(error, "node_name", None)) else error.node()
        return f"{error.desc()} (node {node})"
    return str(error)


def _check_plugins(trt) -> dict[str, str]:
    """{name: version} of the sspnet plugins, after checking the loaded library registers them."""
    registered = registered_plugin_versions(trt)
    expected = expected_plugin_versions()
    missing = [f"{name} v{version}" for name, version in expected.items() if version not in registered.get(name, [])]
    if missing:
        raise MissingDependencyError(
            f"the loaded plugin library does not register {missing} (registered: {registered or 'none'}); "
            "rebuild libsspnet_trt_plugins.so from this sspnet checkout"
        )
    return expected


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path | None = None,
    options: BuildOptions = BuildOptions(),
    log=print,
) -> tuple[Path, dict]:
    """Build and write `engine_path` (default: default_engine_path) and its sidecar; return both.

    The ONNX is read and every output path checked (check_build_outputs) before TensorRT is
    imported; every file is written atomically."""
    onnx_path = Path(onnx_path)
    engine_path = check_build_outputs(onnx_path, engine_path, options)
    props, metadata = read_model_metadata(onnx_path)  # a missing ONNX: FileNotFoundError naming it
    trt = import_tensorrt()
    trt_major = tensorrt_major(trt.__version__)
    has_qdq = onnx_has_qdq(onnx_path)
    int8_source = check_qdq_build(onnx_path, props, options.precision, has_qdq)
    plan = precision_plan(
        options.precision,
        trt_major,
        options.strongly_typed,
        has_qdq,
        qdq_float_type=(quantization_of(props) or {}).get("float_type"),
    )
    check_dla(options.dla_core, options.gpu_fallback, options.precision)
    batch = resolve_batch(options.batch, metadata.batch)
    height, width = metadata.input_size
    if plan.note:
        log(f"note: {plan.note}")

    library = load_plugin_library(options.plugin_library)
    plugin_versions = _check_plugins(trt)
    gpu_name, capability = gpu_facts(options.device)
    log(f"TensorRT {trt.__version__}, GPU {gpu_name} (sm {capability}), plugins {library}")

    logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder, network = parse_network(trt, logger, onnx_path, plan, library)
    input_shape = network.get_input(0).shape
    config, dynamic = configure_builder(trt, builder, plan, options, input_shape, batch, metadata.input_size)
    calibration_cache = attach_calibrator(builder, config, plan, options, onnx_path, metadata, dynamic, log)

    command = build_trtexec_command(
        onnx_path,
        engine_path,
        options,
        plugin_library=library,
        input_size=(height, width),
        batch=batch if dynamic else None,
        trt_major=trt_major,
        has_qdq=has_qdq,
        calibration_cache=calibration_cache,
    )
    log("equivalent trtexec command:\n  " + format_command(command))
    log(f"building {engine_path} ({options.precision}, batch {batch[0]}..{batch[2]}, {height}x{width})...")
    serialized = builder.build_serialized_network(network, config)

    build = build_record(options, batch, plan, int8_source, props, calibration_cache, command)

    def sidecar_of_engine() -> dict:
        return _sidecar(
            props, onnx_path, engine_path, trt.__version__, plugin_versions, library, gpu_name, capability, build
        )

    sidecar = write_outputs(onnx_path, engine_path, serialized, config, options, sidecar_of_engine, log)
    return engine_path, sidecar


def parse_network(trt, logger, onnx_path: Path, plan: PrecisionPlan, library: Path):
    """(builder, network): TensorRT's ONNX parser run on `onnx_path`, strongly typed when the plan
    says so. InputError naming the file when the parser fails (with a hint when a plugin node is
    the cause) or when the network's inputs are not the contract's one `images` input."""
    builder = trt.Builder(logger)
    network_flags = 0
    if plan.strongly_typed:
        # TensorRT 11 may drop the flag: strong typing is the default there.
        strongly_typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed_flag is not None:
            network_flags |= 1 << int(strongly_typed_flag)
    network = builder.create_network(network_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(_parser_error(parser.get_error(i)) for i in range(parser.num_errors))
        hint = ""
        if "Plugin not found" in errors or "plugin" in errors.lower():
            hint = f" (the plugin nodes need libsspnet_trt_plugins.so built from this sspnet; loaded: {library})"
        raise InputError(f"TensorRT's ONNX parser failed on {onnx_path}: {errors}{hint}")
    if network.num_inputs != 1 or network.get_input(0).name != INPUT_NAME:
        raise InputError(
            f"{onnx_path}: the contract has one input {INPUT_NAME!r}, the network has "
            f"{[network.get_input(i).name for i in range(network.num_inputs)]}"
        )
    return builder, network


def configure_builder(
    trt,
    builder,
    plan: PrecisionPlan,
    options: BuildOptions,
    input_shape: tuple[int, ...],
    batch: tuple[int, int, int],
    input_size: tuple[int, int],
):
    """(config, dynamic): a builder config with the workspace limit, the plan's precision flags, one
    optimisation profile over `batch` when the network's input batch is dynamic (-1), DLA with GPU
    fallback when asked, and the timing cache (read from options.timing_cache when it exists)."""
    height, width = input_size
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    dynamic = any(int(d) < 0 for d in input_shape)
    if dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, *[(b, 3, height, width) for b in batch])
        config.add_optimization_profile(profile)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if options.timing_cache is not None:
        timing_path = Path(options.timing_cache)
        timing_cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
    return config, dynamic


def attach_calibrator(
    builder, config, plan: PrecisionPlan, options: BuildOptions, onnx_path: Path, metadata, dynamic: bool, log
) -> Path | None:
    """For a calibrated INT8 plan: attach the entropy calibrator (reading the calibration cache when
    it exists, else the images of --calib-images) and, for a dynamic batch, a calibration profile at
    the calibration batch. Returns the calibration cache path (None when the plan does not calibrate).
    UsageError when there is neither a cache nor an image folder."""
    if not plan.calibrate:
        return None
    from .calibration import CalibrationBatches, make_entropy_calibrator

    height, width = metadata.input_size
    calibration_cache = Path(options.calibration_cache or default_calibration_cache(onnx_path))
    # A fixed-batch ONNX calibrates at its own batch.
    calibration_batch = metadata.batch or options.calibration_batch
    batches = None
    if not calibration_cache.is_file():
        if options.calibration_images is None:
            raise UsageError(
                f"INT8 needs --calib-images DIR (or an existing calibration cache; {calibration_cache} does not exist)"
            )
        batches = CalibrationBatches(
            options.calibration_images,
            metadata.input_size,
            calibration_batch,
            max_images=options.calibration_max_images,
        )
        log(f"calibrating on {len(batches.paths)} images of {options.calibration_images} in {len(batches)} batches")
    config.int8_calibrator = make_entropy_calibrator(batches, calibration_cache, log=log)
    if dynamic:
        calibration_profile = builder.create_optimization_profile()
        calibration_profile.set_shape(INPUT_NAME, *[(calibration_batch, 3, height, width)] * 3)
        config.set_calibration_profile(calibration_profile)
    return calibration_cache


def build_record(
    options: BuildOptions,
    batch: tuple[int, int, int],
    plan: PrecisionPlan,
    int8_source: str | None,
    props: dict[str, str],
    calibration_cache: Path | None,
    command: list[str],
) -> dict:
    """The sidecar's "build" entry: every option (paths as text) plus what the build resolved."""
    build = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(options).items()}
    build.update(
        batch=list(batch),
        flags=list(plan.flags),
        strongly_typed=plan.strongly_typed,
        int8=int8_source,  # "explicit-qdq", "calibrated" or None
        quantization=quantization_of(props),  # what `sspnet quantize` recorded, if it made the model
        calibration_cache=None if calibration_cache is None else str(calibration_cache),
        trtexec=format_command(command),
    )
    return build


def write_outputs(
    onnx_path: Path, engine_path: Path, serialized, config, options: BuildOptions, sidecar_of_engine, log
) -> dict:
    """Write the serialized engine, the updated timing cache (when options.timing_cache is set) and
    then the sidecar, each atomically; return the sidecar. The sidecar comes last because it holds
    the engine's sha256 (sidecar_of_engine() computes it from the written file). A failed build
    (serialized None) raises RuntimeError before any file is touched."""
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    atomic_write(engine_path, lambda handle: handle.write(serialized))
    if options.timing_cache is not None:
        atomic_write_bytes(options.timing_cache, bytes(config.get_timing_cache().serialize()))
    sidecar = sidecar_of_engine()
    log(f"wrote {engine_path} ({engine_path.stat().st_size / 1e6:.1f} MB) and {write_sidecar(engine_path, sidecar)}")
    return sidecar


def write_sidecar_only(
    onnx_path: str | Path,
    engine_path: str | Path,
    plugin_library: str | Path | None = None,
    device: int = 0,
    log=print,
) -> dict:
    """A sidecar for an engine built elsewhere (e.g. with the printed trtexec command) on this device.

    Checks that this TensorRT deserializes the engine with the plugins loaded; the build options
    are recorded as unknown.
    """
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    guard = OutputGuard(inputs=[onnx_path, engine_path, plugin_library], verb="build-engine")
    guard.check_file(sidecar_path(engine_path), kind="json")
    props, _ = read_model_metadata(onnx_path)  # a missing ONNX: FileNotFoundError naming it
    if not engine_path.is_file():
        raise FileNotFoundError(
            errno.ENOENT, "--sidecar-only: the engine built elsewhere does not exist", str(engine_path)
        )
    trt = import_tensorrt()
    library = load_plugin_library(plugin_library)
    plugin_versions = _check_plugins(trt)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    if runtime.deserialize_cuda_engine(engine_path.read_bytes()) is None:
        raise InputError(
            f"{engine_path}: this TensorRT {trt.__version__} cannot deserialize it (built with another version?)"
        )
    gpu_name, capability = gpu_facts(device)
    build = {"tool": "external (trtexec or another builder); options unknown"}
    sidecar = _sidecar(
        props, onnx_path, engine_path, trt.__version__, plugin_versions, library, gpu_name, capability, build
    )
    log(f"wrote {write_sidecar(engine_path, sidecar)}")
    return sidecar


def _sidecar(props, onnx_path, engine_path, trt_version, plugin_versions, library, gpu_name, capability, build) -> dict:
    import sspnet

    return make_sidecar(
        metadata=props,
        onnx_path=onnx_path.resolve(),
        onnx_sha256=sha256_of(onnx_path),
        engine_sha256=sha256_of(engine_path),
        tensorrt_version=trt_version,
        plugin_versions=plugin_versions,
        plugin_library=library,
        gpu_name=gpu_name,
        compute_capability=capability,
        build=build,
        sspnet_version=sspnet.__version__,
    )
