"""Checkpoints load through torch's weights-only allow-list: data in, code refused in one plain line."""

import argparse
import os

import numpy as np
import pytest
import torch

from edgevis.catalog.weights import read_checkpoint
from edgevis.core.errors import WeightsError


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_numpy_scalars_arrays_and_namespaces_are_data(tmp_path):
    f = tmp_path / "ok.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": np.int64(3), "best": np.float64(0.9),
                "hist": np.zeros(3), "args": argparse.Namespace(lr=0.1)}, f)
    sd = read_checkpoint(f)
    assert list(sd) == ["w"] and torch.equal(sd["w"], torch.ones(2))


def test_a_malicious_pickle_is_refused_in_one_plain_line(tmp_path):
    f = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Evil()}, f)
    with pytest.raises(WeightsError) as e:
        read_checkpoint(f)
    msg = str(e.value)
    assert "refused to load checkpoint" in msg and "system" in msg  # the blocked global, named
    assert "weights_only" not in msg and "\x1b" not in msg and "\n" not in msg


@pytest.mark.parametrize("data", [b"PK\x03\x04garbage", b"\x80\x02}q\x00.", b"not a checkpoint at all"])
def test_corrupt_files_are_one_plain_line(tmp_path, data):
    f = tmp_path / "bad.pth"
    f.write_bytes(data)
    try:
        read_checkpoint(f)
    except WeightsError as e:
        assert "\x1b" not in str(e) and "\n" not in str(e) and "weights_only" not in str(e)
