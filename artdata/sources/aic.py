"""The Art Institute of Chicago: its public API (or its JSON data dump) -> records -> IIIF images.

Selection: `/artworks` pages (`page`, `limit` up to 100, `fields=id`), or `/artworks/search` with an
Elasticsearch query in the query string (a term on `is_public_domain`, matches on `classification_title`
and `department_title`) when a filter is given; or the published data dump (`--dump`: a folder or a tarball of
one JSON file per artwork, or a JSON-lines file), filtered locally so that no API request is needed for the
metadata. Each artwork: `/artworks/{id}` with `fields=` asking only what the record needs. Images come from
the museum's IIIF server, `{iiif_url}/{image_id}/full/{W},/0/default.jpg` with W at most 843 (the width the
museum asks clients to use) and just large enough for `image_size` when the artwork's dimensions are known.
The museum asks for an identifying `AIC-User-Agent` header and limits anonymous clients to about 60 requests
a minute: the command sends the header and defaults to 1 request/s.
"""
from __future__ import annotations

import json
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from artdata import ArtdataError
from artdata.harvest import Job, decode_json, fetch_record
from artdata.http import PoliteClient
from artdata.records import STATUS_FILTERED, STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN, \
    extra_json, new_record
from artdata.sources import text as _s

DEFAULT_API = "https://api.artic.edu/api/v1"
DEFAULT_IIIF = "https://www.artic.edu/iiif/2"
WEBSITE = "https://www.artic.edu"
AIC_WIDTH = 843           # the image width the museum asks IIIF clients to use (or smaller)
PAGE_LIMIT = 100
MAX_PAGES = 10_000
FIELDS = ("id,title,artist_display,artist_title,date_start,date_end,date_display,place_of_origin,medium_display,"
          "classification_title,department_title,artwork_type_title,style_title,is_public_domain,image_id,"
          "thumbnail,copyright_notice,credit_line,dimensions,api_link")


def image_width(thumbnail: dict | None, image_size: int) -> int:
    """The IIIF width to ask for: the smallest giving a shorter side of `image_size`, at most 843."""
    w = h = None
    if isinstance(thumbnail, dict):
        w, h = thumbnail.get("width"), thumbnail.get("height")
    if not (isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0):
        return AIC_WIDTH
    need = image_size if w <= h else math.ceil(image_size * w / h)
    return min(AIC_WIDTH, max(1, need))


def record_from_artwork(a: dict, website: str = WEBSITE) -> dict:
    pd_ = bool(a.get("is_public_domain"))
    return new_record(
        "aic", a["id"],
        page_url=f"{website}/artworks/{a['id']}",
        license="CC0-1.0" if pd_ else None,
        is_public_domain=pd_,
        copyright=_s(a.get("copyright_notice")),
        title=_s(a.get("title")),
        artist=_s(a.get("artist_title")) or _s((a.get("artist_display") or "").split("\n")[0]),
        country=_s(a.get("place_of_origin")),
        department=_s(a.get("department_title")),
        classification=_s(a.get("classification_title")),
        object_name=_s(a.get("artwork_type_title")),
        medium=_s(a.get("medium_display")),
        date_text=_s(a.get("date_display")),
        date_begin=a.get("date_start") if isinstance(a.get("date_start"), int) else None,
        date_end=a.get("date_end") if isinstance(a.get("date_end"), int) else None,
        dimensions=_s(a.get("dimensions")),
        tags=[a["style_title"]] if _s(a.get("style_title")) else None,
        extra=extra_json(a),
    )


def read_dump(path: str) -> dict[str, dict]:
    """The AIC data dump: a folder or tarball of JSON files (one artwork each), or a JSON-lines file."""
    p = Path(path)
    out: dict[str, dict] = {}

    def add(doc, where):
        if isinstance(doc, dict) and "data" in doc and isinstance(doc["data"], dict):
            doc = doc["data"]
        if not isinstance(doc, dict) or "id" not in doc:
            raise ArtdataError(f"--dump {where}: not an artwork record (no id)")
        out[str(doc["id"])] = doc

    try:
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                add(json.loads(f.read_text(encoding="utf-8")), f)
        elif p.is_file() and (p.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2"))):
            with tarfile.open(p) as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".json"):
                        add(json.loads(tar.extractfile(member).read()), f"{p}:{member.name}")
        elif p.is_file():
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    add(json.loads(line), f"{p}:{n}")
        else:
            raise ArtdataError(f"--dump {path}: no such file or folder")
    except (json.JSONDecodeError, UnicodeDecodeError, tarfile.TarError) as exc:
        raise ArtdataError(f"--dump {path}: unreadable ({type(exc).__name__}: {exc})") from None
    return out


