"""sspnet.export: torch -> ONNX (portable and TensorRT flavours), graph clean-up, parity checks."""
