"""Any IIIF collection: Presentation manifests (v2 and v3) or collections of them -> records -> images.

For each manifest (the first canvas, or every canvas with `all_canvases`), the canvas's Image API service
(v2 or v3) is asked for the requested size, never for the full-resolution file: its info.json gives the
image's width and height (and the sizes the server has cached), so the request is `full/N,` or `full/,N`
with the shorter side at least `image_size` (a cached size at least that large when the server lists one).
When info.json cannot be read, the request is `full/!M,M` with M twice the size. A server that ignores the
size is fine: the image store resizes what comes. A canvas whose image has no Image API service (a v3 `body`
or v2 `resource` with only the `id` / `@id` of a JPEG or PNG file, the cookbook's simplest manifest) is an
image too: the file is fetched and resized here, under the same body cap and pixel guard as every image; a
canvas with no image at all is `no_image`. A manifest that answers 404 or 410 is `not_found` (and a listing
whose every URL is gone is an error). Metadata label/value pairs are kept (in `extra`) and the
usual labels (Artist, Date, Culture, Medium...) fill the schema's fields; the licence comes from `rights`
(v3) or `license` (v2), the attribution from `requiredStatement` / `attribution`.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from artdata import ArtdataError
from artdata.harvest.runner import Job
from artdata.harvest.client import FetchError, PoliteClient
from artdata.datasets.records import STATUS_NO_IMAGE, STATUS_NOT_FOUND, extra_json, new_record
from artdata.sources import FieldError, integer, json_answer, shown

MAX_DEPTH = 5              # collections inside collections
MAX_MANIFESTS = 1_000_000  # a bound on what one listing may expand to

# metadata labels (lower case) -> record fields
LABELS = {
    "artist": "artist", "creator": "artist", "maker": "artist", "author": "artist", "artist/maker": "artist",
    "date": "date_text", "dated": "date_text", "date made": "date_text", "created": "date_text",
    "culture": "culture", "nationality": "artist_nationality", "country": "country", "place": "country",
    "place of origin": "country", "medium": "medium", "technique": "medium", "materials": "medium",
    "medium/technique": "medium", "classification": "classification", "object type": "classification",
    "type": "classification", "department": "department", "dimensions": "dimensions",
    "object name": "object_name",
}
GONE = (404, 410)           # a document answering these does not exist: its record is `not_found`
PUBLIC_DOMAIN_MARKS = ("creativecommons.org/publicdomain/zero", "creativecommons.org/publicdomain/mark")


class Gone(ArtdataError):
    """A IIIF document that answered 404 or 410."""


def text(value, _depth: int = 0) -> str | None:
    """A IIIF label or value as plain text: a string, a v2 list / {"@value"} form, or a v3 language map (nested
    at most 32 deep: a deeper value is cut there, never a RecursionError)."""
    if value is None or _depth > 32:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        parts = [text(v, _depth + 1) for v in value]
        return "; ".join(p for p in parts if p) or None
    if isinstance(value, dict):
        if "@value" in value:
            return text(value["@value"], _depth + 1)
        for lang in ("en", "none", *value.keys()):
            if lang in value:
                return text(value[lang], _depth + 1)
        return None
    return str(value)


def _kind(doc: dict) -> str:
    if not isinstance(doc, dict):
        return ""
    t = doc.get("type") or doc.get("@type") or ""
    t = t[0] if isinstance(t, list) and t else t
    return str(t).split(":")[-1].lower()          # sc:Manifest -> manifest, Collection -> collection


def _id(doc: dict) -> str | None:
    v = (doc.get("id") or doc.get("@id")) if isinstance(doc, dict) else None
    return v if isinstance(v, str) else None


def _items(v) -> list:
    """A list-valued property that may be missing or malformed: the list, else [] (what it holds is checked by
    whoever reads it)."""
    return v if isinstance(v, list) else []


def _objects(v, name: str) -> list[dict]:
    """A property that must be a list of objects (a manifest's `items`, a sequence's `canvases`): the list, [] when
    missing, else a FieldError naming the property and the entry."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise FieldError(f"{name}: expected a list, got {shown(v)}")
    for i, x in enumerate(v):
        if not isinstance(x, dict):
            raise FieldError(f"{name}[{i}]: expected an object, got {shown(x)!r}")
    return v


