import os
import stat

import pytest

from edgevis.core.errors import OutputError
from edgevis.core.files import atomic_output, ensure_writable_dir, write_bytes_atomic


def test_atomic_output_leaves_old_file_and_no_temp_on_failure(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half-written")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_atomic_output_replaces_with_normal_permissions(tmp_path):
    target = write_bytes_atomic(tmp_path / "a.bin", b"new")
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError):
        ensure_writable_dir(f)
    with pytest.raises(OutputError, match="cannot create"):
        ensure_writable_dir(f / "sub")


def test_an_output_whose_name_a_folder_holds_is_one_error_and_leaves_no_temporary_file(tmp_path):
    from edgevis.core.files import atomic_outputs

    (tmp_path / "m.onnx.json").mkdir()
    with pytest.raises(OutputError, match="a folder of that name is in the way"):
        with atomic_outputs(tmp_path / "m.onnx", tmp_path / "m.onnx.json") as (a, b):
            a.write_bytes(b"model")
            b.write_text("{}")
    with pytest.raises(OutputError, match="a folder of that name is in the way"):
        with atomic_output(tmp_path / "m.onnx.json") as t:
            t.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.json"]  # no model landed without its sidecar
