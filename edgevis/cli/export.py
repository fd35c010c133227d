"""``edgevis export``: a model (catalog, your factory, timm) -> verified ONNX; INT8 with ``--int8``,
integer-only with ``--integer-only``, C with ``--emit-c``. Parse -> ``edgevis.pipeline.export`` -> print."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.table import Table

from .common import out, print_json, spinner, user_errors, warn
from .evaluate import print_accuracy
from .options import PreprocessFlags, RewriteFlags, int8_config, integer_only_config, preprocess_options


@user_errors
def export(
    model: str = typer.Option(..., "--model", "-m", help="Catalog name (see `edgevis models`), your own torch model "
                                                          "as path/to/file.py:factory, or timm:NAME where timm is installed."),
    weights: Optional[str] = typer.Option(
        None, "--weights", "-w",
        help="Checkpoint (.pth/.pt/.safetensors; bare state dict or under 'model'). "
             "'builtin' uses weights a package ships for this model, where one does."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default: 18 dynamo, 17 torchscript)."),
    batch: int = typer.Option(1, "--batch", help="Fixed batch size of the exported graph."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Export with a symbolic batch dimension."),
    input_size: Optional[tuple[int, int]] = typer.Option(None, "--input-size", help="Input height and width."),
    mean: Optional[tuple[float, float, float]] = PreprocessFlags.mean,
    std: Optional[tuple[float, float, float]] = PreprocessFlags.std,
    interpolation: Optional[str] = PreprocessFlags.interpolation,
    crop_pct: Optional[float] = PreprocessFlags.crop_pct,
    channel_order: Optional[str] = PreprocessFlags.channel_order,
    output_dir: Path = typer.Option(Path("edgevis_out"), "--output-dir", "-o", help="Where files are written."),
    exporter: str = typer.Option("auto", "--exporter", metavar="[auto|dynamo|torchscript]", help="auto (dynamo, then torchscript), dynamo or torchscript."),
    simplify: bool = typer.Option(
        True, "--simplify/--no-simplify",
        help="Fold constants and drop dead nodes (onnxsim, onnxslim as fallback) before the parity check."),
    int8: bool = typer.Option(False, "--int8", help="Also write a calibrated INT8 (Q/DQ) model NAME.int8.onnx."),
    integer_only: bool = typer.Option(
        False, "--integer-only",
        help="Also write an integer-only model NAME.integer_only.onnx (I-ViT style: no float between the input "
             "quantization and the output dequantization), proven float-free and bit-exact."),
    act_bits: Optional[int] = typer.Option(
        None, "--act-bits", help="Integer-only: 8 or 16-bit inputs to Conv/MatMul (default: 8, or 16 when 8 "
                                 "misses the agreement target on the calibration images)."),
    emit_c: Optional[Path] = typer.Option(
        None, "--emit-c", help="With --integer-only: also write the integer-only model as a dependency-free C library here."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Folder of calibration images (default: bundled photos)."),
    holdout: Optional[Path] = typer.Option(
        None, "--holdout", help="Folder of images for the fidelity report (default: every 5th --calib image)."),
    calib_count: int = typer.Option(64, "--calib-count", help="At most this many calibration images."),
    calib_method: str = typer.Option("minmax", "--calib-method", metavar="[minmax|percentile|entropy]", help="minmax, percentile or entropy."),
    target: str = typer.Option("ort-cpu", "--target", metavar="[ort-cpu|tensorrt|openvino]", help="Where the INT8 model runs: ort-cpu, tensorrt (trt) or openvino."),
    min_agreement: Optional[float] = typer.Option(
        None, "--min-agreement", help="Keep ops in float until INT8 agrees with FP32 on this share of top-1 "
                                      "predictions (calibration images)."),
    min_cosine: Optional[float] = typer.Option(
        None, "--min-cosine", help="Keep ops in float until the mean logit cosine to FP32 reaches this "
                                   "(default 0.99 when neither target is given)."),
    latency_search: bool = typer.Option(
        True, "--latency-search/--no-latency-search",
        help="Time op groups on this machine and keep in float what int8 makes slower (ort-cpu)."),
    absorb_offsets: Optional[bool] = RewriteFlags.absorb_offsets,
    equalize: Optional[bool] = RewriteFlags.equalize,
    bias_correction: Optional[bool] = RewriteFlags.bias_correction,
    reduce_range: Optional[bool] = RewriteFlags.reduce_range,
    optimize_rounding: Optional[bool] = RewriteFlags.optimize_rounding,
    num_classes: Optional[int] = typer.Option(
        None, "--num-classes", help="Classifier size (default: the checkpoint's, else the catalog's)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Labelled images (one folder per class): also report "
                                                           "top-1/top-5 accuracy of every file written."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Export a model to ONNX and prove the file against torch on ONNX Runtime (and quantize it, if asked)."""
    from ..core.errors import EdgevisError
    from ..exporters.onnx import ExportConfig
    from ..pipeline.exporting import export as run_export

    if batch != 1 and dynamic_batch:
        raise EdgevisError("--batch and --dynamic-batch exclude each other")
    if act_bits is not None and not integer_only:
        raise EdgevisError("--act-bits applies to --integer-only")
    config = ExportConfig(opset=opset, batch=batch, dynamic_batch=dynamic_batch,
                          input_size=tuple(input_size) if input_size else None, exporter=exporter,  # type: ignore[arg-type]
                          num_classes=num_classes, simplify=simplify)
    calibration = dict(calib=calib, holdout=holdout, calib_count=calib_count)
    q8 = int8_config(target=target, method=calib_method, min_agreement=min_agreement, min_cosine=min_cosine,
                     latency_search=latency_search, absorb_offsets=absorb_offsets, equalize=equalize,
                     bias_correction=bias_correction, reduce_range=reduce_range,
                     optimize_rounding=optimize_rounding, **calibration) if int8 else None
    qio = integer_only_config(act_bits=act_bits, min_agreement=min_agreement, **calibration) if integer_only else None
    pre = preprocess_options(input_size=input_size, mean=mean, std=std, interpolation=interpolation,
                             crop_pct=crop_pct, channel_order=channel_order)
    show = not quiet and not as_json
    with spinner(f"exporting {model}...", show) as status:
        printer = _printer(show, status)
        run = run_export(model, weights=weights, output_dir=output_dir, config=config, int8=q8, integer_only=qio,
                         emit_c=emit_c, preprocess=pre, val=val, log=_status_log(status), on_step=printer)
    printer.rest(run.warnings)
    if as_json:
        print_json(run.to_dict())


