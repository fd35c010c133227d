"""The pipeline's output-folder lock: a second run into the same folder waits (or says why it gave up)."""

import multiprocessing as mp

import pytest

from edgevis.core.errors import EdgevisError
from edgevis.pipeline.steps import locked_output


def _hold(path, held, release):
    with locked_output(path):
        held.set()
        release.wait(30)


def test_a_second_run_into_one_folder_waits_for_the_first(tmp_path):
    ctx = mp.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), held, release))
    p.start()
    try:
        assert held.wait(60)
        with pytest.raises(EdgevisError, match="another edgevis run has held .* use another --output-dir"):
            with locked_output(tmp_path, timeout=0.5):
                pass
        release.set()
        with locked_output(tmp_path, timeout=60):  # released by the first run: taken
            pass
    finally:
        release.set()
        p.join(30)
    assert list(tmp_path.iterdir()) == []  # no lock file left in the user's folder


def test_the_lock_goes_with_a_killed_run(tmp_path):
    ctx = mp.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), held, release))
    p.start()
    assert held.wait(60)
    p.kill()
    p.join(30)
    with locked_output(tmp_path, timeout=5):
        pass


def test_a_warning_is_said_once_however_many_steps_raise_it():
    # --int8 --integer-only read the same calibration folder: its unreadable files were reported twice
    from edgevis.pipeline.exporting import say_warnings

    said, warnings = [], []
    step = lambda kind, msg: said.append((kind, msg))  # noqa: E731
    say_warnings(step, warnings, ["skipped 1 unreadable calibration file(s), e.g. a.jpg", "random weights"])
    say_warnings(step, warnings, ["skipped 1 unreadable calibration file(s), e.g. a.jpg", "a new one"])
    assert warnings == ["skipped 1 unreadable calibration file(s), e.g. a.jpg", "random weights", "a new one"]
    assert said == [("warning", w) for w in warnings]
