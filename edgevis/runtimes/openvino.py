"""OpenVINO on the CPU: compile an ONNX file (FP32, or a Q/DQ INT8 file, which OpenVINO reads as
FakeQuantize and runs in int8), cache the compiled model with a sidecar, and run it.

The precision that ran is read back, never assumed. OpenVINO's CPU plugin picks its own
inference precision: "FP32" runs in bf16 on CPUs with AVX512-BF16 or AMX unless the
``INFERENCE_PRECISION_HINT`` says f32, and a request it cannot honour (bf16 on a CPU without
it) silently becomes f32. So :func:`precision_of` asks the *compiled* model: its
``INFERENCE_PRECISION_HINT`` property, and, for int8, the runtime graph's ``runtimePrecision``
of each Convolution/MatMul/FullyConnected node (a Q/DQ file whose FakeQuantize OpenVINO could
not fold runs in float, and says so here).

A compiled model (``export_model``) is specific to the OpenVINO version and to the CPU's
instruction set it was compiled for; ``NAME.openvino.blob.json`` records both, with the source
file's sha256, and :func:`load_compiled` refuses in one line a blob from another version or CPU.

``openvino`` is an optional extra (``pip install 'edgevis[openvino]'``), imported lazily.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.errors import EdgevisError, first_line, missing_dependency

KIND_OPENVINO = "openvino-compiled"
BLOB_SUFFIX = ".blob"
# "auto": OpenVINO's default for this CPU (bf16 where the CPU has it, else f32); what ran is read back
PRECISION_HINTS = ("auto", "f32", "bf16")
# the node types whose runtime precision says whether the model's arithmetic runs in int8
COMPUTE_LAYERS = ("Convolution", "MatMul", "FullyConnected", "GroupConvolution", "Deconvolution")
# the CPU features a compiled CPU kernel may be specialised for (a blob compiled with them may not run without)
ISA_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16", "amx_fp16")


class OpenVinoError(EdgevisError):
    """OpenVINO refused to read, compile or run a model; the message names the file and OpenVINO's reason."""


class CompiledMismatchError(EdgevisError):
    """A compiled OpenVINO model built with another OpenVINO version or on another CPU."""


def import_openvino():  # type: ignore[no-untyped-def]
    try:
        import openvino as ov
    except ImportError:
        raise missing_dependency("openvino", "openvino", "the OpenVINO runtime") from None
    return ov


@dataclass(frozen=True)
class OvConfig:
    """Options shared by the API and ``--runtime openvino`` of build, profile, bench and predict."""

    precision: str = "auto"  # the INFERENCE_PRECISION_HINT asked for (what ran is read back)
    threads: int | None = None
    perf_count: bool = False  # per-node timings (PERF_COUNT): slows runs down, so only for a per-layer pass

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_HINTS:
            raise EdgevisError(f"unknown OpenVINO precision hint {self.precision!r}; use {', '.join(PRECISION_HINTS)}")
        if self.threads is not None and self.threads < 1:
            raise EdgevisError(f"--threads must be >= 1 (got {self.threads})")

    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.precision != "auto":
            props["INFERENCE_PRECISION_HINT"] = self.precision
        if self.threads:
            props["INFERENCE_NUM_THREADS"] = int(self.threads)
        if self.perf_count:
            props["PERF_COUNT"] = True
        return props


def cpu_identity() -> dict[str, Any]:
    """What a compiled CPU model depends on: the CPU's name and the instruction-set features it has."""
    name = None
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key in ("model name", "Model name") and name is None:
            name = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    if name is None:
        import platform

        name = platform.processor() or platform.machine()
    return {"name": name, "isa": [f for f in ISA_FLAGS if f in flags]}


def running_info() -> dict[str, Any]:
    ov = import_openvino()
    return {"openvino": ov.get_version(), "cpu": cpu_identity()}


