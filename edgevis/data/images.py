"""Reading images of every common kind into 8-bit RGB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from grayscale, palette, RGBA/LA (on black), CMYK or 16-bit images."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit single channel: scale the full range to 8 bits (PIL's convert("L") clips)
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(a, mode="L")
    elif img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo) * 255.0
        img = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open ``path`` as an 8-bit RGB image or raise :class:`ImageError` naming why."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image")
    try:
        with Image.open(p) as img:
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{p} is not an image of a supported kind (jpg, png, bmp, webp, ...)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image {p} (corrupt or truncated): {e}") from None


def iter_image_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Image files under ``root`` (recursive, sorted, by suffix)."""
    r = Path(root)
    for dirpath, dirnames, filenames in os.walk(r):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_SUFFIXES):
                yield Path(dirpath) / name
