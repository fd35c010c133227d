"""Export behaviour beyond the registry sweep: failing parity, input sizes, fixed batch."""

import json

import numpy as np
import pytest

from edgevis.core.errors import EdgevisError, ParityError
from edgevis.exporters.onnx import ExportConfig, export_onnx
from edgevis.runtimes.ort import OrtRunner


def test_parity_failure_fails_and_writes_nothing(tmp_path):
    # a zero tolerance cannot be met by float32 kernels that differ from torch's
    with pytest.raises(ParityError, match="was not written"):
        export_onnx("deit_tiny_patch16_224", tmp_path, config=ExportConfig(atol=0.0, rtol=0.0))
    assert list(tmp_path.iterdir()) == []


def test_non_square_input_size_and_fixed_batch(tmp_path):
    res = export_onnx("lsnet_t", tmp_path, config=ExportConfig(input_size=(192, 256), batch=2))
    side = json.loads(res.artifact.sidecar.read_text())
    assert side["preprocess"]["input_size"] == [192, 256]
    assert side["input"]["shape"] == [2, 3, 192, 256]
    with OrtRunner(res.artifact.path) as r:
        assert r.input_shape == [2, 3, 192, 256]
        # a fixed-batch model still serves 3 images through infer_batched (padding the last batch)
        assert r.infer_batched(np.zeros((3, 3, 192, 256), np.float32)).shape == (3, 1000)


def test_config_validation():
    with pytest.raises(EdgevisError, match="opset"):
        ExportConfig(opset=7)
    with pytest.raises(EdgevisError, match="input-size"):
        ExportConfig(input_size=(8, 8))
    with pytest.raises(EdgevisError, match="exporter"):
        ExportConfig(exporter="onnxscript")  # type: ignore[arg-type]


def test_a_plain_module_is_one_clear_error_naming_edgevis_export(tmp_path):
    # issue 13: export_onnx(model=<a plain nn.Module>) died with an AttributeError traceback
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3))
    for deploy in (True, False):
        with pytest.raises(EdgevisError, match=r"your own Sequential with edgevis\.export\(module, preprocess="):
            export_onnx("mine", tmp_path / "out", model=net, deploy=deploy)
    assert not (tmp_path / "out").exists()


def _graph_key(model) -> list:  # type: ignore[no-untyped-def]
    """A graph node for node: op, name, attributes, and each input as the node output or weight values it reads."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    made = {model.graph.input[0].name: "input"}
    key = []
    for k, n in enumerate(model.graph.node):
        ins = [made.get(i) or (inits[i].dtype.str, inits[i].shape, inits[i].tobytes()) if i in inits or i in made
               else i for i in n.input]
        made.update({o: f"{k}:{j}" for j, o in enumerate(n.output)})
        key.append((n.op_type, n.name, ins, [a.SerializeToString() for a in n.attribute]))
    return key


def test_a_trace_onnxsim_simplifies_next_gives_the_graph_of_torchs_full_optimizer(tmp_path, monkeypatch):
    """A trace that onnxsim simplifies next runs torch's ONNX optimizer with only the rewrite rules onnxsim does
    not repeat (issue 18: the full rule set was 4-5 s of lsnet_t's 9-10 s export); once simplified, the graph is
    the one the full optimizer gives, node for node (efficientnet_lite0: its zero biases dropped, Pads folded
    into Convs)."""
    import torch

    from edgevis.exporters.onnx import _load_traced, trace_model
    from edgevis.graph.simplify import simplify_traced

    export, asked = torch.onnx.export, []

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        asked.append(k.get("optimize", True))
        return export(*a, **k)

    monkeypatch.setattr(torch.onnx, "export", spy)
    graphs = []
    for simplified in (False, True):
        torch.manual_seed(0)
        path = tmp_path / f"{simplified}.onnx"
        traced = trace_model("efficientnet_lite0", path, simplified=simplified)
        model, summary = simplify_traced(_load_traced("efficientnet_lite0", path, traced), traced.inputs[:1], [])
        assert summary is not None and summary["tool"] == "onnxsim"
        graphs.append(_graph_key(model))
    assert asked == [True, False]  # torch's full optimizer, then the cut-down one
    assert graphs[0] == graphs[1] and len(graphs[0]) > 50

    # the cut-down optimizer uses onnxscript's private passes: one that fails part-way (after editing the
    # model in place) costs a second trace with torch's whole optimizer, not the export or the graph
    import edgevis.exporters.onnx as onnx_exporter

    def fails_part_way(model):  # type: ignore[no-untyped-def]
        model.graph.initializers.clear()
        raise TypeError("FoldConstantsPass() got an unexpected keyword argument")

    monkeypatch.setattr(onnx_exporter, "_light_optimizer", lambda: fails_part_way)
    torch.manual_seed(0)
    traced = trace_model("efficientnet_lite0", tmp_path / "fallback.onnx", simplified=True)
    model, _ = simplify_traced(_load_traced("efficientnet_lite0", tmp_path / "fallback.onnx", traced), traced.inputs[:1], [])
    assert asked == [True, False, False, True] and _graph_key(model) == graphs[0]
