"""torch -> ONNX, proven right.

``export_onnx`` builds the catalog model in deploy form, traces it, embeds the
provenance in the file, and runs the same inputs (real photos) through torch
and ONNX Runtime. The file only lands at its final path once the check passes.

It is two halves: :func:`trace_model` (torch: build, trace, torch's outputs on the
check inputs) and the rest (ONNX: names, simplification, metadata, the ONNX Runtime
side of the parity check), which needs no torch. With ``isolate=True`` the torch half
runs in a child process (:mod:`edgevis.exporters.child`), so a process that goes on
to quantize never holds torch and the exporter's leftovers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from ..core.compare import Closeness, compare_outputs
from ..core.errors import EdgevisError, OutputError, ParityError, first_line
from ..core.files import atomic_output, ensure_writable_dir, sha256_file, write_json_atomic
from ..core.types import OnnxArtifact, Preprocess, TensorSpec

# core.onnxfile (onnx: ~0.9 s to import, most of it ml_dtypes) is imported where it is used, so that a process
# exporting through a child starts the child first and imports onnx while the child works

if TYPE_CHECKING:  # torch is imported where it runs: the ONNX half of an export (and its parent process) needs none
    import torch

Exporter = Literal["dynamo", "torchscript"]
# (traced model, parity inputs, notes) -> (model to write, summary of what changed or None)
Simplifier = Callable[[Any, np.ndarray, list], tuple[Any, "dict[str, Any] | None"]]
DEFAULT_OPSET = {"dynamo": 18, "torchscript": 17}
INPUT_NAME, OUTPUT_NAME = "input", "logits"


MAX_EXPORT_SIDE = 2048  # input sides an export accepts (the largest published backbones take 1024)
MAX_CLASSES = 100_000  # classifier rows (ImageNet-22k has 21,843)


@dataclass(frozen=True)
class ExportConfig:
    """Options shared by the API and ``edgevis export``."""

    opset: int | None = None
    batch: int = 1
    dynamic_batch: bool = False
    input_size: tuple[int, int] | None = None
    # None: the registry's default, or the classifier rows of the checkpoint when weights are given
    num_classes: int | None = None
    exporter: Exporter | Literal["auto"] = "auto"
    # parity tolerance: max|torch - ort| <= atol + rtol * max|torch|, and cosine >= min_cosine
    atol: float = 1e-4
    rtol: float = 1e-4
    min_cosine: float = 0.99999
    # fold constants and drop dead/duplicate nodes (onnxsim, onnxslim as fallback) before the parity check
    simplify: bool = True

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise EdgevisError(f"--batch must be >= 1 (got {self.batch})")
        if self.opset is not None and not 13 <= self.opset <= 23:
            raise EdgevisError(f"--opset must be between 13 and 23 (got {self.opset})")
        # upper bounds too: a 100000-pixel side hangs in quadratic position tables, 10^8 classes run out of memory
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 32
                                            or max(self.input_size) > MAX_EXPORT_SIDE):
            raise EdgevisError(f"--input-size must be two sides from 32 to {MAX_EXPORT_SIDE} (got {self.input_size})")
        if self.num_classes is not None and not 1 <= self.num_classes <= MAX_CLASSES:
            raise EdgevisError(f"--num-classes must be from 1 to {MAX_CLASSES} (got {self.num_classes})")
        if self.exporter not in ("auto", "dynamo", "torchscript"):
            raise EdgevisError(f"unknown exporter {self.exporter!r}; use auto, dynamo or torchscript")


@dataclass
class ExportResult:
    artifact: OnnxArtifact
    parity: Closeness
    exporter: str
    nodes: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    simplify: dict[str, Any] | None = None  # what the simplifier did (None: not run)

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact.to_dict(),
            "parity": self.parity.to_dict(),
            "exporter": self.exporter,
            "nodes": self.nodes,
            "simplify": self.simplify,
            "warnings": self.warnings,
        }


def check_inputs(preprocess: Preprocess, batch: int, count: int = 4) -> np.ndarray:
    """Parity inputs: real photos (bundled with scikit-image) preprocessed for the model,
    so the check exercises realistic activation ranges; random data fills up if fewer."""
    from ..data.preprocess import preprocess as prep
    from ..data.samples import PHOTOS, builtin_photos

    n = max(count, batch)
    n = -(-n // batch) * batch  # a multiple of the batch for fixed-batch models
    photos = [prep(img, preprocess) for _, img in builtin_photos(PHOTOS[:n])]
    rng = np.random.default_rng(0)
    h, w = preprocess.input_size
    while len(photos) < n:
        photos.append(rng.standard_normal((3, h, w), dtype=np.float32))
    return np.stack(photos)


def _versions(torch_version: str) -> dict[str, str]:
    import onnx
    import onnxruntime

    from .. import __version__

    return {"edgevis": __version__, "torch": torch_version, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


@contextlib.contextmanager
def _restore_level(logger: logging.Logger, level: int):
    try:
        yield
    finally:
        logger.setLevel(level)


def _trace(model: "torch.nn.Module", example: "torch.Tensor", path: Path, exporter: Exporter, opset: int,
           dynamic_batch: bool, external_data: bool = False, simplified: bool = False) -> None:
    import torch

    # the exporters print progress and warn about torchvision ops we never use
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _restore_level(onnx_logger, level):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dyn = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}} if dynamic_batch else None
            # one self-contained file: later tools trip over a separate .data file (a child's intermediate file keeps
            # its weights beside it: serialising them into the file took the child's peak from 486 to 621 MB on lsnet_t)
            # simplified: the graph goes through onnxsim next, so torch's optimizer is cut to what onnxsim does
            # not do itself (_light_optimizer); the exporter's own is the rest of the export's time
            light = _light_optimizer() if simplified else None

            def export(optimize: bool) -> Any:
                return torch.onnx.export(model, (example,), None, dynamo=True, input_names=[INPUT_NAME],
                                         output_names=[OUTPUT_NAME], opset_version=opset, dynamic_shapes=dyn,
                                         optimize=optimize)

            program = export(light is None)
            if light is not None:
                try:
                    light(program.model)
                except Exception:  # private onnxscript passes that another onnxscript changed: the
                    program = export(True)  # passes edit in place, so trace again with torch's whole optimizer
            program.save(str(path), external_data=external_data)
        else:
            axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=opset, dynamic_axes=axes,
                              do_constant_folding=True)


def _light_optimizer() -> Callable[[Any], None] | None:
    """torch's ONNX optimizer (``ONNXProgram.optimize``: onnxscript's ``optimize_ir``) with only the rewrite
    rules that change a catalog graph in a way onnxsim does not, for a graph that onnxsim simplifies next.

    ``optimize_ir`` folds constants (which also turns torchlib's SplitToSequence/SequenceAt into Split) and
    then tries ~50 rewrite rules on every node, twice: 4-5 s of lsnet_t's 9-10 s export, where only the
    zero-bias removal fired (issue 18). Exporting every catalog family both ways and simplifying each
    (onnxsim) gave the same graph node for node (names, attributes, weights) with the rules kept here:
    zero Conv/Gemm biases dropped (every family), Pad folded into Conv (efficientnet_lite0), successive
    Reshapes merged (swin). None where this onnxscript lacks the pieces (torch's own optimizer runs)."""
    try:
        import onnx_ir as ir
        import onnx_ir.passes.common as common
        from onnxscript.optimizer import _constant_folding as folding
        from onnxscript.rewriter import RewritePass, onnx_fusions
        from onnxscript.rewriter.rules.common import (fuse_pad_into_conv_rule, normalize_pad_format_conv_rule,
                                                      remove_optional_bias_from_conv_rule,
                                                      remove_optional_bias_from_conv_transpose_rule,
                                                      remove_optional_bias_from_gemm_rule, reshape_reshape_rule)
    except ImportError:
        return None
    rules = [reshape_reshape_rule, normalize_pad_format_conv_rule, fuse_pad_into_conv_rule,
             remove_optional_bias_from_conv_rule, remove_optional_bias_from_conv_transpose_rule,
             remove_optional_bias_from_gemm_rule]  # in the order of onnxscript's default rules

    def optimize(model: Any) -> None:
        # onnxscript.optimizer.optimize_ir's passes, with RewritePass given the rules above
        passes = ir.passes.Sequential(
            common.InlinePass(),
            ir.passes.PassManager([folding.FoldConstantsPass(shape_inference=True,
                                                             input_size_limit=folding.DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT,
                                                             output_size_limit=folding.DEFAULT_CONSTANT_FOLD_OUTPUT_SIZE_LIMIT,
                                                             should_fold=lambda node: None),
                                   RewritePass(rules), common.RemoveUnusedNodesPass(),
                                   common.RemoveUnusedFunctionsPass(), common.RemoveUnusedOpsetsPass()],
                                  steps=2, early_stop=True),
            common.RemoveUnusedNodesPass(),
            common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
            common.LiftSubgraphInitializersToMainGraphPass(),
            common.DeduplicateInitializersPass(),
            common.CommonSubexpressionEliminationPass(),
            common.OutputFixPass(),
            common.NameFixPass(),
        )
        passes(model)
        onnx_fusions.fuse(model)  # as torch's optimize does after optimize_ir (opset 23's fusions)

    return optimize


@dataclass
class Traced:
    """What the torch half of an export hands to the ONNX half (picklable: it crosses from a child process)."""

    exporter: str
    opset: int
    seconds: float
    notes: list[str]
    family: str
    num_classes: int
    preprocess: Preprocess
    weights: Any  # what identifies the weights (None: random init)
    inputs: np.ndarray  # the check inputs (real photos)
    reference: np.ndarray  # torch eager's outputs on them
    parity_batch: int
    torch_version: str


def export_onnx(
    model_name: str,
    output_dir: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    config: ExportConfig = ExportConfig(),
    model: "torch.nn.Module | None" = None,
    deploy: bool = True,
    simplifier: Simplifier | None = None,
    isolate: bool = False,
    meanwhile: Callable[[], None] | None = None,
) -> ExportResult:
    """Export catalog model ``model_name`` to ``output_dir/NAME.fp32.onnx`` and prove it.

    ``model`` may be passed to export an already-built module; it must carry
    ``edgevis_info`` (a :class:`~edgevis.catalog.registry.ModelInfo`) and ``edgevis_weights``,
    as :func:`edgevis.catalog.create_model` and the pipeline's model sources set them.
    ``deploy`` puts it in deploy form first (catalog modules; a user's own module is exported as it is).
    ``isolate`` (a catalog model, no ``model``) builds and traces it in a child process, which hands
    back the traced file and torch's outputs; the rest runs here without importing torch (``meanwhile``, if
    given, runs here while the child works).

    This is the exporter stage alone. ``simplifier`` (the graph stage's, passed by
    :func:`edgevis.pipeline.export`) rewrites the traced graph before the parity check
    when ``config.simplify`` is set; without one the traced graph is written as it is.
    """
    if model is not None and getattr(model, "edgevis_info", None) is None:
        # a plain module records no input size or preprocessing: what a user's own model needs is edgevis.export
        raise EdgevisError(f"export_onnx takes a module built by edgevis (catalog.create_model), which records its "
                           f"input size and preprocessing; export your own {type(model).__name__} with "
                           "edgevis.export(module, preprocess=edgevis.PreprocessOptions(input_size=(H, W), mean=..., "
                           "std=...))")
    if isolate and model is not None:
        raise ValueError("isolate exports a catalog model by name: a module in hand is traced in this process")
    out_dir = ensure_writable_dir(output_dir)
    target = out_dir / f"{model_name}.fp32.onnx"
    # a catalog model's trace that onnxsim simplifies next gets the cut-down ONNX optimizer (_light_optimizer,
    # checked on every catalog family at a fixed batch); a module of the caller's own, or a dynamic batch, gets
    # torch's whole one (with a dynamic batch its shape rules matter: lsnet_t kept 3 more nodes, Shape and Concats)
    simplified = config.simplify and simplifier is not None and model is None and not config.dynamic_batch
    with atomic_output(target) as tmp:
        if isolate:
            import tempfile

            from .child import trace_in_child

            # the child's file (weights in a .data file beside it) lives beside the output, not in /tmp (often RAM)
            with tempfile.TemporaryDirectory(prefix=f".{model_name}.trace-", dir=out_dir) as d:
                traced_path = Path(d) / "traced.onnx"
                traced = trace_in_child(model_name, traced_path, weights=weights, config=config, meanwhile=meanwhile,
                                        simplified=simplified)
                loaded = [_load_traced(model_name, traced_path, traced)]
        else:
            traced = trace_model(model_name, tmp, weights=weights, config=config, model=model, deploy=deploy,
                                 simplified=simplified)
            loaded = [_load_traced(model_name, tmp, traced)]
        # handed over, not kept here: the traced model is freed once simplification replaced it
        provenance, parity, nodes, simplified = _finish(model_name, loaded.pop(), tmp, traced, config, simplifier)

    preprocess = traced.preprocess
    spec_in = TensorSpec(INPUT_NAME, tuple(provenance["input"]["shape"]))
    spec_out = TensorSpec(OUTPUT_NAME, (provenance["input"]["shape"][0], traced.num_classes))
    provenance["sha256"] = sha256_file(target)
    provenance["parity"] = parity.to_dict()
    provenance["export_seconds"] = round(traced.seconds, 2)
    artifact = OnnxArtifact(target, (spec_in,), (spec_out,), provenance)
    write_json_atomic(artifact.sidecar, {"preprocess": preprocess.to_dict(), **provenance})
    return ExportResult(artifact, parity, traced.exporter, nodes, traced.notes, simplified)


def trace_model(model_name: str, path: Path, *, weights: str | os.PathLike[str] | None = None,
                config: ExportConfig = ExportConfig(), model: "torch.nn.Module | None" = None, deploy: bool = True,
                external_data: bool = False, simplified: bool = False) -> Traced:
    """The torch half of :func:`export_onnx`: build (or take) the model, trace it into ``path`` (with its
    weights in ``path.data`` when ``external_data``), and run the check inputs through torch. ``simplified``:
    the caller simplifies the traced graph (onnxsim), so the exporter optimizes only what that does not."""
    import torch

    from ..catalog.factory import create_model, reparameterize

    if model is None:
        model = create_model(model_name, weights=weights, num_classes=config.num_classes,
                             input_size=config.input_size, deploy=True)
    elif deploy:
        model = reparameterize(model)
    else:
        model.eval()
    info = model.edgevis_info  # type: ignore[attr-defined]
    # a user's module may take BGR channels (the pipeline's model sources set this); catalog models take RGB
    preprocess = getattr(model, "edgevis_preprocess", None) or info.preprocess
    # one set of real-photo inputs serves the trace and the parity check; the parity check
    # runs a dynamic-batch model at batch 3, and torch.export specializes a batch of 1,
    # so a dynamic-batch trace uses 2
    parity_batch = 3 if config.dynamic_batch else config.batch
    trace_batch = max(config.batch, 2) if config.dynamic_batch else config.batch
    inputs = check_inputs(preprocess, parity_batch, count=max(4, trace_batch))
    example = torch.from_numpy(inputs[:trace_batch])
    # torch's outputs on the check inputs are computed on a thread while this one imports the exporter (torch.onnx's
    # exporter, onnxscript, onnx: ~1.3 s that the first export imports anyway), so the forward (~0.7 s on lsnet_t)
    # is off the export's critical path (issue 18); a failing forward is still raised after the export, as before
    from concurrent.futures import ThreadPoolExecutor

    # the pool is left only once the forward is done: the trace never runs beside it
    with ThreadPoolExecutor(1, thread_name_prefix="edgevis-reference") as pool:
        reference = pool.submit(_reference_outputs, model, inputs, parity_batch)
        _import_exporter()
    notes: list[str] = []
    order: list[Exporter] = ["dynamo", "torchscript"] if config.exporter == "auto" else [config.exporter]  # type: ignore[list-item]
    used: Exporter | None = None
    errors = []
    for exp in order:
        opset = config.opset or DEFAULT_OPSET[exp]
        t0 = time.perf_counter()
        try:
            _trace(model, example, path, exp, opset, config.dynamic_batch, external_data=external_data,
                   simplified=simplified)
            used = exp
            break
        except Exception as e:  # exporter failures are many types; try the next exporter
            first = first_line(e, 300)
            errors.append(f"{exp}: {first}")
            notes.append(f"{exp} exporter failed ({first}); falling back")
    if used is None:
        raise EdgevisError(f"cannot export {model_name} to ONNX: " + " | ".join(errors))
    seconds = time.perf_counter() - t0
    ref = reference.result()
    return Traced(used, opset, seconds, notes, info.family, info.num_classes, preprocess,
                  getattr(model, "edgevis_weights", None), inputs, ref, parity_batch, str(torch.__version__))


def _reference_outputs(model: "torch.nn.Module", inputs: np.ndarray, batch: int) -> np.ndarray:
    """torch eager's outputs of ``model`` on ``inputs``, in batches of ``batch``."""
    import torch

    with torch.no_grad():  # no_grad is per thread: set in the one that runs the model
        return torch.cat([model(torch.from_numpy(inputs[i:i + batch])) for i in range(0, len(inputs), batch)]).numpy()


def _import_exporter() -> None:
    """Import what the first dynamo export imports: torch.onnx's exporter (private modules; skipped where a torch
    release moved them: the export imports what it needs either way) and onnxscript's optimizer."""
    try:
        import torch.onnx._internal.exporter._compat  # noqa: F401
    except ImportError:
        pass
    _light_optimizer()


def _load_traced(model_name: str, path: Path, traced: Traced) -> Any:
    """The traced file as a ModelProto (its external weights, if any, loaded into it)."""
    from ..core.onnxfile import PROTOBUF_LIMIT, load_onnx

    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))
    if size >= PROTOBUF_LIMIT:
        raise OutputError(f"{model_name} is {size / 1024**3:.1f} GiB, over the 2 GiB single-file ONNX limit")
    onnx_model = load_onnx(path)
    for t in onnx_model.graph.initializer:  # loading external data marks each weight "stored here": it is the default
        if t.HasField("data_location") and t.data_location == 0:
            t.ClearField("data_location")
    if traced.exporter == "dynamo":
        from .names import readable_node_names

        readable_node_names(onnx_model)  # module paths in node names, which simplification keeps
    return onnx_model


