"""One vocabulary: trt and tensorrt name the same thing in every command that takes either."""

import json

import pytest
from clihelpers import assert_one_line_error, run

from edgevis.core.names import as_lint_target, as_quant_target, as_runtime
from edgevis.profile.profiler import ProfileConfig
from edgevis.quant.targets import get_target


@pytest.mark.parametrize("spelling", ["trt", "tensorrt", "TensorRT", "TRT"])
def test_every_option_takes_both_spellings(spelling):
    assert as_runtime(spelling) == "trt" and as_lint_target(spelling) == "trt" and as_quant_target(spelling) == "tensorrt"
    assert get_target(spelling).name == "tensorrt"
    assert ProfileConfig(runtime=spelling).runtime == "trt"


def test_lint_and_build_accept_the_other_spelling(tmp_path, lsnet_t_export):
    src = lsnet_t_export.artifact.path
    a = json.loads(run("lint", src, "--target", "tensorrt", "--json").stdout)
    b = json.loads(run("lint", src, "--target", "trt", "--json").stdout)
    assert a["target"] == b["target"] == "trt" and a["findings"] == b["findings"]
    human = run("lint", src, "--target", "tensorrt").stdout
    assert "TensorRT" in human and "ONNX Runtime" not in human
    assert_one_line_error(run("lint", src, "--target", "openvino", check_ok=False), "unknown lint target")
    p = run("build", src, "--runtime", "tensorrt", "--min-shape", "1x3x224x224", "--opt-shape", "1x3x224x224",
            "--max-shape", "1x3x224x224", check_ok=False)
    try:
        import tensorrt  # noqa: F401
    except ImportError:  # no GPU stack here: the same refusal as --runtime trt, not "unknown runtime"
        assert_one_line_error(p, r"tensorrt is not installed")


def test_json_errors_are_json_on_stdout_beside_the_line(tmp_path):
    p = run("predict", tmp_path / "missing.onnx", "--image", tmp_path / "x.png", "--json", check_ok=False)
    assert_one_line_error(p, "ONNX file not found")
    d = json.loads(p.stdout)
    assert d == {"error": f"ONNX file not found: {tmp_path / 'missing.onnx'}", "kind": "OnnxFileError",
                 "exit_code": p.returncode}
    p = run("predict", tmp_path / "missing.onnx", "--image", tmp_path / "x.png", "--top", 0, "--json", check_ok=False)
    assert p.returncode == 2 and json.loads(p.stdout)["kind"] == "UsageError"
    p = run("predict", tmp_path / "missing.onnx", "--image", tmp_path / "x.png", check_ok=False)
    assert p.stdout == ""  # without --json, stdout stays empty


def test_every_option_with_a_fixed_set_of_values_lists_them_in_help():
    """--runtime, --device, --energy, --target ... show their choices in --help (typer printed <str>)."""
    import typer

    from edgevis.cli.app import app

    choice_options = {"--runtime", "--device", "--energy", "--target", "--calib-method", "--precision",
                      "--precision-hint", "--optimization", "--interpolation", "--channel-order", "--layout"}
    root = typer.main.get_command(app)
    seen = []

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")
        for p in getattr(cmd, "params", []):
            for opt in set(getattr(p, "opts", [])) & choice_options:
                seen.append((path, opt, p.metavar))

    walk(root, "edgevis")
    assert len(seen) > 20 and any(c == "edgevis sweep" for c, _, _ in seen)
    unlisted = [(c, o) for c, o, m in seen if not (m or "").startswith("[") or "|" not in m]
    assert unlisted == []
