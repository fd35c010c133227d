"""Images in, tensors out: loading, preprocessing, class names, bundled photos.

Torch-free on purpose: this is what ``edgevis predict`` and calibration use on
the device, where only numpy, Pillow and onnxruntime may exist.
"""

from .images import IMAGE_SUFFIXES, iter_image_files, load_image
from .imagenet import imagenet_classes
from .preprocess import preprocess, preprocess_file

__all__ = ["IMAGE_SUFFIXES", "iter_image_files", "load_image", "imagenet_classes", "preprocess", "preprocess_file"]
