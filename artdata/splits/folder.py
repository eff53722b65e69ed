"""`artdata import-folder DIR`: a class-per-folder image collection (Pandora18k, WikiArt style) -> manifest.

    DIR/<class>/<image>.jpg  ->  records with source "folder", source_id "<class>/<file>", label "<class>"

Images go through the image store like harvested ones (corrupt files become `failed` records).
The card profiles the originals: width, height and aspect-ratio histograms (the movement study's
profiling step), and `build-split movement` splits the result.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from artdata import ArtdataError
from artdata.datasets.images import ImageConfig, ImagePool, ImageStore
from artdata.datasets.manifest import Manifest, write_manifest
from artdata.paths import Home
from artdata.datasets.records import new_record, now_utc, to_table

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def scan(root: Path) -> list[tuple[str, Path]]:
    """(class, file) pairs, sorted; hidden files and non-images skipped."""
    if not root.is_dir():
        raise ArtdataError(f"{root}: not a folder")
    pairs = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(cls.rglob("*")):
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES:
                pairs.append((cls.name, f))
    if not pairs:
        raise ArtdataError(f"{root}: no images in class sub-folders (expected {root}/<class>/<image>.jpg)")
    return pairs


def histogram(values, bins) -> dict:
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins)
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.astype(int).tolist()}


def profile(widths, heights) -> dict:
    w, h = np.asarray(widths, float), np.asarray(heights, float)
    if w.size == 0:
        return {}
    aspect = w / h
    return {"images": int(w.size),
            "width": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max()), **histogram(w, 20)},
            "height": {"min": int(h.min()), "median": float(np.median(h)), "max": int(h.max()), **histogram(h, 20)},
            "aspect": {"min": float(aspect.min()), "median": float(np.median(aspect)), "max": float(aspect.max()),
                       **histogram(aspect, 20)}}


def import_folder(home: Home, root: str | os.PathLike, name: str, image: ImageConfig = ImageConfig(size=512),
                  workers: int | None = None, progress=None) -> Manifest:
    from artdata.datasets.manifest import check_name
    check_name(name)
    root = Path(root).resolve()
    pairs = scan(root)
    store = ImageStore(home.images)
    if progress:
        progress.start(len(pairs), 0)
    records = []
    with ImagePool(store, image, workers) as pool:
        futures = [(cls, f, pool.submit_file(f)) for cls, f in pairs]
        for cls, f, fut in futures:
            res = fut.result()
            rel = f.relative_to(root).as_posix()
            rec = new_record("folder", rel, image_url=f.as_uri(), label=cls, harvested_at=now_utc(),
                             **res.fields())
            if res.error:
                rec["error"] = f"{res.error} ({rel})"
            records.append(rec)
            if progress:
                progress.advance(res.status)
    if progress:
        progress.stop()
    ok = [r for r in records if r["status"] == "ok"]
    prof = profile([r["orig_width"] for r in ok], [r["orig_height"] for r in ok])
    prof["per_class"] = dict(sorted(Counter(r["label"] for r in records).items()))
    lineage = {"source": "folder", "selection": {"folder": str(root)}, "image": image.__dict__, "parents": []}
    return write_manifest(home.manifests, name, to_table(records), lineage=lineage,
                          description=f"images imported from {root.name}/ (one class per folder)",
                          extra={"profile": prof})
