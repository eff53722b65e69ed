"""The mirror's Cleveland Museum of Art, in the shape it publishes (shared/notes/museums.md), answered from the
bundled CC0 Met sample: every Met object becomes an artwork with the same id.

    api:   /cma/api/artworks/?cc0=&has_image=&type=&department=&limit=&skip=   {info: {total, parameters}, data}
           /cma/api/artworks/<id>                                              {data}
    media: /cma/images/<id>/<web|print|full>.jpg                               the renditions each record lists

The usual faults apply (403 bursts, 429, 5xx, truncated bodies, corrupt images, withdrawn artworks -> 404, an
artwork's JSON cut short or an HTML page with status 200). `Mirror.cma_renditions` collects the renditions
fetched (id, name).
"""
from __future__ import annotations

import hashlib
import re

from artdata.mirror.sample import COUNTRY, aspect_size, first_value, int_or
from artdata.mirror.server import Mirror, Response, json_response, object_response, site

CMA_SIDES = {"web": 640, "print": 1800, "full": 3400}      # longest side of each rendition


def _century(year) -> str | None:
    y = int_or(year, None)
    if y is None or y <= 0:
        return None
    c = (y - 1) // 100 + 1
    suffix = "th" if 10 <= c % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(c % 10, "th")
    return f"{c}{suffix} century"


def cma_artwork(m: Mirror, oid: str) -> dict:
    """A Cleveland record: culture as the museum writes it ("France, 19th century"), creators with the
    nationality in their description, and web/print/full renditions for CC0 works with an image."""
    r = m.met.rows[oid]
    cc0 = bool(r.get("Is Public Domain"))
    name, nat = first_value(r.get("Artist Display Name")), first_value(r.get("Artist Nationality"))
    place = first_value(r.get("Culture")) or first_value(r.get("Country"))
    century = _century(r.get("Object Begin Date"))
    culture = [", ".join(x for x in (COUNTRY.get(place, place), century) if x)] if place else []
    life = "–".join(x for x in (first_value(r.get("Artist Begin Date"))[:4], first_value(r.get("Artist End Date"))[:4]) if x)
    creators = [{"id": int(hashlib.sha256(name.encode()).hexdigest()[:6], 16), "role": "artist",
                 "description": f"{name} ({', '.join(x for x in (nat, life) if x)})" if nat or life else name,
                 "biography": None}] if name else []
    images = None
    if cc0 and not m.faults.pick("no_image", oid, m.faults.no_image):
        images = {}
        for kind, side in CMA_SIDES.items():
            w, h = aspect_size(f"cma:{oid}", side)
            images[kind] = {"url": f"{m.base('media')}/cma/images/{oid}/{kind}.jpg", "width": str(w),
                            "height": str(h), "filesize": str(w * h // 5), "filename": f"{oid}_{kind}.jpg"}
    cls = str(r.get("Classification") or "")
    return {
        "id": int(oid), "accession_number": str(r.get("Object Number") or oid),
        "share_license_status": "CC0" if cc0 else "Copyrighted",
        "title": r.get("Title") or "Untitled", "creation_date": r.get("Object Date") or None,
        "creation_date_earliest": int_or(r.get("Object Begin Date"), None),
        "creation_date_latest": int_or(r.get("Object End Date"), None),
        "culture": culture, "technique": r.get("Medium") or None,
        "type": (cls[:-1] if cls.endswith("s") else cls) or None, "department": r.get("Department") or None,
        "collection": None, "creators": creators, "measurements": r.get("Dimensions") or None,
        "copyright": None if cc0 else "© the artist",
        "url": f"https://clevelandart.org/art/{r.get('Object Number') or oid}", "images": images,
    }


def cma_route(m: Mirror, path: str, query: dict) -> Response:
    rest = path[len("/cma/api/"):].strip("/")
    arg = lambda k: (query.get(k) or [""])[0]
    if rest == "artworks":
        docs = [cma_artwork(m, o) for o in m.met.ids]
        if arg("cc0") in ("1", "true"):
            docs = [d for d in docs if d["share_license_status"] == "CC0"]
        if arg("has_image") in ("1", "true"):
            docs = [d for d in docs if d["images"]]
        for key in ("type", "department"):
            if arg(key):
                docs = [d for d in docs if (d[key] or "").lower() == arg(key).lower()]
        limit = min(1000, max(1, int_or(arg("limit"), 1000)))
        skip = max(0, int_or(arg("skip"), 0))
        params = {k: v[0] for k, v in query.items() if not k.startswith("_")}
        return json_response({"info": {"total": len(docs), "parameters": params}, "data": docs[skip: skip + limit]})
    if rest.startswith("artworks/"):
        oid = rest.split("/", 1)[1]
        if oid not in m.met.rows or m.faults.pick("withdrawn", oid, m.faults.withdrawn):
            return json_response({"detail": "Not found."}, 404)
        return object_response(m, oid, lambda: {"data": cma_artwork(m, oid)})
    return json_response({"detail": "Not found."}, 404)


def cma_image_route(m: Mirror, path: str, query: dict) -> Response:
    hit = re.fullmatch(r"/cma/images/(\d+)/(web|print|full)\.jpg", path)
    if not hit or hit.group(1) not in m.met.rows or not m.met.rows[hit.group(1)].get("Is Public Domain"):
        return Response(404, b"<html><body>Not Found</body></html>", "text/html")
    oid, kind = hit.groups()
    m.cma_renditions.append((oid, kind))
    r = m.met.rows[oid]
    return Response(200, m.image(f"cma:{oid}", str(r.get("Department") or ""), aspect_size(f"cma:{oid}",
                                 CMA_SIDES[kind]), str(r.get("Culture") or ""), work=f"met:{oid}"), "image/jpeg")


@site
def attach(m: Mirror) -> None:
    m.cma_renditions = []
    m.add_route("api", "/cma/api/", cma_route)
    m.add_route("media", "/cma/images/", cma_image_route)
