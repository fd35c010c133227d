"""Training catalog models on the bundled digits: accuracy, checkpoints, determinism."""

import numpy as np
import pytest
import torch

from edgevis.catalog import create_model, model_info
from edgevis.catalog.training import digits_tensors, main, train_digits
from edgevis.data import iter_image_files, preprocess_file
from edgevis.data.digits import DIGIT_CLASSES
from edgevis.exporters.onnx import export_onnx
from edgevis.runtimes.ort import OrtRunner


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    # 3 epochs: ~90 % on the test split in a few seconds; enough to tell learning from chance
    path = tmp_path_factory.mktemp("train") / "test_lsnet.pth"
    return train_digits("test_lsnet", path, epochs=3, seed=0, threads=1)


def test_accuracy_is_far_above_chance(trained):
    assert trained.path.is_file() and trained.seconds > 0
    assert trained.train_acc >= 0.8 and trained.test_acc >= 0.8  # chance is 0.1


def test_checkpoint_reloads_with_the_same_logits(trained):
    x, _ = digits_tensors("test", trained.model.edgevis_info.preprocess)
    x = x[:32]
    reloaded = create_model("test_lsnet", weights=trained.path)
    assert reloaded.edgevis_info.num_classes == len(DIGIT_CLASSES)
    with torch.no_grad():
        ref = trained.model(x)
        torch.testing.assert_close(reloaded(x), ref, rtol=0, atol=1e-6)
        deployed = create_model("test_lsnet", weights=trained.path, deploy=True)
        torch.testing.assert_close(deployed(x), ref, rtol=0, atol=1e-4)


def test_same_seed_same_weights_and_callers_rng_untouched(tmp_path):
    state = torch.get_rng_state()
    a = train_digits("test_deit", tmp_path / "a.pth", epochs=1, seed=3, threads=1)
    # b also reports progress after every step: what is printed does not change what is learnt
    lines = []
    b = train_digits("test_deit", tmp_path / "b.pth", epochs=1, seed=3, threads=1, log=lines.append,
                     progress_every_s=0)
    steps = len(digits_tensors("train", a.model.edgevis_info.preprocess)[0]) // 64 + 1
    assert lines[0].startswith("training test_deit at 64x64 on ") and f"1 epochs of {steps} steps" in lines[0]
    assert lines[1].startswith(f"epoch 1/1: step 1/{steps}, loss ") and len(lines) == steps + 1
    assert lines[-1].startswith("epoch 1/1: loss ")
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.test_acc == b.test_acc


def test_session_checkpoint_exports_and_classifies_the_heldout_pngs(digits_lsnet, digits_folders, tmp_path):
    path, size = digits_lsnet
    calib, heldout = digits_folders
    assert len(list(iter_image_files(calib))) == 128
    result = export_onnx("test_lsnet", tmp_path, weights=path)
    assert result.artifact.provenance["output"]["num_classes"] == 10
    assert result.artifact.provenance["input"]["shape"][2:] == list(size) == list(model_info("test_lsnet").input_size)
    files = list(iter_image_files(heldout))
    spec = model_info("test_lsnet").preprocess  # the registered size is the trained one
    x = np.stack([preprocess_file(f, spec) for f in files])
    labels = np.asarray([int(f.parent.name) for f in files])
    with OrtRunner(result.artifact.path) as runner:
        logits = np.concatenate([runner.infer(x[i:i + 1]) for i in range(len(x))])
    assert (logits.argmax(-1) == labels).mean() >= 0.9
    # not near-constant logits: the point of a trained fixture
    assert logits.std(axis=0).mean() > 1.0


def test_entry_point_names_user_errors(capsys):
    assert main(["--model", "no_such_model", "--epochs", "1", "--out", "x.pth"]) == 1
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", "test_lsnet", "--epochs", "1", "--out", "x.pth", "--input-size", "64", "48"])
