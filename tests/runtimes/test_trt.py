"""TensorRT: what runs without a GPU (options, precision plan, profiles, the sidecar guard) and, marked
``gpu``, real engine builds that run wherever TensorRT and a GPU exist."""

import json

import numpy as np
import onnx
import pytest

from edgevis.core.errors import EdgevisError
from edgevis.runtimes.guard import RuntimeMismatchError, engine_mismatch
from edgevis.runtimes.trt import (EngineFileError, TrtBuildConfig, TrtBuildError, check_engine, default_engine_path,
                                  model_traits, parse_shapes, plan_precision, resolve_profile)
from handmade_graphs import foldable_float, twin_qdq_convs

ORIN = {"tensorrt": "10.3.0.30", "gpu": {"name": "Orin", "compute_capability": "8.7"}}


def test_shapes_parse_and_bad_ones_are_named():
    assert parse_shapes("input:1x3x224x224,mask:1x49") == {"input": (1, 3, 224, 224), "mask": (1, 49)}
    assert parse_shapes("8x3x224x224") == {"": (8, 3, 224, 224)}
    for bad in ("input:1x3x224x", "input:1,3,224", "input:0x3"):
        with pytest.raises(EdgevisError, match="bad shape"):
            parse_shapes(bad)


def test_build_options_are_validated_before_any_gpu_work():
    with pytest.raises(EdgevisError, match="go together"):
        TrtBuildConfig(min_shapes={"x": (1, 3)})
    with pytest.raises(EdgevisError, match="min <= opt <= max"):
        TrtBuildConfig(min_shapes={"x": (4, 3)}, opt_shapes={"x": (2, 3)}, max_shapes={"x": (8, 3)})
    with pytest.raises(EdgevisError, match="DLA runs FP16 and INT8 only"):
        TrtBuildConfig(precision="fp32", dla_core=0)
    with pytest.raises(EdgevisError, match="unknown --precision"):
        TrtBuildConfig(precision="fp8")


def test_precision_plan_follows_tensorrt_10_and_11():
    # a Q/DQ model is explicit quantization: strongly typed, no precision flags, on both versions
    for fp16_flag in (True, False):
        p = plan_precision("auto", has_qdq=True, fp16_graph=False, has_fp16_flag=fp16_flag)
        assert (p.precision, p.strongly_typed, p.flags) == ("int8", True, ())
    assert plan_precision("auto", has_qdq=False, fp16_graph=False, has_fp16_flag=True).precision == "fp32"
    p16 = plan_precision("fp16", has_qdq=False, fp16_graph=False, has_fp16_flag=True)  # TensorRT 10
    assert (p16.strongly_typed, p16.flags) == (False, ("FP16",))
    with pytest.raises(TrtBuildError, match="strongly typed .*autocast"):  # TensorRT 11: no FP16 flag
        plan_precision("fp16", has_qdq=False, fp16_graph=False, has_fp16_flag=False)
    assert plan_precision("fp16", has_qdq=False, fp16_graph=True, has_fp16_flag=False).strongly_typed
    with pytest.raises(TrtBuildError, match="INT8 needs a Q/DQ model"):
        plan_precision("int8", has_qdq=False, fp16_graph=False, has_fp16_flag=True)


def test_profiles_for_dynamic_inputs(lsnet_t_export):
    traits = model_traits(onnx.load(lsnet_t_export.artifact.path))
    assert traits["inputs"] == [{"name": "input", "dims": [None, 3, 224, 224]}] and not traits["has_qdq"]
    with pytest.raises(TrtBuildError, match="need an optimization profile: pass --min-shape"):
        resolve_profile(traits["inputs"], TrtBuildConfig())
    cfg = TrtBuildConfig(min_shapes=parse_shapes("1x3x224x224"), opt_shapes=parse_shapes("4x3x224x224"),
                         max_shapes=parse_shapes("8x3x224x224"))
    assert resolve_profile(traits["inputs"], cfg) == {
        "input": {"min": [1, 3, 224, 224], "opt": [4, 3, 224, 224], "max": [8, 3, 224, 224]}}
    wrong = TrtBuildConfig(min_shapes=parse_shapes("1x3x64x64"), opt_shapes=parse_shapes("1x3x64x64"),
                           max_shapes=parse_shapes("1x3x64x64"))
    with pytest.raises(TrtBuildError, match="does not fit the input's shape"):
        resolve_profile(traits["inputs"], wrong)
    assert model_traits(twin_qdq_convs())["has_qdq"]


