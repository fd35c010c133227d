"""Running `edgevis` as users do (a real subprocess) and checking its one-line errors."""

import subprocess
import sys

EDGEVIS = [sys.executable, "-m", "edgevis"]


def run(*args, check_ok=True, env=None, timeout=600):
    p = subprocess.run([*EDGEVIS, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check_ok:
        assert p.returncode == 0, p.stderr
    return p


def assert_one_line_error(p, pattern):
    import re

    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    assert re.search(pattern, errors[0]), errors[0]
