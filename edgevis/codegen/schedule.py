"""The schedule of an integer graph: fused steps in order, and the arena plan from tensor lifetimes.

* Consecutive element-wise nodes with the same output shape become one loop (a *group*):
  their intermediates live in registers, only what a later step reads is stored.
* Data-movement nodes whose output is the input's bytes unchanged (Reshape, Squeeze, ...)
  are views: no step, the same storage.
* Every stored tensor gets an offset in one arena, planned at generation time from its
  lifetime (first write .. last read, Glow / TFLite greedy-by-size): the largest tensors are
  placed first, each at the lowest offset that overlaps no tensor alive at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .gemm import product_plan
from .model import CodegenError, IntGraph, Node
from .ranges import Interval, fits, value_ranges
from .views import ALIAS_OPS, DATA_OPS, Move, plan_moves

ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Max", "Min", "Clip", "Where", "GreaterOrEqual",
               "Greater", "Less", "LessOrEqual", "Equal", "Not", "And", "Or", "Cast", "BitShift"}
REDUCE = {"ReduceSum", "ReduceMax", "ReduceMin"}
LINEAR = {"ConvInteger", "MatMulInteger"}
ALIGN = 16


@dataclass
class Step:
    kind: str  # "ew", "reduce", "conv", "matmul", "move"
    nodes: list[Node]
    reads: list[str]  # dynamic tensors read from storage
    writes: list[str]  # tensors stored
    move: Move | None = None
    shape: tuple[int, ...] = ()
    scratch: int = 0  # arena bytes the step's kernel uses while it runs (the GEMM's packed operands)


@dataclass
class Plan:
    steps: list[Step]
    root: dict[str, str]  # tensor -> the tensor whose storage it shares (itself when stored)
    offsets: dict[str, int] = field(default_factory=dict)  # arena offset of each stored tensor
    arena_bytes: int = 0
    intermediate_bytes: int = 0  # every stored intermediate and kernel scratch side by side (no reuse)
    scratch: dict[int, int] = field(default_factory=dict)  # step index -> arena offset of its kernel scratch
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)
    ranges: dict[str, Interval] = field(default_factory=dict)  # every tensor's value interval (ranges.py)
    storage: dict[str, str] = field(default_factory=dict)  # stored tensor -> its C type where narrower than the graph's

    def stype(self, g: IntGraph, name: str) -> str:
        """The C type tensor ``name`` is stored as: int32 for an int64 tensor proved inside int32, else its own."""
        return self.storage.get(self.root.get(name, name), g.tensors[name].ctype)

    def nbytes(self, g: IntGraph, name: str) -> int:
        t = g.tensors[name]
        return t.size * {"int64_t": 8, "int32_t": 4}.get(self.stype(g, name), t.itemsize)

    def to_dict(self) -> dict[str, Any]:
        return {"arena_bytes": self.arena_bytes, "intermediate_bytes": self.intermediate_bytes,
                "tensors": len(self.offsets), "steps": len(self.steps),
                "step_kinds": {k: sum(1 for s in self.steps if s.kind == k) for k in sorted({s.kind for s in self.steps})}}


def supported(node: Node) -> bool:
    return node.op in ELEMENTWISE or node.op in REDUCE or node.op in LINEAR or node.op in DATA_OPS


def schedule(g: IntGraph) -> Plan:
    unsupported = [n for n in g.nodes if not supported(n)]
    if unsupported:
        n = unsupported[0]
        raise CodegenError(f"no C kernel for {n.op} node '{n.name}'" +
                           (f" (and {len(unsupported) - 1} more node(s))" if len(unsupported) > 1 else "") +
                           "; nothing was written")
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(g.nodes):
        for x in n.inputs:
            if x and not g.is_const(x):
                consumers.setdefault(x, []).append(i)
    root: dict[str, str] = {g.input_int8: g.input_int8}
    steps: list[Step] = []
    group: list[int] = []

    def close() -> None:
        if not group:
            return
        members = [g.nodes[i] for i in group]
        produced = {o for n in members for o in n.outputs}
        reads = _unique(x for n in members for x in n.inputs if x and not g.is_const(x) and x not in produced)
        writes = [o for o in produced if o == g.logits or any(c not in group for c in consumers.get(o, []))]
        writes = [o for n in members for o in n.outputs if o in writes]
        steps.append(Step("ew", members, reads, writes, shape=g.tensors[members[0].outputs[0]].shape))
        group.clear()

    for i, n in enumerate(g.nodes):
        if n.op in ELEMENTWISE:
            shape = g.tensors[n.outputs[0]].shape
            if group and g.tensors[g.nodes[group[0]].outputs[0]].shape != shape:
                close()
            group.append(i)
            continue
        close()
        dyn = [x for x in n.inputs if x and not g.is_const(x)]
        if n.op in DATA_OPS:
            for mv in plan_moves(g, n):
                if mv.alias is not None and mv.output != g.logits:
                    root[mv.output] = root.get(mv.alias, mv.alias)
                    continue
                srcs = [s for s in mv.sources if not g.is_const(s)]
                steps.append(Step("move", [n], srcs, [mv.output], move=mv))
            continue
        kind = "reduce" if n.op in REDUCE else ("conv" if n.op == "ConvInteger" else "matmul")
        pp = product_plan(g, n) if n.op in LINEAR else None
        steps.append(Step(kind, [n], _unique(dyn), list(n.outputs), scratch=pp.scratch if pp else 0))
    close()
    for s in steps:
        for w in s.writes:
            root.setdefault(w, w)
    plan = Plan(steps, root, ranges=value_ranges(g))
    plan.storage = _narrow_storage(g, plan)
    _plan_arena(g, plan)
    return plan


def _narrow_storage(g: IntGraph, plan: Plan) -> dict[str, str]:
    """The stored int64 tensors to keep as int32: every value proved inside int32 (ranges.py), for it and every
    view of its bytes; not the input nor the logits. A data movement copies elements between its sources and
    its output, so they are narrowed together or not at all (all int64, all proved inside int32). Element-wise
    steps, reductions and data movements read and write them through int32 pointers: half the bytes."""
    views: dict[str, list[str]] = {}
    for name, r in plan.root.items():
        views.setdefault(r, []).append(name)
    ok = {r for r, names in views.items()
          if r not in (g.input_int8, g.logits) and g.tensors[r].ctype == "int64_t"
          and all(g.tensors[x].ctype == "int64_t" and x in plan.ranges and fits(plan.ranges[x]) for x in names)}
    group: dict[str, str] = {}  # union-find over the roots a data movement connects

    def find(r: str) -> str:
        while group.get(r, r) != r:
            r = group[r]
        return r

    members = set(views)
    for st in plan.steps:
        if st.kind == "move":
            mv = st.move
            extra = [mv.output, *mv.sources] if mv is not None else []
            rs = [plan.root.get(x, x) for x in [*st.reads, *st.writes, *extra]]
            members.update(rs)  # a constant or the input among them: that group keeps the graph's types
            for r in rs[1:]:
                group[find(r)] = find(rs[0])
    bad = {find(r) for r in members if r not in ok}
    return {r: "int32_t" for r in ok if find(r) not in bad}


def _unique(xs) -> list[str]:  # type: ignore[no-untyped-def]
    out: list[str] = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out


def _plan_arena(g: IntGraph, plan: Plan) -> None:
    life: dict[str, list[int]] = {}
    for i, s in enumerate(plan.steps):
        for w in s.writes:
            r = plan.root[w]
            life.setdefault(r, [i, i])
            life[r][1] = max(life[r][1], i)
        for x in s.reads:
            r = plan.root[x]
            if r in life:
                life[r][1] = max(life[r][1], i)
    # a GEMM convolution whose output the next (element-wise) step reads may run that step on each block of its
    # outputs (cwriter.py _fuse_ew): its input and its scratch then stay alive through that step
    fusable = {i for i, s in enumerate(plan.steps[:-1]) if s.kind == "conv" and plan.steps[i + 1].kind == "ew"
               and product_plan(g, s.nodes[0]).kind == "gemm"
               and plan.root[s.writes[0]] in {plan.root[x] for x in plan.steps[i + 1].reads}}
    for i in fusable:
        for x in plan.steps[i].reads:
            r = plan.root[x]
            if r in life and life[r][1] == i:
                life[r][1] = i + 1
    for special in (g.input_int8, g.logits):
        life.pop(special, None)
    sizes = {t: _aligned(plan.nbytes(g, t)) for t in life}
    for i, s in enumerate(plan.steps):  # a kernel's scratch: a block alive during its own step only (see above)
        if s.scratch:
            life[f"#scratch{i}"] = [i, i + (i in fusable)]
            sizes[f"#scratch{i}"] = _aligned(s.scratch)
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    for t in sorted(life, key=lambda t: (-sizes[t], life[t][0], t)):
        a, b = life[t]
        busy = sorted((o, e) for o, e, f, l in placed if not (l < a or b < f))
        off = 0
        for o, e in busy:
            if off + sizes[t] <= o:
                break
            off = max(off, e)
        placed.append((off, off + sizes[t], a, b))
        if t.startswith("#scratch"):
            plan.scratch[int(t[len("#scratch"):])] = off
        else:
            plan.offsets[t] = off
    plan.arena_bytes = max((e for _, e, _, _ in placed), default=0)
    plan.intermediate_bytes = sum(sizes.values())
    plan.lifetimes = {t: (a, b) for t, (a, b) in life.items() if not t.startswith("#")}


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def check_plan(plan: Plan, g: IntGraph) -> None:
    """No two tensors (or kernel scratch blocks) alive at the same step share a byte (a self-check of the planner)."""
    items = [(plan.offsets[t], plan.offsets[t] + plan.nbytes(g, t), *plan.lifetimes[t]) for t in plan.offsets]
    items += [(o, o + plan.steps[i].scratch, i, i) for i, o in plan.scratch.items()]
    items.sort()
    for i, (o1, e1, f1, l1) in enumerate(items):
        for o2, e2, f2, l2 in items[i + 1:]:
            if o2 >= e1:
                break
            if not (l1 < f2 or l2 < f1):
                raise AssertionError("arena plan overlaps two live tensors")
