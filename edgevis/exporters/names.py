"""Node names that say which torch module a node came from.

torch's dynamo exporter names nodes after its own counters (``node_Conv_1963``) and puts the
module path in node metadata (``pkg.torch.onnx.name_scopes``). Every tool downstream drops that
metadata (onnxsim and onnxslim rebuild the nodes; ORT's quantizer and profiler only carry names),
so a per-layer table, an ORT trace or Netron would show the counters. Node names survive all of
them, so the module path goes into the name: ``blocks2.0.mixer.qkv/Conv``, as the TorchScript
exporter does with its ``/blocks2/blocks2.0/.../Conv`` scopes. No library does this rename.
"""

from __future__ import annotations

import ast
from typing import Any

SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def _module_path(node: Any) -> str | None:
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes):
                # the last entry is the fx node's own name; the one before it the deepest module
                return scopes[-2] if len(scopes) >= 2 else ""
    return None


def readable_node_names(model: Any) -> int:
    """Rename the nodes of ``model`` (a ModelProto, changed in place) that carry torch's module
    scopes to ``MODULE/OpType`` (``_1``, ``_2``... where a module has several of one op); returns
    how many were renamed. Nodes without scopes, and subgraphs, keep their names; nothing is
    renamed when a new name would collide with a name that is kept."""
    nodes = list(model.graph.node)
    wanted: list[str | None] = []
    for node in nodes:
        path = _module_path(node)
        wanted.append(None if path is None else (f"{path}/{node.op_type}" if path else node.op_type))
    kept = {n.name for n, w in zip(nodes, wanted) if w is None and n.name}
    used: set[str] = set(kept)
    counts: dict[str, int] = {}
    new: list[str | None] = []
    for w in wanted:
        if w is None:
            new.append(None)
            continue
        name, k = w, counts.get(w, 0)
        while name in used:
            k += 1
            name = f"{w}_{k}"
        counts[w] = k
        used.add(name)
        new.append(name)
    renamed = 0
    for node, name in zip(nodes, new):
        if name is not None and node.name != name:
            node.name = name
            renamed += 1
    return renamed
