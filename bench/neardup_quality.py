"""Recall and false pairs of the near-duplicate step (#22) on real artwork images with planted duplicates.

    # the images: 267 CC0 paintings of the Art Institute of Chicago (its IIIF images, 843 px wide), as
    # published in the public GitHub repository klv4de/ArtWall under github_collections/images/
    python bench/neardup_quality.py build --images DIR      # once: the set under bench/out/neardup/
    python bench/neardup_quality.py measure                 # the figures of bench/README.md

build: every painting is a distinct image, and so is each of three look-alike versions of it, each family
sharing what fools a plain hash (every member of a family is a different work):
  - "drawing": the work as a faint drawing (12-20 % contrast) on one kind of toned paper, the same lamp
    fall-off, the same placement;
  - "print": the work small in the middle of the same wide blank margin, with a plate mark;
  - "sketchbook": the work as a page on the same dark copy stand, same placement and light;
each sheet of paper has its own grain. All are stored as artdata stores images (256 px shorter side,
JPEG q90). Each distinct image then gets one planted duplicate, with a transform drawn from TRANSFORMS
(re-encoded q55-85; resized 0.4-0.8; cropped 0-4 % a side, at least one side 2 %; bordered 3-8 % in white,
black, grey or cream; colour-shifted: channel gains 0.85-1.15, gamma 0.8-1.25, saturation 0.7-1.3; and
three combinations), seeded.

build --images DIR --out NAME: a held-out set of real images as they are (no composites), one sub-folder of
DIR a family, each image with one planted copy made the same way (bench/out/neardup-NAME/); a picture's
"_thumb"/"_large" version and the pairs named in DIR/same_works.txt count as one work. `measure --set NAME`
measures it with the defaults tuned on the AIC set; `--radius R` tries another search distance.

measure: fingerprints and structure maps of all images; candidate pairs within RADIUS bits
(`pairs_within`); confirmed by `similarity` >= threshold. Recall = planted (original, copy) pairs found;
false pairs = pairs between images of different works, per 1,000 distinct images.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from artdata.datasets.fingerprint import as_uint64, fingerprints, structure
from artdata.splits.neardup import RADIUS, THRESHOLD, candidates, pairs_within, similarity

OUT = Path(__file__).resolve().parent / "out" / "neardup"


TRANSFORMS = ("reencode", "resize", "crop", "border", "colour", "resize+reencode+crop",
              "border+colour", "crop+colour+reencode")


def jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def crop(img: Image.Image, rng: random.Random, lo=0.02, hi=0.04) -> Image.Image:
    w, h = img.size
    l, t, r, b = (rng.uniform(0, hi) for _ in range(4))
    # at least one side loses `lo`
    side = rng.randrange(4)
    vals = [l, t, r, b]
    vals[side] = max(vals[side], lo)
    l, t, r, b = vals
    return img.crop((round(l * w), round(t * h), w - round(r * w), h - round(b * h)))


def border(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    pad = round(max(w, h) * rng.uniform(0.03, 0.08))
    colour = rng.choice([(255, 255, 255), (0, 0, 0), (128, 128, 128), (240, 235, 220)])
    return ImageOps.expand(img.convert("RGB"), border=pad, fill=colour)


def colour(img: Image.Image, rng: random.Random) -> Image.Image:
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    gains = np.array([rng.uniform(0.85, 1.15) for _ in range(3)], dtype=np.float32)
    gamma = rng.uniform(0.8, 1.25)
    a = np.clip(a * gains, 0, 1) ** gamma
    out = Image.fromarray((a * 255).astype(np.uint8))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.7, 1.3))


def resize(img: Image.Image, rng: random.Random) -> Image.Image:
    s = rng.uniform(0.4, 0.8)
    w, h = img.size
    return img.resize((max(16, round(w * s)), max(16, round(h * s))), Image.LANCZOS)


def duplicate(img: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    out = img.convert("RGB")
    for step in kind.split("+"):
        if step == "reencode":
            out = jpeg(out, rng.randint(55, 85))
        elif step == "resize":
            out = resize(out, rng)
        elif step == "crop":
            out = crop(out, rng)
        elif step == "border":
            out = border(out, rng)
        elif step == "colour":
            out = colour(out, rng)
        else:
            raise ValueError(kind)
    return jpeg(out, 90)


# ---------------------------------------------------------------- hard distinct families

def _paper(size, seed: int, tone=(226, 214, 190), grain_seed: int | None = None) -> np.ndarray:
    w, h = size
    r = np.random.default_rng(seed if grain_seed is None else grain_seed)
    grain = Image.fromarray((r.normal(0, 1, (h // 4 + 1, w // 4 + 1)) * 40 + 128).clip(0, 255).astype(np.uint8))
    grain = np.asarray(grain.resize((w, h), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1.5)), np.float32) - 128
    yy, xx = np.mgrid[0:h, 0:w]
    fall = 1 - 0.18 * (((xx - w * 0.35) / w) ** 2 + ((yy - h * 0.4) / h) ** 2)   # off-centre lamp
    base = np.array(tone, np.float32)[None, None, :] * fall[..., None]
    return base + grain[..., None] * 0.12


class Families:
    """Shared backgrounds: every member of a family has the same paper tone, light fall-off,
    margins and stand; only the paper's grain is each sheet's own (as with real sheets)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.members = 0
        self.stand_seed = seed + 3
        self._sheet = lambda g: _paper((620, 800), seed + 1, grain_seed=g)
        self._margin = lambda g: _paper((700, 900), seed + 2, tone=(238, 234, 224), grain_seed=g)
        self._page = lambda g: _paper((600, 760), seed + 4, tone=(232, 224, 205), grain_seed=g)
        stand = np.full((800, 1000, 3), (38, 36, 34), np.float32)
        r = np.random.default_rng(seed + 3)
        stand += r.normal(0, 3, stand.shape[:2])[..., None]
        self.stand = stand

    def _grain(self) -> int:
        self.members += 1
        return 1000 + self.seed * 100000 + self.members

    def drawing(self, img: Image.Image, contrast: float) -> Image.Image:
        sheet = self._sheet(self._grain())
        h, w = sheet.shape[:2]
        g = ImageOps.grayscale(img)
        g = ImageOps.fit(g, (int(w * 0.8), int(h * 0.8)))
        ink = 1 - np.asarray(g, np.float32) / 255          # dark strokes where the work is dark
        out = sheet
        y0, x0 = int(h * 0.1), int(w * 0.1)
        region = out[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]]
        region *= (1 - contrast * ink)[..., None]
        return Image.fromarray(out.clip(0, 255).astype(np.uint8))

    def print_(self, img: Image.Image) -> Image.Image:
        out = self._margin(self._grain())
        h, w = out.shape[:2]
        pw, ph = int(w * 0.5), int(h * 0.42)
        work = np.asarray(ImageOps.fit(ImageOps.grayscale(img), (pw, ph)), np.float32)
        tone = work[..., None] * np.array([1.0, 0.97, 0.9], np.float32)
        x0, y0 = (w - pw) // 2, int(h * 0.22)
        # plate mark: a slightly darker rectangle around the image
        out[y0 - 14:y0 + ph + 14, x0 - 14:x0 + pw + 14] *= 0.97
        out[y0:y0 + ph, x0:x0 + pw] = tone
        return Image.fromarray(out.clip(0, 255).astype(np.uint8))

    def sketchbook(self, img: Image.Image) -> Image.Image:
        out = self.stand.copy()
        page = self._page(self._grain())
        ph, pw = page.shape[:2]
        g = ImageOps.fit(ImageOps.grayscale(img), (int(pw * 0.7), int(ph * 0.6)))
        ink = 1 - np.asarray(g, np.float32) / 255
        y0, x0 = int(ph * 0.15), int(pw * 0.15)
        page[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]] *= (1 - 0.35 * ink)[..., None]
        oy, ox = 20, 200
        out[oy:oy + ph, ox:ox + pw] = page
        return Image.fromarray(out.clip(0, 255).astype(np.uint8))


