"""Data-movement ops (Reshape, Transpose, Slice, Gather, Concat, Split, Pad, Expand, ...) as strided copies.

Instead of one hand-written C kernel per ONNX op and attribute combination, the op is run
once at code-generation time (ONNX's reference implementation) on *tagged index arrays*:
element ``i`` of data input ``k`` holds ``(k + 1) << 40 | i``. The output then says, for
every element, where it comes from. That map is cut into boxes, one per source, each an
affine function of the output index (a strided copy); positions holding 0 are padding (zero).
A map that is the identity is a view: no copy at all. A map that does not cut into affine
boxes falls back to an index table (still exact, only larger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .model import CodegenError, IntGraph, Node

TAG = 40
MASK = (1 << TAG) - 1
DATA_OPS = {"Reshape", "Transpose", "Gather", "Slice", "Split", "Squeeze", "Unsqueeze", "Flatten", "Identity",
            "Pad", "Expand", "Concat", "Tile", "DepthToSpace", "SpaceToDepth", "GatherElements"}
ALIAS_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}


@dataclass(frozen=True)
class Box:
    """``out[dst + sum(i_d * dst_strides_d)] = src[base + sum(i_d * src_strides_d)]`` over ``shape``."""

    source: int  # index into Move.sources
    shape: tuple[int, ...]
    dst: int
    dst_strides: tuple[int, ...]
    base: int
    src_strides: tuple[int, ...]


@dataclass(frozen=True)
class Move:
    """One output of a data-movement node."""

    output: str
    sources: list[str]  # tensor names (dynamic or constant)
    boxes: list[Box]
    zero_fill: bool  # some positions are padding
    table: np.ndarray | None = None  # fallback: flat tagged index per output element
    alias: str | None = None  # the output is this tensor, unchanged (same bytes)


def _data_inputs(node: Node) -> list[int]:
    return list(range(len(node.inputs))) if node.op == "Concat" else [0]


def plan_moves(g: IntGraph, node: Node) -> list[Move]:
    from onnx.reference import ReferenceEvaluator

    data_idx = [i for i in _data_inputs(node) if node.inputs[i]]
    sources = [node.inputs[i] for i in data_idx]
    feeds: dict[str, np.ndarray] = {}
    inits = []
    for pos, name in enumerate(node.inputs):
        if not name:
            continue
        t = g.tensors[name]
        if pos in data_idx:
            k = data_idx.index(pos)
            feeds[f"i{pos}"] = (np.arange(t.size, dtype=np.int64) | np.int64((k + 1) << TAG)).reshape(t.shape)
        elif t.value is not None:
            v = t.value
            if node.op == "Pad" and pos == 2:
                if np.any(v != 0):
                    raise CodegenError(f"no C kernel for {node.op} node '{node.name}' (only zero padding)")
                v = np.zeros((), np.int64)
            inits.append(numpy_helper.from_array(np.asarray(v), f"i{pos}"))
        else:
            raise CodegenError(f"no C kernel for {node.op} node '{node.name}': its input {pos} ({name}) is computed "
                               "from the image (only constant shapes, indices and pads are supported)")
    ins = [f"i{p}" if n else "" for p, n in enumerate(node.inputs)]
    outs = [f"o{j}" for j in range(len(node.outputs))]
    attrs: dict[str, Any] = dict(node.attrs)
    gr = helper.make_graph([helper.make_node(node.op, ins, outs, **attrs)], "m",
                           [helper.make_tensor_value_info(k, TensorProto.INT64, None) for k in feeds],
                           [helper.make_tensor_value_info(o, TensorProto.INT64, None) for o in outs], inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    maps = ReferenceEvaluator(m).run(None, feeds)
    moves = []
    for out, mp in zip(node.outputs, maps):
        mp = np.asarray(mp, dtype=np.int64)
        if tuple(mp.shape) != g.tensors[out].shape:
            raise CodegenError(f"{node.op} node '{node.name}': shape {mp.shape} differs from the probed "
                               f"{g.tensors[out].shape}")
        moves.append(_cut(out, sources, mp))
    return moves


def _cut(out: str, sources: list[str], mp: np.ndarray) -> Move:
    flat = mp.reshape(-1)
    tags = flat >> TAG
    if len(sources) == 1 and np.all(tags == 1) and np.array_equal(flat & MASK, np.arange(flat.size)):
        return Move(out, sources, [], False, alias=sources[0])
    shape = mp.shape if mp.ndim else (1,)
    mp = mp.reshape(shape)
    dst_strides = _contiguous(shape)
    boxes: list[Box] = []
    for t in sorted(set(int(x) for x in np.unique(tags)) - {0}):
        mask = (mp >> TAG) == t
        idx = np.nonzero(mask)
        lo = [int(a.min()) for a in idx]
        hi = [int(a.max()) + 1 for a in idx]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        sub = mp[box] & MASK
        if not mask[box].all() or int(mask.sum()) != sub.size:
            return _table(out, sources, mp)
        bshape = sub.shape
        base = int(sub.reshape(-1)[0])
        strides = []
        for d, n in enumerate(bshape):
            if n == 1:
                strides.append(0)
                continue
            ix = [0] * len(bshape)
            ix[d] = 1
            strides.append(int(sub[tuple(ix)]) - base)
        expect = base + sum(np.arange(n).reshape([-1 if e == d else 1 for e in range(len(bshape))]) * s
                            for d, (n, s) in enumerate(zip(bshape, strides)))
        if not np.array_equal(np.broadcast_to(expect, bshape), sub):
            return _table(out, sources, mp)
        dst = int(sum(a * s for a, s in zip(lo, dst_strides)))
        boxes.append(Box(t - 1, tuple(bshape), dst, tuple(dst_strides), base, tuple(strides)))
    return Move(out, sources, boxes, bool(np.any(tags == 0)))


def _table(out: str, sources: list[str], mp: np.ndarray) -> Move:
    return Move(out, sources, [], bool(np.any((mp >> TAG) == 0)), table=mp.reshape(-1))


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    s, acc = [], 1
    for n in reversed(shape):
        s.append(acc)
        acc *= n
    return tuple(reversed(s))
