"""Value ranges of an integer graph: for every tensor, an interval that holds every value it can take.

A forward interval analysis over the :class:`~.model.IntGraph`: the int8 input is ``[-128, 127]``,
a constant is ``[min, max]`` of its values, and each op maps its operands' intervals to the exact
interval of its result over all operand values in them (Add/Sub/Mul/Neg/Abs by their corners,
Div/Mod by the sign of the divisor, BitShift by its corners while the amount stays below the
width, the lowering's floor remainder ``a - floor(a / d) * d`` as ``[0, d - 1]``, Clip/Max/Min/Where
by their bounds, comparisons ``[0, 1]``, a reduction by its count, ConvInteger/MatMulInteger per output channel from the constant weights
and the input's interval). The graph computes in fixed-width integers that wrap, so a result
interval that leaves its type's range becomes the whole type range (wrapping may give any value).
Ops without a rule get their type's whole range: the analysis is sound, only sometimes loose.

The emitter uses it to compute a fused element-wise step in ``int32_t`` where every operand and
every intermediate provably fits (the ONNX graph is int64 throughout, most values are small):
the int32 results are then the int64 ones exactly.
"""

from __future__ import annotations

import numpy as np

from .model import IntGraph, Node
from .views import DATA_OPS

Interval = tuple[int, int]

TYPE_RANGE: dict[str, Interval] = {
    "int64_t": (-(1 << 63), (1 << 63) - 1), "uint64_t": (0, (1 << 64) - 1),
    "int32_t": (-(1 << 31), (1 << 31) - 1), "uint32_t": (0, (1 << 32) - 1),
    "int16_t": (-(1 << 15), (1 << 15) - 1), "uint16_t": (0, (1 << 16) - 1),
    "int8_t": (-128, 127), "uint8_t": (0, 255)}
INT32 = TYPE_RANGE["int32_t"]
BOOL_OUT = {"GreaterOrEqual", "Greater", "Less", "LessOrEqual", "Equal", "Not", "And", "Or"}


def fits(r: Interval, within: Interval = INT32) -> bool:
    return within[0] <= r[0] and r[1] <= within[1]


def _union(*rs: Interval) -> Interval:
    return min(r[0] for r in rs), max(r[1] for r in rs)


def _mul(a: Interval, b: Interval) -> Interval:
    c = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(c), max(c)


def _tdiv(a: int, b: int) -> int:
    """C's (and ONNX's) integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _div(a: Interval, b: Interval) -> Interval:
    if b[0] > 0 or b[1] < 0:  # trunc(a / b) is monotone in a and in b on a rectangle that misses b = 0: corners
        c = [_tdiv(x, y) for x in a for y in b]
        return min(c), max(c)
    if a[0] >= 0 and b[0] >= 0:  # a >= 0, b in {0} u [1, ..]: 0 (the C's value for b = 0) or in [0, a]
        return 0, a[1]
    m = max(abs(a[0]), abs(a[1]))  # the divisor may be 0 (the C gives 0) or +-1: |result| <= |a|
    return -m, m


def _mod(a: Interval, b: Interval, fmod: bool) -> Interval:
    m = max(abs(b[0]), abs(b[1]))
    if m == 0:
        return 0, 0
    if fmod:  # the sign of the dividend, |r| < |b| and |r| <= |a|
        lo = 0 if a[0] >= 0 else max(a[0], -(m - 1))
        hi = 0 if a[1] <= 0 else min(a[1], m - 1)
        return lo, hi
    if b[0] > 0:  # the sign of the divisor: [0, b - 1]; a itself where 0 <= a < b
        return (a[0], a[1]) if a[0] >= 0 and a[1] < b[0] else (0, b[1] - 1)
    if b[1] < 0:
        return (a[0], a[1]) if a[1] <= 0 and a[0] > b[1] else (b[0] + 1, 0)
    return -(m - 1), m - 1


def _bitshift(a: Interval, s: Interval, left: bool, ctype: str) -> Interval:
    """ONNX BitShift on an unsigned type of ``bits`` width: ``a << s`` (wrapping modulo 2**bits) or ``a >> s``.

    A shift by ``bits`` or more is undefined in C and C++: the emitted C gives 0 (``ev_shr_u64`` / ``ev_shl_u64``),
    ONNX Runtime shifts by ``s mod bits`` on x86. Right: ``a >> s`` is at most ``a`` under either reading, so
    ``[0, a1]`` bounds it; left: any value of the type. Within ``[0, bits)`` both are monotone in ``a`` and in
    ``s`` (the shifted-out bits only ever lower a right shift, a left one only ever raises it while nothing
    wraps): the corners; a left shift whose top corner leaves the type is caught by the caller's type clamp."""
    whole = TYPE_RANGE.get(ctype, TYPE_RANGE["uint64_t"])
    bits = whole[1].bit_length()
    if whole[0] != 0 or a[0] < 0 or s[0] < 0:  # BitShift is unsigned-only: nothing to prove otherwise
        return whole
    if s[1] >= bits:
        return whole if left else (0, a[1])
    return (a[0] << s[0], a[1] << s[1]) if left else (a[0] >> s[1], a[1] >> s[0])


