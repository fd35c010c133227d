"""The INT8 quantizer's options (:class:`Int8Config`), apart from the quantizer itself.

Only what validating the options needs is imported here (no onnx, no ONNX Runtime): ``edgevis export --int8``
builds its config before the export starts, and the export's child process is started only once that is done,
so importing :mod:`edgevis.quant.int8` there (onnx alone ~0.7-1 s, most of it ml_dtypes) put that time in front
of the child (issue 18). :mod:`edgevis.quant.int8` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import EdgevisError
from .calibration import CALIB_METHODS
from .targets import get_target

if TYPE_CHECKING:
    from .placement import AccuracyTarget

# Accuracy target used when the user gives none, checked on the calibration images. Mean
# logit cosine rather than top-1 agreement: on a few dozen photos that are not ImageNet
# classes one near-tie flips agreement by 3 %, and chasing it kept so many ops in float
# that EfficientNet-Lite0 lost its speedup (2.4x -> 1.1x) for +0.005 cosine.
DEFAULT_MIN_COSINE = 0.99


@dataclass(frozen=True)
class Int8Config:
    target: str = "ort-cpu"  # ort-cpu | tensorrt (see targets.py)
    calib_dir: Path | None = None
    holdout_dir: Path | None = None  # images for the fidelity report (default: held out of the calibration set)
    calib_count: int = 64
    method: str = "minmax"  # minmax | percentile | entropy (ORT calibrators)
    min_agreement: float | None = None  # neither given: DEFAULT_MIN_COSINE
    min_cosine: float | None = None
    # attention's activation x activation MatMuls kept in float (False: quantized; the openvino target's layout
    # then gives them operands OpenVINO runs in int8, quant/openvino.openvino_layout)
    keep_attention_float: bool = True
    latency_search: bool = True
    # ort-cpu and openvino: fuse GELU and Add+LayerNorm into ORT's contrib ops first (graph/fusions.py; for
    # openvino only where OpenVINO reads them, quant/openvino.py); the FP32 the speed-up is measured against
    # gets the same fusions
    fuse: bool = True
    threads: int | None = None  # ORT intra-op threads for timing (None: ORT's default, as deployed)
    equalize: bool = False  # cross-layer equalization of Conv->[Relu]->Conv pairs before quantizing (equalize.py)
    # int8 Conv/Gemm biases absorb their weight rounding's mean shift (equalize.py); on: EfficientNet-Lite0
    # top-1 agreement 62.5 % -> 75.0 %, cosine 0.943 -> 0.980, digits unchanged (benchmarks/int8_accuracy.py)
    bias_correction: bool = True
    absorb_offsets: bool = False  # centre conv outputs per channel, offsets moved into the next convs' biases
    # int8 weights rounded against their FP32 inputs on calibration images (GPTQ, rounding.py), not to nearest
    optimize_rounding: bool = False
    reduce_range: bool | None = None  # 7-bit weights; None: where u8 x s8 products saturate (saturating_u8s8)

    def __post_init__(self) -> None:
        get_target(self.target)
        if self.method not in CALIB_METHODS:
            raise EdgevisError(f"--calib-method must be one of {', '.join(CALIB_METHODS)} (got {self.method!r})")
        if self.calib_count < 1:
            raise EdgevisError("--calib-count must be at least 1")
        for flag, v in (("--min-agreement", self.min_agreement), ("--min-cosine", self.min_cosine)):
            if v is not None and not 0.0 <= v <= 1.0:
                raise EdgevisError(f"{flag} must be between 0 and 1 (got {v})")

    def accuracy_target(self) -> "AccuracyTarget":
        from .placement import AccuracyTarget

        if self.min_agreement is None and self.min_cosine is None:
            return AccuracyTarget(None, DEFAULT_MIN_COSINE)
        return AccuracyTarget(self.min_agreement, self.min_cosine)
