"""The README's quick start and CI run the same thing."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    assert len(blocks) >= 2 and "edgevis export --model lsnet_t --int8" in blocks[0]
    test_cmd = blocks[1].split(". .venv/bin/activate && ", 1)[1]
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def _section(readme: str, heading: str) -> str:
    start = readme.index(heading)
    nxt = readme.find("\n## ", start + len(heading))
    return readme[start: nxt if nxt > 0 else None]


def test_python_api_block_runs_as_written(tmp_path):
    """The README's Python API example, executed as a user would paste it (in a fresh folder)."""
    import json
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", _section(readme, "## Python API"), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0] + (
        "\nimport json, pathlib\n"
        "print(json.dumps({'int8': run.int8.fidelity['images'], 'p50': [fp32.latency_ms('p50'), int8.latency_ms('p50')],"
        " 'report': sorted(p.name for p in pathlib.Path('edgevis_out/report').iterdir())}))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr
    last = json.loads(p.stdout.strip().splitlines()[-1])
    assert last["int8"] > 0 and all(v > 0 for v in last["p50"])
    assert last["report"] == ["report.html", "report.json", "report.md"]
    assert (tmp_path / "edgevis_out/lsnet_t.int8.onnx").is_file()


def test_examples_are_all_run_by_a_test():
    """Every script in examples/ is named by a test (tests/test_examples.py or another test file)."""
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    scripts = [p for p in (ROOT / "examples").rglob("*.py")]
    missing = [str(p.relative_to(ROOT)) for p in scripts if p.name not in tests]
    assert not missing, missing
