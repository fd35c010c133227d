"""C text for each scheduled step: fused element-wise loops, reductions, int8 products, strided copies."""

from __future__ import annotations

import numpy as np

from .ckernels import SHORT, conv_kernel
from .gemm import (MR, U8_BIAS, dw_kernel, gemm_kernel, gemm_u8_kernel, mm16_kernels, mm_kernels, pack_cols16, pack_kernels,
                   pack_rows, packu_kernels, Gemm, product_plan, round_up, u8_correction, vnni16_pw_kernels, vnni_block,
                   vnni_pw_kernels)
from .model import NP_C_TYPES, CodegenError, IntGraph, Node, Tensor
from .ranges import INT32, fits, value_ranges
from .schedule import Plan, Step
from .views import MASK, TAG

INT64_MIN = -(1 << 63)


def literal(v: int, ctype: str) -> str:
    v = int(v)
    if ctype == "uint64_t":
        return f"UINT64_C({v % (1 << 64)})"
    if ctype == "int64_t":
        return "(-INT64_C(9223372036854775807) - 1)" if v == INT64_MIN else f"INT64_C({v})"
    return f"(({ctype}){v})"


def _contig(shape: tuple[int, ...]) -> list[int]:
    s, acc = [], 1
    for n in reversed(shape):
        s.append(acc)
        acc *= n
    return list(reversed(s))


def _bcast(shape: tuple[int, ...], loop: tuple[int, ...]) -> list[int]:
    """Strides of a contiguous tensor of ``shape`` read at every index of ``loop`` (numpy broadcasting)."""
    full = (1,) * (len(loop) - len(shape)) + tuple(shape)
    st = _contig(full)
    return [0 if n == 1 and m != 1 else s for n, m, s in zip(full, loop, st)]