# ---------------------------------------------------------------- build and measure

def _store(im: Image.Image) -> Image.Image:
    """As artdata stores an image: 256 px on the shorter side, JPEG q90."""
    s = 256 / min(im.size)
    return jpeg(im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS), 90)


def _plant(out: Path, rows: list, name: str, work: str, family: str, im: Image.Image, rng) -> None:
    im = _store(im)
    im.save(out / f"{name}.jpg", quality=90)
    kind = rng.choice(TRANSFORMS)
    duplicate(im, kind, rng).save(out / f"{name}.dup.jpg", quality=90)
    rows.append({"name": name, "work": work, "family": family, "kind": kind})


def set_dir(name: str | None) -> Path:
    return OUT if not name else OUT.parent / f"neardup-{name}"


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".webp")


def build(images: Path, seed: int = 0, out_name: str | None = None) -> None:
    """Without out_name: the AIC paintings and their three composite look-alike families (bench/out/neardup/).
    With out_name: every image under `images` as it is (a real set: no composites), its family the name of
    its sub-folder (or the folder's own name), each with one planted copy made the same way
    (bench/out/neardup-NAME/)."""
    out = set_dir(out_name)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    if out_name:
        paths = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        # the source's own duplicates are one work: a picture and its "_thumb"/"_large" version, and the
        # pairs named in same_works.txt (two file names a line, checked by eye)
        same = {}
        if (images / "same_works.txt").exists():
            for line in (images / "same_works.txt").read_text().splitlines():
                parts = line.split("#")[0].split()
                if len(parts) >= 2:
                    for other in parts[1:]:
                        same[Path(other).stem] = Path(parts[0]).stem
        for path in paths:
            rel = path.relative_to(images)
            family = rel.parts[0] if len(rel.parts) > 1 else images.name
            name = "-".join(rel.with_suffix("").parts).replace(" ", "_")
            stem = same.get(path.stem, path.stem)
            work = family + "/" + re.sub(r"(_thumb|_large|_small|-sm)$", "", stem)
            with Image.open(path) as im:
                img = im.convert("RGB")
            _plant(out, rows, name, work, family, img, rng)
    else:
        fam = Families(seed)
        for path in sorted(images.glob("*.jpg")):
            img = Image.open(path).convert("RGB")
            variants = {"painting": img, "drawing": fam.drawing(img, rng.uniform(0.12, 0.20)),
                        "print": fam.print_(img), "sketchbook": fam.sketchbook(img)}
            for family, im in variants.items():
                _plant(out, rows, f"{family}-{path.stem}", path.stem, family, im, rng)
    (out / "index.json").write_text(json.dumps(rows, indent=1))
    print(f"{len(rows)} distinct images and {len(rows)} planted duplicates in {out}")


