import numpy as np
import pytest
from PIL import Image

from edgevis.core.errors import ImageError
from edgevis.core.types import Preprocess
from edgevis.data import imagenet_classes, load_image, preprocess


def test_kinds_of_image_become_rgb(tmp_path):
    Image.new("L", (10, 8), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (10, 8), (255, 0, 0, 0)).save(tmp_path / "transparent.png")
    Image.fromarray(np.full((8, 10), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.new("RGB", (10, 8), (1, 2, 3)).save(tmp_path / "x.webp", lossless=True)
    Image.new("P", (10, 8), 3).save(tmp_path / "pal.bmp")
    assert np.asarray(load_image(tmp_path / "gray.png"))[0, 0].tolist() == [128, 128, 128]
    assert np.asarray(load_image(tmp_path / "transparent.png"))[0, 0].tolist() == [0, 0, 0]  # on black
    assert np.asarray(load_image(tmp_path / "deep.png"))[0, 0].tolist() == [255, 255, 255]  # 16-bit full range
    assert np.asarray(load_image(tmp_path / "x.webp"))[0, 0].tolist() == [1, 2, 3]
    assert load_image(tmp_path / "pal.bmp").mode == "RGB"


def test_bad_images_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:40])
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(ImageError, match="corrupt or truncated|not an image"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_preprocess_resizes_crops_center_and_normalizes():
    # 300x200 image: left/right thirds red, middle third green -> the crop of the
    # resized image (shorter side 256, crop 224 of width 384) shows only green
    a = np.zeros((200, 300, 3), dtype=np.uint8)
    a[:, :100] = (255, 0, 0)
    a[:, 100:200] = (0, 255, 0)
    a[:, 200:] = (255, 0, 0)
    spec = Preprocess((224, 224), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), interpolation="bilinear", crop_pct=0.875)
    x = preprocess(Image.fromarray(a), spec)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    # center of crop: green (0, 1, 0) normalized
    np.testing.assert_allclose(x[:, 112, 112], [(0 - 0.5) / 0.25, (1 - 0.5) / 0.5, (0 - 0.5) / 1.0], atol=1e-6)
    # 384-wide resized image, crop starts at 80: columns 0..47 of the crop are red (128 px per third)
    np.testing.assert_allclose(x[:, 112, 10], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.5, -0.5], atol=1e-6)


def test_imagenet_names():
    names = imagenet_classes()
    assert len(names) == 1000
    assert names[0] == "tench" and names[281] == "tabby" and names[967] == "espresso"
