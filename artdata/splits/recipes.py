"""Split recipes: a harvested manifest -> a labelled, split, versioned manifest.

    build_split(home, "culture", "met@3f2a", min_count=100, seed=0)

Each recipe cleans tags into a `label` (or `labels` for multi-label), the common steps keep
classes with at least `min_count` members, cap classes at `max_per_class`, and assign
train/val/test with a seeded split stratified by label (no record in two splits). Every step's
row count, class counts and drops by reason go into the card (`steps`), next to the recipe and
its parameters. The same input version and parameters always give the same output version.
Recipes work on metadata-only manifests (status `pending`) too.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from artdata import ArtdataError
from artdata.datasets.manifest import Manifest, load, write_manifest
from artdata.paths import Home
from artdata.splits.clean import (RegionMap, equal_count_bins, medium_tags, non_painting_flag, normalise_medium,
                             resolve_culture, top_n)
from artdata.datasets.records import SOURCE_FIELDS, conform
from artdata.splits.groups import GROUP_BY, grouped_split, split_counts, straddling

SPLITS = ("train", "val", "test")
USABLE = ("ok", "pending")

DEPARTMENT_STUDY = ("Ancient Near Eastern Art", "Arms and Armor", "Asian Art", "Costume Institute",
                    "Egyptian Art", "European Sculpture and Decorative Arts", "Greek and Roman Art",
                    "Islamic Art", "Medieval Art", "The American Wing")
CULTURE_STUDY = ("American", "British", "Chinese", "Dutch", "Flemish", "French", "German", "Indian",
                 "Italian", "Japanese", "Spanish")


# ---------------------------------------------------------------- step log

@dataclass
class StepLog:
    steps: list[dict] = field(default_factory=list)
    merged: bool = False        # the input held several sources: every step counts per source from then on

    def add(self, name: str, df: pd.DataFrame, dropped: Counter | None = None, label: str | None = "label"):
        entry = {"step": name, "rows": int(len(df)), "dropped": dict((dropped or Counter()).most_common())}
        if "source" in df.columns and df["source"].nunique() > 1:
            self.merged = True
        if "source" in df.columns and (self.merged or getattr(dropped, "by_source", None)
                                       and len(dropped.by_source) > 1):
            entry["rows_by_source"] = {k: int(v) for k, v in sorted(Counter(df["source"]).items())}
            if getattr(dropped, "by_source", None):
                entry["dropped_by_source"] = dropped.by_source
        if label and label in df.columns:
            col = df[label]
            if label == "labels":
                entry["classes"] = dict(sorted(Counter(t for ts in col if ts is not None for t in ts).items()))
            else:
                entry["classes"] = dict(sorted(Counter(x for x in col if isinstance(x, str)).items()))
        self.steps.append(entry)


class Drops(Counter):
    """Dropped rows by reason; `by_source` breaks them down by source ({source: {reason: n}})."""
    by_source: dict


def _drop(df: pd.DataFrame, keep: pd.Series, reasons: pd.Series | str) -> tuple[pd.DataFrame, Counter]:
    """Keep rows where `keep`; count the others by reason (and by source and reason)."""
    keep = keep.fillna(False).astype(bool)
    gone = ~keep
    why = pd.Series(reasons, index=df.index) if isinstance(reasons, str) else reasons
    dropped = Drops(why[gone].tolist())
    dropped.by_source = {}
    if "source" in df.columns and gone.any():
        for (src, reason), n in sorted(Counter(zip(df.loc[gone, "source"], why[gone])).items()):
            dropped.by_source.setdefault(src, {})[reason] = int(n)
    return df[keep], dropped


def _need(df: pd.DataFrame, cols, recipe: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ArtdataError(f"recipe {recipe}: manifest lacks column(s) {', '.join(missing)} "
                           f"(have: {', '.join(df.columns)})")


# ---------------------------------------------------------------- splitting

def _rank(seed: int, keys: pd.Series) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.sha256(f"{seed}:{k}".encode()).digest()[:8], "big") for k in keys],
                    dtype=np.uint64)


def stratified_split(keys: pd.Series, strata: pd.Series, ratios=(0.8, 0.1, 0.1), seed: int = 0) -> pd.Series:
    """train/val/test per key, stratified by `strata`; keys must be unique. Order within a
    stratum is a seeded hash of the key, so adding records moves few existing ones."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ArtdataError(f"--ratios must be three non-negative numbers summing to 1, not {','.join(map(str, ratios))}")
    if keys.duplicated().any():
        raise ArtdataError(f"stratified_split: duplicate keys, e.g. {keys[keys.duplicated()].iloc[0]}")
    out = pd.Series(index=keys.index, dtype=object)
    rank = pd.Series(_rank(seed, keys), index=keys.index)
    for _, idx in strata.groupby(strata, sort=True).groups.items():
        ordered = rank.loc[idx].sort_values(kind="stable").index
        counts = split_counts(len(ordered), ratios)
        start = 0
        for name, c in zip(SPLITS, counts):
            out.loc[ordered[start:start + c]] = name
            start += c
    return out


