"""The TensorRT backend: compiled against TensorRT's public headers (10 and 11) where given, run on a
GPU where there is one. No TensorRT and no GPU exist on the CI machines: the compile check needs
EDGEVIS_TRT_INCLUDE (the `include/` folder of github.com/NVIDIA/TensorRT at a 10.x or 11.x tag;
several separated by ':'), and the run test is marked `gpu`."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgevis.cpp import cmake_dir

ROOT = Path(__file__).resolve().parents[2]
CUDA_INCLUDE = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include"


def _trt_includes() -> list[Path]:
    return [Path(p) for p in os.environ.get("EDGEVIS_TRT_INCLUDE", "").split(":") if p]


def _compile(sources: list[Path], *flags: str) -> subprocess.CompletedProcess:
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    inc = cmake_dir()
    cmd = [cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{inc / 'include'}",
           f"-I{inc / 'src'}", *flags]
    return subprocess.run([*cmd, *map(str, sources)], capture_output=True, text=True)


@pytest.mark.skipif(not _trt_includes(), reason="EDGEVIS_TRT_INCLUDE not set: no TensorRT headers on this machine "
                    "(see the module docstring)")
@pytest.mark.parametrize("include", _trt_includes() or [None], ids=lambda p: str(p))
def test_backend_compiles_against_tensorrt_headers(include):
    version = (include / "NvInferVersion.h").read_text()
    major = re.search(r"#define (?:NV_TENSORRT_MAJOR|TRT_MAJOR_ENTERPRISE) (\d+)", version)
    assert major and int(major.group(1)) in (10, 11), "expected TensorRT 10 or 11 headers"
    if not (CUDA_INCLUDE / "cuda_runtime_api.h").is_file():
        pytest.fail(f"the CUDA headers are needed beside TensorRT's: no {CUDA_INCLUDE}/cuda_runtime_api.h")
    src = cmake_dir() / "src"
    # the backend and the model code that calls it, as a TensorRT build of the library compiles them
    p = _compile([src / "trt_backend.cpp", src / "model.cpp"], "-DEDGEVIS_HAVE_TENSORRT=1",
                 "-isystem", str(include), "-isystem", str(CUDA_INCLUDE))
    assert p.returncode == 0, p.stderr[-4000:]


def test_library_without_backends_compiles_and_readme_snippet_compiles(tmp_path):
    """model.cpp (where the missing backends are stubbed) with neither SDK, warning-free; and the
    README's C++ snippet against the public header."""
    p = _compile([cmake_dir() / "src" / "model.cpp"])
    assert p.returncode == 0, p.stderr[-4000:]
    readme = (ROOT / "README.md").read_text().split("\n## C++", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```cpp\n(.*?)\n```", readme, flags=re.S)[0]
    f = tmp_path / "snippet.cpp"
    f.write_text("#include <cstdio>\n#include <edgevis/edgevis.hpp>\nint main() {\n"
                 "  const unsigned char* rgb = nullptr; int width = 0, height = 0; size_t stride = 0;\n"
                 f"{{\n{snippet}\n}}\n  return 0;\n}}\n")
    p = _compile([f])
    assert p.returncode == 0, p.stderr


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installed (no NVIDIA GPU here)")
def test_engine_classifies_as_the_python_runner(cpp_build, enet_files, photos, tmp_path):
    """On a GPU with TensorRT: build an engine with edgevis, then the C++ TensorRT backend must give the
    Python TrtRunner's top-5 (needs a build of the library with TENSORRT_ROOT set)."""
    from edgevis.runtimes.trt import engine_from_onnx

    fp32, _ = enet_files
    engine = engine_from_onnx(fp32, tmp_path / "m.fp32.engine").path
    build = tmp_path / "build"
    cfg = ["cmake", "-S", str(ROOT / "tests" / "cpp"), "-B", str(build), f"-Dedgevis_DIR={cmake_dir()}",
           f"-DONNXRUNTIME_ROOT={cpp_build.sdk}"]
    p = subprocess.run(cfg, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    if "edgevis: TensorRT backend:" not in p.stdout:
        # the tensorrt wheel carries no C++ headers: the SDK (TENSORRT_ROOT, or Debian's libnvinfer-dev) is needed
        pytest.skip(next(line for line in p.stdout.splitlines() if "TensorRT backend disabled" in line))
    assert subprocess.run(["cmake", "--build", str(build), "-j", "2"]).returncode == 0
    out = subprocess.run([str(build / "classify" / "classify"), "--json", str(engine), str(photos["chelsea.png"])],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json

    import numpy as np

    from edgevis.data.preprocess import preprocess_file
    from edgevis.runtimes.predict import recorded_preprocess
    from edgevis.runtimes.trt import TrtRunner

    spec, _ = recorded_preprocess(fp32)
    with TrtRunner(engine) as r:
        logits = r.infer(preprocess_file(photos["chelsea.png"], spec)[None])[0]
    got = json.loads(out.stdout.splitlines()[0])["top"]
    assert [t["index"] for t in got] == list(np.argsort(-logits)[:5])
