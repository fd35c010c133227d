"""`edgevis quantize` / `edgevis.quantize` on ONNX files edgevis did not write."""

import json

import numpy as np
import onnx
import pytest
import torch
from clihelpers import assert_one_line_error, run
from onnx import TensorProto, helper

import edgevis
from edgevis.core.errors import EdgevisError
from edgevis.core.files import sha256_file
from edgevis.data.preprocess import preprocess
from edgevis.data.images import load_image
from edgevis.runtimes.ort import OrtRunner


def flags(info):
    return ["--mean", *info.mean, "--std", *info.std, "--interpolation", info.interpolation,
            "--crop-pct", info.crop_pct]


def test_cli_quantizes_a_plain_torch_export_with_real_fidelity(digits_plain_onnx, digits_folders, tmp_path):
    src, info = digits_plain_onnx
    calib, held = digits_folders
    before = sha256_file(src)
    p = run("quantize", src, "--int8", *flags(info), "--calib", calib, "--holdout", held, "-o", tmp_path / "o",
            "--calib-count", 32, "--json")
    d = json.loads(p.stdout)
    assert sha256_file(src) == before, "the user's file must not be modified"
    fp32, int8 = tmp_path / "o/digits_lsnet.fp32.onnx", tmp_path / "o/digits_lsnet.int8.onnx"
    assert d["artifacts"] == {"fp32": str(fp32), "int8": str(int8)} and d["source"]["adopted"]
    # the same fidelity report as export --int8: 359 held-out digits, a trained model keeps its answers
    f = d["fidelity"]["int8"]
    assert f["images"] == 359 and f["top1_agreement"] >= 0.9 and f["cosine_mean"] > 0.95
    assert d["quantization"]["int8"]["latency"]["speedup"] > 0  # the latency line's figures
    # the adopted copy records what it came from and the preprocessing given; predict reads it back
    side = json.loads((tmp_path / "o/digits_lsnet.fp32.onnx.json").read_text())
    assert side["adopted_from"]["sha256"] == before and side["preprocess"]["mean"] == list(info.mean)
    assert not isinstance(side["input"]["shape"][0], int) and side["sha256"] == sha256_file(fp32)  # dynamic batch
    img = next(held.rglob("*.png"))
    pred = json.loads(run("predict", int8, "--image", img, "--json").stdout)
    with OrtRunner(src) as r:
        ref = r.infer(preprocess(load_image(img), info.preprocess)[None])
    assert pred["top"][0]["index"] == int(np.argmax(ref))
    # a second run quantizes the edgevis record in place, and contradicting flags are refused
    assert_one_line_error(run("quantize", fp32, "--int8", "--mean", 0.1, 0.2, 0.3, check_ok=False),
                          "contradicts the preprocessing")


def test_api_takes_calibration_arrays_and_a_dynamic_batch(digits_plain_onnx, digits_folders, tmp_path):
    src, info = digits_plain_onnx
    calib, _ = digits_folders
    spec = info.preprocess
    arrays = [preprocess(load_image(f), spec) for f in sorted(calib.rglob("*.png"))[:40]]
    run_ = edgevis.quantize(src, int8=edgevis.Int8Config(latency_search=False), calibration=arrays,
                            preprocess=edgevis.PreprocessOptions(mean=info.mean, std=info.std,
                                                                 interpolation=info.interpolation,
                                                                 crop_pct=info.crop_pct, input_size=(64, 64)),
                            output_dir=tmp_path)
    f = run_.int8.fidelity
    # every 5th array was held out for the fidelity report: 8 of 40
    assert f["images"] == 8 and f["source"] == "held-out arrays" or f["source"].startswith("calibration arrays")
    assert f["images"] == 8 and run_.int8.settings["calibration_images"] == 32
    assert run_.to_dict()["artifacts"]["int8"] == str(tmp_path / "digits_lsnet.int8.onnx")
    # a wrong array shape is one clear error, before anything is written
    with pytest.raises(EdgevisError, match=r"item 0 has shape \(3, 32, 32\)"):
        edgevis.quantize(src, int8=True, calibration=[np.zeros((3, 32, 32), np.float32)] * 10,
                         preprocess=edgevis.PreprocessOptions(mean=info.mean, std=info.std, input_size=(64, 64)),
                         output_dir=tmp_path / "bad", name="bad")
    assert not list((tmp_path / "bad").glob("bad.int8*"))
    # a one-shot generator read by INT8 and integer-only both is refused in words, not silently empty
    gen = (a for a in arrays)
    with pytest.raises(EdgevisError, match="already read once|pass a list"):
        edgevis.quantize(src, int8=edgevis.Int8Config(latency_search=False), calibration=gen,
                         holdout=arrays[:4], output_dir=tmp_path / "gen",
                         integer_only=True,
                         preprocess=edgevis.PreprocessOptions(mean=info.mean, std=info.std, input_size=(64, 64)))


