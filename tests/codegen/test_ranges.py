"""The value-range analysis (edgevis/codegen/ranges.py) is sound, and the int32 element-wise steps it allows are
bit-exact: each interval rule against brute force over small operand intervals; every tensor of a small
integer-only graph, computed by ONNX Runtime on random and extreme inputs, inside its interval; a step whose
int32 product would overflow (127 * 2**25 before a shift back into range) kept in int64 (a widening product),
the others narrowed; the int64 tensors proved inside int32 stored as int32; and the C equal to ONNX Runtime bit
for bit (-O3 -march=native, and -O0 under ASan + UBSan)."""

import itertools
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.codegen import emit_c
from edgevis.codegen.model import IntGraph, Node, Tensor, read_integer_graph
from edgevis.codegen.cwriter import CWriter
from edgevis.codegen.ranges import _floor_remainder, fits, node_range, value_ranges
from edgevis.codegen.schedule import schedule

from cbuild import build, ort_int8_and_logits, run, save_integer_file


def _tdiv(a, b):
    return 0 if b == 0 else (-(abs(a) // abs(b)) if (a < 0) != (b < 0) else abs(a) // abs(b))


def _mod(a, b, fmod):
    if b == 0:
        return 0
    r = a - _tdiv(a, b) * b  # the sign of the dividend (C's %)
    return r if fmod or r == 0 or (r < 0) == (b < 0) else r + b


OPS = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b, "Div": _tdiv,
       "Mod": lambda a, b: _mod(a, b, False), "Max": max, "Min": min}


def _graph_of(op, ranges, attrs=None, arity=2):
    ins = [f"i{k}" for k in range(arity)]
    ts = {x: Tensor(x, "int64_t", (1,)) for x in ins + ["y"]}
    g = IntGraph("x", "i0", "y", 1.0, 1.0, ts, [Node(op, op, ins, ["y"], attrs or {})])
    return g, dict(zip(ins, ranges))


@pytest.mark.parametrize("op", sorted(OPS) + ["FMod", "Neg", "Abs", "Clip"])
def test_interval_rules_hold_every_value(op):
    rng = np.random.default_rng(1)
    for _ in range(150):
        rs = []
        for _k in range(3):
            lo = int(rng.integers(-40, 40))
            rs.append((lo, lo + int(rng.integers(0, 25))))
        if op in ("Neg", "Abs"):
            g, r = _graph_of(op, rs[:1], arity=1)
            got = node_range(g, g.nodes[0], r)
            vals = [-a if op == "Neg" else abs(a) for a in range(rs[0][0], rs[0][1] + 1)]
        elif op == "Clip":
            g, r = _graph_of(op, rs, arity=3)
            got = node_range(g, g.nodes[0], r)
            vals = [min(max(a, lo), hi) for a, lo, hi in itertools.product(*(range(x, y + 1) for x, y in rs))]
        else:
            g, r = _graph_of("Mod" if op == "FMod" else op, rs[:2], {"fmod": 1} if op == "FMod" else None)
            got = node_range(g, g.nodes[0], r)
            f = (lambda a, b: _mod(a, b, True)) if op == "FMod" else OPS[op]
            vals = [f(a, b) for a in range(rs[0][0], rs[0][1] + 1) for b in range(rs[1][0], rs[1][1] + 1)]
            if op in ("Div", "Mod", "FMod") and rs[1][0] <= 0 <= rs[1][1]:
                vals.append(0)  # the C's value for a zero divisor
        assert got[0] <= min(vals) and max(vals) <= got[1], (op, rs, got, min(vals), max(vals))
        exact = op in ("Add", "Sub", "Mul", "Max", "Min", "Neg", "Abs", "Clip") or \
            (op == "Div" and not rs[1][0] <= 0 <= rs[1][1])
        if exact:
            assert got == (min(vals), max(vals)), (op, rs, got)


@pytest.mark.parametrize("ctype", ["uint8_t", "uint64_t"])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_rule_holds_every_value(ctype, direction):
    """BitShift (unsigned only) against brute force over small intervals, with a shift amount that may reach the
    width: the emitted C gives 0 there, ONNX Runtime shifts by the amount modulo the width; the interval holds
    both. On uint8 a left shift wraps early: a result that could leave the type is the whole type."""
    bits = 8 if ctype == "uint8_t" else 64
    top = (1 << bits) - 1
    rng = np.random.default_rng(2)
    ts = {x: Tensor(x, ctype, (1,)) for x in ("a", "s", "y")}
    node = Node("BitShift", "n", ["a", "s"], ["y"], {"direction": direction.encode()})
    g = IntGraph("x", "a", "y", 1.0, 1.0, ts, [node])
    tight = 0
    for k in range(300):
        lo = int(rng.integers(0, 300 if bits == 64 else 200)) >> int(rng.integers(0, 4))
        ra = (lo, min(lo + int(rng.integers(0, 60)), top))
        s0 = int(rng.integers(0, bits + 3 if k % 3 == 0 else 7))
        rs = (s0, s0 + int(rng.integers(0, 4)))
        got = node_range(g, g.nodes[0], {"a": ra, "s": rs})
        got = got if fits(got, (0, top)) else (0, top)  # value_ranges' type clamp
        vals = set()
        for a in range(ra[0], ra[1] + 1):
            for sh in range(rs[0], rs[1] + 1):
                for amount in ({sh} if sh < bits else {None, sh % bits}):  # the C's 0, ORT's modulo
                    if amount is None:
                        vals.add(0)
                    else:
                        vals.add(((a << amount) & top) if direction == "LEFT" else a >> amount)
        assert got[0] <= min(vals) and max(vals) <= got[1], (direction, ctype, ra, rs, got, min(vals), max(vals))
        if rs[1] < bits and (direction == "RIGHT" or ra[1] << rs[1] <= top):
            assert got == (min(vals), max(vals)), (direction, ra, rs, got)  # exact within the width
            tight += 1
    assert tight > 30


def _remainder_graph(d, a_shape=(2, 3)):
    """``a - floor(a / d) * d`` as Builder.floor_div and a multiply back write it (Exp2's fraction, split16's low
    byte); ``d`` a constant (scalar or per column)."""
    ts = {x: Tensor(x, "int64_t", a_shape) for x in ("a", "md", "sb", "q", "m", "y")}
    ts["d"] = Tensor("d", "int64_t", np.shape(d), np.asarray(d, np.int64))
    nodes = [Node("Mod", "n0", ["a", "d"], ["md"], {"fmod": 0}), Node("Sub", "n1", ["a", "md"], ["sb"], {}),
             Node("Div", "n2", ["sb", "d"], ["q"], {}), Node("Mul", "n3", ["q", "d"], ["m"], {}),
             Node("Sub", "n4", ["a", "m"], ["y"], {})]
    return IntGraph("x", "a", "y", 1.0, 1.0, ts, nodes)


@pytest.mark.parametrize("d", [1, 7, 65536, [3, 16, 5]])
def test_floor_remainder_rule_is_the_remainder(d):
    """The pattern's result equals ``a mod d`` (numpy's floor modulo: ONNX Mod with fmod=0 by d > 0) for every a in
    the interval, negative ones included, so ``[0, max(d) - 1]`` holds it; the plain Sub rule alone would give
    the much wider ``[lo - hi*, hi - lo*]``."""
    g = _remainder_graph(d)
    dv = np.asarray(d, np.int64)
    for lo, width in ((-70000, 140000), (-5, 3), (123456789, 10), (-(1 << 40), 1000)):
        a = np.arange(lo, lo + width, dtype=np.int64)[:, None].repeat(3, axis=1)
        md = np.fmod(np.fmod(a, dv) + dv, dv)  # ONNX Mod fmod=0 by d > 0
        q = (a - md) // dv  # exact: a - md is a multiple of d
        y = a - q * dv
        assert np.array_equal(y, np.mod(a, dv))
        r = {"a": (lo, lo + width - 1), "d": (int(dv.min()), int(dv.max()))}
        for n in g.nodes:
            r[n.outputs[0]] = node_range(g, n, r, {m.outputs[0]: m for m in g.nodes[:g.nodes.index(n)]})
        assert 0 <= r["y"][0] and r["y"][1] <= int(dv.max()) - 1, r["y"]
        assert r["y"][0] <= int(y.min()) and int(y.max()) <= r["y"][1]
    # not the pattern, or a divisor that may be <= 0, or an a near INT64_MIN (a - Mod(a, d) could wrap): no rule
    bad = _remainder_graph(7)
    bad.nodes[0].attrs["fmod"] = 1
    neg = _remainder_graph([3, -1, 5])
    for gg, ra in ((bad, (-100, 100)), (neg, (-100, 100)), (_remainder_graph(7), (-(1 << 63), 0)),
                   (_remainder_graph(7), (-(1 << 63) + 6, 0))):
        r = {"a": ra, "d": (int(np.min(gg.tensors["d"].value)), int(np.max(gg.tensors["d"].value)))}
        for n in gg.nodes:
            r[n.outputs[0]] = node_range(gg, n, r, {m.outputs[0]: m for m in gg.nodes[:gg.nodes.index(n)]})
        assert _floor_remainder(gg, gg.nodes[-1], r, {m.outputs[0]: m for m in gg.nodes}) is None
    ok = _remainder_graph(7)  # the first a far enough from INT64_MIN
    r = {"a": (-(1 << 63) + 7, 0), "d": (7, 7)}
    assert _floor_remainder(ok, ok.nodes[-1], r, {m.outputs[0]: m for m in ok.nodes}) == (0, 6)


C, H, W = 4, 6, 6


def _model() -> onnx.ModelProto:
    inits, nodes = [], []

    def const(v, name, dtype=np.int64):
        inits.append(numpy_helper.from_array(np.asarray(v, dtype), name))
        return name

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    nodes.append(helper.make_node("QuantizeLinear", ["x", const(0.02, "qs", np.float32), const(0, "z", np.int8)],
                                  ["q"]))
    c = node("Cast", ["q"], "c", to=TensorProto.INT64)
    # step A (narrowed): per-channel multipliers, floor divisions (scalar and per-channel powers of two, and by 7),
    # truncating Div, Mod, Neg, Abs, Max, Min, Clip, Where
    m = node("Mul", [c, const(np.array([3000, -2900, 17, 1]).reshape(1, C, 1, 1), "mult")], "m")
    a = node("Add", [m, const(12345, "k")], "a")
    d = node("Div", [a, const(7, "seven")], "d")
    md = node("Mod", [a, const(5, "five")], "md")
    fl = node("Div", [node("Sub", [a, node("Mod", [a, const(16, "d16")], "a_m16")], "a_s16"), "d16"], "fl")
    dc = const(np.array([2, 64, 1, 1024]).reshape(1, C, 1, 1), "dch")
    fl2 = node("Div", [node("Sub", [a, node("Mod", [a, dc], "a_mc")], "a_sc"), dc], "fl2")
    f7 = node("Div", [node("Sub", [a, node("Mod", [a, "seven"], "a_m7")], "a_s7"), "seven"], "f7")
    mx = node("Max", [node("Abs", [d], "ab"), md], "mx")
    mn = node("Min", [node("Neg", [fl], "ng"), mx], "mn")
    cl = node("Clip", [mn, const(-1000, "lo"), const(1000, "hi")], "cl")
    wh = node("Where", [node("Greater", [cl, const(0, "zero")], "gt"), cl, d], "wh")
    # a uint64 shift in the same loop (its nodes keep 64 bits, the others still narrow): 2**clip(c, 0, 20) + a
    u = node("Cast", [node("Clip", [c, "zero", const(20, "twenty")], "c20")], "u", to=TensorProto.UINT64)
    p2 = node("BitShift", [const(1, "one_u", np.uint64), u], "p2", direction="LEFT")
    t0 = node("Add", [node("Cast", [p2], "p2_64", to=TensorProto.INT64), a], "t0")
    # right shifts by clip(c, 0, 40) (amounts past 31, as the lowering's exp may shift): of a value proven inside
    # int32 (held in int32 locals), and of one that is not (kept uint64)
    s40 = node("Cast", [node("Clip", [c, "zero", const(40, "forty")], "c40")], "s40", to=TensorProto.UINT64)
    va = node("Cast", [node("Clip", [a, "zero", const(1 << 30, "p30")], "a_pos")], "va", to=TensorProto.UINT64)
    sr = node("Cast", [node("BitShift", [va, s40], "sr_u", direction="RIGHT")], "sr", to=TensorProto.INT64)
    vw = node("Cast", [node("Mul", ["a_pos", const(1 << 20, "p20w")], "a_big")], "vw", to=TensorProto.UINT64)
    wr = node("Div", [node("Cast", [node("BitShift", [vw, s40], "wr_u", direction="RIGHT")], "wr_64",
                           to=TensorProto.INT64), "p20w"], "wr")
    t = node("Add", [t0, node("Add", [sr, wr], "srw")], "t")
    s = node("Add", [node("Add", [wh, fl2], "s0"), f7], "s")
    r = node("ReduceSum", [s, const([2, 3], "ax")], "r", keepdims=1)
    # step B (kept in int64): 127 * 2**25 leaves int32, the floor shift by 20 brings it back
    rm = node("ReduceMax", [c, const([1], "ax1")], "rm", keepdims=1)
    big = node("Mul", [rm, const(1 << 25, "p25")], "big")
    sh = node("Div", [node("Sub", [big, node("Mod", [big, const(1 << 20, "p20")], "b_m")], "b_s"), "p20"], "sh")
    flat = []
    for x in (s, r, sh, t):
        flat.append(node("Reshape", [x, const([1, -1], f"{x}_shape")], f"{x}_f"))
    cat = node("Concat", flat, "cat", axis=1)
    out = node("Cast", [cat], "cat32", to=TensorProto.INT32)
    nodes.append(helper.make_node("DequantizeLinear", [out, const(0.5, "so", np.float32), const(0, "zo", np.int32)],
                                  ["y"]))
    n = 2 * C * H * W + C + H * W
    g = helper.make_graph(nodes, "ranges", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _inputs():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, C, H, W)).astype(np.float32) * s for s in (0.5, 3.0)]
    xs += [np.full((1, C, H, W), v, np.float32) for v in (10.0, -10.0, 0.0)]  # the int8 extremes
    return xs


