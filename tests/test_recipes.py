"""Pure cleaners, and property tests (hypothesis) for equal-count bins and splits."""
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from artdata import ArtdataError
from artdata.splits.clean import (RegionMap, clean_text, culture_core, equal_count_bins, medium_tags, non_painting_flag,
                             normalise_medium, resolve_culture, split_multi, strip_qualifier, top_n)
from artdata.splits.recipes import split_counts, stratified_split


def test_met_text_traps():
    assert clean_text("  ") is None and clean_text("") is None and clean_text(float("nan")) is None
    assert clean_text("American ") == "American"
    assert clean_text("12 in.\n(30 cm)") == "12 in. (30 cm)"
    assert split_multi("French|French| |British") == ["French", "French", "British"]
    assert split_multi(" | ") == [] and split_multi(float("nan")) == [] and split_multi(None) == []


@pytest.mark.parametrize("raw,out", [
    ("probably French", ("French", True)), ("possibly Italian", ("Italian", True)), ("French (?)", ("French", True)),
    ("Dutch?", ("Dutch", True)), ("Spanish", ("Spanish", False)),
])
def test_qualifiers(raw, out):
    assert strip_qualifier(raw) == out


@pytest.mark.parametrize("raw,core", [
    ("Italian, Rimini", "Italian"), ("British, probably London", "British"), ("Italian (Cremona)", "Italian"),
    ("American, born England", "American"), ("probably Japanese", "Japanese"),
])
def test_culture_core(raw, core):
    assert culture_core(raw)[0] == core


def test_region_merge_and_order_of_fields():
    rm = RegionMap.bundled()
    assert resolve_culture("", "American ", "", rm) == ("American", "nationality")
    assert resolve_culture("India (Gujarat)", "", "", rm) == ("Indian", "culture")
    assert resolve_culture("Rajasthan", "", "", rm)[0] == "Indian"
    assert resolve_culture("", "", "United Kingdom", rm) == ("British", "country")
    assert resolve_culture("England", "Scottish", "", rm) == ("British", "culture")
    assert resolve_culture("", "Netherlandish", "", rm)[0] == "Flemish"
    assert resolve_culture("", "North Netherlandish", "", rm)[0] == "Dutch"
    assert resolve_culture("China", "Chinese", "", rm)[0] == "Chinese"
    assert resolve_culture("", "French|French| |French", "", rm)[0] == "French"
    assert resolve_culture("", "French|British", "", rm) == (None, "ambiguous culture")
    assert resolve_culture("", "Iranian or Indian", "", rm) == (None, "ambiguous culture")
    assert resolve_culture("", " ", "", rm) == (None, "no culture")
    assert resolve_culture("Korea", " ", "", rm)[0] == "Korean"
    assert resolve_culture("Mexican", "", "", rm)[0] == "Mexican"   # unmapped values stay


def test_region_map_file(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"korea": "East Asian", "china": "East Asian"}')
    rm = RegionMap.from_file(p)
    assert resolve_culture("Korea", "", "", rm)[0] == resolve_culture("China", "", "", rm)[0] == "East Asian"
    p.write_text("[1, 2]")
    with pytest.raises(ArtdataError, match="--region-map"):
        RegionMap.from_file(p)


def test_medium_normalise_and_tags():
    assert normalise_medium("  graphite  on Paper ") == "Graphite on paper"
    assert medium_tags("Line engraving on paper") == ["line engraving"]
    assert medium_tags("Engraving on paper") == ["engraving"]
    assert medium_tags("Graphite and watercolour on paper") == ["graphite", "watercolour"]
    assert medium_tags("Pen and ink on paper") == ["ink", "pen"]
    assert medium_tags("Oil paint on canvas") == ["oil paint"]
    assert medium_tags("Oil paint on canvas", supports=True) == ["oil paint", "canvas"]


def test_non_painting_flag():
    assert non_painting_flag("Snuff Box with portrait", "") == "box"
    assert non_painting_flag("Portrait of a Man", "Painting") is None
    assert non_painting_flag("Book of Hours", "Manuscript") == "manuscript"


def test_top_n_ties_alphabetical():
    assert top_n(["b", "a", "b", "a", "c"], 2) == ["a", "b"]


def test_equal_count_bins_study_like():
    rng = np.random.default_rng(0)
    prices = np.round(np.exp(rng.normal(6.5, 1.6, 5000)))
    edges, idx = equal_count_bins(prices, 10)
    counts = np.bincount(idx)
    assert len(edges) == 11 and counts.size == 10
    assert counts.max() - counts.min() <= 0.05 * len(prices)
    assert edges[0] == prices.min() and edges[-1] == prices.max()


def test_equal_count_bins_errors():
    with pytest.raises(ArtdataError):
        equal_count_bins([1, 2], 0)
    with pytest.raises(ArtdataError, match="NaN"):
        equal_count_bins([1, float("nan")], 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=300), st.integers(1, 12))
def test_prop_equal_count_bins(values, bins):
    edges, idx = equal_count_bins(values, bins)
    v = np.asarray(values, float)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    assert 1 <= len(edges) - 1 <= bins
    assert counts.sum() == len(values)                       # every value in exactly one bin
    assert all(np.diff(edges) >= 0)
    assert all(edges[i] <= x for x, i in zip(v, idx))        # bin i starts at edges[i]
    for x, i in zip(v, idx):                                 # ties share a bin: same value, same bin
        assert i == idx[list(v).index(x)]
    if len(set(values)) == len(values):                      # all distinct: sizes differ by at most one
        assert counts.max() - counts.min() <= 1
    assert equal_count_bins(values, bins)[0] == edges         # deterministic


def test_split_counts():
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(5, (0.8, 0.1, 0.1)) == [4, 1, 0]
    assert sum(split_counts(7, (0.5, 0.25, 0.25))) == 7


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=200), st.integers(0, 5),
       st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)]))
def test_prop_stratified_split(labels, seed, ratios):
    keys = pd.Series([f"met:{i}" for i in range(len(labels))])
    strata = pd.Series(labels)
    out = stratified_split(keys, strata, ratios, seed)
    assert out.notna().all() and set(out) <= {"train", "val", "test"}     # each key in exactly one split
    assert stratified_split(keys, strata, ratios, seed).equals(out)       # deterministic
    for lab in set(labels):                                               # stratified: per class, as planned
        got = Counter(out[strata == lab])
        want = split_counts((strata == lab).sum(), ratios)
        assert [got.get(s, 0) for s in ("train", "val", "test")] == want
    total = Counter(out)
    for s, r in zip(("train", "val", "test"), ratios):
        assert abs(total.get(s, 0) - r * len(labels)) <= len(set(labels))


def test_split_stable_when_records_are_added():
    keys = pd.Series([f"met:{i}" for i in range(200)])
    a = stratified_split(keys, pd.Series(["x"] * 200), seed=1)
    keys2 = pd.Series([f"met:{i}" for i in range(220)])
    b = stratified_split(keys2, pd.Series(["x"] * 220), seed=1)
    moved = (a != b[:200]).sum()
    assert moved <= 40


def test_bad_ratios_and_duplicate_keys():
    with pytest.raises(ArtdataError, match="--ratios"):
        stratified_split(pd.Series(["a"]), pd.Series(["x"]), (0.5, 0.2, 0.2))
    with pytest.raises(ArtdataError, match="duplicate"):
        stratified_split(pd.Series(["a", "a"]), pd.Series(["x", "x"]))
