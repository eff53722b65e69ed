"""Pure tag cleaners: small functions with a documented policy for bad values.

Nothing here reads files or the network; every function is deterministic.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from typing import Iterable, Sequence

import numpy as np

from artdata import ArtdataError

# ---------------------------------------------------------------- text

_WS = re.compile(r"\s+")
QUALIFIERS = ("probably", "possibly", "perhaps", "likely", "attributed to", "circle of", "style of", "workshop of")
_QUAL_RE = re.compile(r"^(?:%s)\s+" % "|".join(re.escape(q) for q in QUALIFIERS), re.I)


def clean_text(value) -> str | None:
    """Strip, collapse white space; None for missing, empty or whitespace-only values."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    s = _WS.sub(" ", str(value)).strip()
    return s or None


def split_multi(value, sep: str = "|") -> list[str]:
    """Met multi-valued fields ("French|French| |British") -> cleaned non-empty values, in order."""
    if clean_text(value) is None:
        return []
    return [v for v in (clean_text(x) for x in str(value).split(sep)) if v]


def strip_qualifier(value: str) -> tuple[str, bool]:
    """("probably French", True)... -> ("French", True); also removes "(?)" and trailing "?"."""
    s = value.strip()
    qualified = False
    while True:
        new = _QUAL_RE.sub("", s)
        if new == s:
            break
        s, qualified = new.strip(), True
    m = re.search(r"\s*(?:\(\?\)|\?)$", s)
    if m:
        s, qualified = s[: m.start()].strip(), True
    return s, qualified


def culture_core(value: str) -> tuple[str, bool]:
    """The culture in a Met value: "Italian, Rimini" -> "Italian"; "British, probably London" ->
    "British"; "Italian (Cremona)" -> "Italian"; "American, born England" -> "American"."""
    s, q = strip_qualifier(value)
    s = re.sub(r"\s*\(.*?\)\s*", " ", s).strip()
    s = s.split(",")[0].strip()
    return s, q


# ---------------------------------------------------------------- region map

