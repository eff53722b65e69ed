"""The Met Collection API: ids (from /objects or a local list/bulk CSV) -> object JSON -> image.

Facts this follows are in shared/notes/met-api.md: text fields are "" when empty, withdrawn
objects answer 404 {"message": "Not a valid object"}, the firewall blocks bursts with an HTML 403
page, and `primaryImageSmall` ("web-large") is much lighter than the original `primaryImage`.

With `all_images` an object's `additionalImages` (its other photographs: the back, details; listed as original
URLs) become records too, one a view (records.VIEW_SEP: "436535#view=1"), with the object's fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from artdata import ArtdataError
from artdata.harvest.runner import Job
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import (STATUS_FAILED, STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN,
                                      STATUS_FILTERED, VIEW_SEP, extra_json, new_record, view_id)
from artdata.sources import FieldError, check_file, check_parquet, http_url, int32, json_answer, parse_bytes, \
    record_id, shown, text as _s

DEFAULT_API = "https://collectionapi.metmuseum.org/public/collection/v1"
# The web-large rendition is assumed to be about this long on its longest side; asking for a
# larger --image-size goes straight to the original. Smaller answers fall back to the original.
WEB_LARGE_SIDE = 800
# the largest --ids-from table read (MetObjects.csv is about 300 MB for its 480,000 objects); --max-member-bytes
DEFAULT_MAX_MEMBER_BYTES = 2**30
# the most additionalImages of one object made into views (all_images); the rest of a longer list is left out
MAX_VIEWS = 100
# the fields of a view's record that are its own; the others are copied from its object's record
_VIEW_OWN = ("source", "source_id", "image_url", "extra", "status", "error")


def _int(v) -> int | None:
    """An int32 from 1850 or "1850" (the API's years), else None."""
    return int32(v) if str(v).strip().lstrip("-").isdigit() else None


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
    # the largest --ids-from table read (a count of bytes, or text such as 2GiB)
    max_member_bytes: int | str | None = DEFAULT_MAX_MEMBER_BYTES
    all_images: bool = False        # a record for each of an object's additionalImages too (its views)
    name: str = "met"

    def __post_init__(self):
        self.max_member_bytes = parse_bytes(self.max_member_bytes, DEFAULT_MAX_MEMBER_BYTES)
        self._bad: dict[str, str] = {}      # stand-in id of a malformed row -> why (a failed record naming it)

    def selection(self) -> dict:
        return {"api_base": self.api_base, "departments": self.departments,
                "classifications": self.classifications, "public_domain_only": self.public_domain_only,
                "has_image": self.has_image, "since": self.since, "ids_from": self.ids_from,
                "image_size": self.image_size, **({"all_images": True} if self.all_images else {})}

    # -- selection
    async def _department_ids(self, client: PoliteClient) -> list[int]:
        if not self.departments:
            return []
        resp = await client.get(f"{self.api_base}/departments")
        if resp.status_code != 200:
            raise ArtdataError(f"cannot list departments: HTTP {resp.status_code} from {resp.request.url}")
        body = json_answer(resp, "departments")
        listed = body.get("departments") if isinstance(body, dict) else None
        if not isinstance(listed, list):
            raise ArtdataError(f"departments: no departments array from {resp.request.url}")
        known = {_s(d.get("displayName"), "displayName").lower(): d.get("departmentId") for d in listed
                 if isinstance(d, dict) and _s(d.get("displayName"), "displayName")
                 and record_id(d.get("departmentId"))}
        out = []
        for d in self.departments:
            if str(d).strip().isdigit():
                out.append(int(d))
            elif str(d).lower() in known:
                out.append(int(record_id(known[str(d).lower()])))
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
        data = json_answer(resp, "object list")
        listed = data.get("objectIDs") if isinstance(data, dict) else None
        if listed is not None and not isinstance(listed, list):
            raise ArtdataError(f"object list: objectIDs is not a list ({url})")
        out = []
        for i in listed or []:
            sid = record_id(i)
            if sid is None:             # one malformed id: a failed record naming it, the listing goes on
                sid = stand_in(i)
                self._bad[sid] = f"object list: object id {sid!r} is not a number ({url})"
            out.append(sid)
        return out

    def _ids_from_file(self, path: Path) -> list[str]:
        """A plain list of ids, or the bulk MetObjects.csv / Parquet filtered on its own columns."""
        if not path.is_file():
            raise ArtdataError(f"--ids-from: no such file: {path}")
        suffix = path.suffix.lower()
        check_file(path, self.max_member_bytes, f"--ids-from {path}")
        if suffix in (".parquet", ".csv"):
            try:
                if suffix == ".parquet":
                    check_parquet(path, f"--ids-from {path}", self.max_member_bytes)
                df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                    keep_default_na=False)
            except (OSError, ValueError) as exc:
                raise ArtdataError(f"--ids-from {path}: cannot read table: {exc}") from None
            if "Object ID" not in df.columns:
                raise ArtdataError(f"--ids-from {path}: no 'Object ID' column (have: {', '.join(df.columns[:12])}...)")
            if self.departments and "Department" in df.columns:
                wanted = {d.lower() for d in self.departments if not str(d).isdigit()}
                if wanted:
                    df = df[df["Department"].astype(str).str.strip().str.lower().isin(wanted)]
            if self.classifications and "Classification" in df.columns:
                wanted = {c.lower() for c in self.classifications}
                df = df[df["Classification"].astype(str).str.strip().str.lower().isin(wanted)]
            if self.public_domain_only and "Is Public Domain" in df.columns:
                df = df[df["Is Public Domain"].astype(str).str.lower().isin(["true", "1"])]
            ids = []
            for n, i in zip(df.index, df["Object ID"]):
                if _s(i) is None:
                    continue
                sid = record_id(i)
                if sid is None:         # one malformed row: a failed record naming it, the rest is harvested
                    sid = stand_in(_s(i))
                    self._bad[sid] = f"--ids-from {path} row {int(n) + 1}: Object ID {sid!r} is not a number"
                ids.append(sid)
            return ids
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
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        if record_id(sid) != sid:               # never an id that is no number in a request's path
            raise ArtdataError(f"object id {sid!r} is not a number")
        url = f"{self.api_base}/objects/{sid}"
        resp = await client.get(url)
        if resp.status_code == 404:
            msg = ""
            try:
                body = resp.json()
                msg = _s(body.get("message"), "message") or "" if isinstance(body, dict) else ""
            except (ValueError, RecursionError, ArtdataError):
                pass
            return Job(new_record("met", sid, status=STATUS_NOT_FOUND, error=f"404 {msg}".strip(), page_url=None))
        if resp.status_code != 200:
            raise ArtdataError(f"HTTP {resp.status_code} from {url}")
        obj = json_answer(resp, f"object {sid}")
        if not isinstance(obj, dict) or "objectID" not in obj:
            raise ArtdataError(f"object {sid}: answer without objectID from {url}")
        rec = record_from_object(obj, sid)
        if self.classifications and (_s(obj.get("classification"), "classification") or "").lower() not in \
                {c.lower() for c in self.classifications}:
            rec.update(status=STATUS_FILTERED, error=f"classification {obj.get('classification')!r} not selected")
            return Job(rec)
        if self.public_domain_only and not obj.get("isPublicDomain"):
            rec.update(status=STATUS_NOT_PUBLIC_DOMAIN)
            return Job(rec)
        small, orig = http_url(obj.get("primaryImageSmall"), "primaryImageSmall"), \
            http_url(obj.get("primaryImage"), "primaryImage")
        views = self._views(obj, rec, sid, {small, orig}) if self.all_images else []
        if not small and not orig:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec, views=views)
        urls = [u for u in ((small, orig) if self.image_size <= WEB_LARGE_SIDE else (orig, small)) if u]
        rec["image_url"] = urls[0]
        return Job(rec, urls, min_side=self.image_size, views=views)

    def _views(self, obj: dict, rec: dict, sid: str, primary: set) -> list[Job]:
        """A job per entry of the object's additionalImages (at most MAX_VIEWS; blanks and repeats of the primary
        or of an earlier entry left out): the object's fields, its own image, a slim `extra`; a malformed entry is
        that view's failed record naming it."""
        listed = obj.get("additionalImages")
        if listed is None or listed == "" or listed == []:
            return []
        fields = {k: v for k, v in rec.items() if k not in _VIEW_OWN}

        def view(k: int, **own) -> dict:
            extra = {"objectID": obj.get("objectID"), "objectWikidata_URL": obj.get("objectWikidata_URL"),
                     "view": k, "parent": sid}
            return new_record("met", view_id(sid, k), **fields, extra=extra_json(extra), **own)

        if not isinstance(listed, list):
            return [Job(view(1, status=STATUS_FAILED,
                             error=f"object {sid}: additionalImages is {shown(listed, 40)}, not a list of URLs"))]
        jobs, seen = [], set(primary)
        for k, entry in enumerate(listed[:MAX_VIEWS], 1):
            where = f"object {sid}: additionalImages[{k - 1}]"
            if not isinstance(entry, str):
                jobs.append(Job(view(k, status=STATUS_FAILED, error=f"{where}: {shown(entry, 40)}, not a URL")))
                continue
            try:
                url = http_url(entry, where)
            except FieldError as exc:
                jobs.append(Job(view(k, status=STATUS_FAILED, error=str(exc))))
                continue
            if url is None or url in seen:
                continue
            seen.add(url)
            small = web_large(url)
            urls = [url] if small == url else [small, url] if self.image_size <= WEB_LARGE_SIDE else [url, small]
            jobs.append(Job(view(k, image_url=urls[0]), urls, min_side=self.image_size))
        return jobs


