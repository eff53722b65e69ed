"""`crawl aic` against the mirror's Art Institute of Chicago API: search filters, the AIC-User-Agent header,
IIIF widths (at most 843, just large enough), the data dump (folder, tarball, JSON lines) with no API request
for metadata, faults and statuses, the rate, and extending a harvest without refetching."""
import json
import tarfile

import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.mirror.aic import artwork
from artdata.paths import Home
from artdata.sources.aic import AicSource, image_width
from conftest import assert_polite


def _cfg(limit=None, size=96, rate=100.0):
    return HarvestConfig(manifest="aic", image=ImageConfig(size=size), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=4, retries=2, backoff=0.05, backoff_max=0.2,
                                             block_pause=0.2, headers=(("AIC-User-Agent", "artdata-tests"),)))


def test_search_filters_header_and_widths(tmp_path):
    with Mirror() as m:
        home = Home(tmp_path)
        src = AicSource(api_base=m.base("api") + "/aic/api/v1", classifications=["painting"], image_size=96)
        res = harvest(src, _cfg(), home)
        paintings = [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings"
                     and r.get("Is Public Domain")]
        assert res.total == len(paintings) and res.counts == {"ok": len(paintings)}
        df = load(home.manifests, "aic").to_pandas()
        assert (df.classification == "painting").all() and df.is_public_domain.all() and (df.license == "CC0-1.0").all()
        assert df.page_url.str.startswith("https://www.artic.edu/artworks/").all()
        assert m.logs["api"].count(prefix="/aic/api/v1/artworks/search") >= 1
        assert set(m.aic_headers) == {"artdata-tests"}                     # every API request identified itself
        assert max(m.aic_widths) <= 843 and (df[["width", "height"]].min(axis=1) == 96).all()
        assert_polite(m, "api", 100)


def test_image_width_rule():
    assert image_width({"width": 3000, "height": 2000}, 256) == 384        # landscape: the height is the short side
    assert image_width({"width": 2000, "height": 3000}, 256) == 256
    assert image_width({"width": 3000, "height": 1000}, 400) == 843        # never wider than the museum asks
    assert image_width(None, 256) == 843


@pytest.mark.parametrize("form", ["folder", "tarball", "jsonl"])
def test_dump_selects_without_api_requests(tmp_path, form):
    with Mirror() as m:
        docs = [artwork(m, o) for o in m.met.ids[:60]]
        if form == "folder":
            dump = tmp_path / "json"
            dump.mkdir()
            for d in docs:
                (dump / f"{d['id']}.json").write_text(json.dumps(d))
        elif form == "tarball":
            folder = tmp_path / "artworks"
            folder.mkdir()
            for d in docs:
                (folder / f"{d['id']}.json").write_text(json.dumps({"data": d}))
            dump = tmp_path / "artic-api-data.tar.gz"
            with tarfile.open(dump, "w:gz") as tar:
                tar.add(folder, arcname="artworks")
        else:
            dump = tmp_path / "artworks.jsonl"
            dump.write_text("".join(json.dumps(d) + "\n" for d in docs))
        home = Home(tmp_path / "h")
        src = AicSource(api_base=m.base("api") + "/aic/api/v1", dump=str(dump), image_size=64,
                        iiif_url=m.base("media") + "/aic/iiif/2")
        res = harvest(src, _cfg(size=64), home)
        pd_docs = [d for d in docs if d["is_public_domain"]]
        assert res.total == len(pd_docs) and res.counts["ok"] == len([d for d in pd_docs if d["image_id"]])
        assert m.logs["api"].count(prefix="/aic/") == 0                    # metadata from the dump only
        assert m.logs["media"].count(prefix="/aic/iiif/") == res.counts["ok"]


def test_faults_statuses_and_extending(tmp_path):
    faults = Faults(seed=5, withdrawn=0.1, corrupt_image=0.15, server_error=0.2, no_image=0.1)
    with Mirror(faults=faults) as m:
        home = Home(tmp_path)
        api = m.base("api") + "/aic/api/v1"
        src = AicSource(api_base=api, public_domain_only=False, image_size=64)
        res = harvest(src, _cfg(limit=40, size=64, rate=30), home)
        df = load(home.manifests, "aic").to_pandas()
        assert len(df) == 40 and set(df.status) <= {"ok", "not_found", "failed", "no_image"}
        assert {"not_found", "failed", "no_image"} <= set(df.status)
        assert df[df.status == "failed"].error.notna().all()
        assert_polite(m, "api", 30)
        asked = lambda: {p for _, p, _ in m.logs["api"].entries if p.startswith("/aic/api/v1/artworks/")}
        before = asked()
        res = harvest(AicSource(api_base=api, public_domain_only=False, image_size=64), _cfg(limit=50, size=64), home)
        assert res.skipped == 40 and len(asked() - before) == 10       # only the ten new artworks were asked for


