"""Quantization: calibration data, standard INT8 (Q/DQ via onnxruntime.quantization)."""
