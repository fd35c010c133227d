"""scikit-learn's bundled handwritten digits as RGB images: a real, offline data set.

Random-weight models give near-constant logits, so INT8 fidelity measured on them
means little. The 1797 8x8 digits (10 classes) ship inside the scikit-learn wheel,
so small models can be trained on them in seconds with no download, and the same
images serve as calibration and held-out sets.

Torch-free like the rest of ``edgevis.data``; scikit-learn is imported on first use.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import MissingDependencyError
from ..core.files import atomic_output, ensure_writable_dir

DIGIT_CLASSES = [str(i) for i in range(10)]
SPLITS = ("train", "test")
TEST_FRACTION = 0.2
SPLIT_SEED = 0
# zero pixels added around the 8x8 digit before upsampling: many digits touch the
# border, and models whose crop_pct < 1 would otherwise cut strokes off
PAD = 1


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) uint8 0..255, labels (1797,) int64), read-only."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError("scikit-learn is not installed (it ships the digits data set); "
                                     "install it with: pip install 'edgevis[dev]' or pip install scikit-learn") from None
    d = load_digits()
    # the data set stores 0..16 ink levels
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    labels = d.target.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=len(SPLITS))
def split_indices(split: str) -> np.ndarray:
    """Indices into the data set for ``split``: a stratified 80/20 train/test split.

    Fixed seed, so every process and machine sees the same split. The order
    interleaves the classes (0, 1, ..., 9, 0, 1, ...), so any prefix of a split
    is class-balanced: ``limit`` picks a fair calibration subset.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    _, labels = _load()
    rng = np.random.default_rng(SPLIT_SEED)
    chosen: list[tuple[int, int, int]] = []  # (rank within class, class, index)
    for c in range(len(DIGIT_CLASSES)):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * TEST_FRACTION))
        part = idx[:n_test] if split == "test" else idx[n_test:]
        chosen.extend((rank, c, int(i)) for rank, i in enumerate(part))
    chosen.sort()
    out = np.asarray([i for _, _, i in chosen], dtype=np.int64)
    out.flags.writeable = False
    return out


def digit_image(pixels: np.ndarray, size: int = 64) -> Image.Image:
    """One 8x8 uint8 digit as a ``size`` x ``size`` RGB image (white ink on black)."""
    padded = np.pad(np.asarray(pixels, dtype=np.uint8), PAD)
    img = Image.fromarray(padded).resize((size, size), Image.Resampling.BICUBIC)
    return img.convert("RGB")


def digits_images(split: str, size: int = 64, limit: int | None = None) -> list[tuple[Image.Image, int]]:
    """(RGB image, label) pairs of ``split`` ("train" or "test"), deterministic order."""
    if size < 8:
        raise ValueError(f"size must be >= 8 (got {size})")
    images, labels = _load()
    idx = split_indices(split)
    if limit is not None:
        idx = idx[: max(0, limit)]
    return [(digit_image(images[i], size), int(labels[i])) for i in idx]


def write_digits_folder(
    directory: str | os.PathLike[str], split: str, size: int = 64, limit: int | None = None
) -> Path:
    """Write ``split`` as PNGs under ``directory/<class>/<split>_<index>.png``; returns ``directory``.

    Each file is written atomically, so an interrupted run leaves only whole images.
    """
    root = ensure_writable_dir(directory)
    images, labels = _load()
    idx = split_indices(split)
    if limit is not None:
        idx = idx[: max(0, limit)]
    for i in idx:
        target = root / DIGIT_CLASSES[int(labels[i])] / f"{split}_{int(i):04d}.png"
        with atomic_output(target) as tmp:
            digit_image(images[i], size).save(tmp, format="PNG")
    return root


def main(argv: list[str] | None = None) -> int:
    """``python -m edgevis.data.digits --out DIR``: DIR/train and DIR/test as PNG folders
    (calibration and held-out images for ``edgevis export --int8 --calib --holdout``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m edgevis.data.digits", description=main.__doc__)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--train-limit", type=int, default=None, help="at most this many train images")
    args = p.parse_args(argv)
    for split in SPLITS:
        d = write_digits_folder(args.out / split, split, size=args.size,
                                limit=args.train_limit if split == "train" else None)
        print(f"wrote {sum(1 for _ in d.rglob('*.png'))} {split} images to {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
