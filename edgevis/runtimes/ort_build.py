"""``edgevis build --runtime ort``: an ONNX Runtime session for a device, saved for fast start.

What it does beyond ``InferenceSession(...)``:

* validates the execution providers against this onnxruntime build (one clear line);
* saves the graph ORT optimized (``optimized_model_filepath``) with a sidecar naming the
  ONNX Runtime version and provider, so a later load skips optimization and is refused
  where the saved kernels cannot run (see :mod:`edgevis.runtimes.guard`); with the
  TensorRT EP the fast start is its engine cache directory instead (ORT cannot save
  TensorRT-compiled nodes into an ONNX file);
* runs the model once with ORT's profiler on and reads which provider ran each node,
  so nodes that fell back to the CPU are named;
* checks the saved model against the source on the same inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.compare import outputs_match
from ..core.errors import EdgevisError
from ..core.onnxfile import load_onnx, random_feed
from .ort_trace import node_placement
from .ort import DEVICES, LEVELS, _level, check_providers, run_session, session_from_onnx


@dataclass(frozen=True)
class OrtBuildConfig:
    """Options shared by the API and ``edgevis build --runtime ort``."""

    device: str = "cpu"
    providers: tuple[str, ...] = ()  # overrides ``device`` when given
    threads: int | None = None
    optimization: str = "all"
    cache_dir: Path | None = None  # TensorRT EP engine/timing cache (default: NAME.trt_cache beside the output)
    trt_fp16: bool = False

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise EdgevisError(f"unknown --device {self.device!r}; use {', '.join(DEVICES)}")
        if self.optimization not in LEVELS:
            raise EdgevisError(f"unknown --optimization {self.optimization!r}; use {', '.join(LEVELS)}")
        if self.threads is not None and self.threads < 1:
            raise EdgevisError(f"--threads must be >= 1 (got {self.threads})")
        if self.trt_fp16 and "TensorrtExecutionProvider" not in self.provider_list():
            raise EdgevisError("--fp16 applies to the TensorRT execution provider (--device tensorrt)")

    def provider_list(self) -> list[str]:
        return list(self.providers) if self.providers else list(DEVICES[self.device])


@dataclass
class OrtBuild:
    source: Path
    path: Path | None  # the saved optimized model (None with the TensorRT EP)
    providers: list[str]  # what the session registered
    placement: dict[str, dict[str, Any]]  # provider -> {"nodes": n, "ops": {op: n}}
    start_seconds: dict[str, float]
    check: dict[str, Any] | None
    cache_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": "onnxruntime", "source": str(self.source), "file": str(self.path) if self.path else None,
                "providers": self.providers, "placement": self.placement, "start_seconds": self.start_seconds,
                "check": self.check, "cache_dir": str(self.cache_dir) if self.cache_dir else None,
                "warnings": self.warnings}


def _provider_options(providers: list[str], config: OrtBuildConfig, cache_dir: Path | None) -> list[dict[str, Any]]:
    opts = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            assert cache_dir is not None
            opts.append({"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache_dir),
                         "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(cache_dir),
                         "trt_fp16_enable": "True" if config.trt_fp16 else "False"})
        else:
            opts.append({})
    return opts


def build_ort(model_file: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
              config: OrtBuildConfig = OrtBuildConfig()) -> OrtBuild:
    """Build (and save, for a fast start) an ONNX Runtime session for ``model_file``."""
    import onnxruntime as ort

    from ..core.files import atomic_outputs, ensure_writable_dir, write_derived_sidecar
    from ..core.types import derived_path, sidecar_path
    from .guard import KIND_ORT

    src = Path(model_file)
    model = load_onnx(src, check=False)
    providers = config.provider_list()
    check_providers(providers)
    uses_trt = "TensorrtExecutionProvider" in providers
    out_path = Path(output) if output else derived_path(src, f"ort-{config.device if not config.providers else 'custom'}")
    if out_path.resolve() == src.resolve():
        raise EdgevisError(f"the output {out_path} is the input file; choose another --output")
    ensure_writable_dir(out_path.parent)
    cache_dir = None
    if uses_trt:
        cache_dir = Path(config.cache_dir) if config.cache_dir else out_path.with_name(out_path.name[:-5] + ".trt_cache")
        ensure_writable_dir(cache_dir)
    feed = random_feed(model, count=1, source=src)
    warnings: list[str] = []

    def options(save_to: Path | None, profile_dir: str | None):  # type: ignore[no-untyped-def]
        o = ort.SessionOptions()
        o.graph_optimization_level = _level(config.optimization)
        if config.threads:
            o.intra_op_num_threads = config.threads
        o.log_severity_level = 4  # ORT's failures reach the user as one exception line, not also as its log
        if save_to is not None:
            o.optimized_model_filepath = str(save_to)
        if profile_dir is not None:
            o.enable_profiling = True
            o.profile_file_prefix = os.path.join(profile_dir, "ort_profile")
        return o

    prov_opts = _provider_options(providers, config, cache_dir)
    start: dict[str, float] = {}
    check = None
    with tempfile.TemporaryDirectory(prefix="edgevis-ort-") as work:
        opt_file = None if uses_trt else Path(work) / "optimized.onnx"
        t0 = time.perf_counter()
        sess = _session(src, options(opt_file, work), providers, prov_opts)
        start["source"] = round(time.perf_counter() - t0, 3)
        ref = run_session(sess, feed, source=src)
        with open(sess.end_profiling()) as f:
            placement = node_placement(json.load(f))
        session_providers = sess.get_providers()
        del sess
        if opt_file is not None:
            o = options(None, None)
            o.graph_optimization_level = _level("disable")
            t0 = time.perf_counter()
            fast = _session(opt_file, o, providers, prov_opts, f"the graph ONNX Runtime optimized from {src}")
            start["optimized"] = round(time.perf_counter() - t0, 3)
            check = outputs_match([o.name for o in fast.get_outputs()], ref,
                                  run_session(fast, feed, source=f"the graph ONNX Runtime optimized from {src}"))
            del fast
            if not check["passed"]:
                raise EdgevisError(f"the optimized model ONNX Runtime saved differs from {src} ({check['reason']}); "
                                   "nothing was written")
            # the model and its sidecar land together: never an optimized graph without what guards it
            with atomic_outputs(out_path, sidecar_path(out_path)) as (tmp, tmp_side):
                shutil.copyfile(opt_file, tmp)
                write_derived_sidecar(out_path, src, {
                    "kind": KIND_ORT, "onnxruntime": ort.__version__, "providers": providers,
                    "optimization": config.optimization, "threads": config.threads, "placement": placement,
                    "start_seconds": start, "check": check}, data=tmp, to=tmp_side)
    main = providers[0]
    if main != "CPUExecutionProvider" and placement.get("CPUExecutionProvider"):
        cpu = placement["CPUExecutionProvider"]
        total = sum(v["nodes"] for v in placement.values())
        ops = ", ".join(f"{op} {n}" for op, n in list(cpu["ops"].items())[:8])
        warnings.append(f"{cpu['nodes']} of {total} nodes fall back to CPUExecutionProvider instead of {main} ({ops})")
    missing = [p for p in providers if p not in session_providers]
    if missing:
        warnings.append(f"ONNX Runtime did not register {', '.join(missing)} (see its log); the session runs on "
                        f"{', '.join(session_providers)}")
    result = OrtBuild(src, None if uses_trt else out_path, session_providers, placement, start, check, cache_dir,
                      warnings)
    return result


def _session(path: Path, opts, providers: list[str], prov_opts: list[dict[str, Any]],  # type: ignore[no-untyped-def]
             source: str | None = None):
    return session_from_onnx(path, options=opts, providers=providers, provider_options=prov_opts, source=source)