def content_hash(im: Image.Image, frac: float = 0.3) -> int:
    """An experiment (`measure --content-hash`), not artdata's: the fingerprint's hash of the picture's content box,
    the rows and columns whose mean gradient is over `frac` of the way from their 10th to their 95th
    percentile, within the trimmed frame (the trimmed frame itself when that box covers 90 % of both sides)."""
    from artdata.datasets.fingerprint import gray, hash_array, trim_box
    g = gray(im)
    t, b, l, r = trim_box(np.asarray(g))
    a = np.asarray(g, np.float32)[t:b, l:r]

    def span(p):
        p = np.convolve(p, np.ones(5) / 5, mode="same")
        lo, hi = np.percentile(p, 10), np.percentile(p, 95)
        on = np.nonzero(p > lo + frac * (hi - lo))[0] if hi > lo * 1.5 else np.empty(0, int)
        return (on[0], on[-1] + 2) if on.size else (0, len(p) + 1)
    if min(a.shape) >= 16:
        y0, y1 = span(np.abs(np.diff(a, axis=0)).mean(axis=1))
        x0, x1 = span(np.abs(np.diff(a, axis=1)).mean(axis=0))
        if not ((y1 - y0) > 0.9 * (b - t) and (x1 - x0) > 0.9 * (r - l)):
            t, b, l, r = t + y0, min(b, t + y1), l + x0, min(r, l + x1)
    return hash_array(np.asarray(g, np.float32)[t:b, l:r])


