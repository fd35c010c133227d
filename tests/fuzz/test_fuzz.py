"""A bounded, seeded fuzz run in CI: mutated ONNX files through every command, the promise checked per run.

Few mutants, chosen to spread (:func:`fuzzlib.diverse`: every mutation on every seed model before any
repeats), plus the three seed models as they are - among them the LayerNormalization crasher, which
must *run* through every command in the worker (a real process: a segfault is a dead worker, a CRASH
verdict). The big campaign (thousands of mutants) is ``benchmarks/fuzz.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402

CI_COMMANDS = fuzzlib.COMMANDS + ("profile",)
SEEDS = [-1, -2, -3]  # the seed models unmutated (cnn, ln, qdq)


def test_mutants_get_a_clean_result_or_one_error_line(tmp_path):
    seeds = fuzzlib.seed_models()
    mutants = SEEDS + fuzzlib.diverse(30, 0, seeds)
    report = fuzzlib.campaign(mutants, seed=0, commands=CI_COMMANDS, timeout=120, workdir=tmp_path)
    assert not report.findings, "\n".join(str(f) for f in report.findings[:5])
    assert sum(report.runs.values()) == len(mutants) * len(CI_COMMANDS)
    # the seed models are valid classifiers: every command succeeds on each, the crasher included (respelled
    # before ONNX Runtime sees it), and lint flags the crash pattern it respells
    for i in SEEDS:
        for cmd in CI_COMMANDS:
            want = "findings" if (cmd, i) == ("lint", -2) else "ok"
            assert report.verdicts[(i, cmd)] == want, (i, cmd, report.verdicts[(i, cmd)])
    # every command reaches both outcomes on the mutants: files that load and files that are refused
    for cmd in CI_COMMANDS:
        seen = {report.verdicts[(i, cmd)] for i in mutants[len(SEEDS):]}
        assert "refused" in seen and seen & {"ok", "findings"}, (cmd, seen)


def test_small_campaigns_cover_every_mutation_on_every_seed():
    seeds = fuzzlib.seed_models()
    picked = [fuzzlib.make_mutant(i, 0, seeds) for i in fuzzlib.diverse(30, 0, seeds)]
    ops = {f.__name__ for f in fuzzlib.STRUCTURAL} | {"bytes", "sidecar"}
    assert {(m.seed, op) for m in picked for op in m.ops} == {(s, op) for s in seeds for op in ops}


def test_mutations_are_seeded():
    seeds = fuzzlib.seed_models()
    a = [fuzzlib.make_mutant(i, 3, seeds) for i in range(20)]
    b = [fuzzlib.make_mutant(i, 3, seeds) for i in range(20)]
    assert [m.data for m in a] == [m.data for m in b]
    assert len({m.data for m in a}) > 15  # and they differ from one another
