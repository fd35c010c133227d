"""Reading images of every common kind into 8-bit RGB."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS default
PIXELS_ENV = "EDGEVIS_MAX_IMAGE_PIXELS"


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


def max_image_pixels() -> int:
    """The largest image (width x height) edgevis decodes: ``EDGEVIS_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS` (Pillow's own default, about 89 megapixels: a decoded RGB copy of ~256 MiB).
    Larger files are refused before they are decoded, so a small file that unpacks into gigabytes (a
    "decompression bomb") costs nothing."""
    raw = os.environ.get(PIXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise ImageError(f"{PIXELS_ENV}={raw!r} is not a number of pixels") from None
    if value < 1:
        raise ImageError(f"{PIXELS_ENV} must be >= 1 (got {raw})")
    return value


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` as an 8-bit RGB image or raise :class:`ImageError` naming why (missing, not an image,
    corrupt, or over ``max_pixels``, default :func:`max_image_pixels`)."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image")
    limit = max_pixels if max_pixels is not None else max_image_pixels()
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check stays on as a second guard (it warns above its limit and errors at twice
            # it); ours, on the header's size before anything is decoded, is exact and names the size
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow refuses at twice its MAX_IMAGE_PIXELS before the size can be read: keep it beyond ours
            Image.MAX_IMAGE_PIXELS = max(limit, 2**30)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > limit:
                    raise ImageError(_too_large(p, w, h, limit))
                img.load()
                return to_rgb(img)
    except Image.DecompressionBombError:
        raise ImageError(_too_large(p, None, None, limit)) from None
    except UnidentifiedImageError:
        raise ImageError(f"{p} is not an image of a supported kind (jpg, png, bmp, webp, ...)") from None
    except MemoryError:
        raise ImageError(f"cannot decode image {p}: out of memory") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, TypeError) as e:
        # Pillow's decoders raise these (and more) for corrupt or truncated files
        raise ImageError(f"cannot read image {p} (corrupt or truncated): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _too_large(p: Path, w: int | None, h: int | None, limit: int) -> str:
    size = f"{w}x{h} = {w * h:,} pixels" if w and h else "larger than the limit"
    return (f"image {p} is {size}, over the limit of {limit:,} pixels (a guard against decompression bombs); "
            f"set {PIXELS_ENV} to allow larger images")


def iter_image_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Image files under ``root`` (recursive, sorted, by suffix)."""
    r = Path(root)
    for dirpath, dirnames, filenames in os.walk(r):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_SUFFIXES):
                yield Path(dirpath) / name
