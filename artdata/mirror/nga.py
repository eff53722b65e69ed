"""The mirror's National Gallery of Art, in the shape it publishes (shared/notes/museums.md), answered from the
bundled CC0 Met sample: every Met object becomes an object with the same id.

    api:   /nga/data/objects.csv, published_images.csv, objects_constituents.csv, constituents.csv
                                  the museum's own columns (NGA_COLUMNS); no open-access column: the images of
                                  works that are not public domain are fair-use ones, with maxpixels set
    media: /nga/iiif/<uuid>/full/<size>/0/default.jpg                         (IIIF size syntax; info.json too)
                                  an alternate view (objectid % 5 == 0) is another photograph of the work:
                                  another picture, not a copy of the primary

The usual faults apply (403 bursts, 429, 5xx, truncated bodies, corrupt images, `iiif_ignore_size` on its
image server). `Mirror.nga_sizes` collects the IIIF size of every NGA image request and `Mirror.nga_over_box`
the (uuid, size) of any request for a fair-use image above its maxpixels box.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re

from artdata.mirror.sample import aspect_size, first_value, parse_size
from artdata.mirror.server import Mirror, Response, json_response, site

NGA_NATIVE_SIDE = 4000
NGA_FAIR_USE_BOX = 640      # maxpixels of the mirror's fair-use images (works that are not public domain)
# the columns of the museum's CSVs, in order (NationalGalleryOfArt/opendata sql_tables/*.sql, 2025-03 export)
NGA_COLUMNS = {
    "objects": ("objectid", "accessioned", "accessionnum", "locationid", "title", "displaydate", "beginyear",
                "endyear", "visualbrowsertimespan", "medium", "dimensions", "inscription", "markings",
                "attributioninverted", "attribution", "provenancetext", "creditline", "classification",
                "subclassification", "visualbrowserclassification", "parentid", "isvirtual", "departmentabbr",
                "portfolio", "series", "volume", "watermarks", "lastdetectedmodification", "wikidataid",
                "customprinturl"),
    "published_images": ("uuid", "iiifurl", "iiifthumburl", "viewtype", "sequence", "width", "height", "maxpixels",
                         "created", "modified", "depictstmsobjectid", "assistivetext"),
    "objects_constituents": ("objectid", "constituentid", "displayorder", "roletype", "role", "prefix", "suffix",
                             "displaydate", "beginyear", "endyear", "country", "zipcode"),
    "constituents": ("constituentid", "ulanid", "preferreddisplayname", "forwarddisplayname", "lastname",
                     "displaydate", "artistofngaobject", "beginyear", "endyear", "visualbrowsertimespan",
                     "nationality", "visualbrowsernationality", "constituenttype", "wikidataid"),
}


def nga_uuid(oid: str, view: str = "primary") -> str:
    h = hashlib.sha256(f"nga-image:{view}:{oid}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _constituent(name: str) -> int:
    return int(hashlib.sha256(f"nga-person:{name}".encode()).hexdigest()[:7], 16)


def nga_tables(m: Mirror) -> dict[str, bytes]:
    """The four open-data CSVs with exactly the museum's columns (NGA_COLUMNS), written as its export writes them
    (PostgreSQL `copy ... csv header`: NULL as an empty field, quotes only where needed). As in the museum's
    published_images.csv there is no open-access column: an image of a work that is not public domain is a
    fair-use image, with `maxpixels` set (NGA_FAIR_USE_BOX); the others have none. A donor is linked after the
    artist (roletype "donor"), as objects_constituents.csv lists owners and donors too."""
    objects, images, links, people = [], [], [], {}
    media = m.base("media")
    stamp = "2025-03-07 04:12:09.52-05"
    for oid in m.met.ids:
        r = m.met.rows[oid]
        name = first_value(r.get("Artist Display Name"))
        nat = first_value(r.get("Artist Nationality")) or None
        cls = str(r.get("Classification") or "")
        last = name.split()[-1] if name else ""
        objects.append({"objectid": oid, "accessioned": 1, "accessionnum": r.get("Object Number"),
                        "title": r.get("Title"), "displaydate": r.get("Object Date"),
                        "beginyear": r.get("Object Begin Date"), "endyear": r.get("Object End Date"),
                        "medium": r.get("Medium"), "dimensions": r.get("Dimensions"),
                        "attributioninverted": f"{last}, {name[:-len(last)].strip()}".strip(", ") if name else None,
                        "attribution": name or None, "creditline": r.get("Credit Line"),
                        "classification": cls[:-1] if cls.endswith("s") else cls, "subclassification": None,
                        "visualbrowserclassification": cls.lower() or None, "isvirtual": 0,
                        "departmentabbr": "".join(w[0] for w in str(r.get("Department") or "").split()).upper(),
                        "lastdetectedmodification": stamp})
        if name:
            cid = _constituent(name)
            links.append({"objectid": oid, "constituentid": cid, "displayorder": 1, "roletype": "artist",
                          "role": "painter" if cls == "Paintings" else "artist"})
            begin, end = first_value(r.get("Artist Begin Date"))[:4], first_value(r.get("Artist End Date"))[:4]
            people[cid] = {"constituentid": cid, "preferreddisplayname": f"{last}, {name[:-len(last)].strip()}"
                           .strip(", "), "forwarddisplayname": name, "lastname": last,
                           "displaydate": ", ".join(x for x in (nat, " - ".join(y for y in (begin, end) if y)) if x)
                           or None, "artistofngaobject": 1, "beginyear": begin or None, "endyear": end or None,
                           "nationality": nat, "visualbrowsernationality": nat or "Other",
                           "constituenttype": "individual"}
        if int(oid) % 3 == 0:
            donor = _constituent("donor")
            links.append({"objectid": oid, "constituentid": donor, "displayorder": 2, "roletype": "donor",
                          "role": "donor", "prefix": "Gift of"})
            people[donor] = {"constituentid": donor, "preferreddisplayname": "Mellon, Andrew W.",
                             "forwarddisplayname": "Andrew W. Mellon", "lastname": "Mellon",
                             "displaydate": "American, 1855 - 1937", "artistofngaobject": 0, "beginyear": 1855,
                             "endyear": 1937, "nationality": "American", "visualbrowsernationality": "American",
                             "constituenttype": "individual"}
        if m.faults.pick("no_image", oid, m.faults.no_image):
            continue
        w, h = aspect_size(f"nga:{oid}", NGA_NATIVE_SIDE)
        for view in ("primary", "alternate") if int(oid) % 5 == 0 else ("primary",):
            u = nga_uuid(oid, view)
            images.append({"uuid": u, "iiifurl": f"{media}/nga/iiif/{u}",
                           "iiifthumburl": f"{media}/nga/iiif/{u}/full/!200,200/0/default.jpg",
                           "viewtype": view, "sequence": 0 if view == "primary" else 1, "width": w, "height": h,
                           "maxpixels": None if r.get("Is Public Domain") else NGA_FAIR_USE_BOX,
                           "created": stamp, "modified": stamp, "depictstmsobjectid": oid,
                           "assistivetext": (f'{cls[:-1] if cls.endswith("s") else cls or "A work"}, "{r.get("Title")}",'
                                             "\nseen from the front") if int(oid) % 7 == 0 else None})
    out = {}
    for name, rows in (("objects", objects), ("published_images", images), ("objects_constituents", links),
                       ("constituents", list(people.values()))):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=NGA_COLUMNS[name], restval="", lineterminator="\n")
        w.writeheader()
        w.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
        out[name] = buf.getvalue().encode()
    return out


def _csv_value(v) -> str:
    """A value as PostgreSQL's CSV writes it: NULL (None, NaN, "") as an empty field, integers without '.0'."""
    if v is None or (isinstance(v, float) and v != v) or str(v) == "nan":
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def nga_route(m: Mirror, path: str, query: dict) -> Response:
    hit = re.fullmatch(r"/nga/data/(\w+)\.csv", path)
    tables = m.nga_tables()
    if not hit or hit.group(1) not in tables:
        return Response(404, b"404: Not Found", "text/plain")
    return Response(200, tables[hit.group(1)], "text/csv")


