"""The National Gallery of Art, Washington: its open-data CSVs joined locally -> records -> IIIF images.

The museum publishes its collection data as CSV files (a folder of them in its open-data repository; columns in
its `sql_tables/*.sql` and `documentation/Data Dictionary.txt`): `objects.csv` (objectid, accessionnum, title,
displaydate, beginyear, endyear, medium, dimensions, attribution, creditline, classification, subclassification,
visualbrowserclassification, departmentabbr, ...; no rights column: the export drops them) and
`published_images.csv` (exactly uuid, iiifurl, iiifthumburl, viewtype "primary"/"alternate", sequence, width,
height, maxpixels, created, modified, depictstmsobjectid -> objects.objectid, assistivetext);
`objects_constituents.csv` and `constituents.csv`, when present, give the first artist's nationality. DATA is a
folder holding them (a `.zip` of one CSV is read too) or the URL of such a folder; over HTTP the tables are
fetched once, through the same polite client as the images. The selection is made from the tables, with no
request: objects with a primary image, open access only unless asked otherwise, optionally of some
classifications.

Open access: the table holds the images the NGA owns the rights to and fair-use images, and `maxpixels` is "a
limitation used to enforce fair use" (the server renders such an image only from a copy fitted in a
maxpixels x maxpixels box). So an image without `maxpixels` is open access (CC0, the default selection) and one
with it is not (kept by `--all-rights`, with no licence). A copy of the tables that has an `openaccess` column
(1/0) is followed where the row has a value. Images come from the museum's IIIF server,
`{iiifurl}/full/!N,N/0/default.jpg` with N just large enough for `image_size` on the shorter side, never above
the image's own size nor its `maxpixels` box.

With `all_views` the object's other photographs (published_images rows of viewtype "alternate") are records too,
listed after the object: view k by the rows' `sequence` then uuid (records.VIEW_SEP: "1234#view=1"), each with the
object's fields, its own image and its own open-access rule.
"""
from __future__ import annotations

import asyncio
import io
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artdata import ArtdataError
from artdata.harvest.runner import Job
from artdata.harvest.client import PoliteClient
from artdata.datasets.records import (STATUS_FAILED, STATUS_FILTERED, STATUS_NOT_PUBLIC_DOMAIN, VIEW_SEP, extra_json,
                                      new_record, view_id)
from artdata.sources import CappedReader, check_file, http_url, int32, integer as _int, parse_bytes, text as _s, \
    too_large

DEFAULT_DATA = "https://raw.githubusercontent.com/NationalGalleryOfArt/opendata/main/data"
WEBSITE = "https://www.nga.gov/collection"
OBJECT_COLUMNS = ("objectid", "title")
IMAGE_COLUMNS = ("depictstmsobjectid", "iiifurl", "viewtype", "maxpixels")   # and an optional openaccess
# the largest table read (a CSV, or the CSV inside a .zip, decompressed): the museum's are tens of MB (objects.csv
# about 100 MB for its 130,000+ objects); --max-member-bytes raises it
DEFAULT_MAX_MEMBER_BYTES = 512 * 2**20
# the most alternate views of one object listed (all_views); the rest are left out
MAX_VIEWS = 100


def iiif_box(width, height, image_size: int, maxpixels=None) -> int:
    """N of `full/!N,N`: the longer side that gives `image_size` on the shorter one, at most the image's own and
    at most `maxpixels` (the side of the box a fair-use image is rendered from); 2 x image_size when the size is
    not known."""
    w, h = _int(width), _int(height)
    if w and h and w > 0 and h > 0:
        long_, short = max(w, h), min(w, h)
        n = min(long_, math.ceil(image_size * long_ / short))
    else:
        n = 2 * image_size
    box = _int(maxpixels)
    if box and box > 0:
        n = min(n, box)
    return max(1, n)


def open_access(img: dict) -> bool:
    """Whether a published_images row is open access: its `openaccess` flag where the copy has one and the row a
    value, else no `maxpixels` fair-use limit."""
    flag = _s(img.get("openaccess"))
    if flag is not None:
        return _int(flag) == 1
    return _s(img.get("maxpixels")) is None


def _read_csv(src: bytes | Path, where: str, required: tuple[str, ...],
              max_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> pd.DataFrame:
    """A table from a file, an answer's bytes, or the one CSV of a zip of either: read as a stream, refused above
    `max_bytes` (a zip member by its declared size before any byte is inflated, and by the bytes inflated)."""
    if isinstance(src, Path):
        check_file(src, max_bytes, where)
        fh = open(src, "rb")
    else:
        if len(src) > max_bytes:
            raise too_large(where, max_bytes, len(src))
        fh = io.BytesIO(src)
    with fh:
        stream = fh
        if fh.read(4) == b"PK\x03\x04":
            fh.seek(0)
            try:
                z = zipfile.ZipFile(fh)
                members = [i for i in z.infolist() if i.filename.lower().endswith(".csv") and not i.is_dir()]
                if len(members) != 1:
                    raise ArtdataError(f"{where}: expected one CSV in the zip, found {len(members)}")
                info = members[0]
                where = f"{where}:{info.filename}"
                if info.file_size > max_bytes:
                    raise too_large(where, max_bytes, info.file_size)
                stream = io.BufferedReader(CappedReader(z.open(info), max_bytes, where), 1 << 20)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise ArtdataError(f"{where}: unreadable zip ({exc})") from None
        else:
            fh.seek(0)
        try:
            df = pd.read_csv(stream, dtype=str, keep_default_na=False, encoding="utf-8")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError, zipfile.BadZipFile, zlib.error,
                EOFError) as exc:
            raise ArtdataError(f"{where}: cannot read CSV ({type(exc).__name__}: {exc})") from None
    df = df.replace({"": None})
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ArtdataError(f"{where}: missing column(s) {', '.join(missing)} "
                           f"(have: {', '.join(map(str, df.columns[:12]))})")
    return df


