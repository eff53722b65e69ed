"""Every pair of 64-bit fingerprints within a Hamming distance, without an all-pairs loop.

    i, j, d = pairs_within(fps, radius=6)      # i < j, d = distance, sorted by (i, j)

Block tables (the pigeonhole trick of Manku et al., "Detecting near-duplicates for web
crawling", 2007): cut the 64 bits into B = radius + k blocks. Two fingerprints that differ in at
most `radius` bits leave at least k blocks untouched, so they share the key made of some k
blocks. One table per choice of k blocks (C(B, k) tables); in each, fingerprints are sorted by
that key and only those in the same run are compared. k is chosen by a cost model of n and radius
so that keys are long enough to keep runs short but the tables few.

`similarity` is the second step for candidate pairs: the two images' structure maps
(datasets.fingerprint.structure) aligned (either may be a crop of the other, a few per cent per side)
and compared tile by tile, so that two different drawings on the same paper, or two prints with the
same blank margin, are told apart. Figures on real artwork images: bench/README.md.
"""
from __future__ import annotations

import functools
import math
from itertools import combinations

import numpy as np

from artdata.datasets.fingerprint import as_uint64, resize_array

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _blocks(b: int) -> list[tuple[int, int]]:
    """(offset, width) of b near-equal blocks covering 64 bits."""
    out, off = [], 0
    for i in range(b):
        w = 64 // b + (1 if i < 64 % b else 0)
        out.append((off, w))
        off += w
    return out


def plan(n: int, radius: int) -> tuple[int, int]:
    """(blocks, key blocks) minimising a cost model: sorting n per table + candidate pairs."""
    best = None
    for k in range(1, 8):
        b = radius + k
        if b > 64:
            break
        tables = math.comb(b, k)
        key_bits = 64 * k / b
        cands = tables * n * n / 2 / 2 ** key_bits
        cost = tables * n * 1.0 + cands * 0.5          # a sort step vs a compared pair (measured ~2:1)
        if best is None or cost < best[0]:
            best = (cost, b, k)
    return best[1], best[2]


def _close_in_runs(sorted_keys: np.ndarray, sorted_values: np.ndarray, order: np.ndarray, radius: int):
    """The (a, b) position pairs (from `order`) whose keys are equal and whose values are within
    `radius` bits: the distance is taken in sorted order, next to the keys, so that only the
    close pairs are ever made (a run's other pairs cost a comparison, no memory)."""
    n = len(sorted_keys)
    out_a, out_b = [], []
    live = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]   # positions p with key[p] == key[p+1]
    step = 1
    while live.size:
        d = np.bitwise_count(sorted_values[live] ^ sorted_values[live + step])
        hit = live[d <= radius]
        if hit.size:
            out_a.append(order[hit])
            out_b.append(order[hit + step])
        step += 1
        nxt = live[live + step < n]
        live = nxt[sorted_keys[nxt] == sorted_keys[nxt + step]]
    if not out_a:
        e = np.empty(0, dtype=np.int64)
        return e, e
    return np.concatenate(out_a), np.concatenate(out_b)


def _sorted_by_key(values: np.ndarray, blocks: list[tuple[int, int]], idx_bits: int, positions: np.ndarray):
    """(keys in order, positions in that order) of `values` keyed by the bits of `blocks`.

    The key's bits are packed together and the position put below them, so that one plain sort of
    uint64 values (SIMD in NumPy >= 2) does what an argsort would: 10-15x faster at 1,000,000
    (bench/README.md). Equal keys come out in any order, which the runs do not mind."""
    key = np.zeros(len(values), dtype=np.uint64)
    shift = 0
    for off, w in blocks:
        key |= ((values >> np.uint64(off)) & np.uint64((1 << w) - 1)) << np.uint64(shift)
        shift += w
    if shift + idx_bits > 64:                       # more than 2**40 or so values: the plain way
        order = np.argsort(key)
        return key[order], order
    packed = np.sort((key << np.uint64(idx_bits)) | positions)
    return packed >> np.uint64(idx_bits), (packed & np.uint64((1 << idx_bits) - 1)).astype(np.int64)


