"""The mirror's Art Institute of Chicago, in the shape it publishes (shared/notes/museums.md), answered from the
bundled CC0 Met sample: every Met object becomes an artwork with the same id.

    api:   /aic/api/v1/artworks?page=&limit=&fields=         {pagination, data, config: {iiif_url, website_url}}
           /aic/api/v1/artworks/search?query[...]=...        the same, filtered (term is_public_domain;
                                                             match classification_title / department_title;
                                                             range gt/gte/lt/lte on id), sort[0][id]=asc|desc,
                                                             page/limit or from/size; past the window (from +
                                                             size > Mirror.aic_search_window, 1000) HTTP 403
                                                             {"error": "Invalid number of results", ...}
           /aic/api/v1/artworks/<id>?fields=                 {data, config}
    media: /aic/iiif/2/<image_id>/full/<W>,/0/default.jpg     the image, W wide

The usual faults apply (403 bursts, 429, 5xx, truncated bodies, corrupt images, withdrawn artworks -> 404, an
artwork's JSON cut short or an HTML page with status 200). `Mirror.aic_headers` collects the AIC-User-Agent
header of every AIC API request, `Mirror.aic_searches` every AIC search (from, size, total, sort, filters),
`Mirror.aic_widths` the widths asked of its image server.
"""
from __future__ import annotations

import hashlib
import re

from artdata.mirror.sample import COUNTRY, aspect_size, int_or
from artdata.mirror.server import Mirror, Response, json_response, object_response, site

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
        "date_start": int_or(r.get("Object Begin Date"), None), "date_end": int_or(r.get("Object End Date"), None),
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
    size = int_or(first("size") if "size" in query else first("limit") if "limit" in query else None, 10)
    offset = int_or(first("from"), 0) if "from" in query else None
    page = int_or(first("page"), 0) if "page" in query else 0
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
                   str(r.get("Culture") or ""), work=f"met:{oid}")
    return Response(200, data, "image/jpeg")


@site
def attach(m: Mirror) -> None:
    m.aic_headers, m.aic_widths = [], []
    m.aic_search_window, m.aic_searches = AIC_SEARCH_WINDOW, []
    aic_cache: dict = {}

    def images() -> dict:
        if not aic_cache:
            aic_cache.update({image_id(o): o for o in m.met.ids})
        return aic_cache
    m.aic_images = images
    m.add_route("api", "/aic/api/v1/", aic_route)
    m.add_route("media", "/aic/iiif/", aic_image_route)