def _finish(model_name: str, onnx_model: Any, tmp: Path, traced: Traced, config: ExportConfig,
            simplifier: Simplifier | None) -> tuple[dict[str, Any], Closeness, dict[str, int], dict[str, Any] | None]:
    """The ONNX half: simplify, record the provenance, write ``tmp``, prove it on ONNX Runtime against torch."""
    import onnx

    from ..core.onnxfile import META_PREPROCESS, META_PROVENANCE, op_histogram, set_metadata

    batch = traced.parity_batch
    simplified = None
    if config.simplify and simplifier is not None:
        onnx_model, simplified = simplifier(onnx_model, traced.inputs[:batch], traced.notes)
    h, w = traced.preprocess.input_size
    provenance = {
        "model": model_name,
        "family": traced.family,
        "precision": "fp32",
        "weights": traced.weights or "random-init",
        "input": {"name": INPUT_NAME, "shape": ["batch" if config.dynamic_batch else config.batch, 3, h, w],
                  "dtype": "float32", "layout": "NCHW"},
        "output": {"name": OUTPUT_NAME, "num_classes": traced.num_classes},
        "opset": traced.opset,
        "exporter": traced.exporter,
        "simplify": simplified,
        "deploy_form": True,
        "versions": _versions(traced.torch_version),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    set_metadata(onnx_model, {META_PROVENANCE: provenance, META_PREPROCESS: traced.preprocess.to_dict()})
    onnx_model.producer_name = "edgevis"
    onnx.save_model(onnx_model, str(tmp))
    nodes = op_histogram(onnx_model)
    del onnx_model  # the parity check's session reads the file
    parity = _check_parity(traced.reference, tmp, traced.inputs, batch, config)
    return provenance, parity, nodes, simplified


def _check_parity(ref: np.ndarray, path: Path, x: np.ndarray, batch: int, config: ExportConfig) -> Closeness:
    """ONNX Runtime's outputs of the written file against torch's (``ref``) on the same inputs."""
    from ..runtimes.ort import OrtRunner

    with OrtRunner(path) as runner:
        out = np.concatenate([runner.infer(x[i:i + batch]) for i in range(0, len(x), batch)])
    c = compare_outputs(ref, out)
    limit = config.atol + config.rtol * c.ref_max_abs
    if not (c.max_abs_diff <= limit and c.cosine_min >= config.min_cosine):
        raise ParityError(
            f"ONNX Runtime output differs from torch: max|diff| {c.max_abs_diff:.3g} (limit {limit:.3g}), "
            f"worst cosine {c.cosine_min:.6f} (limit {config.min_cosine}); the ONNX file was not written"
        )
    return c
