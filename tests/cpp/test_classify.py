"""examples/cpp/classify (sanitized build) against `edgevis predict` on ORT CPU: the same top-5 and
logits for the FP32 and INT8 files of a trained model and of efficientnet_lite0 with its ImageNet
weights, on real photos; one clear line for every kind of bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgevis.runtimes.predict import predict_image

ROOT = Path(__file__).resolve().parents[2]


def cpp_top5(build, model: Path, images: list[Path]) -> list[dict]:
    p = build.run(build.classify, "--json", model, *images)
    return [json.loads(line) for line in p.stdout.splitlines()]


def assert_same_as_predict(build, model: Path, images: list[Path]) -> None:
    for image, got in zip(images, cpp_top5(build, model, images), strict=True):
        want = predict_image(model, image, top=5)
        assert [t["index"] for t in got["top"]] == [t["index"] for t in want["top"]], image.name
        assert [t["name"] for t in got["top"]] == [t["name"] for t in want["top"]]
        np.testing.assert_allclose([t["logit"] for t in got["top"]], [t["logit"] for t in want["top"]], atol=1e-5, rtol=0)
        np.testing.assert_allclose([t["probability"] for t in got["top"]], [t["probability"] for t in want["top"]],
                                   atol=1e-6, rtol=0)
        assert got["model"] == want["model"]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_trained_digits_model_gives_predicts_numbers(cpp_build, digits_files, photos, precision):
    fp32, int8, digits = digits_files
    assert_same_as_predict(cpp_build, fp32 if precision == "fp32" else int8, [*digits, photos["rocket.jpg"]])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_efficientnet_lite0_imagenet_gives_predicts_top5(cpp_build, enet_files, photos, precision):
    fp32, int8 = enet_files
    images = [photos[n] for n in ("chelsea.png", "rocket.jpg", "coffee.png", "horse.png")]
    assert_same_as_predict(cpp_build, fp32 if precision == "fp32" else int8, images)
    if precision == "fp32":  # a trained ImageNet model names the cat (the test could fail on a broken pipeline)
        top = cpp_top5(cpp_build, fp32, [photos["chelsea.png"]])[0]["top"]
        assert {t["name"] for t in top[:3]} & {"tabby", "tiger cat", "Egyptian cat"}


def test_c_api_and_init_app_give_the_same_classes(cpp_build, enet_files, photos, tmp_path):
    from PIL import Image

    from edgevis.data.images import load_image

    _, int8 = enet_files
    img = load_image(photos["rocket.jpg"])
    raw = tmp_path / "rocket.raw"
    np.asarray(img).tofile(raw)
    want = predict_image(int8, photos["rocket.jpg"], top=5)["top"]
    lines = cpp_build.run(cpp_build.probe, "c-api", int8, raw, img.width, img.height).stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [t["index"] for t in want]
    np.testing.assert_allclose([float(line.split()[1]) for line in lines], [t["logit"] for t in want], atol=1e-5)
    ppm = tmp_path / "rocket.ppm"
    img.save(ppm)  # binary P6
    out = cpp_build.run(cpp_build.app, int8, ppm).stdout.splitlines()
    assert [int(line.split("\t")[0]) for line in out] == [t["index"] for t in want]
    assert [line.split("\t")[2] for line in out] == [t["name"] for t in want]
    # the app refuses a non-PPM with one line
    p = cpp_build.run(cpp_build.app, int8, photos["rocket.jpg"], check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "not a binary 8-bit PPM" in p.stderr
    del Image


def one_line_error(build, *args) -> str:
    p = build.run(build.classify, *args, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert p.stdout == ""
    return lines[0][len("error: "):]


def test_bad_input_gets_one_line_and_no_crash(cpp_build, digits_files, photos, tmp_path):
    from edgevis.runtimes.guard import check_sidecar_matches_file, ort_mismatch

    fp32, _, digits = digits_files
    img = digits[0]
    work = tmp_path / "m"
    work.mkdir()

    def copy(name: str) -> Path:
        dst = work / name
        shutil.copy(fp32, dst)
        shutil.copy(str(fp32) + ".json", str(dst) + ".json")
        return dst

    # a modified model file: its sidecar's sha256 no longer matches (Python's words)
    edited = copy("edited.onnx")
    data = bytearray(edited.read_bytes())
    data[len(data) // 2] ^= 0x01
    edited.write_bytes(bytes(data))
    why = check_sidecar_matches_file(json.loads(Path(str(edited) + ".json").read_text()), edited)
    assert one_line_error(cpp_build, edited, img) == f"{edited} cannot load here: {why}"
    # a tampered sidecar: another sha256, then JSON cut short
    tampered = copy("tampered.onnx")
    side = json.loads(Path(str(tampered) + ".json").read_text())
    Path(str(tampered) + ".json").write_text(json.dumps({**side, "sha256": "0" * 64}))
    assert "describes another file (sha256 differs)" in one_line_error(cpp_build, tampered, img)
    Path(str(tampered) + ".json").write_text(json.dumps(side)[:200])
    assert "is not valid JSON" in one_line_error(cpp_build, tampered, img)
    # an ORT-optimized file saved by another ONNX Runtime: the guard's words
    import onnxruntime

    opt = copy("opt.onnx")
    side = {**json.loads(Path(str(opt) + ".json").read_text()), "kind": "onnxruntime-optimized",
            "onnxruntime": "1.17.3", "providers": ["CPUExecutionProvider"], "source": "m.fp32.onnx"}
    Path(str(opt) + ".json").write_text(json.dumps(side))
    why = ort_mismatch(side, onnxruntime.__version__, ["CPUExecutionProvider"])
    assert one_line_error(cpp_build, opt, img) == f"{opt} cannot load here: {why}"
    # ... and one by this ONNX Runtime whose sidecar records no sha256: nothing vouches for it (the guard's words)
    bare_side = copy("nosha.onnx")
    side = {k: v for k, v in side.items() if k != "sha256"} | {"onnxruntime": onnxruntime.__version__}
    Path(str(bare_side) + ".json").write_text(json.dumps(side))
    assert ort_mismatch(side, onnxruntime.__version__, ["CPUExecutionProvider"]) is None
    why = check_sidecar_matches_file(side, bare_side)
    assert one_line_error(cpp_build, bare_side, img) == f"{bare_side} cannot load here: {why}"
    # missing files, a file that is not ONNX, an image that is not an image, a truncated JPEG
    assert "model file not found" in one_line_error(cpp_build, work / "nope.onnx", img)
    junk = work / "junk.onnx"
    junk.write_text("this is not a model\n")
    assert one_line_error(cpp_build, junk, img).startswith(f"ONNX Runtime cannot load {junk}")
    assert "image not found" in one_line_error(cpp_build, fp32, work / "nope.jpg")
    fake = work / "fake.jpg"
    fake.write_text("not an image")
    assert "is not an image of a supported kind" in one_line_error(cpp_build, fp32, fake)
    cut = work / "cut.jpg"
    cut.write_bytes(photos["rocket.jpg"].read_bytes()[:6000])
    assert "truncated" in one_line_error(cpp_build, fp32, cut)
    cut_png = work / "cut.png"
    cut_png.write_bytes(photos["coffee.png"].read_bytes()[:5000])
    assert "corrupt or truncated" in one_line_error(cpp_build, fp32, cut_png)
    assert "is a directory" in one_line_error(cpp_build, fp32, work)
    # an execution provider this onnxruntime lacks: runtimes/ort.py check_providers' words
    import onnxruntime as ort_mod

    if "CUDAExecutionProvider" not in ort_mod.get_available_providers():
        from edgevis.runtimes.ort import check_providers

        with pytest.raises(Exception) as e:
            check_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
        assert one_line_error(cpp_build, "--device", "cuda", fp32, img) == str(e.value)
    # a model without a preprocessing record
    bare = work / "bare.onnx"
    import onnx

    m = onnx.load(str(fp32))
    del m.metadata_props[:]
    onnx.save(m, str(bare))
    assert "carries no preprocessing record" in one_line_error(cpp_build, bare, img)


def test_images_over_the_pixel_limit_are_refused_as_load_image_refuses(cpp_build, digits_files, photos, monkeypatch):
    """EDGEVIS_MAX_IMAGE_PIXELS (default: Pillow's 89,478,485): the example refuses from the header, in
    load_image's words; a bad value of the variable is refused in max_image_pixels' words."""
    from edgevis.core.errors import ImageError
    from edgevis.data.images import PIXELS_ENV, load_image

    fp32, _, _ = digits_files
    for limit in ("100000", "5e4", "lots", "0"):
        monkeypatch.setenv(PIXELS_ENV, limit)
        for image in (photos["rocket.jpg"], photos["coffee.png"]):  # 427x640 and 600x400: over 1e5 pixels
            with pytest.raises(ImageError) as e:
                load_image(image)
            p = subprocess.run([str(cpp_build.classify), str(fp32), str(image)], capture_output=True, text=True,
                               env={**cpp_build.env, PIXELS_ENV: limit}, timeout=300)
            assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
            assert (p.returncode, p.stdout, p.stderr) == (1, "", f"error: {e.value}\n")
    # at the limit, it decodes
    monkeypatch.setenv(PIXELS_ENV, str(427 * 640))
    p = subprocess.run([str(cpp_build.classify), str(fp32), str(photos["rocket.jpg"])], capture_output=True, text=True,
                       env={**cpp_build.env, PIXELS_ENV: str(427 * 640)}, timeout=300)
    assert p.returncode == 0, p.stderr


def _readme_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## C++", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert blocks, "the README's C++ section has no bash block"
    return blocks[0]


def test_readme_commands_build_the_example_and_print_predicts_top5(enet_files, photos, tmp_path, cpp_build):
    """The README's C++ block, run as written (the build folder, model and photo swapped for test ones)."""
    _, int8 = enet_files
    block = _readme_block()
    commands = [c for c in block.splitlines() if c.strip() and not c.lstrip().startswith("#")]
    env = {**cpp_build.env, "EDGEVIS_ORT_SDK": str(cpp_build.sdk), "PATH": f"{Path(sys.executable).parent}:"
           + cpp_build.env.get("PATH", "")}
    env.pop("ASAN_OPTIONS"), env.pop("UBSAN_OPTIONS")
    build = tmp_path / "classify"
    out = ""
    for cmd in commands:
        cmd = (cmd.replace("build/classify", str(build))
               .replace("edgevis_out/efficientnet_lite0.int8.onnx", str(int8))
               .replace("photo.jpg", str(photos["rocket.jpg"])))
        p = subprocess.run(["bash", "-c", cmd.split(" #", 1)[0]], cwd=ROOT, capture_output=True, text=True, env=env)
        assert p.returncode == 0, (cmd, p.stdout[-3000:], p.stderr[-3000:])
        out = p.stdout
    # the last command prints the top-5 `edgevis predict` prints
    pred = subprocess.run([sys.executable, "-m", "edgevis", "predict", str(int8), "--image", str(photos["rocket.jpg"]),
                           "--json"], capture_output=True, text=True, env=env)
    want = json.loads(pred.stdout)["top"]
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [int(r[1]) for r in rows] == [t["index"] for t in want]
    np.testing.assert_allclose([float(r[-1]) for r in rows], [t["probability"] for t in want], atol=1e-4)


def test_a_bgr_nhwc_model_gives_predicts_numbers(cpp_build, digits_files, photos, tmp_path):
    """A model that takes BGR channels in NHWC layout (its record says so): the digits model behind a
    Transpose, with a mean that is not the same for every channel (a swapped order changes the logits)."""
    import onnx
    from onnx import TensorProto, helper

    fp32, _, digits = digits_files
    m = onnx.load(str(fp32))
    g = m.graph
    old = g.input[0]
    n, _, h, w = (d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim)
    nhwc = helper.make_tensor_value_info(old.name + "_nhwc", TensorProto.FLOAT, [n, h, w, 3])
    g.node.insert(0, helper.make_node("Transpose", [nhwc.name], [old.name], perm=[0, 3, 1, 2], name="nhwc_to_nchw"))
    g.input.remove(old)
    g.input.insert(0, nhwc)
    prop = next(p for p in m.metadata_props if p.key == "edgevis.preprocess")
    prop.value = json.dumps({**json.loads(prop.value), "channel_order": "BGR", "layout": "NHWC",
                             "mean": [0.1, 0.5, 0.9], "std": [0.2, 0.3, 0.4]})
    path = tmp_path / "bgr_nhwc.onnx"
    onnx.save(m, str(path))
    assert_same_as_predict(cpp_build, path, [digits[0], photos["rocket.jpg"], photos["coffee.png"]])
    # the record and the graph disagree: refused, as predict refuses it
    prop.value = json.dumps({**json.loads(prop.value), "layout": "NCHW"})
    onnx.save(m, str(path))
    assert "the record and the graph disagree" in one_line_error(cpp_build, path, photos["rocket.jpg"])


def test_scores_that_are_not_a_classifiers_are_refused_as_predict_refuses(cpp_build, digits_files, photos, tmp_path):
    """A first output of rank 4, and one that is not finite: one line each, predict's words."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgevis.runtimes.predict import predict_image

    fp32, _, _ = digits_files
    image = photos["rocket.jpg"]

    def wrapped(name: str, op: str) -> Path:
        m = onnx.load(str(fp32))
        g = m.graph
        out = g.output[0]
        raw = out.name + "_raw"
        for node in g.node:
            node.output[:] = [raw if o == out.name else o for o in node.output]
        if op == "rank4":
            g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "hw_axes"))
            g.node.append(helper.make_node("Unsqueeze", [raw, "hw_axes"], [out.name]))
            dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
            g.output.remove(out)
            g.output.insert(0, helper.make_tensor_value_info(out.name, TensorProto.FLOAT, [*dims, 1, 1]))
        else:  # x / 0: inf and nan
            g.initializer.append(numpy_helper.from_array(np.array(0, np.float32), "zero"))
            g.node.append(helper.make_node("Div", [raw, "zero"], [out.name]))
        path = tmp_path / name
        onnx.save(m, str(path))
        return path

    rank4 = wrapped("rank4.onnx", "rank4")
    with pytest.raises(Exception) as e:
        predict_image(rank4, image)
    assert "predict needs class scores of shape (batch, classes)" in str(e.value)
    assert one_line_error(cpp_build, rank4, image) == str(e.value)
    nan = wrapped("nan.onnx", "div0")
    with pytest.raises(Exception) as e:
        predict_image(nan, image)
    assert str(e.value).startswith("nan.onnx returned non-finite or non-numeric scores for ")
    assert one_line_error(cpp_build, nan, image).startswith("nan.onnx returned non-finite or non-numeric scores for ")


def test_a_fixed_batch_of_two_runs_one_image_as_predict_does(cpp_build, photos, tmp_path):
    """A file exported with a fixed batch of 2: the image fills the batch (OrtRunner.infer_batched pads)."""
    from edgevis.exporters.onnx import ExportConfig, export_onnx

    path = export_onnx("test_lsnet", tmp_path, config=ExportConfig(batch=2)).artifact.path
    assert_same_as_predict(cpp_build, path, [photos["rocket.jpg"]])
