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
import lzma
import math
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlencode

from artdata import ArtdataError
from artdata.harvest.runner import Job, fetch_record
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import STATUS_FILTERED, STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN, \
    extra_json, new_record
from artdata.sources import Dump, boolean, capped_lines, check_file, http_url, id_order, int32, integer, \
    json_answer, loads, parse_bytes, read_capped, record_id, shown, text as _s, too_large

DEFAULT_API = "https://api.artic.edu/api/v1"
DEFAULT_IIIF = "https://www.artic.edu/iiif/2"
WEBSITE = "https://www.artic.edu"
AIC_WIDTH = 843           # the image width the museum asks IIIF clients to use (or smaller)
PAGE_LIMIT = 100
MAX_PAGES = 10_000
# the largest dump member (one artwork's JSON file, or one line of a JSON-lines dump) read, decompressed: the
# museum's are a few kB (json/artworks/11.json: 5 kB); --max-member-bytes raises it
DEFAULT_MAX_MEMBER_BYTES = 64 * 2**20
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
    if not (isinstance(w, (int, float)) and isinstance(h, (int, float)) and not isinstance(w, bool)
            and not isinstance(h, bool) and w > 0 and h > 0 and math.isfinite(image_size * w / h)):
        return AIC_WIDTH
    need = image_size if w <= h else math.ceil(image_size * w / h)
    return min(AIC_WIDTH, max(1, need))


def config_iiif_url(body) -> str | None:
    """The image server an API answer names (`config.iiif_url`), when it is an http(s) URL."""
    config = body.get("config") if isinstance(body, dict) else None
    try:
        return http_url(config.get("iiif_url"), "config.iiif_url") if isinstance(config, dict) else None
    except ArtdataError:
        return None


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


def record_from_artwork(a: dict, website: str = WEBSITE, sid: str | None = None) -> dict:
    """One artwork's record; a value of the wrong type is coerced (a number as text) or a FieldError naming the
    field (an object where text is expected)."""
    sid = sid or record_id(a.get("id"))
    if sid is None:
        raise ArtdataError(f"artwork id {shown(a.get('id'))!r}: not a number")
    pd_ = boolean(a.get("is_public_domain")) is True
    artist_display = _s(a.get("artist_display"), "artist_display")
    style = _s(a.get("style_title"), "style_title")
    return new_record(
        "aic", sid,
        page_url=f"{website}/artworks/{sid}",
        license="CC0-1.0" if pd_ else None,
        is_public_domain=pd_,
        copyright=_s(a.get("copyright_notice"), "copyright_notice"),
        title=_s(a.get("title"), "title"),
        artist=_s(a.get("artist_title"), "artist_title") or (_s(artist_display.split("\n")[0]) if artist_display
                                                             else None),
        country=_s(a.get("place_of_origin"), "place_of_origin"),
        department=_s(a.get("department_title"), "department_title"),
        classification=_s(a.get("classification_title"), "classification_title"),
        object_name=_s(a.get("artwork_type_title"), "artwork_type_title"),
        medium=_s(a.get("medium_display"), "medium_display"),
        date_text=_s(a.get("date_display"), "date_display"),
        date_begin=int32(a.get("date_start")) if isinstance(a.get("date_start"), int) else None,
        date_end=int32(a.get("date_end")) if isinstance(a.get("date_end"), int) else None,
        dimensions=_s(a.get("dimensions"), "dimensions"),
        tags=[style] if style else None,
        extra=extra_json(a),
    )


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


class _Member(tarfile.TarInfo):
    """A tar member whose reader notes an archive that ends without its end marker (tarfile takes a header cut
    off at a member's boundary for the end of the archive, silently)."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError):
            tar.cut_short = True
            raise


def _other_model(name: str) -> bool:
    """A file of the museum's dump that holds another kind of record (json/agents/2.json, json/places/...)."""
    parts = PurePosixPath(name).parts[:-1]
    if "json" not in parts:
        return False
    i = len(parts) - 1 - parts[::-1].index("json")
    return i + 1 < len(parts) and parts[i + 1] != "artworks"