@pytest.fixture(scope="module")
def ranges_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranges")
    path = save_integer_file(_model(), tmp / "ranges.integer_only.onnx", "ranges")
    return path, tmp


def test_every_computed_value_lies_in_its_interval(ranges_file):
    import onnxruntime as ort

    path, _ = ranges_file
    m = onnx.load(str(path))
    g = read_integer_graph(path, m)
    r = value_ranges(g)
    names = [o for n in g.nodes for o in n.outputs]
    types = {n: {"int64_t": TensorProto.INT64, "int32_t": TensorProto.INT32, "uint8_t": TensorProto.BOOL,
                 "uint64_t": TensorProto.UINT64}[
        g.tensors[n].ctype] for n in names}
    m.graph.output.extend(helper.make_tensor_value_info(n, types[n], None) for n in names)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    seen = {n: [] for n in names}
    for x in _inputs():
        for n, v in zip(names, s.run(names, {"x": x})):
            seen[n].append(np.asarray(v).astype(object).reshape(-1))  # Python ints: uint64 as is
    for n in names:
        v = np.concatenate(seen[n])
        assert r[n][0] <= v.min() and v.max() <= r[n][1], (n, r[n], v.min(), v.max())
    # the analysis is tight enough to matter: step A fits int32, step B's product does not (its shift does)
    assert all(fits(r[n]) for n in ("m", "a", "fl", "fl2", "f7", "wh", "s", "sh"))
    assert not fits(r["big"]) and fits(r["big"], (-(1 << 63), (1 << 63) - 1))
    assert r["c"] == (-128, 127) and r["rm"] == (-128, 127) and r["gt"] == (0, 1)


