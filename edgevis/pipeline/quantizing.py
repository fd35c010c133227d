"""Quantize any ONNX image classifier: one edgevis did not write included.

A file edgevis exported records its preprocessing and provenance. Any other file is
*adopted* first: checked (one 4-D float image input, NCHW or NHWC with 3 channels;
one (batch, classes) output), copied to ``OUT/NAME.fp32.onnx`` with the preprocessing
the user gave (flags or :class:`PreprocessOptions`) recorded in its metadata and sidecar,
so that every later step — INT8, integer-only, predict, bench, the C++ runtime — reads
the same record. The user's file is never modified.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..core.errors import EdgevisError
from ..core.types import Preprocess
from .sources import PreprocessOptions
from .steps import Log, OnStep, as_int8, as_integer_only, check_calibration_folders, files_of, locked_output, quiet, say_what_was_written

if TYPE_CHECKING:
    from ..quant.fidelity import QuantizedFile
    from ..quant.int8 import Int8Config
    from ..quant.integer_only import IntegerOnlyConfig


@dataclass
class QuantizeRun:
    """What :func:`quantize` made: the FP32 file it quantized (the user's, or its adopted copy) and the results."""

    model: str
    fp32: Path
    adopted: bool
    preprocess: Preprocess
    int8: "QuantizedFile | None" = None
    integer_only: "QuantizedFile | None" = None
    warnings: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # edgevis evaluate's result on --val, when given

    @property
    def artifacts(self) -> dict[str, Path]:
        out = {"fp32": self.fp32}
        if self.int8 is not None:
            out["int8"] = self.int8.path
        if self.integer_only is not None:
            out["integer_only"] = self.integer_only.path
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``edgevis quantize --json`` object: ``export --json``'s keys where they apply."""
        d: dict[str, Any] = {"model": self.model, "source": {"adopted": self.adopted},
                             "artifacts": {k: str(v) for k, v in self.artifacts.items()},
                             "preprocess": self.preprocess.to_dict(), "warnings": list(self.warnings)}
        from .exporting import quantized_dict

        d.update(quantized_dict(self))
        return d


def quantize(
    onnx_file: str | os.PathLike[str],
    *,
    int8: "Int8Config | bool | None" = None,
    integer_only: "IntegerOnlyConfig | bool | None" = None,
    preprocess: PreprocessOptions | Preprocess | None = None,
    calibration: Iterable[Any] | None = None,
    holdout: Iterable[Any] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    val: str | os.PathLike[str] | None = None,
    log: Log | None = None,
    on_step: OnStep | None = None,
) -> QuantizeRun:
    """Quantize an ONNX image classifier to INT8 and/or integer-only.

    Preprocessing comes from the file's edgevis record (metadata or sidecar), else from
    ``preprocess``; options that contradict a record are refused. Calibration images come
    from ``int8.calib_dir`` (or the bundled photos), or from ``calibration``: any iterable of
    preprocessed float32 arrays, one image each (``(3, H, W)``, or ``(H, W, 3)`` for NHWC),
    streamed; ``holdout`` likewise for the fidelity report (default: every 5th calibration
    array). Output goes beside an edgevis file, else (and with ``output_dir``) to
    ``output_dir`` (default: the file's folder) as ``NAME.{fp32,int8,integer_only}.onnx``.
    """
    from ..core.files import ensure_writable_dir
    from ..core.onnxfile import load_onnx

    log, step = log or quiet, on_step or (lambda s, r: None)
    q8, qio = as_int8(int8), as_integer_only(integer_only)
    if q8 is None and qio is None:
        raise EdgevisError("nothing to do: ask for --int8 and/or --integer-only")
    for q in (q8, qio):
        if q is not None:
            check_calibration_folders(q.calib_dir, q.holdout_dir)
            if calibration is not None and q.calib_dir is not None:
                raise EdgevisError("give calibration images either as a folder (calib_dir) or as arrays, not both")
    if val is not None:
        from ..profile.accuracy import labelled_folder

        labelled_folder(val)  # checked before any work
    src = Path(onnx_file)
    model = load_onnx(src)
    image_input, classes = check_classifier(model, src)
    from ..runtimes.predict import MAX_FIXED_BATCH

    fixed_batch = image_input.type.tensor_type.shape.dim[0].dim_value
    if fixed_batch > MAX_FIXED_BATCH:  # calibration pads every batch to it: 2^31 images of Python list, then numpy
        raise EdgevisError(f"{src}: input {image_input.name!r} has a fixed batch of {fixed_batch}; calibration pads "
                           f"its images to the batch and takes at most {MAX_FIXED_BATCH} (export with --batch or "
                           "--dynamic-batch)")
    recorded = _recorded(src, model)
    # respell what crashes ORT, then a first load in a child - for every file, not only those without a
    # preprocessing record: metadata proves nothing (anyone can write it), and check_loads itself skips a file
    # whose sidecar records its sha256 (edgevis wrote it and ORT already ran it then)
    from ..core.normalize import normalize_model
    from ..runtimes.isolate import check_loads

    model, respelled = normalize_model(model)
    check_loads(src)
    model, upgraded_from = upgrade_opset(model, src)
    opts = preprocess if isinstance(preprocess, PreprocessOptions) else (
        PreprocessOptions(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in preprocess.to_dict().items()})
        if isinstance(preprocess, Preprocess) else PreprocessOptions())
    out_dir = ensure_writable_dir(output_dir if output_dir is not None else src.parent)
    warnings: list[str] = []
    if recorded is not None:
        spec, prov = recorded
        opts.check_against(spec, str(src))
    else:
        graph_size = _graph_hw(image_input)
        if opts.input_size is None and graph_size is not None:
            opts = replace(opts, input_size=graph_size)
        if opts.layout is None:
            opts = replace(opts, layout=_layout(image_input, src))
        spec = opts.resolve(require_norm=True, what=str(src))
        if graph_size is not None and graph_size != spec.input_size:
            raise EdgevisError(f"--input-size {spec.input_size[0]} {spec.input_size[1]} contradicts {src}'s input "
                               f"{_dims(image_input)}")
        if _layout(image_input, src) != spec.layout:
            raise EdgevisError(f"--layout {spec.layout} contradicts {src}'s input {_dims(image_input)}")
        prov = None
    label = name or (prov or {}).get("model") or src.name.replace(".fp32.onnx", "").replace(".onnx", "")
    if not isinstance(label, str) or label in ("", ".", "..") or Path(label).name != label or any(c in label for c in "\\\0"):
        # the name (--name, or the model a record names) makes the file names: it stays inside the output folder
        raise EdgevisError(f"name {label!r} cannot name files inside {out_dir} (it holds a path); give --name NAME")
    sources = None
    if calibration is not None:
        sources = _array_sources(calibration, holdout, spec)
    elif holdout is not None:
        raise EdgevisError("holdout arrays need calibration arrays too (or give holdout_dir in the config)")
    with locked_output(out_dir):
        fp32_existed = (out_dir / f"{label}.fp32.onnx").exists()
        in_place = recorded is not None and (prov or {}).get("precision") == "fp32" and out_dir.resolve() == src.parent.resolve() \
            and src.name.endswith(".fp32.onnx") and not respelled and upgraded_from is None
        if in_place:
            fp32, adopted = src, False
        else:
            log(f"adopting {src.name}: recording its preprocessing in {label}.fp32.onnx")
            fp32 = adopt(model, src, out_dir / f"{label}.fp32.onnx", spec, label, classes, image_input, prov,
                         upgraded_from=upgraded_from)
            adopted = True
        run = QuantizeRun(label, fp32, adopted, spec, warnings=warnings)
        if adopted:  # a file quantized beside itself was not written ("wrote X (your file ...)" said it was)
            step("adopt", fp32)
        if upgraded_from is not None:
            from .exporting import say_warnings

            say_warnings(step, warnings, [
                f"{src.name} is ONNX opset {upgraded_from}: {fp32.name} is upgraded to opset {MIN_OPSET} (ONNX "
                "Runtime's INT8 writes per-axis DequantizeLinear, an opset 13 form), and computes the same outputs "
                "on ONNX Runtime"])
        from .exporting import _quantize_into

        pending = [f"{label}.{p}.onnx" for p, q in (("int8", q8), ("integer_only", qio)) if q is not None]
        with say_what_was_written(files_of(run) if adopted else (lambda: []), pending):
            try:
                _quantize_into(run, fp32, q8, qio, log, step, warnings, sources=sources)
            except BaseException as e:
                # the adopted copy is a by-product of quantizing: a run that quantized nothing takes back the
                # copy it made (one that was there before stays), so a failed run leaves the folder as it was,
                # and its message names the user's file, not a copy that no longer exists
                if adopted and not fp32_existed and run.int8 is None and run.integer_only is None:
                    from ..core.types import sidecar_path

                    for p in (fp32, sidecar_path(fp32)):
                        p.unlink(missing_ok=True)
                    if isinstance(e, EdgevisError):
                        named = EdgevisError(f"{str(e).replace(str(fp32), str(src))} ({fp32.name}, adopted before "
                                             "this step, was removed: nothing was written)")
                        named.exit_code = e.exit_code
                        raise named from None
                raise
            if val is not None:
                from .exporting import measure_accuracy

                run.accuracy = measure_accuracy(run, val, log, step)
    return run


