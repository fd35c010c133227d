"""ONNX Runtime runner: ``session_from_onnx`` and :class:`OrtRunner` (open / infer / close)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import onnx

from ..core.errors import EdgevisError, OnnxFileError, OrtError, first_line
from ..core.onnxfile import PROTOBUF_LIMIT, load_onnx


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


# ONNX Runtime writes every domain it knows into the opset imports of a graph it saved optimized
_ORT_SAVED_DOMAINS = {"com.microsoft.nchwc", "ai.onnx.training"}


@contextlib.contextmanager
def ort_errors(source: str | os.PathLike[str], doing: str = "load") -> Iterator[None]:
    """The one boundary around ONNX Runtime: its exceptions (``Fail``, ``InvalidArgument``, ``InvalidGraph``,
    ``NotImplemented``, ``RuntimeException`` from its pybind module, and plain ``RuntimeError``/``ValueError``/
    ``TypeError`` from its Python layer) become one-line :class:`OrtError` naming ``source`` and ORT's reason."""
    try:
        yield
    except EdgevisError:
        raise
    except MemoryError:
        raise OrtError(f"ONNX Runtime ran out of memory trying to {doing} {source}") from None
    except Exception as e:  # noqa: BLE001 - ORT's own exception types are not importable by a stable name
        raise OrtError(f"ONNX Runtime cannot {doing} {source}: {first_line(e, 400)}") from None


def session_from_onnx(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    provider_options: Sequence[dict[str, Any]] | None = None,
    profile_prefix: str | None = None,
    options: Any = None,
    source: str | None = None,
    normalize: bool = True,
):
    """An ``onnxruntime.InferenceSession`` (CPU unless ``providers`` says otherwise) for a file, serialized bytes
    or a ModelProto; every session edgevis makes is made here.

    * ORT's errors become one :class:`OrtError` line naming the file (``source`` names bytes);
    * the graph goes through :func:`edgevis.core.normalize.normalize_model` first, so a pattern known to
      crash ORT natively reaches it in its spec-equivalent, harmless spelling;
    * a model saved optimized by ``edgevis build --runtime ort`` is refused, in one line, where its sidecar
      says it cannot work (another ONNX Runtime version or provider), and loads without optimizing it again
      (that is what makes its start fast); a graph ONNX Runtime saved whose sidecar is unreadable is refused
      too: the guard does not switch itself off;
    * ``options`` (a ``SessionOptions``) replaces the one built from ``threads``/``profile_prefix``;
      ``normalize=False`` hands ORT the graph as written (to reproduce what another tool would see).
    """
    import onnxruntime as ort

    from ..core.normalize import normalize_model

    path = None if isinstance(model, (bytes, onnx.ModelProto)) else Path(model)
    name = source or (str(path) if path is not None else "the model")
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, bytes):
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(model)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError
            raise OnnxFileError(f"{name} is not a readable ONNX model: {first_line(e)}") from None
    else:
        # load (and validate) first so a bad file is named as such, not as an ORT internal error
        proto = load_onnx(model, check=False)
    fixed, changed = normalize_model(proto) if normalize else (proto, 0)
    wanted = list(providers) if providers else ["CPUExecutionProvider"]
    check_providers(wanted)
    opts = options
    if opts is None:
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        if profile_prefix:  # ORT's own profiler: one JSON trace written at end_profiling()
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
    if path is not None:
        _guard_saved_model(path, proto, ort.__version__, wanted, opts)
    if changed or path is None:
        if fixed.ByteSize() >= PROTOBUF_LIMIT:
            raise OnnxFileError(f"{name} is over protobuf's 2 GiB limit once loaded; save it with external data")
        what: str | bytes = fixed.SerializeToString()
    else:
        what = str(path)
    with ort_errors(name):
        return ort.InferenceSession(what, sess_options=opts, providers=wanted,
                                    provider_options=list(provider_options) if provider_options else None)


def _guard_saved_model(path: Path, proto: onnx.ModelProto, version: str, providers: list[str], opts: Any) -> None:
    """Refuse an ORT-saved graph that cannot run here, or that nothing vouches for; load one that can unoptimized."""
    from ..core.sidecar import load_sidecar
    from .guard import KIND_ORT, RuntimeMismatchError, check_sidecar_matches_file, ort_mismatch

    side = load_sidecar(path)
    saved_by_ort = bool(_ORT_SAVED_DOMAINS & {o.domain for o in proto.opset_import})
    if side.ok and side.data.get("kind") == KIND_ORT:
        why = ort_mismatch(side.data, version, providers) or check_sidecar_matches_file(side.data, path)
        if why:
            raise RuntimeMismatchError(f"{path} cannot load here: {why}")
        opts.graph_optimization_level = _level("disable")
    elif saved_by_ort and not side.ok and not side.missing:
        raise RuntimeMismatchError(f"{path} is a graph ONNX Runtime saved optimized, and its sidecar "
                                   f"{side.path.name} is unreadable ({side.problem}): cannot check which ONNX "
                                   "Runtime and provider it was saved for; rebuild it with `edgevis build --runtime ort`")


def run_session(session: Any, feed: dict[str, np.ndarray], outputs: Sequence[str] | None = None, *,
                source: str | os.PathLike[str] = "the model") -> list[np.ndarray]:
    """``session.run(outputs, feed)`` behind :func:`ort_errors` (a wrong input type or shape, a kernel that
    fails at run time: one line naming ``source``)."""
    with ort_errors(source, "run"):
        return session.run(list(outputs) if outputs is not None else None, feed)


def infer_in_batches(infer: Any, x: np.ndarray, batch: Any) -> np.ndarray:
    """``infer(x)``, or where the model's batch dimension is fixed (``batch``, an int > 0) and ``x`` holds another
    number of images, ``infer`` on parts of that size, the last padded with its final image, the padding's
    outputs dropped (OrtRunner's and OvRunner's ``infer_batched``)."""
    n = len(x)
    if not isinstance(batch, int) or batch <= 0 or n == batch:
        return infer(x)
    if n % batch:
        x = np.concatenate([x, np.repeat(x[-1:], batch - n % batch, axis=0)])
    return np.concatenate([infer(x[i:i + batch]) for i in range(0, len(x), batch)])[:n]


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
        return run_session(self.session, {self.input_name: np.ascontiguousarray(x)}, source=self.path)[0]

    def infer_batched(self, x: np.ndarray) -> np.ndarray:
        """``infer`` that splits ``x`` to fit a fixed batch dimension if the model has one."""
        return infer_in_batches(self.infer, x, self.input_shape[0])
