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
from artdata.harvest import Job, decode_json, fetch_record
from artdata.http import PoliteClient
from artdata.records import STATUS_FILTERED, STATUS_NO_IMAGE, STATUS_NOT_FOUND, STATUS_NOT_PUBLIC_DOMAIN, \
    extra_json, new_record
from artdata.sources import integer as _int, text as _s

DEFAULT_API = "https://openaccess-api.clevelandart.org/api"
WEBSITE = "https://clevelandart.org/art"
RENDITIONS = ("web", "print", "full")      # smallest first
PAGE_LIMIT = 100
MAX_PAGES = 10_000
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
    images = a.get("images") if isinstance(a.get("images"), dict) else {}
    out = []
    for name in RENDITIONS:
        entry = images.get(name)
        if isinstance(entry, dict) and _s(entry.get("url")):
            out.append((name, entry["url"].strip(), _int(entry.get("width")), _int(entry.get("height"))))
        elif _s(a.get(f"image_{name}")):
            out.append((name, a[f"image_{name}"].strip(), None, None))
    return out


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


def record_from_artwork(a: dict, website: str = WEBSITE) -> dict:
    cc0 = (_s(a.get("share_license_status")) or "").upper() == "CC0"
    name, nationality = creator(a)
    cultures = [c for c in (_s(x) for x in _list(a.get("culture"))) if c]
    return new_record(
        "cleveland", a["id"],
        page_url=_s(a.get("url")) or (f"{website}/{a['accession_number']}" if _s(a.get("accession_number")) else None),
        license="CC0-1.0" if cc0 else _s(a.get("share_license_status")),
        is_public_domain=cc0,
        copyright=_s(a.get("copyright")),
        title=_s(a.get("title")),
        artist=name,
        artist_nationality=nationality,
        culture="|".join(cultures) or None,
        department=_s(a.get("department")),
        classification=_s(a.get("type")),
        object_name=_s(a.get("type")),
        medium=_s(a.get("technique")),
        date_text=_s(a.get("creation_date")),
        date_begin=_int(a.get("creation_date_earliest")),
        date_end=_int(a.get("creation_date_latest")),
        dimensions=_s(a.get("measurements")) if isinstance(a.get("measurements"), str) else None,
        extra=extra_json(a),
    )


def read_dump(path: str) -> dict[str, dict]:
    """The museum's bulk data: data.json (an array or {"data": [...]}), JSON lines, or data.csv."""
    p = Path(path)
    if not p.is_file():
        raise ArtdataError(f"--dump {path}: no such file")
    out: dict[str, dict] = {}

    def add(doc, where):
        if not isinstance(doc, dict) or _int(doc.get("id")) is None:
            raise ArtdataError(f"--dump {where}: not an artwork record (no id)")
        doc = dict(doc, id=_int(doc["id"]))
        out[str(doc["id"])] = doc

    try:
        with open(p, encoding="utf-8-sig", newline="" if p.suffix.lower() == ".csv" else None) as fh:
            if p.suffix.lower() == ".csv":
                reader = csv.DictReader(fh)
                if "id" not in (reader.fieldnames or []):
                    raise ArtdataError(f"--dump {path}: no id column "
                                       f"(have: {', '.join((reader.fieldnames or [])[:12])})")
                for n, row in enumerate(reader, 1):
                    add({k: (v if v != "" else None) for k, v in row.items() if k}, f"{path} row {n}")
                return out
            first = fh.readline()
            fh.seek(0)
            try:                                    # JSON lines: a whole artwork on the first line
                head = json.loads(first) if first.lstrip().startswith("{") else None
            except json.JSONDecodeError:
                head = None
            if isinstance(head, dict) and "data" not in head:
                for n, line in enumerate(fh, 1):    # read as it streams: no copy of the whole file
                    if line.strip():
                        add(json.loads(line), f"{path}:{n}")
                return out
            doc = json.load(fh)                     # data.json: an array, or {"data": [...]}, or one artwork
            if isinstance(doc, dict) and isinstance(doc.get("data"), list):
                doc = doc["data"]
            for n, d in enumerate(doc if isinstance(doc, list) else [doc]):
                add(d, f"{path}[{n}]" if isinstance(doc, list) else path)
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise ArtdataError(f"--dump {path}: unreadable ({type(exc).__name__}: {exc})") from None
    return out


@dataclass
class ClevelandSource:
    api_base: str = DEFAULT_API
    types: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    cc0_only: bool = True
    dump: str | None = None
    image_size: int = 256
    name: str = "cleveland"

    def __post_init__(self):
        self._records: dict[str, dict] = {}

    def selection(self) -> dict:
        return {"api_base": self.api_base, "types": self.types, "departments": self.departments,
                "cc0_only": self.cc0_only, "dump": self.dump, "image_size": self.image_size}

    def _matches(self, a: dict) -> str | None:
        """None when the artwork is selected, else why not."""
        if self.cc0_only and (_s(a.get("share_license_status")) or "").upper() != "CC0":
            return STATUS_NOT_PUBLIC_DOMAIN
        for wanted, key in ((self.types, "type"), (self.departments, "department")):
            if wanted and (_s(a.get(key)) or "").lower() not in {w.lower() for w in wanted}:
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
            body = decode_json(resp, "artwork list")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ArtdataError(f"artwork list: no data array from {url}")
            total = _int((body.get("info") or {}).get("total")) or 0
            for a in body["data"]:
                if isinstance(a, dict) and _int(a.get("id")) is not None:
                    self._records[str(a["id"])] = a
                    ids.append(str(a["id"]))
            if not body["data"]:
                break
            skip += len(body["data"])
            pages += 1
        return ids

    async def ids(self, client: PoliteClient) -> list[str]:
        if self.dump:
            self._records = read_dump(self.dump)
            keep = [k for k, a in self._records.items() if self._matches(a) is None and renditions(a)]
            return sorted(keep, key=int)
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
            self._records = read_dump(self.dump)
        a = self._records.get(sid)
        if a is None:
            body = await fetch_record(client, f"{self.api_base}/artworks/{sid}", f"artwork {sid}")
            if body is None:
                return Job(new_record("cleveland", sid, status=STATUS_NOT_FOUND, error="404"))
            a = body["data"]
        rec = record_from_artwork(a)
        why = self._matches(a)
        if why:
            rec.update(status=why, error=None if why == STATUS_NOT_PUBLIC_DOMAIN else "not in the selection")
            return Job(rec)
        urls = image_urls(a, self.image_size)
        if not urls:
            rec.update(status=STATUS_NO_IMAGE)
            return Job(rec)
        rec["image_url"] = urls[0]
        return Job(rec, urls, min_side=self.image_size)
