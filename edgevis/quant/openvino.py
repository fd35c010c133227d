"""INT8 for OpenVINO: the fidelity of a Q/DQ file measured where it runs.

Why edgevis's own Q/DQ and not NNCF, and why this format (``--target openvino`` in
``targets.py``), measured with ``benchmarks/int8_cpu.py`` on this machine (AMD EPYC, AVX2,
no VNNI/BF16; OpenVINO 2026.4, NNCF 3.4; 42 held-out photos, EfficientNet-Lite0 with its
ImageNet weights, FP32 on ONNX Runtime as the reference):

* edgevis's asymmetric-u8 Q/DQ file (the ``ort-cpu`` format) on OpenVINO: top-1 agreement
  85.7 %, mean cosine 0.984 (on ORT the same file: 83.3 %, 0.984);
* ``nncf.quantize`` with its defaults on the same FP32 model and calibration images: 78.6 %, 0.927;
* the symmetric-s8 (``tensorrt``) format on OpenVINO: 59.5 %, 0.843 - although ORT runs the
  very same file at 92.9 %, 0.990. OpenVINO runs it differently from the Q/DQ arithmetic
  (on CPUs without VNNI its u8 x s8 kernels shift s8 activations to u8 and saturate 16-bit
  pair sums); a fidelity figure taken on ORT says nothing about OpenVINO's.

Speed on OpenVINO, same interleaved rounds, 2 threads (a machine at load 25-29, so ratios only):
asymmetric file 80 ms, NNCF 88 ms, symmetric 88 ms. So the OpenVINO target writes the asymmetric
format - one file that runs on ORT and OpenVINO alike - and its fidelity report carries a second
measurement taken on OpenVINO itself (:func:`openvino_fidelity`). On x86 without VNNI its weights
are 7-bit, as for ort-cpu (``saturating_u8s8`` in int8.py; NNCF's "overflow fix" is the same remedy):
the target as shipped then gives, on OpenVINO, 85.7 % / cosine 0.988 / SQNR 16.2 dB, the same as
ORT on that file (0.988, 16.2 dB) - OpenVINO and ORT agree - and in one interleaved run 128 ms
against NNCF's 148 ms and OpenVINO FP32 (f32) 204 ms.

That was on a CPU whose u8 x s8 kernels saturate. Where they do not (VNNI or AMX; measured on a Xeon with
AVX512-VNNI, AMX and BF16), every placement is written in OpenVINO's own layout instead
(:func:`openvino_layout`): activation zero points 0 (s8 where a range is signed), no second rounding after data
movement, with transformer LayerNorms in float from the start (:data:`LAYERNORMS`) and attention's activation x
activation MatMuls in float as for ort-cpu (:data:`ATTENTION_FLOAT`). There, on an idle Xeon with AMX, it ran
faster than NNCF's INT8 on efficientnet_lite0, lsnet_t and swin_tiny and 4-7 % behind it on deit_tiny and
deit_small (benchmarks/int8_cpu.py, p50), and more accurately on efficientnet_lite0 (on an idle AMD Zen 4,
AVX512-VNNI and BF16 without AMX, ahead on all five, the DeiTs by 1-5 %); the ORT-layout file on the same CPU had its
LayerNorms and FullyConnected layers paying for zero points and its data movement for requantization layers
(deit_tiny: 85 of them). The DeiT gap was in the layout (OpenVINO per-layer profiles): the qkv Transpose that ORT's
optimizer pushes through q/k/v's Gathers, a rounding of attention's scores inside the float MHA kernel and one
between fc1 and its GELU post-op. Without them (no ORT graph optimization before quantization for this layout,
:func:`_float_softmax_inputs`, :func:`_float_into_activations`), in one process, interleaved rounds, each round's
p50 over NNCF's (load 2.5-3.3, so ratios only): deit_tiny 1.015 -> 0.812 (OpenVINO FP32, bf16: 0.893),
deit_small 1.003 -> 0.844 (1.200), swin_tiny 0.870 -> 0.784, lsnet_t 0.839 -> 0.845, efficientnet_lite0 0.770 ->
0.765, with on-OpenVINO SQNR against FP32 28.3 -> 28.8 dB (deit_tiny), 26.4 -> 26.8 (deit_small), 32.5 -> 32.7
(swin_tiny), random weights. On deit_tiny INT8 still gains little over bf16: the float attention kernel is 28 %
of both, the int8 FullyConnected layers save ~0.85 ms of 6 ms against AMX bf16, and the LayerNorms writing int8
(MVN with a quantizing post-op: 550 us against 300 us in bf16) and attention's output quantized for proj
(190 us) take a third of that back.

Placement for OpenVINO is timed on OpenVINO (:class:`OvTiming`, the placement search's clock and
the INT8-vs-FP32 timing), after the ort-cpu fusions OpenVINO reads (:func:`fuse_for_openvino`).
Quantizing every op ORT can, untimed, was slower on OpenVINO than the ort-cpu file (timed on ORT):
deit_small 2.30x ORT FP32 against 4.76x, deit_tiny 1.64x against 3.42x. Q/DQ pairs left on
LayerNorm/Softmax/elementwise ops keep OpenVINO from fusing attention (q.k^T, Softmax, .v) into one
float subgraph: its 24 attention MatMuls ran as separate bf16 MatMul layers. Timed on OpenVINO,
the search takes normalization and the fused contrib ops back to float, as ORT's did.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ..core.errors import EdgevisError
from ..core.types import Preprocess
from .calibration import ImageSource


def openvino_fidelity(fp32_path: str | os.PathLike[str], q_path: str | os.PathLike[str], held: ImageSource,
                      spec: Preprocess, threads: int | None = None) -> dict[str, Any]:
    """``q_path`` compiled by OpenVINO (its default precision hint, as deployed) against ``fp32_path`` on
    ONNX Runtime, on the held-out images; with the precision OpenVINO ran, read back."""
    from ..core.compare import compare_outputs
    from ..runtimes.openvino import OvConfig, OvRunner, import_openvino
    from ..runtimes.ort import OrtRunner
    from .fidelity import sqnr_db, top1_agreement_ci95, top5_overlap

    ov = import_openvino()
    refs, outs = [], []
    arrays = held.arrays(spec)
    with OrtRunner(fp32_path) as r32, OvRunner(q_path, OvConfig(threads=threads)) as rq:
        while chunk := list(itertools.islice(arrays, 16)):
            x = np.stack(chunk)
            refs.append(r32.infer_batched(x))
            outs.append(rq.infer_batched(x))  # a fixed batch (as exported) runs in parts of that batch
        precision = rq.precision
    if not refs:
        raise EdgevisError(f"no readable held-out image in {held.label}")
    ref, out = np.concatenate(refs), np.concatenate(outs)
    c = compare_outputs(ref, out)
    return {"runtime": "openvino", "openvino": ov.get_version(), "precision": precision["label"],
            "images": int(len(ref)), "top1_agreement": c.top1_agreement,
            "top1_agreement_ci95": top1_agreement_ci95(ref, out),
            "top5_overlap": top5_overlap(ref, out),
            "cosine_mean": c.cosine_mean, "cosine_min": c.cosine_min, "sqnr_db": sqnr_db(ref, out)}


def fuse_for_openvino(model: Any) -> tuple[Any, Any]:
    """``graph.fusions.fuse_for_ort``'s fusions (com.microsoft ``Gelu``, ``BiasGelu``,
    ``SkipLayerNormalization``) where OpenVINO's ONNX frontend reads every fused op and the fused graph
    computes, on OpenVINO at f32, what the unfused one does (one random input); else the graph unfused and
    the report says why. ORT's quantizer places Q/DQ around the fused ops as it does for ort-cpu, so the
    OpenVINO target starts from the same graph as the ort-cpu one."""
    from ..graph.fusions import FusionReport, fuse_for_ort

    fused, report = fuse_for_ort(model)
    if not report.changed:
        return fused, report
    why = _ov_runs_alike(model, fused)
    if why is None:
        return fused, report
    n = len(model.graph.node)
    return model, FusionReport({}, n, n, error=why)


def _ov_runs_alike(model: Any, fused: Any) -> str | None:
    from ..graph.fusions import outputs_agree, random_feed
    from ..runtimes.openvino import OpenVinoError, OvConfig, OvSession

    feed = random_feed(model)
    f32 = OvConfig(precision="f32")
    try:
        want = OvSession(model.SerializeToString(), f32, "the unfused graph").run(None, feed)
        got = OvSession(fused.SerializeToString(), f32, "the fused graph").run(None, feed)
    except OpenVinoError as e:
        return f"OpenVINO does not run the fused graph ({e})"
    if outputs_agree(want, got):
        return None
    return "on OpenVINO the fused graph computes other outputs than the unfused one"


class OvTiming:
    """The OpenVINO target's clock for the placement search (``noise.RoundTimer``) and for the INT8-vs-FP32
    timing: every model compiled by OpenVINO for this CPU with the precision hint ``edgevis build --runtime
    openvino`` uses by default (``auto``: bf16 where the CPU has it), the precision each compiled model ran
    in read back from it (``precision_of``) and kept by the model's sha1 (:meth:`precision`)."""

    def __init__(self, threads: int | None, input_name: str, x: np.ndarray, precision: str = "auto") -> None:
        from ..runtimes.openvino import OvConfig
        from .noise import session_round_timer

        self.config = OvConfig(precision=precision, threads=threads)
        self._ran: dict[str, dict[str, Any]] = {}
        # best of 3 runs per round (ORT: 1 run, noise.ort_round_timer): OpenVINO's threads do not spin, so a preempted
        # run costs it more
        self._timer = session_round_timer(self.open, input_name, x, iters=3)

    def open(self, blob: bytes) -> Any:
        import hashlib

        from ..runtimes.openvino import OvSession

        s = OvSession(blob, self.config, "a placement candidate")
        self._ran[hashlib.sha1(blob).hexdigest()] = s.precision
        return s

    def __call__(self, models: Any) -> Any:
        return self._timer(models)

    def precision(self, blob: bytes) -> dict[str, Any]:
        """What OpenVINO ran ``blob`` in when it was timed (compiled now if it was not)."""
        import hashlib

        key = hashlib.sha1(blob).hexdigest()
        if key not in self._ran:
            self.open(blob)
        return self._ran[key]

    def describe(self) -> dict[str, Any]:
        """Where the timings were taken, for the record."""
        from ..runtimes.openvino import import_openvino

        hints = sorted({p["hint"] for p in self._ran.values()})
        return {"runtime": "openvino", "openvino": import_openvino().get_version(), "device": "CPU",
                "precision_hint": self.config.precision, "threads": self.config.threads,
                "compiled_float_precision": hints, "models_compiled": len(self._ran)}


