import copy
import io
import sys

import pytest
from PIL import Image
from reportdata import NO_ENERGY, make_entry, make_report

from edgevis.report import new_report
from edgevis.report.plots import accuracy_vs_latency, energy_vs_latency, latency_distribution, per_layer_bars

PLOTS = (latency_distribution, per_layer_bars, accuracy_vs_latency, energy_vs_latency)


@pytest.mark.parametrize("fn", PLOTS, ids=lambda f: f.__name__)
def test_each_plot_is_a_png_with_alt_text(fn):
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plot = fn(make_report(energy=True))
    assert plot.reason is None and plot.alt and plot.title
    im = Image.open(io.BytesIO(plot.png))
    assert im.format == "PNG" and im.size[0] >= 600 and im.size[1] >= 300
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules  # no global pyplot state


def test_no_energy_anywhere_gives_no_plot_and_the_reason():
    plot = energy_vs_latency(make_report(energy=False))
    # the sensor's explanation is the summary note's, said there once (issue 17): the plot points to it
    assert plot.png is None and NO_ENERGY not in plot.reason and "the note under the summary says why" in plot.reason


def test_energy_plot_names_entries_left_out():
    entries = [make_entry("fp32", seed=1, energy=True), make_entry("int8", seed=2, energy=False)]
    plot = energy_vs_latency(new_report("bench", "t", {}, entries, baseline="fp32"))
    assert plot.png is not None and "No energy measurement for int8" in plot.caption
    assert "fp32" in plot.alt and "int8" not in plot.alt


def test_per_layer_absent_everywhere():
    report = copy.deepcopy(make_report(energy=False))
    for e in report["entries"]:
        e["profile"]["runs"][0]["per_layer"] = None
    plot = per_layer_bars(report)
    assert plot.png is None and plot.reason == "no entry has a per-layer profile"
    partial = per_layer_bars(make_report(energy=False))
    assert partial.png is not None and "No per-layer profile for integer_only" in partial.caption


def test_accuracy_needs_a_fidelity_measurement():
    only_base = new_report("profile", "t", {}, [make_entry("fp32", seed=1, energy=False)], baseline="fp32")
    plot = accuracy_vs_latency(only_base)
    assert plot.png is None and "no entry has a fidelity measurement" in plot.reason


def test_latency_without_samples():
    report = copy.deepcopy(make_report(energy=False))
    for e in report["entries"]:
        e["profile"]["runs"][0]["samples_ms"] = []
    plot = latency_distribution(report)
    assert plot.png is None and "samples" in plot.reason


def test_far_outliers_are_named_not_hidden():
    report = copy.deepcopy(make_report(energy=False, labels=("fp32", "int8")))
    report["entries"][1]["profile"]["runs"][0]["samples_ms"][7] = 250.0
    plot = latency_distribution(report)
    assert plot.png is not None and "int8: 1 above" in plot.caption


def test_with_labelled_images_the_accuracy_plot_shows_accuracy_of_every_variant():
    from edgevis.report.render import render_markdown

    r = make_report(energy=False)
    assert "agreement" in accuracy_vs_latency(r).alt  # without --val: agreement with the baseline
    for i, e in enumerate(r["entries"]):
        e["accuracy"] = {"images": 359, "top1": 0.97 - 0.02 * i, "top1_ci95": [0.94 - 0.02 * i, 0.98 - 0.02 * i],
                         "top5": 0.99, "val": "digits/test", "class_index": "sorted folder names (10 classes)"}
    plot = accuracy_vs_latency(r)
    assert plot.png is not None and "top-1 accuracy" in plot.alt
    assert all(f"{label} " in plot.alt for label in ("fp32", "int8", "integer_only"))  # the baseline too
    assert "97.0 %" in plot.alt and "93.0 %" in plot.alt and "359 labelled images (digits/test" in plot.caption
    # and each variant's section gives its accuracy beside its agreement
    md = render_markdown(r)
    assert md.count("**Top-1 accuracy**: ") == 3 and "- **Top-1 accuracy**: 95.0 % (95 % CI 92.0 %–96.0 %)" in md
