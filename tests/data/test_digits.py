"""The bundled digits as images: splits, sizes, determinism, folders on disk."""

import numpy as np
import pytest

from edgevis.data import iter_image_files, load_image
from edgevis.data.digits import DIGIT_CLASSES, digits_images, split_indices, write_digits_folder


def test_images_are_rgb_at_the_requested_size():
    pairs = digits_images("test", size=48, limit=5)
    assert len(pairs) == 5
    for img, label in pairs:
        assert img.mode == "RGB" and img.size == (48, 48) and 0 <= label < 10
        a = np.asarray(img)
        assert a.dtype == np.uint8 and (a[..., 0] == a[..., 1]).all() and a.max() > 128
        # padded: the border is background, so a center crop never cuts a stroke off
        assert a[:2].max() < 40 and a[-2:].max() < 40


def test_split_is_stratified_disjoint_and_complete():
    train, test = split_indices("train"), split_indices("test")
    assert not set(train) & set(test) and len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.2 * 1797, abs=5)
    labels = np.asarray([label for _, label in digits_images("test", size=8)])
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    # classes interleave, so any prefix is balanced (a fair calibration subset)
    assert [label for _, label in digits_images("train", size=8, limit=20)] == list(range(10)) * 2
    with pytest.raises(ValueError, match="split"):
        split_indices("val")


def test_deterministic():
    a = [np.asarray(img) for img, _ in digits_images("train", size=32, limit=8)]
    b = [np.asarray(img) for img, _ in digits_images("train", size=32, limit=8)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_write_folder_per_class_pngs(tmp_path):
    root = write_digits_folder(tmp_path / "calib", "train", size=32, limit=25)
    files = list(iter_image_files(root))
    assert root == tmp_path / "calib" and len(files) == 25
    assert {f.parent.name for f in files} == set(DIGIT_CLASSES)
    assert not list(root.rglob("*.tmp"))
    expected = digits_images("train", size=32, limit=25)
    by_name = sorted(files, key=lambda f: int(f.stem.split("_")[1]))
    first = load_image(by_name[0])
    assert first.size == (32, 32) and first.mode == "RGB"
    # lossless: what is on disk is what digits_images returns
    on_disk = {int(f.stem.split("_")[1]): np.asarray(load_image(f)) for f in files}
    idx = split_indices("train")[:25]
    for i, (img, label) in zip(idx, expected):
        assert np.array_equal(on_disk[int(i)], np.asarray(img))
        assert (root / str(label) / f"train_{int(i):04d}.png").is_file()