def test_engine_names():
    from pathlib import Path

    assert default_engine_path(Path("out/lsnet_t.int8.onnx"), "int8") == Path("out/lsnet_t.int8.engine")
    assert default_engine_path(Path("out/lsnet_t.fp32.onnx"), "fp16") == Path("out/lsnet_t.fp16.engine")


def test_mismatch_rules():
    assert engine_mismatch(ORIN, {"tensorrt": "10.3.0.26", "gpu": {"name": "Orin", "compute_capability": "8.7"}}) is None
    v = engine_mismatch(ORIN, {"tensorrt": "10.7.0", "gpu": ORIN["gpu"]})
    assert "built with TensorRT 10.3.0.30 on Orin (compute 8.7), but this is TensorRT 10.7.0" in v
    g = engine_mismatch(ORIN, {"tensorrt": "10.3.0", "gpu": {"name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"}})
    assert "this GPU is NVIDIA GeForce RTX 4090 (compute 8.9)" in g
    assert "DLA core" in engine_mismatch({**ORIN, "dla_core": 1}, {**ORIN, "dla_cores": 1})


def _engine_with_sidecar(tmp_path, side):
    from edgevis.core.files import sha256_file

    f = tmp_path / "m.int8.engine"
    f.write_bytes(b"\x00" * 64 + b"not a real plan")  # only the sidecar is read before TensorRT
    (tmp_path / "m.int8.engine.json").write_text(json.dumps({**side, "sha256": sha256_file(f)}))
    return f


def test_a_mismatched_engine_is_refused_before_tensorrt_sees_it(tmp_path):
    """The running TensorRT/GPU is passed in: it stands in for a GPU this machine does not have."""
    f = _engine_with_sidecar(tmp_path, {"kind": "tensorrt-engine", **ORIN})
    with pytest.raises(RuntimeMismatchError, match=r"m\.int8\.engine cannot load here: built with TensorRT 10\.3\.0\.30"):
        check_engine(f, {"tensorrt": "11.1.0", "gpu": ORIN["gpu"]})
    assert check_engine(f, {"tensorrt": "10.3.0.30", "gpu": ORIN["gpu"]}) == []
    f.write_bytes(b"replaced")  # the sidecar no longer describes the file
    with pytest.raises(RuntimeMismatchError, match="describes another file"):
        check_engine(f, ORIN)


def test_engine_files_without_or_with_a_wrong_sidecar(tmp_path):
    bare = tmp_path / "trtexec.engine"
    bare.write_bytes(b"plan")
    assert "no sidecar" in check_engine(bare, ORIN)[0]
    with pytest.raises(EngineFileError, match="not found"):
        check_engine(tmp_path / "missing.engine", ORIN)
    (tmp_path / "empty.engine").write_bytes(b"")
    with pytest.raises(EngineFileError, match="empty"):
        check_engine(tmp_path / "empty.engine", ORIN)
    f = _engine_with_sidecar(tmp_path, {"kind": "onnxruntime-optimized"})
    with pytest.raises(EngineFileError, match="does not describe a TensorRT engine"):
        check_engine(f, ORIN)


def test_without_tensorrt_the_build_names_the_extra(tmp_path):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    from edgevis.runtimes.trt import engine_from_onnx

    src = tmp_path / "f.onnx"
    onnx.save(foldable_float(), src)
    with pytest.raises(EdgevisError, match=r"tensorrt is not installed.*edgevis\[tensorrt\]"):
        engine_from_onnx(src)


# ---------------------------------------------------------------------------------------------
# on a GPU with TensorRT (skipped here: no GPU, TensorRT cannot be imported)


