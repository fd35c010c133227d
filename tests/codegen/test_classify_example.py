"""examples/c/classify: built with its Makefile against an emitted model, it reads a PNG with libpng and
prints the same top-5 as `edgevis predict` on the integer-only file; its int8 input equals Python's."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgevis.codegen import emit_c
from edgevis.data.preprocess import preprocess_file
from edgevis.runtimes.predict import recorded_preprocess

from cbuild import ort_int8_and_logits

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "c" / "classify"


def make_classify(lib, exe: Path) -> Path:
    p = subprocess.run(["make", "-s", "-C", str(EXAMPLE), f"LIB={lib.out_dir}", f"MODEL={lib.name}", f"OUT={exe}"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return exe


@pytest.mark.parametrize("int_model", ["test_lsnet"], indirect=True)
def test_classify_prints_the_top5_of_predict(int_model, tmp_path):
    lib = emit_c(int_model.path, tmp_path / "c")
    exe = make_classify(lib, tmp_path / "classify")
    spec, _ = recorded_preprocess(int_model.path)
    for png in sorted(int_model.held.rglob("*.png"))[::7][:2]:
        dump = tmp_path / "in.bin"
        p = subprocess.run([str(exe), str(png), "--dump-input", str(dump)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        # the C preprocessing (NAME_input.c) gives Python's int8 input exactly: ORT's QuantizeLinear and numpy's
        x = preprocess_file(png, spec)[None]
        ort8, _ = ort_int8_and_logits(int_model.path, [x])
        c8 = np.fromfile(dump, np.int8)
        assert np.array_equal(c8, ort8.reshape(-1))
        assert np.array_equal(c8, int_model.program.quantize_input(x).reshape(-1))
        pred = subprocess.run([sys.executable, "-m", "edgevis", "predict", str(int_model.path), "-i", str(png),
                               "--json"], capture_output=True, text=True, check=True)
        want = [(t["index"], t["name"], f"{t['probability']:.4f}") for t in json.loads(pred.stdout)["top"]]
        got = [(int(ln.split()[1]), " ".join(ln.split()[2:-1]), ln.split()[-1]) for ln in p.stdout.splitlines()]
        assert got == want
    # not a PNG: one error line, non-zero exit
    bad = tmp_path / "x.png"
    bad.write_text("not a png")
    p = subprocess.run([str(exe), str(bad)], capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("error:") and len(p.stderr.strip().splitlines()) == 1
