"""OpenVINO target: compile, cache with a sidecar, refuse a foreign cache, read back the precision that ran.

Everything here is real OpenVINO on this CPU (the openvino extra); small hand-built graphs keep it to a
few seconds. Forging a sidecar field is how a cache from another OpenVINO version or CPU looks to edgevis:
the blob's own bytes are not what the guard reads."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgevis.core.errors import EdgevisError

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed: pip install 'edgevis[openvino]'")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))  # the CLI helpers run `edgevis` as users do
from clihelpers import assert_one_line_error, run  # noqa: E402
from handmade_graphs import small_convnet, twin_qdq_convs  # noqa: E402

from edgevis.runtimes import openvino as evov  # noqa: E402

QUICK = ("--warmup", 1, "--iters", 8, "--energy", "none", "--idle", 0.05)


def _cpu_has_bf16() -> bool:
    flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny classifier with the preprocessing record predict reads (32x32, no crop)."""
    from edgevis.core.onnxfile import META_PREPROCESS, set_metadata

    m = small_convnet(batch=1, size=32)
    set_metadata(m, {META_PREPROCESS: json.dumps({"input_size": [32, 32], "mean": [0.5] * 3, "std": [0.25] * 3,
                                                  "interpolation": "bilinear", "crop_pct": 1.0})})
    path = tmp_path_factory.mktemp("ov") / "convnet.onnx"
    onnx.save(m, path)
    return path


@pytest.fixture(scope="module")
def built(classifier):
    return evov.build_openvino(classifier, config=evov.OvConfig(precision="f32", threads=1))