def canvases(manifest: dict) -> list[dict]:
    if "items" in manifest:                                   # v3
        return [c for c in _objects(manifest["items"], "items") if _kind(c) == "canvas"]
    seqs = _objects(manifest.get("sequences") or None, "sequences")    # v2
    return list(_objects(seqs[0].get("canvases") or None, "sequences[0].canvases")) if seqs else []


def _resources(canvas: dict) -> list[dict]:
    """The painted resources of a canvas in order: v3 AnnotationPage -> Annotation -> body, v2 images[].resource
    (a Choice gives its default / first item)."""
    out = []
    if "items" in canvas:
        annos = [a for page in _items(canvas.get("items")) if isinstance(page, dict)
                 for a in _items(page.get("items")) if isinstance(a, dict)]
        found = [a.get("body") for a in annos]
    else:
        found = [img.get("resource") for img in _items(canvas.get("images")) if isinstance(img, dict)]
    for body in found:
        body = body[0] if isinstance(body, list) and body else body
        if isinstance(body, dict) and "choice" in str(body.get("type") or body.get("@type") or "").lower():
            body = body.get("default") or (body.get("items") or body.get("item") or [None])[0]
            body = body[0] if isinstance(body, list) and body else body
        if isinstance(body, dict):
            out.append(body)
    return out


def image_service(canvas: dict) -> tuple[str, int] | None:
    """(service base URL, Image API version) of a canvas's first image with an Image API service, or None."""
    for body in _resources(canvas):
        svc = _service(body)
        if svc:
            return svc
    return None


STATIC_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff")


def static_image(canvas: dict) -> str | None:
    """The URL of a canvas's first image that has no Image API service (a Presentation 3 `body` or 2 `resource`
    with only its `id` / `@id`: a JPEG or PNG file, as in the cookbook's simplest manifest), or None."""
    for body in _resources(canvas):
        url = _id(body)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        kind = str(body.get("type") or body.get("@type") or "").split(":")[-1].lower()
        fmt = str(body.get("format") or "").lower()
        path = url.split("?", 1)[0].split("#", 1)[0].lower()
        if kind == "image" or fmt.startswith("image/") or path.endswith(STATIC_SUFFIXES):
            return url
    return None


def _service(resource: dict) -> tuple[str, int] | None:
    services = resource.get("service") or []
    for s in services if isinstance(services, list) else [services]:
        if not isinstance(s, dict):
            continue
        sid = _id(s)
        kind = str(s.get("type") or s.get("@type") or "")
        profile = str(s.get("profile") or "")
        context = str(s.get("@context") or "")
        if not sid:
            continue
        version = 3 if ("ImageService3" in kind or "image/3" in context) else 2
        if version == 2 and not ("ImageService2" in kind or "image/2" in context or "image/2" in profile
                                 or "level" in profile or not kind):
            continue
        return sid.rstrip("/"), version
    return None


def size_request(info: dict | None, want: int) -> str:
    """The IIIF size parameter giving a shorter side of at least `want` px, without the full resolution."""
    if not info:
        return f"!{2 * want},{2 * want}"
    w, h = integer(info.get("width")), integer(info.get("height"))
    sizes = [(integer(s.get("width")), integer(s.get("height"))) for s in _items(info.get("sizes"))
             if isinstance(s, dict)]
    ok = sorted((sw, sh) for sw, sh in sizes if sw and sh and 0 < sw < 2**31 and 0 < sh < 2**31
                and min(sw, sh) >= want)
    if ok:
        return f"{ok[0][0]},"
    if not (w and h and 0 < w < 2**31 and 0 < h < 2**31):
        return f"!{2 * want},{2 * want}"
    if min(w, h) <= want:           # the image is no larger than asked: the largest the service gives
        return f"{w},"
    return f"{want}," if w <= h else f",{want}"


def image_url(service: str, version: int, size: str) -> str:
    return f"{service}/full/{size}/0/default.jpg"


