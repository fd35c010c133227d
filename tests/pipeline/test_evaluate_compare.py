"""`edgevis evaluate` (accuracy on labelled images) and `edgevis compare` (where two files diverge),
on the digits-trained fixture: FP32, INT8 and integer-only files of one model."""

import json

import pytest
from clihelpers import assert_one_line_error, run

import edgevis
from edgevis.core.compare import wilson_interval
from edgevis.profile.accuracy import labelled_folder


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory, digits_lsnet, digits_folders):
    ckpt, size = digits_lsnet
    calib, held = digits_folders
    out = tmp_path_factory.mktemp("digits_files")
    r = edgevis.export("test_lsnet", weights=ckpt, output_dir=out, config=edgevis.ExportConfig(input_size=size),
                       int8=edgevis.Int8Config(calib_dir=calib, holdout_dir=held, calib_count=32, latency_search=False),
                       integer_only=edgevis.IntegerOnlyConfig(calib_dir=calib, holdout_dir=held, calib_count=32))
    return r.artifacts


def test_evaluate_gives_accuracy_with_intervals_for_each_precision(digits_files, digits_folders):
    _, held = digits_folders  # digits test split: class folders 0..9, sorted names are the class indices
    p = run("evaluate", digits_files["fp32"], digits_files["int8"], digits_files["integer_only"], "--val", held, "--json")
    d = json.loads(p.stdout)
    assert d["class_index"].startswith("sorted folder names (10 classes") and d["classes_with_images"] == 10
    fp32, int8, io = d["models"]
    assert fp32["images"] == int8["images"] == io["images"] == 359
    # a model trained to ~97 % on this split; quantization keeps it close
    assert fp32["top1"] >= 0.9 and int8["top1"] >= fp32["top1"] - 0.05 and io["top1"] >= fp32["top1"] - 0.05
    assert fp32["top5"] >= fp32["top1"] and "top1_agreement" not in fp32
    lo, hi = fp32["top1_ci95"]
    assert lo < fp32["top1"] < hi and hi - lo < 0.08
    assert int8["top1_agreement"]["reference"] == str(digits_files["fp32"]) and int8["top1_agreement"]["value"] >= 0.9
    table = run("evaluate", digits_files["fp32"], "--val", held).stdout
    assert "top-1" in table and "359 images" in table


def test_evaluate_class_index_from_classes_txt_and_bad_folders(tmp_path, digits_folders, digits_files):
    _, held = digits_folders
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("evaluate", digits_files["fp32"], "--val", tmp_path / "empty", check_ok=False),
                          "holds no class folders")
    assert_one_line_error(run("evaluate", digits_files["fp32"], "--val", tmp_path / "nope", check_ok=False),
                          "--val must be a folder")
    # classes.txt decides the index: reversed order makes every digit "wrong" except where it maps to itself
    val = tmp_path / "val"
    val.mkdir()
    for c in "01":
        (val / c).symlink_to(held / c, target_is_directory=True)
    (val / "classes.txt").write_text("1\n0\n")
    d = json.loads(run("evaluate", digits_files["fp32"], "--val", val, "--json").stdout)
    assert d["class_index"] == "classes.txt (2 classes)" and d["models"][0]["top1"] < 0.2
    (val / "classes.txt").write_text("0\n")
    assert_one_line_error(run("evaluate", digits_files["fp32"], "--val", val, check_ok=False),
                          "does not name the folder")


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)  # the textbook 0/10 case
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_compare_names_the_first_diverging_tensor(digits_files, digits_folders):
    _, held = digits_folders
    p = run("compare", digits_files["fp32"], digits_files["int8"], "--per-layer", "--json", check_ok=False)
    d = json.loads(p.stdout)
    first = d["per_layer"]["first_diverging"]
    assert p.returncode == 1 and not d["match"] and first and d["per_layer"]["tensors_compared"] > 10
    assert first[0]["cosine"] < 1.0 and first[0]["max_abs_diff"] > 0
    # with a tolerance INT8 meets at its outputs, the files match; the table names the output
    p = run("compare", digits_files["fp32"], digits_files["int8"], "--inputs", held / "3", "--random", 8,
            "--atol", 5, "--rtol", 1)
    assert "logits" in p.stdout and "yes" in p.stdout
    same = json.loads(run("compare", digits_files["fp32"], digits_files["fp32"], "--per-layer", "--json").stdout)
    assert same["match"] and same["per_layer"]["first_diverging"] == [] and same["outputs"][0]["cosine"] == 1.0


def test_labelled_folder_sorted_index(tmp_path):
    from PIL import Image

    for c in ("cat", "ant"):
        (tmp_path / c).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / c / "a.png")
    f = labelled_folder(tmp_path)
    assert f.classes == ("ant", "cat") and [label for _, label in f.files] == [0, 1]