def _status_log(status: Any) -> Callable[[str], None]:
    def log(msg: str) -> None:
        if status is not None:
            status.update(msg + "...")

    return log


class _printer:
    """Print each step's result as soon as it is done (export, int8, integer_only, c, accuracy), and
    each warning as it arises (also with --quiet/--json: they go to stderr); ``rest`` prints the
    warnings of ``run`` that did not come through ``on_step``."""

    def __init__(self, show: bool, status: Any = None) -> None:
        self.show, self.status, self.said = show, status, set()  # type: ignore[var-annotated]

    def __call__(self, step: str, result: Any) -> None:
        if step == "warning":
            self._pause(lambda: warn(result))
            self.said.add(result)
            return
        if self.show:
            self._pause(lambda: {"export": _print_export, "int8": _print_int8, "integer_only": _print_integer_only,
                                 "c": _print_c, "adopt": _print_adopted,
                                 "accuracy": print_accuracy}.get(step, lambda r: None)(result))

    def _pause(self, show: Callable[[], None]) -> None:
        if self.status is not None:
            self.status.stop()
        show()
        if self.status is not None:
            self.status.start()

    def rest(self, warnings: list[str]) -> None:
        for w in warnings:
            if w not in self.said:
                warn(w)


def _print_adopted(path: Any) -> None:
    out.print(f"[bold green]wrote[/] {path}  (your file, with its preprocessing recorded)")


def _print_c(lib: Any) -> None:
    out.print(f"[bold green]wrote[/] C library in {getattr(lib, 'out_dir', lib)}")


def _print_export(result) -> None:  # type: ignore[no-untyped-def]
    p = result.parity
    prov = result.artifact.provenance
    out.print(f"[bold green]wrote[/] {result.artifact.path}  ({result.artifact.path.stat().st_size / 2**20:.1f} MiB, "
              f"{sum(result.nodes.values())} nodes, opset {prov['opset']}, {result.exporter} exporter)")
    if result.simplify:
        s = result.simplify
        out.print(f"  simplified by {s['tool']}: {s['nodes_before']} -> {s['nodes_after']} nodes")
    out.print(f"  parity torch vs ONNX Runtime on {p.samples} inputs: max|diff| {p.max_abs_diff:.3g}, "
              f"worst cosine {p.cosine_min:.8f}, top-1 agreement {p.top1_agreement:.0%}")
    out.print(f"  provenance: {result.artifact.sidecar}")


