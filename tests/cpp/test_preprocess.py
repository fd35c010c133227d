"""The C++ preprocessing gives the tensor edgevis.data.preprocess gives, from the same pixels:
Pillow's resize byte for byte (every filter, awkward sizes), the decoders' pixels as load_image's,
and the pieces the refusals rest on (sha256, the guard's words, the class names)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from edgevis.core.types import Preprocess
from edgevis.data.images import load_image
from edgevis.data.preprocess import preprocess

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS,
           "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}


def cpp_resize(build, tmp_path, a: np.ndarray, w: int, h: int, interp: str) -> np.ndarray:
    src, dst = tmp_path / "in.raw", tmp_path / "out.raw"
    np.ascontiguousarray(a, dtype=np.uint8).tofile(src)
    build.run(build.probe, "resize", src, a.shape[1], a.shape[0], w, h, interp, dst)
    return np.fromfile(dst, np.uint8).reshape(h, w, 3)


def cpp_preprocess(build, tmp_path, a: np.ndarray, spec: Preprocess, pad: int = 0) -> np.ndarray:
    """Through the C++ preprocess, with `pad` garbage bytes after each row (a stride wider than the row)."""
    h, w, _ = a.shape
    rows = np.concatenate([a.reshape(h, w * 3), np.full((h, pad), 0xAB, np.uint8)], axis=1) if pad else a
    src, dst = tmp_path / "in.raw", tmp_path / "x.raw"
    np.ascontiguousarray(rows, dtype=np.uint8).tofile(src)
    build.run(build.probe, "preprocess", src, w, h, w * 3 + pad, json.dumps(spec.to_dict()), dst)
    return np.fromfile(dst, np.float32).reshape(spec.image_shape())


def test_resize_is_pillows_byte_for_byte(cpp_build, photos, tmp_path):
    img = load_image(photos["chelsea.png"])  # 451 x 300
    a = np.asarray(img)
    # down, up, mixed (both pass orders), extreme aspect, 1-pixel results, identity
    sizes = [(224, 149), (256, 170), (37, 501), (1000, 13), (460, 100), (451, 40), (1, 1), (1, 300), (451, 300)]
    for interp, resample in FILTERS.items():
        for w, h in sizes:
            want = np.asarray(img.resize((w, h), resample))
            got = cpp_resize(cpp_build, tmp_path, a, w, h, interp)
            assert np.array_equal(got, want), (interp, w, h, int(np.abs(got.astype(int) - want).max()))


AWKWARD = {"1xN": (1, 300), "Nx1": (300, 1), "very tall": (20, 3000), "smaller than the crop": (17, 11),
           "odd": (333, 127), "square": (225, 225)}
SPECS = [Preprocess(),  # timm default: bicubic, 224, crop 0.875
         Preprocess(input_size=(64, 64), interpolation="bilinear", crop_pct=1.0),
         Preprocess(input_size=(96, 128), crop_pct=0.9, interpolation="lanczos"),  # non-square: both sides set
         Preprocess(input_size=(32, 32), crop_pct=1.3, interpolation="box"),  # crop past the border: zeros
         Preprocess(input_size=(40, 40), interpolation="nearest", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
         Preprocess(input_size=(48, 48), interpolation="hamming", crop_pct=0.95),
         # the channel order and layout the model takes (mean/std in its channel order)
         Preprocess(input_size=(40, 56), interpolation="bilinear", crop_pct=0.9, mean=(0.1, 0.5, 0.9),
                    std=(0.2, 0.3, 0.4), channel_order="BGR", layout="NHWC"),
         Preprocess(input_size=(48, 48), mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4), channel_order="BGR"),
         Preprocess(input_size=(32, 32), mean=(0.1, 0.5, 0.9), layout="NHWC")]


@pytest.mark.parametrize("shape", list(AWKWARD), ids=list(AWKWARD))
def test_preprocess_matches_python_on_awkward_sizes(cpp_build, photos, tmp_path, shape):
    w, h = AWKWARD[shape]
    img = load_image(photos["coffee.png"]).resize((w, h), Image.Resampling.BILINEAR)  # real photo content
    for spec in SPECS:
        want = preprocess(img, spec)
        got = cpp_preprocess(cpp_build, tmp_path, np.asarray(img), spec, pad=5)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-6, (shape, spec)


def test_preprocess_matches_python_on_real_photos(cpp_build, photos, tmp_path):
    for name, path in photos.items():
        img = load_image(path)
        for spec in (*SPECS[:3], SPECS[-3]):
            want = preprocess(img, spec)
            got = cpp_preprocess(cpp_build, tmp_path, np.asarray(img), spec)
            assert np.abs(got - want).max() <= 1e-6, (name, spec)


def _decoded(build, tmp_path, path) -> np.ndarray:
    out = tmp_path / "dec.raw"
    p = build.run(build.probe, "decode", path, out)
    w, h = map(int, p.stdout.split())
    return np.fromfile(out, np.uint8).reshape(h, w, 3)


def test_the_examples_decoder_gives_load_images_pixels(cpp_build, photos, tmp_path):
    """libjpeg-turbo and libpng at Pillow's settings, then to_rgb's conversions."""
    src = load_image(photos["chelsea.png"]).crop((100, 50, 277, 161))  # odd size
    gray = src.convert("L")
    made = {
        "gray.jpg": lambda p: gray.save(p, quality=90),
        "cmyk.jpg": lambda p: src.convert("CMYK").save(p, quality=90),
        "q75_420.jpg": lambda p: src.save(p, quality=75, subsampling=2),
        "q95_444.jpg": lambda p: src.save(p, quality=95, subsampling=0),
        "la.png": lambda p: Image.merge("LA", (gray, gray.point(lambda v: 255 - v))).save(p),
        "rgba.png": lambda p: Image.merge("RGBA", (*src.split(), gray)).save(p),
        "gray16.png": lambda p: Image.fromarray((np.asarray(gray, np.uint16) * 257 + 31).astype(np.uint16)).save(p),
        "palette_trns.png": lambda p: src.quantize(16).save(p, transparency=3),
        "palette.png": lambda p: src.quantize(7).save(p),
        "bilevel.png": lambda p: gray.convert("1").save(p),
    }
    for name, write in made.items():
        write(tmp_path / name)
    files = [*photos.values(), *(tmp_path / n for n in made)]
    for f in files:
        want = np.asarray(load_image(f))
        got = _decoded(cpp_build, tmp_path, f)
        assert got.shape == want.shape and np.array_equal(got, want), f.name


def test_sha256_and_class_names_are_pythons(cpp_build, photos):
    from edgevis.data.imagenet import imagenet_classes

    for f in (photos["rocket.jpg"], photos["camera.png"]):
        assert cpp_build.run(cpp_build.probe, "sha256", f).stdout.strip() == hashlib.sha256(f.read_bytes()).hexdigest()
    names = cpp_build.run(cpp_build.probe, "classes").stdout.splitlines()
    assert tuple(names) == imagenet_classes()


def test_refusals_are_worded_as_pythons_guard(cpp_build):
    """engine_mismatch and ort_mismatch of runtimes/guard.py, on the same dicts, in the same words."""
    from edgevis.runtimes.guard import engine_mismatch, ort_mismatch

    running = {"tensorrt": "10.16.0", "gpu": {"name": "NVIDIA H200", "compute_capability": "9.0"}, "dla_cores": 0}
    engines = [
        {"tensorrt": "10.3.0.26", "gpu": {"name": "Orin", "compute_capability": "8.7"}},  # other version
        {"tensorrt": "10.16.0.72", "gpu": {"name": "NVIDIA A100", "compute_capability": "8.0"}},  # other GPU
        {"tensorrt": "10.16.0.72", "gpu": {"compute_capability": "8.0"}},  # GPU without a name
        {"tensorrt": "10.16.0.72", "gpu": {"name": "NVIDIA H200", "compute_capability": "9.0"}, "dla_core": 1},
        {"tensorrt": "10.16.0.72", "gpu": {"name": "NVIDIA H200", "compute_capability": "9.0"}},  # fine
        {},
    ]
    for side in engines:
        want = engine_mismatch(side, running) or ""
        got = cpp_build.run(cpp_build.probe, "engine-mismatch", json.dumps(side), running["tensorrt"],
                            running["gpu"]["name"], running["gpu"]["compute_capability"],
                            running["dla_cores"]).stdout.rstrip("\n")
        assert got == want, side
    assert engine_mismatch(engines[0], running)  # the cases above do refuse
    orts = [
        ({"onnxruntime": "1.17.3", "source": "m.fp32.onnx", "providers": ["CPUExecutionProvider"]}, ["CPUExecutionProvider"]),
        ({"onnxruntime": "1.32.0", "providers": ["CUDAExecutionProvider"]}, ["CPUExecutionProvider"]),
        ({"onnxruntime": "1.32.0", "providers": ["CPUExecutionProvider"]}, ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    ]
    for side, providers in orts:
        want = ort_mismatch(side, "1.32.0", providers) or ""
        got = cpp_build.run(cpp_build.probe, "ort-mismatch", json.dumps(side), "1.32.0", ",".join(providers))
        assert got.stdout.rstrip("\n") == want, side
