"""A bounded, seeded fuzz run in CI: mutated ONNX files through the commands, the promise checked per run.

The big campaign (thousands of mutants, quantize included) is ``benchmarks/fuzz.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402

# quantize joins once INT8 calibration creates its ORT sessions through edgevis.runtimes.ort (see the
# benchmark, which runs it); the other commands are held to the promise here
CI_COMMANDS = ("inspect", "lint", "simplify", "build", "predict")


def test_mutants_get_a_clean_result_or_one_error_line(tmp_path):
    report = fuzzlib.campaign(48, seed=0, commands=CI_COMMANDS, timeout=120, workdir=tmp_path)
    assert not report.findings, "\n".join(str(f) for f in report.findings[:5])
    runs = sum(report.runs.values())
    assert runs == 48 * len(CI_COMMANDS)
    # the campaign reaches both outcomes: files that load and files that are refused
    assert sum(n for (c, v), n in report.runs.items() if v == "ok") > 0
    assert sum(n for (c, v), n in report.runs.items() if v == "refused") > 0


def test_a_crashing_file_is_one_error_line_through_a_real_subprocess(tmp_path):
    """The crash seed as written segfaults ORT; the CLI respells it and stays up (a real `edgevis` process)."""
    import subprocess

    m = tmp_path / "ln.onnx"
    m.write_bytes(fuzzlib.seed_models()["ln"].SerializeToString())
    for args in (["build", str(m), "--runtime", "ort", "-o", str(tmp_path / "o.onnx"), "--quiet"],
                 ["simplify", str(m), "-o", str(tmp_path / "s.onnx"), "--quiet"]):
        p = subprocess.run([sys.executable, "-m", "edgevis", *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ln.onnx", "o.onnx", "o.onnx.json", "s.onnx", "s.onnx.json"]


def test_mutations_are_seeded():
    seeds = fuzzlib.seed_models()
    a = [fuzzlib.make_mutant(i, 3, seeds) for i in range(20)]
    b = [fuzzlib.make_mutant(i, 3, seeds) for i in range(20)]
    assert [m.data for m in a] == [m.data for m in b]
    assert len({m.data for m in a}) > 15  # and they differ from one another