def _print_fidelity(what: str, f: dict[str, Any]) -> None:
    table = Table(title=f"{what} vs FP32 on {f['images']} held-out images ({f['source']})")
    for c in ("top-1 agreement", "top-5 overlap", "cosine mean", "cosine worst", "SQNR (dB)"):
        table.add_column(c, justify="right")
    ci = f.get("top1_agreement_ci95")  # absent from records written before it was measured
    top1 = f"{f['top1_agreement']:.1%}" + (f" (95% CI {ci[0]:.1%}-{ci[1]:.1%})" if ci else "")
    table.add_row(top1, f"{f['top5_overlap']:.1%}", f"{f['cosine_mean']:.4f}",
                  f"{f['cosine_min']:.4f}", f"{f['sqnr_db']:.1f}")
    out.print(table)


def _speedup_ci(lat: dict) -> str:
    """" (95% CI a-bx over n paired rounds)" where the record has it (records written before it: "")."""
    ci = lat.get("speedup_ci95")
    return f" (95% CI {ci[0]:.2f}-{ci[1]:.2f}x over {lat['paired_rounds']} paired rounds)" if ci else ""


def _print_int8(q) -> None:  # type: ignore[no-untyped-def]
    f, st = q.fidelity, q.settings
    out.print(f"[bold green]wrote[/] {q.path}  ({q.path.stat().st_size / 2**20:.1f} MiB, target {st['target']}, "
              f"{st['activations']} activations, {st['calibration_method']} calibration on "
              f"{st['calibration_images']} images)")
    lat = st.get("latency")
    if lat:
        ran = lat.get("precision") or {}  # OpenVINO: the precision each compiled model ran in
        fp32, int8 = (f" ({ran[k]})" if k in ran else "" for k in ("fp32", "int8"))
        out.print(f"  latency (p50) on {lat['device']}: FP32 {lat['fp32']['p50_ms']:.2f} ms{fp32}, INT8 "
                  f"{lat['int8']['p50_ms']:.2f} ms{int8} -> [bold]{lat['speedup']:.2f}x[/]{_speedup_ci(lat)}")
    elif "latency" in st:  # a target that does not run here (TensorRT): the record's latency is null
        out.print(f"  latency: not measured (target {st['target']} does not run on this machine; build and time "
                  "it where it runs: for TensorRT, edgevis build --runtime trt, then edgevis profile)")
    int8_ops = ", ".join(f"{n} {g}" for g, n in st["int8_ops"].items()) or "none"
    out.print(f"  int8 ops: {int8_ops}")
    for k in st["kept_float"]:
        out.print(f"  kept in float: {k['count']} op(s) - {k['reason']}")
    _print_fidelity("INT8", f)
    if f.get("most_sensitive"):
        names = ", ".join(f"{s['node']} ({s['op']})" for s in f["most_sensitive"][:3])
        out.print(f"  most sensitive ops: {names}")


def _print_integer_only(r) -> None:  # type: ignore[no-untyped-def]
    f, st = r.fidelity, r.settings
    chk, ex = st["check"], st["bit_exact"]
    out.print(f"[bold green]wrote[/] {r.path}  ({r.path.stat().st_size / 2**20:.1f} MiB, {st['onnx_nodes']} nodes, "
              f"{st['act_bits']}-bit activations into linear ops, calibrated on {st['calibration_images']} images)")
    out.print(f"  integer-only: {'[bold green]proven[/]' if chk['integer_only'] else '[bold red]NO[/]'} - "
              f"{chk['integer_tensors']} integer tensors, no float between QuantizeLinear and DequantizeLinear")
    out.print(f"  ONNX Runtime vs integer reference on {ex['inputs']} inputs: "
              f"{'bit-exact' if ex['bit_exact'] else 'max |diff| ' + str(ex['max_abs_diff'])}")
    kern = ", ".join(f"{n} {k}" for k, n in st["kernels"].items())
    out.print(f"  kernels: {kern}")
    lat = st["latency"]
    out.print(f"  latency (p50) on {lat['device']}: FP32 {lat['fp32']['p50_ms']:.2f} ms, integer-only "
              f"{lat['integer_only']['p50_ms']:.2f} ms ({lat['speedup']:.2f}x{_speedup_ci(lat)})")
    _print_fidelity("integer-only", f)
