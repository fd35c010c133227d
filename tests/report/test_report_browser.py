"""Open report.html in headless Chromium and check, on the screenshot, that the plots are drawn.

A plot that failed to decode shows as a small broken-image icon; matplotlib's line and bar
colours (tab:blue, tab:orange) appear in quantity only where the PNGs were painted. The same
page with its <img> tags removed is the control.
"""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from reportdata import make_report

from edgevis.report import write_report

TAB_BLUE, TAB_ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _chromium()


def _screenshot(html, png, profile):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           "--force-device-scale-factor=1", f"--user-data-dir={profile}", "--window-size=1280,4000",
           f"--screenshot={png}", html.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert png.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-800:]}"
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _count(img, rgb, tol=12):
    return int((np.abs(img - np.array(rgb)).max(axis=2) <= tol).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (CI installs Debian's chromium)")
def test_report_html_renders_its_plots_in_chromium(tmp_path):
    paths = write_report(make_report(energy=True), tmp_path / "report")
    page = paths["html"].read_text(encoding="utf-8")
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", page), encoding="utf-8")
    assert "<img" not in bare.read_text(encoding="utf-8")

    shot = _screenshot(paths["html"], tmp_path / "report.png", tmp_path / "profile")
    control = _screenshot(bare, tmp_path / "bare.png", tmp_path / "profile")
    if out := os.environ.get("EDGEVIS_REPORT_SCREENSHOT"):
        shutil.copyfile(tmp_path / "report.png", out)

    assert shot.shape == (4000, 1280, 3)
    blue, orange = _count(shot, TAB_BLUE), _count(shot, TAB_ORANGE)
    blue0, orange0 = _count(control, TAB_BLUE), _count(control, TAB_ORANGE)
    # four plots: bars, scatter points and lines in both colours, thousands of pixels each
    assert blue > 5000 and orange > 5000, (blue, orange)
    assert blue > 20 * (blue0 + 10) and orange > 20 * (orange0 + 10), (blue, blue0, orange, orange0)
    # and the page is not one blank plot: the images span most of the page width somewhere
    cols = np.flatnonzero((np.abs(shot - np.array(TAB_BLUE)).max(axis=2) <= 12).any(axis=0))
    assert cols.max() - cols.min() > 600