@pytest.fixture
def trt_gpu():
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU)")
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from edgevis.runtimes.trt import running_info

    try:
        running_info()
    except EdgevisError as e:
        pytest.skip(f"no usable GPU: {e}")
    return trt


@pytest.mark.gpu
def test_fp32_engine_matches_onnx_runtime_and_refuses_another_version(trt_gpu, lsnet_t_export, tmp_path):
    from edgevis.runtimes.ort import OrtRunner
    from edgevis.runtimes.trt import TrtRunner, engine_from_onnx

    cache = tmp_path / "timing.cache"
    cfg = TrtBuildConfig(min_shapes=parse_shapes("1x3x224x224"), opt_shapes=parse_shapes("2x3x224x224"),
                         max_shapes=parse_shapes("4x3x224x224"), timing_cache=cache, workspace_gib=2)
    b = engine_from_onnx(lsnet_t_export.artifact.path, tmp_path / "lsnet_t.fp32.engine", cfg)
    assert b.sidecar["tensorrt"] == trt_gpu.__version__ and cache.stat().st_size > 0
    x = np.random.default_rng(0).standard_normal((3, 3, 224, 224)).astype(np.float32)
    with OrtRunner(lsnet_t_export.artifact.path) as o, TrtRunner(b.path) as t:
        ref, out = o.infer(x), t.infer(x)
    cos = (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)
    assert cos.min() > 0.999, cos
    side = json.loads((tmp_path / "lsnet_t.fp32.engine.json").read_text())
    (tmp_path / "lsnet_t.fp32.engine.json").write_text(json.dumps({**side, "tensorrt": "9.0.0"}))
    with pytest.raises(RuntimeMismatchError, match="built with TensorRT 9.0.0"):
        TrtRunner(b.path).open()


@pytest.mark.gpu
def test_truncated_engine_is_named(trt_gpu, tmp_path):
    from edgevis.runtimes.trt import TrtRunner

    f = tmp_path / "cut.engine"
    f.write_bytes(b"ftrt" + b"\x00" * 100)
    with pytest.raises(EngineFileError, match="cannot be loaded"):
        TrtRunner(f).open()


@pytest.mark.gpu
def test_profile_engine_latency_gpu_memory_layers_and_energy(trt_gpu, lsnet_t_export, tmp_path):
    from edgevis.profile.profiler import ProfileConfig, profile_file
    from edgevis.runtimes.trt import engine_from_onnx

    cfg = TrtBuildConfig(min_shapes=parse_shapes("1x3x224x224"), opt_shapes=parse_shapes("4x3x224x224"),
                         max_shapes=parse_shapes("4x3x224x224"))
    b = engine_from_onnx(lsnet_t_export.artifact.path, tmp_path / "lsnet_t.fp32.engine", cfg)
    r = profile_file(b.path, ProfileConfig(warmup=5, iters=30, batches=(1, 4), per_layer=True, per_layer_runs=5,
                                           idle_s=0.2))
    assert r["model"]["runtime"] == "trt" and r["model"]["precision"] == "fp32"
    assert r["device"]["gpu"], "NVML should name the GPU"
    for run in r["runs"]:
        assert run["iterations"] == 30 and run["memory"]["gpu_mb"] > 0
        pl = run["per_layer"]
        assert pl["source"] == "TensorRT IProfiler" and pl["runs"] == 5 and pl["nodes_total"] > 10
        assert sum(row["share"] for row in pl["by_op"]) == pytest.approx(1.0)
        e = run["energy"]  # NVML on a desktop/datacenter GPU, or the Jetson rails
        assert e["available"], e.get("reason")
        assert e["energy_j"] > 0 and e["window_s"] == pytest.approx(run["wall_s"])
    # batch 8 is beyond the profile (max 4): refused before anything runs
    with pytest.raises(EdgevisError, match="outside the engine's optimization profile"):
        profile_file(b.path, ProfileConfig(warmup=1, iters=2, batches=(8,), energy="none"))