def _merge(dims: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge neighbours every operand walks contiguously."""
    keep = [d for d, n in enumerate(dims) if n != 1]
    nd = [dims[d] for d in keep]
    ns = [[s[d] for d in keep] for s in strides]
    i = len(nd) - 2
    while i >= 0:
        if all(s[i] == s[i + 1] * nd[i + 1] for s in ns):
            nd[i] *= nd[i + 1]
            del nd[i + 1]
            for s in ns:
                s[i] = s[i + 1]
                del s[i + 1]
        i -= 1
    return (nd or [1]), [s or [0] for s in ns]


def _loops(dims: list[int], var: str = "i") -> tuple[str, str]:
    head = "".join(f"for (long {var}{d} = 0; {var}{d} < {n}; {var}{d}++) " for d, n in enumerate(dims))
    return head, var


def _offset(strides: list[int], var: str = "i", base: int = 0) -> str:
    terms = [f"{var}{d}" if s == 1 else f"{var}{d} * {s}" for d, s in enumerate(strides) if s != 0]
    if base:
        terms.insert(0, str(base))
    return " + ".join(terms) or "0"


class CWriter:
    def __init__(self, g: IntGraph, plan: Plan, name: str) -> None:
        self.g, self.plan, self.name = g, plan, name
        self.weights: dict[str, tuple[str, np.ndarray, str]] = {}  # tensor -> (symbol, values, ctype)
        self.kernels: dict[str, str] = {}
        self.body: list[str] = []
        self._nstep = 0
        self._label = ""
        self.ranges = plan.ranges or value_ranges(g)
        self._sfx = ""  # "32" while a fused element-wise step computes in int32 (the helpers' suffix)
        self._divides = False  # set by _expr when the expression it returns divides by a computed divisor
        self._hoist: list[str] = []  # per-chunk declarations of the element-wise step being written
        self._inner = 0  # its innermost loop's index
        self._fused: dict[int, str] = {}  # element-wise steps written inside the convolution before them: label

    # ------------------------------------------------------------ storage
    def weight(self, t: Tensor, values: np.ndarray | None = None, ctype: str | None = None, key: str = "#table") -> str:
        key = t.name if values is None else f"{t.name}{key}"
        if key not in self.weights:
            v = t.value if values is None else values
            self.weights[key] = (f"{self.name}_w{len(self.weights)}", np.asarray(v).reshape(-1), ctype or t.ctype)
        return self.weights[key][0]

    def ptr(self, name: str, write: bool = False) -> str:
        """A C expression pointing at tensor ``name`` (its storage, a weight, the input or the logits)."""
        t = self.g.tensors[name]
        if t.value is not None:
            return self.weight(t)
        r = self.plan.root[name]
        if r == self.g.input_int8:
            return "input"
        if r == self.g.logits:
            return "logits"
        ct = self.plan.stype(self.g, name)
        cast = ct if write else f"const {ct}"
        return f"(({cast} *)(A + {self.plan.offsets[r]}))"

    # ------------------------------------------------------------ steps
    def step(self, s: Step) -> None:
        n = s.nodes[0]
        self.body.append(f"    /* {s.kind}: " + ", ".join(f"{m.op} {m.name}" for m in s.nodes[:3]).replace("*/", "* /")
                         + (f" (+{len(s.nodes) - 3})" if len(s.nodes) > 3 else "") + " */")
        self._label = s.kind
        if self._nstep in self._fused:  # written inside the convolution before it (see _fuse_ew)
            self._label = self._fused[self._nstep]
            self.body.append("    /* (fused into the convolution above on AVX-512 VNNI; in its #else otherwise) */")
        else:
            getattr(self, f"_{s.kind}")(s, n)
        # a hook for profilers, empty unless the build defines NAME_STEP_HOOK(step, kind): kind names the kernel
        # (conv_dw, conv_1x1, conv_im2col, conv_generic, matmul_const, matmul_dynamic, ew32, ew, reduce, move)
        self.body.append(f'    {self.name.upper()}_STEP_HOOK({self._nstep}, "{self._label}");')
        self._nstep += 1

    def _fits32(self, names) -> bool:  # type: ignore[no-untyped-def]
        """Every tensor of ``names`` provably inside int32: int64 ones by :mod:`.ranges`, never a uint64/uint32 one
        (those keep their unsigned 64-bit helpers), the narrower types always."""
        g, r = self.g, self.ranges
        for x in names:
            if not x:
                continue
            ct = g.tensors[x].ctype
            if ct in ("uint64_t", "uint32_t") or (ct == "int64_t" and not (x in r and fits(r[x]))):
                return False
        return True

    def _node32(self, m: Node, prod: dict[str, Node]) -> bool:
        """Whether node ``m`` computes in int32: its operands and result (and, for the fused floor division, the
        dividend and the Mod) provably inside int32, so each int32 helper gives the int64 value exactly."""
        if m.op == "BitShift":
            return False
        names = list(m.inputs) + list(m.outputs)
        sub = prod.get(m.inputs[0]) if m.op == "Div" else None
        if sub is not None and sub.op == "Sub":
            names += list(sub.inputs)
        return self._fits32(names)

    def narrow(self, s: Step) -> bool:
        """Whether the fused element-wise step ``s`` computes wholly in int32 (every node, see ``_node32``)."""
        prod = {o: m for m in s.nodes for o in m.outputs}
        return all(self._node32(m, prod) for m in s.nodes)

    def _ew(self, s: Step, _n: Node) -> None:
        """One loop over the step's shape. Each int64 value provably inside int32 is held in an int32 local, and
        each node whose operands and result all are computes with the int32 helpers (GCC vectorizes twice the
        lanes, and int32 products and divisions by constants at all); a product of two such values that leaves
        int32 is the exact widening int32 x int32 -> int64 (``vpmuldq``); the rest stays int64."""
        g = self.g
        loop = s.shape or (1,)
        if self.narrow(s):  # (every node in int32: no int64 division either)
            self._label = "ew32"
        ops: list[tuple[str, str, list[int]]] = []  # (c pointer, ctype, strides)
        local: dict[str, str] = {}
        pre: list[str] = []
        for x in s.reads:
            ops.append((self.ptr(x), self.plan.stype(g, x), _bcast(g.tensors[x].shape, loop)))
        consts = _unique_consts(g, s)
        for c in consts:
            t = g.tensors[c]
            if t.ctype == "int64_t" and self._fits32([c]):  # an int32 copy of the table
                ops.append((self.weight(t, np.asarray(t.value).astype(np.int32), "int32_t", key="#i32"), "int32_t",
                            _bcast(t.shape, loop)))
            else:
                ops.append((self.weight(t), t.ctype, _bcast(t.shape, loop)))
        for w in s.writes:
            ops.append((self.ptr(w, write=True), self.plan.stype(g, w), _contig(loop)))
        dims, strides = _merge(list(loop), [o[2] for o in ops])
        head, var = _loops(dims)
        for k, (p, ct, _) in enumerate(ops[:len(s.reads) + len(consts)]):
            src = s.reads + consts
            pre.append(f"const {ct} *p{k} = {p};")
            local[src[k]] = f"p{k}[{_offset(strides[k])}]"
        lines: list[str] = []
        prod = {o: m for m in s.nodes for o in m.outputs}
        # a division by a computed divisor does not vectorize (no SIMD integer division): the loop runs in phases
        # (see _phased), the divisions alone in a scalar loop, the rest vectorized with int32 locals
        divs: set[str] = set()  # the locals a division instruction computes (_expr sets self._divides)
        self._hoist, self._inner = [], len(dims) - 1  # per-chunk constants (_floor_div), the innermost loop
        held: set[str] = set()  # uint64 tensors whose locals are int32 (see _held32)
        for j, m in enumerate(s.nodes):
            out = m.outputs[0]
            ct = g.tensors[out].ctype
            u = self._held32(m, held, local)
            if u is not None:
                lines.append(f"int32_t v{j} = {u};")
                local[out] = f"v{j}"
                held.add(out)
                continue
            in32 = self._node32(m, prod)
            self._sfx = "32" if in32 else ""
            small = ct == "int64_t" and self._fits32([out])
            args = [self._arg(x, local) for x in m.inputs]
            if small:
                ct = "int32_t"
            if not in32 and m.op == "Mul" and self._fits32(m.inputs[:2]):
                expr = f"ev_mulw({args[0]}, {args[1]})"  # int32 x int32: exact in int64
            else:
                self._divides = False
                expr = self._expr(m, args, ct, prod, local)
                if self._divides:
                    divs.add(f"v{j}")
            if small and not in32:  # computed in int64, its value fits: exact
                expr = f"(int32_t)({expr})"
            lines.append(f"{ct} v{j} = {expr};")
            local[out] = f"v{j}"
            self._sfx = ""
        for k, w in enumerate(s.writes):
            base = len(s.reads) + len(consts) + k
            pre.append(f"{ops[base][1]} *q{k} = {ops[base][0]};")
            lines.append(f"q{k}[{_offset(strides[base])}] = {local[w]};")
        pre, lines = _prune(pre, lines)
        if self._hoist or divs & {ln.split(" = ")[0].split()[-1] for ln in lines}:
            self.body.append("    {\n        " + "\n        ".join(pre) + "\n        "
                             + _phased(lines, divs, dims, self._hoist).replace("\n", "\n        ") + "\n    }")
            return
        self.body.append("    {\n        " + "\n        ".join(pre) + f"\n        {head}{{\n            "
                         + "\n            ".join(lines) + "\n        }\n    }")

    def _held32(self, m: Node, held: set[str], local: dict[str, str]) -> str | None:
        """The int32 expression of a uint64 node (the lowering's per-element shift: ``Cast`` to uint64, ``BitShift``)
        held in an int32 local, or None. A uint64 value ``u`` is held as the int32 ``v`` with ``u == v mod 2**64``
        (what C's conversion of ``v`` to uint64 gives, wherever one is needed):

        * ``Cast`` of an int64 value proven inside int32: that value itself;
        * ``BitShift`` of a held value (or constant) proven in ``[0, 2**31)`` by a held amount (or constant), its
          result proven in ``[0, 2**31)``: ``ev_shr32u`` / ``ev_shl32u``, which equal ``ev_shr_u64`` /
          ``ev_shl_u64`` there (see the prelude). A ``Cast`` back to int64 then reads ``v``: exact."""
        g, r = self.g, self.ranges
        out = m.outputs[0]
        if g.tensors[out].ctype != "uint64_t":
            return None
        if m.op == "Cast" and g.tensors[m.inputs[0]].ctype == "int64_t" and self._fits32(m.inputs[:1]):
            return f"(int32_t)({self._arg(m.inputs[0], local)})"
        if m.op != "BitShift" or not fits(r.get(out, (-1, 0)), (0, INT32[1])) or \
                not fits(r.get(m.inputs[0], (-1, 0)), (0, INT32[1])):
            return None
        args = []
        for k, x in enumerate(m.inputs[:2]):
            t = g.tensors[x]
            if x in held:
                args.append(local[x])
            elif t.value is not None and t.size == 1 and 0 <= int(np.asarray(t.value).reshape(-1)[0]) <= INT32[1]:
                args.append(f"((int32_t){int(np.asarray(t.value).reshape(-1)[0])})")
            else:
                return None
        d = m.attrs.get("direction", b"RIGHT")
        d = d.decode() if isinstance(d, bytes) else d
        return f"ev_{'shr' if d == 'RIGHT' else 'shl'}32u({args[0]}, {args[1]})"

    def _arg(self, x: str, local: dict[str, str]) -> str:
        if not x:
            return ""
        if x in local:
            return local[x]
        t = self.g.tensors[x]
        assert t.value is not None and t.size == 1, x
        ct = "int32_t" if self._sfx and t.ctype == "int64_t" else t.ctype
        return literal(int(np.asarray(t.value).reshape(-1)[0]), ct)

    def _const_positive(self, x: str, pow2: bool = False) -> np.ndarray | None:
        t = self.g.tensors[x]
        if t.value is None or t.ctype != "int64_t":
            return None
        v = np.asarray(t.value, np.int64)
        if not np.all(v > 0) or (pow2 and not np.all((v & (v - 1)) == 0)):
            return None
        return v

    def _expr(self, m: Node, a: list[str], ct: str, prod: dict[str, Node], local: dict[str, str]) -> str:
        op, g = m.op, self.g
        in_ct = g.tensors[m.inputs[0]].ctype if m.inputs and m.inputs[0] else ct
        if op in ("Add", "Sub", "Mul", "Neg", "Abs", "Div", "Mod", "Max", "Min", "Clip") and in_ct != "int64_t":
            raise CodegenError(f"no C kernel for {op} node '{m.name}' on {in_ct} (int64 only)")
        if op == "Div":
            floor = self._floor_div(m, prod, local)
            if floor:
                return floor
            d = self._const_positive(m.inputs[1])
            if d is not None:
                if d.size == 1 and self.ranges.get(m.inputs[0], (-1, 0))[0] >= 0 and not int(d.reshape(-1)[0]) & \
                        (int(d.reshape(-1)[0]) - 1):  # a >= 0 by 2**k: truncation is floor, an unsigned shift
                    u = "uint32_t" if self._sfx else "uint64_t"
                    return f"(({ct})(({u})({a[0]}) >> {int(d.reshape(-1)[0]).bit_length() - 1}))"
                return f"({a[0]} / {a[1]})"
            self._divides = not g.is_const(m.inputs[1])
            return self._div_computed(m.inputs[0], m.inputs[1], a[0], a[1], ct) or f"ev_div{self._sfx}({a[0]}, {a[1]})"
        if op == "Mod":
            self._divides = not g.is_const(m.inputs[1])
            if int(m.attrs.get("fmod", 0)):
                return f"ev_fmod{self._sfx}({a[0]}, {a[1]})"
            positive = self._const_positive(m.inputs[1]) is not None
            return f"ev_mod{'p' if positive else ''}{self._sfx}({a[0]}, {a[1]})"
        simple = {"Add": "ev_add", "Sub": "ev_sub", "Mul": "ev_mul"}
        if op in simple:
            return f"{simple[op]}{self._sfx}({a[0]}, {a[1]})"
        if op == "Neg":
            return f"ev_neg{self._sfx}({a[0]})"
        if op == "Abs":
            return f"ev_abs{self._sfx}({a[0]})"
        if op in ("Max", "Min"):
            e = a[0]
            for b in a[1:]:
                e = f"ev_{op.lower()}{self._sfx}({e}, {b})"
            return e
        if op == "Clip":
            e = a[0]
            if len(a) > 1 and a[1]:
                e = f"ev_max{self._sfx}({e}, {a[1]})"
            if len(a) > 2 and a[2]:
                e = f"ev_min{self._sfx}({e}, {a[2]})"
            return e
        cmp = {"GreaterOrEqual": ">=", "Greater": ">", "Less": "<", "LessOrEqual": "<=", "Equal": "=="}
        if op in cmp:
            return f"(uint8_t)({a[0]} {cmp[op]} {a[1]})"
        if op == "Not":
            return f"(uint8_t)!{a[0]}"
        if op in ("And", "Or"):
            return f"(uint8_t)({a[0]} {'&&' if op == 'And' else '||'} {a[1]})"
        if op == "Where":
            return f"({a[0]} ? {a[1]} : {a[2]})"
        if op == "Cast":
            return f"(uint8_t)({a[0]} != 0)" if g.tensors[m.outputs[0]].ctype == "uint8_t" and \
                int(m.attrs.get("to", 0)) == 9 else f"({ct})({a[0]})"
        if op == "BitShift":
            if ct != "uint64_t":
                raise CodegenError(f"no C kernel for BitShift node '{m.name}' on {ct} (uint64 only)")
            d = m.attrs.get("direction", b"RIGHT")
            d = d.decode() if isinstance(d, bytes) else d
            return f"ev_{'shr' if d == 'RIGHT' else 'shl'}_u64({a[0]}, {a[1]})"
        raise CodegenError(f"no C kernel for {op} node '{m.name}'")

    def _invariant(self, c: str) -> bool:
        """Whether C expression ``c`` is a read that does not move along the innermost loop of the step (a row's
        divisor: the same for every element of a chunk, see _phased)."""
        import re

        return bool(re.fullmatch(r"p\d+\[[^\]]*\]", c)) and not re.search(rf"\bi{self._inner}\b", c)

    def _div_computed(self, x: str, d: str, a: str, b: str, ct: str) -> str | None:
        """ONNX Div of ``x`` by a computed divisor ``d`` (C expressions ``a``, ``b``) where the ranges prove ``d >= 1``
        (no zero, no -1: C's truncating ``/`` is ONNX's): in uint32 where both lie in ``[0, 2**32)`` (truncation and
        floor agree there), as ``ev_udiv_bits`` (no division instruction: it vectorizes) where the quotient is
        also proven below ``2**16``, else a uint32 division (cheaper than int64's); else in the operands' type;
        None otherwise."""
        r = self.ranges
        if d not in r or x not in r or r[d][0] < 1:
            return None
        self._divides = True
        u32 = (0, (1 << 32) - 1)
        if fits(r[x], u32) and fits(r[d], u32):
            bits = (r[x][1] // r[d][0]).bit_length()
            if bits <= 16:
                self._divides = False
                return f"(({ct})ev_udiv_bits((uint32_t)({a}), (uint32_t)({b}), {max(bits, 1)}))"
            return f"(({ct})((uint32_t)({a}) / (uint32_t)({b})))"
        return f"({a} / {b})"

    def _floor_div(self, div: Node, prod: dict[str, Node], local: dict[str, str]) -> str | None:
        """The lowering's floor division ``Div(Sub(a, Mod(a, d)), d)`` (d > 0) as one helper call."""
        sub = prod.get(div.inputs[0])
        if sub is None or sub.op != "Sub":
            return None
        mod = prod.get(sub.inputs[1])
        if mod is None or mod.op != "Mod" or int(mod.attrs.get("fmod", 0)) or mod.inputs[0] != sub.inputs[0] \
                or mod.inputs[1] != div.inputs[1]:
            return None
        d = self._const_positive(div.inputs[1])
        if d is None:  # a computed divisor the ranges prove positive: one division (ev_floordiv)
            dr = self.ranges.get(div.inputs[1])
            if self.g.is_const(div.inputs[1]) or dr is None or dr[0] < 1:
                return None
            a, b = self._arg(sub.inputs[0], local), self._arg(div.inputs[1], local)
            ct = "int32_t" if self._sfx else self.g.tensors[div.outputs[0]].ctype
            if self.ranges.get(sub.inputs[0], (-1, 0))[0] >= 0:  # a >= 0: floor is truncation
                q = self._div_computed(sub.inputs[0], div.inputs[1], a, b, ct)
                if self._divides is False or not self._invariant(b):
                    return q
            if self._invariant(b):  # the same divisor across the chunk: its reciprocal once (ev_floordiv_inv)
                self._divides = False
                mv = f"m_{len(self._hoist)}"
                self._hoist.append(f"const uint64_t {mv} = UINT64_C(0xFFFFFFFFFFFFFFFF) / (uint64_t)({b});")
                return f"(({ct})ev_floordiv_inv({a}, (uint64_t)({b}), {mv}))"
            self._divides = True
            return f"ev_floordiv{self._sfx}({a}, {b})"
        a = self._arg(sub.inputs[0], local)
        if np.all((d & (d - 1)) == 0):
            k = np.log2(d).astype(np.int64)
            if k.size == 1:
                return f"ev_floor_shr{self._sfx}({a}, {int(k.reshape(-1)[0])})"
            # per-channel shift amounts: a table read at the same offset as the divisors
            sym = self.weight(self.g.tensors[div.inputs[1]], k.astype(np.uint8), "uint8_t")
            ref = local[div.inputs[1]]
            return f"ev_floor_shr{self._sfx}({a}, {sym}{ref[ref.index('['):]})"
        return f"ev_floordiv{self._sfx}({a}, {self._arg(div.inputs[1], local)})"

    def _reduce(self, s: Step, n: Node) -> None:
        g = self.g
        x, out = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
        if x.ctype != "int64_t":
            raise CodegenError(f"no C kernel for {n.op} node '{n.name}' on {x.ctype}")
        rank = len(x.shape)
        axes_t = n.inputs[1] if len(n.inputs) > 1 and n.inputs[1] else None
        if axes_t:
            av = g.tensors[axes_t].value
            if av is None:
                raise CodegenError(f"no C kernel for {n.op} node '{n.name}' with computed axes")
            axes = [int(a) % rank for a in np.asarray(av).reshape(-1)]
        else:
            axes = [int(a) % rank for a in n.attrs.get("axes", [])]
        if not axes:
            axes = [] if int(n.attrs.get("noop_with_empty_axes", 0)) else list(range(rank))
        st = _contig(x.shape)
        kept = [d for d in range(rank) if d not in axes]
        ostr = _contig(tuple(x.shape[d] for d in kept))
        kd, ks = _merge([x.shape[d] for d in kept], [[st[d] for d in kept], ostr])
        rd, rs = _merge([x.shape[d] for d in axes], [[st[d] for d in axes]])
        ko, _ = _loops(kd, "i")
        ro, _ = _loops(rd, "j")
        px, po = self.ptr(n.inputs[0]), self.ptr(n.outputs[0], write=True)
        xi = f"px[{_offset(ks[0], 'i')} + {_offset(rs[0], 'j')}]"
        if n.op == "ReduceSum" and fits(self.ranges.get(n.outputs[0], (INT64_MIN, 0))):
            # the sum provably inside int32: modulo 2**32 it is exact (partial sums may wrap, the result cannot)
            init, upd, fin = "uint32_t acc = 0;", f"acc += (uint32_t){xi};", "(int32_t)acc"
        elif n.op == "ReduceSum":
            init, upd, fin = "uint64_t acc = 0;", f"acc += (uint64_t){xi};", "(int64_t)acc"
        else:
            f = "ev_max" if n.op == "ReduceMax" else "ev_min"
            lim = literal(INT64_MIN if n.op == "ReduceMax" else (1 << 63) - 1, "int64_t")
            init, upd, fin = f"int64_t acc = {lim};", f"acc = {f}(acc, {xi});", "acc"
        xt, ot = self.plan.stype(g, n.inputs[0]), self.plan.stype(g, n.outputs[0])
        self.body.append(f"    {{\n        const {xt} *px = {px};\n        {ot} *po = {po};\n"
                         f"        {ko}{{\n            {init}\n            {ro}{{ {upd} }}\n"
                         f"            po[{_offset(ks[1], 'i')}] = {fin};\n        }}\n    }}")
        assert out.size == int(np.prod(kd))

    def _zero_points(self, n: Node, first: int) -> tuple[int, int]:
        """The two constant scalar zero points of a ConvInteger / MatMulInteger (0 where absent)."""
        zs = []
        for i in (first, first + 1):
            z = n.inputs[i] if len(n.inputs) > i else ""
            if not z:
                zs.append(0)
                continue
            v = self.g.tensors[z].value
            if v is None or np.asarray(v).size != 1:
                raise CodegenError(f"no C kernel for {n.op} node '{n.name}' with a per-channel or computed zero point")
            zs.append(int(np.asarray(v).reshape(-1)[0]))
        return zs[0], zs[1]

    def _fuse_ew(self, x: str, y: str, O: int, P: int, bs: int) -> tuple[str, str] | None:
        """The next step's C twice (fused into the pixel blocks of the convolution ``x`` -> ``y`` (O x P), the plain
        one), or None. Where the next step is an element-wise loop over ``y`` (O x P, ``i0`` the channel, ``i1`` the
        pixel) and ``y`` dies there, the convolution writes each block of ``bs`` pixels at the start of ``y``'s own
        storage (row stride ``bs``: a block that stays in cache) and the step runs right after over those pixels,
        reading the block: the int32 outputs never go to memory in full. Each element computes the same expression
        on the same values. Not where the step writes into the storage of ``y``, of the convolution's input or of
        its scratch (the next blocks still read them), or divides (its phased chunks)."""
        g, plan, i = self.g, self.plan, self._nstep + 1
        if i >= len(plan.steps) or plan.steps[i].kind != "ew":
            return None
        nxt = plan.steps[i]
        ry = plan.root[y]
        if ry in (g.logits, g.input_int8) or ry not in plan.lifetimes or plan.lifetimes[ry][1] != i \
                or [plan.root.get(r) for r in nxt.reads].count(ry) != 1 or y not in nxt.reads:
            return None

        def span(name: str) -> tuple[int, int] | None:
            r = plan.root[name]
            return None if r not in plan.offsets else (plan.offsets[r], plan.offsets[r] + plan.nbytes(g, r))

        busy = [span(y), span(x), (plan.scratch[self._nstep], plan.scratch[self._nstep] + plan.steps[i - 1].scratch)]
        for w in nxt.writes:
            sw = span(w)
            if sw is None or any(b is not None and sw[0] < b[1] and b[0] < sw[1] for b in busy):
                return None
        saved, label = self.body, self._label
        self.body = []
        self._ew(nxt, nxt.nodes[0])
        text, self.body, ew_label, self._label = "\n".join(self.body), saved, self._label, label
        k = nxt.reads.index(y)
        head, acc = f"for (long i0 = 0; i0 < {O}; i0++) for (long i1 = 0; i1 < {P}; i1++) {{", f"p{k}[i0 * {P} + i1]"
        if text.count(head) != 1 or acc not in text or "c_" in text:
            return None
        fused = text.replace(head, f"for (long i0 = 0; i0 < {O}; i0++) for (long i1 = f0_; i1 < f0_ + n_; i1++) {{")
        self._fused[i] = ew_label
        return fused.replace(acc, f"p{k}[i0 * {bs} + (i1 - f0_)]"), text

    def _conv(self, s: Step, n: Node) -> None:
        g = self.g
        zx, zw = self._zero_points(n, 2)
        x, w, y = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]], g.tensors[n.outputs[0]]
        a = n.attrs
        p16 = product_plan(g, n)  # split16.py's merged halves: int16, depthwise or 1 x 1 without groups
        in16 = x.ctype == "int16_t" and (p16.kind == "dw" or (p16.pointwise and int(a.get("group", 1)) == 1))
        if w.value is None or w.ctype != "int8_t" or (x.ctype not in SHORT and not in16) or len(x.shape) != 4:
            raise CodegenError(f"no C kernel for ConvInteger node '{n.name}' (want a 2-D int8/uint8 input and "
                               "constant int8 weights)")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise CodegenError(f"no C kernel for ConvInteger node '{n.name}' with auto_pad")
        dil = list(a.get("dilations", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        st = list(a.get("strides", [1, 1]))
        N, C, H, W = x.shape
        O, cg, KH, KW = w.shape
        G = int(a.get("group", 1))
        HO, WO = y.shape[2], y.shape[3]
        px, py = self.ptr(n.inputs[0]), self.ptr(n.outputs[0], write=True)
        pp = product_plan(g, n)
        xs = "s16" if in16 else SHORT[x.ctype]
        geo = f"{KH}, {KW}, {st[0]}, {st[1]}, {pads[0]}, {pads[1]}"
        self._label = "conv_" + ("1x1" if pp.pointwise else "im2col" if pp.kind == "gemm" else pp.kind)
        if pp.kind == "dw":
            # one kernel per geometry, its sizes compile-time constants; its padded plane in the arena
            key = "dw_" + x.ctype + "_" + "_".join(str(v) for v in pp.dw_geometry)
            if key not in self.kernels:
                self.kernels[key] = dw_kernel(x.ctype, f"ev_dw_{xs}_{sum(k.startswith('dw_') for k in self.kernels)}",
                                              pp.dw_geometry)
            fn = self.kernels[key].split("static void ", 1)[1].split("(", 1)[0]
            self.body.append(f"    for (long b_ = 0; b_ < {N}; b_++) {fn}({px} + b_ * {C * H * W}, {self.weight(w)}, "
                             f"{py} + b_ * {O * HO * WO}, (int32_t *)(A + {self.plan.scratch[self._nstep]}));")
            return
        if pp.kind == "generic":
            self.kernels[f"conv_{x.ctype}"] = conv_kernel(x.ctype)
            self.body.append(f"    ev_conv_{xs}({px}, {self.weight(w)}, {py}, {N}, {C}, {H}, {W}, {O}, {G}, {geo}, "
                             f"{HO}, {WO}, {dil[0]}, {dil[1]}, {zx}, {zw});")
            return
        gm = pp.gemm
        assert gm is not None
        og, P = O // G, HO * WO
        if in16:
            self._pointwise16(w, gm, px, py, N, C * H * W, H * W, O, P, (n.inputs[0], n.outputs[0]))
            return
        rows = np.asarray(w.value).reshape(G, og, gm.k)
        packed = np.concatenate([pack_rows(grp, og, gm.k) for grp in rows])
        wsym = self.weight(w, packed, "int8_t", key="#gemm")
        csym = self.weight(w, u8_correction(rows, zx, x.ctype), "int32_t", key=f"#corr{zx}{x.ctype}")
        self.kernels["gemm_u8"] = gemm_u8_kernel()
        pk = packu_kernels(x.ctype)
        for key in (f"u8_{x.ctype}", f"packu_{x.ctype}" if pp.pointwise else f"im2colu_{x.ctype}"):
            self.kernels[key] = pk[key]
        if pp.pointwise:
            pack = f"ev_packu_{xs}(xg + p0, 1, {H * W}, n_, nr_, {cg}, {gm.kp}, S)"
        else:
            pack = (f"ev_im2colu_{xs}(xg, {cg}, {H}, {W}, {geo}, {WO}, {dil[0]}, {dil[1]}, {zx + U8_BIAS[x.ctype]}, "
                    f"p0, n_, nr_, {gm.kp}, S)")
        portable = (
            f"    {{\n        uint8_t *S = A + {self.plan.scratch[self._nstep]};\n"
            f"        for (long b_ = 0; b_ < {N}; b_++) for (long g_ = 0; g_ < {G}; g_++) {{\n"
            f"            const {x.ctype} *xg = {px} + (b_ * {C} + g_ * {cg}) * {H * W};\n"
            f"            for (long p0 = 0; p0 < {P}; p0 += {gm.nb}) {{\n"
            f"                int n_ = {P} - p0 < {gm.nb} ? (int)({P} - p0) : {gm.nb}, nr_ = (n_ + 2) / 3 * 3;\n"
            f"                {pack};\n"
            f"                ev_gemm_u8({wsym} + g_ * {round_up(og, MR) * gm.kp}, S, {csym} + g_ * {og}, "
            f"{py} + (b_ * {O} + g_ * {og}) * {P} + p0, {og}, n_, {gm.kp}, {P}, 1);\n"
            "            }\n        }\n    }")
        nbv = vnni_block(gm)
        if not nbv:
            self.body.append(portable)
            return
        # on AVX-512 VNNI (gemm.py, behind EV_VNNI512): the same sums, 16 pixels per vector
        self.kernels.update(vnni_pw_kernels(x.ctype, pp.pointwise))
        if pp.pointwise:
            packv = f"ev_packv_{xs}(xg + p0, {H * W}, n_, {cg}, {gm.kp}, S)"
        else:
            packv = (f"ev_im2colv_{xs}(xg, {cg}, {H}, {W}, {geo}, {WO}, {dil[0]}, {dil[1]}, {zx + U8_BIAS[x.ctype]}, "
                     f"p0, n_, {gm.kp}, S)")
        bs = min(nbv, P)
        fz = self._fuse_ew(n.inputs[0], n.outputs[0], O, P, bs) if N == 1 and G == 1 else None
        if fz is not None:  # the next element-wise step runs on each block of outputs while it is in cache
            self._vnni_fused(f"uint8_t *S = A + {self.plan.scratch[self._nstep]}",
                             f"(void){pack.split('(')[0]}; (void)ev_gemm_u8;", f"const {x.ctype} *xg = {px}",
                             packv.replace('p0', 'f0_'),
                             f"ev_gemm_vnni({wsym}, S, {csym}, {py}, {O}, n_, {gm.kp}, {bs})", P, nbv, fz, portable)
            return
        self.body.append(
            f"#if EV_VNNI512\n    {{\n        uint8_t *S = A + {self.plan.scratch[self._nstep]};\n"
            f"        (void){pack.split('(')[0]}; (void)ev_gemm_u8;  /* the portable path's kernels: used in #else */\n"
            f"        for (long b_ = 0; b_ < {N}; b_++) for (long g_ = 0; g_ < {G}; g_++) {{\n"
            f"            const {x.ctype} *xg = {px} + (b_ * {C} + g_ * {cg}) * {H * W};\n"
            f"            for (long p0 = 0; p0 < {P}; p0 += {nbv}) {{\n"
            f"                int n_ = {P} - p0 < {nbv} ? (int)({P} - p0) : {nbv};\n"
            f"                {packv};\n"
            f"                ev_gemm_vnni({wsym} + g_ * {round_up(og, MR) * gm.kp}, S, {csym} + g_ * {og}, "
            f"{py} + (b_ * {O} + g_ * {og}) * {P} + p0, {og}, n_, {gm.kp}, {P});\n"
            "            }\n        }\n    }\n#else\n" + portable + "\n#endif")

    def _vnni_fused(self, scratch: str, unused: str, xg: str, pack: str, gemm: str, P: int, nbv: int,
                    fz: tuple[str, str], portable: str) -> None:
        """A VNNI convolution over blocks of ``nbv`` of its ``P`` output pixels (one image, one group), each block
        packed (``pack``), multiplied (``gemm``) and then run through the fused element-wise step ``fz[0]`` while
        it is in cache; the portable path (``portable``, then the step ``fz[1]`` whole) in ``#else``."""
        self.body.append(
            f"#if EV_VNNI512\n    {{\n        {scratch};\n"
            f"        {unused}  /* the portable path's kernels: used in #else */\n"
            f"        {xg};\n"
            f"        for (long f0_ = 0; f0_ < {P}; f0_ += {nbv}) {{\n"
            f"            int n_ = {P} - f0_ < {nbv} ? (int)({P} - f0_) : {nbv};\n"
            f"            {pack};\n"
            f"            {gemm};\n"
            + _indent(fz[0], 8) + "\n        }\n    }\n#else\n" + portable + "\n" + fz[1] + "\n#endif")

    def _pointwise16(self, w: Tensor, gm: Gemm, px: str, py: str, N: int, CHW: int, P: int, O: int, PO: int,
                     xy: tuple[str, str]) -> None:
        """A 1 x 1 convolution of an int16 input (zero point 0; split16.py): packed as int16 into the GEMM's
        scratch and multiplied by the int8 weights (ev_gemm_s8), or on AVX-512 VNNI two channels per lane
        (ev_gemm_vnni16, int16 weight pairs); outputs of P input pixels, PO == P."""
        assert P == PO
        K = CHW // P
        off = self.plan.scratch[self._nstep]
        wsym = self.weight(w, pack_rows(np.asarray(w.value).reshape(O, K), O, K), "int8_t", key="#gemm")
        self.kernels["gemm_int8_t"] = gemm_kernel("int8_t")
        self.kernels["pack_int16_t"] = pack_kernels("int16_t")
        portable = (
            f"    {{\n        int16_t *S = (int16_t *)(A + {off});\n"
            f"        for (long b_ = 0; b_ < {N}; b_++) {{\n"
            f"            const int16_t *xg = {px} + b_ * {CHW};\n"
            f"            for (long p0 = 0; p0 < {P}; p0 += {gm.nb}) {{\n"
            f"                int n_ = {P} - p0 < {gm.nb} ? (int)({P} - p0) : {gm.nb}, nr_ = (n_ + 2) / 3 * 3;\n"
            f"                ev_pack_s16(xg + p0, 1, {P}, n_, nr_, {K}, {gm.kp}, 0, S);\n"
            f"                ev_gemm_s8({wsym}, S, {py} + b_ * {O * P} + p0, {O}, n_, {gm.kp}, {P}, 1);\n"
            "            }\n        }\n    }")
        nbv = min(round_up(P, 32), gm.scratch // (2 * gm.kp) // 32 * 32)
        if nbv < 32:
            self.body.append(portable)
            return
        w16 = self.weight(w, pack_rows(np.asarray(w.value).reshape(O, K), O, K, np.int16), "int16_t", key="#gemm16")
        self.kernels.update(vnni16_pw_kernels())
        bs = min(nbv, P)
        fz = self._fuse_ew(xy[0], xy[1], O, P, bs) if N == 1 else None
        if fz is not None:  # the next element-wise step runs on each block of outputs while it is in cache
            self._vnni_fused(f"int16_t *S = (int16_t *)(A + {off})", "(void)ev_pack_s16; (void)ev_gemm_s8;",
                             f"const int16_t *xg = {px}", f"ev_packv2_s16(xg + f0_, {P}, n_, {K}, {gm.kp}, S)",
                             f"ev_gemm_vnni16({w16}, S, {py}, {O}, n_, {gm.kp}, {bs})", P, nbv, fz, portable)
            return
        self.body.append(
            f"#if EV_VNNI512\n    {{\n        int16_t *S = (int16_t *)(A + {off});\n"
            f"        (void)ev_pack_s16; (void)ev_gemm_s8;  /* the portable path's kernels: used in #else */\n"
            f"        for (long b_ = 0; b_ < {N}; b_++) {{\n"
            f"            const int16_t *xg = {px} + b_ * {CHW};\n"
            f"            for (long p0 = 0; p0 < {P}; p0 += {nbv}) {{\n"
            f"                int n_ = {P} - p0 < {nbv} ? (int)({P} - p0) : {nbv};\n"
            f"                ev_packv2_s16(xg + p0, {P}, n_, {K}, {gm.kp}, S);\n"
            f"                ev_gemm_vnni16({w16}, S, {py} + b_ * {O * P} + p0, {O}, n_, {gm.kp}, {P});\n"
            "            }\n        }\n    }\n#else\n" + portable + "\n#endif")

    def _matmul(self, s: Step, n: Node) -> None:
        g = self.g
        za, zb = self._zero_points(n, 2)
        at, bt, yt = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]], g.tensors[n.outputs[0]]
        if at.ctype not in SHORT or bt.ctype not in SHORT or len(at.shape) < 2 or len(bt.shape) < 2:
            raise CodegenError(f"no C kernel for MatMulInteger node '{n.name}' (want int8/uint8 operands of rank >= 2)")
        M, K = at.shape[-2:]
        N = bt.shape[-1]
        batch = tuple(yt.shape[:-2])
        sa = [s_ * M * K for s_ in _bcast(tuple(at.shape[:-2]), batch)] if batch else []
        sb = [s_ * K * N for s_ in _bcast(tuple(bt.shape[:-2]), batch)] if batch else []
        sy = [s_ * M * N for s_ in _contig(batch)] if batch else []
        gm = product_plan(g, n).gemm
        assert gm is not None
        pa, py = self.ptr(n.inputs[0]), self.ptr(n.outputs[0], write=True)
        dims, strides = _merge(list(batch) or [1], [sa or [0], sb or [0], sy or [0]])
        head, _ = _loops(dims)
        off = self.plan.scratch[self._nstep]
        self._label = "matmul_dynamic" if gm.w_scratch else "matmul_const"
        if gm.w_scratch:  # B computed (or not packable): B^T less its zero point, packed each time
            self.kernels[f"pack_{at.ctype}"] = pack_kernels(at.ctype)
            self.kernels[f"pack_{bt.ctype}"] = pack_kernels(bt.ctype)
            lines = [f"int16_t *S = (int16_t *)(A + {off});"]
            packa = (f"ev_pack_{SHORT[at.ctype]}({pa} + {_offset(strides[0])} + m0 * {K}, {K}, 1, n_, nr_, {K}, "
                     f"{gm.kp}, {za}, S); ")
            self.kernels["gemm_int16_t"] = gemm_kernel("int16_t")
            pb = self.ptr(n.inputs[1])
            lines.append(f"int16_t *WB = (int16_t *)(A + {off + 2 * gm.nb * gm.kp});")
            wside, fn = "WB, S", "ev_gemm_s16"
            packb = (f"ev_pack_{SHORT[bt.ctype]}({pb} + {_offset(strides[1])}, 1, {N}, {N}, {round_up(N, MR)}, {K}, "
                     f"{gm.kp}, {zb}, WB); ")
        else:  # constant int8 B with zero point 0: B packed by 16 columns x 4 k now; A as biased uint8 rows
            pk = packu_kernels(at.ctype)
            for key in (f"u8_{at.ctype}", f"packu_{at.ctype}"):
                self.kernels[key] = pk[key]
            mk = mm_kernels()
            for key in ("gemm_u8", "mm_u8"):
                self.kernels[key] = mk[key]
            b = np.asarray(bt.value).reshape(K, N)
            csym = self.weight(bt, u8_correction(b.T, za, at.ctype), "int32_t", key=f"#corrT{za}{at.ctype}")
            wsym = self.weight(bt, pack_cols16(b, K, N), "int8_t", key="#cols16")
            # rows packed at a time (the extra ones zero), then the portable kernel's unpacked weight block T
            # (the portable kernel's rows in multiples of 3, the VNNI one's of 4)
            rows = (gm.scratch - gm.t_scratch) // gm.kp
            tsc = f"(int8_t *)(A + {off + gm.scratch - gm.t_scratch})"

            def loop(fn: str, r: int, targ: str) -> str:
                nbm = min(round_up(M, r), rows // r * r)
                return (f"{head}{{ for (long m0 = 0; m0 < {M}; m0 += {nbm}) {{ "
                        f"int n_ = {M} - m0 < {nbm} ? (int)({M} - m0) : {nbm}, nr_ = (n_ + {r - 1}) / {r} * {r}; "
                        f"ev_packu_{SHORT[at.ctype]}({pa} + {_offset(strides[0])} + m0 * {K}, {K}, 1, n_, nr_, {K}, "
                        f"{gm.kp}, S); {fn}(S, {wsym}, {csym}, {py} + {_offset(strides[2])} + m0 * {N}, n_, {N}, "
                        f"{gm.kp}, {N}{targ}); }} }}")
            for key in ("vnni_head", "bcast32", "mm_vnni"):
                self.kernels[key] = mk[key]
            self.body.append(
                f"    {{\n        uint8_t *S = A + {off};\n#if EV_VNNI512\n        (void)ev_mm_u8;  /* the portable "
                f"kernel: used in #else */\n        {loop('ev_mm_vnni', 4, '')}\n#else\n"
                f"        {loop('ev_mm_u8', 3, ', ' + tsc)}\n#endif\n    }}")
            return
        lines.append(
            f"{head}{{ {packb}for (long m0 = 0; m0 < {M}; m0 += {gm.nb}) {{ "
            f"int n_ = {M} - m0 < {gm.nb} ? (int)({M} - m0) : {gm.nb}, nr_ = (n_ + 2) / 3 * 3; "
            f"{packa}{fn}({wside}, {py} + {_offset(strides[2])} + m0 * {N}, {N}, n_, {gm.kp}, 1, {N}); }} }}")
        portable = "    {\n        " + "\n        ".join(lines) + "\n    }"
        nbm = gm.nb // 4 * 4  # A's rows packed at a time on the VNNI path (rows rounded up to 4)
        if nbm < 4:
            self.body.append(portable)
            return
        # on AVX-512 VNNI (gemm.py, behind EV_VNNI512): B packed 16 columns x 2 k as int16, A's rows broadcast
        # two k at a time, vpdpwssd into 4 rows x 64 columns: the same sums without horizontal reductions
        mk = mm16_kernels(bt.ctype)
        self.kernels.update(mk)
        vnni = (f"{lines[0]}\n        {lines[1]}\n        (void)ev_gemm_s16; (void)ev_pack_{SHORT[bt.ctype]};  "
                f"/* the portable path's: used in #else */\n        "
                f"{head}{{ ev_packb16_{SHORT[bt.ctype]}({pb} + {_offset(strides[1])}, {K}, {N}, {gm.kp}, {zb}, WB); "
                f"for (long m0 = 0; m0 < {M}; m0 += {nbm}) {{ "
                f"int n_ = {M} - m0 < {nbm} ? (int)({M} - m0) : {nbm}, nr_ = (n_ + 3) / 4 * 4; {packa}"
                f"ev_mm_vnni16(S, WB, (const int32_t *)0, {py} + {_offset(strides[2])} + m0 * {N}, n_, {N}, "
                f"{gm.kp}, {N}); }} }}")
        self.body.append(f"#if EV_VNNI512\n    {{\n        {vnni}\n    }}\n#else\n{portable}\n#endif")

    def _move(self, s: Step, n: Node) -> None:
        g = self.g
        mv = s.move
        assert mv is not None
        out = g.tensors[mv.output]
        py = self.ptr(mv.output, write=True)
        lines = []
        if mv.zero_fill:
            lines.append(f"memset({py}, 0, {self.plan.nbytes(g, mv.output)});")
        srcs = [self.ptr(x) for x in mv.sources]
        esize = self.plan.nbytes(g, mv.output) // max(out.size, 1)  # as stored: int32 where narrowed (schedule.py)
        if mv.table is not None:
            cases = " : ".join(f"k == {i + 1} ? ((const {self.plan.stype(g, x)} *){srcs[i]})[t & {MASK}]"
                               for i, x in enumerate(mv.sources))
            tbl = self.weight(out, mv.table.astype(np.int64), "int64_t")
            lines.append(f"for (long i = 0; i < {out.size}; i++) {{ int64_t t = {tbl}[i]; int64_t k = t >> {TAG}; "
                         f"if (k) {py}[i] = {cases} : 0; }}")
        for b in mv.boxes:
            dims, (ds, ss) = _merge(list(b.shape), [list(b.dst_strides), list(b.src_strides)])
            src = srcs[b.source]
            if ds[-1] == 1 and ss[-1] == 1:
                inner = dims[-1]
                head, _ = _loops(dims[:-1])
                lines.append(f"{head}memcpy({py} + {_offset(ds[:-1], base=b.dst)}, {src} + "
                             f"{_offset(ss[:-1], base=b.base)}, {inner * esize});")
            else:
                head, _ = _loops(dims)
                lines.append(f"{head}{py}[{_offset(ds, base=b.dst)}] = {src}[{_offset(ss, base=b.base)}];")
        self.body.append("    {\n        " + "\n        ".join(lines) + "\n    }")


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + ln if ln else ln for ln in text.split("\n"))


CHUNK = 128  # elements of the innermost loop per pass of a phased element-wise step


def _phased(lines: list[str], divs: set[str], dims: list[int], hoist: list[str] | None = None) -> str:
    """The loop over ``dims`` of an element-wise step with divisions by computed divisors (locals ``divs``), split
    into phases over chunks of the innermost dimension: each local's phase is the latest of its operands', a
    division's the next odd one (scalar loops: divisions alone), any other's the next even one (the loops the
    compiler vectorizes). A local read in a later phase than its own passes through a chunk array on the stack.
    Each element still computes the same expressions on the same values, only in another loop: the results are
    those of the single loop exactly. ``hoist``: declarations computed once per chunk (they read no innermost
    index), before its loops."""
    import re

    decl = re.compile(r"^(\w+) (v\d+) = (.*);$")
    inner = len(dims) - 1
    text = "\n".join(lines)
    hoist = [h for h in hoist or [] if re.search(rf"\b{h.split(' = ')[0].split()[-1]}\b", text)]  # not pruned away
    phase: dict[str, int] = {}
    ctype: dict[str, str] = {}
    items: list[tuple[int, str, list[str]]] = []  # (phase, line, locals it reads)
    for ln in lines:
        m = decl.match(ln)
        deps = re.findall(r"\bv\d+\b", m.group(3) if m else ln)
        p = max((phase[d] for d in deps), default=0)
        if m:
            v = m.group(2)
            p += (p % 2 == 0) if v in divs else (p % 2)
            phase[v], ctype[v] = p, m.group(1)
        items.append((p, ln, deps))
    cross = sorted({d for p, _, deps in items for d in deps if phase[d] != p}, key=lambda v: int(v[1:]))
    head = "".join(f"for (long i{d} = 0; i{d} < {n}; i{d}++) " for d, n in enumerate(dims[:-1]))
    n = dims[-1]
    out = [f"{head}{{", f"    for (long c_ = 0; c_ < {n}; c_ += {CHUNK}) {{",
           f"        const long n_ = {n} - c_ < {CHUNK} ? {n} - c_ : {CHUNK};"] + ["        " + h for h in hoist]
    out += [f"        {ctype[v]} a_{v}[{CHUNK}];" for v in cross]
    for ph in sorted({p for p, _, _ in items}):
        body = [ln for p, ln, _ in items if p == ph]
        used = {d for p, _, deps in items if p == ph for d in deps}
        load = [f"{ctype[v]} {v} = a_{v}[k_];" for v in cross if phase[v] != ph and v in used]
        store = [f"a_{v}[k_] = {v};" for v in cross if phase[v] == ph]
        idx = [f"const long i{inner} = c_ + k_;"] if any(re.search(rf"\bi{inner}\b", ln) for ln in body) else []
        out.append("        for (long k_ = 0; k_ < n_; k_++) {")
        out += ["            " + ln for ln in idx + load + body + store]
        out.append("        }")
    out += ["    }", "}"]
    return "\n".join(out)


def _prune(pre: list[str], lines: list[str]) -> tuple[list[str], list[str]]:
    """Drop the locals and pointers nothing reads (a fused floor division leaves its Sub and Mod unused)."""
    import re

    decl = re.compile(r"^(?:const )?\w+ \*?([pv]\d+) = ")
    items = pre + lines
    while True:
        text = "\n".join(items)
        dead = [ln for ln in items if (m := decl.match(ln)) and len(re.findall(rf"\b{m.group(1)}\b", text)) == 1]
        if not dead:
            break
        items = [ln for ln in items if ln not in dead]
    return [ln for ln in pre if ln in items], [ln for ln in lines if ln in items]


def _unique_consts(g: IntGraph, s: Step) -> list[str]:
    out: list[str] = []
    for m in s.nodes:
        for x in m.inputs:
            if x and g.is_const(x) and g.tensors[x].size > 1 and x not in out:
                out.append(x)
    return out


def weights_source(name: str, weights: dict[str, tuple[str, np.ndarray, str]]) -> tuple[str, str, int]:
    """(NAME_weights.c text, extern declarations, bytes) of the constant arrays."""
    parts = [f"/* {name}_weights.c: the constant arrays of {name} (read-only: placeable in flash). Generated by edgevis. */",
             "#include <stdint.h>",
             "/* Byte arrays are initialized from string literals (a character array may be, and int8_t/uint8_t are",
             "   signed/unsigned char): one token per array instead of one per element compiles several times faster.",
             "   A literal as long as its array has no terminating zero, which C allows. */",
             "#if defined(__GNUC__)", '#pragma GCC diagnostic ignored "-Woverlength-strings"', "#endif", ""]
    decls, total = [], 0
    for sym, v, ct in weights.values():
        arr = np.asarray(v).astype({"int64_t": np.int64, "uint64_t": np.uint64, "int32_t": np.int32,
                                    "int8_t": np.int8, "uint8_t": np.uint8}.get(ct, np.int64)).reshape(-1)
        total += arr.nbytes
        decl = f"const {ct} {sym}[{max(arr.size, 1)}]"
        decls.append(f"extern {decl};")
        if ct in ("int64_t", "uint64_t"):
            vals = [literal(x, ct) if (ct == "int64_t" and x == INT64_MIN) or abs(int(x)) >= (1 << 31) else str(int(x))
                    for x in arr.tolist()]
        elif ct in ("int8_t", "uint8_t") and arr.size >= 64:
            parts.append(f"{decl} =\n{_hex_string(arr)};")
            continue
        else:
            vals = [str(int(x)) for x in arr.tolist()]
        body = ",\n".join(",".join(vals[i:i + 32]) for i in range(0, len(vals), 32)) or "0"
        parts.append(f"{decl} = {{\n{body}\n}};")
    return "\n".join(parts) + "\n", "\n".join(decls), total


def _hex_string(arr: np.ndarray, per_line: int = 128) -> str:
    """The bytes of ``arr`` as adjacent C string literals of ``\\xHH`` escapes (each followed by a backslash or a
    quote, so no escape runs into the next character)."""
    b = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
    hexd = np.frombuffer(b"0123456789abcdef", np.uint8)
    esc = np.empty((b.size, 4), np.uint8)
    esc[:, 0], esc[:, 1], esc[:, 2], esc[:, 3] = ord("\\"), ord("x"), hexd[b >> 4], hexd[b & 15]
    text = esc.tobytes().decode("ascii")
    step = 4 * per_line
    return "\n".join(f'"{text[i:i + step]}"' for i in range(0, len(text), step))


NP_C = NP_C_TYPES
