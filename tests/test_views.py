"""Several records per museum object (#22): `crawl met --all-images` (a record for each of an object's
additionalImages) and `crawl nga --all-views` (each alternate view), source_id "ID#view=K", against the loopback
mirror (whose views are pictures of their own, so that only the object link groups them); malformed entries failing
alone; a kill, a torn journal and --retry-failed redoing an object with its views; build-split keeping an object's
views on its side, and audit."""
import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.datasets.records import VIEW_SEP, object_of, view_id
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.harvest.runner import first_objects, job_dir
from artdata.mirror import Faults, Mirror
from artdata.mirror.nga import NGA_COLUMNS, nga_uuid
from artdata.mirror.sample import MetData
from artdata.paths import Home
from artdata.sources.met import MAX_VIEWS, MetSource, web_large
from artdata.sources.nga import NgaSource
from artdata.splits.groups import artwork_groups, record_links
from artdata.splits.recipes import build_split
from conftest import sigkill_when_held, still_running

FAST = ClientConfig(rate=60, concurrency=8, block_pause=0.3, backoff=0.02, backoff_max=0.1, timeout=5)
IMG = ImageConfig(size=32)
OBJECTS = "/public/collection/v1/objects/"
# the descriptive fields a view copies from its object (the labels of every recipe among them)
COPIED = ("page_url", "license", "is_public_domain", "copyright", "title", "artist", "artist_nationality", "culture",
          "country", "region", "department", "classification", "object_name", "medium", "date_text", "date_begin",
          "date_end", "dimensions", "tags")


def _met(m, home, limit=60, retry_failed=False, metadata_only=False, image_size=32, **src):
    return harvest(MetSource(api_base=m.met_api_base, image_size=image_size, all_images=True, **src),
                   HarvestConfig("met", image=replace(IMG, size=image_size), client=FAST, limit=limit, workers=1,
                                 retry_failed=retry_failed, metadata_only=metadata_only), home)


def _with_views(m, ids):
    """The listed ids whose object lists additionalImages in the mirror (public domain, with an image)."""
    return [o for o in ids if m.met.rows[o].get("Is Public Domain") and MetData.views(o)]


def _object_requests(m):
    return Counter(p.rsplit("/", 1)[1] for _, p, _ in m.logs["api"].entries if OBJECTS in p)


def test_met_all_images_one_record_a_view_with_its_own_image(home):
    with Mirror() as m:
        res = _met(m, home)
        rows = res.manifest.table().to_pylist()
        listed = m.met.ids[:60]
        withv = _with_views(m, listed)
        assert len(withv) >= 3, "the mirror's sample lists too few objects with additionalImages"
        assert res.total == 60                                       # --limit counts objects, not records
        want = [i for o in listed for i in (o, *(view_id(o, k) for k in range(1, MetData.views(o) + 1)
                                                 if o in withv))]
        ids = [r["source_id"] for r in rows]
        assert sorted(ids) == sorted(want) == ids                    # (a manifest is in source_id order)
        by = {r["source_id"]: r for r in rows}
        for o in withv:
            parent = by[o]
            primary = m.met.object(o, m.media_base, m.faults)["primaryImage"]
            keys = {parent["image_key"]}
            for k in range(1, MetData.views(o) + 1):
                v = by[view_id(o, k)]
                assert v["status"] == "ok", v["error"]
                original = primary.replace(f"/{o}.jpg", f"/{o}_{k}.jpg")
                assert v["image_url"] == web_large(original) != original      # the web-large rendition first
                assert all(v[f] == parent[f] for f in COPIED)                # labels as the object's
                assert json.loads(v["extra"]) == {"objectID": int(o), "view": k, "parent": o,
                                                  "objectWikidata_URL": json.loads(parent["extra"])
                                                  ["objectWikidata_URL"]}
                assert v["source_sha256"] != parent["source_sha256"]         # a picture of its own
                keys.add(v["image_key"])
            assert len(keys) == 1 + MetData.views(o)
        # only public-domain objects with an image have views (not_public_domain / no_image records have none)
        assert all(by[o]["status"] == "ok" for o in withv)
        assert not any(VIEW_SEP in s and not m.met.rows[object_of(s)].get("Is Public Domain") for s in by)


