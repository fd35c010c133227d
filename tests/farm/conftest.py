"""What the farm tests share: the digits-trained model at two input sizes, exported once per test session."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))  # clihelpers: run edgevis as users do

from farmhelpers import farm_config  # noqa: E402


@pytest.fixture(scope="session")
def farm_files(tmp_path_factory, digits_lsnet, digits_folders):
    """(checkpoint, (calib, held-out), output dir) with both models exported and quantized there once, so
    that every sweep of the session reuses them (their sidecars match) and the tests time cells, not exports."""
    from filelock import FileLock

    from edgevis.farm.host import prepare_model

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "farm_out"
    ckpt, _ = digits_lsnet
    with FileLock(str(out) + ".lock"):
        config = farm_config(ckpt, digits_folders, out)
        for m in config.models:
            prepare_model(config, m, lambda s: None)
    return ckpt, digits_folders, out
