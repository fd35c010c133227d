import os
from pathlib import Path

import pytest

# keep ORT and torch from oversubscribing the CI machine's 2 cores when xdist runs 2 workers
os.environ.setdefault("OMP_NUM_THREADS", "1")

# the checkpoint every test that needs a trained model shares: ~97 % on the digits test split
DIGITS_MODEL, DIGITS_SIZE, DIGITS_EPOCHS = "test_lsnet", 64, 6


@pytest.fixture(scope="session")
def lsnet_t_export(tmp_path_factory):
    """lsnet_t (random init) exported once through the public API, shared by tests."""
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32

    out = tmp_path_factory.mktemp("lsnet_t_export")
    return export_fp32("lsnet_t", out, config=ExportConfig(dynamic_batch=True))


def _session_dir(tmp_path_factory) -> Path:
    """A folder shared by all xdist workers of this test session (and only this one)."""
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's basetemp is <session dir>/popen-gwN; without xdist the
    # parent is shared by past sessions, so stay in the session's own folder
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def digits_lsnet(tmp_path_factory) -> tuple[Path, tuple[int, int]]:
    """(checkpoint, input size) of test_lsnet trained on the digits, once per session.

    Random-weight models give near-constant logits; quantization fidelity needs a model
    whose outputs mean something. The workers take a file lock, so the first trains
    and the others load its checkpoint.
    """
    from filelock import FileLock

    from edgevis.catalog.training import train_digits

    shared = _session_dir(tmp_path_factory)
    path = shared / f"digits_{DIGITS_MODEL}_{DIGITS_SIZE}_e{DIGITS_EPOCHS}.pth"
    with FileLock(str(path) + ".lock"):
        if not path.is_file():  # written atomically: present means complete
            train_digits(DIGITS_MODEL, path, epochs=DIGITS_EPOCHS, input_size=DIGITS_SIZE, seed=0, threads=1)
    return path, (DIGITS_SIZE, DIGITS_SIZE)


@pytest.fixture(scope="session")
def digits_folders(tmp_path_factory) -> tuple[Path, Path]:
    """(calibration dir, held-out dir) of digit PNGs in per-class folders.

    Calibration: 128 class-balanced images of the train split; held-out: the whole
    test split (359 images), which the digits_lsnet model never saw.
    """
    from edgevis.data.digits import write_digits_folder

    root = tmp_path_factory.mktemp("digits")
    calib = write_digits_folder(root / "calib", "train", size=DIGITS_SIZE, limit=128)
    heldout = write_digits_folder(root / "heldout", "test", size=DIGITS_SIZE)
    return calib, heldout