# LayerNorms the openvino target keeps in float from the start (its layout only, :func:`openvino_layout`). A
# transformer's LayerNorm reads the residual stream, whose few outlier channels set a per-tensor int8 range that
# flattens the rest: deit_tiny (all else as shipped) agreed with FP32 on OpenVINO on 52.4 % of the held-out
# photos with its LayerNorms in int8 (cosine 0.920; NNCF INT8 66.7 %, 0.957) and 85.7 % in float (0.983), and
# ran as fast (CPU time per inference 13.9 ms in float, 14.2 ms in int8, NNCF 14.2 ms; one interleaved run).
LAYERNORMS = ("LayerNormalization", "SkipLayerNormalization")

# Attention's q.k^T and attn.v: OpenVINO runs them, with the Softmax, as one int8 kernel where both operands are
# symmetric int8 (as NNCF quantizes them, and as this layout writes them when they are quantized:
# ``Int8Config(keep_attention_float=False)``). Measured on deit_tiny (random weights, one export; LayerNorms in
# float, all else as shipped): on OpenVINO top-1 agreement with FP32 50.0 % (cosine 0.9785) with them in int8,
# 92.9 % (0.9991) in float, NNCF INT8 52.4 % (0.9635); CPU time per inference 12.6 ms in int8, 11.9 ms in float,
# NNCF 13.3 ms (one interleaved run, load 3.6). So the openvino target keeps them in float, as ort-cpu does.
ATTENTION_FLOAT = True

