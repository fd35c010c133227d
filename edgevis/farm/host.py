"""The head's share of a sweep: export and quantize each model once, here, where torch is.

Each model gets its own folder under the output directory (two labels of one catalog
model, e.g. at two input sizes, must not overwrite each other's files). Files already
there are reused when their sidecars prove they match, by the same rules as ``bench``.
The held-out images are preprocessed here, once per model, so every board measures
fidelity on the very same arrays (their sha256 is part of each cell's key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import ModelSpec, SweepConfig


@dataclass
class ModelFiles:
    """One model's files for the sweep, prepared on the head."""

    spec: ModelSpec
    paths: dict[str, Path]  # precision -> ONNX file
    sha256: dict[str, str]
    reused: list[str]
    preprocess: dict[str, Any]
    held: Any  # (N, C, H, W) float32 array of the held-out images, preprocessed for this model
    held_sha256: str
    held_label: str
    warnings: list[str] = field(default_factory=list)
    payloads: dict[str, Any] = field(default_factory=dict)  # precision -> Payload, when made on the host node


def _bench_config(config: SweepConfig, spec: ModelSpec):  # type: ignore[no-untyped-def]
    from ..pipeline.benching import BenchConfig

    return BenchConfig(model=spec.name, precisions=config.precisions, output_dir=config.output_dir / spec.label,
                       weights=spec.weights, input_size=spec.input_size, calib_dir=config.calib_dir,
                       holdout_dir=config.holdout_dir, reuse=config.reuse, rounds=config.rounds,
                       profile=config.profile)


def prepare_model(config: SweepConfig, spec: ModelSpec, log: Callable[[str], None]) -> ModelFiles:
    import numpy as np

    from ..catalog.registry import model_info
    from ..core.errors import EdgevisError
    from ..core.files import sha256_file
    from ..quant.calibration import calibration_sources
    from ..runtimes.predict import recorded_preprocess

    from ..pipeline.benching import artifacts as make_artifacts

    model_info(spec.name)  # an unknown name fails here, with close names
    warnings: list[str] = []
    if spec.weights is None:
        warnings.append(f"{spec.label}: no weights given, so the model has RANDOM weights; its latency and energy "
                        "are real, but its fidelity figures say nothing about a trained model")
    log(f"{spec.label}: exporting or reusing {', '.join(config.precisions)}")
    paths, reused = make_artifacts(_bench_config(config, spec), log, warnings)
    spec_pre, _ = recorded_preprocess(paths["fp32"])
    _, held_src = calibration_sources(config.calib_dir, config.holdout_dir, [])
    arrays = list(held_src.arrays(spec_pre))
    if not arrays:
        raise EdgevisError(f"no readable held-out image in {held_src.label}")
    held = np.ascontiguousarray(np.stack(arrays).astype(np.float32))
    return ModelFiles(spec, dict(paths), {p: sha256_file(f) for p, f in paths.items()}, list(reused),
                      spec_pre.to_dict(), held, hashlib.sha256(held.tobytes()).hexdigest(), held_src.label,
                      warnings)


def torch_here() -> bool:
    """Whether this process can export (torch imports here)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def prepare_on_host(config: SweepConfig, spec: ModelSpec) -> ModelFiles:
    """The Ray task body that runs :func:`prepare_model` on the node declaring ``host``; the files' bytes
    come back with it (as the payloads the boards receive), since the sweep's machine cannot read them."""
    from ..core.files import ensure_writable_dir
    from .board import payload_of

    ensure_writable_dir(config.output_dir)
    mf = prepare_model(config, spec, lambda s: None)
    mf.payloads = {p: payload_of(path, mf.sha256[p]) for p, path in mf.paths.items()}
    return mf


def prepare_remote(ray: Any, config: SweepConfig, log: Callable[[str], None]) -> dict[str, ModelFiles]:
    """Each model exported and quantized on the cluster's ``host`` node, one after the other (for a sweep
    run where torch is not installed, e.g. a laptop joined through ``ray://``). Paths in ``config``
    (weights, calibration and held-out images, output folder) name files on that node."""
    from ..core.errors import EdgevisError
    from .cluster import _reason

    if not ray.cluster_resources().get("host"):
        raise EdgevisError("torch is not installed here, and no node of the cluster declares the host resource "
                           "to export on (start the head with: edgevis worker --head --resources host; or run "
                           "the sweep where torch is installed)")
    task = ray.remote(prepare_on_host).options(resources={"host": 0.001}, max_retries=0)
    out = {}
    for spec in config.models:
        log(f"{spec.label}: exporting or reusing {', '.join(config.precisions)} on the cluster's host node "
            "(torch is not installed here)")
        try:
            out[spec.label] = ray.get(task.remote(config, spec))
        except Exception as e:
            raise EdgevisError(f"{spec.label}: exporting on the host node failed: {_reason(ray, e)}") from None
    return out
