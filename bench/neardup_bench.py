"""Leak-free splits (#22): what fingerprints cost in a harvest, and how fast the near-duplicate search is.

    python bench/neardup_bench.py cost                 # fingerprint share of the image workers' time
    python bench/neardup_bench.py search --n 1000000   # every pair within 8 bits among 1,000,000

cost: `process_image` (decode with JPEG draft, resize to 256 px, encode q90: the image workers' whole job)
on (a) 1024x768 JPEGs from the mirror's renderer (harvest_bench.py's inputs) and (b) the eight real CC0
paintings of tests/fixtures/artworks enlarged to the AIC IIIF size (843 px wide), timed with the
fingerprint and with it switched off, interleaved, best of 15 rounds each (CPU time of the process); and the time spent inside the
fingerprint over the whole (median of the rounds), which a difference of two noisy totals blurs.

search: n random 64-bit fingerprints with 10,000 planted pairs at 0..radius bits; `pairs_within` (block
tables) must return every planted pair; wall time and peak memory of the search alone; then the same with n
centre fingerprints (10,000 planted pairs of their own) through `candidates`, the two searches and their union
that `near_duplicates` confirms.
"""
from __future__ import annotations

import argparse
import io
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cost(rounds: int = 15) -> None:
    import artdata.datasets.images as images
    from artdata.mirror.sample import render_jpeg
    cfg = images.ImageConfig(size=256)
    synthetic = [render_jpeg(f"bench:{i}", f"class{i % 7}", (1024, 768)) for i in range(40)]
    real = []
    for p in sorted((ROOT / "tests" / "fixtures" / "artworks").glob("*.jpg")):
        im = Image.open(p).convert("RGB")
        im = im.resize((843, round(im.height * 843 / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        real += [buf.getvalue()] * 5
    keep = images.fingerprints
    inside = [0.0]

    def timed(im):                      # the time spent in the fingerprint itself, inside process_image
        t = time.process_time()
        try:
            return keep(im)
        finally:
            inside[0] += time.process_time() - t

    for name, data in (("mirror 1024x768", synthetic), ("real paintings 843 px wide", real)):
        best = {"with": float("inf"), "without": float("inf")}
        shares = []
        for _ in range(rounds):
            for mode in ("with", "without"):
                images.fingerprints = timed if mode == "with" else (lambda im: (None, None))
                inside[0] = 0.0
                t = time.process_time()         # CPU time: what a CPU-bound worker spends (steal excluded)
                for d in data:
                    images.process_image(d, cfg)
                wall = time.process_time() - t
                best[mode] = min(best[mode], wall / len(data))
                if mode == "with":
                    shares.append(inside[0] / wall)
        images.fingerprints = keep
        share = (best["with"] - best["without"]) / best["with"]
        print(f"{name}: {1e3 * best['without']:.2f} ms/image without, {1e3 * best['with']:.2f} ms with the "
              f"fingerprint ({100 * share:.1f} % by difference); the fingerprint itself "
              f"{100 * float(np.median(shares)):.1f} % of process_image's time (median of {rounds} rounds)")


def _planted(n: int, radius: int, planted: int, rng) -> tuple[np.ndarray, set]:
    fps = rng.integers(-2**63, 2**63 - 1, size=n, dtype=np.int64, endpoint=True)
    u = fps.view(np.uint64)
    src = rng.choice(n, size=2 * planted, replace=False)
    truth = set()
    for s, d in zip(src[:planted], src[planted:]):
        v = u[s]
        for b in rng.choice(64, size=int(rng.integers(0, radius + 1)), replace=False):
            v ^= np.uint64(1) << np.uint64(b)
        u[d] = v
        truth.add((int(min(s, d)), int(max(s, d))))
    return fps, truth


def search(n: int, radius: int, planted: int = 10_000, seed: int = 0) -> None:
    from artdata.splits.neardup import candidates, pairs_within, plan
    rng = np.random.default_rng(seed)
    fps, truth = _planted(n, radius, planted, rng)
    centres, truth_c = _planted(n, radius, planted, rng)
    blocks, keys = plan(len(np.unique(fps)), radius)
    t = time.perf_counter()
    i, j, d = pairs_within(fps, radius)
    wall = time.perf_counter() - t
    found = set(zip(i.tolist(), j.tolist()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"n={n:,} radius={radius}: {len(i):,} pairs in {wall:.1f} s ({blocks} blocks, keys of {keys}: "
          f"{__import__('math').comb(blocks, keys)} tables); planted pairs found {len(truth & found):,}/{len(truth):,}; "
          f"peak RSS {peak:.0f} MB")
    if truth - found:
        sys.exit("missed planted pairs")
    # what near_duplicates searches: pairs near in the fingerprint or in the centre fingerprint
    t = time.perf_counter()
    i, j, d = candidates(fps.tolist(), radius, centres.tolist())
    wall = time.perf_counter() - t
    both = set(zip(i.tolist(), j.tolist()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  and with the centre fingerprints (two searches, the candidates of near_duplicates): {len(i):,} pairs "
          f"in {wall:.1f} s; planted pairs found {len((truth | truth_c) & both):,}/{len(truth | truth_c):,}; "
          f"peak RSS {peak:.0f} MB")
    if (truth | truth_c) - both:
        sys.exit("missed planted pairs")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("cost", "search"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--radius", type=int, default=8)
    a = ap.parse_args()
    cost() if a.what == "cost" else search(a.n, a.radius)
