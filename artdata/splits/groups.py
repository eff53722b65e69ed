"""Groups (the records that stand for one artwork) and the split that keeps every group whole.

    links = record_links(df)                            # keys shared by records of one artwork
    group = artwork_groups(ids, links, pairs)           # one group id per record
    split = grouped_split(keys, labels, group, ratios=(0.8, 0.1, 0.1), seed=0)

A group is the union (union-find) of: the same source object, a declared relation (an NGA child
and its `parentid`), the same Wikidata item across museums (the Met's objectWikidata_URL, the
NGA's wikidataid), and near-duplicate images (`neardup.near_duplicates`). A chain A~B~C is one
group; a group's id is its smallest record id (`source:source_id`): readable, and the same for the
same input.

`grouped_split` gives each group one stratum (the label most of its records carry), orders the
groups of a stratum by a seeded hash of the group id, lays them end to end and puts each in the
split in whose share of the stratum's records its middle falls. So a group is never in two
splits; with one record per group it is exactly the record-level stratified split (the same hash of
`seed:key`, the same counts), which is `--group-by none`; the same input and parameters give the
same split whatever the input order.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict

import numpy as np

from artdata import ArtdataError
from artdata.datasets.records import VIEW_SEP, object_of

SPLITS = ("train", "val", "test")
GROUP_BY = ("artwork", "artist", "none")


# ---------------------------------------------------------------- union-find

class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p[root] != root:
            root = p[root]
        while p[x] != root:
            p[x], x = root, p[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def components(n: int, key_lists=None, pairs=()) -> list[int]:
    """Component root per item: items sharing any key, or joined by a pair, are one component."""
    uf = UnionFind(n)
    first: dict[str, int] = {}
    for i, keys in enumerate(key_lists or ()):
        for k in keys or ():
            if k:
                j = first.setdefault(k, i)
                if j != i:
                    uf.union(i, j)
    for a, b in pairs:
        uf.union(int(a), int(b))
    return [uf.find(i) for i in range(n)]


def artwork_groups(ids, links=None, pairs=()) -> list[str]:
    """One group id (its smallest member id) per record."""
    ids = [str(x) for x in ids]
    if len(set(ids)) != len(ids):
        dup = next(x for x, c in Counter(ids).items() if c > 1)
        raise ArtdataError(f"duplicate record {dup!r}")
    roots = components(len(ids), links, pairs)
    smallest: dict[int, str] = {}
    for r, i in zip(roots, ids):
        if r not in smallest or i < smallest[r]:
            smallest[r] = i
    return [smallest[r] for r in roots]


_SPACE = re.compile(r"\s+")
_ANONYMOUS = {"unknown", "anonymous", "unknown artist", "artist unknown", "unidentified artist", "unidentified"}


def artist_key(name) -> str | None:
    """A comparable artist name (casefolded, spaces squeezed, a trailing '(...)' dropped); None for a
    missing or anonymous maker (such records are grouped by artwork only)."""
    if not isinstance(name, str):
        return None
    s = _SPACE.sub(" ", re.sub(r"\s*\(.*\)\s*$", "", name)).strip().casefold()
    return None if not s or s in _ANONYMOUS else s


def artist_groups(ids, artists, artwork: list[str]) -> list[str]:
    """Groups for artist-disjoint splits: one artist's records together, and an artwork group never
    cut (the same work under two spellings of its maker joins both)."""
    keys = [([f"artist:{a}"] if (a := artist_key(x)) else []) + [f"group:{g}"] for x, g in zip(artists, artwork)]
    return artwork_groups(ids, keys)


# ---------------------------------------------------------------- links from the records

_QID = re.compile(r"(?:^|/|wiki/)(Q\d+)$")


def _qid(value) -> str | None:
    if isinstance(value, str):
        m = _QID.search(value.strip())
        if m:
            return m.group(1)
    return None


def record_links(sources, source_ids, extras) -> list[list[str]]:
    """For each record, the keys it shares with the other records of its artwork: its own object
    (a view, `436535#view=1` of `crawl met --all-images` / `crawl nga --all-views`, shares its object's key),
    its IIIF manifest (the canvases of one manifest: `crawl iiif --all-canvases`), a declared parent
    (NGA `parentid`), its Wikidata item (Met `objectWikidata_URL`, NGA `wikidataid`, IIIF metadata
    labelled Wikidata). `extras` are the records' `extra` JSON texts
    (None or unreadable: no keys from it)."""
    out = []
    for src, sid, ex in zip(sources, source_ids, extras):
        keys = [f"obj:{src}:{sid}"]
        if isinstance(sid, str) and VIEW_SEP in sid:
            keys.append(f"obj:{src}:{object_of(sid)}")        # the object's other photographs: one artwork
        try:
            obj = json.loads(ex) if isinstance(ex, str) and ex else {}
        except ValueError:
            obj = {}
        if not isinstance(obj, dict):
            obj = {}
        for field in ("objectWikidata_URL", "wikidataid", "wikidata_id", "wikidata"):
            q = _qid(obj.get(field))
            if q:
                keys.append(f"wd:{q}")
        manifest = obj.get("manifest")
        if src == "iiif" and isinstance(manifest, str) and manifest:
            keys.append(f"obj:iiif:{manifest}")           # the canvases of one manifest (--all-canvases)
        parent = obj.get("parentid")
        if src == "nga" and isinstance(parent, (int, str)) and str(parent).strip() not in ("", "0"):
            keys.append(f"obj:nga:{str(parent).strip()}")
        meta = obj.get("metadata")
        if isinstance(meta, list):
            for m in meta:
                if isinstance(m, dict) and str(m.get("label", "")).strip().casefold() == "wikidata":
                    q = _qid(m.get("value"))
                    if q:
                        keys.append(f"wd:{q}")
        out.append(keys)
    return out


# ---------------------------------------------------------------- the grouped split

def rank(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def split_counts(n: int, ratios) -> list[int]:
    """Largest-remainder allocation of n items over the ratios (deterministic)."""
    raw = [n * r for r in ratios]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def check_ratios(ratios) -> tuple[float, ...]:
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ArtdataError(f"--ratios must be three non-negative numbers summing to 1, not {','.join(map(str, ratios))}")
    return ratios


def grouped_split(keys, strata, groups=None, ratios=(0.8, 0.1, 0.1), seed: int = 0) -> list[str]:
    """train/val/test per record (in input order), whole groups, stratified by label; see the module docstring."""
    ratios = check_ratios(ratios)
    keys = [str(k) for k in keys]
    if len(set(keys)) != len(keys):
        dup = next(k for k, c in Counter(keys).items() if c > 1)
        raise ArtdataError(f"grouped_split: duplicate keys, e.g. {dup}")
    strata = [str(s) for s in strata]
    groups = keys if groups is None else [str(g) for g in groups]
    if not len(keys) == len(strata) == len(groups):
        raise ArtdataError("grouped_split: keys, strata and groups differ in length")
    members: dict[str, list[int]] = defaultdict(list)
    votes: dict[str, Counter] = defaultdict(Counter)
    for i, (g, s) in enumerate(zip(groups, strata)):
        members[g].append(i)
        votes[g][s] += 1
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for g, c in votes.items():
        by_stratum[min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]].append(g)
    out = [""] * len(keys)
    for s in sorted(by_stratum):
        gs = sorted(by_stratum[s], key=lambda g: (rank(seed, g), g))
        bounds = np.cumsum(split_counts(sum(len(members[g]) for g in gs), ratios)).tolist()
        start = 0
        for g in gs:
            size = len(members[g])
            mid = start + size / 2
            k = next((i for i, b in enumerate(bounds) if mid < b), len(bounds) - 1)
            for i in members[g]:
                out[i] = SPLITS[k]
            start += size
    return out


def straddling(groups, splits) -> list[str]:
    """Groups found in more than one split."""
    seen: dict[str, set] = defaultdict(set)
    for g, s in zip(groups, splits):
        seen[g].add(s)
    return sorted(g for g, ss in seen.items() if len(ss) > 1)


def group_stats(groups, top: int = 5) -> dict:
    """count, the largest group's size, how many groups have two or more records, the largest few."""
    c = Counter(groups)
    big = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"count": len(c), "largest": int(big[0][1]) if big else 0,
            "multi": sum(1 for v in c.values() if v > 1),
            "largest_groups": [{"group": g, "records": int(n)} for g, n in big[:top] if n > 1]}


