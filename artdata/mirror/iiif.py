"""The mirror's IIIF site: Presentation manifests (v2 and v3) and collections built from the bundled CC0 Met
sample (public-domain objects), and an Image API service (v2 and v3) on the media host.

    api:   /iiif/{2,3}/collection.json               top collection -> one sub-collection per department
           /iiif/{2,3}/collection/<dept>.json        -> the department's manifests
           /iiif/{2,3}/manifest/<id>.json            one object, one canvas (404 for an id it does not hold,
                                                     410 Gone for an object the faults withdraw)
           /iiif/{2,3}/static/<id>.json              the same object as the cookbook's "simplest manifest -
                                                     single image": a canvas whose image is a plain JPEG
                                                     file (`body` / `resource` with its id, no service)
    media: /iiif-img/{2,3}/<id>/info.json            width, height (and, for v2, a cached 843 px size)
           /iiif-img/{2,3}/<id>/full/<size>/0/default.jpg
           /iiif-static/<id>.jpg                     the static file, STATIC_SIDE px on its longer side

Faults (on top of the mirror's usual 403/429/5xx/truncated/slow/corrupt ones): `iiif_info_error` answers a
500 for a fraction of info.json documents; `iiif_ignore_size` serves the native size whatever is asked.
Every image request's size parameter is logged in `Mirror.iiif_sizes`, every static file fetched in
`Mirror.iiif_static`.
"""
from __future__ import annotations

import json
import re

from artdata.mirror.sample import aspect_size, parse_size, slug
from artdata.mirror.server import Mirror, Response, json_response, site

NATIVE_SIDE = 2400        # longest side of the "full resolution" images
CACHED_WIDTH = 843        # the size v2 info.json lists (as the Art Institute of Chicago's server does)
STATIC_SIDE = 1800        # longest side of the static files (the cookbook recipe's image is 1200 x 1800)
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"


def _rows(m: Mirror) -> dict:
    return {oid: r for oid, r in m.met.rows.items() if bool(r.get("Is Public Domain"))}


def _meta(r: dict) -> list[tuple[str, str]]:
    pairs = [("Artist", (r.get("Artist Display Name") or "").split("|")[0]),
             ("Nationality", (r.get("Artist Nationality") or "").split("|")[0]), ("Date", r.get("Object Date")),
             ("Culture", r.get("Culture")), ("Medium", r.get("Medium")), ("Classification", r.get("Classification")),
             ("Department", r.get("Department")), ("Dimensions", r.get("Dimensions"))]
    return [(k, str(v)) for k, v in pairs if v and str(v).strip() and str(v) != "nan"]


def manifest(m: Mirror, version: int, oid: str, static: bool = False) -> dict:
    """The object's manifest; `static`: its image a plain JPEG file with no image service."""
    r = m.met.rows[oid]
    api, media = m.base("api"), m.base("media")
    mid = f"{api}/iiif/{version}/{'static' if static else 'manifest'}/{oid}.json"
    svc = f"{media}/iiif-img/{version}/{oid}"
    w, h = aspect_size(f"iiif:{oid}", STATIC_SIDE if static else NATIVE_SIDE)
    doc = _manifest(m, version, oid, r, mid, svc, w, h)
    if static:
        canvas = doc["sequences"][0]["canvases"][0] if version == 2 else doc["items"][0]
        image = canvas["images"][0]["resource"] if version == 2 else canvas["items"][0]["items"][0]["body"]
        image.pop("service")
        image["@id" if version == 2 else "id"] = f"{media}/iiif-static/{oid}.jpg"
    return doc


def _manifest(m: Mirror, version: int, oid: str, r: dict, mid: str, svc: str, w: int, h: int) -> dict:
    title = str(r.get("Title") or f"Object {oid}")
    page = r.get("Link Resource") or f"https://www.metmuseum.org/art/collection/search/{oid}"
    if version == 2:
        return {
            "@context": "http://iiif.io/api/presentation/2/context.json", "@id": mid, "@type": "sc:Manifest",
            "label": title, "license": CC0, "attribution": "The Metropolitan Museum of Art", "related": page,
            "metadata": [{"label": k, "value": v} for k, v in _meta(r)],
            "sequences": [{"@type": "sc:Sequence", "canvases": [{
                "@id": f"{mid}/canvas/1", "@type": "sc:Canvas", "label": "front", "width": w, "height": h,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": f"{mid}/canvas/1",
                            "resource": {"@id": f"{svc}/full/full/0/default.jpg", "@type": "dctypes:Image",
                                         "format": "image/jpeg", "width": w, "height": h,
                                         "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                     "@id": svc, "profile": "http://iiif.io/api/image/2/level1.json"}}}],
            }]}],
        }
    en = lambda s: {"en": [s]}
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": mid, "type": "Manifest",
        "label": en(title), "rights": CC0,
        "requiredStatement": {"label": en("Attribution"), "value": en("The Metropolitan Museum of Art")},
        "homepage": [{"id": page, "type": "Text", "label": en(title), "format": "text/html"}],
        "metadata": [{"label": en(k), "value": en(v)} for k, v in _meta(r)],
        "items": [{"id": f"{mid}/canvas/1", "type": "Canvas", "width": w, "height": h, "label": en("front"),
                   "items": [{"id": f"{mid}/page/1", "type": "AnnotationPage", "items": [{
                       "id": f"{mid}/annotation/1", "type": "Annotation", "motivation": "painting",
                       "target": f"{mid}/canvas/1",
                       "body": {"id": f"{svc}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                                "width": w, "height": h,
                                "service": [{"id": svc, "type": "ImageService3", "profile": "level1"}]}}]}]}],
    }


