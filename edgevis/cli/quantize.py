"""``edgevis quantize``: any ONNX image classifier -> INT8 and/or integer-only, with the fidelity
table and latency line of ``export --int8``. Parse -> ``edgevis.pipeline.quantize`` -> print."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import print_json, spinner, user_errors
from .export import _printer, _status_log
from .options import PreprocessFlags, RewriteFlags, int8_config, integer_only_config, preprocess_options


@user_errors
def quantize(
    model_file: Path = typer.Argument(..., help="An ONNX image classifier (edgevis's, or any other)."),
    int8: bool = typer.Option(False, "--int8", help="Write a calibrated INT8 (Q/DQ) model NAME.int8.onnx."),
    integer_only: bool = typer.Option(False, "--integer-only",
                                      help="Write an integer-only model NAME.integer_only.onnx, proven float-free and bit-exact."),
    input_size: Optional[tuple[int, int]] = typer.Option(
        None, "--input-size", help="Input height and width (default: the graph's, where it is fixed)."),
    mean: Optional[tuple[float, float, float]] = PreprocessFlags.mean,
    std: Optional[tuple[float, float, float]] = PreprocessFlags.std,
    interpolation: Optional[str] = PreprocessFlags.interpolation,
    crop_pct: Optional[float] = PreprocessFlags.crop_pct,
    channel_order: Optional[str] = PreprocessFlags.channel_order,
    layout: Optional[str] = PreprocessFlags.layout,
    name: Optional[str] = typer.Option(None, "--name", help="Name of the written files (default: the file's stem)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o",
                                              help="Where files are written (default: beside MODEL_FILE)."),
    act_bits: Optional[int] = typer.Option(None, "--act-bits", help="Integer-only: 8 or 16-bit inputs to Conv/MatMul."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Folder of calibration images (default: bundled photos)."),
    holdout: Optional[Path] = typer.Option(
        None, "--holdout", help="Folder of images for the fidelity report (default: every 5th --calib image)."),
    calib_count: int = typer.Option(64, "--calib-count", help="At most this many calibration images."),
    calib_method: str = typer.Option("minmax", "--calib-method", metavar="[minmax|percentile|entropy]", help="minmax, percentile or entropy."),
    target: str = typer.Option("ort-cpu", "--target", metavar="[ort-cpu|tensorrt|openvino]", help="Where the INT8 model runs: ort-cpu, tensorrt (trt) or openvino."),
    min_agreement: Optional[float] = typer.Option(None, "--min-agreement", help="As for export."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="As for export."),
    latency_search: bool = typer.Option(True, "--latency-search/--no-latency-search", help="As for export."),
    absorb_offsets: Optional[bool] = RewriteFlags.absorb_offsets,
    equalize: Optional[bool] = RewriteFlags.equalize,
    bias_correction: Optional[bool] = RewriteFlags.bias_correction,
    reduce_range: Optional[bool] = RewriteFlags.reduce_range,
    optimize_rounding: Optional[bool] = RewriteFlags.optimize_rounding,
    val: Optional[Path] = typer.Option(None, "--val", help="Labelled images (one folder per class): also report "
                                                           "top-1/top-5 accuracy of every file written."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Quantize an ONNX image classifier. Its preprocessing comes from edgevis's record in the file, else
    from --input-size/--mean/--std (and --interpolation, --crop-pct, --channel-order, --layout)."""
    from ..core.errors import EdgevisError
    from ..pipeline.quantizing import quantize as run_quantize

    if act_bits is not None and not integer_only:
        raise EdgevisError("--act-bits applies to --integer-only")
    calibration = dict(calib=calib, holdout=holdout, calib_count=calib_count)
    q8 = int8_config(target=target, method=calib_method, min_agreement=min_agreement, min_cosine=min_cosine,
                     latency_search=latency_search, absorb_offsets=absorb_offsets, equalize=equalize,
                     bias_correction=bias_correction, reduce_range=reduce_range,
                     optimize_rounding=optimize_rounding, **calibration) if int8 else None
    qio = integer_only_config(act_bits=act_bits, min_agreement=min_agreement, **calibration) if integer_only else None
    pre = preprocess_options(input_size=input_size, mean=mean, std=std, interpolation=interpolation, crop_pct=crop_pct,
                             channel_order=channel_order, layout=layout)
    show = not quiet and not as_json
    with spinner(f"quantizing {model_file.name}...", show) as status:
        printer = _printer(show, status)
        run = run_quantize(model_file, int8=q8, integer_only=qio, preprocess=pre, output_dir=output_dir, name=name, val=val,
                           log=_status_log(status), on_step=printer)
    printer.rest(run.warnings)
    if as_json:
        print_json(run.to_dict())
