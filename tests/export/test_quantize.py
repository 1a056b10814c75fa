"""INT8 Q/DQ quantization (sspnet.export.quantize, `sspnet quantize`).

The numeric check uses a small detector trained here in seconds: bright 5x5 squares on a noisy
background, a 3-conv head scoring every pixel (1 inside a square), the TopK pixels as 5x5 boxes.
Its fp32 detections are sharp (scores near 1 inside the squares, near 0 elsewhere), so INT8 must
reproduce them: every fp32 detection with score >= 0.5
has an INT8 detection on the same box (IoU >= 0.99) whose score is within 0.05 (measured worst:
0.019 symmetric, 0.011 asymmetric). The graph checks
read the quantized ONNX file itself: Q/DQ nodes, int8 with zero points 0 (symmetric form),
per-channel weights, float biases (TensorRT's DequantizeLinear takes no int32).
"""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from sspnet.export.quantize import (
    FLOAT_GROUPS,
    QuantizeSettings,
    _spread,
    calibration_images,
    calibration_tiles,
    plan_body,
    qdq_summary,
    quantize_onnx,
    read_quantization,
)

SIZE = 32  # the blob detector's input H = W
K = 64  # > the 50 pixels of two squares: every square pixel is a detection in fp32 and INT8
BLOB = 5


def blob_images(count, seed):
    """uint8 [count, SIZE, SIZE, 3] noisy images with 2 bright squares each, and their centres."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (count, SIZE, SIZE, 3), dtype=np.uint8)
    centres = []
    for image in images:
        points = []
        while len(points) < 2:
            x, y = rng.integers(BLOB, SIZE - BLOB, 2)
            if all(abs(x - px) > BLOB + 2 or abs(y - py) > BLOB + 2 for px, py in points):
                points.append((int(x), int(y)))
        for x, y in points:
            image[y - 2 : y + 3, x - 2 : x + 3] = rng.integers(200, 256, 3)
        centres.append(points)
    return images, centres


class BlobDetector(torch.nn.Module):
    """A contract-following detector: uint8 images -> heat map -> TopK peaks as 5x5 boxes."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.conv_cls = torch.nn.Conv2d(8, 1, 1)

    def logits(self, images):
        x = images.float() / 255.0
        return self.conv_cls(torch.relu(self.conv2(torch.relu(self.conv1(x)))))

    def forward(self, images):
        logits = self.logits(images)
        n, _, h, w = logits.shape
        scores, index = torch.sigmoid(logits.reshape(n, h * w)).topk(K, dim=1)
        x, y = (index % w).float(), torch.div(index, w, rounding_mode="floor").float()
        boxes = torch.stack([x - 2, y - 2, x + 3, y + 3], dim=-1)
        num_dets = (scores > 0.05).sum(dim=1, keepdim=True).int()
        return num_dets, boxes, scores, torch.zeros_like(index, dtype=torch.int32)


def train_blob_detector(steps=60):
    torch.manual_seed(0)
    model = BlobDetector()
    images, centres = blob_images(32, seed=1)
    targets = np.zeros((32, 1, SIZE, SIZE), np.float32)
    for k, points in enumerate(centres):
        for x, y in points:
            targets[k, 0, y - 2 : y + 3, x - 2 : x + 3] = 1.0
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    target = torch.from_numpy(targets)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.logits(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def blob_model(tmp_path_factory):
    """(float .onnx of the trained blob detector with sspnet metadata, folder of calibration images)."""
    from PIL import Image
    from sspnet.export.onnx_export import export_module
    from sspnet.runtime.backend import ModelMetadata

    folder = tmp_path_factory.mktemp("blob")
    model = train_blob_detector()
    example = torch.zeros(2, 3, SIZE, SIZE, dtype=torch.uint8)
    proto = export_module(
        model,
        (example,),
        flavor="portable",
        input_names=["images"],
        output_names=["num_dets", "boxes", "scores", "labels"],
        dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=64)}},
    )
    metadata = ModelMetadata(
        sspnet_version="0.1.0",
        preset="blob",
        variant="fovea",
        classes=("person",),
        input_size=(SIZE, SIZE),
        max_detections=K,
        score_threshold=0.05,
        nms={"method": "hard", "iou_threshold": 0.5},
        flavor="portable",
        batch=None,
    )
    onnx.helper.set_model_props(proto, metadata.to_props())
    path = folder / "blob.onnx"
    onnx.save(proto, str(path))
    calib = folder / "calib"
    calib.mkdir()
    for k, image in enumerate(blob_images(24, seed=2)[0]):
        Image.fromarray(image).save(calib / f"{k:02d}.png")
    return path, calib


