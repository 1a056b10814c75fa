"""The engine builder's TensorRT-free logic (runtime/engine_builder.py) and `sspnet build-engine`
where TensorRT is absent: batch profiles, the precision plan on TensorRT 10 and 11, DLA rules, and
the equivalent trtexec command lines (written out by hand below), and build_engine's network-parsing,
configuration, calibration and output-writing steps against fake TensorRT objects."""

import enum
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from sspnet.runtime import engine_builder as eb
from trt_files import METADATA, tensorrt_installed, write_onnx

from sspnet.cli import main

no_tensorrt = pytest.mark.skipif(tensorrt_installed(), reason="checks the behaviour where TensorRT is NOT installed")


# ---- batch ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [("8", (8, 8, 8)), (8, (8, 8, 8)), ("1,4,8", (1, 4, 8)), ((2, 2, 3), (2, 2, 3)), ("1,1,1", (1, 1, 1))],
)
def test_parse_batch(spec, expected):
    assert eb.parse_batch(spec) == expected


@pytest.mark.parametrize("spec", ["0", "4,2,8", "1,2", "a,b,c", "1,2,3,4", True])
def test_parse_batch_rejects(spec):
    with pytest.raises(ValueError, match="batch"):
        eb.parse_batch(spec)


def test_resolve_batch():
    assert eb.resolve_batch(None, None) == eb.DEFAULT_BATCH == (1, 4, 8)
    assert eb.resolve_batch((2, 2, 4), None) == (2, 2, 4)
    assert eb.resolve_batch(None, 6) == (6, 6, 6)
    assert eb.resolve_batch((6, 6, 6), 6) == (6, 6, 6)
    with pytest.raises(ValueError, match="fixed batch of 6.*--batch dynamic"):
        eb.resolve_batch((1, 4, 8), 6)


# ---- precision ----------------------------------------------------------------------------------


def test_precision_plan_tensorrt_10():
    assert eb.precision_plan("fp32", 10) == eb.PrecisionPlan((), False, False)
    assert eb.precision_plan("fp16", 10) == eb.PrecisionPlan(("FP16",), False, False)
    int8 = eb.precision_plan("int8", 10)
    assert (int8.flags, int8.strongly_typed, int8.calibrate) == (("FP16", "INT8"), False, True)
    qdq = eb.precision_plan("int8", 10, has_qdq=True)
    assert (qdq.flags, qdq.calibrate) == (("FP16", "INT8"), False)


def test_precision_plan_tensorrt_10_strongly_typed_sets_no_flags():
    plan = eb.precision_plan("fp16", 10, strongly_typed=True)
    assert (plan.flags, plan.strongly_typed, plan.calibrate) == ((), True, False)
    with pytest.raises(ValueError, match="Q/DQ"):
        eb.precision_plan("int8", 10, strongly_typed=True)


def test_precision_plan_tensorrt_11_is_strongly_typed():
    fp16 = eb.precision_plan("fp16", 11)
    assert (fp16.flags, fp16.strongly_typed, fp16.calibrate) == ((), True, False)
    assert "exported in fp16" in fp16.note
    assert eb.precision_plan("int8", 11, has_qdq=True).flags == ()


def test_int8_on_tensorrt_11_explains_the_qdq_route():
    with pytest.raises(ValueError) as error:
        eb.precision_plan("int8", 11)
    message = str(error.value)
    assert "TensorRT 11 removed implicit INT8 calibration" in message
    assert "sspnet quantize" in message and "sspnet build-engine MODEL_int8.onnx" in message


@pytest.mark.parametrize(
    "precision, major, message", [("bf16", 10, "precision must be one of"), ("fp16", 8, "TensorRT >= 10")]
)
def test_precision_plan_rejects(precision, major, message):
    with pytest.raises(ValueError, match=message):
        eb.precision_plan(precision, major)


def test_onnx_has_qdq(tmp_path):
    assert eb.onnx_has_qdq(write_onnx(tmp_path / "q.onnx", METADATA, qdq=True))
    assert not eb.onnx_has_qdq(write_onnx(tmp_path / "p.onnx", METADATA))