def check_classifier(model: Any, path: Path) -> tuple[Any, int | None]:
    """(the image input, classes or None when symbolic); one line naming what is wrong otherwise."""
    from onnx import TensorProto

    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise EdgevisError(f"{path} has {len(inputs)} inputs ({names}); edgevis quantizes image classifiers with "
                           "one image input")
    x = inputs[0]
    t = x.type.tensor_type
    if not x.type.HasField("tensor_type") or t.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(t.elem_type) if x.type.HasField("tensor_type") else "not a tensor"
        raise EdgevisError(f"{path}: input {x.name!r} is {kind}; edgevis quantizes models with a float32 image input")
    if len(t.shape.dim) != 4:
        raise EdgevisError(f"{path}: input {x.name!r} has shape {_dims(x)}; an image input is 4-D "
                           "(batch, 3, H, W) or (batch, H, W, 3)")
    _layout(x, path)
    outs = list(model.graph.output)
    if len(outs) != 1:
        raise EdgevisError(f"{path} has {len(outs)} outputs ({', '.join(o.name for o in outs)}); edgevis quantizes "
                           "image classifiers with one (batch, classes) output, and measures fidelity on it")
    o = outs[0].type.tensor_type
    if o.elem_type != TensorProto.FLOAT or len(o.shape.dim) != 2:
        raise EdgevisError(f"{path}: output {outs[0].name!r} has shape {_dims(outs[0])}; a classifier's output is "
                           "float32 (batch, classes)")
    c = o.shape.dim[1]
    return x, (int(c.dim_value) if c.HasField("dim_value") else None)