class RegionMap:
    """Maps a cleaned culture value (case-insensitive) to a class; unmapped values stay as they are."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = {k.lower(): v for k, v in mapping.items() if not k.startswith("_")}

    @classmethod
    def bundled(cls) -> "RegionMap":
        with resources.files("artdata.data").joinpath("region_map.json").open("r", encoding="utf-8") as fh:
            return cls(json.load(fh))

    @classmethod
    def from_file(cls, path) -> "RegionMap":
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtdataError(f"--region-map {path}: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for k, v in data.items() if not k.startswith("_")):
            raise ArtdataError(f"--region-map {path}: expected a JSON object of value -> class strings")
        return cls(data)

    def __call__(self, value: str) -> str:
        key = value.lower().strip()
        if key in self.mapping:
            return self.mapping[key]
        return value[:1].upper() + value[1:]


def resolve_culture(culture, nationality, country, region_map: RegionMap) -> tuple[str | None, str]:
    """Culture from Culture, then Artist Nationality, then Country (first field with a value).

    Policy: multi-valued fields take their values in order and must agree after mapping;
    "X or Y" / "X and Y" must map to one class; a qualifier ("probably", "?") is stripped.
    Returns (class, how) where `how` names the field used, or (None, reason) when none works.
    """
    for field, raw in (("culture", culture), ("nationality", nationality), ("country", country)):
        values = split_multi(raw)
        if not values:
            continue
        classes = set()
        for v in values:
            for alt in re.split(r"\s+(?:or|and|&)\s+|/", v):
                core, _ = culture_core(alt)
                if core:
                    classes.add(region_map(core))
        if len(classes) == 1:
            return classes.pop(), field
        if len(classes) > 1:
            return None, "ambiguous culture"
    return None, "no culture"


# ---------------------------------------------------------------- counts and bins

def top_n(values: Iterable[str], n: int) -> list[str]:
    """The n most frequent values; ties broken alphabetically (deterministic)."""
    counts = Counter(v for v in values if v)
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def equal_count_bins(values: Sequence[float], bins: int) -> tuple[list[float], np.ndarray]:
    """Edges and bin index of each value, with counts per bin as equal as the data allows.

    Cuts fall only between distinct values, so tied values always share a bin (deterministic);
    each cut is placed where the cumulative count is closest to k*n/bins (ties: the lower one).
    With all values distinct, bin sizes differ by at most one. Fewer bins come back when there
    are fewer distinct values. Bin i holds edges[i] <= v < edges[i+1]; the last bin includes its
    upper edge.
    """
    if bins < 1:
        raise ArtdataError(f"--bins must be at least 1, not {bins}")
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return [], np.zeros(0, dtype=int)
    if np.isnan(v).any():
        raise ArtdataError("equal_count_bins: NaN values (drop records without a price first)")
    uniq, counts = np.unique(v, return_counts=True)
    cum = np.cumsum(counts)            # cum[j] = number of values <= uniq[j]
    n = v.size
    cuts: list[int] = []               # cut after distinct index j
    for k in range(1, bins):
        target = k * n / bins
        j = int(np.argmin(np.abs(cum[:-1] - target))) if len(cum) > 1 else None
        if j is None:
            break
        # prefer the lower index on exact ties: argmin already returns the first
        if cuts and j <= cuts[-1]:
            continue
        cuts.append(j)
    edges = [float(uniq[0])] + [float(uniq[j + 1]) for j in cuts] + [float(uniq[-1])]
    idx = np.searchsorted(np.asarray(edges[1:-1]), v, side="right")
    return edges, idx


# ---------------------------------------------------------------- media

# Media tags found in Tate's medium text; multi-word terms first so that "line engraving" is not
# also counted as "engraving".
MEDIA_TERMS = ("line engraving", "oil paint", "acrylic paint", "gelatin silver print", "intaglio print",
               "screenprint", "lithograph", "etching", "engraving", "aquatint", "mezzotint", "woodcut",
               "drypoint", "graphite", "watercolour", "gouache", "ink", "pen", "chalk", "charcoal", "pastel",
               "photograph", "tempera", "bronze", "wood", "canvas", "paper", "board")
SUPPORT_TERMS = frozenset({"canvas", "paper", "board", "wood"})


def normalise_medium(text) -> str | None:
    """"graphite  on Paper " -> "Graphite on paper": collapse space, sentence case."""
    s = clean_text(text)
    if not s:
        return None
    s = s.lower()
    return s[:1].upper() + s[1:]


def medium_tags(text, supports: bool = False) -> list[str]:
    """Media tags in a medium text, in MEDIA_TERMS order; supports (paper, canvas...) only if asked."""
    s = (clean_text(text) or "").lower()
    found = []
    for term in MEDIA_TERMS:
        if term in SUPPORT_TERMS and not supports:
            continue
        pattern = r"(?<![a-z])" + re.escape(term) + r"(?![a-z])"
        if re.search(pattern, s):
            found.append(term)
            s = re.sub(pattern, " ", s)
    return found


# ---------------------------------------------------------------- review flags

NON_PAINTING_WORDS = ("sculpture", "statue", "statuette", "manuscript", "book", "album", "box", "snuff",
                      "vase", "bowl", "plate", "textile", "scroll case", "casket", "figure",
                      "medal", "coin", "mask", "sword", "armor", "armour", "jar", "cup")


_NON_PAINTING_RE = re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in NON_PAINTING_WORDS)
                              + r")(?:e?s)?(?![a-z])")


def non_painting_flag(*texts) -> str | None:
    """The first keyword (in NON_PAINTING_WORDS order) suggesting a non-painting, or None."""
    s = " ".join((clean_text(t) or "").lower() for t in texts)
    found = set(_NON_PAINTING_RE.findall(s))
    return next((w for w in NON_PAINTING_WORDS if w in found), None)
