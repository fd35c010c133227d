"""Images over the pixel limit are refused before they are decoded, in one line, and the limit can be raised."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgevis.core.errors import ImageError
from edgevis.data.images import DEFAULT_MAX_PIXELS, load_image


def test_a_decompression_bomb_is_one_clear_error(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb)  # 400 megapixels in a few hundred KB
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match=r"20000x20000 = 400,000,000 pixels, over the limit of 89,478,485") as e:
        load_image(bomb)
    assert "EDGEVIS_MAX_IMAGE_PIXELS" in str(e.value) and DEFAULT_MAX_PIXELS == 89_478_485


def test_the_limit_is_configurable(tmp_path, monkeypatch):
    f = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(f)
    assert load_image(f).size == (50, 40)
    monkeypatch.setenv("EDGEVIS_MAX_IMAGE_PIXELS", "1999")
    with pytest.raises(ImageError, match="50x40 = 2,000 pixels, over the limit of 1,999"):
        load_image(f)
    monkeypatch.setenv("EDGEVIS_MAX_IMAGE_PIXELS", "2000")
    assert load_image(f).size == (50, 40)
    assert load_image(f, max_pixels=2000).mode == "RGB"
    monkeypatch.setenv("EDGEVIS_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ImageError, match="is not a number of pixels"):
        load_image(f)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=300), cut=st.integers(0, 400))
def test_corrupt_image_bytes_are_an_image_error_or_an_image(tmp_path_factory, data, cut):
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((6, 7, 3), 9, np.uint8)).save(buf, format="PNG")
    f = tmp_path_factory.mktemp("img") / "x.png"
    f.write_bytes(buf.getvalue()[:cut] + data)
    try:
        img = load_image(f)
    except ImageError as e:
        assert "\n" not in str(e)
    else:
        assert img.mode == "RGB"
