"""Split recipes on real data (shared/data), through real manifests."""
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import load, verify, write_manifest
from artdata.mirror import Mirror
from artdata.paths import Home
from artdata.datasets.records import new_record, to_table
from artdata.splits.clean import medium_tags, normalise_medium
from artdata.sources.met import MetSource
from artdata.sources.tate import TateSource
from artdata.splits.recipes import CULTURE_STUDY, DEPARTMENT_STUDY, build_split
from conftest import jpeg_bytes, shared_path

FAST = ClientConfig(rate=400, concurrency=16, timeout=10)


@pytest.fixture(scope="module")
def tate_home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("tate"))
    src = TateSource(table=str(shared_path("tate", "artworks.parquet")))
    harvest(src, HarvestConfig("tate", metadata_only=True, client=FAST), home)
    return home


@pytest.fixture(scope="module")
def met_home(tmp_path_factory):
    """All 2,000 real Met rows, harvested metadata-only through the mirror's API."""
    home = Home(tmp_path_factory.mktemp("met"))
    sample = pd.read_parquet(shared_path("met", "objects_sample.parquet"))
    with Mirror(met=sample) as m:
        harvest(MetSource(api_base=m.met_api_base), HarvestConfig("met", metadata_only=True, client=FAST), home)
    return home, sample


def test_medium_split_is_the_real_top_descriptions(tate_home):
    m = build_split(tate_home, "medium", "tate")
    df = pd.read_parquet(shared_path("tate", "artworks.parquet"))
    with_thumb = df[df.thumbnailUrl.notna()]
    real = with_thumb.medium.map(normalise_medium).value_counts()
    assert list(m.card["classes"]) == list(real.index[:10])
    assert m.card["counts"]["by_class"] == {k: int(v) for k, v in real.iloc[:10].items()}
    assert "Graphite on paper" in m.card["classes"] and "Oil paint on canvas" in m.card["classes"]
    steps = {s["step"]: s for s in m.card["steps"]}
    assert steps["has an image (ok or pending)"]["dropped"] == {"status:no_image": int(df.thumbnailUrl.isna().sum())}
    t = m.to_pandas()
    assert t.groupby("label").split.value_counts(normalize=True).xs("train", level=1).between(0.79, 0.81).all()


def test_medium_chosen_classes_and_unknown_class(tate_home):
    m = build_split(tate_home, "medium", "tate", classes=["Oil paint on canvas", "watercolour on paper"], name="two")
    assert set(m.card["counts"]["by_class"]) == {"Oil paint on canvas", "Watercolour on paper"}
    with pytest.raises(ArtdataError, match=r"unknown class\(es\) 'Oil on toast'; most common: Graphite on paper"):
        build_split(tate_home, "medium", "tate", classes=["Oil on toast"])


def test_medium_multi_label(tate_home):
    m = build_split(tate_home, "medium", "tate", multi_label=True, tags=10, name="tags")
    vocab = m.card["tag_vocabulary"]
    assert len(vocab) == 10 and {"graphite", "watercolour", "oil paint", "etching", "screenprint"} <= set(vocab)
    t = m.to_pandas()
    assert t.label.isna().all()
    for med, labels in zip(t.medium[:500], t.labels[:500]):
        assert list(labels) == [x for x in medium_tags(normalise_medium(med)) if x in vocab]
    assert m.card["counts"]["by_tag"]["graphite"] > 20000


def test_culture_on_real_met_paintings(met_home):
    home, sample = met_home
    # the cleaner alone, on every real painting row of the sample: the study's 11 cultures appear
    from artdata.splits.clean import RegionMap, resolve_culture
    rm = RegionMap.bundled()
    paint = sample[sample.Classification == "Paintings"]
    resolved = {resolve_culture(c, n, k, rm)[0] for c, n, k in
                zip(paint.Culture, paint["Artist Nationality"], paint.Country)}
    assert set(CULTURE_STUDY) <= resolved, set(CULTURE_STUDY) - resolved
    # the recipe keeps only paintings with an image: the sample's American paintings are all
    # modern, not public domain, so the Met (and the mirror) gives them no image
    m = build_split(home, "culture", "met", min_count=1, name="culture-all")
    classes = set(m.card["counts"]["by_class"])
    assert set(CULTURE_STUDY) - {"American"} <= classes, set(CULTURE_STUDY) - classes
    no_img = paint[~paint["Is Public Domain"]]
    assert m.card["steps"][2]["dropped"] == {"status:no_image": len(no_img)}
    assert "American" in {resolve_culture(c, n, k, rm)[0] for c, n, k in
                          zip(no_img.Culture, no_img["Artist Nationality"], no_img.Country)}
    n_paint = int((sample.Classification == "Paintings").sum())
    steps = m.card["steps"]
    assert steps[1]["rows"] == n_paint and steps[1]["dropped"] == {"not Paintings": 2000 - n_paint}
    assert m.card["counts"]["by_class"]["Flemish"] >= 9       # Netherlandish merged in
    # --min-count drops small groups, counted
    m10 = build_split(home, "culture", "met", min_count=10, name="culture-10")
    assert all(v >= 10 for v in m10.card["counts"]["by_class"].values())
    assert m10.card["dropped_classes"] and "Spanish" in m10.card["dropped_classes"]
    last = [s for s in m10.card["steps"] if s["step"].startswith("classes with at least")][0]
    assert last["dropped"]["class under --min-count"] == sum(m10.card["dropped_classes"].values())