@pytest.mark.parametrize("flags", [("-O3", "-march=native"),
                                   ("-O0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")])
def test_narrowed_steps_equal_ort(ranges_file, flags):
    path, tmp = ranges_file
    g = read_integer_graph(path, onnx.load(str(path)))
    plan = schedule(g)
    w = CWriter(g, plan, "ranges")
    step = {m.name: s for s in plan.steps if s.kind == "ew" for m in s.nodes}
    assert len(step["m"].nodes) > 20 and step["m"] is step["p2"]  # step A, fused whole
    prod = {o: m for m in step["m"].nodes for o in m.outputs}
    in32 = {m.name for m in step["m"].nodes if w._node32(m, prod)}
    assert {"m", "a", "fl", "fl2", "f7", "wh", "s", "c20"} <= in32  # in int32, beside the uint64 shift
    # the uint64 nodes are never int32 nodes (the shifts of values proven inside int32 are held in int32 locals:
    # see below), a sum of their results back in int64 is
    assert not in32 & {"u", "p2", "p2_64", "sr", "sr_u", "wr_u"} and {"t0", "srw", "t"} <= in32
    held = set()
    assert {m.name for m in step["m"].nodes if w._held32(m, held, {x: x for x in g.tensors}) is not None
            and not held.add(m.outputs[0])} == {"u", "p2", "s40", "va", "sr_u"}  # not vw, wr_u: a_big > 2**31
    assert not w.narrow(step["big"])  # step B keeps int64: its product 127 * 2**25 would wrap in int32
    # stored as int32: the int64 tensors proved inside int32, and a data movement's sources and output together
    # where all of them are (s, r, sh, t -> Concat; a constant among them keeps the group int64: the DeiT
    # fixture's class token, test_bitexact)
    assert plan.storage.get("c") == plan.storage.get("rm") == "int32_t"
    assert all(plan.storage.get(x) == "int32_t" for x in ("s", "r", "sh", "t", "cat"))
    lib = emit_c(path, tmp / "c")
    text = lib.files["model"].read_text()
    assert "ev_mul32(" in text and "ev_floor_shr32(" in text and "ev_floordiv32(" in text and "ev_shl32u(" in text \
        and "ev_shr32u(" in text and "ev_shr_u64(" in text
    # step B: 127 * 2**25 as the exact widening product, the floor shift in int64, its result held in int32
    assert "ev_mulw(" in text and "= (int32_t)(ev_floor_shr(" in text
    assert "uint32_t acc = 0;" in text  # ReduceSum r: its sum proved inside int32, summed modulo 2**32
    xs = _inputs()
    x8, logits = ort_int8_and_logits(path, xs)
    got = run(build(lib, tmp / f"r{flags[0]}", flags=flags), x8.reshape(len(xs), -1), lib.classes)
    assert np.array_equal(got, logits.reshape(len(xs), -1).astype(np.int32))
    assert len(np.unique(got)) > 50


