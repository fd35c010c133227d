"""Seeded ONNX fuzzing of the ``edgevis`` commands: seed models, mutations, a driver and its verdicts.

Every mutant goes through ``inspect``, ``lint``, ``simplify``, ``build --runtime ort``, ``predict``
and ``quantize --int8``; for each run the promise is checked: a clean success, or one ``error:``
line and a non-zero exit - never a traceback, a signal, a hang past the timeout, a temporary
file, or a file left in the output folder by a failed run. Used by ``tests/fuzz/test_fuzz.py``
(a few hundred runs) and ``benchmarks/fuzz.py`` (thousands).
"""

from __future__ import annotations

import copy
import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
# what other libraries leave in the temp dir by design: onnxruntime writes a session marker there on import
FOREIGN_TMP = {".ses"}
COMMANDS = ("inspect", "lint", "simplify", "build", "predict", "quantize")
EXTRA_COMMANDS = ("profile", "inspect-int")  # also runnable: benchmarks/fuzz.py --commands profile,...
PREPROCESS = {"input_size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
              "interpolation": "bilinear", "crop_pct": 0.875}


# ---------------------------------------------------------------------------------------------
# seeds: tiny image classifiers built with onnx.helper (16x16 RGB in, class scores out)


def _model(nodes, inits, out_dim: int, name: str, opset: int = 18) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", out_dim])
    g = helper.make_graph(nodes, name, [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)
    m.producer_name = "edgevis-fuzz"
    entry = m.metadata_props.add()
    entry.key, entry.value = "edgevis.preprocess", json.dumps(PREPROCESS)
    onnx.checker.check_model(m)
    return m


def seed_models() -> dict[str, onnx.ModelProto]:
    rng = np.random.default_rng(0)

    def w(name, *shape, dtype=np.float32):  # type: ignore[no-untyped-def]
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(dtype), name)

    cnn = _model([
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["p1"]),
        helper.make_node("Flatten", ["p1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["logits"], transB=1),
    ], [w("w1", 4, 3, 3, 3), w("b1", 4), w("w2", 10, 4), w("b2", 10)], 10, "cnn")
    # the crash pattern: LayerNormalization with an explicitly empty bias (segfaults ORT's optimizer as written)
    ln = _model([
        helper.make_node("Reshape", ["input", "shape"], ["f"]),
        helper.make_node("LayerNormalization", ["f", "scale", ""], ["n"], axis=-1),
        helper.make_node("ReduceMean", ["n", "axes"], ["logits"], keepdims=0),
    ], [numpy_helper.from_array(np.array([0, 3, -1], np.int64), "shape"), w("scale", 256),
        numpy_helper.from_array(np.array([2], np.int64), "axes")], 3, "ln")
    q = numpy_helper.from_array(rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8), "wq")
    qdq = _model([
        helper.make_node("QuantizeLinear", ["input", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["logits"]),
    ], [q, numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.int8(0), "z"),
        numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws")], 4, "qdq")
    return {"cnn": cnn, "ln": ln, "qdq": qdq}


# ---------------------------------------------------------------------------------------------
# mutations: each takes (model, rng) and changes the model in place; bytes mutations work on the file

ODD_TYPES = (0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 16, 17, 21, 99)
ODD_DIMS = (0, 1, 2, 3, 7, 16, 1000, 2**31, 2**40)
OPS = ("Relu", "Conv", "Gemm", "MatMul", "Add", "LayerNormalization", "Reshape", "Transpose", "Softmax", "Resize",
       "QuantizeLinear", "DequantizeLinear", "Cast", "Gather", "Split", "Concat", "NoSuchOp", "If", "Loop")
BAD_META = ("not json", "[1, 2]", "null", "{}", '{"input_size": [16]}', '{"input_size": "16"}',
            '{"input_size": [0, 0], "mean": [0,0,0], "std": [1,1,1]}',
            '{"input_size": [100000, 100000], "mean": [0,0,0], "std": [1,1,1]}',
            '{"input_size": [16, 16], "mean": [0,0,0], "std": [0,0,0]}',
            '{"input_size": [16, 16], "mean": [0,0,0], "std": [1,1,1], "interpolation": "magic"}',
            '{"input_size": [16, 16], "mean": [0,0,0], "std": [1,1,1], "crop_pct": 0}',
            '{"input_size": [32, 32], "mean": [0,0,0], "std": [1,1,1]}',
            '{"input_size": [16, 16], "mean": ["a",0,0], "std": [1,1,1]}',
            '{"input_size": [16, 16], "mean": [0,0,0], "std": [1,1,1], "layout": "NHWC"}')
BAD_SIDECARS = ("[]", "42", '"text"', "{not json", '{"preprocess": 3}', '{"sha256": 5, "precision": []}',
                '{"kind": "onnxruntime-optimized", "onnxruntime": "0.1.0", "sha256": "00"}', "\xff\xfe")


def _any_value_info(m: onnx.ModelProto, rng: random.Random) -> onnx.ValueInfoProto | None:
    pool = [*m.graph.input, *m.graph.output, *m.graph.value_info]
    return rng.choice(pool) if pool else None


def mut_elem_type(m, rng):  # type: ignore[no-untyped-def]
    vi = _any_value_info(m, rng)
    if vi is not None:
        vi.type.tensor_type.elem_type = rng.choice(ODD_TYPES)


def mut_dims(m, rng):  # type: ignore[no-untyped-def]
    vi = _any_value_info(m, rng)
    if vi is None:
        return
    dims = vi.type.tensor_type.shape.dim
    choice = rng.random()
    if choice < 0.2 and len(dims):
        del dims[rng.randrange(len(dims))]
    elif choice < 0.35:
        dims.add().dim_value = rng.choice(ODD_DIMS)
    elif len(dims):
        d = dims[rng.randrange(len(dims))]
        if rng.random() < 0.2:
            d.dim_param = rng.choice(("n", "", "h w"))
        else:
            d.dim_value = rng.choice(ODD_DIMS)


def mut_initializer(m, rng):  # type: ignore[no-untyped-def]
    if not m.graph.initializer:
        return
    t = rng.choice(m.graph.initializer)
    k = rng.random()
    if k < 0.3 and t.raw_data:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
    elif k < 0.45:
        t.raw_data = t.raw_data + bytes(rng.randrange(1, 9))
    elif k < 0.65:
        t.data_type = rng.choice(ODD_TYPES)
    elif k < 0.85 and len(t.dims):
        t.dims[rng.randrange(len(t.dims))] = rng.choice(ODD_DIMS)
    else:
        t.dims.append(rng.choice((1, 2, 3)))


def mut_node_input(m, rng):  # type: ignore[no-untyped-def]
    nodes = [n for n in m.graph.node if n.input]
    if not nodes:
        return
    n = rng.choice(nodes)
    names = [t for x in m.graph.node for t in x.output] + [i.name for i in m.graph.initializer] + ["input"]
    n.input[rng.randrange(len(n.input))] = rng.choice(["", "nonexistent", *names])


def mut_append_empty(m, rng):  # type: ignore[no-untyped-def]
    if m.graph.node:
        n = rng.choice(m.graph.node)
        for _ in range(rng.randrange(1, 3)):
            (n.input if rng.random() < 0.8 else n.output).append("")


def mut_nodes(m, rng):  # type: ignore[no-untyped-def]
    nodes = m.graph.node
    if not nodes:
        return
    k = rng.random()
    i = rng.randrange(len(nodes))
    if k < 0.35:
        del nodes[i]
    elif k < 0.6:
        nodes.append(copy.deepcopy(nodes[i]))
    elif k < 0.8 and len(nodes) > 1:
        j = rng.randrange(len(nodes))
        a, b = copy.deepcopy(nodes[i]), copy.deepcopy(nodes[j])
        nodes[i].CopyFrom(b)
        nodes[j].CopyFrom(a)
    else:
        nodes[i].op_type = rng.choice(OPS)


# large but valid attribute values are 10^4, not 10^6: a Conv padded by 10^6 on the 16x16 seeds is a valid
# model that computes ~12 s per run (and simplify runs it four times); it proves nothing a 10^4 pad does not, and
# a few of them took a loaded machine's campaign most of its hours (the retry of a slow run stays for the rest)
def mut_attribute(m, rng):  # type: ignore[no-untyped-def]
    nodes = [n for n in m.graph.node]
    if not nodes:
        return
    n = rng.choice(nodes)
    if n.attribute and rng.random() < 0.7:
        a = rng.choice(n.attribute)
        if rng.random() < 0.3:
            n.attribute.remove(a)
        elif a.ints:
            a.ints[rng.randrange(len(a.ints))] = rng.choice((-1, 0, 2**31, 10**4, -(2**40)))
        else:
            a.i = rng.choice((-1, 0, 2**31, 10**4, -(2**40)))
    else:
        n.attribute.append(helper.make_attribute(rng.choice(("axis", "pads", "kernel_shape", "bogus")),
                                                 rng.choice((-5, 0, 99, [0, 0], [2**31, 1]))))


def mut_opset(m, rng):  # type: ignore[no-untyped-def]
    k = rng.random()
    if k < 0.5:
        m.opset_import[0].version = rng.choice((1, 7, 11, 13, 17, 21, 23, 25, 99))
    elif k < 0.8:
        m.ir_version = rng.choice((0, 1, 3, 7, 11, 99))
    else:
        m.opset_import.append(helper.make_opsetid(rng.choice(("com.microsoft", "com.microsoft.nchwc", "x.y")), 1))


def mut_graph_io(m, rng):  # type: ignore[no-untyped-def]
    k = rng.random()
    g = m.graph
    if k < 0.25 and g.output:
        del g.output[rng.randrange(len(g.output))]
    elif k < 0.45:
        g.output.append(helper.make_tensor_value_info(rng.choice(("c1", "nonexistent", "input")), TensorProto.FLOAT, [1]))
    elif k < 0.65:
        g.input.append(helper.make_tensor_value_info(f"extra{rng.randrange(9)}", rng.choice(ODD_TYPES[1:]), [1, 3]))
    elif k < 0.8 and g.input:
        vi = g.input[0]
        vi.type.CopyFrom(helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1])))
    elif g.input:
        del g.input[0]