def test_culture_exclude_and_flags(met_home, tmp_path):
    home, _ = met_home
    base = build_split(home, "culture", "met", min_count=1, name="c1")
    t = base.to_pandas()
    ex = tmp_path / "mistagged.txt"
    ex.write_text("# judged mis-tagged\n" + "\n".join(t.source_id[:5]) + "\n")
    m = build_split(home, "culture", "met", min_count=1, exclude=str(ex), name="c2")
    assert m.rows == base.rows - 5
    assert not set(t.source_id[:5]) & set(m.to_pandas().source_id)
    assert isinstance(base.card["flagged_for_review"], list)
    dropped = build_split(home, "culture", "met", min_count=1, drop_flagged=True, name="c3")
    assert dropped.rows == base.rows - len(base.card["flagged_for_review"])


def test_department_on_real_met(met_home):
    home, sample = met_home
    m = build_split(home, "department", "met")
    got = m.card["counts"]["by_class"]
    pd_sample = sample[sample["Is Public Domain"]]     # the others have no image
    want = Counter(d if d != "The Costume Institute" else "Costume Institute"
                   for d in pd_sample.Department if d in DEPARTMENT_STUDY or d == "The Costume Institute")
    assert got == dict(sorted(want.items()))
    assert set(got) <= set(DEPARTMENT_STUDY)
    assert m.card["departments_without_records"] == sorted(set(DEPARTMENT_STUDY) - set(want))
    m2 = build_split(home, "department", "met", departments=["Arms and Armor", "the american wing"], name="d2")
    assert set(m2.card["counts"]["by_class"]) <= {"Arms and Armor", "the american wing"}


def test_deterministic_versions_and_no_leakage(met_home):
    home, _ = met_home
    a = build_split(home, "department", "met", name="det")
    b = build_split(home, "department", "met", name="det")
    c = build_split(home, "department", "met", name="det", seed=1)
    assert a.version == b.version and a.version != c.version
    t = a.to_pandas()
    assert not t.duplicated(["source", "source_id"]).any()
    assert set(t.split) == {"train", "val", "test"}
    assert a.card["lineage"]["parents"][0].startswith("met@") and a.card["recipe"]["name"] == "department"


def test_max_per_class(met_home):
    home, _ = met_home
    m = build_split(home, "department", "met", max_per_class=20, name="cap")
    assert max(m.card["counts"]["by_class"].values()) == 20


def _lots(n=400, seed=0):
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        cur = "USD" if i % 10 else "EUR"
        recs.append(new_record("findartinfo", i, artist=f"artist{i % 30}", medium=("Oil on canvas", "Watercolor")[i % 2],
                               date_begin=1800 + i % 150, signed=bool(i % 3), price=float(rng.integers(50, 50000)),
                               currency=cur, unsold=(i % 17 == 0), status="pending", image_url=f"http://x/{i}.jpg"))
    recs.append(new_record("findartinfo", "nope", price=None, currency="USD", unsold=False, status="pending"))
    return recs


def test_price_bins_and_features(tmp_path):
    home = Home(tmp_path)
    write_manifest(home.manifests, "lots", to_table(_lots()))
    m = build_split(home, "price", "lots", bins=10)
    bins = m.card["bins"]
    assert bins["currency"] == "USD" and len(bins["edges"]) == 11 and bins["made"] == 10
    counts = list(m.card["counts"]["by_class"].values())
    assert max(counts) - min(counts) <= 1
    steps = {s["step"]: s["dropped"] for s in m.card["steps"]}
    assert steps["sold lots"] == {"unsold": 24}
    assert steps["has a positive price"] == {"no usable price": 1}
    assert steps["price in USD"] == {"other currency": sum(1 for i in range(400) if i % 10 == 0 and i % 17)}
    feats = m.extra_table("features").to_pandas()
    assert len(feats) == m.card["features"]["rows"] > 0
    assert {"label", "split", "dating", "signed", "artist=artist1", "medium=Oil on canvas"} <= set(feats.columns)
    assert (feats.filter(like="artist=").sum(axis=1) == 1).all()


