"""One boundary for ONNX Runtime: its exceptions become one-line errors naming the file; predict checks
the graph it is given; ORT-saved graphs and sidecars are never trusted blindly."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.core.errors import EdgevisError, OnnxFileError, OrtError
from edgevis.runtimes.guard import RuntimeMismatchError, check_sidecar_matches_file
from edgevis.runtimes.ort import run_session, session_from_onnx
from edgevis.runtimes.predict import predict_image

PRE = {"input_size": [8, 8], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
       "crop_pct": 1.0}


def classifier(path, *, in_type=TensorProto.FLOAT, in_shape=("n", 3, 8, 8), pre=PRE, out_shape=("n", 3),
               extra_input=False):
    x = helper.make_tensor_value_info("x", in_type, list(in_shape))
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0)]
    inits = [numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    out = "m"
    if in_type != TensorProto.FLOAT:
        nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
                 helper.make_node("ReduceMean", ["xf", "axes"], ["m"], keepdims=0)]
    inputs = [x]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 3]))
        nodes.append(helper.make_node("Add", ["m", "z"], ["s"]))
        out = "s"
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, [y], inits),
                          opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    if pre is not None:
        e = m.metadata_props.add()
        e.key, e.value = "edgevis.preprocess", json.dumps(pre)
    onnx.save(m, path)
    return path


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    p = tmp_path / "img.png"
    Image.fromarray(np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)).save(p)
    return p


def test_a_model_ort_refuses_is_one_line_naming_the_file(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    # an op no ONNX Runtime kernel implements (load_onnx(check=False) lets it through to ORT)
    m = helper.make_model(helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    f = tmp_path / "bad.onnx"
    onnx.save(m, f)
    with pytest.raises(OrtError) as e:
        session_from_onnx(f)
    assert str(bad := e.value).startswith(f"ONNX Runtime cannot load {f}") and "\n" not in str(bad)
    with pytest.raises(OrtError, match="cannot load the candidate"):
        session_from_onnx(m.SerializeToString(), source="the candidate")


def test_a_run_ort_refuses_is_one_line(tmp_path):
    f = classifier(tmp_path / "c.onnx")
    sess = session_from_onnx(f)
    with pytest.raises(OrtError, match=r"cannot run c\.onnx"):
        run_session(sess, {"x": np.zeros((1, 3, 8, 8), np.int64)}, source="c.onnx")
    assert run_session(sess, {"x": np.ones((2, 3, 8, 8), np.float32)})[0].shape == (2, 3)


@pytest.mark.parametrize("kw, message", [
    ({"in_type": TensorProto.INT64}, "is of type INT64"),
    ({"in_shape": ("n", 3, 8, 8, 1)}, "has 5 dimensions"),
    ({"extra_input": True}, "takes 2 inputs"),
    ({"in_shape": ("n", 3, 16, 16)}, "the record and the graph disagree"),
    ({"out_shape": ("n", 3, 1)}, "has 3 dimensions"),
    ({"in_shape": (2**31, 3, 8, 8)}, "fixed batch of 2147483648"),
    ({"pre": {**PRE, "interpolation": "magic"}}, "'interpolation'"),
    ({"pre": {**PRE, "input_size": [8]}}, "'input_size' must be a list of 2"),
])
def test_predict_checks_the_graph_against_what_it_needs(tmp_path, image, kw, message):
    f = classifier(tmp_path / "c.onnx", **kw)
    with pytest.raises(EdgevisError, match=message):
        predict_image(f, image)


def test_predict_says_when_a_model_is_unverified(tmp_path, image):
    f = classifier(tmp_path / "c.onnx")
    r = predict_image(f, image, top=2)
    assert len(r["top"]) == 2 and "has no sidecar" in r["unverified"]
    (tmp_path / "c.onnx.json").write_text("[1, 2]")
    assert "unreadable (it holds a JSON list, not an object)" in predict_image(f, image)["unverified"]
    from edgevis.core.files import sha256_file

    (tmp_path / "c.onnx.json").write_text(json.dumps({"sha256": sha256_file(f)}))
    assert predict_image(f, image)["unverified"] is None
    # a sidecar describing another file is refused, in the C++ runtime's words (tests/cpp/test_classify.py)
    (tmp_path / "c.onnx.json").write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(EdgevisError, match=r"c\.onnx cannot load here: its sidecar c\.onnx\.json describes another "
                                           r"file \(sha256 differs\): it was replaced or edited$"):
        predict_image(f, image)


def test_an_ort_saved_graph_with_an_unreadable_sidecar_is_refused(tmp_path):
    import onnxruntime as ort

    src = classifier(tmp_path / "c.onnx")
    saved = tmp_path / "c.opt.onnx"
    o = ort.SessionOptions()
    o.optimized_model_filepath = str(saved)
    o.log_severity_level = 3
    ort.InferenceSession(str(src), o, providers=["CPUExecutionProvider"])
    session_from_onnx(saved)  # no sidecar at all: loads (nothing claims it is guarded)
    (tmp_path / "c.opt.onnx.json").write_text('"not an object"')
    with pytest.raises(RuntimeMismatchError, match="sidecar c.opt.onnx.json is unreadable"):
        session_from_onnx(saved)


def test_a_sidecar_without_a_hash_vouches_for_nothing(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert "records no sha256" in check_sidecar_matches_file({"precision": "int8"}, f)
    assert "sha256 differs" in check_sidecar_matches_file({"sha256": "00"}, f)


def test_build_writes_model_and_sidecar_together(tmp_path, monkeypatch):
    from edgevis.core import files
    from edgevis.runtimes.ort_build import build_ort

    f = classifier(tmp_path / "c.onnx")
    out = tmp_path / "out"

    def broken(*a, **k):
        raise KeyboardInterrupt  # interrupted between the model and its sidecar

    monkeypatch.setattr(files, "write_derived_sidecar", broken)
    with pytest.raises(KeyboardInterrupt):
        build_ort(f, out / "c.ort.onnx")
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    r = build_ort(f, out / "c.ort.onnx")
    assert sorted(p.name for p in out.iterdir()) == ["c.ort.onnx", "c.ort.onnx.json"]
    assert json.loads((out / "c.ort.onnx.json").read_text())["sha256"] == files.sha256_file(r.path)
