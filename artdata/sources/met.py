"""The Met Collection API: ids (from /objects or a local list/bulk CSV) -> object JSON -> image.

Facts this follows are in shared/notes/met-api.md: text fields are "" when empty, withdrawn
objects answer 404 {"message": "Not a valid object"}, the firewall blocks bursts with an HTML 403
page, and `primaryImageSmall` ("web-large") is much lighter than the original `primaryImage`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artdata import ArtdataError
from artdata.harvest import Job, decode_json
from artdata.http import PoliteClient
from artdata.records import (STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN, STATUS_FILTERED,
                             extra_json, new_record)
from artdata.sources import text as _s

DEFAULT_API = "https://collectionapi.metmuseum.org/public/collection/v1"
# The web-large rendition is assumed to be about this long on its longest side; asking for a
# larger --image-size goes straight to the original. Smaller answers fall back to the original.
WEB_LARGE_SIDE = 800


def _int(v) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


@dataclass
class MetSource:
    api_base: str = DEFAULT_API
    departments: list[str] = field(default_factory=list)   # names or ids
    classifications: list[str] = field(default_factory=list)
    public_domain_only: bool = False
    has_image: bool = False
    since: str | None = None
    ids_from: str | None = None
    image_size: int = 256
    name: str = "met"

    def selection(self) -> dict:
        return {"api_base": self.api_base, "departments": self.departments,
                "classifications": self.classifications, "public_domain_only": self.public_domain_only,
                "has_image": self.has_image, "since": self.since, "ids_from": self.ids_from,
                "image_size": self.image_size}

    # -- selection
    async def _department_ids(self, client: PoliteClient) -> list[int]:
        if not self.departments:
            return []
        resp = await client.get(f"{self.api_base}/departments")
        if resp.status_code != 200:
            raise ArtdataError(f"cannot list departments: HTTP {resp.status_code} from {resp.request.url}")
        known = {d["displayName"].lower(): d["departmentId"] for d in decode_json(resp, "departments")["departments"]}
        out = []
        for d in self.departments:
            if str(d).strip().isdigit():
                out.append(int(d))
            elif d.lower() in known:
                out.append(known[d.lower()])
            else:
                raise ArtdataError(f"unknown Met department {d!r}; known: {', '.join(sorted(known))}")
        return out

    async def ids(self, client: PoliteClient) -> list[str]:
        if self.ids_from:
            return self._ids_from_file(Path(self.ids_from))
        params = []
        depts = await self._department_ids(client)
        if depts:
            params.append("departmentIds=" + "|".join(map(str, depts)))
        if self.since:
            params.append(f"metadataDate={self.since}")
        url = f"{self.api_base}/objects" + ("?" + "&".join(params) if params else "")
        resp = await client.get(url)
        if resp.status_code != 200:
            raise ArtdataError(f"cannot list objects: HTTP {resp.status_code} from {url}")
        data = decode_json(resp, "object list")
        return [str(i) for i in (data.get("objectIDs") or [])]

    def _ids_from_file(self, path: Path) -> list[str]:
        """A plain list of ids, or the bulk MetObjects.csv / Parquet filtered on its own columns."""
        if not path.is_file():
            raise ArtdataError(f"--ids-from: no such file: {path}")
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".csv"):
            try:
                df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                    keep_default_na=False)
            except (OSError, ValueError) as exc:
                raise ArtdataError(f"--ids-from {path}: cannot read table: {exc}") from None
            if "Object ID" not in df.columns:
                raise ArtdataError(f"--ids-from {path}: no 'Object ID' column (have: {', '.join(df.columns[:12])}...)")
            if self.departments and "Department" in df.columns:
                wanted = {d.lower() for d in self.departments if not str(d).isdigit()}
                if wanted:
                    df = df[df["Department"].str.strip().str.lower().isin(wanted)]
            if self.classifications and "Classification" in df.columns:
                wanted = {c.lower() for c in self.classifications}
                df = df[df["Classification"].str.strip().str.lower().isin(wanted)]
            if self.public_domain_only and "Is Public Domain" in df.columns:
                df = df[df["Is Public Domain"].astype(str).str.lower().isin(["true", "1"])]
            return [str(i).strip() for i in df["Object ID"] if str(i).strip()]
        ids = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#")[0].strip()
            if not line:
                continue
            if not line.isdigit():
                raise ArtdataError(f"--ids-from {path}:{n}: not an object id: {line!r}")
            ids.append(line)
        return ids

    # -- one object
    async def job(self, client: PoliteClient, sid: str) -> Job:
        url = f"{self.api_base}/objects/{sid}"
        resp = await client.get(url)
        if resp.status_code == 404:
            msg = ""
            try:
                msg = resp.json().get("message", "")
            except ValueError:
                pass
            return Job(new_record("met", sid, status=STATUS_NOT_FOUND, error=f"404 {msg}".strip(), page_url=None))
        if resp.status_code != 200:
            raise ArtdataError(f"HTTP {resp.status_code} from {url}")
        obj = decode_json(resp, f"object {sid}")
        if not isinstance(obj, dict) or "objectID" not in obj:
            raise ArtdataError(f"object {sid}: answer without objectID from {url}")
        rec = record_from_object(obj)
        if self.classifications and (obj.get("classification") or "").lower() not in \
                {c.lower() for c in self.classifications}:
            rec.update(status=STATUS_FILTERED, error=f"classification {obj.get('classification')!r} not selected")
            return Job(rec)
        if self.public_domain_only and not obj.get("isPublicDomain"):
            rec.update(status=STATUS_NOT_PUBLIC_DOMAIN)
            return Job(rec)
        small, orig = _s(obj.get("primaryImageSmall")), _s(obj.get("primaryImage"))
        if not small and not orig:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        urls = [u for u in ((small, orig) if self.image_size <= WEB_LARGE_SIDE else (orig, small)) if u]
        rec["image_url"] = urls[0]
        return Job(rec, urls, min_side=self.image_size)


def record_from_object(obj: dict) -> dict:
    """Met API object JSON -> record (the whole JSON kept in `extra`)."""
    tags = [t.get("term") for t in (obj.get("tags") or []) if isinstance(t, dict) and t.get("term")]
    pd_ = bool(obj.get("isPublicDomain"))
    return new_record(
        "met", obj["objectID"],
        page_url=_s(obj.get("objectURL")),
        license="CC0-1.0" if pd_ else None,
        is_public_domain=pd_,
        copyright=_s(obj.get("rightsAndReproduction")),
        title=_s(obj.get("title")),
        artist=_s(obj.get("artistDisplayName")),
        artist_nationality=_s(obj.get("artistNationality")),
        culture=_s(obj.get("culture")),
        country=_s(obj.get("country")),
        region=_s(obj.get("region")),
        department=_s(obj.get("department")),
        classification=_s(obj.get("classification")),
        object_name=_s(obj.get("objectName")),
        medium=_s(obj.get("medium")),
        date_text=_s(obj.get("objectDate")),
        date_begin=_int(obj.get("objectBeginDate")),
        date_end=_int(obj.get("objectEndDate")),
        dimensions=_s(obj.get("dimensions")),
        tags=tags or None,
        extra=extra_json(obj),
    )