def _products(g: IntGraph, n: Node, r: dict[str, Interval]) -> Interval:
    """ConvInteger / MatMulInteger: per output channel, the sum of each weight's (w - zw) * (x - zx) interval
    (with 0: a padded position contributes nothing)."""
    def zp(i: int) -> int | None:
        z = n.inputs[i] if len(n.inputs) > i else ""
        if not z:
            return 0
        v = g.tensors[z].value
        return None if v is None or np.asarray(v).size != 1 else int(np.asarray(v).reshape(-1)[0])

    x, w = n.inputs[0], n.inputs[1]
    zx, zw = zp(2), zp(3)
    if zx is None or zw is None:
        return TYPE_RANGE["int32_t"]
    xr = (r[x][0] - zx, r[x][1] - zx)
    wt = g.tensors[w]
    if wt.value is None and n.op == "ConvInteger":
        return TYPE_RANGE["int32_t"]
    if wt.value is None:  # a computed operand: K terms of the product interval
        k = g.tensors[x].shape[-1]
        p = _mul(xr, (r[w][0] - zw, r[w][1] - zw))
        return k * min(p[0], 0), k * max(p[1], 0)
    v = np.asarray(wt.value, np.int64) - zw
    if n.op == "ConvInteger":
        per = v.reshape(v.shape[0], -1)  # output channel x (c, i, j)
    else:  # MatMulInteger: B is K x N (batched: ... x K x N): one row per output column
        per = np.moveaxis(v, -2, -1).reshape(-1, v.shape[-2])
    pos, neg = np.where(per > 0, per, 0).sum(axis=1), np.where(per < 0, per, 0).sum(axis=1)
    # a term w * x lies in [min(w*lo, w*hi, 0), max(w*lo, w*hi, 0)]: sum w>0 and w<0 separately
    lo_x, hi_x = min(xr[0], 0), max(xr[1], 0)
    lo = [int(p) * lo_x + int(q) * hi_x for p, q in zip(pos.tolist(), neg.tolist())]
    hi = [int(p) * hi_x + int(q) * lo_x for p, q in zip(pos.tolist(), neg.tolist())]
    return min(lo), max(hi)


def _positive_const(g: IntGraph, name: str) -> int | None:
    """The largest value of constant int64 ``name`` if every value of it is > 0, else None."""
    t = g.tensors.get(name)
    if t is None or t.value is None or t.ctype != "int64_t" or not np.asarray(t.value).size:
        return None
    v = np.asarray(t.value, np.int64)
    return int(v.max()) if bool(np.all(v > 0)) else None


def _floor_remainder(g: IntGraph, n: Node, r: dict[str, Interval], prod: dict[str, Node]) -> Interval | None:
    """``a - floor(a / d) * d`` as the lowering writes it (``Sub(a, Mul(Div(Sub(a, Mod(a, d)), d), d))``, d a
    constant > 0, fmod = 0; ``Builder.floor_div`` then a multiply back): ``Mod(a, d)``, in ``[0, max(d) - 1]``.

    Exact, not just bounded, when nothing wraps: ``Mod(a, d)`` is in ``[0, d - 1]``, so ``a - Mod(a, d)`` is the
    multiple of ``d`` in ``(a - d, a]``, inside int64 when ``a >= INT64_MIN + max(d)``; dividing it by ``d`` is
    exact and multiplying back gives it again. All operands broadcast the same ``d`` the same way, so each
    element meets one divisor throughout. None where the pattern or a condition does not hold."""
    if len(n.inputs) != 2 or g.tensors[n.outputs[0]].ctype != "int64_t":
        return None
    a, mul = n.inputs[0], prod.get(n.inputs[1])
    if mul is None or mul.op != "Mul" or a not in r:
        return None
    for q_name, d in (mul.inputs, mul.inputs[::-1]):
        q = prod.get(q_name)
        if q is None or q.op != "Div" or q.inputs[1] != d:
            continue
        sub = prod.get(q.inputs[0])
        if sub is None or sub.op != "Sub" or sub.inputs[0] != a:
            continue
        mod = prod.get(sub.inputs[1])
        if mod is None or mod.op != "Mod" or int(mod.attrs.get("fmod", 0)) or mod.inputs != [a, d]:
            continue
        dmax = _positive_const(g, d)
        if dmax is None or r[a][0] < TYPE_RANGE["int64_t"][0] + dmax or \
                any(g.tensors[x].ctype != "int64_t" for x in (a, mul.outputs[0], q.outputs[0], sub.outputs[0])):
            continue
        return 0, dmax - 1
    return None


