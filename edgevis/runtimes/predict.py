"""Classify images with an exported ONNX file, using the preprocessing it records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EdgevisError
from ..core.types import Preprocess, read_sidecar
from ..core.onnxfile import META_PREPROCESS, META_PROVENANCE, load_onnx, read_json_metadata
from .ort import OrtRunner


def recorded_preprocess(model_file: str | os.PathLike[str], model: Any = None) -> tuple[Preprocess, dict[str, Any]]:
    """The preprocessing and provenance recorded at export (ONNX metadata, else the sidecar).
    Pass ``model`` (the loaded ModelProto of ``model_file``) to avoid parsing the file again."""
    if model is None:
        model = load_onnx(model_file, check=False)
    pre = read_json_metadata(model, META_PREPROCESS)
    prov = read_json_metadata(model, META_PROVENANCE) or {}
    if pre is None:
        sidecar = read_sidecar(model_file) or {}
        pre = sidecar.get("preprocess")
        prov = prov or sidecar
    if pre is None:
        raise EdgevisError(
            f"{Path(model_file)} carries no preprocessing record (not written by `edgevis export`); "
            "export it with edgevis, or add a sidecar JSON with a 'preprocess' entry"
        )
    return Preprocess.from_dict(pre), prov


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predict_image(model_file: str | os.PathLike[str], image: str | os.PathLike[str], *, top: int = 5,
                  threads: int | None = None) -> dict[str, Any]:
    from ..data.imagenet import imagenet_classes
    from ..data.preprocess import preprocess_file

    spec, prov = recorded_preprocess(model_file)
    x = preprocess_file(image, spec)[None]
    with OrtRunner(model_file, threads=threads) as runner:
        logits = runner.infer_batched(x)[0]
    probs = softmax(logits.astype(np.float64))
    names = imagenet_classes() if probs.shape[-1] == 1000 else None
    order = np.argsort(-probs)[:top]
    return {
        "model": prov.get("model"),
        "model_file": str(model_file),
        "image": str(image),
        "weights": prov.get("weights"),
        "top": [
            {"index": int(i), "name": names[i] if names else f"class {i}", "probability": float(probs[i]),
             "logit": float(logits[i])}
            for i in order
        ],
    }
