"""``edgevis bench`` composed: export each precision of a catalog model, check its fidelity, profile it, compare.

Artifacts already in the output folder are reused only when their sidecars prove they
are what would be made now: the FP32 file of the same model and weights (and a
dynamic batch where a batch size > 1 is asked), quantized files made from exactly that
FP32 file (the ``source_sha256`` their sidecar records) for the same INT8 target.
Anything else is made again, and the result says which files were reused.

Fidelity is measured for every quantized precision against the FP32 file on the same
held-out images (the split the quantizers hold out of calibration), on ONNX Runtime's
CPU provider, so the precisions are compared on equal terms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..core.errors import EdgevisError
from ..profile.profiler import ProfileConfig, Progress, merge_profiles
from ..profile.rounds import profile_in_child

# accepted spellings -> the precision name the sidecars record (files are named NAME.integer_only.onnx)
PRECISIONS = {"fp32": "fp32", "int8": "int8", "integer-only": "integer-only", "integer_only": "integer-only"}


def parse_precisions(text: str) -> tuple[str, ...]:
    """``fp32,int8,integer_only`` -> ("fp32", "int8", "integer-only"); FP32 always comes first (the baseline)."""
    import difflib

    out: list[str] = []
    for t in (s.strip().lower() for s in text.split(",")):
        if not t:
            continue
        if t not in PRECISIONS:
            close = difflib.get_close_matches(t, PRECISIONS, n=2)
            raise EdgevisError(f"unknown precision {t!r}" + (f"; did you mean {' or '.join(close)}?" if close else "")
                               + " (choose from fp32, int8, integer-only)")
        if PRECISIONS[t] not in out:
            out.append(PRECISIONS[t])
    if not out:
        raise EdgevisError("--precisions is empty; e.g. fp32,int8")
    return ("fp32", *[p for p in out if p != "fp32"])


@dataclass(frozen=True)
class BenchConfig:
    model: str
    precisions: tuple[str, ...] = ("fp32", "int8")
    output_dir: Path = Path("edgevis_out")
    weights: str | None = None
    input_size: tuple[int, int] | None = None
    calib_dir: Path | None = None
    holdout_dir: Path | None = None
    val_dir: Path | None = None  # labelled images: top-1/top-5 accuracy of every precision
    reuse: bool = True
    rounds: int = 3  # each precision is profiled in this many rounds, in alternating order
    profile: ProfileConfig = field(default_factory=ProfileConfig)

    def __post_init__(self) -> None:
        # paths and sizes as a Python caller may give them (str, list)
        for name in ("output_dir", "calib_dir", "holdout_dir", "val_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "precisions", tuple(self.precisions))
        if self.weights is not None:
            object.__setattr__(self, "weights", str(self.weights))
        if self.rounds < 1:
            raise EdgevisError(f"--rounds must be >= 1 (got {self.rounds})")
        bad = [p for p in self.precisions if p not in PRECISIONS.values()]
        if bad:
            raise EdgevisError(f"unknown precision {bad[0]!r}; choose from fp32, int8, integer-only")
        if self.precisions[0] != "fp32":
            raise EdgevisError("the first precision must be fp32, the baseline of the comparison")
        rt = self.profile.runtime
        if rt in ("trt", "openvino") and "integer-only" in self.precisions:
            raise EdgevisError(f"integer-only models are benched on ONNX Runtime only (not --runtime {rt}); "
                               "bench them with --runtime ort")

    @property
    def int8_target(self) -> str:
        if self.profile.runtime == "openvino":
            return "openvino"
        return "tensorrt" if self.profile.runtime == "trt" or self.profile.device != "cpu" else "ort-cpu"


def _weights_id(weights: str | None, model: str) -> Any:
    if weights is None:
        return "random-init"
    from ..core.files import sha256_file

    if weights == "builtin":
        from ..catalog.factory import resolve_builtin_weights

        return sha256_file(resolve_builtin_weights(model))
    p = Path(weights)
    if not p.is_file():
        raise EdgevisError(f"weights file not found: {p}")
    return sha256_file(p)


def _reusable(path: Path, accept: Callable[[dict[str, Any]], bool]) -> bool:
    """``path`` exists, its sidecar describes this very file, and ``accept`` takes the sidecar."""
    from ..core.types import read_sidecar
    from ..runtimes.guard import check_sidecar_matches_file

    side = read_sidecar(path) if path.is_file() else None
    if not side or not side.get("sha256"):
        return False
    return check_sidecar_matches_file(side, path) is None and accept(side)


def artifacts(config: BenchConfig, log: Callable[[str], None], warnings: list[str]) -> tuple[dict[str, Path], list[str]]:
    from ..core.files import sha256_file
    from ..core.types import precision_path

    from ..catalog.registry import model_info

    out = config.output_dir
    fp32 = out / f"{config.model}.fp32.onnx"
    wid = _weights_id(config.weights, config.model)
    dynamic = any(b > 1 for b in config.profile.batches)
    size = list(config.input_size or model_info(config.model).input_size)
    reused: list[str] = []

    def same_fp32(side: dict[str, Any]) -> bool:
        w, shape = side.get("weights"), (side.get("input") or {}).get("shape")
        return (side.get("model") == config.model
                and (w == wid or (isinstance(w, dict) and w.get("sha256") == wid))
                and bool(shape) and len(shape) == 4 and (not dynamic or not isinstance(shape[0], int))
                and list(shape[2:]) == size)

    if config.reuse and _reusable(fp32, same_fp32):
        reused.append("fp32")
    else:
        from ..exporters.onnx import ExportConfig
        from .exporting import export_fp32

        log(f"exporting {config.model} to ONNX")
        result = export_fp32(config.model, out, weights=config.weights,
                             config=ExportConfig(dynamic_batch=dynamic, input_size=config.input_size))
        fp32 = result.artifact.path
        warnings += result.warnings
    paths = {"fp32": fp32}
    src_sha = sha256_file(fp32)
    for p in config.precisions[1:]:
        path = precision_path(fp32, p.replace("-", "_"))

        def made_from_fp32(side: dict[str, Any], p: str = p) -> bool:
            return side.get("source_sha256") == src_sha and (
                p != "int8" or (side.get("quantization") or {}).get("target") == config.int8_target)

        if config.reuse and _reusable(path, made_from_fp32):
            reused.append(p)
            paths[p] = path
            continue
        if p == "int8":
            from ..quant.int8 import Int8Config, quantize_int8_file

            log(f"quantizing to INT8 (target {config.int8_target})")
            q = quantize_int8_file(fp32, Int8Config(target=config.int8_target, calib_dir=config.calib_dir,
                                                    holdout_dir=config.holdout_dir), log=log)
        else:
            from ..quant.integer_only import IntegerOnlyConfig, quantize_integer_only_file

            log("converting to integer-only")
            q = quantize_integer_only_file(fp32, IntegerOnlyConfig(calib_dir=config.calib_dir,
                                                                    holdout_dir=config.holdout_dir), log=log)
        warnings += q.warnings
        paths[p] = q.path
    return paths, reused


def _engine(onnx_path: Path, precision: str, reuse: bool, log: Callable[[str], None]) -> Path:
    """A TensorRT engine for ``onnx_path`` (reused when its sidecar names this source and this TensorRT/GPU)."""
    from ..core.files import sha256_file
    from ..runtimes.trt import TrtBuildConfig, check_engine, default_engine_path, engine_from_onnx, running_info

    trt_precision = "int8" if precision == "int8" else "fp32"
    path = default_engine_path(onnx_path, trt_precision)
    src_sha = sha256_file(onnx_path)
    if reuse and _reusable(path, lambda side: side.get("source_sha256") == src_sha):
        try:
            check_engine(path, running_info())
            return path
        except EdgevisError:
            pass  # another TensorRT or GPU: build again
    log(f"building a TensorRT {trt_precision} engine from {onnx_path.name}")
    return engine_from_onnx(onnx_path, path, TrtBuildConfig(precision=trt_precision)).path


def _round_config(config: BenchConfig, r: int) -> ProfileConfig:
    """The profile settings of round ``r``: the iterations (or seconds) split over the rounds, at least
    MIN_ITERS each; the per-layer pass only in the last round."""
    import math

    from ..profile.profiler import DEFAULT_DURATION_S

    p, n = config.profile, config.rounds
    share: dict[str, Any] = ({"iters": max(1, math.ceil(p.iters / n))} if p.iters is not None
                             else {"duration_s": (p.duration_s or DEFAULT_DURATION_S) / n})
    return replace(p, runtime=p.runtime if p.runtime in ("trt", "openvino") else "ort",
                   per_layer=p.per_layer and r == n - 1, **share)


def run_bench(config: BenchConfig, *, progress: Progress | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export, check and profile every precision; returns an ``edgevis.report`` dict."""
    from ..catalog.registry import model_info
    from ..quant.calibration import calibration_sources
    from ..quant.fidelity import fidelity_report
    from ..report import new_report
    from ..runtimes.predict import recorded_preprocess
    log = log or (lambda s: None)
    model_info(config.model)  # an unknown name fails here, with close names
    if config.val_dir is not None:
        from ..profile.accuracy import labelled_folder

        labelled_folder(config.val_dir)  # a bad --val fails before minutes of work
    warnings: list[str] = []
    if config.weights is None:
        warnings.append(f"no --weights given: {config.model} has RANDOM weights; its latency and energy are real, "
                        "but its fidelity figures say nothing about a trained model")
    paths, reused = artifacts(config, log, warnings)
    spec, _ = recorded_preprocess(paths["fp32"])
    _, held = calibration_sources(config.calib_dir, config.holdout_dir, [])
    files: dict[str, Path] = {}
    fidelity: dict[str, Any] = {}
    for p, path in paths.items():
        if p != "fp32":
            log(f"measuring {p} fidelity against fp32")
            fidelity[p] = {"reference": "fp32", "runtime": "onnxruntime-cpu",
                           **fidelity_report(paths["fp32"], path, held, spec)}
        files[p] = _engine(path, p, config.reuse, log) if config.profile.runtime == "trt" else path
    accuracy: dict[str, Any] = {}
    if config.val_dir is not None:
        from ..profile.accuracy import evaluate_files

        log(f"measuring accuracy on {config.val_dir}")
        acc = evaluate_files([str(paths[p]) for p in paths], config.val_dir)
        accuracy = {p: {**m, "class_index": acc["class_index"], "val": acc["val"], "runtime": "onnxruntime-cpu"}
                    for p, m in zip(paths, acc["models"])}
        warnings += acc["warnings"]
    parts: dict[str, list[dict[str, Any]]] = {p: [] for p in files}
    for r in range(config.rounds):
        # alternate the order so drift of the machine does not always fall on the same precision
        for p in (list(files) if r % 2 == 0 else list(reversed(files))):
            log(f"profiling {p}, round {r + 1} of {config.rounds} (in a fresh process)")
            parts[p].append(profile_in_child(
                files[p], _round_config(config, r),
                progress=(lambda ph, d, t, p=p, r=r: progress(f"{p} round {r + 1}: {ph}", d, t)) if progress else None))
    entries = [{"label": p, "precision": p, "file": str(files[p]), "onnx": str(paths[p]), "reused": p in reused,
                "fidelity": fidelity.get(p), "profile": merge_profiles(parts[p]), "provenance": file_provenance(paths[p]),
                "accuracy": accuracy.get(p)}
               for p in files]
    runtime = {"trt": "TensorRT", "openvino": "OpenVINO CPU (precision that ran: per entry)"}.get(
        config.profile.runtime, f"ONNX Runtime ({config.profile.device})")
    return new_report("bench", f"{config.model} on {runtime}", entries[0]["profile"]["device"], entries,
                      model=config.model, baseline="fp32",
                      warnings=warnings + [f"{e['label']}: {w}" for e in entries for w in e["profile"]["warnings"]])


