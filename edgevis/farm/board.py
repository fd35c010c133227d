"""What runs on a board: receive the files, build what must be built here, measure fidelity, profile.

Nothing here needs torch: a board has the device-side install (onnx, onnxruntime, numpy,
and TensorRT where it runs engines). Files arrive as :class:`Payload` values (bytes and
sidecar, through Ray's object store) and land, checked against their sha256, in a cache
keyed by that hash (``$EDGEVIS_FARM_CACHE``, default ``~/.cache/edgevis/farm``). A TensorRT
engine is built on the board that runs it, with a timing cache kept per board.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..core.errors import EdgevisError
from .cells import CellJob

VERSION_KEYS = ("edgevis", "onnxruntime")  # a board must run the head's versions of these


@dataclass(frozen=True)
class Payload:
    """One file as it travels to a board: its name, sha256, bytes and sidecar bytes."""

    name: str
    sha256: str
    data: bytes
    sidecar: bytes | None


def payload_of(path: Path, sha256: str) -> Payload:
    from ..core.sidecar import sidecar_path

    side = sidecar_path(path)
    return Payload(path.name, sha256, path.read_bytes(), side.read_bytes() if side.is_file() else None)


def cache_root() -> Path:
    return Path(os.environ.get("EDGEVIS_FARM_CACHE") or Path.home() / ".cache" / "edgevis" / "farm")


def materialize(payload: Payload, root: Path) -> Path:
    """``root/<sha256>/<name>`` (and its sidecar), written atomically once; the bytes are checked first."""
    from ..core.files import sha256_file, write_bytes_atomic
    from ..core.sidecar import sidecar_path

    path = root / payload.sha256 / payload.name
    if path.is_file() and sha256_file(path) == payload.sha256:
        return path
    got = hashlib.sha256(payload.data).hexdigest()
    if got != payload.sha256:
        raise EdgevisError(f"{payload.name} arrived damaged: sha256 {got[:12]}…, expected {payload.sha256[:12]}…")
    if payload.sidecar is not None:
        write_bytes_atomic(sidecar_path(path), payload.sidecar)
    write_bytes_atomic(path, payload.data)
    return path


def versions() -> dict[str, str | None]:
    """The versions a board is checked on (edgevis, onnxruntime), and what else it runs."""
    from importlib import metadata

    from .. import __version__

    out: dict[str, str | None] = {"edgevis": __version__}
    for dist in ("onnxruntime", "onnxruntime-gpu", "tensorrt", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if "onnxruntime" not in out:
        out["onnxruntime"] = out.pop("onnxruntime-gpu", None)
    return out


def version_mismatch(head: dict[str, Any], board: dict[str, Any]) -> str | None:
    """Why ``board`` may not measure for ``head`` (another edgevis or ONNX Runtime), or None."""
    diffs = [f"{k} {board.get(k) or 'missing'} (the head runs {head.get(k) or 'none'})"
             for k in VERSION_KEYS if board.get(k) != head.get(k)]
    return "runs " + " and ".join(diffs) if diffs else None


def node_info() -> dict[str, Any]:
    """Where this code runs: host name, and under Ray the node id, its address and declared resources."""
    info: dict[str, Any] = {"hostname": socket.gethostname(), "pid": os.getpid(), "node_id": None,
                            "label": os.environ.get("EDGEVIS_BOARD_LABEL")}  # set by edgevis worker --label
    try:
        import ray

        if ray.is_initialized():
            ctx = ray.get_runtime_context()
            info["node_id"] = ctx.get_node_id()
            info["assigned"] = {k: v for k, v in ctx.get_assigned_resources().items()}
            for n in ray.nodes():
                if n.get("NodeID") == info["node_id"]:
                    info["address"] = n.get("NodeManagerAddress")
                    info["resources"] = {k: v for k, v in n.get("Resources", {}).items()
                                         if k.startswith("board:") or k in ("CPU", "GPU", "host")}
    except ImportError:
        pass
    return info


def _round_config(profile: Any, rounds: int, r: int) -> Any:
    """Round ``r``'s profile settings: the iterations (or seconds) split over the rounds; per-layer last."""
    from ..profile.profiler import DEFAULT_DURATION_S

    share: dict[str, Any] = ({"iters": max(1, math.ceil(profile.iters / rounds))} if profile.iters is not None
                             else {"duration_s": (profile.duration_s or DEFAULT_DURATION_S) / rounds})
    return replace(profile, per_layer=profile.per_layer and r == rounds - 1, **share)


