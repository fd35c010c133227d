"""torch -> ONNX with parity checks. ``from edgevis.exporters.onnx import export_onnx``."""