def _floor_div(a, b):
    return a // b  # Python's // is floor division


@pytest.mark.parametrize("flags", [("-O3", "-march=native"),
                                   ("-O0", "-fsanitize=undefined", "-fno-sanitize-recover=all")])
def test_prelude_shift_and_division_helpers_at_the_edges(tmp_path, flags):
    """The prelude's floor shifts, floor quotients (one division; a multiply-high by an invariant divisor's
    reciprocal), long division and int32-held uint64 shifts against Python on edge values (INT64_MIN/MAX,
    INT32_MIN/MAX, 0, +-1, powers of two and their neighbours), every shift amount (past 31 and 63 where the
    helper takes it), at -O3 -march=native and under UBSan."""
    from edgevis.codegen.ckernels import PRELUDE

    e64 = sorted({v for b in (0, 1, 7, 15, 16, 31, 32, 33, 40, 62, 63)
                  for v in (1 << b, (1 << b) - 1, -(1 << b), -(1 << b) + 1, -(1 << b) - 1)}
                 | {3, -3, 5, -5, 123456789, -987654321})
    e64 = [v for v in e64 if -(1 << 63) <= v < (1 << 63)]
    e32 = [v for v in e64 if -(1 << 31) <= v < (1 << 31)]
    dpos = [v for v in e64 if v > 0]
    d32 = [v for v in dpos if v < (1 << 31)]
    u32 = sorted({v % (1 << 32) for v in e32} | {(1 << 32) - 1, (1 << 32) - 2, 65536 * 65535, 196605, 65537})
    arr = lambda name, ct, vs: f"static const {ct} {name}[{len(vs)}] = {{{', '.join(_c_lit(v, ct) for v in vs)}}};"
    src = "\n".join(["#include <stdint.h>", "#include <stdio.h>", "#include <inttypes.h>", PRELUDE,
                     arr("A", "int64_t", e64), arr("B", "int32_t", e32), arr("D", "int64_t", dpos),
                     arr("E", "int32_t", d32), arr("U", "uint32_t", u32), r"""
int main(void) {
    int nA = sizeof A / sizeof A[0], nB = sizeof B / sizeof B[0];
    int nD = sizeof D / sizeof D[0], nE = sizeof E / sizeof E[0], nU = sizeof U / sizeof U[0];
    int64_t r64[64]; int32_t r32[64];
    for (int i = 0; i < nA; i++) {
        for (int k = 0; k < 64; k++) r64[k] = ev_floor_shr(A[i], k);
        for (int k = 0; k < 64; k++) printf("fs %" PRId64 " %d %" PRId64 "\n", A[i], k, r64[k]);
        for (int j = 0; j < nD; j++) {
            uint64_t m = UINT64_C(0xFFFFFFFFFFFFFFFF) / (uint64_t)D[j];
            printf("fd %" PRId64 " %" PRId64 " %" PRId64 "\n", A[i], D[j], ev_floordiv(A[i], D[j]));
            printf("fi %" PRId64 " %" PRId64 " %" PRId64 "\n", A[i], D[j], ev_floordiv_inv(A[i], (uint64_t)D[j], m));
            printf("mh %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", (uint64_t)A[i], m, ev_mulhi_u64((uint64_t)A[i], m));
        }
    }
    for (int i = 0; i < nB; i++) {
        for (int k = 0; k < 64; k++) r32[k] = ev_floor_shr32(B[i], k);
        for (int k = 0; k < 64; k++) printf("fs32 %" PRId32 " %d %" PRId32 "\n", B[i], k, r32[k]);
        for (int j = 0; j < nE; j++)
            printf("fd32 %" PRId32 " %" PRId32 " %" PRId32 "\n", B[i], E[j], ev_floordiv32(B[i], E[j]));
        if (B[i] >= 0)
            for (int j = 0; j < nB; j++)
                printf("sh %" PRId32 " %" PRId32 " %" PRId32 " %" PRId32 "\n", B[i], B[j], ev_shr32u(B[i], B[j]),
                       ev_shl32u(B[i], B[j]));
    }
    for (int i = 0; i < nU; i++)
        for (int j = 0; j < nU; j++) {
            uint32_t n = U[i], d = U[j], q;
            int B = 1;
            if (d == 0) continue;
            q = n / d;
            while (B < 32 && (q >> B) != 0) B++;  /* the fewest steps the quotient allows */
            printf("ud %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", n, d, ev_udiv_bits(n, d, B),
                   ev_udiv_bits(n, d, 32));
        }
    return 0;
}
"""])
    c = tmp_path / "edges.c"
    c.write_text(src)
    exe = tmp_path / "edges"
    subprocess.run(["gcc", "-std=c99", *flags, str(c), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    seen = {"fs": 0, "fd": 0, "fi": 0, "mh": 0, "fs32": 0, "fd32": 0, "sh": 0, "ud": 0}
    for line in filter(None, out):
        kind, *v = line.split()
        v = [int(x) for x in v]
        seen[kind] += 1
        if kind in ("fs", "fs32"):
            assert v[2] == v[0] >> v[1], line  # Python's >> on ints is floor division by 2**k
        elif kind == "mh":
            assert v[2] == (v[0] * v[1]) >> 64, line
        elif kind in ("fd", "fi", "fd32"):
            assert v[2] == _floor_div(v[0], v[1]), line
        elif kind == "ud":  # the long division with the fewest steps its quotient allows, and with 32
            assert v[2] == v[3] == v[0] // v[1], line
        else:  # the uint64 amount the int32 stands for: its value mod 2**64; ev_shr_u64 / ev_shl_u64 give 0 from 64
            x, s = v[0], v[1] % (1 << 64)
            assert v[2] == (x >> s if s < 64 else 0), line
            if s < 64 and (x << s) < (1 << 31):  # the left form where its result is proven inside int32
                assert v[3] == x << s, line
    assert all(n > 100 for n in seen.values()), seen


def _c_lit(v, ct):
    if ct == "int64_t":
        return "(-INT64_C(9223372036854775807) - 1)" if v == -(1 << 63) else f"INT64_C({v})"
    if ct == "uint32_t":
        return f"UINT32_C({v})"
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)
