"""An integer-only model as a list of kernel steps: run it (the reference) or lower it to ONNX.

The only float operations are at the two ends and sit outside the integer path:
the input image is quantized to int8 (``QuantizeLinear``) and the int32 logits are
dequantized (``DequantizeLinear``). :meth:`Program.run` starts from the int8 input
tensor, so the reference never touches a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .arith import I64
from .kernels import Kernel
from .lower import INT64, Builder

OPSET = 18


@dataclass
class Step:
    kernel: Kernel
    inputs: list[str]
    outputs: list[str]
    source: str = ""  # the float-model node this step implements (for messages and reports)


@dataclass
class Program:
    input_name: str
    input_shape: list[int]
    input_scale: float  # float image = int8 input * input_scale
    output_name: str
    output_scale: float  # logits = int32 output * output_scale
    steps: list[Step] = field(default_factory=list)
    output_shape: list[int | None] = field(default_factory=list)
    input_int: str = "x_int8"  # the program's name for the quantized input (int64 values in [-128, 127])
    output_int: str = ""

    # ---- the float boundary ------------------------------------------------------------
    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """What ``QuantizeLinear`` computes: ``saturate(round_half_even(x / scale))``."""
        q = np.rint(x.astype(np.float32) / np.float32(self.input_scale))
        return np.clip(q, -128, 127).astype(I64)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        return (y.astype(np.int32).astype(np.float32) * np.float32(self.output_scale)).astype(np.float32)

    # ---- the integer reference ------------------------------------------------------------
    def run(self, x_int: np.ndarray, keep: bool = False) -> Any:
        """Run the steps on the int8 input (as int64); the int32 logits, or every tensor with ``keep``."""
        env: dict[str, np.ndarray] = {self.input_int: np.asarray(x_int, dtype=I64)}
        uses: dict[str, int] = {}
        for s in self.steps:
            for i in s.inputs:
                uses[i] = uses.get(i, 0) + 1
        for s in self.steps:
            res = s.kernel.ref(*[env[i] for i in s.inputs])
            res = res if isinstance(res, tuple) else (res,)
            for name, v in zip(s.outputs, res):
                if v.dtype != I64:
                    raise TypeError(f"{s.kernel.kind} step for {s.source} produced {v.dtype}, not int64")
                env[name] = v
            if not keep:
                for i in s.inputs:
                    uses[i] -= 1
                    if uses[i] == 0 and i != self.output_int:
                        env.pop(i, None)
        return env if keep else env[self.output_int]

    # ---- the ONNX lowering -------------------------------------------------------------------
    def to_onnx(self, metadata: dict[str, str] | None = None, int_output: bool = False) -> onnx.ModelProto:
        """The ONNX model: float input -> QuantizeLinear -> integer ops -> DequantizeLinear -> float logits.

        ``int_output`` adds the int8 input and the int32 logits as extra outputs (for the bit-exact check).
        """
        b = Builder()
        names: dict[str, str] = {}
        scale_in = b.const(np.float32(self.input_scale), np.float32, "in_scale")
        q8 = b.op("QuantizeLinear", [self.input_name, scale_in, b.const(0, np.int8, "in_zp")], hint="input_int8")
        names[self.input_int] = b.cast(q8, INT64)
        for s in self.steps:
            outs = s.kernel.lower(b, *[names[i] for i in s.inputs])
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for name, o in zip(s.outputs, outs):
                names[name] = o
        logits32 = b.cast(names[self.output_int], TensorProto.INT32)
        scale_out = b.const(np.float32(self.output_scale), np.float32, "out_scale")
        b.nodes.append(helper.make_node("DequantizeLinear", [logits32, scale_out, b.const(0, np.int32, "out_zp")],
                                        [self.output_name], name="output_dequantize"))
        outputs = [helper.make_tensor_value_info(self.output_name, TensorProto.FLOAT, self.output_shape)]
        if int_output:
            b.nodes.append(helper.make_node("Identity", [q8], ["input_int8"]))
            b.nodes.append(helper.make_node("Identity", [logits32], ["logits_int32"]))
            outputs += [helper.make_tensor_value_info("input_int8", TensorProto.INT8, self.input_shape),
                        helper.make_tensor_value_info("logits_int32", TensorProto.INT32, self.output_shape)]
        graph = helper.make_graph(
            b.nodes, "edgevis_integer_only",
            [helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, self.input_shape)],
            outputs, b.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10,
                                  producer_name="edgevis")
        if metadata:
            for k, v in metadata.items():
                p = model.metadata_props.add()
                p.key, p.value = k, v
        return model

    def kernel_counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for s in self.steps:
            c[s.kernel.kind] = c.get(s.kernel.kind, 0) + 1
        return dict(sorted(c.items(), key=lambda kv: -kv[1]))


def single_kernel_model(kernel: Kernel, in_shapes: list[list[int]], n_out: int = 1) -> onnx.ModelProto:
    """A model running one kernel on int64 inputs (for the per-kernel bit-exact tests)."""
    b = Builder()
    ins = [f"x{i}" for i in range(len(in_shapes))]
    outs = kernel.lower(b, *ins)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for i, o in enumerate(outs):
        b.nodes.append(helper.make_node("Identity", [o], [f"y{i}"]))
    g = helper.make_graph(b.nodes, "k", [helper.make_tensor_value_info(n, INT64, s) for n, s in zip(ins, in_shapes)],
                          [helper.make_tensor_value_info(f"y{i}", INT64, None) for i in range(len(outs))], b.inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)