def _type_name(t: Any) -> str:
    """OpenVINO's element type as edgevis spells precisions (``<Type: 'float32'>`` -> ``f32``)."""
    name = t.get_type_name() if hasattr(t, "get_type_name") else str(t)
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(name, name)


def precision_of(compiled: Any) -> dict[str, Any]:
    """What the compiled model runs in, read from it: ``hint`` (the float precision the CPU plugin settled
    on), ``int8_layers`` of ``compute_layers``, and ``ran``: ``int8`` when its convolutions/matmuls run in
    int8 (the rest in ``hint``), else ``hint``; ``label`` says both for a figure's caption."""
    hint = _type_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    compute = int8 = 0
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        kind = rt["layerType"].astype(str) if "layerType" in rt else ""
        if kind in COMPUTE_LAYERS:
            compute += 1
            int8 += rt["runtimePrecision"].astype(str) in ("i8", "u8") if "runtimePrecision" in rt else 0
    ran = "int8" if int8 else hint
    label = f"int8 ({int8} of {compute} conv/matmul layers; the rest {hint})" if int8 else hint
    return {"hint": hint, "ran": ran, "int8_layers": int8, "compute_layers": compute, "label": label}


def compile_onnx(path: str | os.PathLike[str], config: OvConfig = OvConfig()) -> Any:
    """An OpenVINO ``CompiledModel`` for the CPU from an ONNX (or OpenVINO IR ``.xml``) file."""
    ov = import_openvino()
    src = Path(path)
    if not src.is_file():
        raise OpenVinoError(f"{src} does not exist" if not src.exists() else f"{src} is not a file")
    return _read_and_compile(ov.Core(), str(src), config, src.name)


def compile_bytes(blob: bytes, config: OvConfig = OvConfig(), name: str = "the model") -> Any:
    """:func:`compile_onnx` for an ONNX model held in memory (the INT8 placement search's candidates)."""
    import io

    return _read_and_compile(import_openvino().Core(), io.BytesIO(blob), config, name)


def _read_and_compile(core: Any, source: Any, config: OvConfig, name: str) -> Any:
    """``core.read_model(source)`` (a path or a stream of ONNX bytes) compiled for the CPU; each failure
    is one line naming ``name`` (OpenVINO raises RuntimeError with pages of frontend context)."""
    try:
        model = core.read_model(source)
    except Exception as e:
        raise OpenVinoError(f"OpenVINO cannot read {name}: {_reason(e)}") from None
    try:
        return core.compile_model(model, "CPU", config.properties())
    except Exception as e:
        raise OpenVinoError(f"OpenVINO cannot compile {name} for the CPU: {_reason(e)}") from None


class OvSession:
    """An in-memory ONNX model compiled by OpenVINO, with ONNX Runtime's ``run(None, feed)`` (so it times
    beside ORT sessions and in ``quant.noise``'s round timers) and the precision it runs in, read back."""

    def __init__(self, blob: bytes, config: OvConfig = OvConfig(), name: str = "the model") -> None:
        self.name = name
        self.compiled = compile_bytes(blob, config, name)
        self.precision = precision_of(self.compiled)
        self.request = self.compiled.create_infer_request()

    def run(self, _names: Sequence[str] | None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return run_compiled(self.compiled, feed, self.request, source=self.name)


def _reason(e: BaseException) -> str:
    # OpenVINO's messages start with "Exception from src/...cpp:123:" lines; the reason is the first other line
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '"))]
    return (useful[0] if useful else first_line(e))[:300]


# ---------------------------------------------------------------------------------------------
# build: a compiled model cached to disk, with its sidecar


@dataclass
class OvBuild:
    source: Path
    path: Path
    sidecar: dict[str, Any]
    precision: dict[str, Any]
    check: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": "openvino", "source": str(self.source), "file": str(self.path),
                "precision": self.precision, "check": self.check, "openvino": self.sidecar["openvino"],
                "cpu": self.sidecar["cpu"], "compile_seconds": self.sidecar["compile_seconds"],
                "warnings": self.warnings}


