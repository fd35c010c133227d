"""INT8 smoke on the full-size lsnet_t: calibration input handling and a Q/DQ model that runs
(quality is measured on trained fixtures in test_int8.py and benchmarks/int8_cpu.py)."""

import numpy as np
import onnx
import pytest
from PIL import Image

from edgevis.core.errors import EdgevisError
from edgevis.quant.calibration import folder_source
from edgevis.quant.int8 import Int8Config, quantize_int8_file
from edgevis.runtimes.ort import OrtRunner


def test_calibration_folder_errors(tmp_path):
    with pytest.raises(EdgevisError, match="not found"):
        folder_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgevisError, match="holds no images"):
        folder_source(tmp_path / "empty")


def test_int8_with_user_folder_skips_corrupt_files(tmp_path, lsnet_t_export):
    import shutil

    calib = tmp_path / "calib" / "nested"
    calib.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(calib / f"{i}.png")
    (calib / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    work = tmp_path / "work"
    work.mkdir()
    src = work / "lsnet_t.fp32.onnx"
    shutil.copy(lsnet_t_export.artifact.path, src)
    res = quantize_int8_file(src, Int8Config(calib_dir=tmp_path / "calib", calib_count=8, latency_search=False))
    assert res.path == work / "lsnet_t.int8.onnx" and res.path.is_file()
    assert any("skipped 1 unreadable" in w for w in res.warnings)
    assert res.settings["calibration_images"] == 6
    ops = {n.op_type for n in onnx.load(str(res.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with OrtRunner(res.path) as r:
        y = r.infer(np.zeros((2, 3, 224, 224), np.float32))
    assert y.shape == (2, 1000) and np.isfinite(y).all()
    assert 0.0 <= res.fidelity["top1_agreement"] <= 1.0 and res.fidelity["images"] > 0


def test_calibration_folder_of_only_corrupt_images_is_a_clear_error(tmp_path, lsnet_t_export):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.png").write_bytes(b"not a png")
    (calib / "b.jpg").write_bytes(b"")
    import shutil

    src = tmp_path / "lsnet_t.fp32.onnx"
    shutil.copy(lsnet_t_export.artifact.path, src)
    with pytest.raises(EdgevisError, match="no readable calibration image"):
        quantize_int8_file(src, Int8Config(calib_dir=calib))
    assert not (tmp_path / "lsnet_t.int8.onnx").exists()
