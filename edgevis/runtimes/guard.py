"""Refuse, in one line, to load a compiled artifact where it cannot work.

A TensorRT engine runs only with the TensorRT version and on the GPU class it was
built for; an ONNX Runtime-optimized model (``ORT_ENABLE_ALL`` lays out NCHWc
kernels for this CPU) only with the ONNX Runtime and provider it was saved by.
Both fail opaquely elsewhere (TensorRT logs "Error Code 6" and returns None;
ORT rejects an unknown op in a domain). Every such file edgevis writes carries a
JSON sidecar, and these checks compare it with what is running before loading.
Pure functions of two dicts: testable without a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import EdgevisError

KIND_TRT = "tensorrt-engine"
KIND_ORT = "onnxruntime-optimized"


class RuntimeMismatchError(EdgevisError):
    """A compiled file built for another runtime version or device."""


def _v3(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:3])


def engine_mismatch(sidecar: dict[str, Any], running: dict[str, Any]) -> str | None:
    """Why an engine described by ``sidecar`` cannot run under ``running``
    (``{"tensorrt": "10.3.0", "gpu": {"name": ..., "compute_capability": "8.7"}}``), or None."""
    built_trt, now_trt = sidecar.get("tensorrt"), running.get("tensorrt")
    built_gpu, now_gpu = sidecar.get("gpu") or {}, running.get("gpu") or {}
    where = f"{built_gpu.get('name', '?')} (compute {built_gpu.get('compute_capability', '?')})"
    if built_trt and now_trt and _v3(built_trt) != _v3(now_trt):
        return (f"built with TensorRT {built_trt} on {where}, but this is TensorRT {now_trt}; "
                "engines only load in the TensorRT version that built them - rebuild it here with `edgevis build`")
    cc_built, cc_now = built_gpu.get("compute_capability"), now_gpu.get("compute_capability")
    if cc_built and cc_now and str(cc_built) != str(cc_now):
        return (f"built for {where}, but this GPU is {now_gpu.get('name', '?')} (compute {cc_now}); "
                "engines are specific to the GPU they were built for - rebuild it here with `edgevis build`")
    if sidecar.get("dla_core") is not None and running.get("dla_cores") is not None \
            and int(sidecar["dla_core"]) >= int(running["dla_cores"]):
        return (f"built for DLA core {sidecar['dla_core']}, but this device has {running['dla_cores']} DLA core(s)")
    return None


def ort_mismatch(sidecar: dict[str, Any], running_version: str, providers: list[str]) -> str | None:
    """Why an ORT-optimized model described by ``sidecar`` cannot load here, or None."""
    built = sidecar.get("onnxruntime")
    if built and _v3(built) != _v3(running_version):
        return (f"optimized by ONNX Runtime {built}, but this is ONNX Runtime {running_version}; the saved graph holds "
                f"kernels laid out for that version - rebuild it from {sidecar.get('source', 'the source model')} "
                "with `edgevis build --runtime ort`")
    want = (sidecar.get("providers") or [None])[0]
    if want and want not in providers:
        return (f"optimized for {want}, but the session would use {', '.join(providers)}; rebuild it from "
                f"{sidecar.get('source', 'the source model')} for this device")
    return None


def check_sidecar_matches_file(sidecar: dict[str, Any], path: Path) -> str | None:
    """The sidecar must describe this very file: its sha256 recorded and equal to the file's. A sidecar that
    records none cannot vouch for the file (the guard does not switch itself off for want of a hash)."""
    from ..core.files import sha256_file

    want = sidecar.get("sha256")
    if not isinstance(want, str) or not want:
        return f"its sidecar {path.name}.json records no sha256: it cannot tell whether it describes this file"
    if want != sha256_file(path):
        return f"its sidecar {path.name}.json describes another file (sha256 differs): it was replaced or edited"
    return None
