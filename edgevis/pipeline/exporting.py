"""export -> simplify -> quantize (INT8, integer-only) -> C: one model, its files, one typed result."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..core.errors import EdgevisError
from .sources import PreprocessOptions, resolve_source
from .steps import Log, OnStep, as_int8, as_integer_only, check_calibration_folders, files_of, locked_output, quiet, say_what_was_written

if TYPE_CHECKING:  # the stages are imported where they run, so `import edgevis.pipeline` stays light
    from ..exporters.onnx import ExportConfig, ExportResult
    from ..quant.fidelity import QuantizedFile
    from ..quant.int8 import Int8Config
    from ..quant.integer_only import IntegerOnlyConfig


@dataclass
class ExportRun:
    """What :func:`export` made: the verified FP32 file and, when asked, the quantized files and C library."""

    model: str
    fp32: "ExportResult"
    int8: "QuantizedFile | None" = None
    integer_only: "QuantizedFile | None" = None
    c_library: Any = None  # edgevis.codegen's result, with emit_c
    warnings: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # edgevis evaluate's result on --val, when given

    @property
    def artifacts(self) -> dict[str, Path]:
        out = {"fp32": self.fp32.artifact.path}
        if self.int8 is not None:
            out["int8"] = self.int8.path
        if self.integer_only is not None:
            out["integer_only"] = self.integer_only.path
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``edgevis export --json`` object (the README documents its keys)."""
        r = self.fp32
        prov = r.artifact.provenance
        d: dict[str, Any] = {
            "model": self.model,
            "weights": prov["weights"],
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
            "checks": {"fp32_parity": {**r.parity.to_dict(), "reference": "torch eager", "passed": True}},
            "export": {"exporter": r.exporter, "opset": prov["opset"], "input": prov["input"],
                       "nodes": sum(r.nodes.values()), "seconds": prov["export_seconds"], "simplify": r.simplify},
            "warnings": list(self.warnings),
        }
        d.update(quantized_dict(self))
        d["c"] = None
        if self.c_library is not None:
            d["artifacts"]["c"] = str(getattr(self.c_library, "out_dir", "") or "")
            d["c"] = self.c_library.to_dict()
        return d


def quantized_dict(run: Any) -> dict[str, Any]:
    """``fidelity`` and ``quantization`` keyed by precision (``int8``, ``integer_only``; empty when nothing was
    quantized) and ``accuracy`` (null without --val): the same shape whatever the flags (issue 17)."""
    quantized = {k: q for k, q in (("int8", run.int8), ("integer_only", run.integer_only)) if q is not None}
    return {"fidelity": {k: q.fidelity for k, q in quantized.items()},
            "quantization": {k: q.settings for k, q in quantized.items()},
            "accuracy": run.accuracy}


def export_fp32(model_name: str, output_dir: str | os.PathLike[str], *, weights: str | None = None,
                config: "ExportConfig | None" = None, model: Any = None, deploy: bool = True,
                isolate: bool = False, quantizing: bool = False) -> "ExportResult":
    """The exporter stage with the graph stage's simplifier plugged in (``config.simplify``); ``isolate``:
    a catalog model is built and traced in a child process (see :mod:`edgevis.exporters.child`), while this
    process imports what the steps after it use (``quantizing``: the quantizer's too)."""
    from ..exporters.onnx import ExportConfig, export_onnx

    return export_onnx(model_name, output_dir, weights=weights, config=config or ExportConfig(), model=model,
                       deploy=deploy, simplifier=_simplify_traced, isolate=isolate,
                       meanwhile=lambda: _import_later_steps(quantizing))


def _simplify_traced(model: Any, x: Any, notes: list) -> Any:
    """graph.simplify's simplifier, imported when it runs: importing it (and onnx with it) before the export's
    child starts put ~1 s in front of the child (issue 18)."""
    from ..graph.simplify import simplify_traced

    return simplify_traced(model, x, notes)


def _import_later_steps(quantizing: bool) -> None:
    """Import onnxsim, ONNX Runtime and (``quantizing``) ORT's quantizer while the export's child traces: ~2 s
    of imports on a core the child leaves idle, instead of after it (issue 18)."""
    from ..graph.simplify import import_onnxsim
    from ..runtimes import ort  # noqa: F401

    import_onnxsim()
    if quantizing:
        from ..quant import int8  # noqa: F401
        from onnxruntime.quantization import quantize_static  # noqa: F401
        from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: F401


