"""Tate's collection dataset: a table (JSON tree, artwork_data.csv or Parquet) -> records -> thumbnails.

Metadata is CC0 and read locally (or from a URL); only images are fetched. `thumbnailUrl` ends
in `_8` (256 px); `_7` 128, `_9` 730 and `_10` 1536 px (longest side) are renditions of the
same image: the smallest one at least as large as the requested size is used. Images keep
Tate's copyright terms, so `thumbnailCopyright` is kept and can be filtered on.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artdata import ArtdataError
from artdata.harvest.runner import Job
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import STATUS_NO_IMAGE, extra_json, new_record
from artdata.sources import FieldError, TooLarge, check_file, check_parquet, http_url, id_order, int32, \
    integer, loads, parse_bytes, record_id, shown, text as _s, too_large

RENDITIONS = [("7", 128), ("8", 256), ("9", 730), ("10", 1536)]
TATE_HOST = "http://www.tate.org.uk"
REQUIRED = ("id", "medium", "thumbnailUrl")
_RENDITION_RE = re.compile(r"_(\d+)\.jpg$")
# the largest table read (a file, or the answer for a URL; a Parquet file also by its uncompressed size): Tate's
# artwork_data.csv is about 35 MB for its 70,000 works; --max-member-bytes raises it
DEFAULT_MAX_MEMBER_BYTES = 512 * 2**20


def read_table(src: str, max_bytes: int = DEFAULT_MAX_MEMBER_BYTES, bad: dict | None = None) -> pd.DataFrame:
    """Tate's artworks as a DataFrame from Parquet, CSV or the per-artwork JSON tree (folder). A file (or an
    answer, for a URL) above `max_bytes` is refused, a Parquet file by its uncompressed size too, before it is
    read. A malformed JSON file of the tree goes into `bad` (its path -> why) when given, else is an error."""
    p = Path(src)
    try:
        if p.is_dir():
            rows = []
            for f in sorted(p.rglob("*.json")):
                try:
                    check_file(f, max_bytes)
                    doc = loads(f.read_bytes(), str(f))
                    if not isinstance(doc, dict):
                        raise ArtdataError(f"{f}: not an artwork record (a JSON {type(doc).__name__})")
                    rows.append(_flatten_json(doc, str(f)))
                except TooLarge:
                    raise
                except ArtdataError as exc:
                    if bad is None:
                        raise
                    bad[f.relative_to(p).as_posix()] = str(exc)
            if not rows:
                raise ArtdataError(next(iter(bad.values())) if bad else f"{src}: no artwork JSON files found")
            df = pd.DataFrame(rows)
        elif src.lower().split("?")[0].endswith(".parquet"):
            if p.exists():
                check_file(p, max_bytes)
            data = p if p.exists() else io.BytesIO(_fetch(src, max_bytes))
            check_parquet(data, src, max_bytes)
            df = pd.read_parquet(data)
        elif src.lower().split("?")[0].endswith(".csv"):
            if p.exists():
                check_file(p, max_bytes)
            df = pd.read_csv(src if p.exists() else io.BytesIO(_fetch(src, max_bytes)), dtype=str,
                             keep_default_na=False)
            df = df.replace({"": None})
        else:
            raise ArtdataError(f"{src}: expected a .parquet or .csv file, or a folder of artwork JSON files")
    except (OSError, ValueError) as exc:
        raise ArtdataError(f"{src}: cannot read Tate table: {exc}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ArtdataError(f"{src}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, df.columns[:15]))})")
    return df


def _fetch(url: str, max_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ArtdataError(f"{url}: no such file")
    import httpx
    try:
        with httpx.stream("GET", url, timeout=60, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise ArtdataError(f"{url}: HTTP {resp.status_code}")
            if (integer(resp.headers.get("content-length")) or 0) > max_bytes:
                raise too_large(url, max_bytes, integer(resp.headers.get("content-length")))
            chunks, n = [], 0
            for chunk in resp.iter_bytes():         # decompressed bytes count
                n += len(chunk)
                if n > max_bytes:
                    raise too_large(url, max_bytes)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ArtdataError(f"{url}: {exc}") from None
    return b"".join(chunks)


def _flatten_json(d: dict, where: str = "artwork") -> dict:
    """One artwork JSON of Tate's tree -> artwork_data.csv-like columns (a field of the wrong type is a FieldError
    naming it)."""
    contributors = d.get("contributors") or []
    if not isinstance(contributors, list):
        raise FieldError(f"{where}: contributors: expected a list, got {shown(contributors)}")
    first = contributors[0] if contributors else {}
    if not isinstance(first, dict):
        raise FieldError(f"{where}: contributors[0]: expected an object, got {shown(first)}")
    subjects = []

    def walk(node, depth=0):
        if not isinstance(node, dict) or depth > 32 or len(subjects) > 10_000:
            return
        kids = node.get("children") or []
        kids = kids if isinstance(kids, list) else []
        if not kids and _s(node.get("name")):
            subjects.append(_s(node.get("name")))
        for k in kids:
            walk(k, depth + 1)
    if isinstance(d.get("subjects"), dict):
        walk(d["subjects"])
    return {"id": d.get("id"), "accession_number": d.get("acno"), "artist": first.get("fc"),
            "artistId": first.get("id"), "title": d.get("title"), "dateText": d.get("dateText"),
            "medium": d.get("medium"), "creditLine": d.get("creditLine"), "year": d.get("dateRange", {}).get("startYear")
            if isinstance(d.get("dateRange"), dict) else None, "acquisitionYear": d.get("acquisitionYear"),
            "dimensions": d.get("dimensions"), "width": d.get("width"), "height": d.get("height"),
            "units": d.get("units"), "thumbnailCopyright": d.get("thumbnailCopyright"),
            "thumbnailUrl": d.get("thumbnailUrl"), "url": d.get("url"), "classification": d.get("classification"),
            "subjects": "|".join(subjects) or None}


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def choose_rendition(url: str, size: int, width, height, side: str = "shorter") -> str:
    """The smallest rendition whose relevant side is at least `size` (else the largest)."""
    w, h = _num(width), _num(height)
    ratio = min(w, h) / max(w, h) if w and h else 0.75
    for suffix, longest in RENDITIONS:
        have = longest * ratio if side == "shorter" else longest
        if have >= size:
            return _RENDITION_RE.sub(f"_{suffix}.jpg", url)
    return _RENDITION_RE.sub(f"_{RENDITIONS[-1][0]}.jpg", url)


@dataclass
class TateSource:
    table: str
    classifications: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    has_thumbnail: bool = False
    acquired_from: int | None = None
    acquired_to: int | None = None
    no_copyright_restricted: bool = False
    image_base: str | None = None
    image_size: int = 256
    image_side: str = "shorter"
    # the largest table read (a count of bytes, or text such as 2GiB)
    max_member_bytes: int | str | None = DEFAULT_MAX_MEMBER_BYTES
    name: str = "tate"
    _rows: dict = field(default_factory=dict, repr=False)
    _bad: dict = field(default_factory=dict, repr=False)       # stand-in id of a malformed row or file -> why

    def __post_init__(self):
        self.max_member_bytes = parse_bytes(self.max_member_bytes, DEFAULT_MAX_MEMBER_BYTES)

    def selection(self) -> dict:
        return {"table": self.table, "classifications": self.classifications, "media": self.media,
                "has_thumbnail": self.has_thumbnail, "acquired_from": self.acquired_from,
                "acquired_to": self.acquired_to, "no_copyright_restricted": self.no_copyright_restricted,
                "image_base": self.image_base, "image_size": self.image_size}

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.classifications:
            df = df[_lower(df["classification"]).isin({c.lower() for c in self.classifications})]
        if self.media:
            df = df[_lower(df["medium"]).isin({m.lower() for m in self.media})]
        if self.has_thumbnail:
            df = df[df["thumbnailUrl"].notna() & (df["thumbnailUrl"] != "")]
        if self.acquired_from is not None or self.acquired_to is not None:
            acq = pd.to_numeric(df.get("acquisitionYear"), errors="coerce")
            lo = self.acquired_from if self.acquired_from is not None else -10**9
            hi = self.acquired_to if self.acquired_to is not None else 10**9
            df = df[(acq >= lo) & (acq <= hi)]
        if self.no_copyright_restricted and "thumbnailCopyright" in df.columns:
            df = df[df["thumbnailCopyright"].isna() | (df["thumbnailCopyright"] == "")]
        return df

    def _load(self) -> list[str]:
        """The selected rows by id, in the table's order; a row whose id is no number (or a JSON file of the tree
        that cannot be read) is kept as a stand-in id that becomes a failed record naming it."""
        bad: dict[str, str] = {}
        df = self.select(read_table(self.table, self.max_member_bytes, bad))
        self._rows, order = {}, []
        for n, r in enumerate(df.to_dict("records")):
            sid = record_id(r.get("id"))
            if sid is None:
                key = f"row {n + 1}" if _s(r.get("id")) is None else shown(_s(r.get("id")), 40)
                bad[key] = f"{self.table} row {n + 1}: artwork id {shown(r.get('id'))!r} is not a number"
                order.append(key)
                continue
            if sid not in self._rows:
                order.append(sid)
            self._rows[sid] = r
        self._bad = bad
        return order + sorted((k for k in bad if k not in order), key=id_order)

    async def ids(self, client: PoliteClient) -> list[str]:
        return self._load()

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if not self._rows:   # resumed run: the selection comes from the journal's ids
            self._load()
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        row = self._rows.get(sid)
        if row is None:
            raise ArtdataError(f"artwork {sid} is no longer in {self.table}")
        rec = record_from_row(row, sid)
        url = http_url(_clean(row.get("thumbnailUrl")), "thumbnailUrl")
        if not url:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        if self.image_base:
            url = url.replace(TATE_HOST, self.image_base.rstrip("/"))
        url = choose_rendition(url, self.image_size, row.get("width"), row.get("height"), self.image_side)
        rec["image_url"] = url
        return Job(rec, [url])


def _clean(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if v is pd.NA:
        return None
    return v


def _lower(col: pd.Series) -> pd.Series:
    """A column's values as lower-case text ("" for missing), whatever their type."""
    return col.map(lambda v: (_s(v) or "").lower() if not isinstance(v, dict) else "")


def record_from_row(row: dict, sid: str | None = None) -> dict:
    """One row's record; a value of the wrong type is coerced (a number as text) or a FieldError naming the
    column."""
    row = {k: _clean(v) for k, v in row.items()}
    sid = sid or record_id(row.get("id")) or _s(row.get("id"), "id")
    if sid is None:
        raise ArtdataError("a row without an id")
    year = int32(row.get("year"))
    subjects = [s for s in (_s(row.get("subjects"), "subjects") or "").split("|") if s]
    t = lambda k: _s(row.get(k), k)     # noqa: E731
    return new_record(
        "tate", sid,
        page_url=t("url"),
        license="Metadata CC0-1.0; image © Tate / rights holders",
        is_public_domain=None,
        copyright=t("thumbnailCopyright"),
        title=t("title"),
        artist=t("artist"),
        classification=t("classification"),
        medium=t("medium"),
        date_text=t("dateText"),
        date_begin=year,
        date_end=year,
        dimensions=t("dimensions"),
        tags=subjects or None,
        extra=extra_json(row),
    )
