"""TensorRT engines from ONNX, with a provenance sidecar, and a runner (TensorRT 10 and 11).

Written against TensorRT's Python API (``tensorrt``) and cuda-python
(``cuda.bindings.runtime``) for device buffers; both are imported lazily, so this
module imports anywhere and only building or running an engine needs a GPU.

Precision follows TensorRT's own rules (docs: "Working with Quantized Types",
the 10.x -> 11.x migration guide):

* INT8 is the Q/DQ ONNX from ``edgevis export --int8 --target tensorrt``, built as a
  strongly typed network with no precision flags ("explicit quantization with strong
  typing"). There is no hidden calibrator: TensorRT 11 removed them, and an implicit
  calibration would not be the model whose fidelity edgevis measured.
* FP16 on TensorRT 10 is the FP16 builder flag on a weakly typed network. TensorRT 11
  has no precision flags (every network is strongly typed): the ONNX itself must be FP16.
* FP32 is a strongly typed build of the FP32 ONNX.

The engine file is a plain TensorRT plan (``trtexec --loadEngine`` and C++ apps read it);
``NAME.engine.json`` beside it records what :mod:`edgevis.runtimes.guard` checks on load.
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EdgevisError, missing_dependency

PRECISIONS = ("auto", "fp32", "fp16", "int8")


class TrtBuildError(EdgevisError):
    """TensorRT refused to parse or build the model."""


class EngineFileError(EdgevisError):
    """A file that is not a TensorRT engine this TensorRT can load."""


def import_tensorrt():  # type: ignore[no-untyped-def]
    try:
        import tensorrt as trt
    except ImportError:
        raise missing_dependency("tensorrt", "tensorrt", "TensorRT engines (on a machine with an NVIDIA GPU)") from None
    return trt


def import_cudart():  # type: ignore[no-untyped-def]
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6.1
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]  # older cuda-python (removed in 13.0)
        except ImportError:
            raise missing_dependency("cuda-python", "tensorrt", "device buffers for TensorRT") from None
    return cudart


# ---------------------------------------------------------------------------------------------
# options


def parse_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """``"input:1x3x224x224,mask:1x49"`` -> ``{"input": (1, 3, 224, 224), ...}``; a bare ``1x3x224x224``
    names the model's only input (key ``""``)."""
    if not text:
        return {}
    out: dict[str, tuple[int, ...]] = {}
    parts = [p.strip() for p in text.split(",")]
    for part in parts:
        name, _, dims = part.rpartition(":")
        if len(parts) > 1 and not name:
            raise EdgevisError(f"bad shape {part!r} in {text!r}: with several shapes, name each (NAME:1x3x224x224)")
        if not re.fullmatch(r"\d+(x\d+)*", dims):
            raise EdgevisError(f"bad shape {part!r}: write NAME:1x3x224x224 (dimensions separated by 'x')")
        shape = tuple(int(d) for d in dims.split("x"))
        if min(shape) < 1:
            raise EdgevisError(f"bad shape {part!r}: every dimension must be >= 1")
        out[name] = shape
    return out


@dataclass(frozen=True)
class TrtBuildConfig:
    """Options shared by the API and ``edgevis build --runtime trt``."""

    precision: str = "auto"  # auto: int8 for a Q/DQ model, else fp32
    min_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    opt_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    max_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    workspace_gib: float | None = None
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True  # DLA: layers DLA cannot run go to the GPU

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EdgevisError(f"unknown --precision {self.precision!r}; use {', '.join(PRECISIONS)}")
        given = [bool(self.min_shapes), bool(self.opt_shapes), bool(self.max_shapes)]
        if any(given) and not all(given):
            raise EdgevisError("--min-shape, --opt-shape and --max-shape go together (one optimization profile)")
        if any(given):
            if not set(self.min_shapes) == set(self.opt_shapes) == set(self.max_shapes):
                raise EdgevisError("--min-shape, --opt-shape and --max-shape must name the same inputs")
            for name in self.min_shapes:
                lo, mid, hi = self.min_shapes[name], self.opt_shapes[name], self.max_shapes[name]
                if not len(lo) == len(mid) == len(hi):
                    raise EdgevisError(f"input {name or '(the input)'}: min/opt/max shapes have different ranks")
                if not all(a <= b <= c for a, b, c in zip(lo, mid, hi)):
                    raise EdgevisError(f"input {name or '(the input)'}: shapes must satisfy min <= opt <= max "
                                       f"in every dimension (got {lo}, {mid}, {hi})")
        if self.workspace_gib is not None and self.workspace_gib <= 0:
            raise EdgevisError(f"--workspace must be > 0 GiB (got {self.workspace_gib})")
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise EdgevisError(f"--dla must be a DLA core index >= 0 (got {self.dla_core})")
            if self.precision == "fp32":
                raise EdgevisError("DLA runs FP16 and INT8 only; use --precision fp16 or int8 with --dla")


