"""Tate's collection dataset: a table (JSON tree, artwork_data.csv or Parquet) -> records -> thumbnails.

Metadata is CC0 and read locally (or from a URL); only images are fetched. `thumbnailUrl` ends
in `_8` (256 px); `_7` 128, `_9` 730 and `_10` 1536 px (longest side) are renditions of the
same image: the smallest one at least as large as the requested size is used. Images keep
Tate's copyright terms, so `thumbnailCopyright` is kept and can be filtered on.
"""
from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artdata import ArtdataError
from artdata.harvest import Job
from artdata.http import PoliteClient
from artdata.records import STATUS_NO_IMAGE, extra_json, new_record

RENDITIONS = [("7", 128), ("8", 256), ("9", 730), ("10", 1536)]
TATE_HOST = "http://www.tate.org.uk"
REQUIRED = ("id", "medium", "thumbnailUrl")
_RENDITION_RE = re.compile(r"_(\d+)\.jpg$")


def read_table(src: str) -> pd.DataFrame:
    """Tate's artworks as a DataFrame from Parquet, CSV or the per-artwork JSON tree (folder)."""
    p = Path(src)
    try:
        if p.is_dir():
            rows = [_flatten_json(json.loads(f.read_text(encoding="utf-8"))) for f in sorted(p.rglob("*.json"))]
            if not rows:
                raise ArtdataError(f"{src}: no artwork JSON files found")
            df = pd.DataFrame(rows)
        elif src.lower().split("?")[0].endswith(".parquet"):
            df = pd.read_parquet(src if p.exists() else io.BytesIO(_fetch(src)))
        elif src.lower().split("?")[0].endswith(".csv"):
            df = pd.read_csv(src if p.exists() else io.BytesIO(_fetch(src)), dtype=str, keep_default_na=False)
            df = df.replace({"": None})
        else:
            raise ArtdataError(f"{src}: expected a .parquet or .csv file, or a folder of artwork JSON files")
    except (OSError, ValueError) as exc:
        raise ArtdataError(f"{src}: cannot read Tate table: {exc}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ArtdataError(f"{src}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, df.columns[:15]))})")
    return df


def _fetch(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ArtdataError(f"{url}: no such file")
    import httpx
    try:
        resp = httpx.get(url, timeout=60, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ArtdataError(f"{url}: {exc}") from None
    if resp.status_code != 200:
        raise ArtdataError(f"{url}: HTTP {resp.status_code}")
    return resp.content


def _flatten_json(d: dict) -> dict:
    """One artwork JSON of Tate's tree -> artwork_data.csv-like columns."""
    contributors = d.get("contributors") or []
    first = contributors[0] if contributors else {}
    subjects = []

    def walk(node):
        kids = node.get("children") or []
        if not kids and node.get("name"):
            subjects.append(node["name"])
        for k in kids:
            walk(k)
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
    name: str = "tate"
    _rows: dict = field(default_factory=dict, repr=False)

    def selection(self) -> dict:
        return {"table": self.table, "classifications": self.classifications, "media": self.media,
                "has_thumbnail": self.has_thumbnail, "acquired_from": self.acquired_from,
                "acquired_to": self.acquired_to, "no_copyright_restricted": self.no_copyright_restricted,
                "image_base": self.image_base, "image_size": self.image_size}

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.classifications:
            df = df[df["classification"].fillna("").str.lower().isin({c.lower() for c in self.classifications})]
        if self.media:
            df = df[df["medium"].fillna("").str.lower().isin({m.lower() for m in self.media})]
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

    async def ids(self, client: PoliteClient) -> list[str]:
        df = self.select(read_table(self.table))
        self._rows = {str(r["id"]): r for r in df.to_dict("records")}
        return list(self._rows)

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if not self._rows:   # resumed run: the selection comes from the journal's ids
            self._rows = {str(r["id"]): r for r in self.select(read_table(self.table)).to_dict("records")}
        row = self._rows.get(sid)
        if row is None:
            raise ArtdataError(f"artwork {sid} is no longer in {self.table}")
        rec = record_from_row(row)
        url = row.get("thumbnailUrl")
        if not url or (isinstance(url, float) and math.isnan(url)):
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


def record_from_row(row: dict) -> dict:
    row = {k: _clean(v) for k, v in row.items()}
    year = row.get("year")
    try:
        year = int(year) if year is not None else None
    except (TypeError, ValueError):
        year = None
    subjects = [s for s in str(row.get("subjects") or "").split("|") if s]
    return new_record(
        "tate", row["id"],
        page_url=row.get("url"),
        license="Metadata CC0-1.0; image © Tate / rights holders",
        is_public_domain=None,
        copyright=row.get("thumbnailCopyright"),
        title=row.get("title"),
        artist=row.get("artist"),
        classification=row.get("classification"),
        medium=row.get("medium"),
        date_text=row.get("dateText"),
        date_begin=year,
        date_end=year,
        dimensions=row.get("dimensions"),
        tags=subjects or None,
        extra=extra_json(row),
    )
