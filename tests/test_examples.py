"""The Python examples, run as scripts on small inputs (the digits-trained fixture) so the suite stays fast."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "python"


def script(name, *args, cwd):
    p = subprocess.run([sys.executable, str(EX / name), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=1200)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def catalog_run(tmp_path_factory, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, _ = digits_folders
    work = tmp_path_factory.mktemp("example_catalog")
    out = script("catalog_int8_report.py", "--model", "test_lsnet", "--weights", ckpt, "--input-size", *size,
                 "--calib", calib, "--out", work / "out", "--iters", 20, cwd=work)
    return work / "out", out


def test_catalog_int8_report(catalog_run):
    out_dir, out = catalog_run
    assert "INT8 agrees with FP32 on" in out and "speedup over FP32" in out
    assert "files reused: ['fp32', 'int8']" in out  # bench reused what export wrote: the sidecars match
    assert (out_dir / "report" / "report.html").is_file()


def test_profile_two_precisions(catalog_run, tmp_path):
    out_dir, _ = catalog_run
    out = script("profile_two_precisions.py", out_dir / "test_lsnet.fp32.onnx", out_dir / "test_lsnet.int8.onnx",
                 "--rounds", 2, "--iters", 10, cwd=tmp_path)
    assert out.count("over 20 runs") == 2 and "speedup (p50):" in out


def test_quantize_your_onnx(digits_plain_onnx_for_examples, digits_folders, tmp_path):
    src, info = digits_plain_onnx_for_examples
    calib, _ = digits_folders
    out = script("quantize_your_onnx.py", src, "--input-size", 64, 64, "--mean", *info.mean, "--std", *info.std,
                 "--images", calib, "--out", tmp_path / "o", cwd=tmp_path)
    assert "wrote" in out and (tmp_path / "o" / "digits_lsnet.int8.onnx").is_file()
    agreement = float(out.split("top-1 agreement with FP32 ")[1].split("%")[0])
    assert agreement >= 80.0  # a trained model, its own (bilinear, uncropped) preprocessing: answers kept


def test_your_torch_model(tmp_path):
    out = script("your_torch_model.py", "--out", tmp_path / "o", cwd=tmp_path)
    assert (tmp_path / "o/tinynet.fp32.onnx").is_file() and (tmp_path / "o/tinynet.int8.onnx").is_file()
    assert "module:TinyNet" in out


@pytest.fixture(scope="module")
def digits_plain_onnx_for_examples(tmp_path_factory, digits_lsnet):
    import torch

    from edgevis.catalog import create_model, model_info

    ckpt, size = digits_lsnet
    model = create_model("test_lsnet", weights=ckpt, input_size=size, deploy=True)
    out = tmp_path_factory.mktemp("plain_ex") / "digits_lsnet.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, *size),), str(out), dynamo=False)
    return out, model_info("test_lsnet")
