"""The device-side commands as users run them: simplify, build, lint - and all of them without torch."""

import json
import subprocess
import sys

import onnx
import pytest

from clihelpers import assert_one_line_error, run
from handmade_graphs import foldable_float, twin_qdq_convs

# what a Jetson with only onnx + onnxruntime lacks: importing any of these fails in the child process
# (matplotlib too: only --report draws plots)
HOST_ONLY = ("torch", "torchvision", "onnxscript", "onnxsim", "onnxslim", "skimage", "sklearn", "matplotlib")


def run_without_host_packages(*args):
    code = ("import sys\n"
            f"for m in {HOST_ONLY!r}: sys.modules[m] = None\n"
            "from edgevis.cli.app import main\n"
            f"sys.argv = ['edgevis', *{[str(a) for a in args]!r}]\n"
            "try:\n    main()\nfinally:\n"
            f"    leaked = [m for m in sys.modules if m.split('.')[0] in {HOST_ONLY!r} and sys.modules[m] is not None]\n"
            "    assert not leaked, leaked\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_build_lint_inspect_predict_profile_run_without_torch(tmp_path, lsnet_t_export):
    from PIL import Image
    from skimage import data as skdata

    src = lsnet_t_export.artifact.path
    img = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()).save(img)
    out = tmp_path / "lsnet_t.ort-cpu.onnx"
    p = run_without_host_packages("build", src, "--runtime", "ort", "-o", out, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["placement"]["CPUExecutionProvider"]["nodes"] > 100
    p = run_without_host_packages("lint", src, "--target", "trt", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["errors"] == 0
    p = run_without_host_packages("inspect", out, "--json")
    assert p.returncode == 0, p.stderr
    p = run_without_host_packages("predict", out, "--image", img, "--json", "--top", "3")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["top"]) == 3
    p = run_without_host_packages("profile", out, "--iters", 5, "--warmup", 1, "--energy", "none", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["runs"][0]["iterations"] == 5
    # and TensorRT's build, without tensorrt installed, names the extra (it never reaches for torch)
    p = run_without_host_packages("build", src, "--runtime", "trt", "--min-shape", "1x3x224x224",
                                  "--opt-shape", "1x3x224x224", "--max-shape", "1x3x224x224")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert_one_line_error(p, r"tensorrt is not installed.*edgevis\[tensorrt\]")


def test_simplify_cli_table_json_and_errors(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(foldable_float(), src)
    p = run("simplify", src)
    assert "onnxsim" in p.stdout and "Relu" in p.stdout and "identical outputs" in p.stdout
    p = run("simplify", src, "-o", tmp_path / "j.onnx", "--tool", "onnxslim", "--json")
    d = json.loads(p.stdout)
    assert d["tool"] == "onnxslim" and d["nodes_after"] < d["nodes_before"] and d["check"]["passed"]
    q = tmp_path / "q.onnx"
    onnx.save(twin_qdq_convs(), q)
    assert "protected: 4 QuantizeLinear/DequantizeLinear nodes" in run("simplify", q).stdout  # 1 Q + 3 DQ
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(src.read_bytes()[:40])
    assert_one_line_error(run("simplify", cut, check_ok=False), "not a readable ONNX|corrupt|truncated")
    assert_one_line_error(run("simplify", src, "--tool", "polygraphy", check_ok=False), "unknown --tool")


def test_lint_cli_exit_codes_and_table(tmp_path):
    ok, bad = tmp_path / "ok.onnx", tmp_path / "bad.onnx"
    onnx.save(twin_qdq_convs(), ok)
    onnx.save(twin_qdq_convs(zero_point=5), bad)
    p = run("lint", ok)
    assert "no findings for TensorRT 10" in p.stdout
    p = run("lint", bad, check_ok=False)
    assert p.returncode == 1 and "symmetric" in p.stdout and "x_q" in p.stdout
    p = run("lint", bad, "--json", check_ok=False)
    d = json.loads(p.stdout)
    assert p.returncode == 1 and d["errors"] >= 2 and d["findings"][0]["node"]
    p = run("lint", ok, "--target", "ort-cpu", check_ok=False)
    assert p.returncode == 0 and "uint8 activations" in p.stdout
    assert run("lint", ok, "--target", "ort-cpu", "--strict", check_ok=False).returncode == 1
    assert_one_line_error(run("lint", ok, "--trt-version", "8", check_ok=False), "10 or 11")


@pytest.mark.parametrize("args, pattern", [
    (["--runtime", "onnx"], "unknown --runtime"),
    (["--runtime", "ort", "--precision", "int8"], "--precision do.* not apply to --runtime ort"),
    (["--runtime", "trt", "--threads", "2"], "--threads do.* not apply to --runtime trt"),
    (["--runtime", "trt", "--min-shape", "1x3x224x224"], "go together"),
    (["--runtime", "trt", "--precision", "fp32", "--dla", "0"], "DLA runs FP16 and INT8 only"),
    (["--runtime", "ort", "--device", "npu"], "unknown --device"),
])
def test_build_option_errors(tmp_path, args, pattern):
    src = tmp_path / "m.onnx"
    onnx.save(foldable_float(), src)
    assert_one_line_error(run("build", src, *args, check_ok=False), pattern)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_build_ort_terminal_report(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(foldable_float(), src)
    p = run("build", src, "--runtime", "ort", "--threads", "1")
    assert "CPUExecutionProvider" in p.stdout and "session start" in p.stdout
    assert (tmp_path / "m.ort-cpu.onnx").is_file() and (tmp_path / "m.ort-cpu.onnx.json").is_file()