@dataclass(frozen=True)
class Plan:
    """How a build will type the network: resolved from the request, the model and this TensorRT."""

    precision: str
    strongly_typed: bool
    flags: tuple[str, ...]
    note: str = ""


def plan_precision(requested: str, *, has_qdq: bool, fp16_graph: bool, has_fp16_flag: bool) -> Plan:
    """The network typing and builder flags for ``requested`` precision.

    ``has_fp16_flag`` is whether this TensorRT still has ``BuilderFlag.FP16`` (10: yes, 11: no);
    ``fp16_graph`` whether the ONNX already computes in float16.
    """
    if requested == "auto":
        requested = "int8" if has_qdq else ("fp16" if fp16_graph else "fp32")
    if requested == "int8":
        if not has_qdq:
            raise TrtBuildError(
                "INT8 needs a Q/DQ model: quantize it with `edgevis export --model NAME --int8 --target tensorrt` "
                "(edgevis uses no implicit calibrator; TensorRT 11 has none)")
        return Plan("int8", True, (), "explicit quantization (Q/DQ), strongly typed")
    if requested == "fp16":
        if fp16_graph:
            return Plan("fp16", True, (), "the ONNX graph computes in float16, strongly typed")
        if not has_fp16_flag:
            raise TrtBuildError(
                "this TensorRT builds every network strongly typed (no FP16 builder flag): convert the ONNX to FP16 "
                "first (ModelOpt AutoCast: python -m modelopt.onnx.autocast --onnx_path MODEL.onnx "
                "--low_precision_type fp16), or build with TensorRT 10")
        flags = ("FP16", "INT8") if has_qdq else ("FP16",)
        return Plan("fp16", False, flags, "weakly typed with the FP16 flag: TensorRT picks FP16 kernels where faster")
    if has_qdq:
        raise TrtBuildError("this is a Q/DQ (INT8) model: build it with --precision int8, or build the FP32 file "
                            "for --precision fp32")
    return Plan("fp32", True, (), "strongly typed in the ONNX graph's float32")


# ---------------------------------------------------------------------------------------------
# what the model and the machine are