MIN_OPSET = 13  # ONNX Runtime's Q/DQ quantizer writes per-axis DequantizeLinear (the axis attribute is opset 13)


def upgrade_opset(model: Any, src: Path) -> tuple[Any, int | None]:
    """``model`` at ONNX opset >= 13, and the opset it had when it was upgraded (None when it was not).

    Older exports (opset 9-12: torch's ``opset_version=11``, model zoos) are converted by ONNX's version
    converter, and the converted graph must compute the file's outputs on ONNX Runtime (random inputs);
    a file that cannot be converted, or computes other outputs once converted, is one line saying so."""
    from onnx import version_converter

    from ..core.compare import outputs_match
    from ..core.errors import first_line
    from ..core.onnxfile import random_feed
    from ..runtimes.ort import run_session, session_from_onnx

    old = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if old is None or old >= MIN_OPSET:
        return model, None
    again = f"export it again with opset {MIN_OPSET} or later"
    try:
        new = version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # ONNX's converter refuses ops it has no adapter for
        raise EdgevisError(f"{src} is ONNX opset {old}; quantizing needs opset {MIN_OPSET} or later and ONNX's "
                           f"version converter cannot upgrade it ({first_line(e, 200)}); {again}") from None
    feed = random_feed(model, count=2, source=src)
    names = [o.name for o in model.graph.output]
    ref = run_session(session_from_onnx(model, source=str(src)), feed, names, source=src)
    got = run_session(session_from_onnx(new, source=f"{src} (upgraded to opset {MIN_OPSET})"), feed, names,
                      source=f"{src} (upgraded to opset {MIN_OPSET})")
    same = outputs_match(names, ref, got)
    if not same["passed"]:
        raise EdgevisError(f"{src} is ONNX opset {old}; upgraded to opset {MIN_OPSET} by ONNX's version converter "
                           f"it computes other outputs ({same['reason']}); {again}")
    return new, old


def _dims(v: Any) -> str:
    return "(" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in v.type.tensor_type.shape.dim) + ")"


def _fixed(v: Any) -> list[int | None]:
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]


