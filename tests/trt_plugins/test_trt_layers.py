"""sspnet.benchmark.trt_layers: the summary of trtexec's layer-info and timing JSON that
scripts/gpu_check.sh writes for the fp16 and INT8 engines (layer records as trtexec 10 writes them
with --profilingVerbosity=detailed, made by hand here: no TensorRT on this machine)."""

import json

import pytest

from sspnet.benchmark.trt_layers import layer_kind, main, median_compute_ms, summarize_layers


def layer(name, kind, out_type="Int8 NC/32HW32"):
    return {
        "Name": name,
        "LayerType": kind,
        "Inputs": [{"Name": "in", "Format/Datatype": out_type}],
        "Outputs": [{"Name": "out", "Format/Datatype": out_type}],
    }


INT8_LAYERS = {
    "Layers": [
        layer("images_QuantizeLinear", "Scale"),  # standalone Q on the input: not absorbed
        layer("w1 + w1_DequantizeLinear + x_DequantizeLinear + conv1 + relu1", "CaskConvolution"),  # fused: not counted
        layer("Reformatting CopyNode for Input Tensor 0 to conv2", "Reformat", "Half NC/8HW8"),
        layer("c2_DequantizeLinear", "Dequantize", "Half Row major linear"),
        layer("PWN(sigmoid, mul)", "PointWiseV2", "Half Row major linear"),
        layer("nms", "PluginV3", "Float Row major linear"),
    ]
}


def test_layers_are_classified_as_trtexec_names_them():
    kinds = [layer_kind(item) for item in INT8_LAYERS["Layers"]]
    assert kinds == ["quantize", "other", "reformat", "dequantize", "pointwise", "other"]
    summary = summarize_layers(INT8_LAYERS)
    assert (summary["layers"], summary["reformat"], summary["standalone_qdq"], summary["pointwise"]) == (6, 1, 2, 1)
    assert summary["outputs_by_type"] == {"int8": 2, "fp16": 3, "fp32": 1, "other": 0}
    assert summarize_layers({"Layers": ["conv1", "relu1"]})["layers"] == 0  # not detailed verbosity: no records


def test_median_compute_time_and_the_json_written(tmp_path):
    times = [{"computeMs": value} for value in (2.0, 1.0, 9.0)]
    assert median_compute_ms(times) == 2.0
    assert median_compute_ms([{"startComputeMs": 1.0, "endComputeMs": 4.0}]) == 3.0
    with pytest.raises(ValueError):
        median_compute_ms([])
    for prefix, layers, ms in (
        ("fp16", {"Layers": [layer("conv1 + relu1", "CaskConvolution", "Half")]}, 4.0),
        ("int8", INT8_LAYERS, 2.5),
    ):
        (tmp_path / f"{prefix}.layers.json").write_text(json.dumps(layers))
        (tmp_path / f"{prefix}.times.json").write_text(json.dumps([{"computeMs": ms}] * 3))
    out = tmp_path / "summary.json"
    assert main(["--fp16", str(tmp_path / "fp16"), "--int8", str(tmp_path / "int8"), "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["int8_speedup_over_fp16"] == pytest.approx(4.0 / 2.5)
    assert document["int8"]["standalone_qdq"] == 2 and document["fp16"]["standalone_qdq"] == 0
