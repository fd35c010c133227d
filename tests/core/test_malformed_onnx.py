"""Malformed ONNX files: one OnnxFileError line from the loader and the commands, never a traceback."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.core.errors import OnnxFileError
from edgevis.core.onnxfile import load_onnx, random_feed


def model(in_type=TensorProto.FLOAT, in_shape=(1, 4)):
    x = helper.make_tensor_value_info("xin", in_type, list(in_shape))
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "wwww")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    return helper.make_model(helper.make_graph([helper.make_node("MatMul", ["xin", "wwww"], ["y"])], "g", [x], [y], [w]),
                             opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def short_data(m):
    m.graph.initializer[0].raw_data = b"\0" * 12


def long_data(m):
    m.graph.initializer[0].raw_data = b"\0" * 68


def unknown_type(m):
    m.graph.initializer[0].data_type = 99


def typed_count(m):
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.float_data.extend([1.0] * 3)


@pytest.mark.parametrize("breakit, message", [
    (short_data, "holds 12 bytes of data, but its shape \\[4, 4\\] and type FLOAT need 64"),
    (long_data, "holds 68 bytes"),
    (unknown_type, "unknown data type \\(99\\)"),
    (typed_count, "holds 3 values in float_data"),
])
@pytest.mark.parametrize("check", [True, False])
def test_tensors_that_disagree_with_their_shape(tmp_path, breakit, message, check):
    m = model()
    breakit(m)
    f = tmp_path / "m.onnx"
    f.write_bytes(m.SerializeToString())
    with pytest.raises(OnnxFileError, match=message):
        load_onnx(f, check=check)


@pytest.mark.parametrize("name, field", [(b"wwww", "graph.node.input"), (b"batch", "dim_param")])
def test_a_name_that_is_not_utf8(tmp_path, name, field):
    m = model(in_shape=("batch", 4))
    f = tmp_path / "m.onnx"
    f.write_bytes(m.SerializeToString().replace(name, b"\xff" + name[1:]))
    with pytest.raises(OnnxFileError, match=f"{field}.* is not UTF-8 text"):
        load_onnx(f, check=False)


@pytest.mark.parametrize("kw, message", [
    ({"in_type": TensorProto.STRING}, "of type STRING"), ({"in_type": TensorProto.BFLOAT16}, "of type BFLOAT16"),
    ({"in_type": TensorProto.UNDEFINED}, "of type UNDEFINED"), ({"in_shape": (2**16, 2**15)}, "too many"),
])
def test_inputs_no_test_input_can_be_made_for(kw, message):
    with pytest.raises(OnnxFileError, match=message):
        random_feed(model(**kw), source="m.onnx")


@pytest.mark.parametrize("command", [["inspect"], ["lint"], ["simplify"]])
def test_commands_print_one_error_line(tmp_path, capsys, command):
    from edgevis.cli.app import main

    m = model()
    short_data(m)
    f = tmp_path / "m.onnx"
    f.write_bytes(m.SerializeToString())
    with pytest.raises(SystemExit) as e:
        main([*command, str(f)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert "holds 12 bytes" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