def torch_in_child() -> bool:
    """Whether a catalog model is traced in a child process: when this process has not imported torch. The
    child's torch and exporter leftovers (~700 MB on lsnet_t) then end with it instead of riding along through
    quantization; a process that already holds torch (a notebook, a test run) gains nothing from a child and
    would pay a second torch import."""
    import sys

    return "torch" not in sys.modules


def export(
    model: Any,
    *,
    weights: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] = "edgevis_out",
    config: "ExportConfig | None" = None,
    int8: "Int8Config | bool | None" = None,
    integer_only: "IntegerOnlyConfig | bool | None" = None,
    emit_c: str | os.PathLike[str] | None = None,
    preprocess: PreprocessOptions | None = None,
    name: str | None = None,
    val: str | os.PathLike[str] | None = None,
    log: Log | None = None,
    on_step: OnStep | None = None,
) -> ExportRun:
    """Export ``model`` to ``output_dir/NAME.fp32.onnx``, proven against torch on ONNX Runtime, and
    optionally quantize it (``int8``, ``integer_only``: a config, or True for the defaults) and emit
    the integer-only model as C (``emit_c``: a folder).

    ``model`` is a catalog name (``"lsnet_t"``), a factory (``"path/to/file.py:fn"``, a function
    returning an ``nn.Module``), ``"timm:NAME"`` where timm is installed, or an ``nn.Module``.
    Models that are not in the catalog need ``preprocess=PreprocessOptions(input_size=...)``
    (mean/std default to ImageNet's). Everything is checked before the export starts; files are
    written atomically under a lock on ``output_dir``; ``on_step(step, result)`` is called as each
    step finishes ("export", "int8", "integer_only", "c", "accuracy"), and with ``("warning", message)``
    for each warning as it arises (all of them are also in the result's ``warnings``).
    """
    from ..core.files import ensure_writable_dir
    from ..exporters.onnx import ExportConfig

    log, step = log or quiet, on_step or (lambda s, r: None)
    config = config or ExportConfig()
    q8, qio = as_int8(int8), as_integer_only(integer_only)
    if emit_c is not None and qio is None:
        raise EdgevisError("--emit-c writes the integer-only model as C: add --integer-only")
    for q in (q8, qio):
        if q is not None:
            check_calibration_folders(q.calib_dir, q.holdout_dir)
    if emit_c is not None:
        ensure_writable_dir(emit_c)
    if val is not None:
        from ..profile.accuracy import labelled_folder

        labelled_folder(val)  # checked before the export
    custom = not isinstance(model, str) or _is_custom(model)
    was_training = getattr(model, "training", None)  # a caller's nn.Module is given back as it came
    source = resolve_source(model, name=name, weights=str(weights) if custom and weights is not None else None,
                            preprocess=_with_size(preprocess or PreprocessOptions(), config.input_size),
                            num_classes=config.num_classes)
    warnings: list[str] = []
    up_front: list[str] = []
    given = preprocess or PreprocessOptions()
    if source.kind in ("factory", "module") and (given.mean is None or given.std is None):
        spec = source.module.edgevis_preprocess
        up_front.append(f"no --mean/--std given for {source.name}: ImageNet's mean {list(spec.mean)} and std "
                        f"{list(spec.std)} are recorded as its preprocessing; give the ones it was trained with")
    if source.is_catalog and weights is None:
        up_front.append(f"no --weights given: {source.name} has RANDOM weights. The file is fine for testing the "
                        "pipeline, but any accuracy or fidelity figure from it is meaningless.")
    out_dir = ensure_writable_dir(output_dir)
    from ..core.files import check_replaceable

    for p in ("fp32", *(["int8"] if q8 is not None else []), *(["integer_only"] if qio is not None else [])):
        for f in (f"{source.name}.{p}.onnx", f"{source.name}.{p}.onnx.json"):
            check_replaceable(out_dir / f)  # before the export, not after it
    say_warnings(step, warnings, up_front)
    with _given_back(source, was_training), locked_output(out_dir):
        log(f"exporting {source.name} to ONNX and checking it on ONNX Runtime")
        if source.is_catalog:
            result = export_fp32(source.name, out_dir, weights=None if weights is None else str(weights), config=config,
                                 isolate=torch_in_child(), quantizing=q8 is not None or qio is not None)
        else:
            result = export_fp32(source.name, out_dir, config=config, model=source.module, deploy=False)
        say_warnings(step, warnings, result.warnings)
        run = ExportRun(source.name, result, warnings=warnings)
        step("export", result)
        pending = [f"{source.name}.{p}.onnx" for p, q in (("int8", q8), ("integer_only", qio)) if q is not None]
        pending += ["the C library"] if emit_c is not None else []
        with say_what_was_written(files_of(run), pending):
            if q8 is not None or qio is not None:
                from ..core.heap import release_freed_memory

                release_freed_memory()  # the exporter's freed heap, kept by glibc, would ride along (core/heap.py)
            _quantize_into(run, result.artifact.path, q8, qio, log, step, warnings)
            if emit_c is not None:
                run.c_library = _emit_c(run, emit_c, log, step)
            if val is not None:
                run.accuracy = measure_accuracy(run, val, log, step)
    return run


