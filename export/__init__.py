"""sspnet.export: torch -> ONNX (portable and TensorRT flavours), graph clean-up, parity checks.

This folder (export/ at the top of the repository) installs as `sspnet.export` (setup.py's package_dir),
so `import sspnet.export.quantize` is the file export/quantize.py. Layers: docs/architecture.md.
"""
