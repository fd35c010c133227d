"""Real photos that ship inside scikit-image, used when the user gives none.

They serve as the default parity-check and calibration inputs: real image
statistics, unlike random tensors. Calibrating on the deployment domain is
better; the CLI says so whenever these are used.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..core.errors import MissingDependencyError
from .images import to_rgb

# natural photos bundled in the scikit-image wheel (no download needed)
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "motorcycle_right.png", "horse.png", "camera.png", "coins.png", "moon.png",
          "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "page.png", "grass.png", "gravel.png", "brick.png")


def photo_dir() -> Path:
    try:
        import skimage
    except ImportError:
        raise MissingDependencyError("scikit-image is not installed (it provides the built-in sample photos); "
                                     "install it with: pip install scikit-image") from None
    return Path(skimage.__file__).parent / "data"


def builtin_photos(names: tuple[str, ...] = PHOTOS) -> list[tuple[str, Image.Image]]:
    """(name, RGB image) for every bundled photo that is present."""
    d = photo_dir()
    out = []
    for n in names:
        p = d / n
        if p.is_file():
            with Image.open(p) as img:
                img.load()
                out.append((p.stem, to_rgb(img)))
    return out
