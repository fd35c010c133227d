import copy
import datetime as dt
import json

import pytest
from reportdata import make_report

from edgevis.core.errors import EdgevisError
from edgevis.report import REPORT_VERSION, new_report, validate_report
from edgevis.report.schema import REPORT_SCHEMA


def _one_line_error(report, *words):
    with pytest.raises(EdgevisError) as e:
        validate_report(report)
    msg = str(e.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.fixture(scope="module")
def good():
    return make_report(energy=False)


def test_new_report_stamps_schema_version_and_utc_time(good):
    assert good["schema"] == REPORT_SCHEMA == "edgevis.report"
    assert good["schema_version"] == REPORT_VERSION == 1
    created = dt.datetime.fromisoformat(good["created"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 600
    assert good["baseline"] == "fp32" and good["model"] == "lsnet_t" and good["warnings"] == []
    validate_report(json.loads(json.dumps(good)))  # survives a JSON round trip


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_wrong_version_is_one_line(good, version):
    bad = {**good, "schema_version": version}
    msg = _one_line_error(bad, "schema version", repr(version))
    if version == 2:
        assert "newer edgevis" in msg


def test_wrong_schema_and_non_dict(good):
    _one_line_error({**good, "schema": "edgevis.profile"}, "not an edgevis report", "edgevis.profile")
    _one_line_error([good], "JSON object")


def test_missing_or_empty_entries(good):
    bad = {k: v for k, v in good.items() if k != "entries"}
    _one_line_error(bad, "lacks entries")
    _one_line_error({**good, "entries": []}, "no entries")


def test_missing_keys_in_entries_and_runs(good):
    bad = copy.deepcopy(good)
    del bad["entries"][1]["profile"]
    _one_line_error(bad, "entries[1]", "profile")
    bad = copy.deepcopy(good)
    bad["entries"][2]["profile"]["runs"] = []
    _one_line_error(bad, "integer_only", "no runs")
    bad = copy.deepcopy(good)
    del bad["entries"][0]["profile"]["runs"][0]["latency_ms"]["p99"]
    _one_line_error(bad, "fp32", "p99")


def test_baseline_must_name_an_entry_and_labels_are_unique(good):
    _one_line_error({**good, "baseline": "fp16"}, "fp16", "fp32, int8, integer_only")
    bad = copy.deepcopy(good)
    bad["entries"][1]["label"] = "fp32"
    _one_line_error(bad, "two entries", "fp32")


def test_new_report_validates():
    with pytest.raises(EdgevisError, match="no entries"):
        new_report("bench", "t", {}, [])