# ---- DLA ----------------------------------------------------------------------------------------


def test_check_dla():
    eb.check_dla(None, False, "fp32")
    eb.check_dla(0, True, "fp16")
    with pytest.raises(ValueError, match="GPU only.*--allow-gpu-fallback"):
        eb.check_dla(1, False, "int8")
    with pytest.raises(ValueError, match="fp16 or int8"):
        eb.check_dla(0, True, "fp32")
    with pytest.raises(ValueError, match="only applies with --dla-core"):
        eb.check_dla(None, True, "fp16")
    with pytest.raises(ValueError, match="non-negative"):
        eb.check_dla(-1, True, "fp16")


# ---- trtexec ------------------------------------------------------------------------------------

COMMON = dict(
    onnx="m_trt.onnx",
    engine="m.engine",
    plugin_library="/lib/libsspnet_trt_plugins.so",
    input_size=(512, 640),
    workspace_mib=2048,
)
SHAPES = [
    "--minShapes=images:1x3x512x640",
    "--optShapes=images:4x3x512x640",
    "--maxShapes=images:8x3x512x640",
]
HEAD = [
    "trtexec",
    "--onnx=m_trt.onnx",
    "--saveEngine=m.engine",
    "--staticPlugins=/lib/libsspnet_trt_plugins.so",
]


def test_trtexec_tensorrt_10_fp16():
    command = eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="fp16", trt_major=10, timing_cache="t.cache")
    assert command == HEAD + SHAPES + ["--fp16", "--memPoolSize=workspace:2048M", "--timingCacheFile=t.cache"]


def test_trtexec_tensorrt_11_fp16_has_no_precision_flag():
    command = eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="fp16", trt_major=11)
    assert command == HEAD + SHAPES + ["--memPoolSize=workspace:2048M"]


def test_trtexec_tensorrt_10_int8_repeats_the_calibration_cache():
    command = eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="int8", trt_major=10, calibration_cache="m.calib")
    assert command == HEAD + SHAPES + ["--fp16", "--int8", "--calib=m.calib", "--memPoolSize=workspace:2048M"]
    with pytest.raises(ValueError, match="calibration cache"):
        eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="int8", trt_major=10)


def test_trtexec_tensorrt_11_int8_needs_qdq():
    with pytest.raises(ValueError, match="Q/DQ"):
        eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="int8", trt_major=11)
    qdq = eb.trtexec_command(**COMMON, batch=(1, 4, 8), precision="int8", trt_major=11, has_qdq=True)
    assert qdq == HEAD + SHAPES + ["--memPoolSize=workspace:2048M"]


def test_trtexec_fixed_batch_strongly_typed_dla():
    command = eb.trtexec_command(
        **COMMON,
        batch=None,
        precision="fp16",
        trt_major=10,
        strongly_typed=True,
        dla_core=0,
        gpu_fallback=True,
    )
    assert command == HEAD + [
        "--stronglyTyped",
        "--memPoolSize=workspace:2048M",
        "--useDLACore=0",
        "--allowGPUFallback",
    ]


def test_format_command_quotes():
    assert eb.format_command(["trtexec", "--onnx=my model.onnx"]) == "trtexec '--onnx=my model.onnx'"


def test_default_paths(tmp_path):
    assert eb.default_engine_path(tmp_path / "m_trt.onnx", "int8") == tmp_path / "m_trt_int8.engine"
    assert eb.default_calibration_cache(tmp_path / "m_trt.onnx") == tmp_path / "m_trt.calib"


def test_read_model_metadata_needs_the_tensorrt_flavour(tmp_path):
    path = write_onnx(tmp_path / "m.onnx", dict(METADATA, flavor="portable"))
    with pytest.raises(ValueError, match="flavour 'portable'.*--flavor tensorrt"):
        eb.read_model_metadata(path)


# ---- the CLI without TensorRT -------------------------------------------------------------------