def test_met_views_sizes_and_the_selection_hash(home, tmp_path):
    """Above the web-large size a view asks for the original first; without --all-images the selection (so the
    job folder of an earlier harvest) is what it was, and the objects' JSON lists the additionalImages unused."""
    with Mirror() as m:
        res = _met(m, home, limit=60, metadata_only=True, image_size=1000)
        rows = res.manifest.table().to_pylist()
        views = [r for r in rows if VIEW_SEP in r["source_id"]]
        assert views and all(r["status"] == "pending" and "/original/" in r["image_url"] for r in views)
        plain = MetSource(api_base=m.met_api_base, image_size=32)
        assert set(plain.selection()) == {"api_base", "departments", "classifications", "public_domain_only",
                                          "has_image", "since", "ids_from", "image_size"}
        views = MetSource(api_base=m.met_api_base, image_size=32, all_images=True)
        assert views.selection() == {**plain.selection(), "all_images": True}
        assert job_dir(home, "met", "met", plain.selection(), IMG, False) != job_dir(
            home, "met", "met", views.selection(), IMG, False)
        other = Home(tmp_path / "plain")
        res = harvest(plain, HarvestConfig("met", image=IMG, client=FAST, limit=60, workers=1), other)
        assert not any(VIEW_SEP in r["source_id"] for r in res.manifest.table().to_pylist())
        assert not [p for _, p, _ in m.logs["media"].entries if "_" in p.rsplit("/", 1)[1]]


def test_a_malformed_additional_image_fails_only_its_view(home):
    with Mirror() as m:
        listed = m.met.ids[:30]
        a = _with_views(m, listed)[0]                       # its view 1 is served, a view 9 never is
        b, c = [o for o in listed if m.met.rows[o].get("Is Public Domain") and o != a][:2]
        d = next(o for o in reversed(listed) if o not in (a, b, c))
        m.met.rows[d]["Is Public Domain"] = False       # (this mirror's own copy of the sample)
        real = m.met.object

        def answer(oid, media_base, faults):
            obj = real(oid, media_base, faults)
            prim = obj["primaryImage"]
            if oid == a:
                obj["additionalImages"] = [prim.replace(f"/{oid}.jpg", f"/{oid}_1.jpg"), 42,
                                           "ftp://example.org/x.jpg", {"url": "x"}, "", prim,
                                           prim.replace(f"/{oid}.jpg", f"/{oid}_9.jpg"),   # not served: a 404
                                           prim.replace(f"/{oid}.jpg", f"/{oid}_1.jpg")]  # a repeat
            elif oid == b:
                obj["additionalImages"] = "see the website"
            elif oid == c:
                obj["additionalImages"] = [f"{prim}?v={k}" for k in range(MAX_VIEWS + 30)]
            elif oid == d:          # not public domain: left out by --open-access-only, its views with it
                obj["additionalImages"] = [f"{media_base}/CRDImages/x/original/{oid}_1.jpg"]
            return obj
        m.met.object = answer
        res = _met(m, home, limit=30, public_domain_only=True)
        by = {r["source_id"]: r for r in res.manifest.table().to_pylist()}
        assert by[a]["status"] == by[b]["status"] == by[c]["status"] == "ok"      # never the object's failure
        assert by[view_id(a, 1)]["status"] == "ok"
        for k, field in ((2, "additionalImages[1]"), (3, "additionalImages[2]"), (4, "additionalImages[3]")):
            v = by[view_id(a, k)]
            assert v["status"] == "failed" and f"object {a}: {field}" in v["error"], v["error"]
            assert v["title"] == by[a]["title"] and v["department"] == by[a]["department"]
        assert "not an http(s) URL" in by[view_id(a, 3)]["error"]
        assert view_id(a, 5) not in by and view_id(a, 6) not in by       # a blank, the primary again: left out
        assert view_id(a, 8) not in by                                    # a repeat of view 1
        v7 = by[view_id(a, 7)]
        assert v7["status"] == "failed" and "HTTP 404" in v7["error"] and f"{a}_9.jpg" in v7["error"]
        assert by[view_id(b, 1)]["status"] == "failed" and "additionalImages is" in by[view_id(b, 1)]["error"] \
            and "not a list" in by[view_id(b, 1)]["error"]
        assert sum(object_of(s) == c and s != c for s in by) == MAX_VIEWS      # at most MAX_VIEWS an object
        assert view_id(c, MAX_VIEWS) in by and view_id(c, MAX_VIEWS + 1) not in by
        assert by[d]["status"] == "not_public_domain" and not [s for s in by if s.startswith(f"{d}#")]


def _view_path(m, oid, k=1):
    """The path of view k's web-large image on the media host."""
    url = m.met.object(oid, m.media_base, m.faults)["additionalImages"][k - 1]
    return web_large(url).split(m.media_base, 1)[1]