class Nhwc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.f = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                     torch.nn.Flatten(), torch.nn.Linear(8, 4))

    def forward(self, x):
        return self.f(x.permute(0, 3, 1, 2))


def test_nhwc_input_is_read_from_the_graph_and_recorded(tmp_path):
    src = tmp_path / "nhwc.onnx"
    torch.onnx.export(Nhwc().eval(), (torch.randn(1, 40, 48, 3),), str(src), dynamo=False)
    p = run("quantize", src, "--int8", "--mean", 0.5, 0.5, 0.5, "--std", 0.2, 0.2, 0.2, "--channel-order", "bgr",
            "--no-latency-search", "--json")
    d = json.loads(p.stdout)
    pre = d["preprocess"]
    assert pre["layout"] == "NHWC" and pre["input_size"] == [40, 48] and pre["channel_order"] == "BGR"
    # predict feeds (1, H, W, 3) with channels reversed: the same as running the graph on that by hand
    img = tmp_path / "rgb.png"
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(img)
    pred = json.loads(run("predict", d["artifacts"]["fp32"], "--image", img, "--json").stdout)
    x = preprocess(Image.fromarray(rgb), edgevis.Preprocess(input_size=(40, 48), mean=(0.5,) * 3, std=(0.2,) * 3,
                                                            channel_order="BGR", layout="NHWC"))
    assert x.shape == (40, 48, 3)
    with OrtRunner(src) as r:
        ref = r.infer(x[None])[0]
    assert pred["top"][0]["index"] == int(np.argmax(ref))


def _graph(tmp_path, name, inputs, outputs, nodes):
    g = helper.make_graph(nodes, name, inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("case,pattern", [
    ("two_outputs", "2 outputs .* one \\(batch, classes\\) output"),
    ("two_inputs", "2 inputs"),
    ("int64_input", "is INT64; edgevis quantizes models with a float32 image input"),
    ("five_d", "an image input is 4-D"),
    ("gray", "edgevis takes 3-channel images"),
])
def test_files_that_are_not_image_classifiers_get_one_line(tmp_path, case, pattern):
    f = TensorProto.FLOAT
    x4 = helper.make_tensor_value_info("x", f, [1, 3, 8, 8])
    flat = helper.make_node("Flatten", ["x"], ["y"])
    y = helper.make_tensor_value_info("y", f, [1, 192])
    graphs = {
        "two_outputs": ([x4], [y, helper.make_tensor_value_info("z", f, [1, 192])],
                        [flat, helper.make_node("Identity", ["y"], ["z"])]),
        "two_inputs": ([x4, helper.make_tensor_value_info("w", f, [1, 3, 8, 8])], [y], [flat]),
        "int64_input": ([helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 8, 8])],
                        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 192])], [flat]),
        "five_d": ([helper.make_tensor_value_info("x", f, [1, 3, 8, 8, 1])], [y], [flat]),
        "gray": ([helper.make_tensor_value_info("x", f, [1, 1, 8, 8])], [helper.make_tensor_value_info("y", f, [1, 64])],
                 [flat]),
    }
    path = _graph(tmp_path, case, *graphs[case])
    out = tmp_path / "out"
    p = run("quantize", path, "--int8", "--mean", 0, 0, 0, "--std", 1, 1, 1, "-o", out, check_ok=False)
    assert_one_line_error(p, pattern)
    assert not out.exists() or not list(out.iterdir())


def test_missing_preprocessing_names_the_flags(tmp_path):
    path = _graph(tmp_path, "cls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 192])], [helper.make_node("Flatten", ["x"], ["y"])])
    assert_one_line_error(run("quantize", path, "--int8", check_ok=False), "no preprocessing record; give --mean, --std")
    assert_one_line_error(run("quantize", path, check_ok=False), "nothing to do")
    assert_one_line_error(run("quantize", path, "--int8", "--mean", 0, 0, 0, "--std", 1, 1, 1, "--input-size", 9, 9,
                              check_ok=False), "contradicts .*input \\(1, 3, 8, 8\\)")
    assert list(tmp_path.iterdir()) == [path]


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.f = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))

    def forward(self, x):
        return self.f(x)