def test_cli_prints_the_trtexec_command_without_tensorrt(trt_onnx, capsys):
    code = main(
        [
            "build-engine",
            str(trt_onnx),
            "--print-trtexec",
            "--trt-major",
            "10",
            "--batch",
            "1,2,4",
            "--plugins",
            "/opt/libsspnet_trt_plugins.so",
            "--workspace",
            "512",
        ]
    )
    assert code == 0
    engine = trt_onnx.with_name("model_trt_fp16.engine")
    assert capsys.readouterr().out.strip() == (
        f"trtexec --onnx={trt_onnx} --saveEngine={engine} --staticPlugins=/opt/libsspnet_trt_plugins.so "
        "--minShapes=images:1x3x96x128 --optShapes=images:2x3x96x128 --maxShapes=images:4x3x96x128 "
        "--fp16 --memPoolSize=workspace:512M"
    )


def test_cli_fixed_batch_onnx_rejects_a_batch_range(tmp_path, capsys):
    path = write_onnx(tmp_path / "fixed_trt.onnx", dict(METADATA, batch="2"))
    code = main(["build-engine", str(path), "--print-trtexec", "--trt-major", "10", "--batch", "1,2,4"])
    assert code == 2
    assert "fixed batch of 2" in capsys.readouterr().err


@no_tensorrt
def test_cli_build_without_tensorrt_says_so_and_prints_trtexec(trt_onnx, capsys):
    code = main(["build-engine", str(trt_onnx), "--precision", "fp32"])
    out = capsys.readouterr().err  # one line from the CLI's error handler
    assert code == 2
    assert "TensorRT is not installed" in out or "needs the `tensorrt` Python package" in out
    assert "equivalent trtexec command is:" in out and f"--onnx={trt_onnx}" in out


@no_tensorrt
def test_cli_print_trtexec_without_tensorrt_needs_the_major(trt_onnx, capsys):
    assert main(["build-engine", str(trt_onnx), "--print-trtexec"]) == 2
    assert "--trt-major 10|11" in capsys.readouterr().err


def test_cli_save_calib_npy(trt_onnx, tmp_path, capsys):
    from PIL import Image

    images = tmp_path / "calib"
    images.mkdir()
    for index in range(3):
        Image.new("RGB", (128, 96), (index, 0, 0)).save(images / f"{index}.png")
    out_path = tmp_path / "calib.npy"
    assert main(["build-engine", str(trt_onnx), "--calib-images", str(images), "--save-calib-npy", str(out_path)]) == 0
    import numpy as np

    array = np.load(out_path)
    assert array.shape == (3, 3, 96, 128) and array.dtype == np.uint8
    assert array[:, 0, 0, 0].tolist() == [0, 1, 2]


def test_cli_missing_onnx_is_an_error(tmp_path, capsys):
    assert main(["build-engine", str(tmp_path / "none.onnx"), "--print-trtexec", "--trt-major", "10"]) == 2
    assert "none.onnx" in capsys.readouterr().err


def test_metadata_fixture_is_the_contract(trt_onnx):
    from sspnet.runtime.contract import METADATA_KEYS

    assert sorted(METADATA) == sorted(METADATA_KEYS)
    assert json.loads(METADATA["input_size"]) == [96, 128]


# ---- Q/DQ (INT8) models -------------------------------------------------------------------------


def quantized_props(activations):
    """The metadata `sspnet quantize` writes (export/quantize.py), in its two forms."""
    symmetric = activations == "symmetric"
    return dict(
        METADATA,
        quantization=json.dumps(
            {
                "format": "qdq",
                "activations": activations,
                "activation_type": "int8" if symmetric else "uint8",
                "tensorrt_compatible": symmetric,
                "method": "percentile",
            }
        ),
    )


