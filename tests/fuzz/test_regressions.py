"""One reproducer per failure class the fuzz campaign found in ``quantize``, each shrunk to the node it needs.

Each runs the real command (ONNX Runtime's quantizer, real calibration on PNG files) on a seed of
:mod:`fuzzlib` with one thing changed, and checks the promise: one ``error:`` line and a non-zero exit,
or a clean success - never a traceback, ORT's own log lines, a native crash, or a file left behind.
"""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return fuzzlib.write_inputs(tmp_path_factory.mktemp("inputs"))


def _quantize(model, tmp_path, inputs, capfd, command="quantize"):
    """Run ``edgevis quantize --int8`` (or another command) in this process on ``model``: (exit code, stderr,
    files left in the output folder)."""
    from edgevis.cli.app import main

    src = tmp_path / "m.onnx"
    src.write_bytes(model.SerializeToString())
    out = tmp_path / "out"
    out.mkdir()
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        main(fuzzlib.argv_for(command, src, out, inputs))
    return e.value.code, capfd.readouterr().err, sorted(p.name for p in out.iterdir())


def _rewire(model, op_type, index, name):
    node = next(n for n in model.graph.node if n.op_type == op_type)
    node.input[index] = name
    return model


def test_a_graph_ort_cannot_optimize_is_one_line_and_leaves_no_adopted_copy(tmp_path, inputs, capfd):
    # the Gemm reads the 4-D Relu output: ORT's quantizer pre-processing logged its optimizer's traceback
    # (and carried on), then calibration failed after the adopted FP32 copy had landed in the output folder
    model = _rewire(fuzzlib.seed_models()["cnn"], "Gemm", 0, "r1")
    code, err, left = _quantize(model, tmp_path, inputs, capfd)
    assert code != 0
    assert [ln[:6] for ln in err.splitlines()] == ["error:"], err
    assert "m.onnx" in err and "Traceback" not in err
    assert left == []  # the adopted copy is taken back: the run quantized nothing


def test_a_kernel_failing_in_calibration_is_one_line_without_orts_log(tmp_path, inputs, capfd):
    # DequantizeLinear's zero point is an activation tensor: ORT's calibration session logged the failing
    # kernel in colour on stderr (its default logger) before the error edgevis reports
    model = _rewire(fuzzlib.seed_models()["qdq"], "DequantizeLinear", 2, "xq")
    code, err, left = _quantize(model, tmp_path, inputs, capfd)
    assert code != 0
    assert [ln[:6] for ln in err.splitlines()] == ["error:"], err
    assert "\x1b[" not in err and left == []


