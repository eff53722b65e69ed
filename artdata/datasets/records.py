"""The record schema: the one contract between every stage (source -> manifest -> split -> trainer).

Every harvested object becomes exactly one record, whatever became of its image. Columns are
documented in manifests/SCHEMA.md; `SCHEMA_VERSION` changes whenever a column is added or its
meaning changes. Split manifests add `label`, `labels` and `split` (see `SPLIT_FIELDS`).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = "1.1"   # 1.1: fingerprint, fingerprint_centre and group

# What became of a record's image.
STATUS_OK = "ok"                        # image fetched, verified, stored
STATUS_PENDING = "pending"              # metadata only: image not fetched yet (see `manifests materialize`)
STATUS_NO_IMAGE = "no_image"            # the source has no image for this object
STATUS_NOT_FOUND = "not_found"          # the source says the object does not exist (404 / withdrawn)
STATUS_NOT_PUBLIC_DOMAIN = "not_public_domain"  # excluded by --public-domain-only
STATUS_FILTERED = "filtered"            # fetched, then excluded by a selection filter
STATUS_FAILED = "failed"                # something went wrong; `error` says what
STATUSES = (STATUS_OK, STATUS_PENDING, STATUS_NO_IMAGE, STATUS_NOT_FOUND,
            STATUS_NOT_PUBLIC_DOMAIN, STATUS_FILTERED, STATUS_FAILED)

_str = pa.string()
_i32 = pa.int32()
_f64 = pa.float64()

PROVENANCE_FIELDS = [
    pa.field("source", _str, nullable=False),  # met | tate | findartinfo | aic | cleveland | nga | iiif | urls | folder
    pa.field("source_id", _str, nullable=False),    # the id the source uses
    pa.field("page_url", _str),                     # human-readable page of the object
    pa.field("image_url", _str),                    # the image actually fetched (or to fetch)
    pa.field("license", _str),                      # e.g. CC0-1.0, or the source's terms
    pa.field("is_public_domain", pa.bool_()),
    pa.field("copyright", _str),                    # copyright note shown by the source
]
DESCRIPTIVE_FIELDS = [
    pa.field("title", _str),
    pa.field("artist", _str),
    pa.field("artist_nationality", _str),
    pa.field("culture", _str),
    pa.field("country", _str),
    pa.field("region", _str),
    pa.field("department", _str),
    pa.field("classification", _str),
    pa.field("object_name", _str),
    pa.field("medium", _str),
    pa.field("date_text", _str),
    pa.field("date_begin", _i32),
    pa.field("date_end", _i32),
    pa.field("dimensions", _str),
    pa.field("signed", pa.bool_()),
    pa.field("tags", pa.list_(_str)),
]
AUCTION_FIELDS = [
    pa.field("sale_date", _str),          # ISO date when parseable, else as shown
    pa.field("auction_house", _str),
    pa.field("lot_number", _str),
    pa.field("estimate_low", _f64),
    pa.field("estimate_high", _f64),
    pa.field("price", _f64),              # hammer price, in `currency`
    pa.field("price_with_premium", _f64),
    pa.field("currency", _str),           # ISO 4217 code as shown by the source
    pa.field("unsold", pa.bool_()),
]
EXTRA_FIELDS = [
    pa.field("extra", _str),              # JSON object: source-specific fields, kept losslessly
]
IMAGE_FIELDS = [
    pa.field("image_key", _str),          # sha256 of the stored (resized, re-encoded) JPEG
    pa.field("source_sha256", _str),      # sha256 of the bytes the source served
    pa.field("width", _i32),
    pa.field("height", _i32),
    pa.field("orig_width", _i32),
    pa.field("orig_height", _i32),
    pa.field("image_bytes", pa.int64()),  # size of the stored JPEG
    pa.field("fingerprint", pa.int64()),  # perceptual hash of the stored image (datasets.fingerprint)
    pa.field("fingerprint_centre", pa.int64()),  # the same hash of the middle 80 % of the picture
    pa.field("status", _str, nullable=False),
    pa.field("error", _str),
    pa.field("harvested_at", pa.timestamp("us", tz="UTC")),
]
SPLIT_FIELDS = [
    pa.field("label", _str),
    pa.field("labels", pa.list_(_str)),
    pa.field("split", _str),              # train | val | test
    pa.field("group", _str),              # the artwork group (splits.groups): never in two splits
]

RECORD_SCHEMA = pa.schema(
    PROVENANCE_FIELDS + DESCRIPTIVE_FIELDS + AUCTION_FIELDS + EXTRA_FIELDS + IMAGE_FIELDS,
    metadata={b"artdata.schema_version": SCHEMA_VERSION.encode()},
)
SPLIT_SCHEMA = pa.schema(
    list(RECORD_SCHEMA) + SPLIT_FIELDS,
    metadata={b"artdata.schema_version": SCHEMA_VERSION.encode()},
)
RECORD_COLUMNS = tuple(RECORD_SCHEMA.names)
KEY_COLUMNS = ("source", "source_id")
# Several records of one museum object (its other photographs: `crawl met --all-images`, `crawl nga --all-views`):
# view k (1-based) of object 436535 is source_id "436535#view=1"; the object's own record keeps its plain id.
VIEW_SEP = "#view="

# Where each harvester takes the fields the recipes read from (museum field -> schema field). Merged splits
# write the part for their sources into the card (`field_mapping`), and the dataset report shows it.
SOURCE_FIELDS: dict[str, dict[str, str]] = {
    "met": {"culture": "Culture", "artist_nationality": "Artist Nationality", "country": "Country",
            "classification": "Classification", "department": "Department", "medium": "Medium"},
    "tate": {"classification": "classification", "medium": "medium"},
    "aic": {"country": "place_of_origin", "classification": "classification_title",
            "department": "department_title", "medium": "medium_display"},
    "cleveland": {"culture": "culture (list, joined with |; 'France, 19th century')",
                  "artist_nationality": "creators[0].description, last parenthesis ('(French, 1840-1926)')",
                  "classification": "type", "department": "department", "medium": "technique"},
    "nga": {"artist_nationality": "constituents.nationality of the first artist (objects_constituents)",
            "classification": "objects.classification", "department": "objects.departmentabbr",
            "medium": "objects.medium"},
    "iiif": {"culture": "metadata label Culture", "artist_nationality": "metadata label Nationality",
             "country": "metadata label Country / Place / Place of origin",
             "classification": "metadata label Classification / Object type / Type",
             "department": "metadata label Department", "medium": "metadata label Medium / Technique / Materials"},
}


class RecordError(ValueError):
    """A record that does not fit the schema (names the record and the field)."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def object_of(source_id: str) -> str:
    """The object a record stands for: the part of its source_id before VIEW_SEP (the id itself for a primary)."""
    return str(source_id).partition(VIEW_SEP)[0]


