"""edgevis build --runtime ort: real ONNX Runtime sessions, provider placement, the saved optimized model."""

import json

import numpy as np
import onnx
import pytest

from edgevis.core.errors import EdgevisError
from edgevis.runtimes.ort_trace import node_placement
from edgevis.runtimes.guard import RuntimeMismatchError
from edgevis.runtimes.ort import OrtRunner
from edgevis.runtimes.ort_build import OrtBuildConfig, build_ort


@pytest.fixture(scope="module")
def built(lsnet_t_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("ort_build") / "lsnet_t.ort-cpu.onnx"
    return build_ort(lsnet_t_export.artifact.path, out, OrtBuildConfig(threads=1))


def test_saved_model_matches_the_source_and_records_where_it_can_run(built, lsnet_t_export):
    assert built.path.is_file() and built.check["passed"]
    side = json.loads(built.path.with_name(built.path.name + ".json").read_text())
    import onnxruntime as ort

    assert side["kind"] == "onnxruntime-optimized" and side["onnxruntime"] == ort.__version__
    assert side["providers"] == ["CPUExecutionProvider"] and side["preprocess"]["input_size"] == [224, 224]
    # ORT_ENABLE_ALL lays Conv out in NCHWc for this CPU: the saved graph holds vendor ops
    assert any(n.domain == "com.microsoft.nchwc" for n in onnx.load(built.path).graph.node)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with OrtRunner(lsnet_t_export.artifact.path) as a, OrtRunner(built.path) as b:
        np.testing.assert_allclose(b.infer(x), a.infer(x), rtol=1e-4, atol=1e-5)


def test_every_node_is_placed_on_a_provider(built):
    cpu = built.placement["CPUExecutionProvider"]
    assert set(built.placement) == {"CPUExecutionProvider"}
    assert cpu["nodes"] == sum(cpu["ops"].values()) > 100 and "Conv" in cpu["ops"]
    assert not built.warnings


def test_placement_parser_counts_nodes_per_provider_and_names_fallbacks():
    events = [{"cat": "Session", "name": "model_run"},
              {"cat": "Node", "name": "conv1_kernel_time", "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}},
              {"cat": "Node", "name": "conv1_fence_before", "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "shape_kernel_time", "args": {"op_name": "Shape", "provider": "CPUExecutionProvider"}},
              {"cat": "Node", "name": "conv2_kernel_time", "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}},
              {"cat": "Node", "name": "conv2_kernel_time", "args": {"op_name": "Conv", "provider": "CUDAExecutionProvider"}}]
    p = node_placement(events)
    assert p == {"CUDAExecutionProvider": {"nodes": 2, "ops": {"Conv": 2}},
                 "CPUExecutionProvider": {"nodes": 1, "ops": {"Shape": 1}}}


def test_a_saved_model_from_another_onnxruntime_is_refused_in_one_line(built, tmp_path):
    import shutil

    f = tmp_path / built.path.name
    shutil.copy(built.path, f)
    side = json.loads(built.path.with_name(built.path.name + ".json").read_text())
    (tmp_path / (f.name + ".json")).write_text(json.dumps({**side, "onnxruntime": "1.17.3"}))
    with pytest.raises(RuntimeMismatchError, match=r"optimized by ONNX Runtime 1\.17\.3, but this is ONNX Runtime"):
        OrtRunner(f).open()
    (tmp_path / (f.name + ".json")).write_text(json.dumps({**side, "providers": ["CUDAExecutionProvider"]}))
    with pytest.raises(RuntimeMismatchError, match="optimized for CUDAExecutionProvider"):
        OrtRunner(f).open()
    (tmp_path / (f.name + ".json")).write_text(json.dumps({**side, "sha256": "0" * 64}))
    with pytest.raises(RuntimeMismatchError, match="describes another file"):
        OrtRunner(f).open()


def test_bad_options_and_missing_providers():
    with pytest.raises(EdgevisError, match="unknown --device"):
        OrtBuildConfig(device="npu")
    with pytest.raises(EdgevisError, match="unknown --optimization"):
        OrtBuildConfig(optimization="max")
    with pytest.raises(EdgevisError, match="--fp16 applies to the TensorRT execution provider"):
        OrtBuildConfig(device="cuda", trt_fp16=True)


def test_missing_provider_is_named_with_what_exists(lsnet_t_export, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the refusal is for builds without it")
    with pytest.raises(EdgevisError, match="CUDAExecutionProvider not available .* available: .*CPUExecutionProvider"):
        build_ort(lsnet_t_export.artifact.path, tmp_path / "x.onnx", OrtBuildConfig(device="cuda"))
    assert not (tmp_path / "x.onnx").exists()