def test_qdq_model_builds_as_explicit_int8_only():
    props = quantized_props("symmetric")
    assert eb.check_qdq_build("m.onnx", props, "int8", has_qdq=True) == "explicit-qdq"
    for precision in ("fp16", "fp32"):
        with pytest.raises(
            ValueError, match=r"m.onnx is a Q/DQ \(INT8\) model.*--precision: expected int8, got " + precision
        ):
            eb.check_qdq_build("m.onnx", props, precision, has_qdq=True)
    # A Q/DQ model from another tool (no sspnet quantization entry) is trusted to be TensorRT's form.
    assert eb.check_qdq_build("m.onnx", METADATA, "int8", has_qdq=True) == "explicit-qdq"


def test_float_model_int8_is_calibrated_and_other_precisions_have_no_int8():
    assert eb.check_qdq_build("m.onnx", METADATA, "int8", has_qdq=False) == "calibrated"
    assert eb.check_qdq_build("m.onnx", METADATA, "fp16", has_qdq=False) is None


def test_onnx_runtime_cpu_form_is_refused_for_tensorrt():
    with pytest.raises(
        ValueError, match="ONNX Runtime CPU form.*--activations symmetric.*expected symmetric, got asymmetric"
    ):
        eb.check_qdq_build("m.onnx", quantized_props("asymmetric"), "int8", has_qdq=True)


def test_precision_defaults_to_int8_for_a_qdq_model():
    assert eb.resolve_precision(None, has_qdq=True) == "int8"
    assert eb.resolve_precision(None, has_qdq=False) == "fp16"
    assert eb.resolve_precision("fp32", has_qdq=True) == "fp32"  # then refused by check_qdq_build


def test_quantization_entry_is_read_leniently():
    assert eb.quantization_of(METADATA) is None
    assert eb.quantization_of(dict(METADATA, quantization="not json")) is None
    assert eb.quantization_of(quantized_props("symmetric"))["activations"] == "symmetric"


@pytest.mark.parametrize("major, flags", [(10, ["--fp16", "--int8"]), (11, [])])
def test_cli_qdq_model_trtexec_needs_no_calibration(tmp_path, capsys, major, flags):
    """No --precision: a Q/DQ model is built as int8; TensorRT 10 sets --int8 (+ --fp16 for the
    layers without an int8 kernel) with no --calib; TensorRT 11 is strongly typed (no flags)."""
    path = write_onnx(tmp_path / "m_int8.onnx", quantized_props("symmetric"), qdq=True)
    code = main(
        [
            "build-engine",
            str(path),
            "--print-trtexec",
            "--trt-major",
            str(major),
            "--batch",
            "1",
            "--plugins",
            "/opt/libsspnet_trt_plugins.so",
        ]
    )
    assert code == 0
    engine = path.with_name("m_int8_int8.engine")
    assert capsys.readouterr().out.split() == [
        "trtexec",
        f"--onnx={path}",
        f"--saveEngine={engine}",
        "--staticPlugins=/opt/libsspnet_trt_plugins.so",
        "--minShapes=images:1x3x96x128",
        "--optShapes=images:1x3x96x128",
        "--maxShapes=images:1x3x96x128",
        *flags,
        "--memPoolSize=workspace:1024M",
    ]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--precision", "fp16"], "--precision: expected int8, got fp16"),
        ([], "expected symmetric, got asymmetric"),
    ],
)
def test_cli_refuses_a_qdq_model_it_cannot_build(tmp_path, capsys, args, named):
    activations = "asymmetric" if not args else "symmetric"
    path = write_onnx(tmp_path / "m_int8.onnx", quantized_props(activations), qdq=True)
    for mode in (["--print-trtexec", "--trt-major", "10"], []):  # the check comes before TensorRT is needed
        assert main(["build-engine", str(path), *args, *mode]) == 2
        err = capsys.readouterr().err
        assert named in err and str(path) in err and "Traceback" not in err
        assert not list(tmp_path.glob("*.engine"))


# ---- the precision plan of a Q/DQ model, and the lint before parsing --------------------------------