def cap_per_class(df: pd.DataFrame, label: pd.Series, k: int, seed: int) -> pd.DataFrame:
    rank = pd.Series(_rank(seed + 1, df["_key"]), index=df.index)
    keep = rank.groupby(label).rank(method="first") <= k
    return df[keep]


# ---------------------------------------------------------------- recipes

def _usable(df: pd.DataFrame, log: StepLog) -> pd.DataFrame:
    df, dropped = _drop(df, df["status"].isin(USABLE), "status:" + df["status"].astype(str))
    log.add("has an image (ok or pending)", df, dropped, label=None)
    return df


def classification_key(values: pd.Series) -> pd.Series:
    """Classifications compared across museums: case and a plural "s" ignored (the Met's "Paintings",
    Cleveland's and the NGA's "Painting", the Art Institute's "painting" are one class)."""
    return values.fillna("").str.strip().str.lower().str.replace(r"s$", "", regex=True)


def culture_recipe(df: pd.DataFrame, p: dict, log: StepLog, extra: dict) -> pd.DataFrame:
    _need(df, ["classification", "culture", "artist_nationality", "country"], "culture")
    want = set(classification_key(pd.Series(list(p["classification"]))))
    df, dropped = _drop(df, classification_key(df["classification"]).isin(want), "not " + "/".join(p["classification"]))
    log.add(f"classification in {', '.join(p['classification'])}", df, dropped, label=None)
    df = _usable(df, log)
    rmap = RegionMap.from_file(p["region_map"]) if p["region_map"] else RegionMap.bundled()
    memo: dict = {}     # values repeat a lot: resolve each distinct triple once
    res = [memo[t] if t in memo else memo.setdefault(t, resolve_culture(*t, rmap))
           for t in zip(df["culture"].fillna(""), df["artist_nationality"].fillna(""), df["country"].fillna(""))]
    df = df.assign(label=[r[0] for r in res], _how=[r[1] for r in res])
    df, dropped = _drop(df, df["label"].notna(), df["_how"])
    log.add("culture from Culture, then Artist Nationality, then Country; regions merged", df, dropped)
    extra["culture_source_counts"] = dict(Counter(df["_how"]))
    if p["exclude"]:
        ids = _read_ids(p["exclude"])
        hit = df["source_id"].astype(str).isin(ids) | df["_key"].isin(ids)
        df, dropped = _drop(df, ~hit, "excluded by list")
        log.add(f"exclude ids in {Path(p['exclude']).name}", df, dropped)
    fmemo: dict = {}
    flags = [fmemo[t] if t in fmemo else fmemo.setdefault(t, non_painting_flag(*t))
             for t in zip(df["title"].fillna(""), df["object_name"].fillna(""))]
    flagged = [{"source_id": s, "title": t, "keyword": f} for s, t, f in zip(df["source_id"], df["title"], flags) if f]
    extra["flagged_for_review"] = flagged
    if p["drop_flagged"]:
        df, dropped = _drop(df, pd.Series([f is None for f in flags], index=df.index), "flagged non-painting")
        log.add("drop flagged likely non-paintings", df, dropped)
    return df


def department_recipe(df: pd.DataFrame, p: dict, log: StepLog, extra: dict) -> pd.DataFrame:
    _need(df, ["department"], "department")
    df = _usable(df, log)

    def norm(s):
        s = (s or "").strip().lower()
        return s[4:] if s.startswith("the ") else s
    wanted = {norm(d): d for d in p["departments"]}
    dn = df["department"].map(norm)
    df = df.assign(label=dn.map(wanted))
    df, dropped = _drop(df, df["label"].notna(), "department not selected")
    log.add(f"department in the {len(wanted)} chosen", df, dropped)
    missing = sorted(set(wanted.values()) - set(df["label"]))
    if missing:
        extra["departments_without_records"] = missing
    return df


