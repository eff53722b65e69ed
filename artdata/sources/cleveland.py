"""The Cleveland Museum of Art: its Open Access API (or its bulk data.json / data.csv) -> records -> images.

Selection: `/artworks/` pages (`cc0`, `has_image`, `type`, `department`, `limit`, `skip`; the answer is
`{"info": {"total", "parameters"}, "data": [...]}` with whole records, so a fresh harvest needs no request per
artwork), or the bulk file of the museum's open-access repository (`--dump`: data.json, a JSON array or
`{"data": [...]}`, JSON lines, or data.csv), filtered locally with the same rules. A resumed harvest asks
`/artworks/{id}` for the artworks it has not done yet. Each record carries `images.web`, `images.print`
and `images.full` (url, width, height): the smallest whose shorter side is at least `image_size` is fetched,
the larger ones follow as fallbacks; without sizes (data.csv has URLs only) they are tried from the smallest
up until one is large enough. Data and images of `share_license_status` "CC0" records are CC0.
"""
from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from artdata import ArtdataError
from artdata.harvest.runner import Job, fetch_record
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import STATUS_FILTERED, STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN, \
    extra_json, new_record
from artdata.sources import RECORD_CAP, Dump, FieldError, capped_lines, check_file, http_url, id_order, int32, integer as _int, \
    json_answer, loads, parse_bytes, record_id, shown, text as _s

DEFAULT_API = "https://openaccess-api.clevelandart.org/api"
WEBSITE = "https://clevelandart.org/art"
RENDITIONS = ("web", "print", "full")      # smallest first
PAGE_LIMIT = 100
MAX_PAGES = 10_000
# the largest file parsed whole (data.json), or line / row of a streamed one (JSON lines, data.csv), decompressed:
# the museum's data.json is about 1 GB for its 61,000 records; --max-member-bytes raises it
DEFAULT_MAX_MEMBER_BYTES = 2 * 2**30
_LAST_PAREN = re.compile(r"\s+\(([^()]*)\)\s*$")     # a trailing "(...)" set apart by a space, not "artist(s)"


def _list(v) -> list:
    """A list field as the API gives it, or as data.csv flattens it (a JSON or Python list literal, or text)."""
    if v is None or isinstance(v, list):
        return v or []
    s = _s(v)
    if s is None:
        return []
    if s[0] in "[{":
        for parse in (json.loads, ast.literal_eval):
            try:
                out = parse(s)
                return out if isinstance(out, list) else [out]
            except (ValueError, SyntaxError, RecursionError):
                continue
    return [s]


def creator(a: dict) -> tuple[str | None, str | None]:
    """(name, nationality) of the first creator, from its description: "Claude Monet (French, 1840-1926)" ->
    ("Claude Monet", "French"); the last parenthesis holds nationality and dates ("Giovanni di Paolo (Giovanni di
    Paolo di Grazia) (Italian, 1398-1482)"). The nationality is taken only from a trailing parenthesis that looks
    like one (see `_nationality`): "Unknown (1700s)" and "Tiwanaku artist(s)" have none."""
    for c in _list(a.get("creators")):
        desc = _s(c.get("description")) if isinstance(c, dict) else _s(c)
        if not desc:
            continue
        hit = _LAST_PAREN.search(desc)
        if not hit:
            return desc, None
        return desc[: hit.start()].strip() or None, _nationality(hit.group(1))
    return None, None


def _nationality(group: str) -> str | None:
    """The nationality of a creator's "(Nationality, dates)" group: its first comma part when that is one to four
    capitalised words of letters ("French", "Native American", "Dutch/Flemish"); a group without a comma only
    when it is one such word ("(Japanese)", not "(Domenikos Theotokopoulos)"); else None ("(1700s)")."""
    parts = group.split(",")
    words = parts[0].split()
    if not 1 <= len(words) <= (4 if len(parts) > 1 else 1):
        return None
    if all(w[0].isupper() and all(ch.isalpha() or ch in "-'’./" for ch in w) for w in words):
        return " ".join(words)
    return None