def run_model(path, images):
    from sspnet.runtime.backend import load_backend

    backend = load_backend(path)  # the Q/DQ model runs like any exported model
    return backend.infer(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def box_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.mark.parametrize(
    "activations, float_groups, tolerance",
    [
        ("symmetric", ("score",), 0.05),  # the default: the score layer's logits stay float
        ("asymmetric", ("score",), 0.05),
        ("symmetric", (), 0.05),  # the logits in int8 too
    ],
)
def test_int8_detections_match_fp32(blob_model, tmp_path, activations, float_groups, tolerance):
    path, calib = blob_model
    out = tmp_path / "blob_int8.onnx"
    quantize_onnx(
        path,
        out,
        calib,
        QuantizeSettings(method="minmax", activations=activations, float_groups=float_groups, progress=False),
        log=lambda *_: None,
    )
    images, centres = blob_images(16, seed=3)  # unseen images
    fp32, int8 = run_model(path, images), run_model(out, images)
    checked, worst = 0, 0.0
    for k in range(len(images)):
        strong = fp32["scores"][k] >= 0.5
        assert strong.sum() >= 40  # the trained model finds the squares' pixels: the check is not vacuous
        iou = box_iou(fp32["boxes"][k][strong], int8["boxes"][k])
        for row, score in zip(iou, fp32["scores"][k][strong]):
            same_box = row >= 0.99
            assert same_box.any(), "an fp32 detection has no INT8 counterpart"
            worst = max(worst, float(np.abs(int8["scores"][k][same_box] - score).min()))
            checked += 1
    assert checked >= 16 * 40
    print(f"worst score difference {worst:.4f} ({activations}, float {float_groups})")
    assert worst <= tolerance


def _initializer(model, name):
    return next((init for init in model.graph.initializer if init.name == name), None)


def test_symmetric_graph_is_int8_qdq_with_zero_points_0_and_per_channel_weights(blob_model, tmp_path):
    path, calib = blob_model
    out = tmp_path / "q.onnx"
    report = quantize_onnx(
        path,
        out,
        calib,
        QuantizeSettings(method="entropy", float_groups=("score",), progress=False),
        log=lambda *_: None,
    )
    model = onnx.load(str(out))
    summary = qdq_summary(model)
    assert summary["quantize_linear"] > 0 and summary["dequantize_linear"] > summary["quantize_linear"]
    assert summary["zero_point_types"] == ["INT8"] and summary["nonzero_zero_points"] == 0
    # conv1 and conv2 quantized per output channel; conv_cls (the score layer) kept float
    assert summary["per_channel_weight_layers"] == 2 and summary["per_tensor_weight_layers"] == 0
    assert len(summary["float_weight_layers"]) == 1
    for node in (n for n in model.graph.node if n.op_type == "DequantizeLinear"):
        source = _initializer(model, node.input[0])
        if source is not None:  # weights: int8, one scale per output channel along axis 0
            assert source.data_type == onnx.TensorProto.INT8  # no int32 bias: TensorRT takes float biases
            scale = numpy_helper.to_array(_initializer(model, node.input[1]))
            assert scale.shape == (source.dims[0],) and (scale > 0).all()
            assert {a.name: a.i for a in node.attribute}.get("axis", 1) == 0
    for node in (n for n in model.graph.node if n.op_type == "QuantizeLinear"):
        zero_point = numpy_helper.to_array(_initializer(model, node.input[2]))
        assert zero_point.dtype == np.int8 and not zero_point.any()
    info = read_quantization(out)
    assert info["activations"] == "symmetric" and info["tensorrt_compatible"] is True
    assert info["method"] == "entropy" and info["float_groups"] == ["score"] and info["bias"] == "float"
    assert report.calibration["tiles"] == 24
    from sspnet.runtime.backend import ModelMetadata

    props = {p.key: p.value for p in model.metadata_props}
    assert ModelMetadata.from_props(props).input_size == (SIZE, SIZE)  # the contract metadata is kept


def test_placement_rewrite_is_exact_where_it_keeps_the_float_path(blob_model, tmp_path):
    """The TensorRT placement only rewires readers from DQ(Q(T)) to T: with the int8 parts equal,
    the fp32 TensorRT form (no fp16) and ONNX Runtime's placement give detections that agree, and
    the TensorRT form has fewer Q/DQ nodes and no fusion blocker, ONNX Runtime's has some."""
    from sspnet.export.trt_lint import fusion_blockers, lint_graph

    path, calib = blob_model
    ranges = tmp_path / "ranges.json"
    outs = {}
    for placement in ("onnxruntime", "tensorrt"):
        outs[placement] = tmp_path / f"{placement}.onnx"
        quantize_onnx(
            path,
            outs[placement],
            calib,
            QuantizeSettings(method="minmax", placement=placement, float_type="fp32", progress=False),
            calibration_cache=ranges,
            log=lambda *_: None,
        )
    models = {name: onnx.load(str(out)) for name, out in outs.items()}
    blockers = {name: sum(fusion_blockers(lint_graph(model)).values()) for name, model in models.items()}
    assert blockers["tensorrt"] == 0 < blockers["onnxruntime"], blockers
    assert qdq_summary(models["tensorrt"])["quantize_linear"] < qdq_summary(models["onnxruntime"])["quantize_linear"]
    images, _ = blob_images(8, seed=4)
    ort_placed, trt_placed = run_model(outs["onnxruntime"], images), run_model(outs["tensorrt"], images)
    strong = ort_placed["scores"] >= 0.5
    assert strong.sum() >= 8 * 40
    # fewer fake-quantization steps (the ReLU and head outputs read float): close, not equal
    assert np.abs(ort_placed["scores"][strong] - trt_placed["scores"][strong]).max() < 0.05


def test_asymmetric_graph_has_uint8_activations_and_int32_biases(blob_model, tmp_path):
    path, calib = blob_model
    quantize_onnx(
        path,
        tmp_path / "q.onnx",
        calib,
        QuantizeSettings(method="percentile", activations="asymmetric", float_groups=(), progress=False),
        log=lambda *_: None,
    )
    model = onnx.load(str(tmp_path / "q.onnx"))
    summary = qdq_summary(model)
    # uint8 activations, int8 weights, int32 biases (their zero points too)
    assert summary["zero_point_types"] == ["INT32", "INT8", "UINT8"] and summary["per_channel_weight_layers"] == 3
    biases = [
        init
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.INT32
        and any(n.op_type == "DequantizeLinear" and n.input[0] == init.name for n in model.graph.node)
    ]
    assert len(biases) == 3
    assert read_quantization(tmp_path / "q.onnx")["tensorrt_compatible"] is False


def test_calibration_inputs(tmp_path):
    from PIL import Image

    from sspnet.data.synth import write_dataset

    assert _spread(10, 3) == [0, 3, 6] and _spread(4, 9) == [0, 1, 2, 3]
    write_dataset(tmp_path / "data", 6, seed=0, val_fraction=0.34, size=(64, 64), progress=False)
    train = calibration_images(tmp_path / "data", "train")
    assert len(train) == 4 and all(p.suffix == ".jpg" or p.suffix == ".png" for p in train)
    assert len(calibration_images(tmp_path / "data", "val")) == 2
    # a 70 x 100 frame is cut like the Detector cuts it: 32 x 32 tiles with overlap, spread over the grid
    Image.fromarray(np.full((70, 100, 3), 7, np.uint8)).save(tmp_path / "frame.png")
    tiles = list(calibration_tiles([tmp_path / "frame.png"], (32, 32), max_tiles=5, overlap=8))
    assert len(tiles) == 5 and all(t.shape == (1, 3, 32, 32) and t.dtype == np.uint8 for t in tiles)
    assert all((t == 7).all() for t in tiles)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sspnet", "quantize", *map(str, args), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bad_calibration_input_gets_one_clear_line(blob_model, tmp_path):
    path, calib = blob_model
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    plain = onnx.load(str(path))
    del plain.metadata_props[:]
    no_metadata = tmp_path / "plain.onnx"
    onnx.save(plain, str(no_metadata))
    quantized = tmp_path / "q.onnx"
    quantize_onnx(
        path, quantized, calib, QuantizeSettings(method="minmax", max_tiles=2, progress=False), log=lambda *_: None
    )
    cases = [
        ((path, "--calib", tmp_path / "empty"), "no calibration images"),
        ((path, "--calib", tmp_path / "broken"), "calibration image cannot be read"),
        ((path, "--calib", tmp_path / "missing"), "calibration data not found"),
        ((no_metadata, "--calib", calib), "missing sspnet metadata"),
        ((quantized, "--calib", calib), "already quantized"),
        ((path, "--calib", calib, "--max-tiles", "0"), "at least one tile"),
        (
            (path, "--calib", calib, "--activations", "asymmetric", "--float-type", "fp16"),
            "keeps its float layers in fp32",
        ),
    ]
    for args, message in cases:
        result = _cli(*args, "--out", tmp_path / "out.onnx")
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("sspnet quantize: "), result.stderr
        assert not (tmp_path / "out.onnx").exists()
    result = _cli(path, "--calib", calib, "--out", tmp_path / "good.onnx", "--max-tiles", "2", "--method", "minmax")
    assert result.returncode == 0, result.stderr  # the written model is linted: no error, no fusion blocker
    assert "non-int8 layers in fp16" in result.stdout and "0 error(s)" in result.stdout
    assert "Q/DQ fusion blockers: 0" in result.stdout
    result = _cli(path, "--calib", calib, "--out", path)  # --out naming its input
    assert result.returncode == 2 and "refusing to write" in result.stderr
    assert onnx.load(str(path)).graph.node  # the input is intact


@pytest.mark.slow
def test_the_demo_detector_body_plan_and_qdq_model(tmp_path):
    """The real graph (demo recipe, random weights, 128 x 128): what is quantized, what stays float,
    and the Q/DQ model running through load_backend with the contract outputs."""
    from sspnet.export.onnx_export import export_onnx

    from sspnet.data.synth import write_dataset
    from sspnet.engine.recipes import SYNTHETIC_CPU
    from sspnet.models import build_model

    torch.manual_seed(0)
    model = build_model(SYNTHETIC_CPU.preset, **SYNTHETIC_CPU.overrides).eval()
    path = export_onnx(model, tmp_path / "demo.onnx", imgsz=(128, 128))
    exported = onnx.load(str(path))
    plan = plan_body(exported, FLOAT_GROUPS)
    by_name = {node.name: node for node in exported.graph.node}
    quantized_types = {by_name[name].op_type for name in plan.quantize}
    assert "Conv" in quantized_types and not quantized_types & {"TopK", "NonMaxSuppression", "Exp", "GatherElements"}
    assert len(plan.kept_float["box"]) == 5 and len(plan.kept_float["score"]) == 5  # one per pyramid level
    attention = {by_name[name].op_type for name in plan.kept_float["attention"]}
    assert {"Conv", "Sigmoid", "Mul"} <= attention
    write_dataset(tmp_path / "data", 4, seed=0, val_fraction=0.5, size=(128, 128), progress=False)
    out = tmp_path / "demo_int8.onnx"
    report = quantize_onnx(
        path,
        out,
        tmp_path / "data",
        QuantizeSettings(method="minmax", max_tiles=2, progress=False),
        log=lambda *_: None,
    )
    assert report.qdq["zero_point_types"] == ["INT8"] and report.qdq["nonzero_zero_points"] == 0
    assert report.qdq["float_weight_layers"] == []  # the default quantizes every layer of the body
    assert report.qdq["per_channel_weight_layers"] == sum(1 for node in exported.graph.node if node.op_type == "Conv")
    outputs = run_model(out, np.zeros((2, 128, 128, 3), np.uint8))
    assert outputs["boxes"].shape == (2, 200, 4) and outputs["num_dets"].shape == (2, 1)
    assert json.loads(json.dumps(read_quantization(out)))["float_groups"] == []
    check_tensorrt_placement(onnx.load(str(out)), exported)


def check_tensorrt_placement(model, source):
    """The TensorRT form's Q/DQ placement and types, read from the graph (independently of the lint):
    Q/DQ only on the inputs of weighted layers, max pooling, one input of a residual Add and
    concats; every convolution reads int8; no QuantizeLinear reads a ReLU's input; the lint finds
    no error and no fusion blocker; fp16 body, fp32 post-processing."""
    from sspnet.export.trt_lint import fusion_blockers, lint_graph

    producers = {out: node for node in model.graph.node for out in node.output}
    readers = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] not in {i.name for i in model.graph.initializer}:
            assert {r.op_type for r in readers[node.output[0]]} <= {"Conv", "Gemm", "MaxPool", "Add", "Concat"}, (
                node.name
            )
        if node.op_type == "Conv":
            assert producers[node.input[0]].op_type == "DequantizeLinear", node.name  # int8 input
            assert producers[node.input[1]].op_type == "DequantizeLinear", node.name  # int8 weights
        if node.op_type == "Add" and all(name in producers for name in node.input):
            assert [producers[name].op_type for name in node.input].count("DequantizeLinear") <= 1, node.name
        if node.op_type == "QuantizeLinear":
            assert producers[node.input[0]].op_type != "Conv" or not any(
                r.op_type == "Relu" for dq in readers[node.output[0]] for r in readers.get(dq.output[0], [])
            ), node.name
    findings = lint_graph(model)
    assert [f for f in findings if f.severity == "error"] == []
    assert set(fusion_blockers(findings).values()) == {0}
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(model.graph.output)}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs and all(types.get(node.output[0]) == onnx.TensorProto.FLOAT16 for node in convs)
    topk = [node for node in model.graph.node if node.op_type in ("TopK", "NonMaxSuppression")]
    assert topk and all(types.get(node.input[0]) == onnx.TensorProto.FLOAT for node in topk)  # scores in fp32
    assert len(convs) == sum(node.op_type == "Conv" for node in source.graph.node)


