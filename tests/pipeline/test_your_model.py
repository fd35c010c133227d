"""Your own torch model through the pipeline: a factory file on the CLI, an nn.Module in Python, timm where it exists."""

import json
import textwrap

import numpy as np
import pytest
import torch
from clihelpers import assert_one_line_error, run

import edgevis
from edgevis.core.errors import EdgevisError
from edgevis.runtimes.ort import OrtRunner

FACTORY = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 7)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.c(x))).mean((2, 3)))

    def fuse(self):  # a user's own method of this name must not be called by edgevis
        raise RuntimeError("fuse called")

def make():
    torch.manual_seed(0)
    return Net()

class MaxNet(Net):
    def forward(self, x):  # a global max pool: ReduceMax, which integer-only has no rule for
        return self.fc(torch.relu(self.bn(self.c(x))).amax((2, 3)))

def make_maxpool():
    torch.manual_seed(0)
    return MaxNet()

def not_a_module():
    return 42

def broken():
    raise ValueError("no such weights")

VALUE = 3
'''


@pytest.fixture()
def factory_file(tmp_path):
    f = tmp_path / "mynet.py"
    f.write_text(textwrap.dedent(FACTORY))
    return f


def test_cli_exports_a_factory_model_and_proves_it(factory_file, tmp_path):
    out = tmp_path / "out"
    d = json.loads(run("export", "--model", f"{factory_file}:make", "--input-size", 32, 40, "--mean", 0.5, 0.5, 0.5,
                       "--std", 0.25, 0.25, 0.25, "-o", out, "--json").stdout)
    path = out / "make.fp32.onnx"
    assert d["artifacts"] == {"fp32": str(path)} and d["checks"]["fp32_parity"]["passed"]
    assert d["weights"]["source"] == f"factory:{factory_file}:make" and len(d["weights"]["sha256"]) == 64
    side = json.loads((out / "make.fp32.onnx.json").read_text())
    assert side["preprocess"]["input_size"] == [32, 40] and side["preprocess"]["mean"] == [0.5, 0.5, 0.5]
    assert side["output"]["num_classes"] == 7 and side["family"] == "factory"
    # the file computes what the module computes (train-mode BatchNorm stats were never used: eval)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mynet_check", factory_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.make().eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 40)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    with OrtRunner(path) as r:
        np.testing.assert_allclose(r.infer_batched(x), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("spec,pattern", [
    ("missing.py:make", "model factory file not found"),
    ("{f}:nope", "has no function 'nope'"),
    ("{f}:VALUE", "VALUE is not callable"),
    ("{f}:not_a_module", r"returned a int, not a torch.nn.Module"),
    ("{f}:broken", r"raised ValueError: no such weights"),
])
def test_bad_factories_are_one_line_and_write_nothing(factory_file, tmp_path, spec, pattern):
    out = tmp_path / "out"
    p = run("export", "--model", spec.format(f=factory_file), "--input-size", 32, 32, "-o", out, check_ok=False)
    assert_one_line_error(p, pattern)
    assert not out.exists() or not list(out.iterdir())


def test_factory_needs_an_input_size_and_catalog_models_refuse_foreign_preprocessing(factory_file, tmp_path):
    assert_one_line_error(run("export", "--model", f"{factory_file}:make", "-o", tmp_path, check_ok=False),
                          "give its input size")
    assert_one_line_error(run("export", "--model", "lsnet_t", "--mean", 0, 0, 0, "-o", tmp_path, check_ok=False),
                          "catalog model: its preprocessing is the catalog's")
    # the forms a user tries first: an ONNX file, a factory file without its function
    assert_one_line_error(run("export", "--model", tmp_path / "theirs.onnx", "-o", tmp_path, check_ok=False),
                          r"is an ONNX file; .*`edgevis quantize .*theirs\.onnx --int8`")
    assert_one_line_error(run("export", "--model", factory_file, "-o", tmp_path, check_ok=False),
                          r"names no factory: .*mynet\.py:make_model")


class TwoHeads(torch.nn.Module):
    def forward(self, x):
        return x.mean((2, 3)), x.amax((2, 3))


def test_python_module_export_and_int8(tmp_path, digits_folders):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, 2, 1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))
    calib, held = digits_folders
    steps = []
    run_ = edgevis.export(net, name="seq", output_dir=tmp_path, preprocess=edgevis.PreprocessOptions(input_size=(64, 64)),
                          int8=edgevis.Int8Config(calib_dir=calib, holdout_dir=held, calib_count=16, latency_search=False),
                          on_step=lambda step, result: steps.append((step, result)))
    # each step is announced as it finishes, and the warning about the defaults comes before the results
    assert [s for s, _ in steps if s != "warning"] == ["export", "int8"]
    said = [r for s, r in steps if s == "warning"]
    assert said == run_.warnings and [s for s, _ in steps].index("warning") == 0
    d = run_.to_dict()
    assert set(d["artifacts"]) == {"fp32", "int8"} and d["fidelity"]["int8"]["images"] == 359
    assert d["weights"]["source"] == "module:Sequential"
    # the caller's module comes back as it was given: in train mode, with no edgevis attributes left on it
    assert net.training and not [k for k in vars(net) if k.startswith("edgevis")]
    # the defaults are said, and recorded
    assert any("no --mean/--std given" in w for w in run_.warnings)
    assert json.loads((tmp_path / "seq.fp32.onnx.json").read_text())["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    with pytest.raises(EdgevisError, match=r"returns a tuple"):
        edgevis.export(TwoHeads(), output_dir=tmp_path / "two", preprocess=edgevis.PreprocessOptions(input_size=(32, 32)))
    with pytest.raises(EdgevisError, match="--emit-c writes the integer-only model as C"):
        edgevis.export(net, emit_c=tmp_path / "c", preprocess=edgevis.PreprocessOptions(input_size=(64, 64)))


def test_timm_models_where_timm_imports(tmp_path):
    timm = pytest.importorskip("timm", reason="timm needs a torchvision matching torch; not installed beside the "
                                              "CPU torch pin (it is an optional extra, never a dependency)")
    run_ = edgevis.export("timm:resnet10t", output_dir=tmp_path, config=edgevis.ExportConfig(input_size=(64, 64)))
    cfg = timm.create_model("resnet10t").pretrained_cfg
    side = json.loads(run_.fp32.artifact.sidecar.read_text())
    assert side["preprocess"]["mean"] == list(cfg["mean"]) and side["family"] == "timm"


def test_a_folder_of_unreadable_calibration_images_is_refused_before_the_export(factory_file, tmp_path):
    bad = tmp_path / "calib"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    p = run("export", "--model", f"{factory_file}:make", "--input-size", 32, 32, "--int8", "--calib", bad,
            "--no-latency-search", "-o", out, check_ok=False)
    assert_one_line_error(p, r"no readable calibration image in .*calib \(e\.g\. .*0\.png is not an image")
    assert not out.exists()  # nothing exported first, only to be thrown away


def test_a_failed_quantize_step_says_what_was_written(factory_file, tmp_path):
    # INT8 lands, then the integer-only step fails (no rule for ReduceMax): the line lists each file once
    out = tmp_path / "out"
    p = run("export", "--model", f"{factory_file}:make_maxpool", "--input-size", 32, 32, "--int8", "--integer-only",
            "--calib-count", 8, "--no-latency-search", "-o", out, check_ok=False)
    assert_one_line_error(p, r"no integer-only rule for ReduceMax.*\(written and complete: make_maxpool\.fp32\.onnx, "
                             r"make_maxpool\.fp32\.onnx\.json, make_maxpool\.int8\.onnx, make_maxpool\.int8\.onnx\.json; "
                             r"not written: make_maxpool\.integer_only\.onnx\)")
    assert sorted(q.name for q in out.iterdir()) == ["make_maxpool.fp32.onnx", "make_maxpool.fp32.onnx.json",
                                                     "make_maxpool.int8.onnx", "make_maxpool.int8.onnx.json"]


def test_an_output_name_a_folder_holds_is_refused_before_the_export(factory_file, tmp_path):
    out = tmp_path / "out"
    (out / "make.int8.onnx").mkdir(parents=True)  # the INT8 file could never land: os.replace gave a traceback
    p = run("export", "--model", f"{factory_file}:make", "--input-size", 32, 32, "--int8", "-o", out, check_ok=False)
    assert_one_line_error(p, r"cannot write .*make\.int8\.onnx: a folder of that name is in the way")
    assert sorted(q.name for q in out.iterdir()) == ["make.int8.onnx"]  # nothing exported first
