import pyarrow as pa
import pytest

from artdata.datasets.records import (RECORD_SCHEMA, SPLIT_SCHEMA, STATUSES, RecordError, conform, extra_json, new_record,
                             schema_for, to_table)


def test_new_record_has_every_column_and_pending_status():
    r = new_record("met", 42, title="A")
    assert set(r) == set(RECORD_SCHEMA.names)
    assert r["source_id"] == "42" and r["status"] == "pending" and r["title"] == "A"


def test_unknown_field_is_named():
    with pytest.raises(RecordError, match="met:1.*nonsense"):
        new_record("met", 1, nonsense=3)


def test_to_table_round_trip_keeps_types():
    recs = [new_record("met", 1, tags=["a", "b"], date_begin=1850, signed=True, status="ok", width=10),
            new_record("tate", "T1", price=12.5, currency="USD", unsold=False, status="failed", error="x")]
    t = to_table(recs)
    assert t.schema.equals(RECORD_SCHEMA, check_metadata=False)
    back = t.to_pylist()
    assert back[0]["tags"] == ["a", "b"] and back[0]["date_begin"] == 1850 and back[1]["price"] == 12.5


def test_bad_value_names_record_and_field():
    recs = [new_record("met", 1, status="ok"), new_record("met", 2, date_begin="not a year", status="ok")]
    with pytest.raises(RecordError, match="met:2"):
        to_table(recs)


def test_bad_status_rejected():
    with pytest.raises(RecordError, match="status 'weird'"):
        to_table([new_record("met", 1, status="weird")])


def test_split_columns_switch_schema():
    t = to_table([new_record("met", 1, status="ok", label="Dutch", split="train")])
    assert t.schema.equals(SPLIT_SCHEMA, check_metadata=False)
    assert schema_for(["source", "label"]) is SPLIT_SCHEMA


def test_conform_adds_missing_and_rejects_unknown_columns():
    t = pa.table({"source": ["met"], "source_id": ["1"], "status": ["ok"]})
    c = conform(t)
    assert c.column_names == RECORD_SCHEMA.names and c.column("title").null_count == 1
    with pytest.raises(RecordError, match="not in the record schema: bogus"):
        conform(pa.table({"source": ["met"], "source_id": ["1"], "status": ["ok"], "bogus": [1]}))
    with pytest.raises(RecordError, match="missing required column"):
        conform(pa.table({"source": ["met"]}))


def test_extra_json_is_canonical_and_lossless():
    assert extra_json({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'


def test_every_status_is_documented():
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "manifests" / "SCHEMA.md").read_text()
    for s in STATUSES:
        assert f"`{s}`" in doc
    for name in SPLIT_SCHEMA.names:
        assert f"`{name}`" in doc, name
