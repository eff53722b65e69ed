"""The Art Institute of Chicago: its public API (or its JSON data dump) -> records -> IIIF images.

Selection: `/artworks` pages (`page`, `limit` up to 100, `fields=id`), or `/artworks/search` with an
Elasticsearch query in the query string (a term on `is_public_domain`, matches on `classification_title`
and `department_title`) when a filter is given. The search answers at most 1,000 results per query (from + size;
past it HTTP 403 "Invalid number of results", which is no block), so the selection is listed sorted by id in
windows, each query asking ids above the last one listed, until the museum's `pagination.total` is reached (a
count short of it is an error, never a silently smaller selection). Or the published data dump (`--dump`: a
folder or a tarball of
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
SEARCH_WINDOW = 1000      # from + size one search may reach for an anonymous client (the museum's max_resources_guest)
TOO_MANY_RESULTS = "Invalid number of results"     # the error of the 403 the search answers past its window
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


def _past_window(resp) -> bool:
    """The search's answer to a page past its window: HTTP 403 with a JSON body whose error is "Invalid number of
    results" (a refusal of the query, not a block: the host is not paused)."""
    if resp.status_code != 403 or "html" in resp.headers.get("content-type", ""):
        return False
    try:
        body = json.loads(resp.content)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("error") == TOO_MANY_RESULTS


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
    search_window: int = SEARCH_WINDOW  # results one search may reach (a 403 "Invalid number of results" lowers it)
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
        if query:
            return await self._search_ids(client, query)
        ids: list[str] = []                 # the listing (no filter) has no window: its pages go as deep as needed
        page, pages = 1, 1
        while page <= min(pages, MAX_PAGES):
            url = f"{self.api_base}/artworks?" + urlencode([("fields", "id"), ("limit", PAGE_LIMIT), ("page", page)])
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

    async def _search_ids(self, client: PoliteClient, query: list[tuple[str, str]]) -> list[str]:
        """Every id the search selects, past its window: sorted by id, each query asks the ids above the last one
        listed (`query[bool][filter][N][range][id][gt]`) and is paged only while from + size stays within the
        window. A 403 "Invalid number of results" says the window is smaller than thought: it is lowered (to the
        offset reached, or a smaller page when even the first page was refused) and the listing goes on. The
        count is checked against the `pagination.total` of the first query."""
        window = max(1, int(self.search_window))
        limit = min(PAGE_LIMIT, window)
        n_filters = 1 + max(int(k.split("[")[3].rstrip("]")) for k, _ in query)
        ids: list[str] = []
        seen: set[str] = set()
        total: int | None = None            # the whole selection, as the museum counts it
        after: int | None = None            # the largest id listed so far
        requests = 0
        while True:
            rng = [] if after is None else [(f"query[bool][filter][{n_filters}][range][id][gt]", str(after))]
            page, start = 1, after
            while True:
                requests += 1
                if requests > MAX_PAGES:
                    raise ArtdataError(f"artwork search: still listing after {MAX_PAGES} requests "
                                       f"({len(ids)} of {total} ids) from {self.api_base}/artworks/search")
                url = f"{self.api_base}/artworks/search?" + urlencode(
                    [*query, *rng, ("sort[0][id]", "asc"), ("fields", "id"), ("limit", limit), ("page", page)])
                resp = await client.get(url)
                if _past_window(resp):
                    if page > 1:                # the window ends where this page starts: next query from `after`
                        window = (page - 1) * limit
                        break
                    if limit == 1:
                        raise ArtdataError(f"artwork search: the museum refuses even one result "
                                           f"(HTTP 403 {TOO_MANY_RESULTS!r}) from {url}")
                    window = limit = max(1, limit // 2)
                    continue
                if resp.status_code != 200:
                    raise ArtdataError(f"cannot list artworks: HTTP {resp.status_code} from {url}")
                body = decode_json(resp, "artwork search")
                data = body.get("data") if isinstance(body, dict) else None
                pagination = body.get("pagination") if isinstance(body, dict) else None
                part = pagination.get("total") if isinstance(pagination, dict) else None
                if not isinstance(data, list) or not isinstance(part, int) or isinstance(part, bool) or part < 0:
                    raise ArtdataError(f"artwork search: no data array or pagination.total from {url}")
                if total is None:
                    total = part
                if self.iiif_url is None:
                    self.iiif_url = (body.get("config") or {}).get("iiif_url")
                for a in data:
                    if not isinstance(a, dict) or a.get("id") is None:
                        continue
                    oid = a["id"]
                    if isinstance(oid, str) and oid.strip().isdigit():
                        oid = int(oid)
                    if not isinstance(oid, int) or isinstance(oid, bool):
                        raise ArtdataError(f"artwork search: artwork id {oid!r} is not a number ({url})")
                    after = oid if after is None else max(after, oid)
                    if str(oid) not in seen:
                        seen.add(str(oid))
                        ids.append(str(oid))
                if not data or page * limit >= part:        # this query is exhausted: the selection is listed
                    return self._checked(ids, total, url)
                if (page + 1) * limit > window:             # the next page would pass the window
                    break
                page += 1
            if after == start:
                raise ArtdataError(f"artwork search: a whole window brought no id above {start} "
                                   f"(sort or range ignored?) from {url}")

    def _checked(self, ids: list[str], total: int | None, url: str) -> list[str]:
        if total is not None and len(ids) < total:
            raise ArtdataError(f"artwork search: listed {len(ids)} artworks but the museum counts {total} "
                               f"(the collection changed while listing? run again) from {url}")
        return ids

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
