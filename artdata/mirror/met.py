"""The mirror's Met Collection API (api host: /public/collection/v1/departments, /objects?departmentIds=&metadataDate=,
/objects/<id>) and its image host (media: /CRDImages/<dept>/<original|web-large>/<id>.jpg, and <id>_<k>.jpg for
the k-th of an object's additionalImages: another picture), answered from the bundled Open Access sample
(sample.MetData)."""
from __future__ import annotations

from artdata.mirror.sample import MetData, aspect_size
from artdata.mirror.server import Mirror, Response, json_response, object_response, site

# Real department ids of the Met API, keyed by the names used in the Open Access CSV.
MET_DEPARTMENTS = {
    "The American Wing": 1, "Ancient Near Eastern Art": 3, "Arms and Armor": 4,
    "Arts of Africa, Oceania, and the Americas": 5, "Asian Art": 6, "The Cloisters": 7,
    "Costume Institute": 8, "Drawings and Prints": 9, "Egyptian Art": 10, "European Paintings": 11,
    "European Sculpture and Decorative Arts": 12, "Greek and Roman Art": 13, "Islamic Art": 14,
    "Robert Lehman Collection": 15, "The Libraries": 16, "Medieval Art": 17, "Musical Instruments": 18,
    "Photographs": 19, "Modern and Contemporary Art": 21,
}
MET_ORIGINAL_SIDE = 1600   # longest side of the mirror's "original" images
MET_SMALL_SIDE = 800       # longest side of its "web-large" (primaryImageSmall) images


def api_route(m: Mirror, path: str, query: dict) -> Response:
    rest = path[len("/public/collection/v1/"):].strip("/")
    if rest == "departments":
        return json_response({"departments": [{"departmentId": i, "displayName": n}
                                              for n, i in sorted(MET_DEPARTMENTS.items(), key=lambda x: x[1])]})
    if rest == "objects":
        ids = m.met.ids
        if "departmentIds" in query:
            wanted = {int(x) for x in query["departmentIds"][0].split("|") if x.strip().isdigit()}
            ids = [i for i in ids if MET_DEPARTMENTS.get(m.met.rows[i].get("Department")) in wanted]
        if "metadataDate" in query:
            since = query["metadataDate"][0]
            ids = [i for i in ids if MetData.metadata_date(i)[:10] >= since]
        return json_response({"total": len(ids), "objectIDs": [int(i) for i in ids]})
    if rest.startswith("objects/"):
        oid = rest.split("/", 1)[1]
        f = m.faults
        if oid not in m.met.rows or f.pick("withdrawn", oid, f.withdrawn):
            return json_response({"message": "Not a valid object"}, 404) if oid.isdigit() else \
                json_response({"message": "ObjectID not found"}, 404)
        return object_response(m, oid, lambda: m.met.object(oid, m.media_base, f))
    return json_response({"message": "Not found"}, 404)


def image_route(m: Mirror, path: str, query: dict) -> Response:
    # /CRDImages/<dept>/<variant>/<id>.jpg
    parts = path.strip("/").split("/")
    if len(parts) != 4 or not parts[3].endswith(".jpg"):
        return Response(404, b"not found", "text/plain")
    variant, name = parts[2], parts[3][:-4]
    oid, _, view = name.partition("_")
    row = m.met.rows.get(oid)
    if row is None or variant not in ("original", "web-large") or \
            (view and not (view.isdigit() and 1 <= int(view) <= MetData.views(oid))):
        return Response(404, b"not found", "text/plain")
    side = MET_ORIGINAL_SIDE if variant == "original" else MET_SMALL_SIDE
    key = f"met:{oid}" + (f":view{view}" if view else "")      # a view is a picture of its own, not a copy
    size = aspect_size(name, side)
    data = m.image(key, str(row.get("Department") or ""), size, str(row.get("Culture") or ""))
    return Response(200, data, "image/jpeg")


@site
def attach(m: Mirror) -> None:
    m.add_route("api", "/public/collection/v1/", api_route)
    m.add_route("media", "/CRDImages/", image_route)