@dataclass
class AicSource:
    api_base: str = DEFAULT_API
    classifications: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    public_domain_only: bool = True
    dump: str | None = None
    image_size: int = 256
    iiif_url: str | None = None         # the image server [from the API's config.iiif_url]
    name: str = "aic"

    def __post_init__(self):
        self._dump: dict[str, dict] | None = None

    def selection(self) -> dict:
        return {"api_base": self.api_base, "classifications": self.classifications, "departments": self.departments,
                "public_domain_only": self.public_domain_only, "dump": self.dump, "image_size": self.image_size}

    def _matches(self, a: dict) -> str | None:
        """None when the artwork is selected, else why not (for dump records)."""
        if self.public_domain_only and not a.get("is_public_domain"):
            return STATUS_NOT_PUBLIC_DOMAIN
        for wanted, key in ((self.classifications, "classification_title"), (self.departments, "department_title")):
            if wanted and (a.get(key) or "").lower() not in {w.lower() for w in wanted}:
                return STATUS_FILTERED
        return None

    def _query(self) -> list[tuple[str, str]]:
        q, i = [], 0
        if self.public_domain_only:
            q.append((f"query[bool][filter][{i}][term][is_public_domain]", "true"))
            i += 1
        for wanted, key in ((self.classifications, "classification_title"), (self.departments, "department_title")):
            for w in wanted:            # several values of one field: any of them (should)
                q.append((f"query[bool][filter][{i}][bool][should][][match][{key}]", w))
            if wanted:
                i += 1
        return q

    async def ids(self, client: PoliteClient) -> list[str]:
        if self.dump:
            self._dump = read_dump(self.dump)
            return sorted((k for k, a in self._dump.items() if self._matches(a) is None), key=lambda k: int(k))
        query = self._query()
        path = "/artworks/search" if query else "/artworks"
        ids: list[str] = []
        page, pages = 1, 1
        while page <= min(pages, MAX_PAGES):
            url = f"{self.api_base}{path}?" + urlencode([*query, ("fields", "id"), ("limit", PAGE_LIMIT),
                                                          ("page", page)])
            resp = await client.get(url)
            if resp.status_code != 200:
                raise ArtdataError(f"cannot list artworks: HTTP {resp.status_code} from {url}")
            body = decode_json(resp, "artwork list")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ArtdataError(f"artwork list: no data array from {url}")
            ids += [str(a["id"]) for a in body["data"] if isinstance(a, dict) and "id" in a]
            pages = int((body.get("pagination") or {}).get("total_pages") or page)
            if self.iiif_url is None:
                self.iiif_url = (body.get("config") or {}).get("iiif_url")
            page += 1
        return list(dict.fromkeys(ids))

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if self.dump and self._dump is None:       # a resumed run: ids.json was kept, the dump is read again
            self._dump = read_dump(self.dump)
        a = (self._dump or {}).get(sid)
        if a is None:
            body = await fetch_record(client, f"{self.api_base}/artworks/{sid}?fields={FIELDS}", f"artwork {sid}")
            if body is None:
                return Job(new_record("aic", sid, status=STATUS_NOT_FOUND, error="404"))
            a = body["data"]
            if self.iiif_url is None:
                self.iiif_url = (body.get("config") or {}).get("iiif_url")
        rec = record_from_artwork(a)
        why = self._matches(a)
        if why:
            rec.update(status=why, error=None if why == STATUS_NOT_PUBLIC_DOMAIN else "not in the selection")
            return Job(rec)
        if not _s(a.get("image_id")):
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        base = (self.iiif_url or DEFAULT_IIIF).rstrip("/")
        rec["image_url"] = f"{base}/{a['image_id']}/full/{image_width(a.get('thumbnail'), self.image_size)},/0/default.jpg"
        return Job(rec, [rec["image_url"]])
