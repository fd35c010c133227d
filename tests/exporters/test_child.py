"""The torch half of an export in a child process (edgevis.exporters.child, issue 18): the same file as
in-process, a parent that never imports torch, and failures that are one error and leave nothing behind."""

import json
import os
import subprocess
import sys
import textwrap

import onnx
import pytest

from edgevis.core.errors import EdgevisError, WeightsError
from edgevis.exporters.onnx import export_onnx
from edgevis.graph.simplify import simplify_traced


def _graph(path):
    """Nodes, and every initializer's name, type and shape (a catalog model's random weights differ per build)."""
    m = onnx.load(str(path))
    return [(n.name, n.op_type, list(n.input), list(n.output)) for n in m.graph.node], sorted(
        (i.name, i.data_type, tuple(i.dims)) for i in m.graph.initializer)


def test_the_child_writes_the_file_the_process_itself_writes(tmp_path):
    here = export_onnx("test_lsnet", tmp_path / "here", simplifier=simplify_traced)
    child = export_onnx("test_lsnet", tmp_path / "child", simplifier=simplify_traced, isolate=True)
    assert _graph(child.artifact.path) == _graph(here.artifact.path)
    assert child.parity.max_abs_diff <= 1e-4 and child.parity.top1_agreement == 1.0
    assert child.simplify == {**here.simplify, "seconds": child.simplify["seconds"]}
    side = json.loads(child.artifact.sidecar.read_text())
    assert side["versions"]["torch"] == json.loads(here.artifact.sidecar.read_text())["versions"]["torch"]
    # the child's traced file, its weights and the exchange files are gone
    assert sorted(p.name for p in (tmp_path / "child").iterdir()) == ["test_lsnet.fp32.onnx",
                                                                       "test_lsnet.fp32.onnx.json"]


def test_edgevis_export_of_a_catalog_model_never_imports_torch_in_the_calling_process(tmp_path):
    # the point of the child: the process that goes on to quantize holds no torch
    code = textwrap.dedent(f"""
        import sys
        import edgevis
        run = edgevis.export("test_lsnet", output_dir={str(tmp_path)!r}, int8=edgevis.Int8Config(calib_count=8,
                             latency_search=False))
        assert run.int8 is not None and run.int8.path.exists()
        print("torch imported:", "torch" in sys.modules)
        # the same process can still export a module of its own afterwards (onnxsim was imported with torch
        # blocked: nothing may have remembered torch as missing)
        import torch
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(4, 3))
        mine = edgevis.export(net, output_dir={str(tmp_path / "mine")!r}, name="mine",
                              preprocess=edgevis.PreprocessOptions(input_size=(32, 32)))
        assert mine.fp32.parity.top1_agreement == 1.0
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch imported: False" in out.stdout


def test_edgevis_export_int8_starts_the_child_before_importing_onnx(tmp_path):
    # issue 18: the child (torch, the trace) is the job's critical path; onnx (~1 s to import) and the quantizer are
    # imported while it runs. The CLI's INT8 options and the export's simplifier once pulled onnx in before it.
    code = textwrap.dedent(f"""
        import subprocess, sys
        def started(*a, **k):
            print("onnx imported when the child starts:", "onnx" in sys.modules, "quantizer:",
                  "edgevis.quant.int8" in sys.modules, flush=True)
            raise SystemExit(0)
        subprocess.Popen = started
        sys.argv = ["edgevis", "export", "--model", "lsnet_t", "--int8", "-o", {str(tmp_path / "out")!r}]
        from edgevis.cli.app import main
        main()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "onnx imported when the child starts: False quantizer: False" in out.stdout, out.stdout + out.stderr[-2000:]


def test_an_error_in_the_child_is_the_same_one_error_and_nothing_is_left(tmp_path):
    with pytest.raises(WeightsError) as e:
        export_onnx("test_lsnet", tmp_path, weights=tmp_path / "missing.pth", isolate=True)
    assert "missing.pth" in str(e.value) and "Traceback" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_child_killed_by_a_signal_is_one_error_and_nothing_is_left(tmp_path, monkeypatch):
    # a real process dying the way an out-of-memory kill ends one
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nkill -9 $$\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(EdgevisError, match="exporting test_lsnet was killed by SIGKILL before it finished.*nothing "
                                           "was written"):
        export_onnx("test_lsnet", out, isolate=True)
    assert list(out.iterdir()) == []
    assert os.access(sys.executable, os.X_OK)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_export_stops_its_child_and_leaves_nothing(tmp_path, how):
    """A real `edgevis export` interrupted while its child traces: Ctrl-C reaches the whole process group,
    SIGTERM (a container stopping) only the parent. Exit 130, one line, and nothing in the folder."""
    import signal
    import time

    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "edgevis", "export", "--model", "test_lsnet", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(out.glob(".test_lsnet.trace-*/request.pkl")) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1]
    time.sleep(0.5)  # the child is importing torch or tracing
    if how == "ctrl-c":
        os.killpg(p.pid, signal.SIGINT)
    else:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert list(out.iterdir()) == []