def mut_metadata(m, rng):  # type: ignore[no-untyped-def]
    del m.metadata_props[:]
    if rng.random() < 0.85:
        e = m.metadata_props.add()
        e.key, e.value = "edgevis.preprocess", rng.choice(BAD_META)
    if rng.random() < 0.3:
        e = m.metadata_props.add()
        e.key, e.value = "edgevis.provenance", rng.choice(('{"precision": "integer-only"}', "[]", '{"model": 5}'))


STRUCTURAL: tuple[Callable, ...] = (mut_elem_type, mut_dims, mut_initializer, mut_node_input, mut_append_empty,
                                    mut_nodes, mut_attribute, mut_opset, mut_graph_io, mut_metadata)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    k = rng.random()
    if k < 0.3:
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif k < 0.45:
        b = b[: rng.randrange(len(b))]
    elif k < 0.6:
        at = rng.randrange(len(b))
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    elif k < 0.7:
        at = rng.randrange(len(b))
        b[at:at + rng.randrange(1, 64)] = bytes(64)
    elif k < 0.85:  # a name made invalid UTF-8
        for name in (b"logits", b"input", b"scale", b"w1", b"wq", b"c1"):
            if name in b and rng.random() < 0.6:
                b = bytearray(bytes(b).replace(name, b"\xff" + name[1:], 1))
                break
    else:
        at, n = rng.randrange(len(b)), rng.randrange(1, 200)
        b[at:at] = b[at:at + n]
    return bytes(b)


