"""The crash probe: a real ONNX Runtime segfault, in a child, becomes one line; the common path skips it."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.core.errors import NativeCrashError
from edgevis.core.files import sha256_file
from edgevis.runtimes import isolate


def layernorm_empty_bias(path):
    """``LayerNormalization(x, scale, "")``: onnx.checker accepts it, ORT 1.2x-1.3x segfaults at ALL."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])
    scale = numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "scale")
    g = helper.make_graph([helper.make_node("LayerNormalization", ["x", "scale", ""], ["y"], axis=-1)],
                          "g", [x], [y], [scale])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


def test_a_native_crash_in_the_child_is_named_with_its_signal(tmp_path):
    f = layernorm_empty_bias(tmp_path / "ln.onnx")
    why = isolate.probe(f)  # the file exactly as written: ORT's optimizer segfaults on it
    assert why is not None and "crashed (SIGSEGV)" in why and str(f) in why
    # as edgevis hands it to ORT (the empty bias dropped) it loads and runs
    isolate._VERDICTS.clear()
    isolate.check_loads(f)
    # a crash verdict raises one NativeCrashError naming the file
    isolate._VERDICTS[(sha256_file(f), "all", ("CPUExecutionProvider",))] = why  # ORT's defaults, spelled out
    with pytest.raises(NativeCrashError, match="ln.onnx"):
        isolate.check_loads(f)
    isolate._VERDICTS.clear()


def test_a_probe_that_runs_past_its_time_is_a_hang(tmp_path):
    f = layernorm_empty_bias(tmp_path / "ln.onnx")
    why = isolate.probe(f, timeout=0.0001, optimization="basic")
    assert why is not None and "did not finish" in why


def test_files_edgevis_wrote_are_not_probed_and_foreign_ones_once(tmp_path, monkeypatch):
    f = layernorm_empty_bias(tmp_path / "ln.onnx")
    calls = []
    real = isolate.probe
    monkeypatch.setattr(isolate, "probe", lambda *a, **k: calls.append(a) or real(*a, **k))
    isolate._VERDICTS.clear()
    isolate.check_loads(f)
    isolate.check_loads(f)  # the verdict is cached by content
    assert len(calls) == 1
    (tmp_path / "ln.onnx.json").write_text(json.dumps({"edgevis": "0.1.0", "sha256": sha256_file(f)}))
    isolate._VERDICTS.clear()
    isolate.check_loads(f)
    assert len(calls) == 1  # a file whose sidecar names edgevis and its sha256: ORT ran it when it was written
    (tmp_path / "ln.onnx.json").write_text(json.dumps({"edgevis": "0.1.0", "sha256": "0" * 64}))
    isolate._VERDICTS.clear()
    isolate.check_loads(f)
    assert len(calls) == 2  # a sidecar describing another file vouches for nothing
    monkeypatch.setenv("EDGEVIS_ISOLATE", "0")
    isolate._VERDICTS.clear()
    isolate.check_loads(f)
    assert len(calls) == 2
    isolate._VERDICTS.clear()
