"""Integer-only models (I-ViT style): ``edgevis export --integer-only``.

The FP32 ONNX file is calibrated on real images, converted to an integer
program (:mod:`.ivit.convert`), lowered to ONNX, and only written once

1. :func:`.ivit.check.check_integer_only` proves that no floating-point tensor sits
   between the input ``QuantizeLinear`` and the output ``DequantizeLinear``, and
2. ONNX Runtime's int32 logits equal the integer reference's bit for bit on real
   and random inputs.

Bit widths are chosen from calibration data: int8 inputs to every Conv/MatMul
(uint8 where non-negative) with an 8-bit softmax, the I-ViT layout; if that
misses the agreement target or a logit cosine of 0.999 on the calibration
images, every linear-op input and the softmax go to 16 bits (two int8 products
each, still integer-only).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.compare import compare_outputs
from ..core.errors import EdgevisError
from ..core.files import sha256_file
from ..core.types import precision_path
from ..core.onnxfile import META_PROVENANCE, load_onnx, set_metadata, static_batch
from ..runtimes.predict import recorded_preprocess
from .calibration import CalibrationStream, ImageSource, calibration_sources
from .fidelity import QuantizedFile, write_checked

EVAL_IMAGES = 32  # calibration images on which the bit-width choice is checked
EXACT_IMAGES = 2  # held-out images (plus one random input) in the bit-exact check
DEFAULT_MIN_AGREEMENT = 0.99
# 8-bit must also keep the logits this close (mean cosine on the calibration images): top-1 agreement
# on 32 images cannot see the near-ties that a 36 dB logit error flips on held-out data
MIN_COSINE_8BIT = 0.999


@dataclass(frozen=True)
class IntegerOnlyConfig:
    calib_dir: Path | None = None
    holdout_dir: Path | None = None
    calib_count: int = 64
    act_bits: int | None = None  # 8 or 16 bits into linear ops; None: 8, or 16 if 8 misses min_agreement
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.act_bits not in (None, 8, 16):
            raise EdgevisError(f"--act-bits must be 8 or 16 (got {self.act_bits})")
        if self.calib_count < 1:
            raise EdgevisError("--calib-count must be at least 1")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise EdgevisError(f"--min-agreement must be between 0 and 1 (got {self.min_agreement})")


def convert_model(model, absmax: dict[str, float], name: str, act_bits: int):  # type: ignore[no-untyped-def]
    """The integer program of an FP32 ONNX model for the given activation width."""
    from .ivit.convert import Converter

    wide = {n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")} if act_bits == 16 else set()
    return Converter(model, absmax, name, wide=wide, softmax_bits=act_bits).convert()


def bit_exact_check(program, inputs: list[np.ndarray], threads: int | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Run the lowered model on ONNX Runtime and the integer reference on the same int8 inputs.

    The reference starts from ORT's own quantized input, so the comparison covers exactly the
    integer path; ``input_quantization_matches`` says whether numpy's quantization agrees too.
    """
    from ..runtimes.latency import cpu_session

    sess = cpu_session(program.to_onnx(int_output=True).SerializeToString(), threads)
    worst, q_match = 0, True
    for x in inputs:
        _, x8, logits = sess.run(None, {program.input_name: x})
        ref = program.run(x8.astype(np.int64))
        q_match &= bool(np.array_equal(program.quantize_input(x), x8.astype(np.int64)))
        if ref.shape != logits.shape:
            worst = -1
            break
        worst = max(worst, int(np.max(np.abs(ref - logits.astype(np.int64)))))
    return {"inputs": len(inputs), "bit_exact": worst == 0, "max_abs_diff": worst,
            "input_quantization_matches": q_match}


