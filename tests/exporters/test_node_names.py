"""Exported node names carry the torch module they came from, and keep it through simplification."""

import onnx

from edgevis.catalog import create_model
from edgevis.exporters.names import readable_node_names


def test_catalog_export_names_nodes_after_torch_modules(lsnet_t_export):
    model = onnx.load(str(lsnet_t_export.artifact.path), load_external_data=False)
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names)
    modules = {name for name, _ in create_model("lsnet_t").named_modules()}
    named = [n for n in model.graph.node if "/" in n.name]
    # nearly every node of the simplified file says its module (a few are made by the simplifier)
    assert len(named) >= 0.8 * len(names), names[:20]
    for n in named:
        path, op = n.name.rsplit("/", 1)
        assert path in modules, n.name
        assert op.split("_")[0] == n.op_type, n.name
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert "patch_embed.0/Conv" in convs


def _node(op, scopes, name):
    n = onnx.helper.make_node(op, ["x"], [name + "_out"], name=name)
    if scopes is not None:
        n.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=repr(scopes))
    return n


def test_renaming_is_unique_and_never_takes_a_kept_name():
    nodes = [_node("Relu", ["", "a", "relu"], "node_relu"), _node("Relu", ["", "a", "relu_1"], "node_relu_1"),
             _node("Add", None, "a/Relu_2"),  # no scopes: keeps its name, which a renamed node must avoid
             _node("Relu", ["", "a", "relu_2"], "node_relu_2"), _node("Mul", ["", "mul"], "node_mul"),
             _node("Sub", ["garbage"], "keep_me"), _node("Sub", None, "")]
    nodes[5].metadata_props[0].value = "not a python list ["
    graph = onnx.helper.make_graph(nodes, "g", [], [])
    model = onnx.helper.make_model(graph)
    assert readable_node_names(model) == 4
    assert [n.name for n in model.graph.node] == ["a/Relu", "a/Relu_1", "a/Relu_2", "a/Relu_3", "Mul", "keep_me", ""]