def read_dump(path: str, max_bytes: int = DEFAULT_MAX_MEMBER_BYTES, keep=None) -> Dump:
    """The AIC data dump: a folder or tarball of JSON files (one artwork each), or a JSON-lines file. Every file,
    member and line is read as a stream under `max_bytes` (decompressed); one over it is an error naming it. A
    malformed entry (not JSON, nested too deeply, no id, an id that is no number) is kept in `bad`; records of
    other kinds (agents, places) are passed over; `keep(artwork)` False leaves an artwork out (not held in
    memory). A dump without one readable artwork is an error naming its first entry."""
    p = Path(path)
    out = Dump({}, {})

    def add(raw, where: str, key: str):
        try:
            doc = loads(raw, f"--dump {where}")
            if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
                doc = doc["data"]
            if not isinstance(doc, dict) or doc.get("id") is None:
                raise ArtdataError(f"--dump {where}: not an artwork record (no id)")
            if isinstance(doc.get("api_model"), str) and doc["api_model"] != "artworks":
                return
            sid = record_id(doc["id"])
            if sid is None:
                key = shown(doc["id"], 40) if isinstance(doc["id"], (str, int, float)) and shown(doc["id"]).strip() \
                    else key
                raise ArtdataError(f"--dump {where}: artwork id {shown(doc['id'])!r} is not a number")
            out.readable += 1
            if keep is not None:
                try:
                    if not keep(doc):
                        return
                except ArtdataError as exc:
                    raise ArtdataError(f"--dump {where}: artwork {sid}: {exc}") from None
            out.records[sid] = doc
        except ArtdataError as exc:
            out.add_bad(key, str(exc))

    if p.is_dir():
        for f in sorted(p.rglob("*.json")):
            rel = f.relative_to(p).as_posix()
            if _other_model(rel) or not f.is_file():
                continue
            check_file(f, max_bytes, f"--dump {f}")
            with open(f, "rb") as fh:
                add(read_capped(fh, max_bytes, f"--dump {f}"), str(f), rel)
    elif p.is_file() and (p.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))):
        n = 0
        try:
            with tarfile.open(p, "r|*", tarinfo=_Member) as tar:    # a stream: in order, each under the cap
                for member in tar:
                    n += 1
                    if not (member.isfile() and member.name.endswith(".json")) or _other_model(member.name):
                        continue
                    where = f"{p}:{member.name}"
                    if member.size > max_bytes:
                        raise too_large(f"--dump {where}", max_bytes, member.size)
                    add(read_capped(tar.extractfile(member), max_bytes, f"--dump {where}"), where, member.name)
                if getattr(tar, "cut_short", False):
                    raise tarfile.ReadError("the archive ends before its end marker")
        except _ARCHIVE_ERRORS as exc:
            raise ArtdataError(f"--dump {path}: truncated or damaged archive, after {n} members "
                               f"({type(exc).__name__}: {exc})") from None
    elif p.is_file():
        with open(p, "rb") as fh:
            for n, line in capped_lines(fh, max_bytes, f"--dump {p}"):
                if line.strip():
                    add(line, f"{p}:{n}", f"{p.name}:{n}")
    else:
        raise ArtdataError(f"--dump {path}: no such file or folder")
    return out.check()


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
    # the largest dump member or line read (decompressed) (a count of bytes, or text such as 2GiB)
    max_member_bytes: int | str | None = DEFAULT_MAX_MEMBER_BYTES
    name: str = "aic"

    def __post_init__(self):
        self.max_member_bytes = parse_bytes(self.max_member_bytes, DEFAULT_MAX_MEMBER_BYTES)
        self._dump: dict[str, dict] | None = None
        self._bad: dict[str, str] = {}      # stand-in id of a malformed entry -> why (a failed record naming it)

    def _read_dump(self) -> None:
        d = read_dump(self.dump, self.max_member_bytes, keep=lambda a: self._matches(a) is None)
        self._dump, self._bad = d.records, {**self._bad, **d.bad}

    def selection(self) -> dict:
        return {"api_base": self.api_base, "classifications": self.classifications, "departments": self.departments,
                "public_domain_only": self.public_domain_only, "dump": self.dump, "image_size": self.image_size}

    def _matches(self, a: dict) -> str | None:
        """None when the artwork is selected, else why not (for dump records)."""
        if self.public_domain_only and boolean(a.get("is_public_domain")) is not True:
            return STATUS_NOT_PUBLIC_DOMAIN
        for wanted, key in ((self.classifications, "classification_title"), (self.departments, "department_title")):
            if wanted and (_s(a.get(key), key) or "").lower() not in {w.lower() for w in wanted}:
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
            self._read_dump()
            return sorted([*self._dump, *(k for k in self._bad if k not in self._dump)], key=id_order)
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
            body = json_answer(resp, "artwork list")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ArtdataError(f"artwork list: no data array from {url}")
            for a in body["data"]:
                if isinstance(a, dict) and a.get("id") is not None:
                    sid = record_id(a["id"])
                    if sid is None:         # one malformed id: a failed record naming it, the listing goes on
                        sid = shown(a["id"], 40)
                        self._bad[sid] = f"artwork list: artwork id {sid!r} is not a number ({url})"
                    ids.append(sid)
            pagination = body.get("pagination")
            pages = (integer(pagination.get("total_pages")) if isinstance(pagination, dict) else None) or page
            if self.iiif_url is None:
                self.iiif_url = config_iiif_url(body)
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
                body = json_answer(resp, "artwork search")
                data = body.get("data") if isinstance(body, dict) else None
                pagination = body.get("pagination") if isinstance(body, dict) else None
                part = integer(pagination.get("total")) if isinstance(pagination, dict) else None
                if not isinstance(data, list) or part is None or part < 0:
                    raise ArtdataError(f"artwork search: no data array or pagination.total from {url}")
                if total is None:
                    total = part
                if self.iiif_url is None:
                    self.iiif_url = config_iiif_url(body)
                for a in data:
                    if not isinstance(a, dict) or a.get("id") is None:
                        continue
                    sid = record_id(a["id"])
                    if sid is None:             # one malformed id: a failed record naming it, the listing goes on
                        sid = shown(a["id"], 40)
                        self._bad[sid] = f"artwork search: artwork id {sid!r} is not a number ({url})"
                    else:
                        after = int(sid) if after is None else max(after, int(sid))
                    if sid not in seen:
                        seen.add(sid)
                        ids.append(sid)
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
            self._read_dump()
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        a = (self._dump or {}).get(sid)
        if a is None:
            if record_id(sid) != sid:               # never an id that is no number in a request's path
                raise ArtdataError(f"artwork id {sid!r} is not a number")
            body = await fetch_record(client, f"{self.api_base}/artworks/{sid}?fields={FIELDS}", f"artwork {sid}")
            if body is None:
                return Job(new_record("aic", sid, status=STATUS_NOT_FOUND, error="404"))
            a = body["data"]
            if self.iiif_url is None:
                self.iiif_url = config_iiif_url(body)
        rec = record_from_artwork(a, sid=sid)
        why = self._matches(a)
        if why:
            rec.update(status=why, error=None if why == STATUS_NOT_PUBLIC_DOMAIN else "not in the selection")
            return Job(rec)
        image_id = _s(a.get("image_id"), "image_id")
        if not image_id:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        base = (self.iiif_url or DEFAULT_IIIF).rstrip("/")
        width = image_width(a.get("thumbnail"), self.image_size)
        rec["image_url"] = f"{base}/{quote(image_id, safe='')}/full/{width},/0/default.jpg"
        return Job(rec, [rec["image_url"]])