def test_labelled_folder_imagenet_synsets_and_synset_mapping_file(tmp_path):
    from PIL import Image

    for c in ("n07920052", "n02123045"):  # espresso (967), tabby (281): a subset of ImageNet's 1000 folders
        (tmp_path / c).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / c / "a.png")
    f = labelled_folder(tmp_path)
    assert len(f.classes) == 1000 and sorted(label for _, label in f.files) == [281, 967]
    assert f.mapping.startswith("ImageNet synset folder names (2 of 1000 classes: n02123045 is index 281")
    # ImageNet's LOC_synset_mapping.txt as classes.txt: the folder is each line's first word
    (tmp_path / "classes.txt").write_text("n07920052 espresso\nn09999999 other, thing\nn02123045 tabby, tabby cat\n")
    f = labelled_folder(tmp_path)
    assert f.mapping == "classes.txt (first word of each line, 3 classes)"
    assert {p.parent.name: label for p, label in f.files} == {"n07920052": 0, "n02123045": 2}


def test_evaluate_warns_when_sorted_folders_are_fewer_than_the_classes(tmp_path, digits_folders, digits_files):
    _, held = digits_folders
    val = tmp_path / "val"
    val.mkdir()
    for c in "79":
        (val / c).symlink_to(held / c, target_is_directory=True)
    p = run("evaluate", digits_files["fp32"], "--val", val, "--json")
    d = json.loads(p.stdout)
    assert d["models"][0]["top1"] < 0.2  # 7 -> index 0, 9 -> index 1: the model's 7s and 9s are "wrong"
    assert any("the model has 10 classes but" in w and "sorted names (index 0 is '7')" in w for w in d["warnings"])
    (val / "classes.txt").write_text("7\n9\n")  # a classes.txt shorter than the model's classes: the same warning
    d = json.loads(run("evaluate", digits_files["fp32"], "--val", val, "--json").stdout)
    assert any("indexed by classes.txt (2 classes)" in w for w in d["warnings"])
    assert "warning:" in p.stderr and "synset" in p.stderr


def test_quantize_val_prints_accuracy_per_precision(tmp_path, digits_files, digits_folders):
    calib, held = digits_folders
    val = tmp_path / "val"  # two of the ten digits: sorted folder names make 7 class 0 and 9 class 1
    val.mkdir()
    for c in "79":
        (val / c).symlink_to(held / c, target_is_directory=True)
    n = sum(1 for c in "79" for _ in (held / c).iterdir())
    p = run("quantize", digits_files["fp32"], "--integer-only", "--calib", calib, "--holdout", held,
            "--calib-count", 16, "--val", val, "-o", tmp_path / "out")
    table = p.stdout.split("accuracy on ")[1]
    assert table.startswith(f"{val} ({n} images; class index: sorted folder names (2 classes")
    rows = {ln.split("│")[1].strip(): ln for ln in table.splitlines() if ln.startswith("│")}
    assert list(rows) == ["fp32", "integer-only"]  # spelled as every other table spells it
    assert "reference" in rows["fp32"] and "%" in rows["integer-only"]
    # evaluate's warning reaches the user of quantize too
    assert "warning:" in p.stderr and " ".join(p.stderr.split()).count("the model has 10 classes but") == 1  # once, not per file


def test_compare_with_an_engine_refuses_cleanly_without_tensorrt(tmp_path, digits_files):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: the GPU test below compares a real engine")
    except ImportError:
        pass
    for suffix in (".plan", ".trt"):  # every name trtexec and TensorRT's samples give an engine is read as one
        other = tmp_path / f"m{suffix}"
        other.write_bytes(b"not built here")
        assert_one_line_error(run("compare", digits_files["fp32"], other, check_ok=False), "tensorrt is not installed")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not built here")
    p = run("compare", digits_files["fp32"], engine, "--json", check_ok=False)
    assert_one_line_error(p, r"tensorrt is not installed.*edgevis\[tensorrt\]")
    assert json.loads(p.stdout)["kind"] == "MissingDependencyError"
    assert_one_line_error(run("compare", engine, digits_files["fp32"], check_ok=False), "ONNX file first")
    assert_one_line_error(run("compare", digits_files["fp32"], engine, "--per-layer", check_ok=False),
                          "--per-layer compares two ONNX files")


@pytest.mark.gpu
def test_compare_onnx_with_the_engine_built_from_it(tmp_path, digits_files, digits_folders):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU)")
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from edgevis.core.errors import EdgevisError
    from edgevis.runtimes.trt import TrtBuildConfig, engine_from_onnx, running_info

    try:
        running_info()
    except EdgevisError as e:
        pytest.skip(f"no usable GPU: {e}")
    _, held = digits_folders
    b = engine_from_onnx(digits_files["fp32"], tmp_path / "m.fp32.engine", TrtBuildConfig())
    d = json.loads(run("compare", digits_files["fp32"], b.path, "--inputs", held / "5", "--random", 6,
                       "--atol", 1e-2, "--rtol", 1e-2, "--json").stdout)
    assert d["runtimes"] == {"a": "onnxruntime-cpu", "b": "tensorrt"} and d["inputs"].startswith("6 images")
    assert d["match"] and d["outputs"][0]["cosine"] > 0.999 and d["outputs"][0]["top1_agreement"] == 1.0