@dataclass
class Mutant:
    index: int
    seed: str
    ops: list[str]
    data: bytes
    sidecar: str | None = None


def make_mutant(i: int, base_seed: int, seeds: dict[str, onnx.ModelProto]) -> Mutant:
    """Mutant ``i`` of the campaign seeded ``base_seed``; a negative ``i`` is a seed model as it is (-1, -2, ...
    in name order), the control every command must run cleanly."""
    if i < 0:
        name = sorted(seeds)[-i - 1]
        return Mutant(i, name, [], seeds[name].SerializeToString())
    rng = random.Random(base_seed * 1_000_003 + i)
    name = rng.choice(sorted(seeds))
    m = copy.deepcopy(seeds[name])
    ops = []
    if rng.random() < 0.85:
        # one mutation half the time: a file that is wrong in one place gets deepest into the commands
        for fn in rng.sample(STRUCTURAL, 1 if rng.random() < 0.5 else rng.randrange(2, 4)):
            fn(m, rng)
            ops.append(fn.__name__)
    data = m.SerializeToString()
    if rng.random() < 0.2 or not ops:
        data = mutate_bytes(data, rng)
        ops.append("bytes")
    sidecar = rng.choice(BAD_SIDECARS) if rng.random() < 0.15 else None
    if sidecar is not None:
        ops.append("sidecar")
    return Mutant(i, name, ops, data, sidecar)


# ---------------------------------------------------------------------------------------------
# running: a worker process (tests/fuzz/worker.py) runs the commands; the driver owns timeouts