def collection(m: Mirror, version: int, dept: str | None) -> dict:
    api = m.base("api")
    rows = _rows(m)
    depts = sorted({str(r.get("Department") or "") for r in rows.values()} - {""})
    if dept is None:
        members = [(f"{api}/iiif/{version}/collection/{slug(d)}.json", "Collection", d) for d in depts]
        cid, label = f"{api}/iiif/{version}/collection.json", "Public-domain objects by department"
    else:
        name = next((d for d in depts if slug(d) == dept), None)
        if name is None:
            return None
        members = [(f"{api}/iiif/{version}/manifest/{oid}.json", "Manifest", str(r.get("Title") or oid))
                   for oid, r in sorted(rows.items(), key=lambda x: int(x[0])) if r.get("Department") == name]
        cid, label = f"{api}/iiif/{version}/collection/{dept}.json", name
    if version == 2:
        return {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": cid, "@type": "sc:Collection",
                "label": label,
                "collections": [{"@id": u, "@type": "sc:Collection", "label": lab} for u, t, lab in members
                                if t == "Collection"],
                "manifests": [{"@id": u, "@type": "sc:Manifest", "label": lab} for u, t, lab in members
                              if t == "Manifest"]}
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": cid, "type": "Collection",
            "label": {"en": [label]}, "items": [{"id": u, "type": t, "label": {"en": [lab]}} for u, t, lab in members]}


def presentation_route(m: Mirror, path: str, query: dict) -> Response:
    hit = re.fullmatch(r"/iiif/([23])/(collection\.json|collection/([^/]+)\.json|(manifest|static)/(\d+)\.json)",
                       path)
    if not hit:
        return json_response({"error": "not found"}, 404)
    version = int(hit.group(1))
    if hit.group(5):
        oid = hit.group(5)
        if oid not in _rows(m):
            return json_response({"error": "not found"}, 404)
        if m.faults.pick("withdrawn", f"iiif:{oid}", m.faults.withdrawn):
            return Response(410, b"<html><body><h1>410 Gone</h1></body></html>", "text/html")
        return json_response(manifest(m, version, oid, static=hit.group(4) == "static"))
    doc = collection(m, version, hit.group(3))
    return json_response(doc) if doc is not None else json_response({"error": "not found"}, 404)


def image_route(m: Mirror, path: str, query: dict) -> Response:
    parts = path.strip("/").split("/")      # iiif-img, version, id, ...
    if len(parts) < 4 or parts[1] not in ("2", "3") or parts[2] not in _rows(m):
        return Response(404, b"not found", "text/plain")
    version, oid = int(parts[1]), parts[2]
    w, h = aspect_size(f"iiif:{oid}", NATIVE_SIDE)
    svc = f"{m.base('media')}/iiif-img/{version}/{oid}"
    if parts[3] == "info.json" and len(parts) == 4:
        if m.faults.pick("iiif_info", oid, m.faults.iiif_info_error):
            return Response(500, b"<html><body>info.json unavailable</body></html>", "text/html")
        if version == 2:
            cached_h = round(h * CACHED_WIDTH / w)
            info = {"@context": "http://iiif.io/api/image/2/context.json", "@id": svc, "protocol":
                    "http://iiif.io/api/image", "width": w, "height": h,
                    "profile": ["http://iiif.io/api/image/2/level1.json"],
                    "sizes": [{"width": CACHED_WIDTH // 4, "height": round(cached_h / 4)},
                              {"width": CACHED_WIDTH, "height": cached_h}]}
        else:
            info = {"@context": "http://iiif.io/api/image/3/context.json", "id": svc, "type": "ImageService3",
                    "protocol": "http://iiif.io/api/image", "profile": "level1", "width": w, "height": h}
        return Response(200, json.dumps(info).encode(), "application/ld+json")
    if len(parts) != 7 or parts[3] != "full" or parts[5] != "0" or not parts[6].startswith("default."):
        return Response(400, b"unsupported IIIF request", "text/plain")
    m.iiif_sizes.append(parts[4])
    size = (w, h) if m.faults.iiif_ignore_size else parse_size(parts[4], w, h)
    if size is None or size[0] > w * 2 or size[1] > h * 2:
        return Response(400, b"bad size", "text/plain")
    r = m.met.rows[oid]
    data = m.image(f"iiif:{oid}", str(r.get("Department") or ""), size, str(r.get("Culture") or ""),
                   work=f"met:{oid}")
    return Response(200, data, "image/jpeg")


def static_route(m: Mirror, path: str, query: dict) -> Response:
    hit = re.fullmatch(r"/iiif-static/(\d+)\.jpg", path)
    if not hit or hit.group(1) not in _rows(m):
        return Response(404, b"not found", "text/plain")
    oid = hit.group(1)
    m.iiif_static.append(oid)
    r = m.met.rows[oid]
    return Response(200, m.image(f"iiif:{oid}", str(r.get("Department") or ""), aspect_size(f"iiif:{oid}",
                    STATIC_SIDE), str(r.get("Culture") or ""), work=f"met:{oid}"), "image/jpeg")


@site
def attach(m: Mirror) -> None:
    m.iiif_static = []
    m.add_route("api", "/iiif/", presentation_route)
    m.add_route("media", "/iiif-img/", image_route)
    m.add_route("media", "/iiif-static/", static_route)