# ---------------------------------------------------------------- on a manifest's records

def fingerprints_for(store, image_keys, fingerprints, centres=None, progress=None
                     ) -> tuple[list[int | None], list[int | None], int]:
    """Each record's fingerprint and centre fingerprint: the stored ones, else made from the image store
    (for manifests made before they were kept); None without an image. Returns (fingerprints, centres,
    made from the store)."""
    from artdata.datasets.fingerprint import StoreFingerprints, fingerprints_bytes
    centres = [None] * len(fingerprints) if centres is None else centres
    fps = [None if f is None else int(f) for f in fingerprints]
    cen = [None if f is None else int(f) for f in centres]
    todo = [i for i, k in enumerate(image_keys) if (fps[i] is None or cen[i] is None) and isinstance(k, str) and k]
    if todo and progress:
        progress.start(len(todo), 0)
    computed = 0
    # made once per image, not at every split; only the keys asked for are kept in memory
    kept = StoreFingerprints(store.root, wanted={image_keys[i] for i in todo})
    try:
        for i in todo:
            key = image_keys[i]
            both = kept.get(key)
            if both is None:
                try:
                    data = store.get(key)
                except (OSError, ArtdataError, ValueError):
                    data = None
                both = fingerprints_bytes(data) if data else None
                if both is not None:
                    kept.put(key, both)
            if both is not None:
                if fps[i] is None:          # a stored fingerprint is kept: it is what the other records met
                    fps[i] = both[0]
                cen[i] = both[1]
                computed += 1
            if progress:
                progress.advance("ok" if both is not None else "unreadable")
    finally:
        kept.close()
        if todo and progress:
            progress.stop()
    return fps, cen, computed