def write_inputs(root: Path) -> dict[str, Path]:
    """An image for predict and a calibration folder for quantize."""
    from PIL import Image

    rng = np.random.default_rng(1)
    img = root / "image.png"
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(img)
    calib = root / "calib"
    calib.mkdir()
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (18, 18, 3), dtype=np.uint8)).save(calib / f"c{k}.png")
    # held-out images of its own: without them, quantize decodes the bundled photos on every run
    holdout = root / "holdout"
    holdout.mkdir()
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (17, 19, 3), dtype=np.uint8)).save(holdout / f"h{k}.png")
    return {"image": img, "calib": calib, "holdout": holdout}


def argv_for(cmd: str, model: Path, out: Path, inputs: dict[str, Path]) -> list[str]:
    m = str(model)
    return {
        "inspect": ["inspect", m, "--json"],
        "lint": ["lint", m, "--target", "ort-cpu", "--json"],
        "simplify": ["simplify", m, "-o", str(out / "m.sim.onnx"), "--quiet"],
        "build": ["build", m, "--runtime", "ort", "-o", str(out / "m.ort.onnx"), "--quiet"],
        "predict": ["predict", m, "--image", str(inputs["image"]), "--json"],
        "profile": ["profile", m, "--iters", "2", "--warmup", "0", "--energy", "none", "--idle", "0", "--json"],
        "inspect-int": ["inspect", m, "--integer-only", "--json"],
        "quantize": ["quantize", m, "--int8", "--calib", str(inputs["calib"]), "--holdout", str(inputs["holdout"]),
                     "-o", str(out), "--calib-count", "4", "--quiet", "--no-latency-search"],
    }[cmd]


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env)
        line = self._read(180)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError("the fuzz worker did not start")

    def _read(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def run(self, job_id: int, argv: list[str], timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": job_id, "argv": argv}) + "\n")
        self.proc.stdin.flush()
        line = self._read(timeout)
        if line:
            return json.loads(line)
        if line is None:  # still running: a hang
            self.stop()
            return {"hang": True}
        rc = self.proc.wait()  # end of stream: the worker died, a native crash
        self.proc = None
        return {"signal": -rc if rc < 0 else None, "died": rc}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@dataclass
class Report:
    runs: Counter = field(default_factory=Counter)  # (command, verdict) -> count
    findings: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    cmd_seconds: Counter = field(default_factory=Counter)  # command -> seconds spent in its runs
    verdicts: dict[tuple[int, str], str] = field(default_factory=dict)  # (mutant, command) -> verdict
    slow: list[tuple[int, str]] = field(default_factory=list)  # runs that finished only on the longer retry
    done: list[int] = field(default_factory=list)  # the mutants run through every command

    def bad(self) -> list[dict]:
        return self.findings

    def table(self) -> str:
        cmds = sorted({c for c, _ in self.runs})
        verdicts = sorted({v for _, v in self.runs})
        lines = ["command    " + "".join(f"{v:>12}" for v in verdicts)]
        for c in cmds:
            lines.append(f"{c:<11}" + "".join(f"{self.runs[(c, v)]:>12}" for v in verdicts))
        return "\n".join(lines)


def verdict(cmd: str, answer: dict, leftovers: list[str], tmp_left: list[str]) -> tuple[str, str | None]:
    """(verdict, problem): ``ok``/``refused``/``findings`` when the promise held, else a problem described."""
    if answer.get("hang"):
        return "HANG", "ran past its timeout"
    if "died" in answer:
        return "CRASH", f"the process died (signal {answer.get('signal')}, exit {answer.get('died')})"
    if answer.get("traceback"):
        return "TRACEBACK", answer["traceback"].strip().splitlines()[-1]
    err_lines = [ln for ln in answer["stderr"].splitlines() if ln.startswith("error:")]
    if "Traceback" in answer["stderr"]:
        return "TRACEBACK", "a traceback was printed"
    if tmp_left:
        return "LEFTOVER", f"temporary files left: {tmp_left[:3]}"
    rc = answer["rc"]
    if rc == 0:
        if any(x.endswith(".tmp") for x in leftovers):
            return "LEFTOVER", f"temporary files in the output folder: {leftovers[:3]}"
        alone = [x for x in leftovers if x.endswith(".onnx") and x + ".json" not in leftovers]
        if alone:
            return "LEFTOVER", f"a model written without its sidecar: {alone[:3]}"
        return "ok", None
    if leftovers:
        return "LEFTOVER", f"a failed run left files in the output folder: {leftovers[:3]}"
    if cmd in ("lint", "inspect-int") and rc == 1 and not err_lines:  # findings / not integer-only
        return "findings", None
    if len(err_lines) != 1:
        return "NO-ERROR-LINE", f"exit {rc} with {len(err_lines)} error: lines: {answer['stderr'][-300:]!r}"
    return "refused", None


def diverse(count: int, base_seed: int, seeds: dict[str, onnx.ModelProto], pool: int = 300) -> list[int]:
    """``count`` mutant indices that spread over the mutations: the first mutants (in index order) that bring a
    (seed model, mutation) pair not seen yet, then a (mutation, mutation) pair, then whatever comes - so a small
    campaign (CI) reaches every mutation on every seed before it repeats one."""
    seen: set[tuple[str, ...]] = set()
    picked: list[int] = []
    for level in (0, 1, 2):
        for i in range(pool):
            if len(picked) == count:
                return picked
            if i in picked:
                continue
            mt = make_mutant(i, base_seed, seeds)
            keys = {(mt.seed, op) for op in mt.ops} if level == 0 else \
                {(a, b) for a in mt.ops for b in mt.ops if a < b} if level == 1 else {("any", str(i))}
            if keys - seen:
                seen |= keys
                picked.append(i)
    return picked


SLOW_RETRY = 5


def _clear(folder: Path) -> None:
    for p in folder.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()


def campaign(mutants: int | list[int], *, seed: int = 0, commands: tuple[str, ...] = COMMANDS, timeout: float = 120,
             workdir: Path, log: Callable[[str], None] = lambda _: None,
             keep_failures: Path | None = None, only: Callable[[int], bool] = lambda _: True,
             stop: Callable[[], bool] = lambda: False) -> Report:
    """Run ``mutants`` mutants (a count: 0 .. mutants-1, or the indices themselves, see :func:`make_mutant`)
    through ``commands``; a :class:`Report` of verdicts and problems found."""
    t0 = time.perf_counter()
    seeds = seed_models()
    inputs = write_inputs(workdir)
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1", "EDGEVIS_PROBE_TIMEOUT": str(timeout / 2)}
    worker = Worker(env)
    report = Report()
    try:
        indices = range(mutants) if isinstance(mutants, int) else mutants
        for i in indices:
            if stop():  # asked to end early: the report covers the mutants finished so far
                break
            if not only(i):
                continue
            mt = make_mutant(i, seed, seeds)
            mdir = workdir / f"m{i}"
            mdir.mkdir()
            model = mdir / "m.onnx"
            model.write_bytes(mt.data)
            if mt.sidecar is not None:
                (mdir / "m.onnx.json").write_text(mt.sidecar, errors="surrogateescape")
            for cmd in commands:
                out = mdir / f"out-{cmd}"
                out.mkdir()
                t1 = time.perf_counter()
                job = i * 100 + (COMMANDS + EXTRA_COMMANDS).index(cmd)
                answer = worker.run(job, argv_for(cmd, model, out, inputs), timeout)
                if answer.get("hang"):
                    # a file can ask for real work (a Conv padded by 10^6 computes for a minute on a busy machine):
                    # a run past the timeout is run again, from a clean folder, with SLOW_RETRY times the time; one
                    # that then finishes is judged like any run and counted as slow, one that does not is a hang
                    _clear(out)
                    _clear(tmp)
                    answer = worker.run(job, argv_for(cmd, model, out, inputs), timeout * SLOW_RETRY)
                    if not answer.get("hang"):
                        report.slow.append((i, cmd))
                report.cmd_seconds[cmd] += time.perf_counter() - t1
                leftovers = sorted(p.name for p in out.iterdir())
                tmp_left = sorted(p.name for p in tmp.iterdir() if p.name not in FOREIGN_TMP)
                v, problem = verdict(cmd, answer, leftovers, tmp_left)
                report.runs[(cmd, v)] += 1
                report.verdicts[(i, cmd)] = v
                if problem:
                    finding = {"mutant": i, "seed": mt.seed, "mutations": mt.ops, "command": cmd, "verdict": v,
                               "problem": problem, "stderr": (answer.get("stderr") or "")[-600:]}
                    report.findings.append(finding)
                    log(json.dumps(finding))
                    if keep_failures is not None:
                        keep_failures.mkdir(parents=True, exist_ok=True)
                        shutil.copy(model, keep_failures / f"mutant{i}-{cmd}.onnx")
                for p in tmp.iterdir():  # start the next run clean
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
                shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(mdir, ignore_errors=True)
            report.done.append(i)
            if (i + 1) % 50 == 0:
                log(f"{i + 1}/{len(indices)} mutants, {time.perf_counter() - t0:.0f} s, {len(report.findings)} problems; "
                    + json.dumps({f"{c} {v}": n for (c, v), n in sorted(report.runs.items())}))
    finally:
        worker.stop()
    report.seconds = time.perf_counter() - t0
    return report