def metadata_pairs(manifest: dict) -> dict[str, str]:
    out = {}
    for pair in _items(manifest.get("metadata")):
        if isinstance(pair, dict):
            k, v = text(pair.get("label")), text(pair.get("value"))
            if k and v and k not in out:
                out[k] = v
    return out


def record_from_manifest(sid: str, manifest: dict, canvas: dict | None) -> dict:
    meta = metadata_pairs(manifest)
    fields = {}
    for k, v in meta.items():
        f = LABELS.get(k.strip().lower().rstrip(":"))
        if f and f not in fields:
            fields[f] = v
    rights = text(manifest.get("rights")) or text(manifest.get("license"))
    statement = manifest.get("requiredStatement")
    attribution = text(statement.get("value")) if isinstance(statement, dict) else text(manifest.get("attribution"))
    homepage = manifest.get("homepage") or manifest.get("related")
    homepage = homepage[0] if isinstance(homepage, list) and homepage else homepage
    page = _id(homepage) if isinstance(homepage, dict) else (homepage if isinstance(homepage, str) else None)
    title = text(manifest.get("label"))
    if canvas is not None and len(canvases(manifest)) > 1 and text(canvas.get("label")):
        title = f"{title} ({text(canvas.get('label'))})" if title else text(canvas.get("label"))
    pd_ = bool(rights) and any(m in rights for m in PUBLIC_DOMAIN_MARKS)
    return new_record("iiif", sid, page_url=page, license=rights, is_public_domain=pd_ if rights else None,
                      copyright=attribution, title=title,
                      extra=extra_json({"manifest": _id(manifest), "metadata": meta,
                                        "canvas": _id(canvas) if canvas else None}), **fields)


