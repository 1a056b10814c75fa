"""sspnet.runtime: onboard inference with ONNX Runtime or TensorRT. Never imports torch.

This folder (runtime/ at the top of the repository) installs as `sspnet.runtime` (setup.py's package_dir),
so `import sspnet.runtime.tiling` is the file runtime/tiling.py. Layers: docs/architecture.md.

    from sspnet.runtime import load_backend, Detector
    backend = load_backend("model.onnx")          # or model.engine (TensorRT), or best.safetensors (torch,
                                                  # imported only then: a checkpoint needs torch installed)
    backend.metadata.classes, backend.input_size
    outputs = backend.infer(images_uint8_nchw)    # num_dets, boxes, scores, labels
    detections = Detector(backend).detect(frame_hwc_uint8)

The names below are imported on first use, so `import sspnet.runtime` stays cheap (no numpy,
no onnxruntime until needed).
"""

import importlib

_EXPORTS = {
    "load_backend": "backend",
    "Backend": "backend",
    "ModelMetadata": "backend",
    "MetadataError": "backend",
    "Detector": "detector",
    "Detections": "detector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
