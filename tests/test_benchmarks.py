"""The benchmarks are run by hand, not by CI: these checks keep them from rotting between runs.

Each script's ``--help`` must run (its argument parser builds, its module-level imports resolve), and every
name a script imports from edgevis, at module level or inside a function, must exist. A benchmark that
imported a helper a later change renamed (``int8_accuracy.py`` and ``calibration._crops``) failed only
when someone next ran it; here it fails at once. Running them whole is minutes to hours each."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def edgevis_imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for every ``from edgevis... import name`` in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "edgevis":
            found += [(node.module, a.name, node.lineno) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "edgevis"]
    return found


def test_there_are_benchmarks_to_check() -> None:
    assert len(SCRIPTS) >= 5 and sum(bool(edgevis_imports(p)) for p in SCRIPTS) >= 5  # fuzz.py imports through tests/fuzz


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_name_a_benchmark_imports_from_edgevis_exists(script: Path) -> None:
    missing = []
    for module, name, line in edgevis_imports(script):
        mod = importlib.import_module(module)
        if name and not hasattr(mod, name):
            try:  # ``from edgevis.pkg import submodule``
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{script.name}:{line}: {module}.{name}")
    assert not missing, "benchmark imports names edgevis no longer has: " + ", ".join(missing)


def test_the_import_check_sees_a_missing_name(tmp_path: Path) -> None:
    bad = tmp_path / "bench.py"
    bad.write_text("def main():\n    from edgevis.quant.calibration import _no_such_helper\n")
    assert edgevis_imports(bad) == [("edgevis.quant.calibration", "_no_such_helper", 2)]
    assert not hasattr(importlib.import_module("edgevis.quant.calibration"), "_no_such_helper")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_prints_its_usage(script: Path) -> None:
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage:") and "--" in r.stdout
