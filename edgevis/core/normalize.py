"""Rewrite what is known to crash ONNX Runtime into what means the same and does not.

ONNX lets a node name an optional input ``""`` to say "not given"; a trailing
``""`` means exactly what leaving the input out means. ONNX Runtime 1.2x does not
always treat them alike: ``LayerNormalization(x, scale, "")`` - accepted by
``onnx.checker`` - segfaults its graph optimizer at the EXTENDED and ALL levels
(the LayerNorm fusion reads the absent bias). A segfault cannot be caught in
Python, so files edgevis did not write go through :func:`normalize_model` before
ONNX Runtime sees them, and ``edgevis lint`` reports the pattern
(:func:`empty_trailing_io`).

Only spec-equivalent rewrites live here: a node with its trailing empty inputs
and outputs dropped is the same node.
"""

from __future__ import annotations

from typing import Iterator

import onnx


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph inside it (If/Loop/Scan bodies)."""
    yield graph
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _graphs(g)


def _trailing_empty(names) -> int:  # type: ignore[no-untyped-def]
    k = 0
    for name in reversed(list(names)):
        if name:
            break
        k += 1
    return k


def empty_trailing_io(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes (in every graph) that name a trailing input or output ``""``."""
    return [n for g in _graphs(model.graph) for n in g.node
            if _trailing_empty(n.input) or min(_trailing_empty(n.output), len(n.output) - 1) > 0]


def normalize_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """``model`` with trailing empty inputs/outputs dropped from every node, and how many nodes changed.

    Returns ``model`` itself (not a copy) when nothing needs changing, so the common path costs a scan.
    """
    if not empty_trailing_io(model):
        return model, 0
    m = onnx.ModelProto()
    m.CopyFrom(model)
    changed = 0
    for g in _graphs(m.graph):
        for n in g.node:
            # a node keeps at least one output (a node with none is another malformation, left to the checker)
            ki, ko = _trailing_empty(n.input), min(_trailing_empty(n.output), len(n.output) - 1)
            if ki or ko:
                changed += 1
                for _ in range(ki):
                    n.input.pop()
                for _ in range(ko):
                    n.output.pop()
    return m, changed