def test_an_old_opset_is_upgraded_in_the_adopted_copy_and_proven(tmp_path):
    # torch's opset_version=11 (model zoos, older exports): ORT's Q/DQ writes per-axis DequantizeLinear (opset 13),
    # which ORT refused in the opset-11 graph ("Unrecognized attribute: axis")
    src = tmp_path / "old.onnx"
    torch.onnx.export(Small().eval(), (torch.randn(1, 3, 32, 32),), str(src), dynamo=False, opset_version=11)
    before = sha256_file(src)
    p = run("quantize", src, "--int8", "--integer-only", "--mean", 0.5, 0.5, 0.5, "--std", 0.25, 0.25, 0.25,
            "--no-latency-search", "--calib-count", 16, "-o", tmp_path / "o", "--json")
    d = json.loads(p.stdout)
    assert "is ONNX opset 11" in p.stderr and sha256_file(src) == before
    fp32 = onnx.load(d["artifacts"]["fp32"])
    assert [o.version for o in fp32.opset_import if o.domain in ("", "ai.onnx")] == [13]
    side = json.loads((tmp_path / "o/old.fp32.onnx.json").read_text())
    assert side["adopted_from"]["opset"] == 11 and side["opset"] == 13
    assert set(d["fidelity"]) == {"int8", "integer_only"}
    # the upgraded copy computes what the user's file computes
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with OrtRunner(src) as a, OrtRunner(d["artifacts"]["fp32"]) as b:
        np.testing.assert_allclose(b.infer(x), a.infer(x), atol=1e-5)


