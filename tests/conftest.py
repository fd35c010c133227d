import os

import pytest

# keep ORT and torch from oversubscribing the CI machine's 2 cores when xdist runs 2 workers
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def lsnet_t_export(tmp_path_factory):
    """lsnet_t (random init) exported once through the public API, shared by tests."""
    from edgevis.exporters.onnx import ExportConfig, export_onnx

    out = tmp_path_factory.mktemp("lsnet_t_export")
    return export_onnx("lsnet_t", out, config=ExportConfig(dynamic_batch=True))
