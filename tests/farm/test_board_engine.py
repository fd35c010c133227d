"""A TensorRT engine is built on the board that runs it, with that board's own timing cache, and reused while
it matches its source, TensorRT and GPU (edgevis.farm.board._engine_here).

No GPU and no TensorRT here: the builder (engine_from_onnx) and the GPU query (running_info) are stand-ins that
write what the real builder writes beside an engine (its sidecar, through write_derived_sidecar). The reuse
rule, the sidecar reading and check_engine are the real ones."""

from pathlib import Path

from edgevis.core.files import write_bytes_atomic, write_derived_sidecar


def test_engines_are_built_per_board_with_their_timing_cache_and_reused_while_they_match(tmp_path, monkeypatch):
    import edgevis.runtimes.trt as trt
    from edgevis.farm.board import _engine_here

    running = {"tensorrt": "10.3.0", "gpu": {"name": "Orin (nvgpu)", "compute_capability": "8.7"}}
    builds = []

    def build(onnx, out, config):  # stands in for TensorRT's builder
        out = Path(out)
        builds.append((out, config))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out, b"engine of " + Path(onnx).read_bytes())
        side = write_derived_sidecar(out, onnx, {"kind": "tensorrt-engine", **running,
                                                 "timing_cache": str(config.timing_cache)})
        return trt.TrtBuild(out, side)

    monkeypatch.setattr(trt, "engine_from_onnx", build)
    monkeypatch.setattr(trt, "running_info", lambda: running)
    root = tmp_path / "cache"
    onnx = tmp_path / "m.int8.onnx"
    onnx.write_bytes(b"int8 graph")

    alpha = _engine_here(onnx, "int8", "alpha", root, lambda s: None)
    assert alpha == root / "engines" / "alpha" / "m.int8.int8.engine" and alpha.is_file()
    assert len(builds) == 1 and builds[0][1].precision == "int8"
    assert builds[0][1].timing_cache == root / "timing" / "alpha.cache"
    assert _engine_here(onnx, "int8", "alpha", root, lambda s: None) == alpha and len(builds) == 1  # reused

    beta = _engine_here(onnx, "int8", "beta", root, lambda s: None)  # another board builds its own
    assert beta == root / "engines" / "beta" / "m.int8.int8.engine" and len(builds) == 2
    assert builds[1][1].timing_cache == root / "timing" / "beta.cache"

    fp32 = tmp_path / "m.fp32.onnx"
    fp32.write_bytes(b"fp32 graph")
    assert _engine_here(fp32, "fp32", "alpha", root, lambda s: None).name == "m.fp32.fp32.engine"
    assert builds[2][1].precision == "fp32" and builds[2][1].timing_cache == root / "timing" / "alpha.cache"

    running = {**running, "tensorrt": "10.4.0"}  # the board's TensorRT changed: the engine is built again
    assert _engine_here(onnx, "int8", "alpha", root, lambda s: None) == alpha and len(builds) == 4
    onnx.write_bytes(b"int8 graph, quantized again")  # so did the file it came from
    _engine_here(onnx, "int8", "alpha", root, lambda s: None)
    assert len(builds) == 5
    alpha.write_bytes(b"damaged")  # an engine that is not what its sidecar vouches for is not run
    _engine_here(onnx, "int8", "alpha", root, lambda s: None)
    assert len(builds) == 6