@contextmanager
def _given_back(source: Any, was_training: bool | None) -> Iterator[None]:
    """A module the caller passed in is exported in eval mode with edgevis's records on it; afterwards (or
    after a failure) it is handed back as it came: its train/eval mode restored, the records taken off."""
    try:
        yield
    finally:
        if source.kind == "module" and source.module is not None:
            for name in ("edgevis_info", "edgevis_preprocess", "edgevis_weights"):
                source.module.__dict__.pop(name, None)
            if was_training is not None:
                source.module.train(was_training)


def measure_accuracy(run: Any, val: str | os.PathLike[str], log: Log, step: OnStep) -> dict[str, Any]:
    """Top-1/top-5 of every file of ``run`` on the labelled folder ``val`` (FP32 first: agreement is against it)."""
    from ..profile.accuracy import evaluate_files

    log(f"measuring accuracy on {val}")
    result = evaluate_files([str(p) for p in run.artifacts.values()], val)
    for (precision, _), m in zip(run.artifacts.items(), result["models"]):
        m["precision"] = precision
    step("accuracy", result)
    say_warnings(step, run.warnings, result["warnings"])  # e.g. fewer class folders than the model's classes
    return result


def say_warnings(step: OnStep, warnings: list[str], new: list[str]) -> None:
    """Add ``new`` to ``warnings`` and hand each to ``on_step("warning", msg)`` now, so that a warning
    (random weights, a float fallback) is shown before the results it qualifies, not after them. A warning
    already said is not said again (--int8 --integer-only read the same calibration folder: its unreadable
    files were reported twice)."""
    for w in new:
        if w in warnings:
            continue
        warnings.append(w)
        step("warning", w)


def _is_custom(model: str) -> bool:
    from .sources import is_factory_spec

    return model.startswith("timm:") or is_factory_spec(model)


def _with_size(opts: PreprocessOptions, size: tuple[int, int] | None) -> PreprocessOptions:
    from dataclasses import replace

    return replace(opts, input_size=size) if size is not None and opts.input_size is None else opts


def _quantize_into(run: Any, fp32: Path, q8: Any, qio: Any, log: Log, step: OnStep, warnings: list[str],
                   sources: Any = None) -> None:
    """The quantize step, shared by export and quantize: INT8, then integer-only, beside ``fp32``."""
    if q8 is not None:
        from ..quant.int8 import quantize_int8_file

        log("calibrating and quantizing to INT8")
        run.int8 = quantize_int8_file(fp32, q8, log=log, sources=sources() if sources else None)
        say_warnings(step, warnings, run.int8.warnings)
        step("int8", run.int8)
    if qio is not None:
        from ..quant.integer_only import quantize_integer_only_file

        log("converting to integer-only")
        run.integer_only = quantize_integer_only_file(fp32, qio, log=log, sources=sources() if sources else None)
        say_warnings(step, warnings, run.integer_only.warnings)
        step("integer_only", run.integer_only)


def _emit_c(run: ExportRun, out: str | os.PathLike[str], log: Log, step: OnStep) -> Any:
    from ..codegen import emit_c

    assert run.integer_only is not None
    log("writing the integer-only model as C")
    lib = emit_c(run.integer_only.path, out)
    step("c", lib)
    return lib

