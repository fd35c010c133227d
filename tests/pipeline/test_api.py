"""The public API at the top level: lazy, typed, and torch-free on the device side."""

import json
import subprocess
import sys

import edgevis

HOST_ONLY = ("torch", "torchvision", "onnxscript", "onnxsim", "onnxslim", "skimage", "sklearn", "matplotlib")


def test_top_level_names_resolve_and_are_listed():
    for name in ("export", "quantize", "build", "profile", "bench", "write_report", "ExportConfig", "Int8Config",
                 "IntegerOnlyConfig", "ProfileConfig", "BenchConfig", "PreprocessOptions", "ExportRun", "QuantizeRun",
                 "ProfileResult", "BenchResult", "QuantizedFile", "OrtBuildConfig", "OrtBuild", "TrtBuildConfig",
                 "TrtBuild", "OvConfig", "OvBuild"):
        assert name in edgevis.__all__ and getattr(edgevis, name) is not None
    # edgevis.profile is the profile package and the function at once, before and after the package is imported
    import importlib

    importlib.import_module("edgevis.profile.profiler")
    assert callable(edgevis.profile) and edgevis.profile.__name__ == "edgevis.profile"


def test_device_side_api_without_torch(tmp_path, lsnet_t_export):
    src = lsnet_t_export.artifact.path
    code = (
        "import sys, json\n"
        f"for m in {HOST_ONLY!r}: sys.modules[m] = None\n"
        "import edgevis\n"
        f"b = edgevis.build({str(src)!r}, 'ort', output={str(tmp_path / 'm.ort-cpu.onnx')!r})\n"
        "r = edgevis.profile(b.path, iters=5, warmup=1, energy='none', batches=(1, 2))\n"
        f"leaked = [m for m in sys.modules if m.split('.')[0] in {HOST_ONLY!r} and sys.modules[m] is not None]\n"
        "print(json.dumps({'leaked': leaked, 'batches': r.batches, 'p50': r.latency_ms('p50', batch=2),\n"
        "                  'n': r.run(2)['iterations'], 'path': str(b.path)}))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert d["leaked"] == [] and d["batches"] == [1, 2] and d["n"] == 5 and d["p50"] > 0
    assert d["path"].endswith("m.ort-cpu.onnx")


def test_build_from_python_probes_a_foreign_file_as_the_cli_does(tmp_path):
    """edgevis.build is what `edgevis build` calls: a file that crashes ORT natively is one error, nothing written."""
    import sys
    from pathlib import Path

    import pytest

    from edgevis.core.errors import NativeCrashError
    from edgevis.core.files import sha256_file
    from edgevis.runtimes import isolate

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtimes"))
    from test_isolate import layernorm_empty_bias

    f = layernorm_empty_bias(tmp_path / "ln.onnx")
    # the verdict the child would give for ORT's segfault, planted under the key build's probe uses
    isolate._VERDICTS[(sha256_file(f), "all", ("CPUExecutionProvider",))] = f"{f}: ONNX Runtime crashed (SIGSEGV)"
    try:
        with pytest.raises(NativeCrashError, match="ln.onnx"):
            edgevis.build(f, "ort", output=tmp_path / "ln.ort-cpu.onnx")
    finally:
        isolate._VERDICTS.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ln.onnx"]
    # without the verdict the same call builds the file (edgevis hands ORT the harmless spelling)
    b = edgevis.build(f, "ort", output=tmp_path / "ln.ort-cpu.onnx")
    assert b.path == tmp_path / "ln.ort-cpu.onnx" and b.path.is_file()
