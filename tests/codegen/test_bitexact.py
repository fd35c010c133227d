"""The emitted C equals the integer reference (Program.run) and ONNX Runtime on the integer-only file, bit for
bit, on held-out photos and random inputs: on x86-64, under ASan and UBSan, and on aarch64 under qemu. The model
files are integer-only (no float register, no soft-float helper for a Cortex-M4) and the arena plan is proven."""

import json
import re
import subprocess

import numpy as np
import pytest

from edgevis.codegen import emit_c
from edgevis.data.preprocess import preprocess, preprocess_file
from edgevis.data.samples import builtin_photos
from edgevis.runtimes.predict import recorded_preprocess

from cbuild import build, need, ort_int8_and_logits, run

# the heavier builds (Cortex-M4, sanitizers, aarch64) run on one CNN and one transformer
TWO = pytest.mark.parametrize("int_model", ["test_lsnet", "test_deit"], indirect=True)
SOFT_FLOAT = re.compile(r"__aeabi_[fd]|__\w*[sd]f\w*|__aeabi_[il]2[fd]")


@pytest.fixture(scope="session")
def emitted(int_model, tmp_path_factory):
    """The C library, and the inputs: held-out digits, bundled photos, random images from tiny to huge."""
    out = tmp_path_factory.mktemp(f"c_{int_model.name}")
    lib = emit_c(int_model.path, out / "lib")
    spec, _ = recorded_preprocess(int_model.path)
    held = sorted(int_model.held.rglob("*.png"))[::3][:6]
    xs = [preprocess_file(p, spec)[None] for p in held]
    xs += [preprocess(img, spec)[None] for _, img in builtin_photos()[:2]]
    rng = np.random.default_rng(7)
    xs += [rng.standard_normal((1, *spec.image_shape())).astype(np.float32) * s for s in (0.05, 1.0, 40.0)]
    x8, ort_logits = ort_int8_and_logits(int_model.path, xs)
    return lib, out, x8.reshape(len(xs), -1), ort_logits.reshape(len(xs), -1).astype(np.int32)


def test_c_equals_integer_reference_and_ort(int_model, emitted):
    lib, out, x8, ort_logits = emitted
    # the model files compiled without any float or SSE register: a float operation would not compile
    got = run(build(lib, out / "x86", model_flags=("-mgeneral-regs-only",)), x8, lib.classes)
    assert np.array_equal(got, ort_logits)
    # and as fast as this CPU allows (the AVX-512 VNNI 1 x 1 path where it has one, gemm.py): the same bits
    assert np.array_equal(run(build(lib, out / "native", flags=("-O3", "-march=native")), x8, lib.classes), got)
    shape = lib.input_shape
    sel = [0, 6, len(x8) - 1]  # a digit, a photo, the largest random input (the numpy reference is slow)
    ref = np.concatenate([int_model.program.run(x8[i].reshape(shape).astype(np.int64)) for i in sel])
    assert np.array_equal(got[sel].astype(np.int64), ref.reshape(len(ref), -1))
    # a trained model: the held-out digits get different classes (the comparison is not of constants)
    assert len(set(np.argmax(got[:6], axis=1))) >= 2


@TWO
def test_model_files_hold_no_float(int_model, emitted, tmp_path):
    lib, _, _, _ = emitted
    for key in ("model", "weights"):
        text = re.sub(r"/\*.*?\*/", "", lib.files[key].read_text(), flags=re.S)  # code, not comments
        assert not re.search(r"\b(float|double)\b", text), key
        # the one other header: the x86 intrinsics, only where the compiler targets AVX-512 VNNI (gemm.py)
        guarded = re.findall(r"#if !defined\(EV_PORTABLE\) && defined\(__AVX512F__\).*?#endif", text, flags=re.S)
        assert all(re.findall(r"#include <(\w+\.h)>", b) == ["immintrin.h"] for b in guarded)
        text = "".join(re.split(r"#if !defined\(EV_PORTABLE\) && defined\(__AVX512F__\).*?#endif", text, flags=re.S))
        assert re.findall(r"#include <(\w+\.h)>", text) in (["stdint.h", "string.h"], ["stdint.h"])
        assert "malloc" not in text
    # Cortex-M4 with soft float: no call into a soft-float helper
    cc = need("arm-none-eabi-gcc")
    syms = []
    for key in ("model", "weights"):
        o = tmp_path / f"{key}.m4.o"
        p = subprocess.run([cc, "-std=c99", "-O1", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Werror",
                            "-c", str(lib.files[key]), "-o", str(o)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
        nm = subprocess.run([need("arm-none-eabi-nm"), str(o)], capture_output=True, text=True, check=True).stdout
        syms += [ln.split()[-1] for ln in nm.splitlines() if ln.split()]
    assert f"{lib.name}_run" in syms
    assert not [s for s in syms if SOFT_FLOAT.search(s)], [s for s in syms if SOFT_FLOAT.search(s)]
    # the checker sees a float helper where one is called (it would catch a real float)
    probe = tmp_path / "f.c"
    probe.write_text("float f(float a, int b) { return a * (float)b; }\n")
    subprocess.run([cc, "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-c", str(probe), "-o",
                    str(tmp_path / "f.o")], check=True)
    nm = subprocess.run([need("arm-none-eabi-nm"), str(tmp_path / "f.o")], capture_output=True, text=True).stdout
    assert SOFT_FLOAT.search(nm)


@TWO
def test_sanitizers_and_guards(int_model, emitted):
    """ASan + UBSan (no recovery): no out-of-bounds access, no signed overflow, no bad shift; the driver's
    guard bytes around the arena and logits stay untouched and two arena fills give the same logits."""
    lib, out, x8, ort_logits = emitted
    exe = build(lib, out / "san", flags=("-O0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"))
    sel = [0, len(x8) - 1]
    assert np.array_equal(run(exe, x8[sel], lib.classes), ort_logits[sel])


@TWO
def test_aarch64_under_qemu(int_model, emitted):
    lib, out, x8, ort_logits = emitted
    need("qemu-aarch64")
    exe = build(lib, out / "a64", cc="aarch64-linux-gnu-gcc", flags=("-O1", "-static"))
    sel = [1, 6, len(x8) - 2]
    assert np.array_equal(run(exe, x8[sel], lib.classes, prefix=["qemu-aarch64"]), ort_logits[sel])


def test_arena_plan_and_sidecar(emitted):
    lib, _, _, _ = emitted
    side = json.loads(lib.files["sidecar"].read_text())
    assert side["source_sha256"] and side["edgevis"] and side["precision"] == "integer-only"
    assert side["arena"]["arena_bytes"] == lib.arena_bytes and side["weight_bytes"] == lib.weight_bytes
    # lifetimes let tensors share memory: the arena is a fraction of all intermediates side by side
    assert 0 < lib.arena_bytes < lib.intermediate_bytes / 2
    header = lib.files["header"].read_text()
    n = lib.name.upper()
    assert f"#define {n}_ARENA_BYTES {lib.arena_bytes}" in header
    assert f"#define {n}_CLASSES {lib.classes}" in header
    m = int(re.search(rf"{n}_INPUT_SCALE_M (\d+)", header).group(1))
    k = int(re.search(rf"{n}_INPUT_SCALE_SHIFT (\d+)", header).group(1))
    assert m / 2 ** k == np.float32(side["input_scale"])  # exact: a float32 is a dyadic number