def default_blob_path(src: str | os.PathLike[str], config: OvConfig = OvConfig()) -> Path:
    from ..core.types import derived_path

    tag = "openvino" if config.precision == "auto" else f"openvino-{config.precision}"
    return derived_path(src, tag, BLOB_SUFFIX)


def build_openvino(model_file: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                   config: OvConfig = OvConfig()) -> OvBuild:
    """Compile ``model_file`` for this CPU, check the compiled model against the source on ONNX Runtime,
    and write the blob with its sidecar (both or neither)."""
    from ..core.files import atomic_outputs, ensure_writable_dir, write_derived_sidecar
    from ..core.onnxfile import load_onnx, random_feed
    from ..core.types import sidecar_path

    src = Path(model_file)
    model = load_onnx(src, check=False)  # a file that is not ONNX fails here, in edgevis's words
    out_path = Path(output) if output else default_blob_path(src, config)
    if out_path.resolve() == src.resolve():
        raise EdgevisError(f"the output {out_path} is the input file; choose another --output")
    ensure_writable_dir(out_path.parent)
    t0 = time.perf_counter()
    compiled = compile_onnx(src, config)
    seconds = round(time.perf_counter() - t0, 3)
    precision = precision_of(compiled)
    feed = random_feed(model, count=1, source=src)
    blob = compiled.export_model().getvalue()
    # the blob as a later run will load it, against ONNX Runtime on the source: the build is checked,
    # within the tolerance of the precision that ran (bf16 and int8 are not bit-exact)
    ov = import_openvino()
    loaded = _import(ov.Core(), blob, config, src.name, precision["hint"])
    got = run_compiled(loaded, feed, source=out_path.name)
    from .ort import OrtRunner

    with OrtRunner(src) as r:
        ref = [np.asarray(v) for v in r.session.run(None, feed)]
    names = [o.name for o in model.graph.output]
    warnings: list[str] = []
    check = build_check(names, ref, got, precision["ran"], _random_weights(model), src.name, warnings)
    if not check["passed"]:
        raise EdgevisError(f"the model OpenVINO compiled from {src.name} differs from it on ONNX Runtime "
                           f"({check['reason']}); nothing was written")
    info = running_info()
    with atomic_outputs(out_path, sidecar_path(out_path)) as (tmp, tmp_side):
        tmp.write_bytes(blob)
        sidecar = write_derived_sidecar(out_path, src, {
            "kind": KIND_OPENVINO, "openvino": info["openvino"], "cpu": info["cpu"],
            "precision": precision["ran"], "precision_hint": config.precision, "inference_precision": precision,
            "threads": config.threads, "compile_seconds": seconds, "check": check,
            "inputs": {k: list(v.shape) for k, v in feed.items()}}, data=tmp, to=tmp_side)
    if config.precision == "bf16" and precision["hint"] != "bf16":
        warnings.append(f"bf16 was asked for, but this CPU has no bf16 support: OpenVINO compiled it as "
                        f"{precision['hint']}")
    return OvBuild(src, out_path, sidecar, precision, check, warnings)


def _random_weights(model: Any) -> bool:
    from ..core.onnxfile import META_PROVENANCE, read_json_metadata

    return (read_json_metadata(model, META_PROVENANCE) or {}).get("weights") == "random-init"