def quantize_integer_only_file(fp32_path: str | os.PathLike[str], config: IntegerOnlyConfig = IntegerOnlyConfig(),
                               log: Callable[[str], None] | None = None, *,
                               sources: tuple[ImageSource, ImageSource] | None = None) -> QuantizedFile:
    """Write ``NAME.integer_only.onnx`` beside ``NAME.fp32.onnx``; report its checks, fidelity and speed."""
    from ..runtimes.latency import cpu_session, interleaved_latency, speedup_record
    from .ivit.calibrate import activation_absmax
    from ..graph.integer_check import check_integer_only

    log = log or (lambda s: None)
    src = Path(fp32_path)
    model = load_onnx(src)
    spec, prov = recorded_preprocess(src, model)
    warnings: list[str] = []
    calib, held = sources or calibration_sources(config.calib_dir, config.holdout_dir, warnings)
    if prov.get("weights") == "random-init":
        warnings.append("the model has random weights: its outputs are near-constant, so the fidelity figures say "
                        "nothing about integer-only accuracy on a trained model")
    batch = static_batch(model)
    name = str(prov.get("model") or src.stem)  # for messages naming the model
    out_path = precision_path(src, "integer_only")
    input_name = model.graph.input[0].name
    stream = CalibrationStream(calib, spec, batch, config.calib_count, EVAL_IMAGES)
    log(f"calibrating every tensor's range on up to {config.calib_count} images from {calib.label}")
    t0 = time.perf_counter()
    from ..runtimes.ort import ort_errors

    with ort_errors(src, "calibrate"):
        absmax, seen = activation_absmax(model, stream, config.threads)
    if not seen:
        raise stream.no_image_error()
    if skipped := stream.skipped_warning():
        warnings.append(skipped)
    eval_x = np.concatenate(stream.kept)
    fp32_sess = cpu_session(src.read_bytes(), config.threads)

    def outputs(sess) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.concatenate([sess.run(None, {input_name: eval_x[i:i + batch]})[0]
                               for i in range(0, len(eval_x) - batch + 1, batch)])

    eval_ref = outputs(fp32_sess)
    tried: list[dict[str, Any]] = []
    program = None
    for bits in ([config.act_bits] if config.act_bits else [8, 16]):
        log(f"converting to integer-only kernels ({bits}-bit inputs to linear ops)")
        cand = convert_model(model, absmax, name, bits)
        c = compare_outputs(eval_ref, outputs(cpu_session(cand.to_onnx().SerializeToString(), config.threads)))
        tried.append({"act_bits": bits, "top1_agreement": c.top1_agreement, "cosine_mean": c.cosine_mean})
        program = cand
        if c.top1_agreement >= config.min_agreement and (config.act_bits or c.cosine_mean >= MIN_COSINE_8BIT):
            break
    assert program is not None
    chosen = tried[-1]
    if chosen["top1_agreement"] < config.min_agreement:
        warnings.append(f"integer-only agrees with FP32 on {chosen['top1_agreement']:.1%} of the calibration images, "
                        f"below the target {config.min_agreement:.0%}")

    log("proving the graph float-free and bit-exact against the integer reference")
    qmodel = program.to_onnx()
    report = check_integer_only(qmodel)
    if not report.ok:  # a converter bug, never the user's input: refuse to write the file
        raise RuntimeError("integer-only lowering left float tensors: " + "; ".join(report.problems[:3]))
    exact_inputs = [x[None] if x.ndim == 3 else x for x in _take(held.arrays(spec), EXACT_IMAGES)]
    exact_inputs = [np.repeat(x, batch, axis=0) for x in exact_inputs]
    shape = [batch] + list(eval_x.shape[1:])
    exact_inputs.append(np.random.default_rng(0).standard_normal(shape).astype(np.float32) * float(np.std(eval_x)))
    exact = bit_exact_check(program, exact_inputs, config.threads)
    if not exact["bit_exact"]:
        raise RuntimeError(f"ONNX Runtime and the integer reference disagree (max |diff| {exact['max_abs_diff']}): "
                           "a lowering bug; nothing was written")
    seconds = time.perf_counter() - t0

    log("timing integer-only against FP32")
    t = interleaved_latency({"fp32": fp32_sess, "integer_only": cpu_session(qmodel.SerializeToString(), config.threads)},
                            {input_name: eval_x[:batch]}, rounds=5, iters=3)
    settings: dict[str, Any] = {
        "format": "integer-only (I-ViT style)",
        "act_bits": chosen["act_bits"], "softmax_bits": chosen["act_bits"], "weights": "int8 symmetric per output channel",
        "bit_width_search": tried,
        "kernels": program.kernel_counts(),
        "onnx_nodes": len(qmodel.graph.node),
        "check": report.to_dict(), "bit_exact": exact,
        "input_scale": program.input_scale, "output_scale": program.output_scale,
        "calibration_images": seen, "calibration_source": calib.label, "seconds": seconds,
        "latency": {"device": "this machine (ONNX Runtime CPU)", "fp32": t["fp32"].to_dict(),
                    "integer_only": t["integer_only"].to_dict(),
                    **speedup_record(t["fp32"], t["integer_only"])},
    }
    qprov = dict(prov)
    qprov.update({"precision": "integer-only", "source_sha256": sha256_file(src), "quantization": settings})
    set_metadata(qmodel, {META_PROVENANCE: qprov})
    fid = write_checked(qmodel, out_path, src, held, spec, log, prov=qprov)
    return QuantizedFile(out_path, fid, settings, warnings)


def _take(it, n: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    out = []
    for x in it:
        out.append(x)
        if len(out) >= n:
            break
    return out
