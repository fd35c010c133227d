"""Runtimes: what runs on the device. ``ort`` (ONNX Runtime); TensorRT lives in ``trt`` (GPU only)."""