def _modelopt_python():
    """An interpreter with NVIDIA Model Optimizer: $SSPNET_MODELOPT_PYTHON, or this one if it has it."""
    import importlib.util
    import os

    if os.environ.get("SSPNET_MODELOPT_PYTHON"):
        return os.environ["SSPNET_MODELOPT_PYTHON"]
    return sys.executable if importlib.util.find_spec("modelopt") else None


@pytest.fixture(scope="module")
def demo_detector(tmp_path_factory):
    """(portable .onnx of the demo recipe's detector, random weights, 128 x 128; a data folder)."""
    from sspnet.export.onnx_export import export_onnx

    from sspnet.data.synth import write_dataset
    from sspnet.engine.recipes import SYNTHETIC_CPU
    from sspnet.models import build_model

    folder = tmp_path_factory.mktemp("demo_detector")
    torch.manual_seed(0)
    model = build_model(SYNTHETIC_CPU.preset, **SYNTHETIC_CPU.overrides).eval()
    path = export_onnx(model, folder / "demo.onnx", imgsz=(128, 128))
    write_dataset(folder / "data", 4, seed=0, val_fraction=0.5, size=(128, 128), progress=False)
    return path, folder / "data"


@pytest.mark.skipif(
    _modelopt_python() is None,
    reason="NVIDIA Model Optimizer is not installed (set SSPNET_MODELOPT_PYTHON to an interpreter that has it)",
)
def test_no_fusion_blocker_that_model_optimizer_placement_does_not_have(demo_detector, tmp_path):
    """The reference: Model Optimizer's INT8 placement of the same model (benchmarks/modelopt_reference.py)."""
    from pathlib import Path

    from sspnet.export.trt_lint import fusion_blockers, lint_file

    path, data = demo_detector
    tiles = tmp_path / "tiles.npy"
    np.save(tiles, np.concatenate(list(calibration_tiles(calibration_images(data), (128, 128), 4))))
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "modelopt_reference.py"
    run = subprocess.run(
        [
            _modelopt_python(),
            str(script),
            "--model",
            str(path),
            "--calib",
            str(tiles),
            "--out",
            str(tmp_path / "mo.onnx"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    reference_model = onnx.load(str(tmp_path / "mo.onnx"))
    assert sum(n.op_type == "QuantizeLinear" for n in reference_model.graph.node) > 50  # it did quantize the body
    ours = tmp_path / "ours.onnx"
    quantize_onnx(path, ours, data, QuantizeSettings(method="minmax", max_tiles=4, progress=False), log=lambda *_: None)
    reference = fusion_blockers(lint_file(tmp_path / "mo.onnx"))
    mine = fusion_blockers(lint_file(ours))
    assert all(mine[rule] <= reference[rule] for rule in mine), (mine, reference)


def test_tensorrt_form_is_scored_with_qdq_computed_as_written(blob_model, tmp_path):
    """sspnet.benchmark.int8 scores the TensorRT form with ONNX Runtime's Q/DQ fusions off: its
    outputs then match ONNX's reference evaluator (onnx.reference, the operators' definitions).
    (On this small model ONNX Runtime's fused int8 kernels agree too; on the trained demo model they
    do not: benchmarks/results/int8.json, ap50_tiny vs ap50_tiny_onnxruntime_kernels.)"""
    from onnx.reference import ReferenceEvaluator

    from sspnet.benchmark.int8 import open_onnx

    path, calib = blob_model
    out = tmp_path / "q.onnx"
    # ONNX Runtime's placement: DQ -> Conv -> Q, which its default session fuses into int8 kernels
    quantize_onnx(
        path,
        out,
        calib,
        QuantizeSettings(method="minmax", float_type="fp32", placement="onnxruntime", progress=False),
        log=lambda *_: None,
    )
    images = np.ascontiguousarray(blob_images(2, seed=5)[0].transpose(0, 3, 1, 2))
    graph = onnx.load(str(out))
    graph.opset_import[0].version = 19  # onnx.reference implements Q/DQ from opset 19 (same int8 semantics)
    reference = dict(
        zip(["num_dets", "boxes", "scores", "labels"], ReferenceEvaluator(graph).run(None, {"images": images}))
    )
    exact = open_onnx(str(out), exact_qdq=True).infer(images)
    np.testing.assert_allclose(exact["scores"], reference["scores"], atol=1e-5)
    np.testing.assert_array_equal(exact["boxes"], reference["boxes"])
