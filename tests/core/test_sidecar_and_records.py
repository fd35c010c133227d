"""Sidecars read through one schema-checked reader, preprocessing records checked key by key, model and
sidecar committed together."""

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevis.core.errors import PreprocessError
from edgevis.core.files import atomic_output, atomic_outputs
from edgevis.core.sidecar import load_sidecar
from edgevis.core.types import Preprocess, read_sidecar


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "a JSON list, not an object"),
    ("42", "a JSON int, not an object"),
    ("{nope", "not JSON"),
    ('{"precision": 8}', "'precision' is a int"),
    ('{"preprocess": "fast"}', "'preprocess' is a str"),
    ('{"providers": ["CPU", 3]}', "'providers' is not a list of names"),
    ('{"sha256": true}', "'sha256' is a bool"),
])
def test_unreadable_sidecars_say_why(tmp_path, text, problem):
    f = tmp_path / "m.onnx"
    f.write_bytes(b"x")
    (tmp_path / "m.onnx.json").write_text(text)
    side = load_sidecar(f)
    assert not side.ok and not side.missing and problem in side.problem
    assert read_sidecar(f) is None
    assert "is unverified: its sidecar m.onnx.json is unreadable" in side.verify(f)


def test_missing_and_good_sidecars(tmp_path):
    from edgevis.core.files import sha256_file

    f = tmp_path / "m.onnx"
    f.write_bytes(b"x")
    assert load_sidecar(f).missing and "has no sidecar" in load_sidecar(f).verify(f)
    (tmp_path / "m.onnx.json").write_bytes(b"\xff\xfe{}")
    assert "not JSON" in load_sidecar(f).problem
    (tmp_path / "m.onnx.json").write_text(json.dumps({"sha256": sha256_file(f), "precision": "int8"}))
    assert load_sidecar(f).verify(f) is None and read_sidecar(f)["precision"] == "int8"
    f.write_bytes(b"y")
    assert "describes another file" in load_sidecar(f).verify(f)


GOOD = {"input_size": [224, 224], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "interpolation": "bicubic",
        "crop_pct": 0.875}


@pytest.mark.parametrize("change, key", [
    ({"input_size": [224]}, "'input_size'"), ({"input_size": "224"}, "'input_size'"),
    ({"input_size": [0, 224]}, "'input_size'"), ({"input_size": [100000, 100000]}, "'input_size'"),
    ({"mean": [0, 0]}, "'mean'"), ({"mean": ["a", 0, 0]}, "'mean'"), ({"std": [0, 1, 1]}, "'std'"),
    ({"interpolation": "magic"}, "'interpolation'"), ({"crop_pct": 0}, "'crop_pct'"),
    ({"crop_pct": True}, "'crop_pct'"), ({"input_size": None}, "'input_size'"),
])
def test_a_bad_record_names_its_key(change, key):
    with pytest.raises(PreprocessError, match=key):
        Preprocess.from_dict({**GOOD, **change})


def test_a_record_that_is_not_an_object():
    with pytest.raises(PreprocessError, match="not an object"):
        Preprocess.from_dict([1, 2, 3])
    assert Preprocess.from_dict(GOOD).input_size == (224, 224)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(string.printable, max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: json_values for k in GOOD}) | json_values)
def test_any_json_record_is_a_preprocess_or_one_preprocess_error(record):
    try:
        p = Preprocess.from_dict(record)
    except PreprocessError as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= min(p.input_size) and max(p.input_size) <= 8192 and min(p.std) > 0


def test_atomic_outputs_commits_all_or_nothing(tmp_path):
    a, b = tmp_path / "m.onnx", tmp_path / "m.onnx.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_outputs(a, b) as (ta, tb):
            ta.write_bytes(b"model")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_outputs(a, b) as (ta, tb):
        ta.write_bytes(b"model")
        tb.write_text("{}")
        assert not a.exists() and not b.exists()  # nothing lands before the block completes
    assert a.read_bytes() == b"model" and b.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]


def test_atomic_output_cleans_up_on_system_exit(tmp_path):
    with pytest.raises(SystemExit):
        with atomic_output(tmp_path / "f") as t:
            t.write_bytes(b"half")
            raise SystemExit(1)
    assert list(tmp_path.iterdir()) == []