def node_range(g: IntGraph, n: Node, r: dict[str, Interval], prod: dict[str, Node] | None = None) -> Interval:
    """The interval of ``n``'s (first) output from its inputs' intervals ``r``, before the type clamp; ``prod``
    (each tensor's producer) lets a rule see the pattern ``n`` ends (:func:`_floor_remainder`)."""
    op = n.op
    a = [r[x] if x else None for x in n.inputs]
    out_ct = g.tensors[n.outputs[0]].ctype
    if op in BOOL_OUT:
        return 0, 1
    if op == "Add":
        return a[0][0] + a[1][0], a[0][1] + a[1][1]
    if op == "Sub":
        rem = _floor_remainder(g, n, r, prod) if prod else None
        lo, hi = a[0][0] - a[1][1], a[0][1] - a[1][0]
        return (max(lo, rem[0]), min(hi, rem[1])) if rem else (lo, hi)
    if op == "Mul":
        return _mul(a[0], a[1])
    if op == "Neg":
        return -a[0][1], -a[0][0]
    if op == "Abs":
        lo, hi = a[0]
        return (lo, hi) if lo >= 0 else ((-hi, -lo) if hi <= 0 else (0, max(-lo, hi)))
    if op == "Div":
        return _div(a[0], a[1])
    if op == "Mod":
        return _mod(a[0], a[1], bool(int(n.attrs.get("fmod", 0))))
    if op in ("Max", "Min"):
        f = max if op == "Max" else min
        return f(x[0] for x in a if x), f(x[1] for x in a if x)
    if op == "Clip":
        lo, hi = a[0]
        if len(a) > 1 and a[1]:
            lo, hi = max(lo, a[1][0]), max(hi, a[1][1])
        if len(a) > 2 and a[2]:
            lo, hi = min(lo, a[2][0]), min(hi, a[2][1])
        return lo, hi
    if op == "Where":
        return _union(a[1], a[2])
    if op == "Cast":
        if out_ct == "uint8_t" and int(n.attrs.get("to", 0)) == 9:
            return 0, 1
        return a[0] if fits(a[0], TYPE_RANGE.get(out_ct, INT32)) else TYPE_RANGE.get(out_ct, INT32)
    if op == "ReduceSum":
        cnt = g.tensors[n.inputs[0]].size // max(g.tensors[n.outputs[0]].size, 1)
        return cnt * a[0][0], cnt * a[0][1]
    if op in ("ReduceMax", "ReduceMin"):
        return a[0]
    if op in ("ConvInteger", "MatMulInteger"):
        return _products(g, n, r)
    if op == "BitShift":
        d = n.attrs.get("direction", b"")
        return _bitshift(a[0], a[1], (d.decode() if isinstance(d, bytes) else d) == "LEFT", out_ct)
    if op in DATA_OPS:
        data = list(range(len(n.inputs))) if op == "Concat" else [0]
        rs = [a[i] for i in data if a[i]]
        if op == "Pad":
            rs.append((0, 0))
        return _union(*rs)
    return TYPE_RANGE.get(out_ct, TYPE_RANGE["int64_t"])


def value_ranges(g: IntGraph) -> dict[str, Interval]:
    """Every tensor's interval (inputs, constants, node outputs) of the integer graph ``g``."""
    r: dict[str, Interval] = {}
    for name, t in g.tensors.items():
        if t.value is not None and t.value.size and t.ctype in TYPE_RANGE:
            v = np.asarray(t.value)
            r[name] = (int(v.min()), int(v.max()))
    r[g.input_int8] = TYPE_RANGE[g.tensors[g.input_int8].ctype]
    prod: dict[str, Node] = {}
    for n in g.nodes:
        whole = [TYPE_RANGE.get(g.tensors[o].ctype, TYPE_RANGE["int64_t"]) for o in n.outputs]
        known = all(not x or x in r for x in n.inputs)
        res = node_range(g, n, r, prod) if known else whole[0]
        prod.update((o, n) for o in n.outputs)
        for o, full in zip(n.outputs, whole):
            out = res if n.op in DATA_OPS or o == n.outputs[0] else full
            r[o] = out if fits(out, full) else full  # wrapped: any value of the type
    return r
