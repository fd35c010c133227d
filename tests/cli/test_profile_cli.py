"""edgevis profile and edgevis bench as users run them: JSON, reports, tables, one-line errors."""

import json

import onnx
import pytest

from clihelpers import assert_one_line_error, run
from handmade_graphs import small_convnet

QUICK = ("--warmup", 1, "--iters", 8, "--energy", "none", "--idle", 0.05)


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("convnet_cli") / "convnet.onnx"
    onnx.save(small_convnet(), path)
    return path


def test_profile_json_is_one_object_with_every_section(convnet):
    p = run("profile", convnet, *QUICK, "--batch", "1,2", "--per-layer", "--per-layer-runs", 3, "--json")
    r = json.loads(p.stdout)
    assert r["schema"] == "edgevis.profile" and r["schema_version"] == 1 and r["report"] is None
    assert [run_["batch"] for run_ in r["runs"]] == [1, 2]
    for run_ in r["runs"]:
        assert run_["iterations"] == 8 and len(run_["samples_ms"]) == 8
        assert set(run_["latency_ms"]) >= {"min", "mean", "std", "p50", "p90", "p95", "p99", "max", "cv"}
        assert run_["energy"] == {"available": False, "reason": "disabled with --energy none"}
        assert run_["per_layer"]["runs"] == 3
    assert r["device"]["cpu"]["logical_cores"] >= 1 and r["settings"]["warmup"] == 1


def test_profile_table_and_report(convnet, tmp_path):
    rep = tmp_path / "rep"
    p = run("profile", convnet, *QUICK, "--per-layer", "--per-layer-runs", 3, "--report", rep)
    assert "latency (ms, warm-up excluded)" in p.stdout and "per-layer time, batch 1" in p.stdout
    assert "energy, batch 1: unavailable (disabled with --energy none)" in p.stdout
    assert f"report: {rep / 'report.html'}" in p.stdout
    report = json.loads((rep / "report.json").read_text())
    assert report["schema"] == "edgevis.report" and report["command"] == "profile"
    assert report["entries"][0]["profile"]["runs"][0]["iterations"] == 8
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2  # latency distribution and per-layer bars
    assert "disabled with --energy none" in (rep / "report.md").read_text()


def test_profile_errors_are_one_line(convnet, tmp_path):
    assert_one_line_error(run("profile", tmp_path / "nope.onnx", check_ok=False), "does not exist")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert_one_line_error(run("profile", bad, *QUICK, check_ok=False), "bad.onnx")
    assert_one_line_error(run("profile", convnet, "--iters", 5, "--duration", 1, check_ok=False), "exclude each other")
    assert_one_line_error(run("profile", convnet, "--energy", "battery", check_ok=False), "unknown energy meter")
    assert_one_line_error(run("profile", convnet, "--batch", "one", check_ok=False), "e.g. 1,8")
    fixed = tmp_path / "fixed.onnx"
    onnx.save(small_convnet(batch=1), fixed)
    assert_one_line_error(run("profile", fixed, *QUICK, "--batch", "1,8", check_ok=False), "fixed batch of 1")
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    assert_one_line_error(run("profile", convnet, *QUICK, "--report", not_dir, check_ok=False), "file")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)
    try:
        import tensorrt  # noqa: F401
    except ImportError:  # this machine: no GPU, so the TensorRT path stops at the missing package, named
        assert_one_line_error(run("profile", engine, *QUICK, check_ok=False), r"tensorrt is not installed.*edgevis\[tensorrt\]")
    assert_one_line_error(run("profile", engine, "--runtime", "ort", check_ok=False), "is a TensorRT engine")


def test_bench_trained_model_three_precisions_then_reuse(tmp_path, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, held = digits_folders
    args = ("bench", "--model", "test_lsnet", "--weights", ckpt, "--input-size", *size,
            "--precisions", "fp32,int8,integer-only", "--calib", calib, "--holdout", held,
            "--warmup", 1, "--iters", 8, "--rounds", 2, "--energy", "none", "-o", tmp_path / "out", "--json")
    first = json.loads(run(*args, "--report", tmp_path / "rep", "--val", held).stdout)
    assert first["schema"] == "edgevis.report" and first["baseline"] == "fp32"
    assert [e["label"] for e in first["entries"]] == ["fp32", "int8", "integer-only"]
    assert not any(e["reused"] for e in first["entries"])
    fp32, int8, io = first["entries"]
    assert fp32["fidelity"] is None
    # a trained model: quantized predictions agree with FP32 on the held-out digits
    assert int8["fidelity"]["top1_agreement"] >= 0.9 and io["fidelity"]["top1_agreement"] >= 0.95
    assert int8["fidelity"]["images"] == io["fidelity"]["images"] == 359
    for e in first["entries"]:
        prof = e["profile"]
        assert prof["settings"]["rounds"] == 2 and prof["runs"][0]["iterations"] == 8  # 2 rounds of 4
        assert prof["model"]["precision"] == e["precision"]
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "report.md").is_file()
    assert first["report_files"]["html"] == str(tmp_path / "rep" / "report.html")  # written by edgevis.bench
    # --val: accuracy on the labelled digits beside agreement, in the JSON and in the report's header and table
    assert fp32["accuracy"]["images"] == 359 and fp32["accuracy"]["top1"] >= 0.9
    assert int8["accuracy"]["top1"] >= fp32["accuracy"]["top1"] - 0.05
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Top-1 accuracy (95 % CI)" in md and "**Weights**: " in md and "**Input**: " in md
    assert "**Command line**: edgevis bench --model test_lsnet" in md
    # the second run makes nothing again: every file's sidecar matches
    second = json.loads(run(*args).stdout)
    assert all(e["reused"] for e in second["entries"])
    assert [e["fidelity"] for e in second["entries"]] == [e["fidelity"] for e in first["entries"]]


def test_bench_table_and_errors(tmp_path):
    assert_one_line_error(run("bench", "--model", "lsnet_t", "--precisions", "fp32,int9", check_ok=False),
                          "unknown precision 'int9'; did you mean int8")
    assert_one_line_error(run("bench", "--model", "lsnet_tt", check_ok=False), "lsnet_t")
    assert_one_line_error(run("bench", "--model", "lsnet_t", "--runtime", "trt", "--precisions", "integer-only",
                              check_ok=False), r"integer-only models are benched on ONNX Runtime only \(not --runtime trt\)")
    assert_one_line_error(run("bench", "--model", "lsnet_t", "--rounds", 0, check_ok=False), "--rounds must be >= 1")
    # an unwritable report folder is refused before any export starts
    (tmp_path / "file").write_text("")
    assert_one_line_error(run("bench", "--model", "lsnet_t", "-o", tmp_path / "out", "--report", tmp_path / "file",
                              check_ok=False), "cannot create output directory .*file: File exists")
    assert list((tmp_path / "out").iterdir()) == []
