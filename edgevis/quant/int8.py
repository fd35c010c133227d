"""Standard INT8: calibrated Q/DQ through ``onnxruntime.quantization``.

edgevis does not re-implement Q/DQ insertion; it chooses ORT's settings for the
target, feeds real calibration images, keeps attention's activation x activation
MatMuls in float, and measures what quantization cost on held-out images.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..core.errors import EdgevisError
from ..core.files import atomic_output, sha256_file, write_json_atomic
from ..core.types import sidecar_path
from ..graph.inspect import META_PROVENANCE, load_onnx, read_json_metadata, set_metadata
from ..runtimes.predict import recorded_preprocess
from .calibration import ImageSource, builtin_sources, folder_source, split_folder
from .fidelity import fidelity_report


@dataclass(frozen=True)
class Int8Config:
    calib_dir: Path | None = None
    calib_count: int = 64
    method: str = "minmax"  # minmax | percentile | entropy (ORT calibrators)
    per_channel: bool = True
    # x86 ORT: u8 activations with s8 weights run on the fast u8s8 GEMM/conv kernels
    activation_type: str = "uint8"
    keep_attention_float: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("minmax", "percentile", "entropy"):
            raise EdgevisError(f"--calib-method must be minmax, percentile or entropy (got {self.method!r})")
        if self.activation_type not in ("uint8", "int8"):
            raise EdgevisError(f"activation type must be uint8 or int8 (got {self.activation_type!r})")


@dataclass
class Int8Result:
    path: Path
    fidelity: dict[str, Any]
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _quiet_root_logger():
    # ORT's quantizer logs a root-logger warning per 1-D weight it cannot quantize per
    # channel (BatchNorm scales); they are expected and would bury the report.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Reader:
    """ORT ``CalibrationDataReader`` over a lazily preprocessed image stream."""

    def __init__(self, input_name: str, batches: Iterator[np.ndarray]) -> None:
        self.input_name = input_name
        self._it = batches

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}


def _batched(arrays: Iterator[np.ndarray], batch: int, limit: int) -> Iterator[np.ndarray]:
    buf: list[np.ndarray] = []
    seen = 0
    for a in arrays:
        if seen >= limit:
            break
        buf.append(a)
        seen += 1
        if len(buf) == batch:
            yield np.stack(buf)
            buf = []
    if buf:  # pad a fixed-batch graph's last batch by repeating the final image
        while len(buf) < batch:
            buf.append(buf[-1])
        yield np.stack(buf)


def attention_matmuls(model) -> list[str]:  # type: ignore[no-untyped-def]
    """MatMul nodes whose two inputs are both activations (q.k^T, attn.v)."""
    inits = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and not any(i in inits or i in consts for i in n.input)]


def quantize_int8_file(fp32_path: str | os.PathLike[str], config: Int8Config = Int8Config()) -> Int8Result:
    """Write ``NAME.int8.onnx`` beside ``NAME.fp32.onnx`` and report its fidelity."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = Path(fp32_path)
    model = load_onnx(src)
    spec, prov = recorded_preprocess(src, model)
    warnings: list[str] = []
    if config.calib_dir is None:
        calib, held = builtin_sources()
        warnings.append("calibrated on the bundled sample photos; calibrating on images from the deployment "
                        "domain (--calib DIR) gives better INT8 accuracy")
    else:
        calib, held = split_folder(folder_source(config.calib_dir))
        if held is None:
            _, held = builtin_sources()
            warnings.append(f"too few images in {config.calib_dir} to hold some out; fidelity is measured on "
                            "the bundled sample photos")
    if prov.get("weights") == "random-init":
        warnings.append("the model has random weights: its outputs are near-constant and the fidelity figures "
                        "below say nothing about INT8 accuracy on a trained model")
    in_shape = model.graph.input[0].type.tensor_type.shape.dim[0]
    batch = in_shape.dim_value if in_shape.dim_value > 0 else 1
    input_name = model.graph.input[0].name
    exclude = attention_matmuls(model) if config.keep_attention_float else []

    name = src.name.replace(".fp32.onnx", "").replace(".onnx", "")
    target = src.with_name(f"{name}.int8.onnx")
    with tempfile.TemporaryDirectory(prefix="edgevis-int8-") as tmpd:
        prepped = Path(tmpd) / "prepped.onnx"
        quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
        batches = _batched(calib.arrays(spec), batch, config.calib_count)
        first = next(batches, None)  # fail clearly before ORT's calibrator sees an empty stream
        if first is None:
            raise EdgevisError(f"no readable calibration image in {calib.label}"
                               + (f" (e.g. {calib.skipped[0]})" if calib.skipped else ""))
        reader = _Reader(input_name, itertools.chain([first], batches))
        with atomic_output(target) as tmp, _quiet_root_logger():
            quantize_static(
                str(prepped), str(tmp), reader,
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                activation_type=QuantType.QUInt8 if config.activation_type == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                                  "entropy": CalibrationMethod.Entropy}[config.method],
                nodes_to_exclude=exclude,
            )
            if calib.skipped:
                warnings.append(f"skipped {len(calib.skipped)} unreadable calibration file(s), e.g. {calib.skipped[0]}")
            used = min(len(calib) - len(calib.skipped), config.calib_count)
            qmodel = load_onnx(tmp, check=False)
            settings = {
                "format": "QDQ", "target": "ort-cpu", "activations": config.activation_type, "weights": "int8",
                "per_channel": config.per_channel, "calibration_method": config.method,
                "calibration_images": used, "calibration_source": calib.label,
                "kept_float": [{"node": n, "reason": "activation x activation MatMul (attention)"} for n in exclude],
            }
            qprov = dict(read_json_metadata(qmodel, META_PROVENANCE) or prov)
            qprov.update({"precision": "int8", "source_sha256": sha256_file(src), "quantization": settings})
            set_metadata(qmodel, {META_PROVENANCE: qprov})
            import onnx

            onnx.save_model(qmodel, str(tmp))
            fid = fidelity_report(src, tmp, held, spec)
    sidecar = {"preprocess": spec.to_dict(), **qprov, "sha256": sha256_file(target), "fidelity": fid}
    write_json_atomic(sidecar_path(target), sidecar)
    return Int8Result(target, fid, settings, warnings)