def nga_image_route(m: Mirror, path: str, query: dict) -> Response:
    parts = path.strip("/").split("/")          # nga, iiif, <uuid>, full, <size>, 0, default.jpg
    oid, view = m.nga_images().get(parts[2], (None, None)) if len(parts) > 2 else (None, None)
    if oid is None or m.faults.pick("withdrawn", oid, m.faults.withdrawn):
        return Response(404, b"not found", "text/plain")
    w, h = aspect_size(f"nga:{oid}", NGA_NATIVE_SIDE)
    if parts[3:] == ["info.json"]:
        return json_response({"@context": "http://iiif.io/api/image/2/context.json", "@id": "/".join(parts[:3]),
                              "protocol": "http://iiif.io/api/image", "width": w, "height": h,
                              "profile": ["http://iiif.io/api/image/2/level2.json"]})
    if len(parts) != 7 or parts[3] != "full" or parts[5] != "0" or parts[6] != "default.jpg":
        return Response(400, b"unsupported IIIF request", "text/plain")
    m.nga_sizes.append(parts[4])
    size = (w, h) if m.faults.iiif_ignore_size else parse_size(parts[4], w, h)
    if size is None or size[0] > w or size[1] > h:
        return Response(400, b"bad size", "text/plain")
    r = m.met.rows[oid]
    if not r.get("Is Public Domain") and max(size) > NGA_FAIR_USE_BOX and not m.faults.iiif_ignore_size:
        # a fair-use image asked above its maxpixels box: the museum's server renders it from the boxed copy,
        # blurred; the mirror notes the request
        m.nga_over_box.append((parts[2], parts[4]))
    alt = "" if view == "primary" else f":{view}"          # the work's other photograph: a picture of its own
    return Response(200, m.image(f"nga:{oid}{alt}", str(r.get("Department") or ""), size,
                                 str(r.get("Culture") or ""), work=f"met:{oid}{alt}"),
                    "image/jpeg")


@site
def attach(m: Mirror) -> None:
    m.nga_sizes, m.nga_over_box = [], []
    cache: dict = {}

    def nga_images() -> dict:
        if "nga" not in cache:
            cache["nga"] = {nga_uuid(o, v): (o, v) for o in m.met.ids for v in ("primary", "alternate")}
        return cache["nga"]

    def tables() -> dict:
        if "tables" not in cache:
            cache["tables"] = nga_tables(m)
        return cache["tables"]
    m.nga_images, m.nga_tables = nga_images, tables
    m.add_route("api", "/nga/data/", nga_route)
    m.add_route("media", "/nga/iiif/", nga_image_route)