def test_price_with_rates_table(tmp_path):
    home = Home(tmp_path)
    write_manifest(home.manifests, "lots", to_table(_lots()))
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,rate\nEUR,1.1\n")
    m = build_split(home, "price", "lots", currency="USD", rates=str(rates))
    assert m.card["rates"] == {"EUR": 1.1, "USD": 1.0}
    assert "price in USD" in [s["step"] for s in m.card["steps"]]
    assert [s for s in m.card["steps"] if s["step"] == "price in USD"][0]["dropped"] == {}
    rates.write_text("currency,rate\nEUR,abc\n")
    with pytest.raises(ArtdataError, match="rates.csv:2: rate for EUR must be a positive number"):
        build_split(home, "price", "lots", rates=str(rates))


def test_import_folder_profile_and_movement_split(tmp_path):
    root = tmp_path / "pandora"
    for k, cls in enumerate(["Baroque", "Cubism", "Pop art"]):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            (root / cls / f"{i}.jpg").write_bytes(jpeg_bytes(300 + 10 * i, 200 + 5 * k, color=(80 * k, 50, 50)))
    (root / "Cubism" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (root / "Cubism" / "notes.txt").write_text("ignored")
    home = Home(tmp_path / "h")
    res = CliRunner().invoke(app, ["import-folder", str(root), "--name", "pandora", "--image-size", "64",
                                   "--workers", "1", "--home", str(home.root)])
    assert res.exit_code == 0, res.output
    m = load(home.manifests, "pandora")
    assert m.card["counts"]["by_status"] == {"failed": 1, "ok": 36}
    prof = m.card["profile"]
    assert prof["width"]["min"] == 300 and prof["width"]["max"] == 410 and sum(prof["aspect"]["counts"]) == 36
    assert prof["per_class"] == {"Baroque": 12, "Cubism": 13, "Pop art": 12}
    bad = [r for r in m.table().to_pylist() if r["status"] == "failed"][0]
    assert "Cubism/broken.jpg" in bad["error"]
    assert verify(m, ImageStore(home.images)).ok
    s = build_split(home, "movement", "pandora")
    assert s.card["counts"]["by_class"] == {"Baroque": 12, "Cubism": 12, "Pop art": 12}
    assert [st for st in s.card["steps"] if st["step"].startswith("has an image")][0]["dropped"] == {"status:failed": 1}


def test_metadata_only_plan_then_materialize_only_kept(tmp_path):
    from artdata.datasets.materialize import materialize
    home = Home(tmp_path)
    with Mirror() as m:
        harvest(MetSource(api_base=m.met_api_base, departments=["Arms and Armor", "Islamic Art"]),
                HarvestConfig("met", metadata_only=True, client=FAST), home)
        s = build_split(home, "department", "met", departments=["Arms and Armor"], min_count=1)
        assert m.logs["media"].count() == 0
        out = materialize(home, s.ref, client=ClientConfig(rate=100, concurrency=8, trusted_hosts=("127.0.0.1",)), workers=1)
        assert m.logs["media"].count(200) == s.rows
        assert out.manifest.card["counts"]["by_status"] == {"ok": s.rows}
        assert out.manifest.card["counts"]["by_split"] == s.card["counts"]["by_split"]
        assert "steps" in out.manifest.card and out.manifest.card["lineage"]["parents"] == [s.ref]


def test_cli_build_split_errors(tmp_path):
    home = Home(tmp_path)
    write_manifest(home.manifests, "lots", to_table(_lots(50)))
    r = CliRunner()
    res = r.invoke(app, ["build-split", "cultures", "--from", "lots", "--home", str(tmp_path)])
    assert res.exit_code == 1 and res.output.strip() == \
        "Error: unknown recipe 'cultures'; recipes: culture, department, medium, price, movement"
    res = r.invoke(app, ["build-split", "price", "--from", "lots", "--top", "3", "--home", str(tmp_path)])
    assert res.exit_code == 1 and "--top do not apply to recipe price" in res.output
    res = r.invoke(app, ["build-split", "price", "--from", "lots", "--ratios", "0.5,0.5,0.5", "--home", str(tmp_path)])
    assert res.exit_code == 1 and "--ratios must be three non-negative numbers summing to 1" in res.output
    res = r.invoke(app, ["build-split", "culture", "--from", "lots", "--home", str(tmp_path)])
    assert res.exit_code == 1 and "kept no records" in res.output
    res = r.invoke(app, ["build-split", "price", "--from", "lots", "--bins", "4", "--home", str(tmp_path)])
    assert res.exit_code == 0 and "equal-count price bins" in res.output and "manifest lots-price@" in res.output