def test_killed_mid_object_then_resumed_redoes_it_with_its_views(home):
    """SIGKILL while one object's view is being fetched: the journal has nothing of that object (its views go
    before it); the same command again fetches it, and only it, and the manifest has it and its views once."""
    with Mirror() as m:
        listed = m.met.ids[:40]
        held = _with_views(m, listed)[-1]
        hold = m.hold("media", _view_path(m, held, 1))
        cmd = [sys.executable, "-m", "artdata", "crawl", "met", "--all-images", "--api-base", m.met_api_base,
               "--limit", "40", "--rate", "60", "--concurrency", "4", "--image-size", "32", "--workers", "1",
               "--home", str(home.root)]
        journal, tree, env = sigkill_when_held(cmd, home, hold, 1)
        before = [json.loads(line)["source_id"] for line in open(journal, "rb") if line.endswith(b"\n")]
        assert not [s for s in before if object_of(s) == held]
        asked = _object_requests(m)
        hold.release()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr
        again = _object_requests(m)
        assert again[held] == asked[held] + 1
        assert not [o for o in before if VIEW_SEP not in o and again[o] > asked[o]]     # done objects: not again
        ids = load(home.manifests, "met").table(columns=["source_id"]).column("source_id").to_pylist()
        assert len(ids) == len(set(ids)) == 40 + sum(MetData.views(o) for o in _with_views(m, listed))
        assert {view_id(held, k) for k in range(1, MetData.views(held) + 1)} < set(ids)
    assert still_running(tree) == []


def test_a_journal_cut_between_the_views_and_their_object_redoes_the_object(home):
    """A run stopped after an object's view lines and before its own line (the kill's window): the object is done
    again, its views are not doubled; a lost view line also redoes its object."""
    with Mirror() as m:
        res = _met(m, home, limit=30)
        withv = _with_views(m, m.met.ids[:30])
        first, second = withv[0], withv[1]
        journal = res.job_dir / "journal.jsonl"
        lines = open(journal, "rb").read().splitlines(keepends=True)
        sids = [json.loads(line)["source_id"] for line in lines]
        for o in withv:         # written views first, then the object's own line that lists them
            views = [view_id(o, k) for k in range(1, MetData.views(o) + 1)]
            assert max(sids.index(v) for v in views) < sids.index(o)
            assert json.loads(lines[sids.index(o)])["_views"] == views
        # the first object's own line gone (its view lines kept before it); the second's first view line gone
        cut = [line for line, s in zip(lines, sids) if s not in (first, view_id(second, 1))]
        journal.write_bytes(b"".join(cut))
        asked = _object_requests(m)
        res2 = _met(m, home, limit=30)
        assert res2.skipped == 28
        again = _object_requests(m)
        assert {o for o in again if again[o] > asked[o]} == {first, second}
        ids = [r["source_id"] for r in res2.manifest.table().to_pylist()]
        assert ids == [r["source_id"] for r in res.manifest.table().to_pylist()]


def test_retry_failed_redoes_an_object_when_one_of_its_views_failed(home):
    faults = Faults(corrupt_image=0.4)
    with Mirror(faults=faults) as m:
        listed = m.met.ids[:60]
        bad_view = [o for o in _with_views(m, listed) if not faults.pick("corrupt", f"met:{o}", 0.4)
                    and any(faults.pick("corrupt", f"met:{o}:view{k}", 0.4) for k in range(1, MetData.views(o) + 1))]
        clean = [o for o in _with_views(m, listed) if not any(
            faults.pick("corrupt", k, 0.4) for k in [f"met:{o}"] + [f"met:{o}:view{k}"
                                                                  for k in range(1, MetData.views(o) + 1)])]
        assert bad_view and clean, "choose another fraction: no object with only a view corrupt"
        res = _met(m, home)
        by = {r["source_id"]: r for r in res.manifest.table().to_pylist()}
        for o in bad_view:
            assert by[o]["status"] == "ok"
            assert "failed" in {by[view_id(o, k)]["status"] for k in range(1, MetData.views(o) + 1)}
        m.set_faults(Faults())
        asked = _object_requests(m)
        res = _met(m, home, retry_failed=True)
        again = _object_requests(m)
        redone = {o for o in again if again[o] > asked[o]}
        assert set(bad_view) <= redone and not set(clean) & redone
        rows = res.manifest.table().to_pylist()
        by = {r["source_id"]: r for r in rows}
        assert len(by) == len(rows)
        for o in bad_view:
            assert all(by[view_id(o, k)]["status"] == "ok" for k in range(1, MetData.views(o) + 1))


# ---------------------------------------------------------------- NGA

