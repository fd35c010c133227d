"""What each deployment target executes fast and correctly, as ORT quantizer settings.

Measured on x86 with ONNX Runtime 1.31 (2 threads, batch 1; see
``benchmarks/int8_cpu.py``), and the reason each choice is what it is:

* ``ort-cpu``: uint8 activations with int8 per-channel weights. ORT's x86 kernels
  (MLAS) are built around u8 x s8 dot products; with int8 activations many Q/DQ
  groups are not fused and run as explicit DequantizeLinear -> fp32 op, which
  made ``quantize_static``'s defaults *slower* than FP32 (benchmark, 2 threads:
  lsnet_t 0.80x, deit_tiny 0.80x, swin_tiny 0.88x; efficientnet_lite0 1.04x with
  per-tensor weights that wreck its depthwise convs). Asymmetric u8 also lets ORT drop
  a ReLU/Clip into the quantized range. Which ops run in int8 is then decided by
  timing candidates on the machine (see ``placement.py``), because the answer
  differs by model: quantizing everything is fastest for EfficientNet (1.6x) but
  leaves DeiT at 1.0x, where keeping LayerNorm/Softmax/elementwise ops in float
  gives 1.7x.
* ``tensorrt``: TensorRT's explicit quantization wants symmetric int8 (zero point
  0) for activations and weights, weights per channel along the output-channel
  axis (axis 0 of a Conv kernel, axis 1 of a MatMul's K x N weight), and Q/DQ on
  the *inputs* of the ops it runs in int8 (Conv, MatMul, Gemm): it fuses a DQ into
  the consumer and propagates scales through data movement itself. Q/DQ on the
  outputs or on elementwise ops only pins precision where TensorRT would pick a
  faster fused kernel. There is no GPU to time candidates on here, so placement
  for this target is this fixed rule plus the accuracy search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import EdgevisError


@dataclass(frozen=True)
class QuantTarget:
    name: str
    activation_type: str  # "uint8" | "int8"
    activation_symmetric: bool
    per_channel: bool
    op_types: tuple[str, ...] | None  # None: every op type ORT's QDQ quantizer supports
    extra_options: dict[str, Any] = field(default_factory=dict)
    timed_here: bool = True  # can placement be decided by timing on this machine?
    description: str = ""

    def quantizer_options(self) -> dict[str, Any]:
        opts = {"ActivationSymmetric": self.activation_symmetric, "WeightSymmetric": True}
        opts.update(self.extra_options)
        return opts


TARGETS: dict[str, QuantTarget] = {
    "ort-cpu": QuantTarget(
        "ort-cpu", "uint8", False, True, None,
        description="ONNX Runtime CPU: u8 activations, s8 per-channel weights, placement timed on this machine",
    ),
    "tensorrt": QuantTarget(
        "tensorrt", "int8", True, True, ("Conv", "MatMul", "Gemm"),
        extra_options={
            "OpTypesToExcludeOutputQuantization": ["Conv", "MatMul", "Gemm"],
            "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
            # keep Relu/Clip explicit: TensorRT fuses them itself, and a symmetric range cannot absorb them
            "QDQKeepRemovableActivations": True,
        },
        timed_here=False,
        description="TensorRT explicit quantization: symmetric s8 (zero point 0), per-channel weights, "
                    "Q/DQ on Conv/MatMul/Gemm inputs",
    ),
    # OpenVINO reads each Q/DQ pair as a FakeQuantize and runs the op behind it in int8. The ort-cpu format
    # (u8 asymmetric activations, s8 per-channel weights), measured against NNCF's quantization and the
    # symmetric format on OpenVINO itself (quant/openvino.py): the most accurate there, as fast, and one file
    # for ORT and OpenVINO. The same fusions as ort-cpu where OpenVINO reads them (quant/openvino.py's
    # fuse_for_openvino), and placement timed on OpenVINO itself (OvTiming: ORT's timings do not speak for
    # OpenVINO - quantizing every op ORT can left deit_small at 2.30x ORT FP32 on OpenVINO, the ort-cpu
    # file at 4.76x: Q/DQ around Softmax/LayerNorm stop OpenVINO fusing attention); the fidelity report adds
    # a measurement on OpenVINO. On CPUs whose u8 x s8 kernels do not saturate (VNNI/AMX) each placement is then
    # rewritten in OpenVINO's own layout (quant/openvino.openvino_layout: zero points 0; attention's MatMuls in
    # float unless keep_attention_float=False, ATTENTION_FLOAT), which ORT also runs but was not tuned for.
    "openvino": QuantTarget(
        "openvino", "uint8", False, True, None,
        description="OpenVINO CPU: u8 activations (zero point 0, s8 where signed, on CPUs with VNNI/AMX), s8 "
                    "per-channel weights (read as FakeQuantize), placement timed and fidelity also measured on "
                    "OpenVINO",
    ),
}


def get_target(name: str) -> QuantTarget:
    from ..core.names import as_quant_target

    try:
        target = TARGETS[as_quant_target(name)]
    except KeyError:
        raise EdgevisError(f"unknown --target {name!r}; choose one of: {', '.join(TARGETS)} (trt is tensorrt)") from None
    if target.name == "openvino":  # its fidelity is measured on OpenVINO: the extra is needed before any work
        from ..runtimes.openvino import import_openvino

        import_openvino()
    return target
