"""edgevis: take modern vision backbones to edge devices.

``import edgevis`` is light (no torch, no onnxruntime): names are resolved on
first use so that the device-side tools run where only onnxruntime exists.
"""

from __future__ import annotations

from typing import Any

from .core.errors import EdgevisError

__version__ = "0.1.0"

_LAZY = {
    # the pipeline: one call per job, typed configs in, typed results (with to_dict()) out
    "export": "edgevis.pipeline.exporting",
    "ExportRun": "edgevis.pipeline.exporting",
    "quantize": "edgevis.pipeline.quantizing",
    "QuantizeRun": "edgevis.pipeline.quantizing",
    "PreprocessOptions": "edgevis.pipeline.sources",
    "build": "edgevis.pipeline.building",
    "bench": "edgevis.pipeline.benching",
    "BenchConfig": "edgevis.pipeline.benching",
    "BenchResult": "edgevis.pipeline.benching",
    "sweep": "edgevis.farm",
    "SweepConfig": "edgevis.farm",
    "SweepResult": "edgevis.farm",
    "ProfileConfig": "edgevis.profile.profiler",
    "ProfileResult": "edgevis.profile.api",
    "write_report": "edgevis.report",
    # the configs of the stages
    "ExportConfig": "edgevis.exporters.onnx",
    "ExportResult": "edgevis.exporters.onnx",
    "Int8Config": "edgevis.quant.int8",
    "IntegerOnlyConfig": "edgevis.quant.integer_only",
    "QuantizedFile": "edgevis.quant.fidelity",
    "OrtBuildConfig": "edgevis.runtimes.ort_build",
    "OrtBuild": "edgevis.runtimes.ort_build",
    "TrtBuildConfig": "edgevis.runtimes.trt",
    "TrtBuild": "edgevis.runtimes.trt",
    "OvConfig": "edgevis.runtimes.openvino",
    "OvBuild": "edgevis.runtimes.openvino",
    "Preprocess": "edgevis.core.types",
    # the stages themselves
    "create_model": "edgevis.catalog.factory",
    "reparameterize": "edgevis.catalog.factory",
    "list_models": "edgevis.catalog.registry",
    "model_info": "edgevis.catalog.registry",
    "export_onnx": "edgevis.exporters.onnx",
    "OrtRunner": "edgevis.runtimes.ort",
    "session_from_onnx": "edgevis.runtimes.ort",
    "predict_image": "edgevis.runtimes.predict",
}

__all__ = ["EdgevisError", "__version__", "profile", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "profile":
        # the profile package is callable: edgevis.profile(path, ...) is edgevis.profile.api.profile
        import importlib

        return importlib.import_module("edgevis.profile")
    raise AttributeError(f"module 'edgevis' has no attribute {name!r}")