def build_check(names: Sequence[str], ref: Sequence[np.ndarray], got: Sequence[np.ndarray], ran: str,
                random_weights: bool, name: str, warnings: list[str]) -> dict[str, Any]:
    """The compiled model's outputs against ONNX Runtime's on the source (``outputs_match`` within the tolerance of
    the precision that ran). An int8 model with random weights (exported without --weights) is held to max|diff|
    only: its outputs are at the level of int8 rounding, which OpenVINO and ONNX Runtime do differently, so their
    direction is noise. lsnet_t's random-weight logits span +-0.0016, and its INT8 file on ORT has cosine 0.88 to
    FP32 and on OpenVINO 0.91 (closer), but 0.95 to each other: every `build --runtime openvino` of it was refused
    at 0.98. A trained model keeps the cosine check."""
    from ..core.compare import outputs_match

    tol = _tolerance(ran)
    check = outputs_match(names, ref, got, **tol)
    if check["passed"] or ran != "int8" or not random_weights:
        return check
    loose = outputs_match(names, ref, got, **{**tol, "min_cosine": -1.0})
    if not loose["passed"]:
        return check
    warnings.append(f"{name} has random weights (exported without --weights): its outputs are at the level of int8 "
                    f"rounding, which OpenVINO and ONNX Runtime do differently, so the compiled model was checked on "
                    f"max|diff| only ({check['max_abs_diff']:.3g}; cosine {check['cosine_min']:.3f}, not required)")
    return {**loose, "cosine_required": False}


def _tolerance(ran: str) -> dict[str, float]:
    # f32 kernels reorder sums (1e-3 relative); bf16 has 8 bits of mantissa. int8 is compared with ORT running
    # the same Q/DQ graph: the two round requantization differently, and on CPUs without VNNI OpenVINO's u8 x s8
    # kernels (vpmaddubsw) saturate 16-bit pair sums where ORT's do not, so single elements may differ by
    # several steps; the direction of the output (cosine) is what must hold
    return {"f32": {"rtol": 1e-3, "atol": 1e-4, "min_cosine": 0.9999},
            "bf16": {"rtol": 5e-2, "atol": 5e-2, "min_cosine": 0.99}}.get(
        ran, {"rtol": 0.5, "atol": 0.1, "min_cosine": 0.98})


def compiled_mismatch(sidecar: dict[str, Any], running: dict[str, Any]) -> str | None:
    """Why a blob described by ``sidecar`` cannot load under ``running`` (:func:`running_info`), or None."""
    built, now = sidecar.get("openvino"), running.get("openvino")
    if built != now:
        return (f"compiled with OpenVINO {built}, but this is OpenVINO {now}; a compiled model only loads in the "
                f"OpenVINO version that compiled it - rebuild it from {sidecar.get('source', 'its source')} with "
                "`edgevis build --runtime openvino`")
    cpu_b, cpu_n = sidecar.get("cpu") or {}, running.get("cpu") or {}
    if cpu_b.get("name") != cpu_n.get("name") or sorted(cpu_b.get("isa") or []) != sorted(cpu_n.get("isa") or []):
        return (f"compiled on {cpu_b.get('name')!s} ({' '.join(cpu_b.get('isa') or []) or 'no ISA recorded'}), but "
                f"this CPU is {cpu_n.get('name')!s} ({' '.join(cpu_n.get('isa') or [])}); compiled kernels are specific "
                f"to the CPU - rebuild it from {sidecar.get('source', 'its source')} here with "
                "`edgevis build --runtime openvino`")
    return None


def load_compiled(path: str | os.PathLike[str], config: OvConfig = OvConfig()) -> tuple[Any, dict[str, Any]]:
    """The compiled model in ``path`` (from :func:`build_openvino`) and its sidecar, after checking the sidecar
    describes this very file and was written by this OpenVINO on this CPU."""
    from ..core.sidecar import load_sidecar
    from .guard import check_sidecar_matches_file

    p = Path(path)
    if not p.is_file():
        raise OpenVinoError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    side = load_sidecar(p)
    if not side.ok:
        raise CompiledMismatchError(f"{p.name}: its sidecar {side.path.name} is "
                                    f"{'missing' if side.missing else 'unreadable (' + str(side.problem) + ')'}; "
                                    "a compiled OpenVINO model is only loaded with the sidecar edgevis wrote")
    if side.data.get("kind") != KIND_OPENVINO:
        raise CompiledMismatchError(f"{p.name}: its sidecar says it is a {side.data.get('kind')!r}, not a compiled "
                                    "OpenVINO model")
    why = check_sidecar_matches_file(side.data, p) or compiled_mismatch(side.data, running_info())
    if why:
        raise CompiledMismatchError(f"{p.name}: {why}")
    ov = import_openvino()
    hint = (side.data.get("inference_precision") or {}).get("hint")
    return _import(ov.Core(), p.read_bytes(), config, p.name, hint), side.data


