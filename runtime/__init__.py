"""sspnet.runtime: onboard inference with ONNX Runtime or TensorRT. Never imports torch."""