def test_a_crashing_file_with_an_edgevis_preprocessing_record_is_still_respelled(tmp_path, inputs):
    # the crash seed carries edgevis.preprocess metadata (as a file edgevis wrote would) but no sidecar
    # vouching for it: quantize trusted the record, skipped the respelling and the probe, and ORT segfaulted on
    # the empty LayerNormalization bias. A real process, so a crash is an exit code, not a dead test run.
    model = fuzzlib.seed_models()["ln"]
    model.opset_import[0].version = 23
    src = tmp_path / "ln.onnx"
    src.write_bytes(model.SerializeToString())
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run([sys.executable, "-m", "edgevis", *fuzzlib.argv_for("quantize", src, out, inputs)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(x.name for x in out.iterdir()) == ["ln.fp32.onnx", "ln.fp32.onnx.json", "ln.int8.onnx",
                                                     "ln.int8.onnx.json"]
    import onnx

    ln = [n for n in onnx.load(str(out / "ln.fp32.onnx")).graph.node if n.op_type == "LayerNormalization"]
    assert [list(n.input) for n in ln] == [["f", "scale"]]  # respelled in the copy it quantized


@pytest.mark.parametrize("computed", ["3-D", "0-D"])
def test_a_graph_computing_other_shapes_than_it_declares_is_one_line(tmp_path, inputs, capfd, computed):
    # the graph declares (batch, 3) scores and so passes every check of the declared output, but computes
    # (batch, 3, 1) - ReduceMean without its keepdims=0: the fidelity report's top-5 overlap died on it with a
    # TypeError - or a scalar - ReduceMean over all axes: np.concatenate of the reference outputs, ValueError
    model = fuzzlib.seed_models()["ln"]
    ln, rm = (next(n for n in model.graph.node if n.op_type == op) for op in ("LayerNormalization", "ReduceMean"))
    del ln.input[2]  # the crash pattern is another test's business
    if computed == "3-D":
        del rm.attribute[:]
    else:
        rm.input[1] = ""
    code, err, left = _quantize(model, tmp_path, inputs, capfd)
    assert code != 0
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    shape = ", 3, 1)" if computed == "3-D" else "shape ()"
    assert len(errors) == 1 and shape in errors[0] and "m.onnx" in errors[0] and "(batch, classes)" in errors[0], err
    assert "Traceback" not in err and left == []


def test_profile_refuses_an_input_too_large_to_make_before_numpy_is_asked(tmp_path, inputs, capfd):
    # a fixed 1x3x65536x32768 input: profile asked numpy for 48 GiB of random values (ArrayMemoryError)
    model = fuzzlib.seed_models()["cnn"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[2].dim_value, dims[3].dim_value = 1, 65536, 32768
    code, err, _ = _quantize(model, tmp_path, inputs, capfd, command="profile")
    assert code != 0
    assert [ln[:6] for ln in err.splitlines() if ln.strip()] == ["error:"], err
    assert "6442450944 elements" in err


def test_simplify_compares_a_scalar_output_across_its_test_inputs(tmp_path, inputs, capfd):
    # ReduceMean over every axis (its axes input left empty, keepdims=0) gives a 0-D output: the parity check
    # joined each test input's outputs with np.concatenate, which refuses 0-D arrays (ValueError traceback)
    model = fuzzlib.seed_models()["ln"]
    ln, rm = (next(n for n in model.graph.node if n.op_type == op) for op in ("LayerNormalization", "ReduceMean"))
    del ln.input[2]
    rm.input[1] = ""
    code, err, left = _quantize(model, tmp_path, inputs, capfd, command="simplify")
    assert code == 0, err
    assert "Traceback" not in err and left == ["m.sim.onnx", "m.sim.onnx.json"]


def test_quantize_refuses_a_fixed_batch_too_large_to_pad_before_any_work(tmp_path, inputs, capfd):
    # a fixed batch of 2^31: calibration padded its four images to the batch one Python list append at a time
    # (minutes of CPU, then numpy asked for terabytes) - a hang to the user
    model = fuzzlib.seed_models()["cnn"]
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2**31
    code, err, left = _quantize(model, tmp_path, inputs, capfd)
    assert code != 0
    assert [ln[:6] for ln in err.splitlines() if ln.strip()] == ["error:"], err
    assert "fixed batch of 2147483648" in err and left == []


def test_unnamed_nodes_survive_the_latency_search(tmp_path, inputs, capfd):
    # the cnn seed's nodes have no names (ONNX allows it): placement keys nodes by name, so taking the Conv back
    # to float rebuilt it from the Gemm's inputs and ORT refused the cyclic candidate in the latency search
    from edgevis.cli.app import main

    model = fuzzlib.seed_models()["cnn"]
    assert sum(1 for n in model.graph.node if not n.name) >= 2
    src = tmp_path / "m.onnx"
    src.write_bytes(model.SerializeToString())
    argv = [a for a in fuzzlib.argv_for("quantize", src, tmp_path / "out", inputs) if a != "--no-latency-search"]
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capfd.readouterr().err
    assert e.value.code == 0, err
    import onnx

    q = onnx.load(str(tmp_path / "out" / "m.int8.onnx"))
    names = [n.name for n in q.graph.node]
    assert all(names) and len(set(names)) == len(names)