def medium_recipe(df: pd.DataFrame, p: dict, log: StepLog, extra: dict) -> pd.DataFrame:
    _need(df, ["medium"], "medium")
    df = _usable(df, log)
    df = df.assign(_medium=df["medium"].map(normalise_medium))
    df, dropped = _drop(df, df["_medium"].notna(), "no medium")
    log.add("normalised medium text", df, dropped, label=None)
    if p["multi_label"]:
        tags = df["_medium"].map(medium_tags)
        vocab = top_n([t for ts in tags for t in ts], p["tags"])
        extra["tag_vocabulary"] = vocab
        vs = set(vocab)
        labels = tags.map(lambda ts: [t for t in ts if t in vs])
        df = df.assign(labels=labels)
        df, dropped = _drop(df, df["labels"].map(len) > 0, "no tag in vocabulary")
        log.add(f"media tags (top {p['tags']} tags)", df, dropped, label="labels")
        # stratify by the rarest tag of each record
        freq = Counter(t for ts in df["labels"] for t in ts)
        df = df.assign(_stratum=df["labels"].map(lambda ts: min(ts, key=lambda t: (freq[t], t))))
        return df
    if p["classes"]:
        classes = list(p["classes"])
        have = set(df["_medium"])
        unknown = [c for c in classes if normalise_medium(c) not in have]
        if unknown:
            raise ArtdataError(f"unknown class(es) {', '.join(map(repr, unknown))}; most common: "
                               + ", ".join(top_n(df["_medium"], 15)))
        chosen = [normalise_medium(c) for c in classes]
    else:
        chosen = top_n(df["_medium"], p["top"])
    extra["classes"] = chosen
    df = df.assign(label=df["_medium"].where(df["_medium"].isin(chosen)))
    df, dropped = _drop(df, df["label"].notna(), "medium not among the classes")
    log.add(f"top {p['top']} media" if not p["classes"] else "chosen media", df, dropped)
    return df


def price_recipe(df: pd.DataFrame, p: dict, log: StepLog, extra: dict) -> pd.DataFrame:
    _need(df, ["price", "currency", "unsold"], "price")
    df = _usable(df, log)
    df, dropped = _drop(df, ~df["unsold"].fillna(False).astype(bool), "unsold")
    log.add("sold lots", df, dropped, label=None)
    df, dropped = _drop(df, df["price"].notna() & (df["price"] > 0), "no usable price")
    log.add("has a positive price", df, dropped, label=None)
    currency = p["currency"] or (df["currency"].mode().iloc[0] if len(df) else "USD")
    extra["currency"] = currency
    if p["rates"]:
        rates = _read_rates(p["rates"], currency)
        factor = df["currency"].map(lambda c: 1.0 if c == currency else rates.get(c))
        df = df.assign(_price=df["price"] * factor)
        df, dropped = _drop(df, df["_price"].notna(), "currency" + " without a rate")
        extra["rates"] = rates
    else:
        df = df.assign(_price=df["price"].where(df["currency"] == currency))
        df, dropped = _drop(df, df["_price"].notna(), "other currency")
    log.add(f"price in {currency}", df, dropped, label=None)
    if p["top_artists"]:
        top = set(top_n(df["artist"].fillna(""), p["top_artists"]))
        df, dropped = _drop(df, df["artist"].isin(top), "artist not in top")
        log.add(f"top {p['top_artists']} artists", df, dropped, label=None)
    edges, idx = equal_count_bins(df["_price"].to_numpy(), p["bins"])
    df = df.assign(label=[f"bin{i:02d}" for i in idx])
    extra["bins"] = {"edges": edges, "currency": currency, "requested": p["bins"], "made": len(edges) - 1,
                     "counts": dict(sorted(Counter(df["label"]).items()))}
    log.add(f"{p['bins']} equal-count price bins", df, Counter())
    return df


def movement_recipe(df: pd.DataFrame, p: dict, log: StepLog, extra: dict) -> pd.DataFrame:
    _need(df, ["label"], "movement")
    df = _usable(df, log)
    df, dropped = _drop(df, df["label"].notna(), "no class folder")
    log.add("class from folder name", df, dropped)
    return df