def pairs_within(fingerprints, radius: int, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) of fingerprints at Hamming distance <= radius: arrays i, j, distance.

    Identical fingerprints are collapsed first, so a thousand copies of one blank image cost one
    entry in the tables (their pairs are still all returned)."""
    if not 0 <= radius <= 32:
        raise ValueError(f"radius must be between 0 and 32 bits, not {radius}")
    fps = as_uint64(fingerprints)
    n = len(fps)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    if n < 2:
        return empty
    uniq, inverse = np.unique(fps, return_inverse=True)
    u = len(uniq)
    ua, ub = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    if u >= 2 and radius > 0:
        b, k = plan(u, radius)
        blocks = _blocks(b)
        tables = list(combinations(range(b), k))
        idx_bits = max(1, (u - 1).bit_length())
        positions = np.arange(u, dtype=np.uint64)
        for t, chosen in enumerate(tables):
            sorted_keys, order = _sorted_by_key(uniq, [blocks[c] for c in chosen], idx_bits, positions)
            a, c2 = _close_in_runs(sorted_keys, uniq[order], order, radius)
            if a.size:
                ua.append(np.minimum(a, c2))
                ub.append(np.maximum(a, c2))
            if progress:
                progress(t + 1, len(tables))
    pa_, pb_ = np.concatenate(ua), np.concatenate(ub)
    if pa_.size:
        code = np.unique(pa_ * u + pb_)
        pa_, pb_ = code // u, code % u
    # expand unique-fingerprint pairs to record pairs, plus pairs among identical fingerprints
    members = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[members], np.arange(u + 1))
    out_i, out_j = [], []
    for x, y in zip(pa_.tolist(), pb_.tolist()):
        mx, my = members[starts[x]:starts[x + 1]], members[starts[y]:starts[y + 1]]
        gi, gj = np.meshgrid(mx, my, indexing="ij")
        out_i.append(gi.ravel())
        out_j.append(gj.ravel())
    sizes = np.diff(starts)
    for x in np.nonzero(sizes > 1)[0].tolist():
        m = members[starts[x]:starts[x + 1]]
        gi, gj = np.triu_indices(len(m), 1)
        out_i.append(m[gi])
        out_j.append(m[gj])
    if not out_i:
        return empty
    i, j = np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)
    i, j = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    d = np.bitwise_count(fps[i] ^ fps[j]).astype(np.int64)
    return i, j, d


def brute_force_pairs(fingerprints, radius: int):
    """The all-pairs reference (tests and small inputs only)."""
    fps = as_uint64(fingerprints)
    n = len(fps)
    i, j = np.triu_indices(n, 1)
    d = np.bitwise_count(fps[i] ^ fps[j]).astype(np.int64)
    keep = d <= radius
    return i[keep].astype(np.int64), j[keep].astype(np.int64), d[keep]


# ---------------------------------------------------------------- confirmation

def _lineness(t: np.ndarray, tile: int) -> np.ndarray:
    """Share of each (zero-mean) tile's variance explained by its row means or its column means."""
    t3 = t.reshape(-1, tile, tile)
    tot = (t3 * t3).mean(axis=(1, 2)) + 1e-9
    rows = (t3.mean(axis=2) ** 2).mean(axis=1)
    cols = (t3.mean(axis=1) ** 2).mean(axis=1)
    return np.maximum(rows, cols) / tot


