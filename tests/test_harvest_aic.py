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
from artdata.http import ClientConfig
from artdata.images import ImageConfig
from artdata.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.mirror_museums import artwork
from artdata.paths import Home
from artdata.sources.aic import AicSource, image_width


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
        assert m.max_rate("api") <= 100


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
        assert m.max_rate("api") <= 30
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