def test_qdq_precision_plan_says_which_layers_run_in_which_type_per_version():
    weak = eb.precision_plan("int8", 10, has_qdq=True, qdq_float_type="fp16").note
    assert "int8: the layers between Q/DQ pairs" in weak and "its choice" in weak  # TensorRT 10 picks by speed
    for major, strongly_typed in ((11, False), (10, True)):
        fp16_form = eb.precision_plan("int8", major, strongly_typed, has_qdq=True, qdq_float_type="fp16").note
        assert "fp16: the rest of the network body" in fp16_form and "fp32: what the ONNX keeps in fp32" in fp16_form
        fp32_form = eb.precision_plan("int8", major, strongly_typed, has_qdq=True, qdq_float_type="fp32").note
        assert "fp16: nothing" in fp32_form and "fp32: every layer outside the Q/DQ pairs" in fp32_form
    # a Q/DQ model from another tool (no float_type recorded) is read as fp32 outside its Q/DQ pairs
    assert eb.qdq_layer_precisions(11, True, None) == eb.qdq_layer_precisions(11, True, "fp32")


def test_build_engine_help_lists_the_layer_precisions_per_version(capsys):
    with pytest.raises(SystemExit):
        main(["build-engine", "--help"])
    text = capsys.readouterr().out
    assert "TensorRT 10 (weakly typed" in text and "TensorRT 11, or 10 --strongly-typed, fp16 TensorRT form" in text
    assert text.count("int8: the layers between Q/DQ pairs") == 3 and "TensorRT lint" in text