def _nga_cfg(m=None, metadata_only=False, limit=None):
    return HarvestConfig(manifest="nga", image=ImageConfig(size=64), workers=1, metadata_only=metadata_only,
                         limit=limit, client=ClientConfig(rate=100, concurrency=4, retries=2, backoff=0.05,
                                                          backoff_max=0.2, block_pause=0.2,
                                                          trusted_hosts=(m.base("media"),) if m else ()))


def test_nga_all_views_a_record_for_each_alternate(home):
    with Mirror() as m:
        data = m.base("api") + "/nga/data"
        res = harvest(NgaSource(data=data, classifications=["painting"], image_size=64, all_views=True),
                      _nga_cfg(), home)
        rows = res.manifest.table().to_pylist()
        by = {r["source_id"]: r for r in rows}
        objects = [s for s in by if VIEW_SEP not in s]
        alt = [o for o in objects if int(o) % 5 == 0]
        assert alt and set(by) == set(objects) | {view_id(o, 1) for o in alt}
        assert res.total == len(by)                  # the views are listed in advance, the tables being local
        for o in alt:
            v, p = by[view_id(o, 1)], by[o]
            assert v["status"] == "ok" and f"/nga/iiif/{nga_uuid(o, 'alternate')}/full/!" in v["image_url"]
            assert all(v[f] == p[f] for f in COPIED if f != "tags")
            assert v["source_sha256"] != p["source_sha256"] and v["image_key"] != p["image_key"]
            assert json.loads(v["extra"])["view"] == 1
            assert json.loads(v["extra"])["image"]["uuid"] == nga_uuid(o, "alternate")
        ids = [r["source_id"] for r in rows]
        assert all(ids[ids.index(o) + 1] == view_id(o, 1) for o in alt)
        # without --all-views: the primaries only, and the selection (the job folder) as before
        plain = NgaSource(data=data, classifications=["painting"], image_size=64)
        assert "all_views" not in plain.selection()


def _write_csv(path, columns, rows):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def test_nga_views_in_sequence_order_with_their_own_rights_and_limit_counts_objects(tmp_path):
    folder = tmp_path / "nga"
    folder.mkdir()
    base = "http://127.0.0.1:9/iiif"
    _write_csv(folder / "objects.csv", NGA_COLUMNS["objects"], [
        {"objectid": str(i), "title": f"Work {i}", "classification": "Painting", "isvirtual": "0"} for i in (1, 2, 3)])
    img = {"width": "3000", "height": "2000"}
    _write_csv(folder / "published_images.csv", NGA_COLUMNS["published_images"], [
        {"uuid": "p1", "iiifurl": f"{base}/p1", "viewtype": "primary", "sequence": "0", "depictstmsobjectid": "1", **img},
        {"uuid": "b", "iiifurl": f"{base}/b", "viewtype": "alternate", "sequence": "2", "depictstmsobjectid": "1",
         **img},
        {"uuid": "a", "iiifurl": f"{base}/a", "viewtype": "alternate", "sequence": "1", "depictstmsobjectid": "1",
         **img, "maxpixels": "640"},                                      # a fair-use alternate
        {"uuid": "c", "iiifurl": f"{base}/c", "viewtype": "alternate", "sequence": "2", "depictstmsobjectid": "1",
         **img, "width": ""},
        {"uuid": "p2", "iiifurl": f"{base}/p2", "viewtype": "primary", "sequence": "0", "depictstmsobjectid": "2", **img},
        {"uuid": "p3", "iiifurl": f"{base}/p3", "viewtype": "primary", "sequence": "0", "depictstmsobjectid": "3", **img},
        {"uuid": "x", "iiifurl": f"{base}/x", "viewtype": "alternate", "sequence": "1", "depictstmsobjectid": "3",
         **img},
    ])

    def rows(limit=None, **kw):
        h = Home(tmp_path / f"h{len(list(tmp_path.iterdir()))}")
        harvest(NgaSource(data=str(folder), image_size=512, all_views=True, **kw), _nga_cfg(metadata_only=True,
                                                                                             limit=limit), h)
        return [r for r in load(h.manifests, "nga").table().to_pylist()]

    got = rows()
    assert [r["source_id"] for r in got] == ["1", "1#view=1", "1#view=2", "1#view=3", "2", "3", "3#view=1"]
    by = {r["source_id"]: r for r in got}
    assert by["1#view=1"]["status"] == "not_public_domain" and by["1#view=1"]["license"] is None   # uuid a
    assert by["1#view=2"]["image_url"].startswith(f"{base}/b/") and by["1#view=3"]["image_url"].startswith(f"{base}/c/")
    assert by["1#view=2"]["status"] == "pending" and by["1#view=2"]["license"] == "CC0-1.0"
    assert by["1#view=2"]["title"] == "Work 1" and by["1#view=2"]["page_url"].endswith(".1.html")
    # --all-rights: the fair-use view is asked within its box
    by = {r["source_id"]: r for r in rows(open_access_only=False)}
    assert by["1#view=1"]["status"] == "pending" and "/full/!640,640/" in by["1#view=1"]["image_url"]
    # --limit 2: two objects, with their views
    assert [r["source_id"] for r in rows(limit=2)] == ["1", "1#view=1", "1#view=2", "1#view=3", "2"]
    assert first_objects(["1", "2", "3"], 2) == ["1", "2"]


