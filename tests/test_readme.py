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