def renditions(a: dict) -> list[tuple[str, str, int | None, int | None]]:
    """[(name, url, width, height)] of web / print / full, smallest first (data.csv: image_web... URLs only)."""
    images = a.get("images")
    if images is not None and not isinstance(images, (dict, str)):     # data.csv may carry it as text: unused
        raise FieldError(f"images: expected an object, got {shown(images)}")
    images = images if isinstance(images, dict) else {}
    out = []
    for name in RENDITIONS:
        entry = images.get(name)
        if entry is not None and not isinstance(entry, dict):
            raise FieldError(f"images.{name}: expected an object, got {shown(entry)}")
        url = _s(entry.get("url"), f"images.{name}.url") if entry else None
        if url:
            out.append((name, url, _int(entry.get("width")), _int(entry.get("height"))))
        elif _s(a.get(f"image_{name}"), f"image_{name}"):
            out.append((name, _s(a.get(f"image_{name}")), None, None))
    return out


def checked_urls(a: dict, image_size: int) -> list[str]:
    """image_urls(a), each an http(s) URL, else a FieldError naming the field it came from."""
    where = {r[1]: f"images.{r[0]}.url" if isinstance(a.get("images"), dict) and a["images"].get(r[0]) else
             f"image_{r[0]}" for r in renditions(a)}
    return [http_url(u, where.get(u, "images")) for u in image_urls(a, image_size)]


def image_urls(a: dict, image_size: int) -> list[str]:
    """The smallest rendition whose shorter side is at least `image_size`, then the larger ones as fallbacks.
    Renditions without sizes keep the web < print < full order (the harvest moves on while one is too small)."""
    rs = renditions(a)
    sized = [r for r in rs if r[2] and r[3]]
    if len(sized) == len(rs) and rs:
        rs = sorted(rs, key=lambda r: min(r[2], r[3]))
        first = next((i for i, r in enumerate(rs) if min(r[2], r[3]) >= image_size), len(rs) - 1)
        rs = rs[first:]
    return [r[1] for r in rs]


def record_from_artwork(a: dict, website: str = WEBSITE, sid: str | None = None) -> dict:
    """One artwork's record; a value of the wrong type is coerced (a number as text) or a FieldError naming the
    field (an object where text is expected)."""
    sid = sid or record_id(a.get("id"))
    if sid is None:
        raise ArtdataError(f"artwork id {shown(a.get('id'))!r}: not a number")
    license_ = _s(a.get("share_license_status"), "share_license_status")
    cc0 = (license_ or "").upper() == "CC0"
    name, nationality = creator(a)
    cultures = [c for c in (_s(x, "culture") for x in _list(a.get("culture"))) if c]
    accession = _s(a.get("accession_number"), "accession_number")
    return new_record(
        "cleveland", sid,
        page_url=_s(a.get("url"), "url") or (f"{website}/{accession}" if accession else None),
        license="CC0-1.0" if cc0 else license_,
        is_public_domain=cc0,
        copyright=_s(a.get("copyright"), "copyright"),
        title=_s(a.get("title"), "title"),
        artist=name,
        artist_nationality=nationality,
        culture="|".join(cultures) or None,
        department=_s(a.get("department"), "department"),
        classification=_s(a.get("type"), "type"),
        object_name=_s(a.get("type"), "type"),
        medium=_s(a.get("technique"), "technique"),
        date_text=_s(a.get("creation_date"), "creation_date"),
        date_begin=int32(a.get("creation_date_earliest")),
        date_end=int32(a.get("creation_date_latest")),
        dimensions=_s(a.get("measurements")) if isinstance(a.get("measurements"), str) else None,
        extra=extra_json(a),
    )