def model_traits(model) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Inputs (name, dims with None for symbolic), whether there are Q/DQ nodes, whether it computes in fp16."""
    from onnx import TensorProto

    from ..core.onnxfile import has_qdq

    inits = {i.name for i in model.graph.initializer}
    inputs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim]
        inputs.append({"name": vi.name, "dims": dims})
    fp16 = any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
    return {"inputs": inputs, "has_qdq": has_qdq(model), "fp16_graph": fp16}


def resolve_profile(inputs: list[dict[str, Any]], config: TrtBuildConfig) -> dict[str, dict[str, list[int]]]:
    """One optimization profile for the dynamic inputs: {name: {"min", "opt", "max"}}; ``{}`` when all static."""
    dynamic = [i for i in inputs if None in i["dims"]]
    if not config.min_shapes:
        if dynamic:
            names = ", ".join(f"{i['name']} {['?' if d is None else d for d in i['dims']]}" for i in dynamic)
            raise TrtBuildError(f"dynamic input(s) {names} need an optimization profile: pass --min-shape, "
                                f"--opt-shape and --max-shape (e.g. {dynamic[0]['name']}:1x3x224x224)")
        return {}
    by_name = {i["name"]: i for i in inputs}

    def resolve(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        if "" in shapes:
            if len(inputs) != 1:
                raise TrtBuildError(f"the model has {len(inputs)} inputs: name each shape (NAME:1x3x224x224)")
            return {inputs[0]["name"]: shapes[""]}
        return shapes

    lo, mid, hi = resolve(config.min_shapes), resolve(config.opt_shapes), resolve(config.max_shapes)
    profile = {}
    for name in lo:
        if name not in by_name:
            raise TrtBuildError(f"no input named {name!r}; the inputs are {', '.join(by_name)}")
        dims = by_name[name]["dims"]
        for which, shape in (("min", lo[name]), ("opt", mid[name]), ("max", hi[name])):
            if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
                raise TrtBuildError(f"--{which}-shape {name}:{'x'.join(map(str, shape))} does not fit the input's "
                                    f"shape {['?' if d is None else d for d in dims]}")
        profile[name] = {"min": list(lo[name]), "opt": list(mid[name]), "max": list(hi[name])}
    missing = [i["name"] for i in dynamic if i["name"] not in profile]
    if missing:
        raise TrtBuildError(f"dynamic input(s) {', '.join(missing)} have no shapes in the profile")
    return profile


def running_info() -> dict[str, Any]:
    """TensorRT version and the current GPU (name, compute capability), as the sidecar records them."""
    trt = import_tensorrt()
    cudart = import_cudart()
    err, dev = cudart.cudaGetDevice()
    _check(cudart, err, "cudaGetDevice")
    err, prop = cudart.cudaGetDeviceProperties(dev)
    _check(cudart, err, "cudaGetDeviceProperties")
    name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
    return {"tensorrt": trt.__version__, "gpu": {"name": name, "compute_capability": f"{prop.major}.{prop.minor}",
                                                 "device": int(dev)}}


def _check(cudart, err, what: str) -> None:  # type: ignore[no-untyped-def]
    if err != cudart.cudaError_t.cudaSuccess:
        _, msg = cudart.cudaGetErrorString(err)
        text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
        raise EdgevisError(f"CUDA {what} failed: {text}")


@functools.lru_cache(maxsize=None)
def _logger_class(trt):  # type: ignore[no-untyped-def]
    """An ``ILogger`` subclass (defined once; ``trt`` is imported lazily) that keeps warnings and errors:
    TensorRT reports failures there, not as exceptions."""

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity, msg) -> None:  # type: ignore[no-untyped-def]
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(str(msg))
            elif severity == trt.ILogger.Severity.WARNING:
                self.warnings.append(str(msg))

    return CapturingLogger


# ---------------------------------------------------------------------------------------------
# build


@dataclass
class TrtBuild:
    path: Path
    sidecar: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": "tensorrt", "file": str(self.path), **{k: v for k, v in self.sidecar.items()
                                                                  if k not in ("preprocess",)},
                "warnings": self.warnings}


def default_engine_path(src: Path, precision: str) -> Path:
    stem = src.name[:-5] if src.name.endswith(".onnx") else src.name
    for p in (".fp32", ".int8", ".fp16"):
        stem = stem[: -len(p)] if stem.endswith(p) else stem
    return src.with_name(f"{stem}.{precision}.engine")


def engine_from_onnx(onnx_file: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                     config: TrtBuildConfig = TrtBuildConfig()) -> TrtBuild:
    """Build a TensorRT engine for ``onnx_file`` and write it with its sidecar (atomically)."""
    from ..core.files import atomic_outputs, ensure_writable_dir, write_bytes_atomic
    from ..core.onnxfile import load_onnx
    from ..core.sidecar import sidecar_path

    src = Path(onnx_file)
    model = load_onnx(src)
    traits = model_traits(model)
    trt = import_tensorrt()
    plan = plan_precision(config.precision, has_qdq=traits["has_qdq"], fp16_graph=traits["fp16_graph"],
                          has_fp16_flag=getattr(trt.BuilderFlag, "FP16", None) is not None)
    profile = resolve_profile(traits["inputs"], config)
    out_path = Path(output) if output else default_engine_path(src, plan.precision)
    ensure_writable_dir(out_path.parent)
    info = running_info()

    logger = _logger_class(trt)()
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(src)):
        errs = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            where = e.node_name() or (f"node {e.node()}" if e.node() >= 0 else "")
            errs.append(f"{where} ({e.node_operator()}): {e.desc()}" if where else e.desc())
        raise TrtBuildError(f"TensorRT's ONNX parser rejected {src}: {errs[0] if errs else 'no reason given'}"
                            f"{f' (+{len(errs) - 1} more)' if len(errs) > 1 else ''}; "
                            f"`edgevis lint {src} --target trt` lists what TensorRT does not take")
    bc = builder.create_builder_config()
    if config.workspace_gib:
        bc.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_gib * 1024**3))
    for flag in plan.flags:
        bc.set_flag(getattr(trt.BuilderFlag, flag))
    bc.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer names for the per-layer profiler
    if profile:
        p = builder.create_optimization_profile()
        for name, s in profile.items():
            p.set_shape(name, s["min"], s["opt"], s["max"])
        bc.add_optimization_profile(p)
    if config.dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise TrtBuildError("this device has no DLA (DLA cores are on Jetson AGX/NX Xavier and Orin); drop --dla")
        if config.dla_core >= builder.num_DLA_cores:
            raise TrtBuildError(f"--dla {config.dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        bc.default_device_type = trt.DeviceType.DLA
        bc.DLA_core = config.dla_core
        if config.gpu_fallback:
            bc.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_in = b""
    if config.timing_cache and Path(config.timing_cache).is_file():
        cache_in = Path(config.timing_cache).read_bytes()
    cache = bc.create_timing_cache(cache_in)
    bc.set_timing_cache(cache, ignore_mismatch=False)

    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, bc)
    build_s = time.perf_counter() - t0
    if serialized is None:
        raise TrtBuildError(f"TensorRT could not build {src}: "
                            f"{logger.errors[-1] if logger.errors else 'no error logged'}")
    if config.timing_cache:
        write_bytes_atomic(config.timing_cache, bytes(memoryview(bc.get_timing_cache().serialize())))
    # the engine and its sidecar land together: never an engine without what guards it
    with atomic_outputs(out_path, sidecar_path(out_path)) as (tmp, tmp_side):
        with open(tmp, "wb") as f:
            f.write(memoryview(serialized))
        side = _write_engine_sidecar(out_path, src, tmp, tmp_side, info, plan, traits, profile, config, build_s)
    return TrtBuild(out_path, side, [w for w in logger.warnings[:20]])


def _write_engine_sidecar(out_path: Path, src: Path, tmp: Path, tmp_side: Path, info: dict[str, Any], plan: Any,
                          traits: dict[str, Any], profile: Any, config: TrtBuildConfig,
                          build_s: float) -> dict[str, Any]:
    from ..core.files import write_derived_sidecar

    return write_derived_sidecar(out_path, src, {
        "kind": "tensorrt-engine",
        "tensorrt": info["tensorrt"],
        "gpu": info["gpu"],
        "precision": plan.precision,
        "strongly_typed": plan.strongly_typed,
        "builder_flags": list(plan.flags),
        "typing": plan.note,
        "inputs": traits["inputs"],
        "profiles": [profile] if profile else [],
        "workspace_gib": config.workspace_gib,
        "dla_core": config.dla_core,
        "timing_cache": str(config.timing_cache) if config.timing_cache else None,
        "build_seconds": round(build_s, 2),
    }, data=tmp, to=tmp_side)


# ---------------------------------------------------------------------------------------------
# load and run


def check_engine(path: Path, running: dict[str, Any]) -> list[str]:
    """Refuse (``RuntimeMismatchError``) an engine whose sidecar says it cannot run under ``running``;
    return warnings (e.g. no sidecar to check)."""
    from ..core.sidecar import load_sidecar
    from .guard import RuntimeMismatchError, check_sidecar_matches_file, engine_mismatch

    if not path.is_file():
        raise EngineFileError(f"engine file not found: {path}")
    if path.stat().st_size == 0:
        raise EngineFileError(f"{path} is empty (0 bytes), not a TensorRT engine")
    read = load_sidecar(path)
    if read.missing:
        return [f"{path.name} has no sidecar ({path.name}.json): cannot check which TensorRT and GPU built it"]
    if not read.ok:  # the guard does not switch itself off: an engine nothing vouches for is refused
        raise EngineFileError(f"{path}: its sidecar {read.path.name} is unreadable ({read.problem}); cannot check "
                              "which TensorRT and GPU built it - rebuild it with `edgevis build --runtime trt`")
    side = read.data
    if side.get("kind") != "tensorrt-engine":
        raise EngineFileError(f"{path}: its sidecar does not describe a TensorRT engine (kind {side.get('kind')!r})")
    why = check_sidecar_matches_file(side, path) or engine_mismatch(side, running)
    if why:
        raise RuntimeMismatchError(f"{path} cannot load here: {why}")
    return []


class TrtRunner:
    """Runs a TensorRT engine: the same open / infer / close lifecycle as :class:`OrtRunner`.

    >>> with TrtRunner("lsnet_t.int8.engine") as r:
    ...     logits = r.infer(batch)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._engine = self._context = self._stream = None
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def open(self) -> "TrtRunner":
        if self._engine is not None:
            return self
        trt = import_tensorrt()
        self.warnings = check_engine(self.path, running_info())
        logger = _logger_class(trt)()
        engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            why = logger.errors[-1] if logger.errors else "no reason logged"
            kind = ("built by another TensorRT version" if "not compatible with this version" in why
                    else "built for another GPU" if "incompatible device" in why
                    else "not a TensorRT engine, or truncated")
            raise EngineFileError(f"{self.path} cannot be loaded ({kind}): {why}")
        self._engine = engine
        self._context = engine.create_execution_context()
        cudart = import_cudart()
        err, self._stream = cudart.cudaStreamCreate()
        _check(cudart, err, "cudaStreamCreate")
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in self.names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        return self

    def close(self) -> None:
        if self._engine is None:
            return
        cudart = import_cudart()
        for ptr, _ in self._buffers.values():
            cudart.cudaFree(ptr)
        self._buffers.clear()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
        self._context = self._engine = self._stream = None

    def __enter__(self) -> "TrtRunner":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _buffer(self, name: str, nbytes: int) -> int:
        cudart = import_cudart()
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                cudart.cudaFree(ptr)
            err, ptr = cudart.cudaMalloc(max(nbytes, 1))
            _check(cudart, err, "cudaMalloc")
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The first output for a single input tensor (host in, host out; copies outside the kernel time)."""
        return self.infer_all({self.inputs[0]: x})[self.outputs[0]]

    def infer_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.stage(feeds)
        self.execute()
        return self.fetch()

    def stage(self, feeds: dict[str, np.ndarray]) -> None:
        """Set the input shapes, copy ``feeds`` to the device and bind every tensor's address."""
        if self._engine is None:
            raise RuntimeError("TrtRunner is not open; use `with TrtRunner(...)` or call open()")
        trt = import_tensorrt()
        cudart = import_cudart()
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        staged = []  # host arrays stay alive until the copies are done
        for name in self.inputs:
            dtype = trt.nptype(self._engine.get_tensor_dtype(name))
            x = np.ascontiguousarray(feeds[name], dtype=dtype)
            if not self._context.set_input_shape(name, x.shape):
                raise EdgevisError(f"input {name} of shape {x.shape} is outside the engine's optimization profile")
            ptr = self._buffer(name, x.nbytes)
            (err,) = cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, self._stream)
            _check(cudart, err, "cudaMemcpyAsync")
            self._context.set_tensor_address(name, ptr)
            staged.append(x)
        self._outputs: dict[str, np.ndarray] = {}
        for name in self.outputs:
            shape = tuple(self._context.get_tensor_shape(name))
            out = np.empty(shape, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
            self._context.set_tensor_address(name, self._buffer(name, out.nbytes))
            self._outputs[name] = out
        (err,) = cudart.cudaStreamSynchronize(self._stream)
        _check(cudart, err, "cudaStreamSynchronize")

    def execute(self) -> None:
        """One inference on the staged device buffers, waited for (no host copies)."""
        cudart = import_cudart()
        if not self._context.execute_async_v3(int(self._stream)):
            raise EdgevisError(f"TensorRT failed to run {self.path}")
        (err,) = cudart.cudaStreamSynchronize(self._stream)
        _check(cudart, err, "cudaStreamSynchronize")

    def fetch(self) -> dict[str, np.ndarray]:
        """Copy the outputs of the last run back to the host."""
        cudart = import_cudart()
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, out in self._outputs.items():
            (err,) = cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name][0], out.nbytes, d2h, self._stream)
            _check(cudart, err, "cudaMemcpyAsync")
        (err,) = cudart.cudaStreamSynchronize(self._stream)
        _check(cudart, err, "cudaStreamSynchronize")
        return {name: out.copy() for name, out in self._outputs.items()}

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self._engine

    @property
    def context(self):  # type: ignore[no-untyped-def]
        return self._context

    def device_memory_mb(self) -> float:
        """Execution-context device memory (activations, scratch) plus this runner's I/O buffers."""
        e = self._engine
        scratch = getattr(e, "device_memory_size_v2", None)
        if scratch is None:  # TensorRT 10.0 only has the deprecated name
            scratch = e.device_memory_size
        return (int(scratch) + sum(size for _, size in self._buffers.values())) / 2**20
