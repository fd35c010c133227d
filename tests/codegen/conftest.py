"""Integer-only files of the digits-trained test models, with the Program that made them, once per session."""

import os
from pathlib import Path

import numpy as np
import pytest

TRAIN_EPOCHS = 2  # deit and swin: enough for logits that mean something (lsnet shares the suite's checkpoint)
CALIB = 32


def _shared(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def codegen_digits(tmp_path_factory):
    """(calibration dir, held-out dir): a small slice of the digits, for the integer-only files made here."""
    from filelock import FileLock

    from edgevis.data.digits import write_digits_folder

    root = _shared(tmp_path_factory) / "codegen_digits"
    with FileLock(str(root) + ".lock"):
        if not (root / "done").is_file():
            write_digits_folder(root / "calib", "train", size=64, limit=CALIB)
            write_digits_folder(root / "held", "test", size=64, limit=24)
            (root / "done").write_text("ok")
    return root / "calib", root / "held"


def _checkpoint(name, tmp_path_factory, digits_lsnet):
    from filelock import FileLock

    from edgevis.catalog.training import train_digits

    if name == "test_lsnet":
        return digits_lsnet[0]
    path = _shared(tmp_path_factory) / f"digits_{name}_64_e{TRAIN_EPOCHS}.pth"
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            train_digits(name, path, epochs=TRAIN_EPOCHS, input_size=64, seed=0, threads=1)
    return path


class IntModel:
    def __init__(self, name, fp32, path, program, held):
        self.name, self.fp32, self.path, self.program, self.held = name, fp32, path, program, held


def rebuild_program(fp32: Path, int_path: Path, calib: Path, held: Path):
    """The Program behind ``int_path``: the quantizer's own calibration replayed (it is deterministic), and
    proven to be the one by lowering it again: the same graph as the file."""
    import json

    from edgevis.core.onnxfile import load_onnx
    from edgevis.graph.inspect import static_batch
    from edgevis.quant.calibration import CalibrationStream, calibration_sources
    from edgevis.quant.integer_only import EVAL_IMAGES, convert_model
    from edgevis.quant.ivit.calibrate import activation_absmax
    from edgevis.runtimes.predict import recorded_preprocess

    model = load_onnx(fp32)
    spec, prov = recorded_preprocess(fp32, model)
    source, _ = calibration_sources(calib, held, [])
    stream = CalibrationStream(source, spec, static_batch(model), CALIB, EVAL_IMAGES)
    absmax, _ = activation_absmax(model, stream)
    side = json.loads(int_path.with_name(int_path.name + ".json").read_text())
    prog = convert_model(model, absmax, str(prov.get("model") or fp32.stem), side["quantization"]["act_bits"])
    again, file_graph = prog.to_onnx().graph, load_onnx(int_path).graph
    assert [n.SerializeToString() for n in again.node] == [n.SerializeToString() for n in file_graph.node]
    assert sorted(i.SerializeToString() for i in again.initializer) == \
        sorted(i.SerializeToString() for i in file_graph.initializer)
    return prog


@pytest.fixture(scope="session", params=["test_lsnet", "test_deit", "test_swin"])
def int_model(request, tmp_path_factory, digits_lsnet, codegen_digits):
    from edgevis.exporters.onnx import ExportConfig, export_onnx
    from edgevis.quant.integer_only import IntegerOnlyConfig, quantize_integer_only_file

    name = request.param
    calib, held = codegen_digits
    out = tmp_path_factory.mktemp(f"int_{name}")
    ckpt = _checkpoint(name, tmp_path_factory, digits_lsnet)
    fp32 = export_onnx(name, out, weights=ckpt, config=ExportConfig(input_size=(64, 64))).artifact.path
    # 8-bit: the 16-bit layout's uint8 x int8 products can saturate in ONNX Runtime's AVX2 kernels (the quantizer
    # then refuses the file as not bit-exact), which a 2-epoch DeiT would otherwise hit
    config = IntegerOnlyConfig(calib_dir=calib, holdout_dir=held, calib_count=CALIB, act_bits=8)
    q = quantize_integer_only_file(fp32, config)
    return IntModel(name, fp32, q.path, rebuild_program(fp32, q.path, calib, held), held)
