"""One convolution for a 16-bit activation the integer graph splits in two 8-bit halves.

ONNX ``ConvInteger`` takes 8-bit inputs only, so the integer-only lowering convolves a 16-bit activation
``v`` as its high int8 half ``h`` and its low uint8 half ``l`` (``v = 256*h + l``) with the same weights and
adds the results back::

    s = Add(Mul(Cast(ConvInteger(h, w)), 256), Cast(ConvInteger(l, w)))

A convolution is linear: ``256*conv(h) + conv(l) = conv(256*h + l)``. Where the second is proved exact, the
C convolves the int16 value ``256*h + l`` once instead (half the multiply-adds for a depthwise kernel; for a
1 x 1 one int32 result written and read instead of two, and no Mul step between), with a ``Cast`` back to the
type of ``s``::

    s = Cast(ConvInteger(Cast(Add(Mul(Cast(h), 256), Cast(l)), int16), w))

Exact because: ``h`` is int8 and ``l`` uint8 (their types), so ``256*h + l`` lies in ``[-32768, 32767]`` and
its int16 ``Cast`` changes nothing; the zero points are 0 (none given); and the value ranges
(``ranges.py``) bound ``conv(256*h + l)`` inside int32 for the intervals ``h`` and ``l`` have, so neither it
nor either half's int32 sum wraps (each half's bound is at most the whole's): all three are the exact
integer sums, and ``256*conv(h) + conv(l)`` is ``s`` exactly, in int64 as in a wrapping int32. Only
depthwise and ungrouped 1 x 1 convolutions (the kernels with an int16 form) whose intermediate results
nothing else reads are rewritten; the rest of the graph is unchanged.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .model import IntGraph, Node, Tensor
from .ranges import INT32, fits, node_range, value_ranges

CAST_TO = {"int64_t": TensorProto.INT64, "int32_t": TensorProto.INT32}


def _one_pass(plan, conv: Node) -> bool:  # type: ignore[no-untyped-def]
    """The convolutions the C has an int16 kernel for: depthwise, and 1 x 1 without groups (gemm.py)."""
    return plan.kind == "dw" or (plan.kind == "gemm" and plan.pointwise and int(conv.attrs.get("group", 1)) == 1)


def merge_split_convs(g: IntGraph) -> int:
    """Rewrite ``g`` in place as described above; the number of convolution pairs merged."""
    from .gemm import product_plan

    prod: dict[str, int] = {}
    cons: dict[str, list[int]] = {}
    for i, n in enumerate(g.nodes):
        for o in n.outputs:
            prod[o] = i
        for x in n.inputs:
            if x:
                cons.setdefault(x, []).append(i)

    def only(name: str) -> Node | None:  # the one node reading ``name`` (None: several, none, or the logits)
        c = cons.get(name, [])
        return g.nodes[c[0]] if len(c) == 1 and name != g.logits else None

    def scalar(name: str) -> int | None:
        v = g.tensors[name].value
        return None if v is None or np.asarray(v).size != 1 else int(np.asarray(v).reshape(-1)[0])

    r = value_ranges(g)
    drop: set[int] = set()
    insert: dict[int, list[Node]] = {}
    merged = 0
    for add_i, add in enumerate(g.nodes):
        if add.op != "Add" or len(add.inputs) != 2 or add_i in drop:
            continue
        found = None
        for mi, ci in ((0, 1), (1, 0)):
            m, cl = (g.nodes[prod[x]] if x in prod else None for x in (add.inputs[mi], add.inputs[ci]))
            if m is None or cl is None or m.op != "Mul" or cl.op != "Cast":
                continue
            ch = next((g.nodes[prod[x]] for x in m.inputs if x in prod and g.nodes[prod[x]].op == "Cast"), None)
            k = next((x for x in m.inputs if g.is_const(x)), None)
            if ch is None or k is None or scalar(k) != 256:
                continue
            hc, lc = (g.nodes[prod[c.inputs[0]]] if c.inputs[0] in prod else None for c in (ch, cl))
            if hc is None or lc is None or hc.op != "ConvInteger" or lc.op != "ConvInteger":
                continue
            found = (m, cl, ch, hc, lc)
            break
        if found is None:
            continue
        m, cl, ch, hc, lc = found
        xh, xl, y = hc.inputs[0], lc.inputs[0], add.outputs[0]
        if (any(x and scalar(x) != 0 for c in (hc, lc) for x in c.inputs[2:]) or hc.inputs[1] != lc.inputs[1]
                or hc.attrs != lc.attrs or g.tensors[xh].ctype != "int8_t" or g.tensors[xl].ctype != "uint8_t"
                or g.tensors[xh].shape != g.tensors[xl].shape
                or any(g.tensors[n.outputs[0]].ctype not in CAST_TO for n in (ch, cl, m, add))
                or any(only(t) is not u for t, u in ((hc.outputs[0], ch), (ch.outputs[0], m), (m.outputs[0], add),
                                                     (lc.outputs[0], cl), (cl.outputs[0], add)))
                or not _one_pass(product_plan(g, hc), hc)):
            continue
        # the whole convolution on the int16 value, proved inside int32 (then so is each half's)
        tag = f"ev_s16_{merged}"
        shape = g.tensors[xh].shape
        ints = {f"{tag}_h64": "int64_t", f"{tag}_h256": "int64_t", f"{tag}_l64": "int64_t", f"{tag}_v": "int64_t",
                f"{tag}_x16": "int16_t"}  # int64 as the graph's element-wise ops (the C narrows them: ranges.py)
        for name, ct in ints.items():
            g.tensors[name] = Tensor(name, ct, shape)
        g.tensors[f"{tag}_k"] = Tensor(f"{tag}_k", "int64_t", (), np.array(256, np.int64))
        g.tensors[f"{tag}_y"] = Tensor(f"{tag}_y", "int32_t", g.tensors[hc.outputs[0]].shape)
        conv = Node("ConvInteger", f"{tag}_conv", [f"{tag}_x16", hc.inputs[1]], [f"{tag}_y"], dict(hc.attrs))  # zp 0
        r16 = dict(r)
        r16[f"{tag}_x16"] = (256 * r[xh][0] + r[xl][0], 256 * r[xh][1] + r[xl][1])
        if not (fits(r16[f"{tag}_x16"], (-(1 << 15), (1 << 15) - 1)) and fits(node_range(g, conv, r16), INT32)):
            for name in [*ints, f"{tag}_k", f"{tag}_y"]:
                del g.tensors[name]
            continue
        first = min(prod[hc.outputs[0]], prod[lc.outputs[0]])
        drop |= {prod[n.outputs[0]] for n in (hc, ch, m, lc, cl)} | {add_i}
        i64, i16 = TensorProto.INT64, TensorProto.INT16
        insert.setdefault(add_i, []).extend([
            Node("Cast", f"{tag}_cast_h", [xh], [f"{tag}_h64"], {"to": i64}),
            Node("Mul", f"{tag}_mul", [f"{tag}_h64", f"{tag}_k"], [f"{tag}_h256"], {}),
            Node("Cast", f"{tag}_cast_l", [xl], [f"{tag}_l64"], {"to": i64}),
            Node("Add", f"{tag}_add", [f"{tag}_h256", f"{tag}_l64"], [f"{tag}_v"], {}),
            Node("Cast", f"{tag}_cast16", [f"{tag}_v"], [f"{tag}_x16"], {"to": i16}),
            conv,
            Node("Cast", f"{tag}_cast_y", [f"{tag}_y"], [y], {"to": CAST_TO[g.tensors[y].ctype]})])
        assert first < add_i
        merged += 1
    if merged:
        nodes: list[Node] = []
        for i, n in enumerate(g.nodes):
            nodes.extend(insert.get(i, []))
            if i not in drop:
                nodes.append(n)
        g.nodes = nodes
    return merged