# ---------------------------------------------------------------- groups, build-split, audit

def test_record_links_join_a_view_to_its_object_by_the_object_alone():
    ids = ["436535", "436535#view=1", "436535#view=2", "12", "nga7#view=1"]
    links = record_links(["met"] * 4 + ["nga"], ids, [None] * 5)      # no Wikidata, no near-duplicates
    assert links[1] == ["obj:met:436535#view=1", "obj:met:436535"]
    g = artwork_groups([f"s:{i}" for i in ids], links)
    assert g == ["s:436535"] * 3 + ["s:12", "s:nga7#view=1"]
    assert object_of("436535#view=2") == "436535" and object_of("436535") == "436535"


@pytest.fixture(scope="module")
def met_views(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("views"))
    with Mirror() as m:
        real = m.met.object
        # no Wikidata item: only the object link (never the near-duplicate search: the views are pictures of their
        # own) can join a view to its object
        m.met.object = lambda oid, media, faults: {**real(oid, media, faults), "objectWikidata_URL": ""}
        res = _met(m, home, limit=120)
        departments = sorted({r["department"] for r in res.manifest.table().to_pylist() if r["department"]})
    return home, res.manifest, departments


def _sides(split):
    sides = defaultdict(set)
    for r in split.table(columns=["source_id", "split"]).to_pylist():
        sides[object_of(r["source_id"])].add(r["split"])
    return sides


def test_build_split_keeps_an_objects_views_on_its_side_and_none_may_not(met_views):
    home, m, departments = met_views
    kw = dict(departments=departments, min_count=1, ratios=(0.5, 0.25, 0.25))
    s = build_split(home, "department", m.ref, name="views-dept", **kw)
    t = s.table(columns=["source_id", "split", "group"]).to_pylist()
    withv = {object_of(r["source_id"]) for r in t if VIEW_SEP in r["source_id"]}
    assert len(withv) >= 5
    sides = _sides(s)
    assert all(len(sides[o]) == 1 for o in withv)
    group = {r["source_id"]: r["group"] for r in t}
    assert all(group[r["source_id"]] == group[object_of(r["source_id"])] for r in t)
    assert s.card["groups"]["straddling"] == 0
    none = build_split(home, "department", m.ref, name="views-none", group_by="none", **kw)
    assert any(len(_sides(none)[o]) > 1 for o in withv)     # record by record, an object's views may straddle
    runner = CliRunner()
    for ref, straddle in ((s.ref, 0), (none.ref, None)):
        r = runner.invoke(app, ["audit", ref, "--json", "--home", str(home.root)])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        # the views are pictures of their own: no near-duplicate pair joins a view to its object
        assert not [p for p in out["pairs"] if object_of(p["a"]) == object_of(p["b"])]
        if straddle == 0:
            assert out["groups"]["straddling_groups"] == 0
        else:
            assert out["groups"]["straddling_groups"] > 0


def test_cli_flags(home):
    with Mirror() as m:
        r = CliRunner().invoke(app, ["crawl", "met", "--all-images", "--api-base", m.met_api_base, "--limit", "30",
                                     "--image-size", "32", "--workers", "1", "--rate", "60", "--home",
                                     str(home.root)])
        assert r.exit_code == 0, r.output
        ids = load(home.manifests, "met").table(columns=["source_id"]).column("source_id").to_pylist()
        assert any(VIEW_SEP in i for i in ids)
        r = CliRunner().invoke(app, ["crawl", "nga", m.base("api") + "/nga/data", "--all-views", "-c", "painting",
                                     "--limit", "10", "--image-size", "32", "--workers", "1", "--rate", "60",
                                     "--metadata-only", "--home", str(home.root)])
        assert r.exit_code == 0, r.output
        ids = load(home.manifests, "nga").table(columns=["source_id"]).column("source_id").to_pylist()
        assert len({object_of(i) for i in ids}) == 10 and any(VIEW_SEP in i for i in ids)