def _nulls(values) -> list:
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values]


def find_groups(store, ids, sources, source_ids, extras, image_keys, fingerprints, artists=None,
                group_by: str = "artwork", radius: int | None = None, threshold: float | None = None,
                progress=None, centres=None) -> tuple[list[str], list[dict], dict]:
    """Groups of a manifest's records, the near-duplicate pairs behind them, and the card entry.

    `store`: the ImageStore (images for fingerprints made from the store and for confirming pairs);
    the other arguments are the records' columns, in order. Returns (group per record, pairs as
    {a, b, distance, similarity} with indexes, card dict)."""
    from artdata.datasets.fingerprint import structure_bytes
    from artdata.splits import neardup
    if group_by not in GROUP_BY:
        raise ArtdataError(f"--group-by must be one of {', '.join(GROUP_BY)}, not {group_by!r}")
    radius = neardup.RADIUS if radius is None else int(radius)
    threshold = neardup.THRESHOLD if threshold is None else float(threshold)
    ids = [str(x) for x in ids]
    image_keys = _nulls(image_keys)
    fps, cen, computed = fingerprints_for(store, image_keys, _nulls(fingerprints),
                                          None if centres is None else _nulls(centres), progress)

    def structure_of(k: int):
        key = image_keys[k]
        if not key:
            return None
        try:
            return structure_bytes(store.get(key))
        except (OSError, ArtdataError, ValueError):
            return None

    found = neardup.near_duplicates(fps, structure_of, radius=radius, threshold=threshold, centres=cen)
    pairs = [{"a": a, "b": b, "distance": d, "similarity": s} for a, b, d, s in found]
    links = record_links(sources, source_ids, _nulls(extras))
    linked = artwork_groups(ids, links)
    artwork = artwork_groups(ids, links, [(p["a"], p["b"]) for p in pairs])
    if group_by == "artwork":
        groups = artwork
    elif group_by == "artist":
        groups = artist_groups(ids, _nulls(artists) if artists is not None else [None] * len(ids), artwork)
    else:
        groups = ids
    stats = group_stats(groups)
    card = {"by": group_by, **stats, "near_duplicate_pairs": len(pairs),
            "linked_records": sum(n for n in Counter(linked).values() if n > 1),
            "radius": radius, "threshold": threshold, "fingerprint": _version(), "centre_fingerprint": _version(True),
            "fingerprints": sum(f is not None for f in fps), "fingerprints_computed": computed,
            "_fingerprints": (fps, cen)}        # for the caller to keep (a split manifest does): not a card entry
    return groups, pairs, card


def _version(centre: bool = False) -> str:
    from artdata.datasets.fingerprint import CENTRE_VERSION, FINGERPRINT_VERSION
    return CENTRE_VERSION if centre else FINGERPRINT_VERSION


def audit_table(table, store, radius: int | None = None, threshold: float | None = None, progress=None) -> dict:
    """Near-duplicate pairs of a manifest's records (split or not), those that straddle splits, and
    the artwork groups: {pairs: [{a, b, distance, similarity, splits}], straddling, groups}."""
    cols = table.column_names
    col = (lambda c: table.column(c).to_pylist() if c in cols else [None] * table.num_rows)
    ids = [f"{s}:{i}" for s, i in zip(col("source"), col("source_id"))]
    groups, pairs, card = find_groups(store, ids, col("source"), col("source_id"), col("extra"), col("image_key"),
                                      col("fingerprint"), group_by="artwork", radius=radius, threshold=threshold,
                                      progress=progress, centres=col("fingerprint_centre"))
    splits = col("split")
    out_pairs = []
    straddle = 0
    for p in pairs:
        sa, sb = splits[p["a"]], splits[p["b"]]
        crosses = sa is not None and sb is not None and sa != sb
        straddle += crosses
        out_pairs.append({"a": ids[p["a"]], "b": ids[p["b"]], "distance": p["distance"],
                          "similarity": p["similarity"], "splits": [sa, sb]})
    by_group = straddling(groups, splits) if any(s is not None for s in splits) else []
    existing = col("group")
    declared = straddling(existing, splits) if any(g is not None for g in existing) else []
    return {"records": table.num_rows, "pairs": out_pairs, "straddling": straddle,
            "groups": {**{k: v for k, v in card.items() if k != "by" and not k.startswith("_")},
                       "straddling_groups": len(by_group), "straddling_group_ids": by_group[:20],
                       "recorded_groups_straddling": len(declared)}}
