"""A plain list of image URLs (one per line, or a CSV/Parquet with a `url` column) -> records.

The simplest source: no metadata, just images, e.g. to compare with other downloaders on the
same URLs. source_id is the line (row) number, so the same list always gives the same ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artdata import ArtdataError
from artdata.harvest.runner import Job
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import new_record


def read_urls(path: str, column: str = "url") -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise ArtdataError(f"{path}: no such file")
    if p.suffix.lower() in (".csv", ".parquet"):
        import pandas as pd     # imported when a table needs it: a plain list starts fetching sooner
        try:
            df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p, dtype=str)
        except (OSError, ValueError) as exc:
            raise ArtdataError(f"{path}: cannot read table: {exc}") from None
        if column not in df.columns:
            raise ArtdataError(f"{path}: no {column!r} column (have: {', '.join(map(str, df.columns))})")
        return [str(u).strip() for u in df[column]]
    return [l.strip() for l in p.read_text(encoding="utf-8").splitlines()]


@dataclass
class UrlListSource:
    path: str
    column: str = "url"
    name: str = "urls"

    def __post_init__(self):
        self._urls: list[str] | None = None

    def selection(self) -> dict:
        return {"path": self.path, "column": self.column}

    def urls(self) -> list[str]:
        if self._urls is None:
            self._urls = read_urls(self.path, self.column)
        return self._urls

    def user_urls(self) -> list[str]:
        """The list is the user's own: its hosts may be loopback or private (the client trusts them)."""
        return [u for u in self.urls() if u.startswith(("http://", "https://"))]

    async def ids(self, client: PoliteClient) -> list[str]:
        return [str(i) for i, u in enumerate(self.urls()) if u]

    async def job(self, client: PoliteClient, sid: str) -> Job:
        url = self.urls()[int(sid)]
        if not url.startswith(("http://", "https://")):
            raise ArtdataError(f"line {int(sid) + 1} of {self.path}: not an http(s) URL: {url[:80]!r}")
        return Job(new_record("urls", sid, image_url=url), [url])
