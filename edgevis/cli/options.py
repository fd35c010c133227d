"""Options that several commands share (export, quantize): the preprocessing flags and the
translation of calibration flags into the quantizers' typed configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


class PreprocessFlags:
    """For models edgevis did not build: how an image becomes their input."""

    mean = typer.Option(None, "--mean", help="Per-channel mean, in the model's channel order (e.g. 0.485 0.456 0.406).")
    std = typer.Option(None, "--std", help="Per-channel std, in the model's channel order (e.g. 0.229 0.224 0.225).")
    interpolation = typer.Option(None, "--interpolation", metavar="[bicubic|bilinear|nearest|lanczos|box|hamming]",
                                 help="Resize filter: bicubic, bilinear, nearest, lanczos, box or hamming (default bicubic).")
    crop_pct = typer.Option(None, "--crop-pct", help="Center crop as a share of the resized image (default 0.875).")
    channel_order = typer.Option(None, "--channel-order", metavar="[RGB|BGR]", help="RGB or BGR (default RGB).")
    layout = typer.Option(None, "--layout", metavar="[NCHW|NHWC]", help="NCHW or NHWC (default: read from the graph's input).")


def preprocess_options(*, input_size: Optional[tuple[int, int]] = None, mean: Any = None, std: Any = None,
                       interpolation: Optional[str] = None, crop_pct: Optional[float] = None,
                       channel_order: Optional[str] = None, layout: Optional[str] = None) -> Any:
    from ..pipeline.sources import PreprocessOptions

    return PreprocessOptions(input_size=tuple(input_size) if input_size else None,  # type: ignore[arg-type]
                             mean=tuple(mean) if mean else None, std=tuple(std) if std else None,  # type: ignore[arg-type]
                             interpolation=interpolation, crop_pct=crop_pct,
                             channel_order=channel_order.upper() if channel_order else None,
                             layout=layout.upper() if layout else None)


class RewriteFlags:
    """INT8: FP32 rewrites before ONNX Runtime's quantizer and the bias fix after it (quant/equalize.py).
    Unset, each takes Int8Config's default (on where it measurably helps, benchmarks/int8_accuracy.py)."""

    absorb_offsets = typer.Option(None, "--absorb-offsets/--no-absorb-offsets",
                                  help="Centre conv outputs per channel, the offset moved into the next convs' biases.")
    equalize = typer.Option(None, "--equalize/--no-equalize",
                            help="Cross-layer equalization of Conv->[Relu]->Conv weight ranges.")
    bias_correction = typer.Option(None, "--bias-correction/--no-bias-correction",
                                   help="Int8 Conv/Gemm biases absorb the mean shift of their rounded weights.")
    reduce_range = typer.Option(None, "--reduce-range/--no-reduce-range",
                                help="7-bit weights (default: where ONNX Runtime's u8 x s8 kernels saturate, x86 without VNNI).")
    optimize_rounding = typer.Option(None, "--optimize-rounding/--no-optimize-rounding",
                                     help="Round int8 weights against their FP32 inputs on calibration images (GPTQ), "
                                          "not to nearest: slower to quantize, the same graph and speed.")


def int8_config(*, calib: Optional[Path], holdout: Optional[Path], calib_count: int, target: str, method: str,
                min_agreement: Optional[float], min_cosine: Optional[float], latency_search: bool,
                absorb_offsets: Optional[bool] = None, equalize: Optional[bool] = None,
                bias_correction: Optional[bool] = None, reduce_range: Optional[bool] = None,
                optimize_rounding: Optional[bool] = None) -> Any:
    from ..quant.config import Int8Config  # not quant.int8: onnx would be imported before the export's child starts

    rewrites = {k: v for k, v in (("absorb_offsets", absorb_offsets), ("equalize", equalize),
                                  ("bias_correction", bias_correction), ("reduce_range", reduce_range),
                                  ("optimize_rounding", optimize_rounding)) if v is not None}
    return Int8Config(target=target, calib_dir=calib, holdout_dir=holdout, calib_count=calib_count, method=method,
                      min_agreement=min_agreement, min_cosine=min_cosine, latency_search=latency_search, **rewrites)


def integer_only_config(*, calib: Optional[Path], holdout: Optional[Path], calib_count: int, act_bits: Optional[int],
                        min_agreement: Optional[float]) -> Any:
    from ..quant.integer_only import DEFAULT_MIN_AGREEMENT, IntegerOnlyConfig

    return IntegerOnlyConfig(calib_dir=calib, holdout_dir=holdout, calib_count=calib_count, act_bits=act_bits,
                             min_agreement=DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement)