def tile_score(a: np.ndarray, b: np.ndarray, tile: int = 8, min_std: float = 1.5, q: float = 0.3,
               min_tiles: int = 4, line_max: float = 0.75) -> float:
    """A low quantile (q) over the tiles that carry structure (std >= min_std grey levels) in
    either image of the tiles' normalised correlation: every part of the picture must match,
    not only the layout two different works share (a margin's edges, a plate mark, a copy
    stand), which a global correlation would count as agreement."""
    h, w = (a.shape[0] // tile) * tile, (a.shape[1] // tile) * tile
    ta = a[:h, :w].reshape(h // tile, tile, w // tile, tile).transpose(0, 2, 1, 3).reshape(-1, tile * tile)
    tb = b[:h, :w].reshape(h // tile, tile, w // tile, tile).transpose(0, 2, 1, 3).reshape(-1, tile * tile)
    ta = ta - ta.mean(axis=1, keepdims=True)
    tb = tb - tb.mean(axis=1, keepdims=True)
    sa, sb = np.sqrt((ta * ta).mean(axis=1)), np.sqrt((tb * tb).mean(axis=1))
    ok = (np.maximum(sa, sb) >= min_std) & (np.minimum(sa, sb) > 0)
    # a tile that is one straight horizontal or vertical edge in both images is layout (a sheet's
    # or plate's or frame's edge), which different works share: it says nothing either way
    ok &= ~(_lineness(ta, tile) > line_max) | ~(_lineness(tb, tile) > line_max)
    if ok.sum() < min_tiles:
        x, y = a - a.mean(), b - b.mean()
        den = float(np.sqrt((x * x).sum() * (y * y).sum()))
        return float((x * y).sum()) / den if den > 0 else -1.0
    r = (ta[ok] * tb[ok]).mean(axis=1) / (sa[ok] * sb[ok])
    return float(np.quantile(r, q))


SCALES = (1.0, 0.975, 0.95, 0.925, 0.9)   # how much of one image the other may show, per axis


def _best_offset(big: np.ndarray, small: np.ndarray) -> tuple[float, np.ndarray]:
    """Slide `small` over every position of `big` (>= small in both axes): best global NCC
    and the window of `big` there."""
    from numpy.lib.stride_tricks import sliding_window_view
    wins = sliding_window_view(big, small.shape)
    wy, wx = wins.shape[:2]
    wins = wins.reshape(wy * wx, *small.shape)
    x = small - small.mean()
    y = wins - wins.mean(axis=(1, 2), keepdims=True)
    den = np.sqrt((y * y).sum(axis=(1, 2)) * (x * x).sum())
    num = (y * x).sum(axis=(1, 2))
    ncc = np.where(den > 0, num / np.where(den > 0, den, 1), -1.0)
    k = int(np.argmax(ncc))
    return float(ncc[k]), wins[k]


def similarity(sa: np.ndarray, sb: np.ndarray, scales=SCALES, enough: float = 2.0) -> float:
    """How well two structure maps show one picture (1.0 = same, ~0 = unrelated).

    Either image may be a crop of the other (a few per cent per side, any sides): for each pair
    of per-axis scales the other image is enlarged by, every offset is tried, on a half-size
    copy first; the best alignment by global correlation is then scored at full size by
    `tile_score`, so that shared layout alone cannot pass."""
    side = sa.shape[0]
    half = side // 2
    ha, hb = resize_array(sa, half, half), resize_array(sb, half, half)
    cands = []
    for a_big, (big_h, small_h) in ((True, (ha, hb)), (False, (hb, ha))):
        for sy in scales:
            for sx in scales:
                if (sx, sy) == (1.0, 1.0) and not a_big:
                    continue                      # the same comparison as the other way round
                zw, zh = round(half / sx), round(half / sy)
                z = resize_array(big_h, zw, zh)
                v, _ = _best_offset(z, small_h[1:-1, 1:-1] if (zw, zh) == (half, half) else small_h)
                cands.append((v, sx, sy, a_big))
    cands.sort(reverse=True)
    best_score, best = -2.0, -2.0
    for v, sx, sy, a_big in cands[:3]:                  # refine the three best at full size
        big, small = (sa, sb) if a_big else (sb, sa)
        zw, zh = round(side / sx), round(side / sy)
        z = resize_array(big, zw, zh)
        sm = small[2:-2, 2:-2] if (zw, zh) == (side, side) else small[1:-1, 1:-1]
        g, win = _best_offset(z, sm)
        score = tile_score(win, sm)
        if score > best_score:
            best_score = score
        if best_score >= enough:
            break
    return best_score


# ---------------------------------------------------------------- both steps

RADIUS = 8          # bits of 64: the search's distance (1,000,000 fingerprints in under a minute, bench/)
THRESHOLD = 0.4     # similarity a candidate pair must reach to be a near-duplicate (bench/README.md)
SURE = 2            # pairs this close need no confirmation when an image cannot be read


def candidates(fingerprints, radius: int = RADIUS, centres=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of the pairs within `radius` bits in their fingerprints or in their centre
    fingerprints (None = none), sorted by (i, j); distance is the smaller of the two."""
    def search(values):
        vals = np.asarray([0 if f is None else int(f) for f in values], dtype=np.int64)
        idx = np.nonzero(np.asarray([f is not None for f in values], dtype=bool))[0]
        i, j, d = pairs_within(vals[idx], radius)
        return idx[i], idx[j], d
    i, j, d = search(fingerprints)
    if centres is not None:
        ci, cj, cd = search(centres)
        n = max(len(fingerprints), 1)
        code = np.concatenate([i * n + j, ci * n + cj])
        dist = np.concatenate([d, cd])
        order = np.lexsort((dist, code))                 # by pair, the smaller distance first
        code, dist = code[order], dist[order]
        first = np.ones(len(code), dtype=bool)
        first[1:] = code[1:] != code[:-1]
        code, d = code[first], dist[first]
        i, j = code // n, code % n
    return i, j, d


def near_duplicates(fingerprints, structure_of=None, radius: int = RADIUS, threshold: float = THRESHOLD,
                    progress=None, centres=None) -> list[tuple[int, int, int, float | None]]:
    """Near-duplicate pairs (i, j, distance, similarity) among `fingerprints` (None = no image).

    Candidates are the pairs within `radius` bits in their fingerprints, or in their centre
    fingerprints when `centres` are given (`candidates`); each is confirmed by `similarity` of the two
    images' structure maps, which `structure_of(index)` gives (None when the image cannot be read:
    then only pairs within SURE bits are kept, with similarity None). Without `structure_of`,
    every candidate is kept unconfirmed."""
    i, j, d = candidates(fingerprints, radius, centres)
    out = []
    # pairs come sorted by (i, j): a bounded cache keeps each image's map while its pairs are confirmed
    # (8,192 maps of 96x96 float32: 300 MB at most)
    struct = functools.lru_cache(maxsize=8192)(structure_of) if structure_of is not None else None

    for n, (a, b, dist) in enumerate(zip(i.tolist(), j.tolist(), d.tolist())):
        if structure_of is None:
            out.append((a, b, dist, None))
        else:
            sa, sb = struct(a), struct(b)
            if sa is None or sb is None:
                if dist <= SURE:
                    out.append((a, b, dist, None))
            else:
                s = similarity(sa, sb, enough=threshold)
                if s >= threshold:
                    out.append((a, b, dist, round(s, 3)))
        if progress:
            progress(n + 1, len(i))
    return out
