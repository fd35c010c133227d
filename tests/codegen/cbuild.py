"""Compile an emitted C library with the test driver and run it on int8 inputs."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx

DRIVER = Path(__file__).with_name("driver.c")
WARN = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-Wno-unused-parameter"]


def save_integer_file(model, path: Path, name: str) -> Path:
    """``model`` saved as an integer-only file with the sidecar edgevis writes beside one (its sha256 vouching for it)."""
    onnx.save(model, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".json").write_text(json.dumps({"precision": "integer-only", "sha256": sha,
                                                              "model": name}))
    return path


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (.ci/run installs it with apt-get)"
    return path


def build(lib, exe: Path, cc: str = "gcc", flags=("-O1",), model_flags=()) -> Path:
    """Model files compiled alone (``model_flags``, the strict warnings), then linked with the driver."""
    need(cc)
    objs = []
    for key in ("model", "weights"):
        o = exe.with_name(f"{exe.name}.{key}.o")
        cmd = [cc, *WARN, *flags, *model_flags, "-c", str(lib.files[key]), "-o", str(o)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-3000:]
        objs.append(str(o))
    cmd = [cc, "-std=gnu11", *flags, f'-DMODEL_HEADER="{lib.name}.h"', f"-DPFX={lib.name}",
           f"-DUPFX={lib.name.upper()}", f"-I{lib.out_dir}", str(DRIVER), *objs, "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return exe


def run(exe: Path, x8: np.ndarray, n_logits: int, prefix=(), env=None) -> np.ndarray:
    """The int32 logits of every int8 input row (the driver checks guards, determinism and the input)."""
    x8 = np.ascontiguousarray(x8, dtype=np.int8)
    inp, outp = exe.with_name(exe.name + ".in"), exe.with_name(exe.name + ".out")
    x8.tofile(inp)
    p = subprocess.run([*prefix, str(exe), str(inp), str(outp)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, f"rc={p.returncode}: {p.stderr[-3000:]}"
    return np.fromfile(outp, np.int32).reshape(len(x8), n_logits)


def ort_int8_and_logits(path: Path, xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Runtime on the integer-only file: its own int8 input (QuantizeLinear) and int32 logits."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.load(str(path))
    g = m.graph
    q8 = next(n for n in g.node if n.op_type == "QuantizeLinear").output[0]
    l32 = next(n for n in g.node if n.op_type == "DequantizeLinear").input[0]
    g.output.extend([helper.make_tensor_value_info(q8, TensorProto.INT8, None),
                     helper.make_tensor_value_info(l32, TensorProto.INT32, None)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ins, outs = [], []
    for x in xs:
        _, a, b = s.run(None, {g.input[0].name: x})
        ins.append(a)
        outs.append(b)
    return np.concatenate(ins), np.concatenate(outs)
