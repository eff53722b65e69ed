"""The mirror's Tate: the collection dataset as a table (api: /tate/artworks.parquet, /tate/artwork_data.csv, its
thumbnail URLs pointed at the media host) and the thumbnails (media: /art/images/work/<A>/<A00>/<acc>_<7..10>.jpg)."""
from __future__ import annotations

import io

from artdata.mirror.sample import aspect_size
from artdata.mirror.server import Mirror, Response, site

TATE_RENDITIONS = {"7": 128, "8": 256, "9": 730, "10": 1536}


def image_route(m: Mirror, path: str, query: dict) -> Response:
    # /art/images/work/A/A00/A00001_8.jpg
    name = path.rsplit("/", 1)[-1]
    stem, _, ext = name.partition(".")
    acc, _, rendition = stem.rpartition("_")
    row = m.tate_by_accession.get(acc)
    if ext != "jpg" or row is None or rendition not in TATE_RENDITIONS or not row.get("thumbnailUrl"):
        return Response(404, b"<html><body>Not Found</body></html>", "text/html")
    side = TATE_RENDITIONS[rendition]
    w, h = row.get("width"), row.get("height")
    if w and h and w == w and h == h and w > 0 and h > 0:   # not NaN
        size = (side, max(1, round(side * h / w))) if w >= h else (max(1, round(side * w / h)), side)
    else:
        size = aspect_size(acc, side)
    data = m.image(f"tate:{acc}", str(row.get("medium") or ""), size, str(row.get("classification") or ""))
    return Response(200, data, "image/jpeg")


def table_route(m: Mirror, path: str, query: dict) -> Response:
    name = path.rsplit("/", 1)[-1]
    df = m.tate.copy()
    df["thumbnailUrl"] = df["thumbnailUrl"].str.replace("http://www.tate.org.uk", m.media_base, regex=False)
    if name == "artworks.parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return Response(200, buf.getvalue(), "application/vnd.apache.parquet")
    if name == "artwork_data.csv":
        return Response(200, df.to_csv(index=False).encode(), "text/csv")
    return Response(404, b"<html><body>Not Found</body></html>", "text/html")


@site
def attach(m: Mirror) -> None:
    m.add_route("api", "/tate/", table_route)
    m.add_route("media", "/art/images/work/", image_route)