def test_the_readme_sidecar_makes_a_foreign_file_quantizable_without_flags(tmp_path):
    """The sidecar format README.md documents ("The preprocessing record"), written by hand beside a plain export."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("**The preprocessing record.**"):]
    block = re.search(r"```json\n(.*?)\n```", section, flags=re.S).group(1)
    record = json.loads(block)["preprocess"]
    src = tmp_path / "theirs.onnx"
    torch.onnx.export(Small().eval(), (torch.randn(1, 3, *record["input_size"]),), str(src), dynamo=False)
    (tmp_path / "theirs.onnx.json").write_text(block)
    d = json.loads(run("quantize", src, "--int8", "--no-latency-search", "--calib-count", 8, "--json").stdout)
    assert d["preprocess"] == record and set(d["artifacts"]) == {"fp32", "int8"}
    # a record of the wrong type is refused with its key named, and nothing is written
    bad = {**record, "mean": "imagenet"}
    (tmp_path / "theirs.onnx.json").write_text(json.dumps({"preprocess": bad}))
    assert_one_line_error(run("quantize", src, "--int8", "-o", tmp_path / "bad", check_ok=False), "mean")
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_a_name_holding_a_path_is_refused_before_anything_is_written(tmp_path):
    path = _graph(tmp_path, "cls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 192])], [helper.make_node("Flatten", ["x"], ["y"])])
    out = tmp_path / "o"
    for name in ("../esc", "a/b", ".."):
        assert_one_line_error(run("quantize", path, "--int8", "--mean", 0, 0, 0, "--std", 1, 1, 1, "--name", name,
                                  "-o", out, check_ok=False), "cannot name files inside .*it holds a path")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cls.onnx", "o"]


def test_an_old_opset_that_cannot_be_upgraded_or_changes_its_outputs_is_one_line(tmp_path, monkeypatch):
    from onnx import version_converter

    f = TensorProto.FLOAT
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"])], "old",
                          [helper.make_tensor_value_info("x", f, [1, 3, 8, 8])], [helper.make_tensor_value_info("y", f, [1, 192])])
    src = tmp_path / "old.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], ir_version=7), str(src))
    pre = edgevis.PreprocessOptions(mean=(0.5,) * 3, std=(0.25,) * 3)

    def refuse(model, target):
        raise RuntimeError("No Adapter For Flatten")

    monkeypatch.setattr(version_converter, "convert_version", refuse)
    with pytest.raises(EdgevisError, match=r"is ONNX opset 11; .*cannot upgrade it \(No Adapter For Flatten\); "
                                           r"export it again with opset 13"):
        edgevis.quantize(src, int8=True, preprocess=pre, output_dir=tmp_path / "a")

    def negate(model, target):  # a converter that got it wrong: the upgraded graph computes -y
        m = onnx.ModelProto()
        m.CopyFrom(model)
        m.graph.node[0].output[0] = "flat"
        m.graph.node.append(helper.make_node("Neg", ["flat"], ["y"]))
        m.opset_import[0].version = target
        return m

    monkeypatch.setattr(version_converter, "convert_version", negate)
    with pytest.raises(EdgevisError, match=r"upgraded to opset 13 by ONNX's version converter it computes other "
                                           r"outputs \(output y differs"):
        edgevis.quantize(src, int8=True, preprocess=pre, output_dir=tmp_path / "b")
    assert sorted(p.name for p in tmp_path.rglob("*.onnx*")) == ["old.onnx"]


def test_tensorrt_target_says_its_latency_was_not_measured(tmp_path):
    """TensorRT cannot run here: the INT8 file is written, its record's latency is null, and the terminal says the
    timing was skipped rather than leaving the latency line out without a word."""
    from handmade_graphs import small_convnet

    src = tmp_path / "theirs.onnx"
    onnx.save(small_convnet(batch=1), str(src))
    args = ("quantize", src, "--int8", "--target", "tensorrt", "--mean", 0.5, 0.5, 0.5, "--std", 0.25, 0.25, 0.25,
            "--calib-count", 8)
    p = run(*args, "-o", tmp_path / "o")
    assert (tmp_path / "o/theirs.int8.onnx").exists()
    assert "latency: not measured (target tensorrt does not run on this machine" in p.stdout, p.stdout
    d = json.loads(run(*args, "-o", tmp_path / "j", "--json").stdout)
    assert d["quantization"]["int8"]["latency"] is None


def test_an_integer_only_failure_after_int8_landed_names_each_file_once(tmp_path):
    """--int8 --integer-only on a graph with no integer-only rule (ReduceMax): the INT8 file lands, then the
    integer-only step fails in one line that lists the INT8 file as written and only the integer-only file as not
    (the list of what was pending was said whole: 'int8.onnx' came out both written and not written)."""
    import re

    from handmade_graphs import f32, model
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(0)
    inits = [nh.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32), "w"),
             nh.from_array((rng.standard_normal((8, 5)) * 0.3).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMax", ["c"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "fc"], ["y"])]
    src = tmp_path / "maxpool.onnx"
    onnx.save(model(nodes, [f32("x", [1, 3, 16, 16])], [f32("y", [1, 5])], inits), str(src))
    p = run("quantize", src, "--int8", "--integer-only", "--mean", 0.5, 0.5, 0.5, "--std", 0.25, 0.25, 0.25,
            "--calib-count", 8, "--no-latency-search", "-o", tmp_path / "o", check_ok=False)
    assert_one_line_error(p, "no integer-only rule for ReduceMax")
    written, missing = re.search(r"written and complete: (.*); not written: (.*)\)$", p.stderr.strip()).groups()
    assert "maxpool.int8.onnx" in written.split(", ") and missing == "maxpool.integer_only.onnx"
    assert (tmp_path / "o/maxpool.int8.onnx").exists() and not (tmp_path / "o/maxpool.integer_only.onnx").exists()


def test_a_recorded_file_quantized_beside_itself_is_not_said_to_be_written(tmp_path):
    """The first run adopts the file (writes NAME.fp32.onnx, and says so); quantizing that copy again works beside
    it and writes only the INT8 file, so it must not print 'wrote NAME.fp32.onnx (your file, ...)' again."""
    from handmade_graphs import small_convnet

    src = tmp_path / "theirs.onnx"
    onnx.save(small_convnet(batch=1), str(src))
    common = ("--int8", "--calib-count", 8, "--no-latency-search")
    first = run("quantize", src, *common, "--mean", 0.5, 0.5, 0.5, "--std", 0.25, 0.25, 0.25, "-o", tmp_path / "o")
    fp32 = tmp_path / "o/theirs.fp32.onnx"
    assert f"wrote {fp32}" in first.stdout.replace("\n", " ")
    before = sha256_file(fp32)
    again = run("quantize", fp32, *common)
    assert "theirs.fp32.onnx" not in again.stdout and "theirs.int8.onnx" in again.stdout, again.stdout
    assert sha256_file(fp32) == before