@dataclass
class IiifSource:
    urls: list[str]                      # manifests, collections, or files listing them (one per line)
    image_size: int = 256
    all_canvases: bool = False
    name: str = "iiif"
    _docs: dict = field(default_factory=dict, repr=False)
    _gone: dict = field(default_factory=dict, repr=False)      # url -> "HTTP 404 from url"
    _bad: dict = field(default_factory=dict, repr=False)       # a listed member that cannot be read -> why
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    def selection(self) -> dict:
        return {"urls": self.urls, "image_size": self.image_size, "all_canvases": self.all_canvases}

    def user_urls(self) -> list[str]:
        """The URLs the user gave, those of listing files included: their hosts are the user's choice."""
        return self._start_urls()

    def _start_urls(self) -> list[str]:
        out = []
        for u in self.urls:
            if u.startswith(("http://", "https://")):
                out.append(u)
                continue
            p = Path(u)
            if not p.is_file():
                raise ArtdataError(f"{u}: neither an http(s) URL nor a file listing manifest URLs")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                if not line.startswith(("http://", "https://")):
                    raise ArtdataError(f"{u}:{n}: not an http(s) URL: {line[:80]!r}")
                out.append(line)
        if not out:
            raise ArtdataError("crawl iiif: give at least one manifest or collection URL")
        return out

    async def _get(self, client: PoliteClient, url: str) -> dict:
        if self._lock is None:
            self._lock = asyncio.Lock()
        if url in self._docs:
            return self._docs[url]
        if url in self._gone:
            raise Gone(self._gone[url])
        resp = await client.get(url)
        if resp.status_code in GONE:
            if len(self._gone) < 100_000:
                self._gone[url] = f"HTTP {resp.status_code} from {url}"
            raise Gone(f"HTTP {resp.status_code} from {url}")
        if resp.status_code != 200:
            raise ArtdataError(f"HTTP {resp.status_code} from {url}")
        doc = json_answer(resp, "IIIF document")
        if not isinstance(doc, dict):
            raise ArtdataError(f"IIIF document: not a JSON object from {url}")
        if len(self._docs) < 10_000:
            self._docs[url] = doc
        return doc

    async def ids(self, client: PoliteClient) -> list[str]:
        ids: list[str] = []
        seen: set[str] = set()
        gone: list[Gone] = []

        async def walk(url: str, depth: int):
            if url in seen or len(ids) >= MAX_MANIFESTS:
                return
            seen.add(url)
            try:
                doc = await self._get(client, url)
            except Gone as exc:         # listed but gone: a not_found record (unless nothing else is listed)
                gone.append(exc)
                ids.append(url)
                return
            kind = _kind(doc)
            if kind == "collection":
                if depth >= MAX_DEPTH:
                    raise ArtdataError(f"{url}: collections nested deeper than {MAX_DEPTH}")
                members = [m for key in ("items", "manifests", "collections", "members") for m in _items(doc.get(key))]
                for i, m in enumerate(members):
                    mid = _id(m) if isinstance(m, dict) else m
                    if not isinstance(mid, str) or not mid.startswith(("http://", "https://")):
                        key = f"{url}#member={i}"       # one malformed member: a failed record naming it
                        self._bad[key] = (f"{url}: member {i} of the collection has no http(s) id "
                                          f"({shown(mid if mid is not None else m)!r})")
                        ids.append(key)
                        continue
                    if isinstance(m, dict) and _kind(m) == "manifest":
                        if mid not in seen:
                            seen.add(mid)
                            await self._add_manifest(client, mid, ids)
                    else:
                        try:
                            await walk(mid, depth + 1)
                        except ArtdataError as exc:     # a listed collection that cannot be read: its record
                            self._bad[mid] = str(exc)   # says why, the rest is harvested
                            ids.append(mid)
            elif kind == "manifest":
                await self._add_manifest(client, url, ids, doc)
            else:
                raise ArtdataError(f"{url}: a IIIF {kind or 'document'} is neither a Manifest nor a Collection")

        for u in self._start_urls():
            await walk(u, 0)
        if gone and len(gone) == len(ids):      # every URL given or listed is gone: say so, leave nothing behind
            raise gone[0]
        return ids

    async def _add_manifest(self, client, url: str, ids: list[str], doc: dict | None = None) -> None:
        if not self.all_canvases:
            ids.append(url)
            return
        if doc is None:
            try:
                doc = await self._get(client, url)
            except (ArtdataError, FetchError):      # gone or unreadable: its record says so (not_found / failed)
                ids.append(url)
                return
        try:
            n = len(canvases(doc))
        except ArtdataError:            # a malformed manifest: its record names the field
            n = 1
        ids.extend(url if i == 0 else f"{url}#canvas={i}" for i in range(max(1, n)))

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        if "#member=" in sid:           # a resumed run's stand-in for a malformed collection member
            raise ArtdataError(f"{sid.partition('#member=')[0]}: a member of the collection has no http(s) id")
        url, _, frag = sid.partition("#canvas=")
        if frag and not frag.isdigit():
            raise ArtdataError(f"{sid}: not a canvas number")
        index = int(frag) if frag else 0
        try:
            manifest = await self._get(client, url)
        except Gone as exc:
            return Job(new_record("iiif", sid, status=STATUS_NOT_FOUND, error=str(exc)))
        if _kind(manifest) not in ("manifest", ""):
            raise ArtdataError(f"{url}: a IIIF {_kind(manifest)} is not a Manifest")
        items = canvases(manifest)
        canvas = items[index] if index < len(items) else None
        rec = record_from_manifest(sid, manifest, canvas)
        svc = image_service(canvas) if canvas else None
        if svc is None:
            static = static_image(canvas) if canvas else None
            if static:              # a plain image file: fetched whole, checked and resized here like any image
                rec["image_url"] = static
                return Job(rec, [static])
            rec.update(status=STATUS_NO_IMAGE, error="no image on the canvas" if canvas else "no canvas")
            return Job(rec)
        service, version = svc
        info = None
        try:
            resp = await client.get(f"{service}/info.json")
            if resp.status_code == 200:
                info = json_answer(resp, "info.json")
        except (ArtdataError, FetchError, httpx.HTTPError):
            info = None          # an unreadable info.json (a redirect loop too): a fitted request instead
        if not isinstance(info, dict):
            info = None
        rec["image_url"] = image_url(service, version, size_request(info, self.image_size))
        return Job(rec, [rec["image_url"]])
