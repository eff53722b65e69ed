"""What every site of the mirror is built from: the bundled CC0 sample (Met Open Access rows, one table every
site answers in its own shape; Tate's own sample), the generated JPEGs (colour and stripes from the record's
label, so that a model can learn from them), and the small helpers the site modules share."""
from __future__ import annotations

import colorsys
import functools
import hashlib
import io
from datetime import date, timedelta
from importlib import resources

import numpy as np
import pandas as pd
from PIL import Image

# nationality -> the place a museum writes (AIC's place_of_origin, Cleveland's culture)
COUNTRY = {"French": "France", "Dutch": "Netherlands", "Flemish": "Flanders", "Italian": "Italy",
           "Spanish": "Spain", "German": "Germany", "British": "England", "English": "England",
           "American": "United States", "Japanese": "Japan", "Chinese": "China", "Korean": "Korea",
           "Indian": "India"}


def stable_hash(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def label_colour(label: str) -> tuple[int, int, int]:
    hue = (stable_hash("hue", label) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=256)
def render_jpeg(key: str, label: str, size: tuple[int, int], secondary: str = "", quality: int = 88,
                noise: int = 40) -> bytes:
    """A deterministic JPEG whose hue (from `label`), stripes (from `label` and `secondary`)
    and noise (from `key`) make the class learnable, in colour or in grey."""
    w, h = size
    rng = np.random.default_rng(stable_hash("noise", key) % 2**32)
    colour = np.array(label_colour(label), dtype=np.float32)
    angle = (stable_hash("angle", label) % 180) * np.pi / 180
    freq = 6 + stable_hash("freq", label) % 18 + (stable_hash("freq2", secondary) % 6 if secondary else 0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) * (2 * np.pi * freq / max(w, h))
    stripes = (np.sin(phase + (stable_hash("phase", key) % 628) / 100) * 0.5 + 0.5)[..., None]
    img = colour * (0.55 + 0.45 * stripes) + (1 - stripes) * 30
    img += rng.integers(-noise, noise + 1, size=(h, w, 3), dtype=np.int16)
    arr = np.clip(img, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr, "RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


WORK_SIDE = 768      # the one photograph of a work every site's copy is resampled from


@functools.lru_cache(maxsize=256)
def render_work(work: str, label: str, size: tuple[int, int], secondary: str = "", quality: int = 88,
                noise: int = 40) -> bytes:
    """One work's photograph (`render_jpeg` of `work` at its own aspect, WORK_SIDE px) as a site serves it:
    resampled to that site's `size`, re-encoded. Near-duplicates of each other across the mirror's museums."""
    own = aspect_size(work, WORK_SIDE)
    arr = np.asarray(Image.open(io.BytesIO(render_jpeg(work, label, own, secondary, quality, noise))), np.float32)
    # the work's own composition (a few soft light and dark masses), over the class's stripes
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = np.ones((h, w), np.float32)
    for i in range(4):
        cx, cy = (stable_hash("cx", work, i) % 1000) / 1000 * w, (stable_hash("cy", work, i) % 1000) / 1000 * h
        r = (0.15 + (stable_hash("r", work, i) % 1000) / 1000 * 0.25) * max(w, h)
        sign = 1 if stable_hash("s", work, i) % 2 else -1
        light += sign * 0.35 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    img = Image.fromarray(np.clip(arr * light[..., None], 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    img.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
    return out.getvalue()


def corrupt(data: bytes, key: str) -> bytes:
    """A damaged JPEG: cut short, or with its header garbled (chosen by key)."""
    variant = stable_hash("corrupt", key) % 3
    if variant == 0:
        return data[: max(200, len(data) // 3)]
    if variant == 1:
        return b"\xff\xd8\xff\xe0" + bytes(stable_hash("x", key, i) % 256 for i in range(64)) + data[600:]
    return data[:2] + b"\x00" * 300 + data[302:]


def aspect_size(key: str, longest: int) -> tuple[int, int]:
    """A deterministic landscape or portrait size with the given longest side."""
    ratio = (0.6, 0.75, 0.8, 1.0, 1.25, 1.33, 1.5)[stable_hash("aspect", key) % 7]
    if ratio >= 1:
        return longest, max(1, round(longest / ratio))
    return max(1, round(longest * ratio)), longest


def bundled_met() -> pd.DataFrame:
    with resources.files("artdata.data").joinpath("met_objects.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def bundled_tate() -> pd.DataFrame:
    with resources.files("artdata.data").joinpath("tate_artworks.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def first_value(value) -> str:
    """The first of a |-joined Open Access field, stripped."""
    return str(value or "").split("|")[0].strip()


def int_or(s, default=0) -> int:
    try:
        return int(str(s).strip())
    except (TypeError, ValueError):
        return default


def slug(s: str) -> str:
    return "".join(c.lower() if c.isalnum() else "-" for c in s).strip("-") or "x"


class MetData:
    """The Open Access CSV rows (bundled sample or any such table) answered as the Collection API."""

    def __init__(self, table: pd.DataFrame):
        self.rows = {str(r["Object ID"]).strip(): r for r in table.to_dict("records")}
        self.ids = sorted(self.rows, key=int)

    @staticmethod
    def views(oid: str) -> int:
        """How many additionalImages object `oid` lists when it has an image: 1-3 for about one in seven
        (deterministic), none for the others."""
        return 1 + stable_hash("views", oid) % 3 if stable_hash("has-views", oid) % 7 == 0 else 0

    @staticmethod
    def metadata_date(oid: str) -> str:
        d = date(2023, 1, 1) + timedelta(days=stable_hash("mdate", oid) % 900)
        return f"{d.isoformat()}T04:05:{stable_hash('sec', oid) % 60:02d}.123Z"

    def object(self, oid: str, media_base: str, faults) -> dict:
        r = self.rows[oid]
        dept = r.get("Department") or ""
        has_image = bool(r.get("Is Public Domain")) and not faults.pick("no_image", oid, faults.no_image)
        path = f"/CRDImages/{slug(dept)[:3]}"
        nat = [n.strip() for n in str(r.get("Artist Nationality") or "").split("|")]
        return {
            "objectID": int(oid),
            "isHighlight": bool(r.get("Is Highlight")),
            "accessionNumber": r.get("Object Number") or "",
            "accessionYear": r.get("AccessionYear") or "",
            "isPublicDomain": bool(r.get("Is Public Domain")),
            "primaryImage": f"{media_base}{path}/original/{oid}.jpg" if has_image else "",
            "primaryImageSmall": f"{media_base}{path}/web-large/{oid}.jpg" if has_image else "",
            # its other photographs (original size, as the Met lists them): pictures of their own, not copies
            "additionalImages": [f"{media_base}{path}/original/{oid}_{k}.jpg"
                                 for k in range(1, self.views(oid) + 1)] if has_image else [],
            "constituents": None,
            "department": dept,
            "objectName": r.get("Object Name") or "",
            "title": r.get("Title") or "",
            "culture": r.get("Culture") or "",
            "period": r.get("Period") or "",
            "dynasty": r.get("Dynasty") or "",
            "reign": r.get("Reign") or "",
            "artistRole": (r.get("Artist Role") or "").split("|")[0],
            "artistDisplayName": (r.get("Artist Display Name") or "").split("|")[0],
            "artistDisplayBio": (r.get("Artist Display Bio") or "").split("|")[0],
            "artistNationality": nat[0] if nat else "",
            "artistBeginDate": (r.get("Artist Begin Date") or "").split("|")[0].strip(),
            "artistEndDate": (r.get("Artist End Date") or "").split("|")[0].strip(),
            "objectDate": r.get("Object Date") or "",
            "objectBeginDate": int_or(r.get("Object Begin Date")),
            "objectEndDate": int_or(r.get("Object End Date")),
            "medium": r.get("Medium") or "",
            "dimensions": r.get("Dimensions") or "",
            "creditLine": r.get("Credit Line") or "",
            "city": r.get("City") or "",
            "state": r.get("State") or "",
            "county": r.get("County") or "",
            "country": r.get("Country") or "",
            "region": r.get("Region") or "",
            "subregion": r.get("Subregion") or "",
            "classification": r.get("Classification") or "",
            "rightsAndReproduction": r.get("Rights and Reproduction") or "",
            "linkResource": "",
            "metadataDate": self.metadata_date(oid),
            "repository": r.get("Repository") or "Metropolitan Museum of Art, New York, NY",
            "objectURL": r.get("Link Resource") or f"https://www.metmuseum.org/art/collection/search/{oid}",
            "tags": [{"term": t} for t in str(r.get("Tags") or "").split("|") if t] or None,
            "objectWikidata_URL": r.get("Object Wikidata URL") or "",
            "isTimelineWork": bool(r.get("Is Timeline Work")),
            "GalleryNumber": r.get("Gallery Number") or "",
        }


def parse_size(size: str, w: int, h: int) -> tuple[int, int] | None:
    """A IIIF Image API size parameter (full, max, w,, ,h, w,h, !w,h) for an image of w x h: the size to serve,
    None when it cannot be read."""
    if size in ("full", "max"):
        return w, h
    fit = size.startswith("!")
    a, _, b = size.lstrip("!^").partition(",")
    try:
        tw, th = (int(a) if a else None), (int(b) if b else None)
    except ValueError:
        return None
    if tw is None and th is None:
        return None
    if fit and tw and th:
        s = min(tw / w, th / h)
        return max(1, round(w * s)), max(1, round(h * s))
    if tw:
        return tw, th or max(1, round(h * tw / w))
    return max(1, round(w * th / h)), th