def view_id(source_id: str | int, k: int) -> str:
    """The source_id of view `k` (1-based) of object `source_id`."""
    return f"{source_id}{VIEW_SEP}{k}"


def new_record(source: str, source_id: str | int, **fields: Any) -> dict:
    """A record dict with every schema column present (missing ones None)."""
    rec = {name: None for name in RECORD_COLUMNS}
    rec["source"] = source
    rec["source_id"] = str(source_id)
    rec["status"] = STATUS_PENDING
    unknown = set(fields) - set(RECORD_COLUMNS) - {f.name for f in SPLIT_FIELDS}
    if unknown:
        raise RecordError(f"record {source}:{source_id}: unknown field(s) {sorted(unknown)}")
    rec.update(fields)
    return rec


def extra_json(values: Mapping[str, Any]) -> str:
    """Source-specific fields as canonical JSON (sorted keys, UTF-8 kept)."""
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)


def schema_for(columns: Iterable[str]) -> pa.Schema:
    """The record schema, plus the split columns when `columns` has any of them."""
    cols = set(columns)
    return SPLIT_SCHEMA if cols & {f.name for f in SPLIT_FIELDS} else RECORD_SCHEMA


def to_table(records: list[dict], schema: pa.Schema | None = None) -> pa.Table:
    """Records (dicts) -> a table in the record schema, naming the record at fault on error."""
    if schema is None:
        schema = SPLIT_SCHEMA if any(any(k in r for k in ("label", "labels", "split")) for r in records) \
            else RECORD_SCHEMA
    for r in records:
        if r.get("status") not in STATUSES:
            raise RecordError(f"record {r.get('source')}:{r.get('source_id')}: "
                              f"status {r.get('status')!r} is not one of {', '.join(STATUSES)}")
    try:
        # column by column: four times faster than Table.from_pylist on the record schema
        return pa.Table.from_pydict({f.name: [r.get(f.name) for r in records] for f in schema}, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        # find the culprit for a one-line message
        for r in records:
            try:
                pa.Table.from_pylist([r], schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as one:
                raise RecordError(f"record {r.get('source')}:{r.get('source_id')}: {one}") from None
        raise RecordError(str(exc)) from None


def conform(table: pa.Table) -> pa.Table:
    """Cast a table read from disk (or built elsewhere) to the record schema.

    Missing schema columns are added as nulls; extra columns are an error naming them.
    """
    schema = schema_for(table.column_names)
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        raise RecordError(f"columns not in the record schema: {', '.join(extra)}")
    missing_required = [c for c in ("source", "source_id", "status") if c not in table.column_names]
    if missing_required:
        raise RecordError(f"missing required column(s): {', '.join(missing_required)}")
    cols = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            if not col.type.equals(field.type):
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise RecordError(f"column {field.name}: cannot read as {field.type}: {exc}") from None
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(cols, schema=schema)