def test_bad_dump_and_cli(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no id"}\n')
    with pytest.raises(ArtdataError, match=r"--dump .*bad.jsonl:1: not an artwork record \(no id\)"):
        harvest(AicSource(dump=str(bad)), _cfg(), Home(tmp_path / "x"))
    r = CliRunner().invoke(app, ["crawl", "aic", "--dump", str(tmp_path / "missing"), "--home", str(tmp_path / "y")])
    assert r.exit_code == 1 and "--dump" in r.output and "no such file or folder" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with Mirror() as m:
        r = CliRunner().invoke(app, ["crawl", "aic", "--api-base", m.base("api") + "/aic/api/v1", "--limit", "3",
                                     "--rate", "50", "--contact", "lab@example.org", "--image-size", "64",
                                     "--home", str(tmp_path / "z")])
        assert r.exit_code == 0, r.output
        assert "ok 3" in r.output and set(m.aic_headers) == {"artdata (lab@example.org)"}



# ---------------------------------------------------------------- the search window (issue #20 item 5)

TOO_MANY = {"status": 403, "error": "Invalid number of results",
            "detail": "You have requested too many results. Please refine your parameters."}
PD = [("query[bool][filter][0][term][is_public_domain]", "true")]
PAINTINGS = [*PD, ("query[bool][filter][1][bool][should][][match][classification_title]", "painting")]


def _search(m, params, **kw):
    import httpx
    return httpx.get(m.base("api") + "/aic/api/v1/artworks/search", params=[*params, *kw.items()], timeout=10)


def _total(m, params):
    """pagination.total as the mirror's search reports it (limit=0: the count, no data)."""
    r = _search(m, params, limit=0)
    assert r.status_code == 200 and r.json()["data"] == []
    return r.json()["pagination"]["total"]


def _ids(src, tmp_path):
    """The selection a harvest lists (the ids.json it keeps for resuming; --limit 3 fetches only three records)."""
    res = harvest(src, HarvestConfig(manifest="aic", limit=3, metadata_only=True,
                                     client=ClientConfig(rate=500, concurrency=1, retries=1, backoff=0.05,
                                                         block_pause=0.2)), Home(tmp_path))
    assert res.counts == {"pending": 3}                  # metadata only: images left for later
    return json.loads((res.job_dir / "ids.json").read_text()), res.client_stats


def test_mirror_search_window_as_the_museum():
    import httpx
    with Mirror() as m:
        total = _total(m, PD)
        assert total == sum(1 for r in m.met.rows.values() if r["Is Public Domain"]) > 1000
        assert _search(m, PD, **{"from": 900, "size": 100}).status_code == 200
        assert len(_search(m, PD, page=10, limit=100).json()["data"]) == 100
        for p in ({"from": 901, "size": 100}, {"from": 1000, "size": 1}, {"page": 11, "limit": 100},
                  {"page": 51, "limit": 20}):
            r = _search(m, PD, **p)
            assert r.status_code == 403 and r.json() == TOO_MANY and "json" in r.headers["content-type"]
        r = _search(m, PD, size=101)
        assert r.status_code == 403 and r.json()["error"] == "Invalid limit"
        r = _search(m, PD, page=3, limit=7, fields="id", **{"sort[0][id]": "desc"})
        assert r.json()["pagination"] == {"total": total, "limit": 7, "offset": 14, "total_pages": -(-total // 7),
                                          "current_page": 3}
        got = [a["id"] for a in r.json()["data"]]
        assert got == sorted(got, reverse=True) and len(got) == 7 and set(r.json()["data"][0]) == {"_score", "id"}
        unsorted = [a["id"] for a in _search(m, PD, limit=100).json()["data"]]
        assert unsorted != sorted(unsorted)                      # relevance order unless sorted
        above = [("query[bool][filter][1][range][id][gt]", str(got[-1]))]
        assert _total(m, [*PD, *above]) == sum(1 for o, r in m.met.rows.items()
                                               if r["Is Public Domain"] and int(o) > got[-1])
        r = _search(m, [("query[term][is_public_domain]", "true"), ("query[range][id][gt]", "5")])
        assert r.status_code == 400                              # one query object cannot hold two queries
        m.aic_search_window = 50
        assert _search(m, PD, page=3, limit=20).status_code == 403
        assert _search(m, PD, page=5, limit=10).status_code == 200
        assert httpx.get(m.base("api") + "/aic/api/v1/artworks", params={"page": 19, "limit": 100},
                         timeout=10).status_code == 200           # the listing has no window


@pytest.mark.parametrize("window", [1000, 250])
def test_selection_past_the_window(tmp_path, window):
    """1,947 public-domain works: every one listed once, one answered request per 100. With the real window
    (1,000) nothing is refused; with one the source does not know of (250) the third page is refused once and
    the listing goes on in windows of 200, the host never paused."""
    with Mirror() as m:
        m.aic_search_window = window
        total = _total(m, PD)
        ids, stats = _ids(AicSource(api_base=m.base("api") + "/aic/api/v1"), tmp_path)
        want = sorted((o for o, r in m.met.rows.items() if r["Is Public Domain"]), key=int)
        assert ids == want and len(ids) == total == len(set(ids)) and total > 1000
        asked = [s for s in m.aic_searches if s["size"] > 0]
        assert all(s["sort"] == ("id", False) and s["size"] == 100 for s in asked)
        answered = [s for s in asked if s["from"] + s["size"] <= window]
        assert len(answered) == -(-total // 100) and len(asked) - len(answered) == (window < 1000)
        assert m.logs["api"].count(status=403) == (window < 1000) and stats.blocks == 0


@pytest.mark.parametrize("told", [True, False])
def test_harvest_every_painting_past_a_small_window(tmp_path, told):
    """The mirror's window made 50: the source told so (never refused) or not (refused once, learns, goes on);
    either way every selected painting is harvested exactly once and the count is pagination.total."""
    with Mirror() as m:
        m.aic_search_window = 50
        home = Home(tmp_path)
        src = AicSource(api_base=m.base("api") + "/aic/api/v1", classifications=["painting"], image_size=64,
                        **({"search_window": 50} if told else {}))
        res = harvest(src, _cfg(size=64, rate=500), home)
        total = _total(m, PAINTINGS)
        want = {o for o, r in m.met.rows.items() if r["Is Public Domain"] and r["Classification"] == "Paintings"}
        assert len(want) == total > 3 * 50
        df = load(home.manifests, "aic").to_pandas()
        assert len(df) == total and df.source_id.is_unique and set(df.source_id) == want
        assert res.total == total and res.counts == {"ok": total}
        assert res.client_stats.blocks == 0                      # a 403 "Invalid number of results" is no block
        assert m.logs["api"].count(status=403, prefix="/aic/api/v1/artworks/search") == (0 if told else 1)
        answered = [s for s in m.aic_searches if s["size"] > 0 and s["from"] + s["size"] <= 50]
        assert len(answered) == -(-total // 50)                  # one query per window of 50 ids
        assert sum(any(f.startswith("range:") for f, _ in s["filters"]) for s in answered) == len(answered) - 1


def test_fewer_than_the_museum_counts_is_an_error(tmp_path):
    """A search that loses an artwork between pages: the harvest says so instead of selecting fewer."""
    from artdata.mirror.aic import aic_route

    def lossy(m, path, query):
        resp = aic_route(m, path, query)
        if query.get("page") == ["2"]:
            body = json.loads(resp.body)
            body["data"] = body["data"][1:]
            resp.body = json.dumps(body).encode()
        return resp
    with Mirror() as m:
        m.add_route("api", "/aic/api/v1/artworks/search", lossy)
        src = AicSource(api_base=m.base("api") + "/aic/api/v1", classifications=["painting"], image_size=64)
        with pytest.raises(ArtdataError, match=r"listed \d+ artworks but the museum counts \d+"):
            harvest(src, _cfg(rate=500), Home(tmp_path))
        assert not (tmp_path / "manifests").exists() or not list((tmp_path / "manifests").glob("aic*"))