def test_build_writes_blob_and_sidecar_that_describe_this_openvino_and_cpu(classifier, built):
    from edgevis.core.files import sha256_file

    side = json.loads(Path(str(built.path) + ".json").read_text())
    assert built.path.name == "convnet.openvino-f32.blob" and built.path.stat().st_size > 0
    assert side["kind"] == "openvino-compiled" and side["openvino"] == ov.get_version()
    assert side["source_sha256"] == sha256_file(classifier) and side["sha256"] == sha256_file(built.path)
    assert side["cpu"]["name"] and side["precision_hint"] == "f32"
    # the precision recorded is the compiled model's own, read here through OpenVINO directly
    c = ov.Core().compile_model(str(classifier), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert c.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert side["inference_precision"]["hint"] == "f32"
    assert side["precision"] == "f32" and side["check"]["passed"]
    assert not list(built.path.parent.glob(".*.tmp"))  # nothing half-written left beside it


def test_cache_loads_and_agrees_with_onnxruntime(classifier, built):
    """Loaded with the default ("auto") config, the f32 blob still runs in f32: on a CPU with AVX512-BF16 or AMX,
    import_model without the recorded hint ran it in bf16 (max|diff| 3e-3) while the sidecar said f32."""
    from edgevis.runtimes.ort import OrtRunner

    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with evov.OvRunner(built.path, evov.OvConfig(threads=1)) as r, OrtRunner(classifier) as o:
        got, ref = r.infer(x), o.infer_batched(x)
        assert r.precision["ran"] == "f32" and r.sidecar["openvino"] == ov.get_version()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("field, value, words", [
    ("openvino", "2023.0.0-0000-deadbeef", r"compiled with OpenVINO 2023\.0\.0.*rebuild it"),
    ("cpu", {"name": "Some Other CPU", "isa": ["avx2"]}, r"compiled on Some Other CPU.*specific to the CPU"),
    ("cpu", "ISA", r"compiled on .*amx_int8.*specific to the CPU"),
])
def test_a_cache_from_another_openvino_or_cpu_is_refused_in_one_line(built, tmp_path, field, value, words):
    import shutil

    blob = tmp_path / built.path.name
    shutil.copyfile(built.path, blob)
    side = json.loads(Path(str(built.path) + ".json").read_text())
    if value == "ISA":  # the same CPU name, another instruction set (a blob compiled with AMX kernels)
        value = {**side["cpu"], "isa": [*side["cpu"]["isa"], "amx_int8"]}
    side[field] = value
    Path(str(blob) + ".json").write_text(json.dumps(side))
    with pytest.raises(evov.CompiledMismatchError, match=words):
        evov.load_compiled(blob)
    if field == "openvino":  # the CLI's one line, once (a subprocess costs seconds)
        assert_one_line_error(run("profile", blob, *QUICK, check_ok=False), words)


def test_a_replaced_blob_or_a_missing_sidecar_is_refused(built, tmp_path):
    blob = tmp_path / built.path.name
    blob.write_bytes(built.path.read_bytes()[:-8] + b"\0" * 8)
    Path(str(blob) + ".json").write_text(Path(str(built.path) + ".json").read_text())
    with pytest.raises(evov.CompiledMismatchError, match="sha256 differs"):
        evov.load_compiled(blob)
    Path(str(blob) + ".json").unlink()
    with pytest.raises(evov.CompiledMismatchError, match="sidecar .* is missing"):
        evov.load_compiled(blob)


def test_bf16_hint_reads_back_what_this_cpu_ran(classifier, tmp_path):
    b = evov.build_openvino(classifier, tmp_path / "m.blob", evov.OvConfig(precision="bf16", threads=1))
    want = "bf16" if _cpu_has_bf16() else "f32"
    assert b.precision["hint"] == want and b.sidecar["precision"] == want
    assert bool(b.warnings) == (want == "f32")  # asked bf16, got f32: said so


def test_a_qdq_file_runs_in_int8_and_says_so(tmp_path):
    path = tmp_path / "qdq.onnx"
    onnx.save(twin_qdq_convs(), path)
    b = evov.build_openvino(path, config=evov.OvConfig(threads=1))
    assert b.precision["ran"] == "int8" and b.precision["int8_layers"] >= 1
    assert b.precision["label"].startswith("int8 (") and b.check["passed"]


def test_cli_build_profile_predict_print_the_precision_that_ran(classifier, tmp_path):
    from PIL import Image

    blob = tmp_path / "c.blob"
    p = run("build", classifier, "--runtime", "openvino", "--precision-hint", "f32", "--threads", 1, "-o", blob)
    assert "precision that runs: f32 (hint asked: f32)" in p.stdout and blob.is_file()
    r = json.loads(run("profile", blob, *QUICK, "--json").stdout)
    assert r["model"]["runtime"] == "openvino" and r["model"]["precision"] == "f32"
    assert r["model"]["inference_precision"]["hint"] == "f32"
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(img)
    p = run("predict", classifier, "--image", img, "--runtime", "openvino", "--precision-hint", "f32")
    assert "(OpenVINO CPU, f32)" in p.stdout
    ovr = json.loads(run("predict", classifier, "--image", img, "--runtime", "openvino", "--json").stdout)
    ortr = json.loads(run("predict", classifier, "--image", img, "--json").stdout)
    assert ovr["precision"]["ran"] in ("f32", "bf16") and ortr["precision"] is None
    assert [t["index"] for t in ovr["top"]] == [t["index"] for t in ortr["top"]]
    tol = 1e-4 if ovr["precision"]["ran"] == "f32" else 2e-2
    np.testing.assert_allclose([t["probability"] for t in ovr["top"]], [t["probability"] for t in ortr["top"]],
                               atol=tol)


def test_per_layer_on_openvino_names_each_layer_and_the_kernel_precision_it_ran(built, tmp_path):
    """``profile --per-layer`` on OpenVINO (PERF_COUNT, a compiled model of its own): the Q/DQ file's convs ran
    in int8 kernels, the f32 blob's in f32 ones, and the shares add up."""
    path = tmp_path / "qdq.onnx"
    onnx.save(twin_qdq_convs(), path)
    for model, want, never in ((path, "i8", ("bf16",)), (built.path, "f32", ("i8", "bf16"))):
        r = json.loads(run("profile", model, "--runtime", "openvino", "--threads", 1, "--per-layer",
                           "--per-layer-runs", 3, *QUICK, "--json").stdout)
        pl = r["runs"][0]["per_layer"]
        assert pl["source"] == "OpenVINO PERF_COUNT" and pl["runs"] == 3 and pl["total_ms"] > 0
        assert abs(sum(row["share"] for row in pl["by_op"]) - 1.0) < 1e-6
        convs = [row for row in pl["by_node"] if row["op"] == "Convolution"]
        assert len(convs) == 2, pl["by_node"]
        for row in convs:
            kernel = row["provider"].lower()
            assert want in kernel and not any(w in kernel for w in never), row


def test_cli_bad_input_is_one_error_line(classifier, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    assert_one_line_error(run("build", junk, "--runtime", "openvino", check_ok=False), r"junk\.onnx")
    assert_one_line_error(run("build", classifier, "--runtime", "openvino", "--precision-hint", "fp64",
                              check_ok=False), r"precision hint 'fp64'.*auto, f32, bf16")
    assert_one_line_error(run("build", classifier, "--runtime", "ort", "--precision-hint", "f32", check_ok=False),
                          r"--precision-hint does not apply to --runtime ort")
    assert not list(tmp_path.glob("*.blob*"))


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(EdgevisError, match=r"pip install 'edgevis\[openvino\]'"):
        evov.import_openvino()


def test_bench_on_openvino_quantizes_for_it_and_profiles_there():
    from edgevis.pipeline.benching import BenchConfig, _round_config
    from edgevis.profile.profiler import ProfileConfig

    c = BenchConfig(model="lsnet_t", profile=ProfileConfig(runtime="openvino", precision_hint="f32"))
    assert c.int8_target == "openvino"
    r = _round_config(c, 0)
    assert r.runtime == "openvino" and r.precision_hint == "f32"
    with pytest.raises(EdgevisError, match="integer-only"):
        BenchConfig(model="lsnet_t", precisions=("fp32", "integer-only"), profile=ProfileConfig(runtime="openvino"))
    with pytest.raises(EdgevisError, match="--precision-hint applies to --runtime openvino"):
        ProfileConfig(runtime="ort", precision_hint="bf16")


def test_quantize_for_openvino_reports_fidelity_measured_on_openvino(classifier, digits_folders, tmp_path):
    import shutil

    from edgevis.core.onnxfile import load_onnx
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    calib, held = digits_folders
    src = tmp_path / "convnet.fp32.onnx"
    shutil.copyfile(classifier, src)
    q = quantize_int8_file(src, Int8Config(target="openvino", calib_dir=calib, holdout_dir=held, calib_count=16,
                                           threads=1))
    assert q.settings["target"] == "openvino" and q.settings["activations"] == "uint8"
    on = q.fidelity["on_target"]
    assert on["runtime"] == "openvino" and on["openvino"] == ov.get_version()
    assert on["images"] == q.fidelity["images"] and on["precision"].startswith("int8 (")
    assert 0.0 <= on["top1_agreement"] <= 1.0 and -1.0 <= on["cosine_mean"] <= 1.0
    side = json.loads(Path(str(q.path) + ".json").read_text())
    assert side["fidelity"]["on_target"] == on
    # activations quantized as u8 (asymmetric: the format measured best on OpenVINO), not the symmetric s8
    m = load_onnx(q.path)
    inits = {i.name: i for i in m.graph.initializer}
    zp = {inits[n.input[2]].data_type for n in m.graph.node
          if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits}
    assert zp == {onnx.TensorProto.UINT8}
