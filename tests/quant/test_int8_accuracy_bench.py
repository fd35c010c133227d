"""Smoke run of ``benchmarks/int8_accuracy.py`` (the INT8 accuracy table per quantizer option) on the digits
fixture, so that the benchmark keeps running between the hand-run measurements (it once imported a helper a
memory change had renamed). The efficientnet_lite0 run is minutes per option; here its held-out set is only
built and counted."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "int8_accuracy.py"


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("int8_accuracy_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_digits_row_measures_the_whole_test_split(bench, digits_lsnet, tmp_path) -> None:
    ckpt, _ = digits_lsnet
    local = tmp_path / "digits.pth"
    shutil.copy(ckpt, local)
    out = tmp_path / "rows.json"
    rows = bench.main(["--work", str(tmp_path / "work"), "--models", "digits", "--combos", "default", "gptq",
                       "--calib-count", "16", "--json-out", str(out)], digits_checkpoint=local)
    assert out.is_file() and [(r["model"], r["combo"]) for r in rows] == [("digits", "default"), ("digits", "gptq")]
    for r in rows:
        assert r["views"] == r["photos"] == 359  # the digits test split, one view per image
        assert r["views_agree"] == r["photos_agree"] and r["views_agree"] >= 0.9 * 359
        lo, hi = r["views_ci95"]
        assert lo < r["views_agree"] / 359 <= hi
        assert r["config"]["calib_count"] == "16" and r["config"]["latency_search"] == "False"
    # the data-aware rounding ran on the real model's convs (and only where asked)
    assert "rounded_layers" not in rows[0]["rewrites"] and rows[1]["rewrites"]["rounded_layers"] > 3


def test_effnet_held_out_set_is_every_photo_calibration_does_not_use(bench) -> None:
    from edgevis.quant.calibration import builtin_sources

    held, photo_of, groups, names = bench.held_views(3, 1)
    calib_photos = {n.split("#")[0] for n, _ in builtin_sources()[0].loaders}
    assert not calib_photos & set(names) and "motorcycle_left" not in names  # the calibration's stereo twin
    assert groups.count("lfw") == 200 and len(names) >= 205
    big = [p for p, g in enumerate(groups) if g != "lfw"]
    assert len(held) == 3 * len(big) + 200 and list(np.bincount(photo_of)[big]) == [3] * len(big)
    whole = bench.held_photos()[0][2]
    assert held.loaders[0][1]().size == whole.size and held.loaders[1][1]().size != whole.size  # whole, then a crop


def test_per_photo_counts_only_each_photos_whole_view(bench) -> None:
    ref = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]  # photo 0: views 0-2, photo 1: views 3-4
    out = ref.copy()
    out[1] = np.eye(3)[2]  # a crop of photo 0 disagrees, its whole view agrees
    out[3] = np.eye(3)[1]  # photo 1's whole view disagrees
    r = bench.agreement(ref, out, np.array([0, 0, 0, 1, 1]), ["a", "b"])
    assert (r["views"], r["views_agree"], r["photos"], r["photos_agree"]) == (5, 3, 2, 1)
    assert r["photos_every_view_agrees"] == 0 and r["disagreeing_views"] == [1, 3]
    assert r["groups"] == {"a": {"views": 3, "views_agree": 2, "photos": 1, "photos_agree": 1},
                           "b": {"views": 2, "views_agree": 1, "photos": 1, "photos_agree": 0}}