def read_dump(path: str, max_bytes: int = DEFAULT_MAX_MEMBER_BYTES, keep=None) -> Dump:
    """The museum's bulk data: data.json (an array or {"data": [...]}), JSON lines, or data.csv. data.json is
    parsed whole, so it is refused above `max_bytes`; JSON lines and data.csv are read as they stream, a line or
    row above it refused. A malformed entry (not JSON, not an object, no id or one that is no number) is kept in
    `bad` (a failed record naming it); a CSV that cannot be parsed (an unterminated quote) is an error naming the
    line its row starts on. `keep(artwork)` False leaves an artwork out (not held in memory)."""
    p = Path(path)
    if not p.is_file():
        raise ArtdataError(f"--dump {path}: no such file")
    out = Dump({}, {})

    def add(doc, where: str, key: str):
        try:
            if not isinstance(doc, dict) or doc.get("id") is None:
                raise ArtdataError(f"--dump {where}: not an artwork record (no id)")
            sid = record_id(doc["id"])
            if sid is None:
                if isinstance(doc["id"], (str, int, float)) and shown(doc["id"]).strip():
                    key = shown(doc["id"], 40)
                raise ArtdataError(f"--dump {where}: artwork id {shown(doc['id'])!r} is not a number")
            out.readable += 1
            doc = dict(doc, id=int(sid))
            try:
                if keep is not None and not keep(doc):
                    return
            except ArtdataError as exc:
                raise ArtdataError(f"--dump {where}: artwork {sid}: {exc}") from None
            out.records[sid] = doc
        except ArtdataError as exc:
            out.add_bad(key, str(exc))

    if p.suffix.lower() == ".csv":
        with open(p, encoding="utf-8-sig", newline="", errors="replace") as fh:
            lines = (line for _, line in capped_lines(fh, max_bytes, f"--dump {path}"))
            reader = csv.DictReader(lines, strict=True)
            start = 1
            try:
                if "id" not in (reader.fieldnames or []):
                    raise ArtdataError(f"--dump {path}: no id column "
                                       f"(have: {', '.join(map(shown, (reader.fieldnames or [])[:12]))})")
                n = 0
                while True:
                    start = reader.line_num + 1     # the line this row starts on
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    n += 1
                    add({k: (v if v != "" else None) for k, v in row.items() if k and isinstance(v, str)},
                        f"{path} row {n} (line {start})", f"row {n}")
            except csv.Error as exc:
                hint = " (an unterminated quote?)" if "end of data" in str(exc) or "field limit" in str(exc) else ""
                raise ArtdataError(f"--dump {path}: cannot parse the CSV row starting on line {start}: {exc}{hint}") \
                    from None
        return out.check()
    with open(p, "rb") as fh:
        first = fh.readline(min(max_bytes, RECORD_CAP) + 1)
        fh.seek(0)
        try:                                    # JSON lines: a whole artwork on the first line
            head = json.loads(first) if first.lstrip().startswith(b"{") and first.endswith(b"\n") else None
        except (ValueError, RecursionError):
            head = None
        if isinstance(head, dict) and "data" not in head:
            for n, line in capped_lines(fh, max_bytes, f"--dump {path}"):   # read as it streams: no whole copy
                if line.strip():
                    try:
                        doc = loads(line, f"--dump {path}:{n}")
                    except ArtdataError as exc:
                        out.add_bad(f"{p.name}:{n}", str(exc))
                        continue
                    add(doc, f"{path}:{n}", f"{p.name}:{n}")
            return out.check()
        check_file(p, max_bytes, f"--dump {path}")      # data.json is parsed whole: refused above the cap
        try:
            doc = json.load(fh)                     # data.json: an array, or {"data": [...]}, or one artwork
        except RecursionError:
            raise ArtdataError(f"--dump {path}: unreadable (JSON nested too deeply)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtdataError(f"--dump {path}: unreadable ({type(exc).__name__}: {exc})") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    for n, d in enumerate(doc if isinstance(doc, list) else [doc]):
        add(d, f"{path}[{n}]" if isinstance(doc, list) else path, f"[{n}]")
    return out.check()


@dataclass
class ClevelandSource:
    api_base: str = DEFAULT_API
    types: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    cc0_only: bool = True
    dump: str | None = None
    image_size: int = 256
    # the largest dump file parsed whole, or line / row read (a count of bytes, or text such as 2GiB)
    max_member_bytes: int | str | None = DEFAULT_MAX_MEMBER_BYTES
    name: str = "cleveland"

    def __post_init__(self):
        self.max_member_bytes = parse_bytes(self.max_member_bytes, DEFAULT_MAX_MEMBER_BYTES)
        self._records: dict[str, dict] = {}
        self._bad: dict[str, str] = {}      # stand-in id of a malformed entry -> why (a failed record naming it)

    def _read_dump(self) -> None:
        d = read_dump(self.dump, self.max_member_bytes,
                      keep=lambda a: self._matches(a) is None and bool(renditions(a)))
        self._records, self._bad = d.records, {**self._bad, **d.bad}

    def selection(self) -> dict:
        return {"api_base": self.api_base, "types": self.types, "departments": self.departments,
                "cc0_only": self.cc0_only, "dump": self.dump, "image_size": self.image_size}

    def _matches(self, a: dict) -> str | None:
        """None when the artwork is selected, else why not."""
        if self.cc0_only and (_s(a.get("share_license_status"), "share_license_status") or "").upper() != "CC0":
            return STATUS_NOT_PUBLIC_DOMAIN
        for wanted, key in ((self.types, "type"), (self.departments, "department")):
            if wanted and (_s(a.get(key), key) or "").lower() not in {w.lower() for w in wanted}:
                return STATUS_FILTERED
        return None

    async def _list(self, client: PoliteClient, params: list[tuple[str, str]]) -> list[str]:
        ids: list[str] = []
        skip, total, pages = 0, None, 0
        while (total is None or skip < total) and pages < MAX_PAGES:
            url = f"{self.api_base}/artworks/?" + urlencode([*params, ("limit", PAGE_LIMIT), ("skip", skip)])
            resp = await client.get(url)
            if resp.status_code != 200:
                raise ArtdataError(f"cannot list artworks: HTTP {resp.status_code} from {url}")
            body = json_answer(resp, "artwork list")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ArtdataError(f"artwork list: no data array from {url}")
            info = body.get("info")
            total = (_int(info.get("total")) if isinstance(info, dict) else None) or 0
            for a in body["data"]:
                if isinstance(a, dict) and a.get("id") is not None:
                    sid = record_id(a["id"])
                    if sid is None:         # one malformed id: a failed record naming it, the listing goes on
                        sid = shown(a["id"], 40)
                        self._bad[sid] = f"artwork list: artwork id {sid!r} is not a number ({url})"
                    else:
                        self._records[sid] = a
                    ids.append(sid)
            if not body["data"]:
                break
            skip += len(body["data"])
            pages += 1
        return ids

    async def ids(self, client: PoliteClient) -> list[str]:
        if self.dump:
            self._read_dump()
            return sorted([*self._records, *(k for k in self._bad if k not in self._records)], key=id_order)
        base = [("cc0", "1")] if self.cc0_only else []
        base.append(("has_image", "1"))
        ids: list[str] = []
        for t in self.types or [None]:              # the API takes one type and one department per request
            for d in self.departments or [None]:
                params = base + ([("type", t)] if t else []) + ([("department", d)] if d else [])
                ids += await self._list(client, params)
        return list(dict.fromkeys(ids))

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if self.dump and not self._records:         # a resumed run: ids.json was kept, the dump is read again
            self._read_dump()
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        a = self._records.get(sid)
        if a is None:
            if record_id(sid) != sid:               # never an id that is no number in a request's path
                raise ArtdataError(f"artwork id {sid!r} is not a number")
            body = await fetch_record(client, f"{self.api_base}/artworks/{sid}", f"artwork {sid}")
            if body is None:
                return Job(new_record("cleveland", sid, status=STATUS_NOT_FOUND, error="404"))
            a = body["data"]
        rec = record_from_artwork(a, sid=sid)
        why = self._matches(a)
        if why:
            rec.update(status=why, error=None if why == STATUS_NOT_PUBLIC_DOMAIN else "not in the selection")
            return Job(rec)
        urls = checked_urls(a, self.image_size)
        if not urls:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        rec["image_url"] = urls[0]
        return Job(rec, urls, min_side=self.image_size)