def _layout(x: Any, path: Path) -> str:
    d = _fixed(x)
    if d[1] == 3:
        return "NCHW"
    if d[3] == 3:
        return "NHWC"
    raise EdgevisError(f"{path}: input {x.name!r} has shape {_dims(x)}; edgevis takes 3-channel images, "
                       "(batch, 3, H, W) or (batch, H, W, 3)")


def _graph_hw(x: Any) -> tuple[int, int] | None:
    d = _fixed(x)
    h, w = (d[2], d[3]) if d[1] == 3 else (d[1], d[2])
    return (h, w) if h and w else None


def _recorded(src: Path, model: Any) -> tuple[Preprocess, dict[str, Any]] | None:
    """The file's preprocessing record (a malformed one is an error), or None when it has none: no metadata
    key and no readable sidecar holding one."""
    from ..core.onnxfile import META_PREPROCESS, get_metadata
    from ..core.sidecar import load_sidecar
    from ..runtimes.predict import recorded_preprocess

    if get_metadata(model).get(META_PREPROCESS) is None:
        side = load_sidecar(src)
        if not (side.ok and "preprocess" in side.data):
            return None
    return recorded_preprocess(src, model)


def adopt(model: Any, src: Path, target: Path, spec: Preprocess, label: str, classes: int | None, image_input: Any,
          prov: dict[str, Any] | None, *, upgraded_from: int | None = None) -> Path:
    """Copy ``model`` to ``target`` with edgevis's preprocessing and provenance records (metadata and sidecar)."""
    import onnx
    import onnxruntime

    from .. import __version__
    import json

    from ..core.files import atomic_outputs, sha256_file
    from ..core.onnxfile import META_PREPROCESS, META_PROVENANCE, set_metadata
    from ..core.types import sidecar_path

    if target.resolve() == src.resolve():
        raise EdgevisError(f"{src} would be overwritten by its own adopted copy; rename it or use --output-dir")
    src_sha = sha256_file(src)
    dims = _fixed(image_input)
    shape = [dims[0] if dims[0] else "batch", *[d for d in dims[1:]]]
    record = dict(prov or {})
    record.update({
        "model": label, "family": record.get("family", "onnx file"), "precision": "fp32",
        "weights": record.get("weights") or {"path": str(src), "sha256": src_sha},
        "input": {"name": image_input.name, "shape": shape, "dtype": "float32", "layout": spec.layout},
        "output": {"name": model.graph.output[0].name, "num_classes": classes},
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "exporter": record.get("exporter", "user"),
        "adopted_from": {"path": str(src), "sha256": src_sha,
                         **({"opset": upgraded_from} if upgraded_from is not None else {})},
        "versions": {"edgevis": __version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    set_metadata(model, {META_PROVENANCE: record, META_PREPROCESS: spec.to_dict()})
    side = sidecar_path(target)
    with atomic_outputs(target, side) as (tmp, tmp_side):
        onnx.save_model(model, str(tmp))
        record = {"preprocess": spec.to_dict(), **record, "sha256": sha256_file(tmp)}
        tmp_side.write_text(json.dumps(record, indent=2) + "\n")
    return target


def _array_sources(calibration: Iterable[Any], holdout: Iterable[Any] | None, spec: Preprocess):  # type: ignore[no-untyped-def]
    """A factory of (calibration, held-out) sources over the user's arrays (fresh views per quantizer)."""
    from ..quant.calibration import ArraySource

    shape = spec.image_shape()
    calibration = _checked_first(calibration, shape, "calibration arrays")
    if holdout is not None:
        holdout = _checked_first(holdout, shape, "held-out arrays")
    cal = ArraySource("calibration arrays", calibration, shape)
    pair = (cal, ArraySource("held-out arrays", holdout, shape)) if holdout is not None else cal.split(5)
    return lambda: pair  # one pair of sources, so a one-shot iterator read a second time is an error, not empty


def _checked_first(data: Any, shape: tuple[int, ...], label: str) -> Any:
    """Check the first array before any work starts (a wrong shape costs nothing); a one-shot iterator
    is given back with its first item put in front again."""
    import itertools

    from ..quant.calibration import ArraySource

    if callable(data):
        it, give_back = iter(data()), data
    else:
        it = iter(data)
        give_back = None if it is data else data
    try:
        first = next(it)
    except StopIteration:
        raise EdgevisError(f"the {label} are empty") from None
    probe = ArraySource(label, [first], shape)
    next(iter(probe.arrays(None)))  # type: ignore[arg-type]  # raises on a wrong shape or dtype
    return give_back if give_back is not None else itertools.chain([first], it)