def _import(core: Any, blob: bytes, config: OvConfig, name: str, hint: str | None = None) -> Any:
    """``hint``: the float precision the blob was compiled for (``precision_of(...)["hint"]``). ``import_model``
    does not take it from the blob: without it the CPU's default applies, and on a CPU with AVX512-BF16 or AMX
    a blob compiled as f32 ran its convolutions in bf16 under its f32 label (max|diff| 3e-3 on a small convnet)."""
    props = {k: v for k, v in config.properties().items() if k in ("INFERENCE_NUM_THREADS", "PERF_COUNT")}
    if hint:
        props["INFERENCE_PRECISION_HINT"] = hint
    try:
        return core.import_model(blob, "CPU", props)
    except Exception as e:
        raise OpenVinoError(f"OpenVINO cannot load the compiled model {name}: {_reason(e)}") from None


def run_compiled(compiled: Any, feed: Mapping[str, np.ndarray], request: Any = None,
                 source: str = "the model") -> list[np.ndarray]:
    """One inference; outputs in the model's order."""
    req = request or compiled.create_infer_request()
    try:
        res = req.infer({k: np.ascontiguousarray(v) for k, v in feed.items()})
    except Exception as e:
        raise OpenVinoError(f"OpenVINO cannot run {source}: {_reason(e)}") from None
    return [np.array(res[o]) for o in compiled.outputs]


def is_compiled_blob(path: str | os.PathLike[str]) -> bool:
    return Path(path).name.endswith(BLOB_SUFFIX)


class OvRunner:
    """An ONNX file compiled here, or a blob from :func:`build_openvino`: open / infer / close.

    ``run(None, feed)`` has ONNX Runtime's signature, so OpenVINO models time beside ORT sessions
    (:func:`edgevis.runtimes.latency.interleaved_latency`)."""

    def __init__(self, path: str | os.PathLike[str], config: OvConfig = OvConfig()) -> None:
        self.path, self.config = Path(path), config
        self.compiled: Any = None
        self.sidecar: dict[str, Any] | None = None

    def open(self) -> "OvRunner":
        if is_compiled_blob(self.path):
            self.compiled, self.sidecar = load_compiled(self.path, self.config)
        else:
            self.compiled = compile_onnx(self.path, self.config)
        self.precision = precision_of(self.compiled)
        self.request = self.compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        return self

    def __enter__(self) -> "OvRunner":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def input_shapes(self) -> dict[str, list[int | None]]:
        out: dict[str, list[int | None]] = {}
        for i in self.compiled.inputs:
            ps = i.get_partial_shape()
            out[i.get_any_name()] = [d.get_length() if d.is_static else None for d in ps]
        return out

    def input_types(self) -> dict[str, Any]:
        return {i.get_any_name(): np.dtype(i.get_element_type().to_dtype()) for i in self.compiled.inputs}

    def run(self, _names: Sequence[str] | None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return run_compiled(self.compiled, feed, self.request, source=self.path.name)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The first output for the model's one input."""
        return self.run(None, {self.input_names[0]: x})[0]

    def infer_batched(self, x: np.ndarray) -> np.ndarray:
        """``infer`` split to fit a fixed batch dimension (``ort.infer_in_batches``, as ``OrtRunner.infer_batched``):
        OpenVINO refuses any other batch than a fixed one."""
        from .ort import infer_in_batches

        return infer_in_batches(self.infer, x, self.input_shapes()[self.input_names[0]][0])

    def close(self) -> None:
        self.request = None
        self.compiled = None