def measure(radius: int = RADIUS, thresholds=(0.3, 0.35, 0.4, 0.45, 0.5), set_name: str | None = None,
            threshold: float = THRESHOLD, content: bool = False) -> dict:
    out = set_dir(set_name)
    rows = json.loads((out / "index.json").read_text())
    items = []
    for r in rows:
        items += [(out / f"{r['name']}.jpg", r), (out / f"{r['name']}.dup.jpg", r)]
    imgs = []
    for f, _ in items:
        im = Image.open(f)
        im.load()
        imgs.append(im)
    t = time.perf_counter()
    both = [fingerprints(im) for im in imgs]
    fps = np.array([f for f, _ in both], dtype=np.int64)
    centres = np.array([c for _, c in both], dtype=np.int64)
    t_fp = (time.perf_counter() - t) / len(imgs)
    t = time.perf_counter()
    st = [structure(im) for im in imgs]
    t_st = (time.perf_counter() - t) / len(imgs)
    n = len(rows)
    planted = {(2 * k, 2 * k + 1): rows[k] for k in range(n)}
    u = as_uint64(fps)
    print(f"set {out.name}: {len(items)} images ({n} distinct + {n} planted copies); fingerprint "
          f"{1e3 * t_fp:.2f} ms, structure {1e3 * t_st:.2f} ms an image")
    dist = {p: int(np.bitwise_count(u[p[0]] ^ u[p[1]])) for p in planted}
    by = defaultdict(list)
    for p, r in planted.items():
        by[r["kind"]].append(dist[p])
    print("planted pairs, fingerprint distance: median / 95th percentile / max")
    for k, ds in sorted(by.items()):
        print(f"  {k:24s} {len(ds):4d} pairs  {np.median(ds):4.1f} {np.percentile(ds, 95):5.1f} {max(ds):3d}")
    i, j, d = pairs_within(fps, radius)
    alone = set(zip(i.tolist(), j.tolist()))
    i, j, d = candidates(fps.tolist(), radius, centres.tolist())    # what near_duplicates confirms
    found = set(zip(i.tolist(), j.tolist()))
    if content:                     # the experiment: a third hash, of the content box, as a candidate source too
        ci, cj, _ = pairs_within(np.array([content_hash(im) for im in imgs], dtype=np.int64), radius)
        found |= set(zip(ci.tolist(), cj.tolist()))
        print("with the content-box hash as a third candidate source (an experiment, not artdata's):")
    print(f"radius {radius}, the whole-picture fingerprint alone: hash recall "
          f"{sum(p in alone for p in planted) / n:.3f}, candidate pairs {len(alone)}; with the centre fingerprint:")
    work = [r["work"] for _, r in items]
    false = [p for p in found if work[p[0]] != work[p[1]]]
    print(f"radius {radius}: hash recall {sum(p in found for p in planted) / n:.3f}, candidate pairs {len(found)}, "
          f"of them between different works {len(false)} ({1000 * len(false) / n:.0f} per 1,000 images)")
    thresholds = sorted(set(thresholds) | {threshold})
    t = time.perf_counter()
    sims = {p: similarity(st[p[0]], st[p[1]], enough=max(thresholds)) for p in found}
    t_c = (time.perf_counter() - t) / max(1, len(found))
    fams = sorted({r["family"] for r in rows})
    print(f"confirmation: {1e3 * t_c:.1f} ms a candidate pair")
    print("threshold  recall  false pairs (per 1,000)   recall by family: " + " ".join(fams))
    for th in thresholds:
        ok = {p for p, s in sims.items() if s >= th}
        rec = sum(p in ok for p in planted) / n
        fp_ = [p for p in ok if work[p[0]] != work[p[1]]]
        fam_rec = []
        for f in fams:
            ps = [p for p, r in planted.items() if r["family"] == f]
            fam_rec.append(f"{sum(p in ok for p in ps) / len(ps):.3f}")
        by_k = Counter(r["kind"] for p, r in planted.items() if p not in ok)
        print(f"  {th:.2f}     {rec:.3f}   {len(fp_):5d} ({1000 * len(fp_) / n:5.1f})        {' '.join(fam_rec)}"
              f"   missed by transform: {dict(by_k.most_common(3))}")
    # where the planted pairs missed at the default threshold are lost
    ok = {p for p, s in sims.items() if s >= threshold}
    missed = [p for p in planted if p not in ok]
    lost_search = [p for p in missed if p not in found]
    print(f"at {threshold:.2f}: {len(missed)} planted pairs missed: {len(lost_search)} not candidates "
          f"(distances {sorted(dist[p] for p in lost_search)}), {len(missed) - len(lost_search)} failed "
          f"confirmation (similarities {sorted(round(sims[p], 2) for p in missed if p in found)})")
    fp_ = [p for p in ok if work[p[0]] != work[p[1]]]
    per_family = {}
    for f in fams:
        ps = [p for p, r in planted.items() if r["family"] == f]
        members = sum(1 for r in rows if r["family"] == f)
        fam_false = [p for p in fp_ if items[p[0]][1]["family"] == f or items[p[1]][1]["family"] == f]
        per_family[f] = {"n": members, "recall": sum(p in ok for p in ps) / len(ps),
                         "false_pairs": len(fam_false), "false_per_1000": 1000 * len(fam_false) / members}
        print(f"  {f:20s} {members:4d} images  recall {per_family[f]['recall']:.3f}  false pairs touching it "
              f"{len(fam_false)} ({per_family[f]['false_per_1000']:.1f} per 1,000 of its images)")
    for p in fp_[:10]:
        print(f"  false pair: {items[p[0]][0].name} ~ {items[p[1]][0].name}  distance "
              f"{int(np.bitwise_count(u[p[0]] ^ u[p[1]]))}  similarity {sims[p]:.3f}")
    return {"recall": sum(p in ok for p in planted) / n, "false_pairs": len(fp_),
            "false_per_1000": 1000 * len(fp_) / n, "families": per_family}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("build", "measure"))
    ap.add_argument("--images", type=Path)
    ap.add_argument("--out", help="build a real set as it is (no composites) under bench/out/neardup-NAME/")
    ap.add_argument("--set", help="measure bench/out/neardup-NAME/ (default: the AIC set, bench/out/neardup/)")
    ap.add_argument("--radius", type=int, default=RADIUS)
    ap.add_argument("--content-hash", action="store_true", help="also a third hash of the content box (experiment)")
    a = ap.parse_args()
    if a.what == "build":
        if not a.images:
            sys.exit("build needs --images DIR (the paintings, *.jpg; with --out, any images, one sub-folder a family)")
        build(a.images, out_name=a.out)
    else:
        measure(radius=a.radius, set_name=a.set, content=a.content_hash)
