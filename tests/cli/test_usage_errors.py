"""Option bounds and usage mistakes are one `error:` line with exit 2 (not typer's usage box); SIGTERM is
handled like Ctrl-C."""

import os
import signal
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevis.cli.app import main


@pytest.mark.parametrize("argv, message", [
    (["predict", "m.onnx", "--image", "i.png", "--top", "0"], "Invalid value for '--top'"),
    (["predict", "m.onnx"], "Missing option '--image'"),
    (["export", "--model", "lsnet_t", "--batch", "0"], "--batch"),
    (["export", "--model", "lsnet_t", "--input-size", "100000", "100000"], "--input-size must be two sides from 32 to"),
    (["export", "--model", "lsnet_t", "--num-classes", "100000000"], "--num-classes must be from 1 to 100000"),
    (["quantize", "m.onnx", "--int8", "--calib-count", "0"], "calib-count"),
    (["nosuchcommand"], "No such command"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert "╭" not in err and "Usage:" not in err
    assert list(tmp_path.iterdir()) == []


def test_help_and_version_still_exit_zero(capsys):
    for argv in (["--version"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    assert "edgevis" in capsys.readouterr().out


def test_sigterm_is_handled_like_ctrl_c():
    from edgevis.cli.common import handle_sigterm

    old = signal.getsignal(signal.SIGTERM)
    try:
        handle_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; the sleep is never finished
    finally:
        signal.signal(signal.SIGTERM, old)


def test_sigterm_removes_temporary_files(tmp_path):
    """A real `edgevis` process killed with SIGTERM while it writes: exit 130, one line, no temporary file."""
    import subprocess
    import sys
    import time

    code = ("import time, sys\n"
            "from edgevis.cli import app\n"
            "from edgevis.core.files import atomic_outputs\n"
            "def slow() -> None:\n"
            f"    with atomic_outputs({str(tmp_path / 'm.onnx')!r}, {str(tmp_path / 'm.onnx.json')!r}) as (a, b):\n"
            "        a.write_bytes(b'x'); print('writing', flush=True); time.sleep(60)\n"
            "from edgevis.cli.common import user_errors\n"
            "app.app.command('slow')(user_errors(slow))\n"
            "app.main(['slow'])\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing", p.stderr.read() if p.poll() is not None else ""
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=40, deadline=None)
@given(top=st.integers(-10**12, 10**12), threads=st.integers(-5, 10**6))
def test_any_top_and_threads_are_a_result_or_one_error_line(tmp_path_factory, top, threads):
    """Whatever numbers are given, predict answers with one error line (here: the model is missing)."""
    import contextlib
    import io

    d = tmp_path_factory.mktemp("p")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        main(["predict", str(d / "missing.onnx"), "--image", str(d / "i.png"), "--top", str(top),
              "--threads", str(threads)])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err.getvalue()
    assert ("'--top'" in lines[0]) == (top < 1) or ("'--threads'" in lines[0] and threads < 0)


@settings(max_examples=60, deadline=None)
@given(size=st.tuples(st.integers(-5, 10**6), st.integers(-5, 10**6)), classes=st.integers(-5, 10**9),
       batch=st.integers(-5, 10**4))
def test_export_bounds_are_checked_before_any_work(size, classes, batch):
    from edgevis.core.errors import EdgevisError
    from edgevis.exporters.onnx import MAX_CLASSES, MAX_EXPORT_SIDE, ExportConfig

    ok = 32 <= min(size) and max(size) <= MAX_EXPORT_SIDE and 1 <= classes <= MAX_CLASSES and batch >= 1
    try:
        ExportConfig(input_size=size, num_classes=classes, batch=batch)
    except EdgevisError as e:
        assert not ok and "\n" not in str(e)
    else:
        assert ok
