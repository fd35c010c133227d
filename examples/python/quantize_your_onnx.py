"""Quantize an ONNX image classifier that edgevis did not write, with calibration arrays from Python.

    python examples/python/quantize_your_onnx.py their.onnx --input-size 224 224 \
        --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 --images DIR

The arrays are preprocessed here, by your own code (this is where a deployment's own
preprocessing goes); edgevis records the preprocessing you declare in the quantized files.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import edgevis


def my_preprocessing(path: Path, size: tuple[int, int], mean, std) -> np.ndarray:
    """One image as the model takes it: (3, H, W) float32 (a plain resize, as a deployment might do it)."""
    img = Image.open(path).convert("RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    a = (np.asarray(img, dtype=np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return a.transpose(2, 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("--input-size", type=int, nargs=2, required=True)
    ap.add_argument("--mean", type=float, nargs=3, required=True)
    ap.add_argument("--std", type=float, nargs=3, required=True)
    ap.add_argument("--images", required=True, help="a folder of calibration images")
    ap.add_argument("--out", default="edgevis_out")
    a = ap.parse_args()

    size = tuple(a.input_size)
    files = sorted(p for p in Path(a.images).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    # a list can be read more than once: INT8 calibrates on 4 of every 5 arrays and checks fidelity on the 5th
    arrays = [my_preprocessing(p, size, a.mean, a.std) for p in files[:100]]
    run = edgevis.quantize(a.onnx, int8=True, output_dir=a.out, calibration=arrays,
                           preprocess=edgevis.PreprocessOptions(input_size=size, mean=tuple(a.mean), std=tuple(a.std),
                                                                interpolation="bilinear", crop_pct=1.0))
    f = run.int8.fidelity
    print(f"wrote {run.int8.path}: top-1 agreement with FP32 {f['top1_agreement']:.1%} on {f['images']} arrays, "
          f"cosine {f['cosine_mean']:.4f}")
    lat = run.int8.settings["latency"]
    if lat:
        print(f"latency p50: FP32 {lat['fp32']['p50_ms']:.2f} ms, INT8 {lat['int8']['p50_ms']:.2f} ms")


if __name__ == "__main__":
    main()
