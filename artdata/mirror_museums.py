"""The mirror's Art Institute of Chicago API, in the shapes the museum publishes (shared/notes/museums.md),
answered from the bundled CC0 Met sample: every object becomes an artwork with the same id.

    api:   /aic/api/v1/artworks?page=&limit=&fields=         {pagination, data, config: {iiif_url, website_url}}
           /aic/api/v1/artworks/search?query[...]=...        the same, filtered (term is_public_domain;
                                                             match classification_title / department_title)
           /aic/api/v1/artworks/<id>?fields=                 {data, config}
    media: /aic/iiif/2/<image_id>/full/<W>,/0/default.jpg     the image, W wide

The usual faults apply (403 bursts, 429, 5xx, truncated bodies, corrupt images, withdrawn artworks -> 404).
`Mirror.aic_headers` collects the AIC-User-Agent header of every API request; `Mirror.aic_widths` the widths
asked of the image server.
"""
from __future__ import annotations

import hashlib
import re

from artdata.mirror import Mirror, Response, _int_or, aspect_size, json_response

NATIVE_SIDE = 3000


def image_id(oid: str) -> str:
    h = hashlib.sha256(f"aic-image:{oid}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def artwork(m: Mirror, oid: str) -> dict:
    r = m.met.rows[oid]
    pd_ = bool(r.get("Is Public Domain"))
    w, h = aspect_size(f"aic:{oid}", NATIVE_SIDE)
    name = (r.get("Artist Display Name") or "").split("|")[0].strip()
    nat = (r.get("Artist Nationality") or "").split("|")[0].strip()
    return {
        "id": int(oid), "api_link": f"{m.base('api')}/aic/api/v1/artworks/{oid}",
        "title": r.get("Title") or "Untitled",
        "artist_display": f"{name}\n{nat}".strip() if name else None, "artist_title": name or None,
        "date_start": _int_or(r.get("Object Begin Date"), None), "date_end": _int_or(r.get("Object End Date"), None),
        "date_display": r.get("Object Date") or None,
        "place_of_origin": r.get("Country") or r.get("Culture") or None,
        "medium_display": r.get("Medium") or None,
        "classification_title": (r.get("Classification") or "").lower() or None,
        "department_title": r.get("Department") or None, "artwork_type_title": r.get("Object Name") or None,
        "style_title": None, "is_public_domain": pd_,
        "image_id": image_id(oid) if pd_ and not m.faults.pick("no_image", oid, m.faults.no_image) else None,
        "thumbnail": {"lqip": "data:image/gif;base64,R0lGODlhAQABAAAAACw=", "width": w, "height": h,
                      "alt_text": r.get("Title") or ""},
        "copyright_notice": None if pd_ else "© the artist", "credit_line": r.get("Credit Line") or None,
        "dimensions": r.get("Dimensions") or None,
    }


def _fields(doc: dict, query: dict) -> dict:
    wanted = query.get("fields", [""])[0]
    return {k: v for k, v in doc.items() if k in wanted.split(",")} if wanted else doc


def _config(m: Mirror) -> dict:
    return {"iiif_url": f"{m.base('media')}/aic/iiif/2", "website_url": "https://www.artic.edu"}


def _filters(query: dict) -> list:
    """[("pd", None)] and [("classification_title", {values})...] from query[...] keys."""
    groups: dict[str, tuple[str, set]] = {}
    for key, values in query.items():
        if not key.startswith("query["):
            continue
        if key.endswith("[term][is_public_domain]"):
            groups[key] = ("pd", set())
            continue
        hit = re.match(r"query\[bool\]\[filter\]\[(\d+)\].*\[match\]\[(\w+)\]$", key)
        if hit:
            g = groups.setdefault(f"f{hit.group(1)}", (hit.group(2), set()))
            g[1].update(v.lower() for v in values)
    return list(groups.values())


def aic_route(m: Mirror, path: str, query: dict) -> Response:
    m.aic_headers.append(query["_headers"].get("aic-user-agent"))
    rest = path[len("/aic/api/v1/"):].strip("/")
    if rest in ("artworks", "artworks/search"):
        oids = m.met.ids
        if rest == "artworks/search":
            for field, values in _filters(query):
                if field == "pd":
                    oids = [o for o in oids if m.met.rows[o].get("Is Public Domain")]
                else:
                    oids = [o for o in oids if (artwork(m, o).get(field) or "").lower() in values]
        limit = min(100, max(1, int(query.get("limit", ["12"])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        chunk = oids[(page - 1) * limit: page * limit]
        total_pages = max(1, -(-len(oids) // limit))
        return json_response({
            "pagination": {"total": len(oids), "limit": limit, "offset": (page - 1) * limit,
                           "total_pages": total_pages, "current_page": page},
            "data": [_fields(artwork(m, o), query) for o in chunk], "config": _config(m)})
    if rest.startswith("artworks/"):
        oid = rest.split("/", 1)[1]
        if oid not in m.met.rows or m.faults.pick("withdrawn", oid, m.faults.withdrawn):
            return json_response({"status": 404, "error": "Not found",
                                  "detail": "The item you requested cannot be found."}, 404)
        return json_response({"data": _fields(artwork(m, oid), query), "config": _config(m)})
    return json_response({"status": 404, "error": "Not found"}, 404)


def aic_image_route(m: Mirror, path: str, query: dict) -> Response:
    parts = path.strip("/").split("/")        # aic, iiif, 2, <image_id>, full, <W>,, 0, default.jpg
    if len(parts) != 8 or parts[4] != "full" or parts[6] != "0" or parts[7] != "default.jpg":
        return Response(404, b"not found", "text/plain")
    oid = m.aic_images().get(parts[3])
    hit = re.fullmatch(r"(\d+),", parts[5])
    if oid is None or not hit:
        return Response(404 if oid is None else 400, b"not found", "text/plain")
    width = int(hit.group(1))
    m.aic_widths.append(width)
    w, h = aspect_size(f"aic:{oid}", NATIVE_SIDE)
    if width > 3000:
        return Response(403, b"size not allowed", "text/plain")
    r = m.met.rows[oid]
    data = m.image(f"aic:{oid}", str(r.get("Department") or ""), (width, max(1, round(h * width / w))),
                   str(r.get("Culture") or ""))
    return Response(200, data, "image/jpeg")


def attach(m: Mirror) -> None:
    m.aic_headers, m.aic_widths = [], []
    cache: dict = {}

    def images() -> dict:
        if not cache:
            cache.update({image_id(o): o for o in m.met.ids})
        return cache
    m.aic_images = images
    m.add_route("api", "/aic/api/v1/", aic_route)
    m.add_route("media", "/aic/iiif/", aic_image_route)