@dataclass(frozen=True)
class Recipe:
    fn: Callable
    params: dict            # recipe-specific parameters and their defaults
    min_count: int          # default --min-count
    about: str


RECIPES: dict[str, Recipe] = {
    "culture": Recipe(culture_recipe, {"classification": ("Paintings",), "region_map": None, "exclude": None,
                                       "drop_flagged": False}, 100,
                      "Met paintings by culture (culture study): region merge, min count, exclusions"),
    "department": Recipe(department_recipe, {"departments": DEPARTMENT_STUDY}, 1,
                         "Met objects by department (department study's 10 by default)"),
    "medium": Recipe(medium_recipe, {"top": 10, "classes": None, "multi_label": False, "tags": 10}, 1,
                     "Tate works by medium description (top N), or multi-label media tags"),
    "price": Recipe(price_recipe, {"currency": None, "rates": None, "bins": 10, "top_artists": None,
                                   "feature_artists": 250, "feature_media": 15}, 1,
                    "auction lots by equal-count price bins (appraisal study) + metadata feature table"),
    "movement": Recipe(movement_recipe, {}, 1, "class-per-folder images (import-folder), e.g. art movements"),
}
COMMON = {"min_count": None, "max_per_class": None, "seed": 0, "ratios": (0.8, 0.1, 0.1), "group_by": "artwork"}