def stand_in(v) -> str:
    """The source_id of the failed record of a malformed id `v`: shown short, never a view's id ("5#view=1" would
    take the place of object 5's first view)."""
    return shown(v, 40).replace(VIEW_SEP, "#view?")


def web_large(url: str) -> str:
    """The web-large rendition of a Met image URL (".../CRDImages/eg/original/x.jpg" -> ".../web-large/x.jpg"),
    or the URL itself when its path has no /original/."""
    parts = urlsplit(url)
    if "/original/" not in parts.path:
        return url
    return urlunsplit(parts._replace(path=parts.path.replace("/original/", "/web-large/", 1)))


def record_from_object(obj: dict, sid: str | None = None) -> dict:
    """Met API object JSON -> record (the whole JSON kept in `extra`); a value of the wrong type is coerced (a
    number as text) or a FieldError naming the field."""
    tags = obj.get("tags") if isinstance(obj.get("tags"), list) else []
    tags = [_s(t.get("term"), "tags.term") for t in tags if isinstance(t, dict)]
    tags = [t for t in tags if t]
    pd_ = obj.get("isPublicDomain") is True
    return new_record(
        "met", sid or obj["objectID"],
        page_url=_s(obj.get("objectURL"), "objectURL"),
        license="CC0-1.0" if pd_ else None,
        is_public_domain=pd_,
        copyright=_s(obj.get("rightsAndReproduction"), "rightsAndReproduction"),
        title=_s(obj.get("title"), "title"),
        artist=_s(obj.get("artistDisplayName"), "artistDisplayName"),
        artist_nationality=_s(obj.get("artistNationality"), "artistNationality"),
        culture=_s(obj.get("culture"), "culture"),
        country=_s(obj.get("country"), "country"),
        region=_s(obj.get("region"), "region"),
        department=_s(obj.get("department"), "department"),
        classification=_s(obj.get("classification"), "classification"),
        object_name=_s(obj.get("objectName"), "objectName"),
        medium=_s(obj.get("medium"), "medium"),
        date_text=_s(obj.get("objectDate"), "objectDate"),
        date_begin=_int(obj.get("objectBeginDate")),
        date_end=_int(obj.get("objectEndDate")),
        dimensions=_s(obj.get("dimensions"), "dimensions"),
        tags=tags or None,
        extra=extra_json(obj),
    )
