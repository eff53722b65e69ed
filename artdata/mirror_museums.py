"""The mirror's other museums, in the shapes they publish (shared/notes/museums.md), answered from the bundled
CC0 Met sample: every Met object becomes an artwork with the same id in each of them.

Art Institute of Chicago:

    api:   /aic/api/v1/artworks?page=&limit=&fields=         {pagination, data, config: {iiif_url, website_url}}
           /aic/api/v1/artworks/search?query[...]=...        the same, filtered (term is_public_domain;
                                                             match classification_title / department_title;
                                                             range gt/gte/lt/lte on id), sort[0][id]=asc|desc,
                                                             page/limit or from/size; past the window (from +
                                                             size > Mirror.aic_search_window, 1000) HTTP 403
                                                             {"error": "Invalid number of results", ...}
           /aic/api/v1/artworks/<id>?fields=                 {data, config}
    media: /aic/iiif/2/<image_id>/full/<W>,/0/default.jpg     the image, W wide

Cleveland Museum of Art:

    api:   /cma/api/artworks/?cc0=&has_image=&type=&department=&limit=&skip=   {info: {total, parameters}, data}
           /cma/api/artworks/<id>                                              {data}
    media: /cma/images/<id>/<web|print|full>.jpg                               the renditions each record lists

National Gallery of Art:

    api:   /nga/data/objects.csv, published_images.csv, objects_constituents.csv, constituents.csv
                                  the museum's own columns (NGA_COLUMNS); no open-access column: the images of
                                  works that are not public domain are fair-use ones, with maxpixels set
    media: /nga/iiif/<uuid>/full/<size>/0/default.jpg                         (IIIF size syntax; info.json too)

The usual faults apply (403 bursts, 429, 5xx, truncated bodies, corrupt images, withdrawn artworks -> 404,
an artwork's JSON cut short or an HTML page with status 200, `iiif_ignore_size` on the NGA image server). `Mirror.aic_headers` collects the AIC-User-Agent header of every
AIC API request, `Mirror.aic_searches` every AIC search (from, size, total, sort, filters),
`Mirror.aic_widths` the widths asked of its image server, `Mirror.cma_renditions` the
Cleveland renditions fetched (id, name), `Mirror.nga_sizes` the IIIF size of every NGA image request and
`Mirror.nga_over_box` the (uuid, size) of any request for a fair-use image above its maxpixels box.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re

from artdata.mirror import Mirror, Response, _int_or, aspect_size, json_response, object_response
from artdata.mirror_iiif import _parse_size

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
        "place_of_origin": r.get("Country") or r.get("Culture") or COUNTRY.get(nat, nat) or None,   # "France"
        "medium_display": r.get("Medium") or None,
        "classification_title": re.sub(r"s$", "", (r.get("Classification") or "").lower()) or None,   # "painting"
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


AIC_SEARCH_WINDOW = 1000     # from + size one search may reach (the museum's max_resources_guest)
AIC_SEARCH_MAX_SIZE = 100
_RANGE_OPS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
              "lte": lambda a, b: a <= b}


def _aic_error(status: int, error: str, detail: str) -> Response:
    return json_response({"status": status, "error": error, "detail": detail}, status)


def _filters(query: dict) -> list:
    """[("pd", {"true"}), ("classification_title", {values}), ("range:id", {(op, value)})...] from query[...] keys:
    a term on is_public_domain, match groups (any value of a group), ranges (gt/gte/lt/lte) on id or a date, at
    the top of `query` or in `query[bool][filter|must][N]`."""
    groups: dict[str, tuple[str, set]] = {}
    for key, values in query.items():
        if not key.startswith("query["):
            continue
        if key.endswith("[term][is_public_domain]"):
            groups[key] = ("pd", {v.lower() for v in values})
            continue
        hit = re.fullmatch(r"query(?:\[bool\]\[(?:filter|must)\]\[\d*\])?\[range\]\[(\w+)\]\[(gte?|lte?)\]", key)
        if hit:
            g = groups.setdefault(f"range{key[:key.index('[range]')]}", (f"range:{hit.group(1)}", set()))
            g[1].update((hit.group(2), v) for v in values)
            continue
        hit = re.match(r"query\[bool\]\[filter\]\[(\d+)\].*\[match\]\[(\w+)\]$", key)
        if hit:
            g = groups.setdefault(f"f{hit.group(1)}", (hit.group(2), set()))
            g[1].update(v.lower() for v in values)
    return list(groups.values())


def _sort(query: dict) -> tuple[str, bool] | None:
    """(field, descending) from `sort=id`, `sort[0][id]=asc`, `sort[id]=desc`, `sort[0][id][order]=asc`..."""
    for key, values in query.items():
        hit = re.fullmatch(r"sort(?:\[\d*\])?(?:\[(\w+)\])?(\[order\])?", key)
        if hit:
            field = hit.group(1) or values[0]
            order = values[0] if hit.group(1) else "asc"
            return field, order.lower() == "desc"
    return None


def _aic_search(m: Mirror, query: dict) -> Response:
    """/artworks/search as the museum's search answers a GET (data-aggregator app/Http/Search/Request.php): size
    from `size` or `limit` (default 10, at most 100), offset from `from` or `page`; a search whose from + size
    passes the window (1,000 for anonymous clients; `Mirror.aic_search_window`) is refused with the museum's 403
    body. Unsorted results come in a relevance order (a hash here); `sort` on id orders them."""
    tops = {k.split("]")[0][len("query["):] for k in query if k.startswith("query[")}
    if len(tops) > 1:                       # {"term": ..., "range": ...}: one query object holding two queries
        return _aic_error(400, "Invalid query", f"[{sorted(tops)[0]}] malformed query, expected [END_OBJECT] "
                                                "but found [FIELD_NAME]")
    oids = m.met.ids
    for field, values in _filters(query):
        if field == "pd":
            want = "false" not in values
            oids = [o for o in oids if bool(m.met.rows[o].get("Is Public Domain")) == want]
        elif field.startswith("range:"):
            name = field[len("range:"):]
            num = int if name == "id" else (lambda o, name=name: artwork(m, o).get(name))
            for op, v in values:
                try:
                    bound = float(v)
                except ValueError:
                    return _aic_error(400, "Invalid query", f"[range] cannot parse {v!r} as a number")
                oids = [o for o in oids if num(o) is not None and _RANGE_OPS[op](num(o), bound)]
        else:
            oids = [o for o in oids if (artwork(m, o).get(field) or "").lower() in values]
    order = _sort(query)
    if order is None:
        oids = sorted(oids, key=lambda o: hashlib.sha256(f"aic-score:{o}".encode()).digest())
    elif order[0] == "id":
        oids = sorted(oids, key=int, reverse=order[1])
    else:
        return _aic_error(400, "Invalid sort", f"the mirror sorts on id only, not {order[0]!r}")
    first = lambda k: query[k][0]
    size = _int_or(first("size") if "size" in query else first("limit") if "limit" in query else None, 10)
    offset = _int_or(first("from"), 0) if "from" in query else None
    page = _int_or(first("page"), 0) if "page" in query else 0
    if not offset and page > 0:             # `from` wins over `page`
        offset = (page - 1) * size
    m.aic_searches.append({"from": offset, "size": size, "total": len(oids), "sort": order,
                           "filters": _filters(query)})
    if size > AIC_SEARCH_MAX_SIZE:
        return _aic_error(403, "Invalid limit", "You have requested too many resources per page. "
                                                "Please set a smaller limit.")
    if offset is not None and offset + size > m.aic_search_window:
        return _aic_error(403, "Invalid number of results", "You have requested too many results. "
                                                            "Please refine your parameters.")
    offset = max(0, offset or 0)
    return json_response({
        "preference": None,
        "pagination": {"total": len(oids), "limit": size, "offset": offset,
                       "total_pages": -(-len(oids) // size) if size > 0 else None,
                       "current_page": offset // size + 1 if size > 0 else None},
        "data": [{"_score": None if order else 1.0, **_fields(artwork(m, o), query)}
                 for o in oids[offset: offset + max(0, size)]],
        "config": _config(m)})


def aic_route(m: Mirror, path: str, query: dict) -> Response:
    m.aic_headers.append(query["_headers"].get("aic-user-agent"))
    rest = path[len("/aic/api/v1/"):].strip("/")
    if rest == "artworks/search":
        return _aic_search(m, query)
    if rest == "artworks":                  # the listing (newest first there; id order here): no window
        oids = m.met.ids
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
        return object_response(m, oid, lambda: {"data": _fields(artwork(m, oid), query), "config": _config(m)})
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


# ---------------------------------------------------------------- Cleveland Museum of Art

CMA_SIDES = {"web": 640, "print": 1800, "full": 3400}      # longest side of each rendition
COUNTRY = {"French": "France", "Dutch": "Netherlands", "Flemish": "Flanders", "Italian": "Italy",
           "Spanish": "Spain", "German": "Germany", "British": "England", "English": "England",
           "American": "United States", "Japanese": "Japan", "Chinese": "China", "Korean": "Korea",
           "Indian": "India"}


def _first(value) -> str:
    return str(value or "").split("|")[0].strip()


def _century(year) -> str | None:
    y = _int_or(year, None)
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
    name, nat = _first(r.get("Artist Display Name")), _first(r.get("Artist Nationality"))
    place = _first(r.get("Culture")) or _first(r.get("Country"))
    century = _century(r.get("Object Begin Date"))
    culture = [", ".join(x for x in (COUNTRY.get(place, place), century) if x)] if place else []
    life = "–".join(x for x in (_first(r.get("Artist Begin Date"))[:4], _first(r.get("Artist End Date"))[:4]) if x)
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
        "creation_date_earliest": _int_or(r.get("Object Begin Date"), None),
        "creation_date_latest": _int_or(r.get("Object End Date"), None),
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
        limit = min(1000, max(1, _int_or(arg("limit"), 1000)))
        skip = max(0, _int_or(arg("skip"), 0))
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
                                 CMA_SIDES[kind]), str(r.get("Culture") or "")), "image/jpeg")


# ---------------------------------------------------------------- National Gallery of Art

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
        name = _first(r.get("Artist Display Name"))
        nat = _first(r.get("Artist Nationality")) or None
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
            begin, end = _first(r.get("Artist Begin Date"))[:4], _first(r.get("Artist End Date"))[:4]
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
    oid = m.nga_images().get(parts[2]) if len(parts) > 2 else None
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
    size = (w, h) if m.faults.iiif_ignore_size else _parse_size(parts[4], w, h)
    if size is None or size[0] > w or size[1] > h:
        return Response(400, b"bad size", "text/plain")
    r = m.met.rows[oid]
    if not r.get("Is Public Domain") and max(size) > NGA_FAIR_USE_BOX and not m.faults.iiif_ignore_size:
        # a fair-use image asked above its maxpixels box: the museum's server renders it from the boxed copy,
        # blurred; the mirror notes the request
        m.nga_over_box.append((parts[2], parts[4]))
    return Response(200, m.image(f"nga:{oid}", str(r.get("Department") or ""), size, str(r.get("Culture") or "")),
                    "image/jpeg")


def attach(m: Mirror) -> None:
    m.aic_headers, m.aic_widths, m.cma_renditions, m.nga_sizes = [], [], [], []
    m.nga_over_box = []
    m.aic_search_window, m.aic_searches = AIC_SEARCH_WINDOW, []
    aic_cache: dict = {}
    cache: dict = {}

    def images() -> dict:
        if not aic_cache:
            aic_cache.update({image_id(o): o for o in m.met.ids})
        return aic_cache

    def nga_images() -> dict:
        if "nga" not in cache:
            cache["nga"] = {nga_uuid(o, v): o for o in m.met.ids for v in ("primary", "alternate")}
        return cache["nga"]

    def tables() -> dict:
        if "tables" not in cache:
            cache["tables"] = nga_tables(m)
        return cache["tables"]
    m.aic_images = images
    m.nga_images, m.nga_tables = nga_images, tables
    m.add_route("api", "/aic/api/v1/", aic_route)
    m.add_route("media", "/aic/iiif/", aic_image_route)
    m.add_route("api", "/cma/api/", cma_route)
    m.add_route("media", "/cma/images/", cma_image_route)
    m.add_route("api", "/nga/data/", nga_route)
    m.add_route("media", "/nga/iiif/", nga_image_route)
