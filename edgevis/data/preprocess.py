"""The timm evaluation transform in numpy + Pillow.

Resize so that the crop is ``crop_pct`` of the resized image (shorter side to
``floor(size / crop_pct)`` for a square input), center-crop, scale to [0, 1],
normalize with the model's mean/std, HWC -> CHW. This matches
``timm.data.create_transform(..., is_training=False)`` on PIL images, so that a
model sees at deploy time what it saw at evaluation time.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from ..core.errors import PreprocessError
from ..core.types import Preprocess
from .images import load_image

MAX_RESIZED_SIDE = 16384  # the resize before the crop: larger would need gigabytes for one image
_INTERP = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def _resize_shorter(img: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    return img.resize((nw, nh), resample)


def preprocess(img: Image.Image, spec: Preprocess) -> np.ndarray:
    """One RGB image as the model takes it: (3, H, W) float32, or (H, W, 3) for an NHWC model
    (``spec.layout``), channels in ``spec.channel_order``."""
    if spec.interpolation not in _INTERP:
        raise PreprocessError(f"unknown interpolation {spec.interpolation!r}; known: {', '.join(_INTERP)}")
    resample = _INTERP[spec.interpolation]
    th, tw = spec.input_size
    if min(th, tw) < 1 or math.floor(max(th, tw) / spec.crop_pct) > MAX_RESIZED_SIDE:
        raise PreprocessError(f"input size {th}x{tw} with crop_pct {spec.crop_pct} resizes images to more than "
                              f"{MAX_RESIZED_SIDE} pixels a side")
    if th == tw:
        img = _resize_shorter(img, math.floor(th / spec.crop_pct), resample)
    else:
        img = img.resize((math.floor(tw / spec.crop_pct), math.floor(th / spec.crop_pct)), resample)
    w, h = img.size
    # torchvision's center_crop rounding
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    img = img.crop((left, top, left + tw, top + th))
    a = np.asarray(img, dtype=np.float32) / 255.0
    if spec.channel_order == "BGR":
        a = a[:, :, ::-1]
    a = (a - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    if spec.layout == "NHWC":
        return np.ascontiguousarray(a, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)


def preprocess_file(path: str | os.PathLike[str], spec: Preprocess) -> np.ndarray:
    return preprocess(load_image(path), spec)
