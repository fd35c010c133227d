"""ONNX Runtime runner: ``session_from_onnx`` and :class:`OrtRunner` (open / infer / close)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import EdgevisError, OnnxFileError, first_line
from ..core.onnxfile import load_onnx


DEVICES = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
LEVELS = ("disable", "basic", "extended", "all")


def _level(name: str):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    return {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[name]


def parse_providers(text: str | None) -> tuple[str, ...]:
    """``--providers CUDAExecutionProvider,CPUExecutionProvider`` -> the names in order (none given: ())."""
    return tuple(p.strip() for p in text.split(",")) if text else ()


def check_providers(wanted: Sequence[str]) -> None:
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = [p for p in wanted if p not in available]
    if missing:
        raise EdgevisError(f"execution provider(s) {', '.join(missing)} not available in this onnxruntime "
                           f"({ort.__version__}); available: {', '.join(available)}")


def session_from_onnx(
    path: str | os.PathLike[str],
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    provider_options: Sequence[dict[str, Any]] | None = None,
    profile_prefix: str | None = None,
):
    """An ``onnxruntime.InferenceSession`` for ``path`` (CPU unless ``providers`` says otherwise).

    A model saved optimized by ``edgevis build --runtime ort`` is refused, in one line, where its
    sidecar says it cannot work (another ONNX Runtime version or provider), and loads without
    optimizing it again (that is what makes its start fast).
    """
    import onnxruntime as ort

    from ..core.types import read_sidecar
    from .guard import KIND_ORT, RuntimeMismatchError, check_sidecar_matches_file, ort_mismatch

    # load (and validate) first so a bad file is named as such, not as an ORT internal error
    load_onnx(path, check=False)
    wanted = list(providers) if providers else ["CPUExecutionProvider"]
    check_providers(wanted)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    if profile_prefix:  # ORT's own profiler: one JSON trace written at end_profiling()
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    sidecar = read_sidecar(path) or {}
    if sidecar.get("kind") == KIND_ORT:
        why = ort_mismatch(sidecar, ort.__version__, wanted) or check_sidecar_matches_file(sidecar, Path(path))
        if why:
            raise RuntimeMismatchError(f"{Path(path)} cannot load here: {why}")
        opts.graph_optimization_level = _level("disable")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=wanted,
                                    provider_options=list(provider_options) if provider_options else None)
    except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
        raise OnnxFileError(f"ONNX Runtime cannot load {Path(path)}: {first_line(e)}") from None


class OrtRunner:
    """Runs an ONNX file on ONNX Runtime.

    >>> with OrtRunner("model.onnx") as r:
    ...     logits = r.infer(batch)
    """

    def __init__(self, path: str | os.PathLike[str], *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        self.providers = providers
        self.threads = threads
        self._session = None

    def open(self) -> "OrtRunner":
        if self._session is None:
            self._session = session_from_onnx(self.path, providers=self.providers, threads=self.threads)
        return self

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> "OrtRunner":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self):
        if self._session is None:
            raise RuntimeError("OrtRunner is not open; use `with OrtRunner(...)` or call open()")
        return self._session

    @property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    @property
    def input_shape(self) -> list[int | str | None]:
        return list(self.session.get_inputs()[0].shape)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The first output for a single input tensor."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]

    def infer_batched(self, x: np.ndarray) -> np.ndarray:
        """``infer`` that splits ``x`` to fit a fixed batch dimension if the model has one."""
        b = self.input_shape[0]
        if isinstance(b, int) and b > 0 and x.shape[0] != b:
            if x.shape[0] % b:
                pad = b - x.shape[0] % b
                x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
                return np.concatenate([self.infer(x[i:i + b]) for i in range(0, len(x), b)])[: len(x) - pad]
            return np.concatenate([self.infer(x[i:i + b]) for i in range(0, len(x), b)])
        return self.infer(x)