@no_tensorrt
def test_cli_lints_a_qdq_model_before_tensorrt_and_stops_on_a_qdq_error(tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    good = write_onnx(tmp_path / "m_int8.onnx", quantized_props("symmetric"), qdq=True)
    assert main(["build-engine", str(good)]) == 2  # no TensorRT here: said after the lint
    captured = capsys.readouterr()
    assert "TensorRT lint" in captured.out and "Q/DQ fusion blockers: 0" in captured.out
    assert "TensorRT is not installed" in captured.err or "`tensorrt` Python package" in captured.err

    model = onnx.load(str(good))
    scale = next(init for init in model.graph.initializer if init.name == "scale")
    scale.CopyFrom(numpy_helper.from_array(np.array(-0.5, np.float32), "scale"))  # planted: a negative scale
    bad = tmp_path / "bad_int8.onnx"
    onnx.save(model, str(bad))
    assert main(["build-engine", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "[qdq-scale]" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Q/DQ error(s)" in err[0] and "not finite and positive" in err[0], captured.err
    assert "TensorRT is not installed" not in captured.err  # stopped before TensorRT was needed


# ---- build_engine's steps with a fake TensorRT ----------------------------------------------------
# configure_builder, attach_calibrator and write_outputs only call a handful of TensorRT methods; the
# fakes below record what was set so each step is checked against the builder settings TensorRT's
# documentation gives for each precision (written out by hand in the tests).


class FakeBuilderFlag(enum.Enum):
    FP16 = 1
    INT8 = 2
    GPU_FALLBACK = 3


FAKE_TRT = SimpleNamespace(
    BuilderFlag=FakeBuilderFlag,
    MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"),
    DeviceType=SimpleNamespace(GPU="gpu", DLA="dla"),
)


class FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, smallest, optimum, largest):
        self.shapes[name] = (tuple(smallest), tuple(optimum), tuple(largest))


class FakeTimingCache:
    def __init__(self, data: bytes):
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+entries of this build"


class FakeConfig:
    """Records what the builder step sets on an IBuilderConfig."""

    def __init__(self):
        self.flags = set()
        self.memory_pools = {}
        self.profiles = []
        self.calibration_profile = None
        self.int8_calibrator = None
        self.timing_cache = None
        self.default_device_type = FAKE_TRT.DeviceType.GPU
        self.DLA_core = -1

    def set_memory_pool_limit(self, pool, size):
        self.memory_pools[pool] = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)

    def set_calibration_profile(self, profile):
        self.calibration_profile = profile

    def create_timing_cache(self, data):
        return FakeTimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False  # a cache from another GPU / TensorRT must not be used silently
        self.timing_cache = cache

    def get_timing_cache(self):
        return self.timing_cache


class FakeBuilder:
    def __init__(self):
        self.config = FakeConfig()

    def create_builder_config(self):
        return self.config

    def create_optimization_profile(self):
        return FakeProfile()


DYNAMIC_INPUT = (-1, 3, 96, 128)


def configure(
    precision="fp16", trt_major=10, strongly_typed=False, has_qdq=False, input_shape=DYNAMIC_INPUT, **options
):
    plan = eb.precision_plan(precision, trt_major, strongly_typed, has_qdq)
    options = eb.BuildOptions(precision=precision, strongly_typed=strongly_typed, **options)
    config, dynamic = eb.configure_builder(FAKE_TRT, FakeBuilder(), plan, options, input_shape, (1, 4, 8), (96, 128))
    return config, dynamic


F = FakeBuilderFlag


@pytest.mark.parametrize(
    "precision, trt_major, strongly_typed, has_qdq, flags",
    [
        ("fp32", 10, False, False, set()),  # TensorRT's default precision: no flag
        ("fp16", 10, False, False, {F.FP16}),
        ("int8", 10, False, False, {F.INT8, F.FP16}),  # calibrated INT8, fp16 where INT8 has no kernel
        ("int8", 10, False, True, {F.INT8, F.FP16}),  # Q/DQ INT8 on a weakly typed network
        ("fp16", 10, True, False, set()),  # strongly typed: the ONNX's types decide, flags are errors
        ("int8", 10, True, True, set()),
        ("fp16", 11, False, False, set()),  # TensorRT 11: always strongly typed, no precision flags
        ("int8", 11, False, True, set()),
    ],
)
def test_configure_builder_sets_the_precision_flags(precision, trt_major, strongly_typed, has_qdq, flags):
    config, _ = configure(precision, trt_major, strongly_typed, has_qdq)
    assert config.flags == flags
    assert config.default_device_type == FAKE_TRT.DeviceType.GPU


def test_configure_builder_workspace_is_in_bytes():
    config, _ = configure(workspace_mib=256)
    assert config.memory_pools == {FAKE_TRT.MemoryPoolType.WORKSPACE: 256 * 1024 * 1024}


def test_configure_builder_dynamic_batch_gets_one_profile_over_the_batch_range():
    config, dynamic = configure(input_shape=DYNAMIC_INPUT)
    assert dynamic
    assert [profile.shapes for profile in config.profiles] == [
        {"images": ((1, 3, 96, 128), (4, 3, 96, 128), (8, 3, 96, 128))}
    ]


def test_configure_builder_fixed_batch_has_no_profile():
    config, dynamic = configure(input_shape=(2, 3, 96, 128))
    assert not dynamic
    assert config.profiles == []


def test_configure_builder_dla_runs_on_the_core_with_gpu_fallback():
    config, _ = configure("fp16", dla_core=1, gpu_fallback=True)
    assert config.default_device_type == FAKE_TRT.DeviceType.DLA
    assert config.DLA_core == 1
    assert config.flags == {F.FP16, F.GPU_FALLBACK}


def test_configure_builder_reads_an_existing_timing_cache(tmp_path):
    cache = tmp_path / "timing.cache"
    assert configure()[0].timing_cache is None  # no --timing-cache: none used
    config, _ = configure(timing_cache=cache)  # not there yet: an empty cache
    assert config.timing_cache.data == b""
    cache.write_bytes(b"earlier entries")
    config, _ = configure(timing_cache=cache)
    assert config.timing_cache.data == b"earlier entries"


# ---- network parsing ----------------------------------------------------------------------------


class FakeParserError:
    def __init__(self, desc, node):
        self._desc, self._node = desc, node

    def desc(self):
        return self._desc

    def node_name(self):
        return self._node


def parse(tmp_path, plan, inputs=("images",), errors=(), has_flag=True):
    """parse_network against a fake Builder / OnnxParser: returns (network flags, network) or raises."""
    made = {}

    class Network:
        num_inputs = len(inputs)

        def get_input(self, index):
            return SimpleNamespace(name=inputs[index], shape=DYNAMIC_INPUT)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            made["flags"] = flags
            return Network()

    class OnnxParser:
        num_errors = len(errors)

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            made["parsed"] = path
            return not errors

        def get_error(self, index):
            return errors[index]

    creation_flags = SimpleNamespace(STRONGLY_TYPED=2) if has_flag else SimpleNamespace()
    trt = SimpleNamespace(Builder=Builder, OnnxParser=OnnxParser, NetworkDefinitionCreationFlag=creation_flags)
    onnx = tmp_path / "m.onnx"
    _, network = eb.parse_network(trt, None, onnx, plan, tmp_path / "lib.so")
    assert made["parsed"] == str(onnx)
    return made["flags"], network


def test_parse_network_is_strongly_typed_only_when_the_plan_says_so(tmp_path):
    assert parse(tmp_path, eb.precision_plan("fp16", 10))[0] == 0
    assert parse(tmp_path, eb.precision_plan("fp16", 10, strongly_typed=True))[0] == 1 << 2
    # a TensorRT without the flag (strong typing is its default) builds with no flag
    assert parse(tmp_path, eb.precision_plan("fp16", 11), has_flag=False)[0] == 0


def test_parse_network_parser_errors_name_the_file_node_and_plugin_library(tmp_path):
    errors = (FakeParserError("Plugin not found: SSPNetRoIAlign", "roi_align_0"),)
    with pytest.raises(eb.InputError) as error:
        parse(tmp_path, eb.precision_plan("fp16", 10), errors=errors)
    message = str(error.value)
    assert "ONNX parser failed on" in message and "m.onnx" in message
    assert "Plugin not found: SSPNetRoIAlign (node roi_align_0)" in message
    assert "libsspnet_trt_plugins.so built from this sspnet; loaded:" in message and "lib.so" in message


def test_parse_network_needs_the_contract_input(tmp_path):
    with pytest.raises(eb.InputError, match=r"one input 'images', the network has \['input', 'extra'\]"):
        parse(tmp_path, eb.precision_plan("fp16", 10), inputs=("input", "extra"))


# ---- calibration --------------------------------------------------------------------------------


@pytest.fixture
def recorded_calibrators(monkeypatch):
    """make_entropy_calibrator replaced by a recorder (the real one subclasses tensorrt's IInt8Calibrator)."""
    import sspnet.runtime.calibration as calibration

    made = []

    def fake_calibrator(batches, cache, log=print):
        made.append((batches, cache))
        return f"calibrator reading {cache}"

    monkeypatch.setattr(calibration, "make_entropy_calibrator", fake_calibrator)
    return made


def calibrate(trt_onnx, plan, dynamic=True, **options):
    builder = FakeBuilder()
    _, metadata = eb.read_model_metadata(trt_onnx)
    options = eb.BuildOptions(precision="int8", **options)
    cache = eb.attach_calibrator(builder, builder.config, plan, options, trt_onnx, metadata, dynamic, log=lambda _: 0)
    return builder.config, cache


def test_attach_calibrator_does_nothing_without_calibration(trt_onnx, recorded_calibrators):
    for plan in (eb.precision_plan("fp16", 10), eb.precision_plan("int8", 10, has_qdq=True)):
        config, cache = calibrate(trt_onnx, plan)
        assert cache is None and config.int8_calibrator is None and config.calibration_profile is None
    assert recorded_calibrators == []


def test_attach_calibrator_needs_images_or_a_cache(trt_onnx, recorded_calibrators):
    with pytest.raises(eb.UsageError, match=r"INT8 needs --calib-images DIR .*model_trt\.calib does not exist"):
        calibrate(trt_onnx, eb.precision_plan("int8", 10))
    assert recorded_calibrators == []


def test_attach_calibrator_reuses_the_cache_and_profiles_the_calibration_batch(trt_onnx, recorded_calibrators):
    cache = trt_onnx.with_suffix(".calib")  # the default cache next to the ONNX
    cache.write_bytes(b"cache of an earlier build")
    config, used = calibrate(trt_onnx, eb.precision_plan("int8", 10), calibration_batch=2)
    assert used == cache
    assert recorded_calibrators == [(None, cache)]  # no images read: the cache holds the scales
    assert config.int8_calibrator == f"calibrator reading {cache}"
    assert config.calibration_profile.shapes == {"images": ((2, 3, 96, 128),) * 3}


def test_attach_calibrator_fixed_batch_needs_no_calibration_profile(trt_onnx, recorded_calibrators, tmp_path):
    cache = tmp_path / "given.calib"
    cache.write_bytes(b"scales")
    config, used = calibrate(trt_onnx, eb.precision_plan("int8", 10), dynamic=False, calibration_cache=cache)
    assert used == cache and recorded_calibrators == [(None, cache)]
    assert config.calibration_profile is None


# ---- output writing -----------------------------------------------------------------------------


def test_build_record_holds_the_options_and_what_the_build_resolved(tmp_path):
    options = eb.BuildOptions(precision="int8", timing_cache=tmp_path / "t.cache", workspace_mib=512)
    plan = eb.precision_plan("int8", 10)
    record = eb.build_record(options, (1, 4, 8), plan, "calibrated", {}, tmp_path / "m.calib", ["trtexec", "--int8"])
    assert record["precision"] == "int8" and record["workspace_mib"] == 512
    assert record["timing_cache"] == str(tmp_path / "t.cache")  # paths as text, so JSON can hold them
    assert record["batch"] == [1, 4, 8]
    assert sorted(record["flags"]) == ["FP16", "INT8"]
    assert record["int8"] == "calibrated" and record["strongly_typed"] is False
    assert record["calibration_cache"] == str(tmp_path / "m.calib")
    assert record["trtexec"] == "trtexec --int8"
    json.dumps(record)


def write(trt_onnx, tmp_path, serialized, timing_cache=None):
    import sspnet

    engine = tmp_path / "model.engine"
    config = FakeConfig()
    config.timing_cache = FakeTimingCache(b"old")
    options = eb.BuildOptions(timing_cache=timing_cache)

    def sidecar_of_engine():
        return eb._sidecar(METADATA, trt_onnx, engine, "10.3.0", {"p": "1"}, "lib.so", "Fake GPU", "8.7", {})

    sidecar = eb.write_outputs(trt_onnx, engine, serialized, config, options, sidecar_of_engine, log=lambda _: 0)
    assert sidecar["sspnet_version"] == sspnet.__version__
    return engine, sidecar


def test_write_outputs_writes_the_engine_then_a_sidecar_with_its_hash(trt_onnx, tmp_path):
    serialized = bytearray(b"\x01serialized engine\x00" * 100)  # IHostMemory is a buffer like this
    engine, sidecar = write(trt_onnx, tmp_path, serialized)
    assert engine.read_bytes() == bytes(serialized)
    assert sidecar["engine"]["sha256"] == hashlib.sha256(bytes(serialized)).hexdigest()
    assert sidecar["onnx"]["sha256"] == hashlib.sha256(trt_onnx.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "model.engine.json").read_text()) == sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.engine", "model.engine.json", "model_trt.onnx"]


def test_write_outputs_saves_the_updated_timing_cache(trt_onnx, tmp_path):
    cache = tmp_path / "timing.cache"
    write(trt_onnx, tmp_path, b"engine", timing_cache=cache)
    assert cache.read_bytes() == b"old+entries of this build"


def test_write_outputs_failed_build_writes_nothing(trt_onnx, tmp_path):
    with pytest.raises(RuntimeError, match="TensorRT failed to build an engine from .*model_trt.onnx"):
        write(trt_onnx, tmp_path, None, timing_cache=tmp_path / "timing.cache")
    assert [p.name for p in tmp_path.iterdir()] == ["model_trt.onnx"]
