"""edgevis: take modern vision backbones to edge devices.

``import edgevis`` is light (no torch, no onnxruntime): names are resolved on
first use so that the device-side tools run where only onnxruntime exists.
"""

from __future__ import annotations

from typing import Any

from .core.errors import EdgevisError

__version__ = "0.1.0"

_LAZY = {
    "create_model": "edgevis.catalog.factory",
    "reparameterize": "edgevis.catalog.factory",
    "list_models": "edgevis.catalog.registry",
    "model_info": "edgevis.catalog.registry",
    "export_onnx": "edgevis.exporters.onnx",
    "OrtRunner": "edgevis.runtimes.ort",
    "session_from_onnx": "edgevis.runtimes.ort",
}

__all__ = ["EdgevisError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgevis' has no attribute {name!r}")