def _read_ids(path) -> set[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ArtdataError(f"--exclude {path}: {exc.strerror}") from None
    return {l.split("#")[0].strip() for l in lines if l.split("#")[0].strip()}


def _read_rates(path, target: str) -> dict[str, float]:
    """CSV `currency,rate` — how many `target` units one unit of `currency` is worth."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ArtdataError(f"--rates {path}: {exc}") from None
    if not {"currency", "rate"} <= set(df.columns):
        raise ArtdataError(f"--rates {path}: expected columns currency,rate (have: {', '.join(df.columns)})")
    rates = {}
    for i, (c, r) in enumerate(zip(df["currency"], df["rate"]), 2):
        try:
            r = float(r)
        except (TypeError, ValueError):
            r = float("nan")
        if not (r > 0):
            raise ArtdataError(f"--rates {path}:{i}: rate for {c} must be a positive number, not {r}")
        rates[str(c).strip().upper()] = r
    rates[target] = 1.0
    return rates


# ---------------------------------------------------------------- build

def resolve_params(recipe: str, given: dict) -> dict:
    if recipe not in RECIPES:
        raise ArtdataError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    r = RECIPES[recipe]
    allowed = {**COMMON, **r.params}
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise ArtdataError(f"option(s) {', '.join('--' + k.replace('_', '-') for k in unknown)} do not apply to "
                           f"recipe {recipe} (its options: "
                           f"{', '.join('--' + k.replace('_', '-') for k in allowed)})")
    p = {**allowed, **{k: v for k, v in given.items() if v is not None}}
    if p["min_count"] is None:
        p["min_count"] = r.min_count
    if p["group_by"] not in GROUP_BY:
        raise ArtdataError(f"--group-by must be one of {', '.join(GROUP_BY)}, not {p['group_by']!r}")
    p["ratios"] = tuple(float(x) for x in p["ratios"])
    for k, v in list(p.items()):
        if isinstance(v, list):
            p[k] = tuple(v)
    return p


def build_split(home: Home, recipe: str, source: str | list[str], name: str | None = None, **given) -> Manifest:
    """Run `recipe` on manifest `source` (NAME[@VERSION]), or on several harvested manifests merged (their
    records keep their `source`; source + source_id keys them, so no record can come twice), and write the
    split manifest."""
    if name is not None:
        from artdata.datasets.manifest import check_name
        check_name(name)
    p = resolve_params(recipe, given)
    sources = [source] if isinstance(source, str) else list(source)
    if not sources:
        raise ArtdataError("build-split needs --from MANIFEST (one or more)")
    parents = [load(home.manifests, s) for s in sources]
    refs = [m.ref for m in parents]
    if len(set(refs)) < len(refs):
        raise ArtdataError(f"--from names the same version twice: {', '.join(refs)}")
    return split_manifest(home, recipe, parents[0] if len(parents) == 1 else Merged(parents), p, name)


class Merged:
    """Several manifests read as one (in memory): what split_manifest needs of a parent."""

    def __init__(self, parents: list[Manifest]):
        self.parents = parents
        self.ref = " + ".join(m.ref for m in parents)
        self.name = "-".join(dict.fromkeys(m.name for m in parents))
        self.card = {"lineage": {"source": "+".join(dict.fromkeys(
            str((m.card.get("lineage") or {}).get("source") or m.name) for m in parents))}}
        self._full: pa.Table | None = None

    @property
    def refs(self) -> list[str]:
        return [m.ref for m in self.parents]

    def column_names(self) -> list[str]:
        names: list[str] = []
        for m in self.parents:
            names += [c for c in pq.read_schema(m.data_files[0]).names if c not in names]
        return names

    def full(self) -> pa.Table:
        if self._full is None:
            self._full = pa.concat_tables([conform(m.table()) for m in self.parents], promote_options="default")
        return self._full

    def table(self, columns: list[str] | None = None) -> pa.Table:
        t = self.full()
        return t.select([c for c in columns if c in t.column_names]) if columns else t

    def take(self, rows) -> pa.Table:
        return self.full().take(pa.array(np.asarray(rows, dtype=np.int64)))


# Heavy columns the recipes never look at: they stay in Arrow and are carried over by row index.
_CARRIED = ("extra", "dimensions", "copyright", "page_url", "image_url", "source_sha256")


def split_manifest(home: Home, recipe: str, parent: Manifest | Merged, p: dict, name: str | None) -> Manifest:
    names = parent.column_names() if isinstance(parent, Merged) else pq.read_schema(parent.data_files[0]).names
    columns = [c for c in names if c not in _CARRIED]
    df = parent.table(columns=columns).to_pandas()
    df["_row"] = np.arange(len(df))
    log = StepLog()
    extra: dict = {}
    df = df.assign(_key=df["source"].astype(str) + ":" + df["source_id"].astype(str))
    log.add(f"input {parent.ref}", df, label="label" if recipe == "movement" else None)
    dup = df["_key"].duplicated()
    if dup.any():
        df, dropped = _drop(df, ~dup, "duplicate record")
        log.add("deduplicate", df, dropped, label=None)
    r = RECIPES[recipe]
    df = r.fn(df, p, log, extra)
    multi = "labels" in df.columns and recipe == "medium" and p.get("multi_label")
    label_col = "labels" if multi else "label"
    if not multi and p["min_count"] > 1:
        counts = df["label"].value_counts()
        small = counts[counts < p["min_count"]]
        df, dropped = _drop(df, ~df["label"].isin(small.index), "class under --min-count")
        log.add(f"classes with at least {p['min_count']}", df, dropped)
        if len(small):
            extra["dropped_classes"] = {k: int(v) for k, v in small.sort_index().items()}
        if df.empty and len(counts):      # every class too small: say what would keep some
            top, n = counts.index[0], int(counts.iloc[0])
            raise ArtdataError(f"recipe {recipe}: no class of {parent.ref} has {p['min_count']} records (the largest, "
                               f"{top}, has {n} of {int(counts.sum())}): try --min-count {n} or lower")
    if p["max_per_class"]:
        strat = df["_stratum"] if multi else df["label"]
        before = len(df)
        df = cap_per_class(df, strat, p["max_per_class"], p["seed"])
        log.add(f"at most {p['max_per_class']} per class", df, Counter({"over --max-per-class": before - len(df)}),
                label=label_col)
    if df.empty:
        raise ArtdataError(f"recipe {recipe} kept no records from {parent.ref}; see the steps: "
                           + "; ".join(f"{s['step']}: {s['rows']}" for s in log.steps))
    strata = df["_stratum"] if multi else df["label"]
    kept = parent.take(df["_row"].to_numpy())         # the kept rows, every column (streamed)
    groups, gcard = _groups(home, kept, df, p)
    kept = gcard.pop("_kept")
    if p["group_by"] == "none":          # today's record-by-record split, exactly
        df = df.assign(split=stratified_split(df["_key"], strata, p["ratios"], p["seed"]))
    else:
        df = df.assign(split=grouped_split(df["_key"].tolist(), strata.astype(str).tolist(), groups,
                                           p["ratios"], p["seed"]))
    splits = df["split"].tolist()
    gcard["straddling"] = len(straddling(groups, splits))
    gcard["near_duplicate_pairs_straddling"] = sum(splits[a] != splits[b] for a, b in gcard.pop("_pairs"))
    extra["groups"] = gcard
    if not multi:
        df = df.assign(labels=None)
    log.add("split", df, label=label_col)
    if multi:
        df = df.assign(label=None)
    kept = kept.drop_columns([c for c in ("label", "labels", "split", "group") if c in kept.column_names])
    labels = df["labels"].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else list(v))
    kept = kept.append_column("label", pa.array(df["label"].where(df["label"].notna(), None).tolist(), pa.string()))
    kept = kept.append_column("labels", pa.array(labels.tolist(), pa.list_(pa.string())))
    kept = kept.append_column("split", pa.array(df["split"].tolist(), pa.string()))
    kept = kept.append_column("group", pa.array(groups, pa.string()))
    table = conform(kept)
    params_card = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    extra_tables = {}
    if recipe == "price":
        extra_tables["features"] = price_features(df, p, extra)
    parents = parent.refs if isinstance(parent, Merged) else [parent.ref]
    warnings = []
    if not multi and df["label"].nunique() == 1:
        warnings.append(f"only one class ({df['label'].iloc[0]}): a classifier has nothing to tell apart (check the "
                        f"input {parent.ref} and the recipe's filters)")
    if isinstance(parent, Merged):     # a source none of whose records survived: name it and why
        first = log.steps[0].get("rows_by_source") or {}
        reasons: dict = {}
        for step in log.steps:
            for src, why in (step.get("dropped_by_source") or {}).items():
                for reason, n in why.items():
                    reasons.setdefault(src, Counter())[reason] += n
        for src in sorted(set(first) - set(df["source"])):
            top = ", ".join(f"{r} {n}" for r, n in reasons.get(src, Counter()).most_common(3)) or "no reason recorded"
            warnings.append(f"every record of {src} ({first[src]}) was dropped: {top}")
    if warnings:
        extra["warnings"] = warnings
    if isinstance(parent, Merged):     # the classes each source brought, for the card and the dataset report
        extra["classes_by_source"] = {
            src: dict(sorted(Counter(x for x in g[label_col] if isinstance(x, str)).items())) if not multi else
            dict(sorted(Counter(t for ts in g["labels"] if ts is not None for t in ts).items()))
            for src, g in df.groupby("source")}
        extra["field_mapping"] = {src: SOURCE_FIELDS[src] for src in sorted(set(df["source"])) if src in SOURCE_FIELDS}
    lineage = {"source": (parent.card.get("lineage") or {}).get("source"), "parents": parents,
               "recipe": recipe, "params": params_card}
    card_extra = {"recipe": {"name": recipe, "params": params_card}, "steps": log.steps, **extra}
    return write_manifest(home.manifests, name or f"{parent.name}-{recipe}", table, lineage=lineage,
                          description=f"{recipe} split of {parent.ref}: {RECIPES[recipe].about}",
                          extra=card_extra, extra_tables=extra_tables)


def _groups(home: Home, kept: pa.Table, df: pd.DataFrame, p: dict) -> tuple[list[str], dict]:
    """The artwork (or artist) group of each kept record (`kept`: their rows, in df's order) and the card's
    `groups` entry (splits/groups.py)."""
    from artdata.console import HarvestProgress
    from artdata.datasets.images import ImageStore
    from artdata.splits.groups import find_groups
    extras = kept.column("extra").to_pylist() if "extra" in kept.column_names else [None] * len(df)
    col = (lambda c: df[c].tolist() if c in df.columns else [None] * len(df))
    # from Arrow, not pandas: an int64 column with a null becomes float64 there, which cannot hold 64 bits
    arrow = (lambda c: kept.column(c).to_pylist() if c in kept.column_names else [None] * len(df))
    groups, pairs, card = find_groups(ImageStore(home.images), df["_key"].tolist(), col("source"), col("source_id"),
                                      extras, col("image_key"), arrow("fingerprint"), col("artist"),
                                      group_by=p["group_by"], progress=HarvestProgress("fingerprints from the store"),
                                      centres=arrow("fingerprint_centre"))
    card["_pairs"] = [(q["a"], q["b"]) for q in pairs]
    fps, centres = card.pop("_fingerprints")
    if card["fingerprints_computed"]:       # made from the store: the split keeps them (not made again)
        for name, values in (("fingerprint", fps), ("fingerprint_centre", centres)):
            column = pa.array(values, pa.int64())
            kept = (kept.set_column(kept.column_names.index(name), name, column) if name in kept.column_names
                    else kept.append_column(name, column))
    card["_kept"] = kept
    return groups, card


def price_features(df: pd.DataFrame, p: dict, extra: dict) -> pa.Table:
    """The appraisal study's softmax inputs: one-hot artist (top N), approximate dating (year),
    one-hot medium (top M), signed (0/1); only rows that have all four."""
    artists = top_n(df["artist"].fillna(""), p["feature_artists"])
    media = top_n(df["medium"].map(normalise_medium).fillna(""), p["feature_media"])
    med = df["medium"].map(normalise_medium)
    ok = df["artist"].isin(artists) & med.isin(media) & df["date_begin"].notna() & df["signed"].notna()
    d = df[ok]
    cols = {"source": d["source"].tolist(), "source_id": d["source_id"].tolist(), "split": d["split"].tolist(),
            "label": d["label"].tolist(), "dating": d["date_begin"].astype(float).tolist(),
            "signed": d["signed"].astype(float).tolist()}
    for a in artists:
        cols[f"artist={a}"] = (d["artist"] == a).astype(np.float32).tolist()
    for m in media:
        cols[f"medium={m}"] = (med[ok] == m).astype(np.float32).tolist()
    extra["features"] = {"rows": int(ok.sum()), "artists": len(artists), "media": media,
                         "file": "features.parquet"}
    return pa.table(cols)


def demo_stage(home: Home, results: dict, quick: bool = False) -> None:
    from artdata.console import console
    console.rule("[bold]6. build splits (tag cleaning, stratified split)")
    tate = results.get("tate")
    if tate is not None:
        m = build_split(home, "medium", tate.ref, name="demo-medium", top=4, min_count=5)
        results["split_medium"] = m
        console.print(f"  medium: {m.ref} classes {m.card['counts']['by_class']} -> {m.path}")
    met = results.get("met")
    if met is not None:
        ok = met.to_pandas(columns=["department", "status"])
        top4 = tuple(top_n(ok[ok.status == "ok"]["department"].dropna(), 4))
        m = build_split(home, "department", met.ref, name="demo-department", departments=top4, min_count=5)
        results["split_department"] = m
        console.print(f"  department: {m.ref} classes {m.card['counts']['by_class']} -> {m.path}")
    lots = results.get("lots")
    if lots is not None:
        m = build_split(home, "price", lots.ref, name="demo-price", bins=5, currency="USD")
        results["split_price"] = m
        console.print(f"  price: {m.ref} bins {m.card['bins']['edges']} USD -> {m.path}")
    museums = results.get("museums")
    if museums:             # one culture dataset from several museums: each source's fields, one region map
        m = build_split(home, "culture", [x.ref for x in museums], name="demo-cultures", min_count=3)
        results["split_cultures"] = m
        console.print(f"  culture from {len(museums)} museums: {m.ref} -> {m.path}")
        for src, classes in m.card["classes_by_source"].items():
            console.print(f"    {src:9} " + ", ".join(f"{k} {v}" for k, v in classes.items()))
        g = m.card["groups"]
        plain = build_split(home, "culture", [x.ref for x in museums], name="demo-cultures-ungrouped", min_count=3,
                            group_by="none").card["groups"]
        t = m.table(columns=["source", "source_id", "group", "split"]).to_pylist()
        members: dict = {}
        for r in t:
            members.setdefault(r["group"], []).append(r)
        across = {k: v for k, v in members.items() if len({r["source"] for r in v}) > 1}
        console.print(f"  groups: {g['count']} for {len(t)} records; {len(across)} works reach the split from "
                      f"several museums ({g['near_duplicate_pairs']} near-duplicate image pairs, "
                      f"{g['linked_records']} records linked by Wikidata or parent); groups in two splits: "
                      f"{g['straddling']}, pairs across splits: {g['near_duplicate_pairs_straddling']} (record by "
                      f"record, --group-by none: {plain['near_duplicate_pairs_straddling']} pairs across splits)")
        for k, v in sorted(across.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]:
            console.print(f"    {k}: " + ", ".join(f"{r['source']}:{r['source_id']} ({r['split']})" for r in v))
