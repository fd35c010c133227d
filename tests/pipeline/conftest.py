import sys
from pathlib import Path

import pytest

# the CLI's subprocess runner and one-line-error check, shared with tests/cli
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))


@pytest.fixture(scope="session")
def digits_plain_onnx(tmp_path_factory, digits_lsnet):
    """The digits-trained test_lsnet exported by plain ``torch.onnx.export`` (no edgevis records): the kind
    of file a user brings. Returns (path, preprocessing of the model)."""
    import torch

    from edgevis.catalog import create_model, model_info

    ckpt, size = digits_lsnet
    model = create_model("test_lsnet", weights=ckpt, input_size=size, deploy=True)
    out = tmp_path_factory.mktemp("plain") / "digits_lsnet.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, *size),), str(out), dynamo=False, input_names=["pixels"],
                      output_names=["scores"], dynamic_axes={"pixels": {0: "n"}, "scores": {0: "n"}})
    info = model_info("test_lsnet")
    return out, info