def file_provenance(path: Path) -> dict[str, Any] | None:
    """What the report says about how ``path`` was made: weights, input, and the quantization recipe
    (from its sidecar, which bench has checked against the file)."""
    from ..core.types import read_sidecar

    side = read_sidecar(path)
    if not side:
        return None
    q = side.get("quantization") or {}
    keep = ("format", "target", "activations", "weights", "per_channel", "calibration_method", "calibration_images",
            "calibration_source", "act_bits")
    return {"weights": side.get("weights"), "input_shape": (side.get("input") or {}).get("shape"),
            "layout": (side.get("preprocess") or {}).get("layout", "NCHW"), "precision": side.get("precision"),
            "exporter": side.get("exporter"), "sha256": side.get("sha256"),
            "quantization": ({k: q.get(k) for k in keep if k in q} |
                             {"kept_float": [{"count": k.get("count"), "reason": k.get("reason")}
                                             for k in q.get("kept_float") or []]}) if q else None}


@dataclass(frozen=True)
class BenchResult:
    """``edgevis.bench``'s result: the ``edgevis.report`` record (the README's ``bench --json``), with
    accessors; ``to_dict()`` is the record as written to report.json."""

    data: dict[str, Any] = field(repr=False)
    report_files: dict[str, Path] | None = None  # report.json/.md/.html, when bench was given report_dir

    @property
    def precisions(self) -> list[str]:
        return [e["precision"] for e in self.data["entries"]]

    def entry(self, precision: str) -> dict[str, Any]:
        for e in self.data["entries"]:
            if e["precision"] == precision:
                return e
        raise KeyError(f"{precision} was not benched (precisions: {', '.join(self.precisions)})")

    def latency_ms(self, precision: str, stat: str = "p50", batch: int | None = None) -> float:
        runs = self.entry(precision)["profile"]["runs"]
        run = runs[0] if batch is None else next(r for r in runs if r["batch"] == batch)
        return float(run["latency_ms"][stat])

    def speedup(self, precision: str, stat: str = "p50", batch: int | None = None) -> float:
        """How many times faster than FP32 (the baseline) ``precision`` ran."""
        return self.latency_ms("fp32", stat, batch) / self.latency_ms(precision, stat, batch)

    def fidelity(self, precision: str) -> dict[str, Any] | None:
        return self.entry(precision).get("fidelity")

    @property
    def warnings(self) -> list[str]:
        return list(self.data["warnings"])

    def to_dict(self) -> dict[str, Any]:
        return self.data


def bench(config: BenchConfig | None = None, *, progress: Progress | None = None,
          log: Callable[[str], None] | None = None, invocation: str | None = None,
          report_dir: str | os.PathLike[str] | None = None, **options: Any) -> BenchResult:
    """Export (or reuse) every precision of a catalog model, measure its fidelity against FP32 and
    profile it in alternating rounds; ``options`` are :class:`BenchConfig` fields for a config built
    in place (``model="lsnet_t", precisions=("fp32", "int8")``). With ``report_dir``, also write
    report.json, report.md and report.html there (the folder is checked before any work)."""
    if config is not None and options:
        raise TypeError("pass either config or BenchConfig fields, not both")
    config = config or BenchConfig(**options)
    from ..core.files import ensure_writable_dir
    from .steps import locked_output

    out_dir = ensure_writable_dir(config.output_dir)
    if report_dir is not None:
        ensure_writable_dir(report_dir)  # before minutes of exporting and measuring, not after
    with locked_output(out_dir):
        report = run_bench(config, progress=progress, log=log)
    if invocation:
        report["invocation"] = invocation
    written = None
    if report_dir is not None:
        from ..report import write_report

        written = write_report(report, report_dir)
    return BenchResult(report, written)
