"""Classify images with an exported ONNX file, using the preprocessing it records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EdgevisError, OnnxFileError, PreprocessError
from ..core.onnxfile import META_PREPROCESS, META_PROVENANCE, data_type_name, get_metadata, load_onnx, read_json_metadata
from ..core.sidecar import load_sidecar
from ..core.types import Preprocess
from .guard import RuntimeMismatchError, check_sidecar_matches_file
from .ort import OrtRunner


MAX_FIXED_BATCH = 1024  # a fixed batch dimension predict pads one image to


def recorded_preprocess(model_file: str | os.PathLike[str], model: Any = None) -> tuple[Preprocess, dict[str, Any]]:
    """The preprocessing and provenance recorded at export (ONNX metadata, else the sidecar).
    Pass ``model`` (the loaded ModelProto of ``model_file``) to avoid parsing the file again.

    A record that is there but malformed is a :class:`PreprocessError` naming the file and the bad key."""
    if model is None:
        model = load_onnx(model_file, check=False)
    name = Path(model_file)
    raw = get_metadata(model).get(META_PREPROCESS)
    pre = read_json_metadata(model, META_PREPROCESS)
    if raw is not None and pre is None:
        raise PreprocessError(f"{name}: its {META_PREPROCESS} metadata is not a JSON object")
    prov = read_json_metadata(model, META_PROVENANCE) or {}
    if pre is None:
        side = load_sidecar(model_file)
        sidecar = side.data if side.ok else {}
        pre = sidecar.get("preprocess")
        prov = prov or sidecar
        if pre is None and not side.ok and not side.missing:
            raise PreprocessError(f"{name} carries no preprocessing record in its metadata, and its sidecar "
                                  f"{side.path.name} is unreadable ({side.problem})")
    if pre is None:
        raise EdgevisError(
            f"{name} carries no preprocessing record (not written by `edgevis export`); "
            "export it with edgevis, or add a sidecar JSON with a 'preprocess' entry"
        )
    try:
        return Preprocess.from_dict(pre), prov
    except PreprocessError as e:
        raise PreprocessError(f"{name}: {e}") from None


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def check_classifier(model: Any, spec: Preprocess, model_file: str | os.PathLike[str]) -> str:
    """The name of the one image input of an image classifier, after checking the graph is one: one 4-D float
    input whose channel and spatial sizes agree with the recorded preprocessing, and a first output of rank 2
    (batch, classes) where the graph says. Raises :class:`OnnxFileError` naming what does not fit."""
    name = Path(model_file)
    inits = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if len(inputs) != 1:
        raise OnnxFileError(f"{name} takes {len(inputs)} inputs ({', '.join(repr(v.name) for v in inputs[:4])}); "
                            "predict needs an image classifier with one image input")
    vi = inputs[0]
    tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    kind = data_type_name(tt.elem_type) if tt is not None else vi.type.WhichOneof("value")
    if tt is None or kind != "FLOAT":
        raise OnnxFileError(f"{name}: input {vi.name!r} is of type {kind}; predict feeds float32 images")
    if tt.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) != 4:
            raise OnnxFileError(f"{name}: input {vi.name!r} has {len(dims)} dimensions; predict feeds one image "
                                "as a 4-D (batch, channels, height, width) tensor")
        if dims[0] is not None and dims[0] > MAX_FIXED_BATCH:
            raise OnnxFileError(f"{name}: input {vi.name!r} has a fixed batch of {dims[0]}; predict pads one image "
                                f"to the batch and takes at most {MAX_FIXED_BATCH}")
        want = (None, *spec.image_shape())
        for k, (have, need) in enumerate(zip(dims, want)):
            if k and have is not None and have != need:
                raise OnnxFileError(
                    f"{name}: input {vi.name!r} has shape {_show(dims)}, but the preprocessing it records makes "
                    f"{spec.layout} images of {_show(list(spec.image_shape()))} (input size "
                    f"{spec.input_size[0]}x{spec.input_size[1]}); the record and the graph disagree")
    if not model.graph.output:
        raise OnnxFileError(f"{name} has no outputs")
    out = model.graph.output[0]
    ot = out.type.tensor_type if out.type.HasField("tensor_type") else None
    if ot is not None and ot.HasField("shape") and len(ot.shape.dim) != 2:
        raise OnnxFileError(f"{name}: output {out.name!r} has {len(ot.shape.dim)} dimensions; predict needs "
                            "class scores of shape (batch, classes)")
    return vi.name


def _show(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def predict_image(model_file: str | os.PathLike[str], image: str | os.PathLike[str], *, top: int = 5,
                  threads: int | None = None, runtime: str = "ort", precision_hint: str = "auto") -> dict[str, Any]:
    """The ``top`` classes of one image; ``result["unverified"]`` says why the model file could not be
    checked against its sidecar (None when it matches). ``runtime="openvino"`` compiles the ONNX file with
    OpenVINO (``precision_hint``); ``result["precision"]`` is then what the compiled model ran in."""
    from ..data.imagenet import imagenet_classes
    from ..data.preprocess import preprocess_file

    if top < 1:
        raise EdgevisError(f"--top must be >= 1 (got {top})")
    if runtime not in ("ort", "openvino"):
        raise EdgevisError(f"unknown --runtime {runtime!r}; use ort or openvino")
    model = load_onnx(model_file, check=False)
    spec, prov = recorded_preprocess(model_file, model)
    check_classifier(model, spec, model_file)
    side = load_sidecar(model_file)
    if side.ok and side.data.get("sha256"):
        # a sidecar that describes another file is refused, as the C++ runtime refuses it (its
        # provenance and preprocessing are not this file's); none, or an unreadable one, is only said
        why = check_sidecar_matches_file(side.data, Path(model_file))
        if why is not None:
            raise RuntimeMismatchError(f"{model_file} cannot load here: {why}")
    unverified = side.unverified(model_file)
    x = preprocess_file(image, spec)[None]
    precision = None
    try:
        if runtime == "openvino":
            from .openvino import OvConfig, OvRunner

            with OvRunner(model_file, OvConfig(precision=precision_hint, threads=threads)) as ov:
                out, precision = _pad_batch(ov, x), ov.precision
        else:
            with OrtRunner(model_file, threads=threads) as runner:
                out = runner.infer_batched(x)
    except MemoryError:
        raise OnnxFileError(f"{Path(model_file).name}: running it needs more memory than this machine has") from None
    if out.ndim != 2 or out.shape[0] != 1 or out.shape[1] < 1:
        raise OnnxFileError(f"{Path(model_file).name} returned scores of shape {list(out.shape)} for one image; "
                            "predict needs (batch, classes)")
    logits = out[0]
    if not np.issubdtype(logits.dtype, np.number) or not np.all(np.isfinite(logits.astype(np.float64))):
        raise OnnxFileError(f"{Path(model_file).name} returned non-finite or non-numeric scores for {Path(image).name}")
    probs = softmax(logits.astype(np.float64))
    names = imagenet_classes() if probs.shape[-1] == 1000 else None
    order = np.argsort(-probs)[:top]
    return {
        "model": prov.get("model"),
        "model_file": str(model_file),
        "image": str(image),
        "weights": prov.get("weights"),
        "unverified": unverified,
        "runtime": "openvino" if runtime == "openvino" else "onnxruntime",
        "precision": precision,
        "top": [
            {"index": int(i), "name": names[i] if names else f"class {i}", "probability": float(probs[i]),
             "logit": float(logits[i])}
            for i in order
        ],
    }


def _pad_batch(runner: Any, x: np.ndarray) -> np.ndarray:
    """OpenVINO's answer for one image, padded to a fixed batch as ``OrtRunner.infer_batched`` does."""
    want = runner.input_shapes()[runner.input_names[0]][0]
    if want is not None and want > x.shape[0]:
        return runner.infer(np.concatenate([x] * want))[: x.shape[0]]
    return runner.infer(x)
