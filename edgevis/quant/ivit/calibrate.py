"""Calibrated ranges of every float tensor of a model, from real images on ONNX Runtime."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import onnx
from onnx import TensorProto


def float_tensor_names(model: onnx.ModelProto) -> list[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    names = [vi.name for vi in inferred.graph.value_info if vi.type.tensor_type.elem_type == TensorProto.FLOAT]
    return names + [o.name for o in model.graph.output] + [i.name for i in model.graph.input]


def activation_absmax(model: onnx.ModelProto, batches: Iterable[np.ndarray], threads: int | None = None) -> tuple[dict[str, float], int]:
    """``{tensor: max |value|}`` over ``batches`` for every float tensor, and the number of images seen.

    Every intermediate becomes a graph output for the run; only the running maxima are kept,
    so memory does not grow with the number of images.
    """
    import onnxruntime as ort

    names = float_tensor_names(model)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    for n in names:
        if n not in present and n != m.graph.input[0].name:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
            present.add(n)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor addressable
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    input_name = m.graph.input[0].name
    amax: dict[str, float] = {}
    seen = 0
    for x in batches:
        res = sess.run(out_names, {input_name: x})
        for n, v in zip(out_names, res):
            if v.dtype.kind == "f" and v.size:
                amax[n] = max(amax.get(n, 0.0), float(np.max(np.abs(v))))
        amax[input_name] = max(amax.get(input_name, 0.0), float(np.max(np.abs(x))))
        seen += len(x)
    return amax, seen
