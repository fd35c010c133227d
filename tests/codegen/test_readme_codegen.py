"""The README's "Integer-only C" block, run as written (in a folder holding a trained integer-only file and a
digit PNG, with the repository's examples/ beside it)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Integer-only C", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    return block


@pytest.mark.parametrize("int_model", ["test_lsnet"], indirect=True)
def test_readme_block_runs(int_model, tmp_path):
    for f in (int_model.path, int_model.path.with_name(int_model.path.name + ".json")):
        shutil.copy(f, tmp_path / f.name.replace(int_model.path.name.split(".")[0], "test_lsnet", 1))
    shutil.copy(sorted(int_model.held.rglob("*.png"))[0], tmp_path / "digit.png")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", _block()], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.strip().splitlines()
    assert lines[-5].startswith("1 ") and len(lines[-5:]) == 5
    assert (tmp_path / "test_lsnet.o").is_file() and (tmp_path / "test_lsnet_weights.o").is_file()
