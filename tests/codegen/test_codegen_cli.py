"""`edgevis codegen` as users run it: a small integer-only file end to end, and each kind of bad input
refused with one `error:` line, a non-zero exit and nothing written."""

import hashlib
import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cbuild import build, ort_int8_and_logits, run

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "cli"))
from clihelpers import assert_one_line_error  # noqa: E402
from clihelpers import run as cli  # noqa: E402


def _model(nodes, inits, out_type=TensorProto.FLOAT):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                          [helper.make_tensor_value_info("y", out_type, [1, 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _integer_model(extra=None):
    """x -> QuantizeLinear -> int64: Mul by 3, floor division by 8 (the lowering's Div(a - Mod(a, d), d)),
    Transpose, Reshape, a per-element add -> int32 -> DequantizeLinear."""
    c = lambda v, n, t=np.int64: numpy_helper.from_array(np.asarray(v, t), n)  # noqa: E731
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("Cast", ["q"], ["q64"], to=TensorProto.INT64),
             helper.make_node("Mul", ["q64", "three"], ["m"]),
             helper.make_node("Mod", ["m", "eight"], ["r"], fmod=0),
             helper.make_node("Sub", ["m", "r"], ["d0"]),
             helper.make_node("Div", ["d0", "eight"], ["d"]),
             helper.make_node("Transpose", ["d"], ["t"], perm=[0, 3, 2, 1]),
             helper.make_node("Reshape", ["t", "shape"], ["f"]),
             helper.make_node("ReduceSum", ["f", "axes"], ["rs"], keepdims=0),
             helper.make_node("Add", ["rs", "bias"], ["a"])]
    last = "a"
    if extra:
        nodes.append(helper.make_node(extra, ["a", "zero"], ["e"], name="odd_node"))
        last = "e"
    nodes += [helper.make_node("Cast", [last], ["a32"], to=TensorProto.INT32),
              helper.make_node("DequantizeLinear", ["a32", "s32", "z32"], ["y"])]
    inits = [c(0.05, "s", np.float32), c(0, "z", np.int8), c(0.25, "s32", np.float32), c(0, "z32", np.int32),
             c(3, "three"), c(8, "eight"), c([1, 6, 4], "shape"), c([2], "axes"), c([[1, -2, 3, -4, 5, -6]], "bias"),
             c(0, "zero")]
    return _model(nodes, inits)


def _save(model, path, precision="integer-only", sidecar=True):
    onnx.save(model, str(path))
    if sidecar:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".json").write_text(json.dumps({"precision": precision, "sha256": sha,
                                                                   "model": "tiny"}))
    return path


def test_tiny_integer_model_through_the_cli(tmp_path):
    src = _save(_integer_model(), tmp_path / "tiny.integer_only.onnx")
    p = cli("codegen", src, "-o", tmp_path / "c", "--json")
    r = json.loads(p.stdout)
    assert r["name"] == "tiny" and r["classes"] == 6 and r["input_shape"] == [1, 2, 3, 4]
    names = sorted(f.name for f in (tmp_path / "c").iterdir())
    assert names == ["tiny.c", "tiny.c.json", "tiny.h", "tiny_input.c", "tiny_weights.c"]
    from edgevis.codegen import emit_c

    lib = emit_c(src, tmp_path / "c2")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 2, 3, 4)).astype(np.float32) * s for s in (1.0, 3.0, 100.0)]
    x8, logits = ort_int8_and_logits(src, xs)
    got = run(build(lib, tmp_path / "tiny"), x8.reshape(3, -1), 6)
    assert np.array_equal(got, logits.reshape(3, 6))
    assert len(set(got.reshape(-1).tolist())) > 6  # the values vary: not a constant


def _assert_refused(tmp_path, src, pattern, out="c"):
    p = cli("codegen", src, "-o", tmp_path / out, check_ok=False)
    assert_one_line_error(p, pattern)
    assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())


def test_fp32_and_int8_files_are_refused(tmp_path):
    fp32 = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "sh"], ["y"])],
                  [numpy_helper.from_array(np.asarray([1, 6, 4], np.int64), "sh")])
    _assert_refused(tmp_path, _save(fp32, tmp_path / "m.fp32.onnx", "fp32"), r"not an integer-only model")
    qdq = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
                  helper.make_node("Relu", ["d"], ["r"]), helper.make_node("Reshape", ["r", "sh"], ["y"])],
                 [numpy_helper.from_array(np.asarray(0.1, np.float32), "s"),
                  numpy_helper.from_array(np.asarray(0, np.int8), "z"),
                  numpy_helper.from_array(np.asarray([1, 6, 4], np.int64), "sh")])
    _assert_refused(tmp_path, _save(qdq, tmp_path / "m.int8.onnx", "int8"), r"not an integer-only model")


def test_missing_and_mismatched_sidecar(tmp_path):
    src = _save(_integer_model(), tmp_path / "a.integer_only.onnx", sidecar=False)
    _assert_refused(tmp_path, src, r"has no sidecar")
    src = _save(_integer_model(), tmp_path / "b.integer_only.onnx")
    other = _save(_integer_model("Max"), tmp_path / "other.onnx")
    src.with_name(src.name + ".json").write_text(other.with_name(other.name + ".json").read_text())
    _assert_refused(tmp_path, src, r"describes another file")
    src = _save(_integer_model(), tmp_path / "c.integer_only.onnx", precision="int8")
    _assert_refused(tmp_path, src, r"precision 'int8', not integer-only")


def test_op_without_c_kernel_is_named(tmp_path):
    src = _save(_integer_model("BitwiseAnd"), tmp_path / "odd.integer_only.onnx")
    _assert_refused(tmp_path, src, r"no C kernel for BitwiseAnd node 'odd_node'")


@pytest.mark.parametrize("case", ["under_a_file", "not_onnx"])
def test_unwritable_output_and_unreadable_input(tmp_path, case):
    src = _save(_integer_model(), tmp_path / "t.integer_only.onnx")
    if case == "under_a_file":
        (tmp_path / "file").write_text("x")
        p = cli("codegen", src, "-o", tmp_path / "file" / "c", check_ok=False)
        assert_one_line_error(p, r"cannot create output directory|not a directory")
        assert (tmp_path / "file").read_text() == "x"
    else:
        bad = tmp_path / "junk.integer_only.onnx"
        bad.write_bytes(b"not a model")
        _assert_refused(tmp_path, bad, r"junk")