def _engine_here(onnx_path: Path, precision: str, board: str, root: Path, log: Callable[[str], None]) -> Path:
    """A TensorRT engine built on this board (reused when its sidecar names this source, TensorRT and GPU);
    the timing cache is this board's own, so a second engine builds faster."""
    from ..core.files import sha256_file
    from ..core.types import read_sidecar
    from ..runtimes.trt import TrtBuildConfig, check_engine, engine_from_onnx, running_info

    trt_precision = "int8" if precision == "int8" else "fp32"
    path = root / "engines" / board / f"{onnx_path.name[:-5]}.{trt_precision}.engine"
    side = read_sidecar(path) if path.is_file() else None
    if side and side.get("source_sha256") == sha256_file(onnx_path) and side.get("sha256") == sha256_file(path):
        try:
            check_engine(path, running_info())
            return path
        except EdgevisError:
            pass  # another TensorRT or GPU: build again
    log(f"{board}: building a TensorRT {trt_precision} engine from {onnx_path.name}")
    timing = root / "timing" / f"{board}.cache"
    timing.parent.mkdir(parents=True, exist_ok=True)
    return engine_from_onnx(onnx_path, path, TrtBuildConfig(precision=trt_precision, timing_cache=timing)).path


def measure_cell(job: CellJob, fp32: Path, file: Path, held: Any, *, root: Path | None = None,
                 log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Fidelity against FP32 on the head's held-out images (ONNX Runtime CPU, as bench), then
    ``job.rounds`` profiles, each in a fresh process; returns the cell's measurements."""
    from ..core.types import Preprocess
    from ..profile.rounds import profile_in_child
    from ..profile.profiler import merge_profiles

    started = time.time()
    fidelity = None
    if job.precision != "fp32":
        from ..quant.calibration import ArraySource
        from ..quant.fidelity import fidelity_report

        source = ArraySource("held-out images sent by the head", list(held), tuple(held.shape[1:]))
        fidelity = {"reference": "fp32", "runtime": "onnxruntime-cpu",
                    **fidelity_report(fp32, file, source, Preprocess.from_dict(job.preprocess))}
    target = file
    if job.profile.runtime == "trt":
        target = _engine_here(file, job.precision, job.board, root or cache_root(), log)
    parts = [profile_in_child(target, _round_config(job.profile, job.rounds, r)) for r in range(job.rounds)]
    return {"fidelity": fidelity, "profile": merge_profiles(parts), "file": str(target),
            "seconds": round(time.time() - started, 3)}


# ---- the Ray task bodies (wrapped with ray.remote by the head; plain functions here) ----

def ray_probe() -> dict[str, Any]:
    return {"versions": versions(), "node": node_info()}


def ray_cell(job: CellJob, fp32: Payload, file: Payload, held: Any, head_versions: dict[str, Any]) -> dict[str, Any]:
    here = versions()
    why = version_mismatch(head_versions, here)
    if why:
        raise EdgevisError(f"board {job.board} refused: it {why}")
    root = cache_root()
    fp32_path = materialize(fp32, root)
    file_path = fp32_path if file.sha256 == fp32.sha256 else materialize(file, root)
    return {**measure_cell(job, fp32_path, file_path, held, root=root), "node": node_info(), "versions": here}
