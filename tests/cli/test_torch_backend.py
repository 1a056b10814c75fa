"""The torch backend (sspnet.inference.torch_backend) behind the runtime's Detector, its attention
maps, and `sspnet predict --attention` with a real (random-weight) SSPNet checkpoint."""

import json

import cv2
import numpy as np
import pytest
import torch
from cli_markers import TILE, TorchMarker, marker_frame, write_rgb
from runtime_models import expected_detections
from sspnet.runtime.detector import Detector
from sspnet.runtime.tiling import tile_grid

from sspnet.cli import main
from sspnet.inference.torch_backend import TorchBackend

SMALL = {
    "neck_channels": 16,
    "fovea_feat_channels": 16,
    "fovea_stacked_convs": 1,
    "fovea_nms_pre": 50,
    "max_detections": 20,
}
PRESET = "fovea_r18_sspnet_small"


def test_tiled_frame_matches_the_closed_form():
    backend = TorchBackend(TorchMarker.module(), input_size=TILE, device="cpu", metadata=TorchMarker.metadata())
    markers = [(10, 20, 200, 0), (250, 140, 100, 0), (110, 60, 150, 0), (299, 0, 250, 0)]
    frame = marker_frame(150, 300, markers)
    found = Detector(backend).detect(frame)
    boxes, scores, labels = expected_detections(markers, 150, 300)
    np.testing.assert_allclose(found.boxes, boxes)
    np.testing.assert_allclose(found.scores, scores, rtol=1e-6)
    np.testing.assert_array_equal(found.labels, labels)
    assert backend.name == "torch" and backend.fixed_batch is None


def test_bad_settings_are_named():
    module, metadata = TorchMarker.module(), TorchMarker.metadata()
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        TorchBackend(module, input_size=TILE, device="cpu", precision="fp16", metadata=metadata)
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        TorchBackend(module, input_size=TILE, device="cpu", cuda_graph=True, metadata=metadata)
    with pytest.raises(ValueError, match="precision must be one of"):
        TorchBackend(module, input_size=TILE, device="cpu", precision="int8", metadata=metadata)
    with pytest.raises(ValueError, match="has no sspnet `config`"):
        TorchBackend(module, input_size=TILE, device="cpu")
    with pytest.raises(ValueError, match=r"metadata.input_size \(96, 128\) != input_size \(64, 64\)"):
        TorchBackend(module, input_size=(64, 64), device="cpu", metadata=metadata)
    with pytest.raises(ValueError, match="input_size must be"):
        TorchBackend(module, input_size=(96,), device="cpu", metadata=metadata)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        TorchBackend("model.pt", input_size=TILE)


@pytest.fixture(scope="module")
def sspnet_model():
    from sspnet.models import build_model

    torch.manual_seed(0)
    return build_model(PRESET, **SMALL).eval()


@pytest.mark.parametrize("max_tiles_per_batch", [1, None])  # 4 tiles in 4 model calls, or in one
def test_sspnet_model_metadata_and_attention(sspnet_model, max_tiles_per_batch):
    backend = TorchBackend(sspnet_model, input_size=(64, 96), device="cpu", record_attention=True)
    assert backend.metadata.preset == PRESET and backend.metadata.classes == ("person",)
    assert backend.metadata.max_detections == SMALL["max_detections"]
    assert backend.metadata.nms["method"] == sspnet_model.config.nms_method  # soft-NMS stays soft in torch

    frame = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    found = Detector(backend, tile_overlap=16, max_tiles_per_batch=max_tiles_per_batch).detect(frame)
    assert (found.boxes[:, 0::2] <= 150).all() and (found.boxes[:, 1::2] <= 100).all()

    grid = tile_grid(100, 150, 64, 96, 16)
    maps = backend.last_attention
    assert [m.shape for m in maps] == [(len(grid), 1, 64 // s, 96 // s) for s in (4, 8, 16, 32)]
    assert all(((m >= 0) & (m <= 1)).all() for m in maps)
    # the hook's maps are the neck's: the same as calling the model's feature extractor on the tiles
    from sspnet.runtime.tiling import cut_tiles

    tiles = torch.from_numpy(cut_tiles(frame, grid, 64, 96)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        _, attention = sspnet_model.extract_features(tiles)
    for got, want in zip(maps, attention):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_non_multiple_of_32_is_refused(sspnet_model):
    with pytest.raises(ValueError, match="multiples of 32"):
        TorchBackend(sspnet_model, input_size=(100, 96), device="cpu")


def test_predict_cli_with_checkpoint_and_attention(sspnet_model, tmp_path):
    from sspnet.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", sspnet_model, preset=PRESET, overrides=SMALL)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in range(2):
        write_rgb(folder / f"im{k}.png", rng.integers(0, 256, (90, 130, 3), dtype=np.uint8))
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(folder),
            "--model",
            str(checkpoint),
            "--imgsz",
            "64",
            "96",
            "--device",
            "cpu",
            "--attention",
            "--conf",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    for k in range(2):
        assert cv2.imread(str(out / f"im{k}.png")).shape == (90, 130, 3)
        assert cv2.imread(str(out / "attention" / f"im{k}.png")).shape == (90, 130, 3)
    results = json.loads((out / "detections.json").read_text())
    assert {r["image_id"] for r in results} <= {1, 2}
    assert all(r["bbox"][2] >= 0 and r["bbox"][3] >= 0 and r["category_id"] == 1 for r in results)
