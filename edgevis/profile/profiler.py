"""``edgevis profile``: latency percentiles, throughput, memory, energy and per-layer time of one model file.

For each batch size the order is fixed, and only the timed loop is timed:

1. open the model (ONNX Runtime session or TensorRT engine) and stage inputs;
2. measure idle power for ``idle_s`` (when an energy sensor exists);
3. warm-up iterations, not recorded;
4. the timed loop: each iteration timed with ``perf_counter`` around one synchronous
   inference; the window from the first start to the last end is the one throughput
   and energy use, and the energy sampler takes a reading right before and right after it;
5. after every batch is timed, the optional per-layer pass (profiling slows runs down,
   so it never overlaps a timed loop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.errors import EdgevisError
from ..core.names import is_engine

PROFILE_SCHEMA, PROFILE_VERSION = "edgevis.profile", 1
DEFAULT_DURATION_S = 3.0  # as trtexec: at least 3 s of timed runs ...
MIN_ITERS = 10  # ... and at least 10 iterations

Progress = Callable[[str, int, "int | None"], None]  # (phase, done, total or None when time-bound)


@dataclass(frozen=True)
class ProfileConfig:
    """Options shared by the API, ``edgevis profile`` and ``edgevis bench``."""

    runtime: str = "auto"  # auto: trt for .engine/.plan files, openvino for .blob (build --runtime openvino), ort otherwise
    device: str = "cpu"  # ORT: cpu, cuda or tensorrt (execution providers)
    providers: tuple[str, ...] | None = None
    warmup: int = 10
    iters: int | None = None
    duration_s: float | None = None  # neither: DEFAULT_DURATION_S
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    include_io: bool = False
    energy: str = "auto"
    idle_s: float = 1.0
    per_layer: bool = False
    per_layer_runs: int = 20
    tolerance: float = 0.02  # relative 95 % half-width of the mean latency the user wants
    seed: int = 0
    precision_hint: str = "auto"  # openvino: INFERENCE_PRECISION_HINT (auto, f32, bf16); what ran is read back

    def __post_init__(self) -> None:
        from ..runtimes.ort import DEVICES

        from ..core.names import as_runtime

        object.__setattr__(self, "runtime", as_runtime(self.runtime))
        if self.runtime not in ("auto", "ort", "trt", "openvino"):
            raise EdgevisError(f"unknown runtime {self.runtime!r}; use ort, trt or openvino")
        if self.precision_hint != "auto" and self.runtime != "openvino":
            raise EdgevisError("--precision-hint applies to --runtime openvino")
        from ..runtimes.openvino import PRECISION_HINTS

        if self.precision_hint not in PRECISION_HINTS:
            raise EdgevisError(f"unknown --precision-hint {self.precision_hint!r}; use {', '.join(PRECISION_HINTS)}")
        if self.device not in DEVICES:
            raise EdgevisError(f"unknown device {self.device!r}; use {', '.join(DEVICES)}")
        if self.iters is not None and self.duration_s is not None:
            raise EdgevisError("--iters and --duration exclude each other")
        if self.iters is not None and self.iters < 1:
            raise EdgevisError(f"--iters must be >= 1 (got {self.iters})")
        if self.duration_s is not None and self.duration_s <= 0:
            raise EdgevisError(f"--duration must be > 0 (got {self.duration_s})")
        if self.warmup < 0:
            raise EdgevisError(f"--warmup must be >= 0 (got {self.warmup})")
        if not self.batches or any(b < 1 for b in self.batches):
            raise EdgevisError(f"--batch takes sizes >= 1 (got {','.join(map(str, self.batches)) or 'none'})")
        if self.threads is not None and self.threads < 1:
            raise EdgevisError(f"--threads must be >= 1 (got {self.threads})")
        from .energy import CHOICES

        if self.energy not in CHOICES:
            raise EdgevisError(f"unknown energy meter {self.energy!r}; use {', '.join(CHOICES)}")
        if not 0 < self.tolerance < 1:
            raise EdgevisError(f"--tolerance must be between 0 and 100 % (got {self.tolerance:.0%})")
        if self.per_layer_runs < 1:
            raise EdgevisError(f"--per-layer-runs must be >= 1 (got {self.per_layer_runs})")

    def settings(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "iters": self.iters,
                "duration_s": self.duration_s if self.iters is not None or self.duration_s else DEFAULT_DURATION_S,
                "min_iters": MIN_ITERS if self.iters is None else None, "threads": self.threads,
                "include_io": self.include_io, "energy": self.energy, "idle_s": self.idle_s,
                "per_layer_runs": self.per_layer_runs if self.per_layer else None, "tolerance": self.tolerance,
                "device": self.device, **({"precision_hint": self.precision_hint} if self.runtime == "openvino" else {})}


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise EdgevisError(f"--batch takes sizes separated by commas, e.g. 1,8 (got {text!r})") from None


def resolve_runtime(path: Path, runtime: str) -> str:
    engine = is_engine(path)
    from ..runtimes.openvino import is_compiled_blob

    if is_compiled_blob(path):
        if runtime not in ("auto", "openvino"):
            raise EdgevisError(f"{path} is a compiled OpenVINO model; profile it with --runtime openvino")
        return "openvino"
    if runtime == "openvino" and engine:
        raise EdgevisError(f"{path} is a TensorRT engine; OpenVINO runs the .onnx file it was built from")
    if runtime == "auto":
        return "trt" if engine else "ort"
    if runtime == "trt" and not engine:
        raise EdgevisError(f"{path} is not a TensorRT engine; build one first: edgevis build {path} --runtime trt")
    if runtime == "ort" and engine:
        raise EdgevisError(f"{path} is a TensorRT engine; ONNX Runtime runs the .onnx file it was built from")
    return runtime


def model_precision(path: Path, runtime: str) -> str:
    """From the sidecar edgevis wrote when it describes this very file (its sha256 matches); else, for ONNX,
    from the graph itself (a sidecar left beside a replaced file is not trusted)."""
    from ..core.files import sha256_file
    from ..core.sidecar import load_sidecar

    side = load_sidecar(path)
    if side.ok and side.data.get("precision") and side.data.get("sha256") == sha256_file(path):
        return str(side.data["precision"])
    if runtime == "trt":
        return "unknown"
    from ..core.onnxfile import has_qdq, load_onnx, op_histogram

    model = load_onnx(path, check=False)
    ops = op_histogram(model)
    if ops.get("ConvInteger") or ops.get("MatMulInteger"):
        return "integer-only"  # as the integer-only sidecar spells it
    if has_qdq(model):
        return "int8"
    from onnx import TensorProto

    if any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


@dataclass
class _Run:
    batch: int
    shapes: dict[str, list[int]]
    samples_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    per_layer: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # warnings other than the noise verdict

    def to_dict(self, tolerance: float) -> dict[str, Any]:
        return summarize_run({"batch": self.batch, "input_shapes": self.shapes, "samples_ms": self.samples_ms,
                              "wall_s": self.wall_s, "memory": self.memory, "energy": self.energy,
                              "per_layer": self.per_layer, "notes": self.notes}, tolerance)


def summarize_run(run: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Statistics, throughput and the noise verdict, derived from a run's samples and window."""
    from .stats import latency_stats, noise_warnings

    stats = latency_stats(run["samples_ms"])
    n, batch, wall = len(run["samples_ms"]), run["batch"], run["wall_s"]
    return {**{k: v for k, v in run.items() if k != "warnings"}, "latency_ms": stats.to_dict(), "iterations": n,
            "throughput_ips": batch * n / wall if wall > 0 else None,
            "warnings": run["notes"] + [f"batch {batch}: {w}" for w in noise_warnings(stats, tolerance)]}