@dataclass
class NgaSource:
    data: str = DEFAULT_DATA
    classifications: list[str] = field(default_factory=list)
    open_access_only: bool = True
    image_size: int = 256
    # the largest table (or zip member) read, decompressed (a count of bytes, or text such as 2GiB)
    max_member_bytes: int | str | None = DEFAULT_MAX_MEMBER_BYTES
    all_views: bool = False         # a record for each alternate view of an object too
    name: str = "nga"

    def __post_init__(self):
        self.max_member_bytes = parse_bytes(self.max_member_bytes, DEFAULT_MAX_MEMBER_BYTES)
        # objectid -> (object row, primary image row, nationality, alternate image rows in view order)
        self._rows: dict[str, tuple[dict, dict, str | None, list[dict]]] | None = None
        self._loading: asyncio.Lock | None = None
        self._bad: dict[str, str] = {}      # stand-in id -> why: an objectid that would read as a view's

    def selection(self) -> dict:
        return {"data": self.data, "classifications": self.classifications,
                "open_access_only": self.open_access_only, "image_size": self.image_size,
                **({"all_views": True} if self.all_views else {})}

    @property
    def _remote(self) -> bool:
        return self.data.startswith(("http://", "https://"))

    async def _table(self, client: PoliteClient, name: str, required: tuple[str, ...],
                     optional: bool = False) -> pd.DataFrame | None:
        """`name`.csv (or `name`.zip) of the data folder or URL; None for a missing optional table."""
        for ext in (".csv", ".zip"):
            if self._remote:
                url = f"{self.data.rstrip('/')}/{name}{ext}"
                resp = await client.get(url, max_bytes=self.max_member_bytes)
                if resp.status_code == 404:
                    continue
                if resp.status_code != 200:
                    raise ArtdataError(f"{url}: HTTP {resp.status_code}")
                return _read_csv(resp.content, url, required, self.max_member_bytes)
            path = Path(self.data) / f"{name}{ext}"
            if path.is_file():
                return _read_csv(path, str(path), required, self.max_member_bytes)
        if optional:
            return None
        if not self._remote and not Path(self.data).is_dir():
            raise ArtdataError(f"{self.data}: no such folder (expected the NGA open-data CSVs: objects.csv, "
                               "published_images.csv)")
        if self._remote:
            raise ArtdataError(f"{self.data.rstrip('/')}/{name}.csv: HTTP 404 (nor {name}.zip)")
        raise ArtdataError(f"{self.data}: no {name}.csv (nor {name}.zip)")

    async def _load(self, client: PoliteClient) -> dict[str, tuple[dict, dict, str | None, list[dict]]]:
        objects = await self._table(client, "objects", OBJECT_COLUMNS)
        images = await self._table(client, "published_images", IMAGE_COLUMNS)
        links = await self._table(client, "objects_constituents", ("objectid", "constituentid"), optional=True)
        people = await self._table(client, "constituents", ("constituentid", "nationality"), optional=True)
        primary = images[images["viewtype"].fillna("").str.lower() == "primary"]
        primary = primary.drop_duplicates("depictstmsobjectid")
        by_object = {str(r["depictstmsobjectid"]): r for r in primary.to_dict("records")}
        alternates: dict[str, list[dict]] = {}
        if self.all_views:
            alt = images[images["viewtype"].fillna("").str.lower() == "alternate"]
            for r in alt.to_dict("records"):
                alternates.setdefault(str(r["depictstmsobjectid"]), []).append(r)
            for rs in alternates.values():     # by sequence (a number; unreadable last), then uuid
                rs.sort(key=lambda r: (_int(r.get("sequence")) is None, _int(r.get("sequence")) or 0,
                                       _s(r.get("uuid")) or ""))
        nationality: dict[str, str] = {}
        if links is not None and people is not None:
            nat = {str(r["constituentid"]): _s(r["nationality"]) for r in people.to_dict("records")}
            if "roletype" in links.columns:
                links = links[links["roletype"].fillna("").str.lower() == "artist"]
            if "displayorder" in links.columns:
                links = links.assign(_o=pd.to_numeric(links["displayorder"], errors="coerce")).sort_values("_o")
            for r in links.to_dict("records"):
                oid = str(r["objectid"])
                if oid not in nationality and nat.get(str(r["constituentid"])):
                    nationality[oid] = nat[str(r["constituentid"])]
        rows = {}
        for o in objects.to_dict("records"):
            oid = _s(o.get("objectid"))
            if oid and VIEW_SEP in oid and oid in by_object:      # would take the place of another's view
                self._bad[oid.replace(VIEW_SEP, "#view?")] = (f"objects.csv: objectid {oid!r} holds {VIEW_SEP!r}, "
                                                              "which only a view's id may")
            elif oid and oid in by_object:
                rows[oid] = ({k: v for k, v in o.items() if v is not None}, by_object[oid], nationality.get(oid),
                             alternates.get(oid, [])[:MAX_VIEWS])
        return rows

    def _why_not(self, obj: dict, img: dict) -> str | None:
        if self.open_access_only and not open_access(img):
            return STATUS_NOT_PUBLIC_DOMAIN
        if self.classifications and (_s(obj.get("classification")) or "").lower() not in \
                {c.lower() for c in self.classifications}:
            return STATUS_FILTERED
        return None

    async def ids(self, client: PoliteClient) -> list[str]:
        self._rows = await self._load(client)
        keep = [k for k, (o, i, _, _) in self._rows.items() if self._why_not(o, i) is None]
        keep.sort(key=lambda k: (_int(k) is None, _int(k) or 0, k))
        # an object's alternate views after it (whatever their own rights: a fair-use one is not_public_domain)
        return [i for k in keep for i in (k, *(view_id(k, n) for n in range(1, len(self._rows[k][3]) + 1)))] + \
            sorted(self._bad)       # failed records naming them

    async def job(self, client: PoliteClient, sid: str) -> Job:
        if self._rows is None:                      # a resumed run: ids.json was kept, the tables are read again,
            self._loading = self._loading or asyncio.Lock()     # once, while the other jobs wait for them
            async with self._loading:
                if self._rows is None:
                    self._rows = await self._load(client)
        if sid in self._bad:
            raise ArtdataError(self._bad[sid])
        oid, _, k = sid.partition(VIEW_SEP)
        if oid not in self._rows:
            raise ArtdataError(f"object {oid}: no longer in {self.data} (objects.csv with a primary image)")
        obj, img, nationality, alternates = self._rows[oid]
        view = {}
        if k:
            n = _int(k)
            if not n or not 1 <= n <= len(alternates):
                raise ArtdataError(f"object {oid}: view {k} no longer in {self.data} (published_images.csv has "
                                   f"{len(alternates)} alternate view(s) of it)")
            img, view = alternates[n - 1], {"view": n}
        is_open = open_access(img)
        rec = new_record(
            "nga", sid,
            page_url=f"{WEBSITE}/art-object-page.{oid}.html",
            license="CC0-1.0" if is_open else None,
            is_public_domain=is_open,
            title=_s(obj.get("title")),
            artist=_s(obj.get("attribution")),
            artist_nationality=nationality,
            department=_s(obj.get("departmentabbr")),
            classification=_s(obj.get("classification")),
            object_name=_s(obj.get("subclassification")) or _s(obj.get("visualbrowserclassification")),
            medium=_s(obj.get("medium")),
            date_text=_s(obj.get("displaydate")),
            date_begin=int32(obj.get("beginyear")),
            date_end=int32(obj.get("endyear")),
            dimensions=_s(obj.get("dimensions")),
            extra=extra_json({**obj, "image": {c: v for c, v in img.items() if v is not None}, **view}),
        )
        why = self._why_not(obj, img)
        if why:
            rec.update(status=why, error=None if why == STATUS_NOT_PUBLIC_DOMAIN else "not in the selection")
            return Job(rec)
        box = _s(img.get("maxpixels"))
        if box is not None and not ((_int(box) or 0) > 0):        # a limit we cannot honour: not asked at all
            rec.update(status=STATUS_FAILED, error=f"published_images.csv: maxpixels {box[:40]!r} of image "
                                                   f"{_s(img.get('uuid'))} is not a positive number of pixels")
            return Job(rec)
        base = http_url(img.get("iiifurl"), "published_images.csv iiifurl")
        if base is None:
            rec.update(status=STATUS_FAILED, error=f"published_images.csv: image {_s(img.get('uuid'))} of object "
                                                   f"{oid} has an empty iiifurl")
            return Job(rec)
        base = base.rstrip("/")
        n = iiif_box(img.get("width"), img.get("height"), self.image_size, img.get("maxpixels"))
        urls = [f"{base}/full/!{n},{n}/0/default.jpg"]
        if not (_int(img.get("width")) and _int(img.get("height"))):      # a larger try, within the box too
            big = iiif_box(None, None, 2 * self.image_size, img.get("maxpixels"))
            if big > n:
                urls.append(f"{base}/full/!{big},{big}/0/default.jpg")
        rec["image_url"] = urls[0]
        return Job(rec, urls, min_side=self.image_size)