# Data movement whose outputs are some of its input's values, unchanged: a value on the input's int8 grid stays on it.
_SAME_VALUES = ("Reshape", "Transpose", "Gather", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Split", "Expand",
                "Tile", "DepthToSpace", "SpaceToDepth")


def _source(name: str, idx: Any) -> Any:
    """The node that made tensor ``name``'s values, looking through :data:`_SAME_VALUES` data movement (None: a
    graph input or an initializer)."""
    p = idx.producer.get(name)
    while p is not None and p.op_type in _SAME_VALUES:
        p = idx.producer.get(p.input[0])
    return p


def _from_int8(name: str, idx: Any) -> bool:
    """Does tensor ``name`` hold dequantized values, directly or through :data:`_SAME_VALUES` data movement?"""
    p = _source(name, idx)
    return p is not None and p.op_type == "DequantizeLinear"


def _reread(readers: Any, old: str, new: str) -> None:
    """Each of ``readers`` reads tensor ``new`` where it read ``old`` (in place)."""
    for r in readers:
        for k, i in enumerate(r.input):
            if i == old:
                r.input[k] = new


def _requantize(model: Any, idx: Any, q: Any, scale: float, zero_point: np.generic, name: str) -> None:
    """``q`` and the DequantizeLinear nodes reading it take ``scale`` and ``zero_point`` (new initializers named
    after ``name``; the old ones go with ``remove_dead_qdq`` when unused)."""
    from onnx import numpy_helper

    model.graph.initializer.extend([numpy_helper.from_array(np.asarray(scale, np.float32), f"{name}_scale"),
                                    numpy_helper.from_array(np.asarray(zero_point), f"{name}_zero_point")])
    for node in [q] + [c for c in idx.consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"]:
        node.input[1], node.input[2] = f"{name}_scale", f"{name}_zero_point"


def int8_nodes(model: Any) -> list[Any]:
    """The ops of an OpenVINO-layout graph that run on int8 data (``qdq_graph.quantized_nodes`` for
    :func:`openvino_layout`): those reading a dequantized tensor directly or through data movement, which
    OpenVINO's low-precision transformations move the dequantization past (q.k^T reads k through Gather and
    Transpose)."""
    from ..core.onnxfile import QDQ_OPS, TensorIndex

    idx = TensorIndex.of(model)
    return [n for n in model.graph.node
            if n.op_type not in QDQ_OPS and any(_from_int8(i, idx) for i in n.input if i)]


def openvino_layout(model: Any) -> Any:
    """A copy of an ORT Q/DQ graph laid out as OpenVINO runs it fastest, same placement:

    * no second rounding after data movement: ``DQ -> Reshape -> Q -> DQ -> op`` becomes ``DQ -> Reshape -> op``
      (the values a Reshape/Transpose/Gather passes on are already on its input's grid, so this is as close to
      float or closer). OpenVINO then runs the data movement on int8 and reads no requantization layer
      (ORT's layout cost deit_tiny 85-134 of them, between each Gather/Transpose of attention);
    * no rounding inside a chain of element-wise ops (:func:`_float_elementwise_chains`), which OpenVINO fuses
      into one kernel: LSNet's dynamic convolution sums nine Mul products in a chain of Adds, each partial sum
      rounded to int8 in ORT's layout. lsnet_t (random weights, one export) on OpenVINO: top-1 agreement with
      FP32 57.1 % -> 64.3 %, cosine 0.912 -> 0.952 (NNCF INT8 47.6 %, 0.943), CPU time per inference 6.06 ->
      6.10 ms (NNCF 7.28; one interleaved run, load 5.4). The ops left with float inputs only are recorded as
      kept in float (:func:`layout_floated`);
    * activation zero points 0 (:func:`symmetric_activations`): OpenVINO's int8 FullyConnected/MVN kernels
      skip the zero-point compensation, and where attention's MatMuls are quantized it runs them, fused with
      the Softmax, as one int8 kernel only where both operands are symmetric;
    * no rounding inside what OpenVINO runs as one kernel: between a Conv/MatMul and the activation it runs as
      their post-op (:func:`_float_into_activations`), and into a Softmax whose output stays float
      (:func:`_float_softmax_inputs`).

    Measured on this machine (Xeon with AVX512-VNNI and AMX, OpenVINO 2026.4, 2 threads, CPU time per
    inference, the same placement): deit_tiny 14.7 -> 13.1 ms (NNCF INT8 12.9), lsnet_t 9.7 -> 8.4 ms (NNCF
    10.5), efficientnet_lite0 6.1 -> 6.1 ms (NNCF 8.1); efficientnet_lite0 top-1 agreement with FP32 on
    OpenVINO 88.1 % -> 92.9 %, cosine 0.9936 -> 0.9966 (42 held-out photos)."""
    import onnx

    from ..core.onnxfile import TensorIndex
    from .qdq_graph import remove_dead_qdq

    m = onnx.ModelProto()
    m.CopyFrom(model)
    idx = TensorIndex.of(m)
    outputs = {o.name for o in m.graph.output}
    for n in m.graph.node:
        if n.op_type not in _SAME_VALUES or not _from_int8(n.input[0], idx):
            continue
        for o in n.output:
            for q in [c for c in idx.consumers.get(o, []) if c.op_type == "QuantizeLinear"]:
                for dq in [c for c in idx.consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"]:
                    if dq.output[0] in outputs:
                        continue
                    readers = list(idx.consumers.get(dq.output[0], []))
                    _reread(readers, dq.output[0], o)
                    idx.consumers.setdefault(o, []).extend(readers)
    _float_elementwise_chains(m, idx, outputs)
    remove_dead_qdq(m)
    idx = TensorIndex.of(m)  # the Q/DQ pairs bypassed above no longer read
    _float_into_activations(m, idx)
    _float_softmax_inputs(m, idx)
    remove_dead_qdq(m)
    symmetric_activations(m)
    if _signed_second_operands(m):
        remove_dead_qdq(m)
    return m


def _signed_second_operands(model: Any) -> int:
    """The second operand of an activation x activation MatMul quantized as int8 where it was uint8 (in place):
    OpenVINO's int8 MatMul takes u8 or s8 first and s8 second, else it runs the MatMul in f32 with reorders
    around it. LSNet multiplies v by the softmax's transpose (u8, non-negative): its attn.v MatMuls ran in f32
    until this (lsnet_t, one interleaved run: CPU time per inference 10.5 -> 9.7 ms). One bit of the
    softmax's resolution is the price. Returns how many pairs changed."""
    import onnx
    from onnx import numpy_helper

    from ..core.onnxfile import TensorIndex

    idx = TensorIndex.of(model)
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for n in model.graph.node:
        if n.op_type != "MatMul" or not all(_from_int8(i, idx) and not _constant_dq(i, idx, inits) for i in n.input):
            continue
        p = _source(n.input[1], idx)
        q = idx.producer.get(p.input[0]) if p is not None else None
        if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 3:
            continue
        s, z = inits.get(q.input[1]), inits.get(q.input[2])
        if s is None or z is None or z.data_type != onnx.TensorProto.UINT8 or int(numpy_helper.to_array(z)) != 0:
            continue
        scale = float(numpy_helper.to_array(s)) * 255 / 127  # [0, max] as part of [-max, max]
        _requantize(model, idx, q, scale, np.int8(0), f"{q.output[0]}_s8")
        changed += 1
    return changed


def _constant_dq(name: str, idx: Any, inits: dict[str, Any]) -> bool:
    """Is ``name`` a dequantized weight (through data movement)?"""
    p = _source(name, idx)
    return p is not None and p.op_type == "DequantizeLinear" and p.input[0] in inits


_ELEMENTWISE = ("Add", "Mul", "Sub", "Div")
CHAIN_REASON = "float inside an element-wise chain (OpenVINO fuses it into one kernel: no rounding between its steps)"


def _float_elementwise_chains(model: Any, idx: Any, outputs: set[str]) -> int:
    """Element-wise ops whose output only other element-wise ops read pass it on in float (their Q/DQ pair is
    bypassed, in place; ``remove_dead_qdq`` drops it). Returns how many outputs now stay float."""
    changed = 0
    for p in model.graph.node:
        if p.op_type not in _ELEMENTWISE:
            continue
        out = p.output[0]
        qs = idx.consumers.get(out, [])
        if not qs or any(c.op_type != "QuantizeLinear" for c in qs):
            continue
        dqs = [d for q in qs for d in idx.consumers.get(q.output[0], [])]
        if any(d.op_type != "DequantizeLinear" or d.output[0] in outputs for d in dqs):
            continue
        readers = [r for d in dqs for r in idx.consumers.get(d.output[0], [])]
        if not readers or any(r.op_type not in _ELEMENTWISE for r in readers):
            continue
        for d in dqs:
            _reread(idx.consumers.get(d.output[0], []), d.output[0], out)
        changed += 1
    return changed


# Activations OpenVINO's CPU plugin runs as a post-op of the Convolution/FullyConnected before them (one kernel)
_POST_OPS = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Gelu", "FastGelu",
             "BiasGelu", "Elu", "Softplus", "Mish")
ACTIVATION_REASON = ("float between a Conv/MatMul and its activation (OpenVINO runs the activation as the kernel's "
                     "post-op: a rounding between them costs time and accuracy)")
SOFTMAX_REASON = ("float into a Softmax whose output stays float (OpenVINO has no int8 Softmax: it fuses it with "
                  "the float MatMuls around it, and an int8 input is only a rounding inside that kernel)")


def _float_into_activations(model: Any, idx: Any) -> int:
    """``Conv/MatMul/Gemm -> Q -> DQ -> activation`` where the activation is the pair's only reader and nothing
    else reads the product: the activation reads the product in float (in place; ``remove_dead_qdq`` drops the
    pair). OpenVINO fuses the activation into the Conv/FullyConnected kernel either way, the pair as a second
    quantize-dequantize post-op before it: deit_tiny's fc1 -> GELU (one interleaved run, 200 profiled inferences:
    the 12 fc1 layers 1.39 -> 1.16 ms). Returns how many activations now read float."""
    changed = 0
    for n in model.graph.node:
        if n.op_type not in _POST_OPS or not n.input:
            continue
        dq = idx.producer.get(n.input[0])
        q = idx.producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        p = idx.producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        if (p is None or p.op_type not in ("Conv", "MatMul", "Gemm") or len(idx.consumers.get(p.output[0], [])) != 1
                or len(idx.consumers.get(q.output[0], [])) != 1 or len(idx.consumers.get(dq.output[0], [])) != 1):
            continue
        n.input[0] = p.output[0]
        idx.consumers[p.output[0]].append(n)
        changed += 1
    return changed


def _float_softmax_inputs(model: Any, idx: Any) -> int:
    """A Softmax whose output no QuantizeLinear reads (attention's attn.v kept in float) reads its input in float
    (in place), and so does the chain that feeds only it - data movement and element-wise ops with a constant
    operand (Swin's relative position bias and window mask) - up to the op that computed the scores: OpenVINO
    runs Softmax in bf16/f32 only and fuses it with attention's float MatMuls into one kernel, where an int8
    input is one more rounding inside it (deit_tiny, one interleaved run of 40 rounds: 0.916 -> 0.870 of NNCF
    INT8's time). Returns how many Q/DQ pairs the chains no longer read."""
    inits = {i.name for i in model.graph.initializer}

    def constant(name: str) -> bool:
        p = idx.producer.get(name)
        return name in inits or (p is not None and (p.op_type == "Constant" or (
            p.op_type == "DequantizeLinear" and p.input[0] in inits)))

    def only(name: str, reader: Any) -> bool:
        return [c.name for c in idx.consumers.get(name, [])] == [reader.name]

    changed = 0
    for n in list(model.graph.node):
        if n.op_type != "Softmax" or any(c.op_type == "QuantizeLinear" for c in idx.consumers.get(n.output[0], [])):
            continue
        node, k = n, 0  # ``node`` reads the chain's tensor as its input ``k``
        while True:
            name = node.input[k]
            p = idx.producer.get(name)
            if p is not None and p.op_type == "DequantizeLinear":
                q = idx.producer.get(p.input[0])
                if q is None or q.op_type != "QuantizeLinear" or q.input[0] in inits or not (
                        only(name, node) and only(q.output[0], p) and only(q.input[0], q)):
                    break
                node.input[k] = name = q.input[0]
                idx.consumers[name] = [node]
                p = idx.producer.get(name)
                changed += 1
            if p is None or not only(name, node) or len(p.output) != 1:
                break
            if p.op_type in _SAME_VALUES:
                node, k = p, 0
            elif p.op_type in _ELEMENTWISE and sum(not constant(i) for i in p.input) == 1:
                node, k = p, next(j for j, i in enumerate(p.input) if not constant(i))
            else:
                break
    return changed


def layout_floated_why(base: Any, model: Any, kept: Any) -> dict[str, str]:
    """:func:`layout_floated` with the rule of :func:`openvino_layout` that floated each op."""
    from ..core.onnxfile import TensorIndex

    idx = TensorIndex.of(model)
    nodes = {n.name: n for n in model.graph.node}

    def why(node: Any) -> str:
        while (node.op_type in _SAME_VALUES + _ELEMENTWISE
               and len(readers := idx.consumers.get(node.output[0], [])) == 1):
            node = readers[0]  # data movement and element-wise ops floated with the Softmax they feed
        return (ACTIVATION_REASON if node.op_type in _POST_OPS else SOFTMAX_REASON if node.op_type == "Softmax"
                else CHAIN_REASON)

    return {n: why(nodes[n]) for n in layout_floated(base, model, kept)}


def layout_floated(base: Any, model: Any, kept: Any) -> list[str]:
    """The ops :func:`openvino_layout` left with float inputs only: int8 in ``base`` (ORT's layout, nothing
    kept), not in ``kept``, and reading no int8 value in ``model`` (the laid-out placement)."""
    from .qdq_graph import quantized_nodes

    now = {n.name for n in int8_nodes(model)}
    return [n.name for n in quantized_nodes(base) if n.name not in kept and n.name not in now]


def symmetric_activations(model: Any) -> int:
    """Give every per-tensor activation Q/DQ pair (in place) zero point 0 over the range it had: uint8 where
    that range is non-negative (then unchanged), else int8 with scale max(|min|, max) / 127. Returns how many
    pairs changed."""
    import onnx
    from onnx import numpy_helper

    from ..core.onnxfile import TensorIndex
    from .qdq_graph import remove_dead_qdq

    idx = TensorIndex.of(model)
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for q in list(model.graph.node):
        producer = idx.producer.get(q.input[0])
        if (q.op_type != "QuantizeLinear" or len(q.input) < 3 or q.input[0] in inits
                or (producer is not None and producer.op_type == "Constant")):
            continue  # a weight
        s, z = inits.get(q.input[1]), inits.get(q.input[2])
        if s is None or z is None or len(s.dims) or len(z.dims):
            continue
        scale, zp = float(numpy_helper.to_array(s)), int(numpy_helper.to_array(z))
        unsigned = z.data_type == onnx.TensorProto.UINT8
        qmin, qmax = (0, 255) if unsigned else (-128, 127)
        if zp == 0 or (unsigned and zp == qmin):
            continue
        lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
        if lo >= 0:
            new_scale, new_zp = hi / 255, np.uint8(0)
        else:
            new_scale, new_zp = max(-lo, hi) / 127, np.int8(0)
        _requantize(model, idx, q, new_scale, new_zp, f"{q.output[0]}_sym")
        changed += 1
    remove_dead_qdq(model)
    return changed