def _merge_energy(parts: list[dict[str, Any]]) -> dict[str, Any]:
    from .energy import EnergyResult

    if not all(e.get("available") for e in parts):
        return next(e for e in parts if not e.get("available"))
    window = sum(e["window_s"] for e in parts)
    merged = EnergyResult(
        meter=parts[0]["meter"], sensor=parts[0]["sensor"], rails=parts[0]["rails"], window_s=window,
        inferences=sum(e["inferences"] for e in parts), energy_j=sum(e["energy_j"] for e in parts),
        # the idle draw each window is corrected by, weighted by that window's length
        idle_w=sum(e["idle_w"] * e["window_s"] for e in parts) / window, samples=sum(e["samples"] for e in parts),
        warnings=sorted({w for e in parts for w in e["warnings"]}))
    return {**merged.to_dict(), "rounds": len(parts)}


def merge_profiles(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several profiles of the same file and settings (rounds taken at different times).

    Samples are pooled, windows and energies summed; memory is the worst round; the per-layer
    table is the last round that has one.
    """
    if len(parts) == 1:
        return parts[0]
    tolerance = parts[0]["settings"]["tolerance"]
    runs = []
    for i, run in enumerate(parts[0]["runs"]):
        rs = [p["runs"][i] for p in parts]
        worst = max(rs, key=lambda r: r["memory"].get("peak_rss_mb") or 0)
        runs.append(summarize_run({
            "batch": run["batch"], "input_shapes": run["input_shapes"],
            "samples_ms": [x for r in rs for x in r["samples_ms"]], "wall_s": sum(r["wall_s"] for r in rs),
            "memory": worst["memory"], "energy": _merge_energy([r["energy"] for r in rs]),
            "per_layer": next((r["per_layer"] for r in reversed(rs) if r["per_layer"]), None),
            "notes": list(dict.fromkeys(w for r in rs for w in r["notes"])), "rounds": len(rs)}, tolerance))
    target_warnings = list(dict.fromkeys(w for p in parts for w in p["target_warnings"]))
    return {**parts[0], "settings": {**parts[0]["settings"], "rounds": len(parts)}, "runs": runs,
            "target_warnings": target_warnings, "warnings": _all_warnings(target_warnings, runs)}


def _all_warnings(target_warnings: list[str], runs: list[dict[str, Any]]) -> list[str]:
    return target_warnings + [w for r in runs for w in r["warnings"]]


def _timed_loop(step: Callable[[], None], config: ProfileConfig, progress: Progress | None) -> tuple[list[float], float, float]:
    """Per-iteration milliseconds, and the window (first start, last end) in perf_counter seconds."""
    clock = time.perf_counter
    samples: list[float] = []
    total = config.iters
    deadline_s = None if total is not None else (config.duration_s or DEFAULT_DURATION_S)
    t_first = clock()
    next_report = t_first + 0.25
    while True:
        t0 = clock()
        step()
        t1 = clock()
        samples.append((t1 - t0) * 1e3)
        n = len(samples)
        if total is not None:
            if n >= total:
                break
        elif n >= MIN_ITERS and t1 - t_first >= deadline_s:  # type: ignore[operator]
            break
        if progress is not None and t1 >= next_report:
            progress("timed", n, total)
            next_report = t1 + 0.25
    if progress is not None:
        progress("timed", len(samples), total)
    return samples, t_first, t1


def profile_file(path: str | Path, config: ProfileConfig = ProfileConfig(), *,
                 progress: Progress | None = None, meter: Any = None) -> dict[str, Any]:
    """Profile one model file; returns the ``edgevis.profile`` result (see the README's ``profile --json``).

    ``meter``: an energy meter (or ``Unavailable``) to use instead of the one ``config.energy`` names.
    """
    from ..core.files import sha256_file
    from ..runtimes.ort import DEVICES
    from .device import device_info
    from .energy import Unavailable, open_meter
    from .memory import PeakRss
    from .targets import open_target

    path = Path(path)
    if not path.is_file():
        raise EdgevisError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    runtime = resolve_runtime(path, config.runtime)
    providers = list(config.providers or DEVICES[config.device])
    on_gpu = runtime == "trt" or providers[0] != "CPUExecutionProvider"
    if meter is None:
        meter = open_meter(config.energy, gpu=on_gpu)
    runs: list[_Run] = []
    target_warnings: list[str] = []
    try:
        with PeakRss() as load_mem:
            target = open_target(path, runtime, providers=providers, threads=config.threads,
                                 precision_hint=config.precision_hint)
        target_warnings += getattr(target, "warnings", [])
        try:
            for i, batch in enumerate(config.batches):
                runs.append(_profile_batch(target, batch, config, meter, progress, load_mem, includes_load=i == 0))
            if config.per_layer:
                for run in runs:
                    if progress is not None:
                        progress(f"per-layer, batch {run.batch}", 0, None)
                    target.prepare(run.batch, seed=config.seed)
                    run.per_layer = target.per_layer(config.per_layer_runs, warmup=min(config.warmup, 5))
            used_providers = list(target.providers)
            ran = getattr(target, "precision", None)  # OpenVINO: what the compiled model runs in, read back
        finally:
            target.close()
    finally:
        if not isinstance(meter, Unavailable):
            meter.close()
    if runtime == "ort" and used_providers[0] != providers[0]:
        target_warnings.append(f"ONNX Runtime did not register {providers[0]}; the session ran on {', '.join(used_providers)}")
    run_dicts = [r.to_dict(config.tolerance) for r in runs]
    return {
        "schema": PROFILE_SCHEMA, "schema_version": PROFILE_VERSION,
        "model": {"path": str(path), "file_bytes": path.stat().st_size, "sha256": sha256_file(path),
                  "precision": ran["ran"] if ran else model_precision(path, runtime), "runtime": runtime,
                  "providers": used_providers, **({"inference_precision": ran} if ran else {})},
        "device": device_info(gpu=on_gpu),
        "settings": config.settings(),
        "runs": run_dicts,
        "target_warnings": target_warnings,
        "warnings": _all_warnings(target_warnings, run_dicts),
    }


def _profile_batch(target, batch: int, config: ProfileConfig, meter,  # type: ignore[no-untyped-def]
                   progress: Progress | None, load: Any, includes_load: bool) -> _Run:
    """One batch size: idle power, warm-up, the timed loop. Memory counts from before ``load`` (the
    span that opened the model); the first batch's peak includes that span."""
    from .energy import Sampler, Unavailable, energy_over, idle_power, unavailable_dict
    from .memory import PeakRss

    with PeakRss() as mem:
        shapes = target.prepare(batch, seed=config.seed)
        run = _Run(batch, shapes)
        idle_w = None
        if not isinstance(meter, Unavailable):
            if progress is not None:
                progress(f"idle power, batch {batch}", 0, None)
            idle_w = idle_power(meter, config.idle_s)
        step = target.run_io if config.include_io else target.run
        timed: Progress | None = None
        if progress is not None:
            timed = lambda _phase, done, total: progress(f"timed, batch {batch}", done, total)  # noqa: E731
            progress(f"warm-up, batch {batch}", 0, config.warmup)
        for _ in range(config.warmup):
            step()
        if isinstance(meter, Unavailable):
            run.samples_ms, t0, t1 = _timed_loop(step, config, timed)
            run.energy = unavailable_dict(meter.reason)
        else:
            with Sampler(meter) as sampler:
                sampler.mark()
                run.samples_ms, t0, t1 = _timed_loop(step, config, timed)
                sampler.mark()
            if sampler.error:
                raise EdgevisError(f"the energy sensor ({meter.sensor}) stopped answering during the run: "
                                   f"{sampler.error}; rerun with --energy none to profile without it")
            e = energy_over(sampler.trace, meter, t0, t1, inferences=batch * len(run.samples_ms), idle_w=idle_w)
            run.energy = e.to_dict()
            run.notes += [f"energy, batch {batch}: {w}" for w in e.warnings]
        run.wall_s = t1 - t0
    mem.rss_before_mb = load.rss_before_mb
    if includes_load:
        mem.peak_rss_mb = max(mem.peak_rss_mb or 0, load.peak_rss_mb or 0)
    mem.gpu_mb, mem.gpu_method = target.gpu_memory()
    run.memory = mem.to_dict()
    run.memory["file_mb"] = target.path.stat().st_size / 2**20
    return run
