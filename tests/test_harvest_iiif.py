"""`crawl iiif` against the mirror's IIIF site (Presentation 2 and 3, nested collections, Image API 2 and 3):
metadata mapped into the schema, sizes negotiated from info.json and never the full resolution, info.json
errors, a server that ignores the size, the usual faults, the rate, and a harvest extended without refetching."""
import json

import pytest

from artdata import ArtdataError
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.paths import Home
from artdata.sources.iiif import IiifSource, canvases, image_service, size_request, static_image, text
from conftest import assert_polite


def _cfg(limit=12, size=128, rate=50.0, **kw):
    return HarvestConfig(manifest="iiif", image=ImageConfig(size=size), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=4, retries=3, block_pause=0.2, backoff=0.05,
                                             backoff_max=0.2), **kw)


def _harvest(m, home, version=3, limit=12, size=128, **kw):
    src = IiifSource([f"{m.base('api')}/iiif/{version}/collection.json"], image_size=size)
    return harvest(src, _cfg(limit, size, **kw), home)


@pytest.mark.parametrize("version", [2, 3])
def test_collection_harvest_maps_metadata_and_asks_the_requested_size(tmp_path, version):
    with Mirror() as m:
        home = Home(tmp_path)
        res = _harvest(m, home, version)
        assert res.counts == {"ok": 12}
        df = load(home.manifests, "iiif").to_pandas()
        assert len(df) == 12 and df.source_id.str.contains(f"/iiif/{version}/manifest/").all()
        assert (df.license == "http://creativecommons.org/publicdomain/zero/1.0/").all() and df.is_public_domain.all()
        assert df.department.notna().all() and df.title.notna().all() and df.medium.notna().any()
        assert (df[["width", "height"]].min(axis=1) == 128).all()            # stored at the requested size
        extra = json.loads(df.extra.iloc[0])
        assert extra["metadata"]["Department"] == df.department.iloc[0]
        rows = {str(oid): r for oid, r in m.met.rows.items()}
        for _, rec in df.iterrows():
            oid = rec.source_id.rsplit("/", 1)[-1][:-5]
            got = rec.culture if isinstance(rec.culture, str) else None
            assert got == (rows[oid].get("Culture") or None)
        assert m.iiif_sizes and not {"full", "max"} & set(m.iiif_sizes)
        if version == 2:
            assert set(m.iiif_sizes) == {"210,"}     # the smallest cached size at least as large as asked
        else:
            assert set(m.iiif_sizes) <= {"128,", ",128"}


def test_info_json_errors_and_a_server_that_ignores_the_size(tmp_path):
    with Mirror(faults=Faults(iiif_info_error=0.5)) as m:
        res = _harvest(m, Home(tmp_path / "a"))
        assert res.counts == {"ok": 12}
        assert "!256,256" in m.iiif_sizes and ({"128,", ",128"} & set(m.iiif_sizes))
    with Mirror(faults=Faults(iiif_ignore_size=True)) as m:
        home = Home(tmp_path / "b")
        res = _harvest(m, home, limit=4)
        assert res.counts == {"ok": 4}
        df = load(home.manifests, "iiif").to_pandas()
        assert (df[["orig_width", "orig_height"]].max(axis=1) == 2400).all()   # the server sent its full size
        assert (df[["width", "height"]].min(axis=1) == 128).all()              # resized here


def test_faults_rate_and_statuses(tmp_path):
    """5xx answers and truncated bodies are retried; a corrupt image fails its record, saying why; exactly the
    objects whose images the mirror corrupts fail (its faults are chosen by hash, so this is known ahead).
    429 handling is the same client's as the Met's (tests/test_harvest_met.py)."""
    faults = Faults(seed=3, server_error=0.2, truncated=0.2, corrupt_image=0.25)
    with Mirror(faults=faults) as m:
        home = Home(tmp_path)
        res = _harvest(m, home, limit=16, rate=10.0)
        df = load(home.manifests, "iiif").to_pandas()
        oid = df.source_id.str.rsplit("/", n=1).str[-1].str[:-5]
        corrupt = {o for o in oid if faults.pick("corrupt", f"iiif:{o}", faults.corrupt_image)}
        assert corrupt and set(oid[df.status == "failed"]) == corrupt
        assert df[df.status == "failed"].error.notna().all()
        assert res.counts == {"ok": 16 - len(corrupt), "failed": len(corrupt)}
        assert m.logs["media"].count(status=500) + m.logs["media"].count(status=502) \
            + m.logs["media"].count(status=503) + m.logs["api"].count(status=500) > 0     # faults were served
        assert_polite(m, "api", 10)
        assert_polite(m, "media", 10)


def test_extending_a_harvest_fetches_nothing_twice(tmp_path):
    with Mirror() as m:
        home = Home(tmp_path)
        _harvest(m, home, limit=5)
        manifests_before = m.logs["api"].count(prefix="/iiif/3/manifest/")
        res = _harvest(m, home, limit=9)
        assert res.skipped == 5 and res.counts == {"ok": 9}
        assert m.logs["api"].count(prefix="/iiif/3/manifest/") - manifests_before == 4


def test_manifest_list_file_all_canvases_and_bad_input(tmp_path):
    with Mirror() as m:
        api = m.base("api")
        oids = [o for o, r in m.met.rows.items() if r.get("Is Public Domain")][:3]
        listing = tmp_path / "manifests.txt"
        listing.write_text("# three objects\n" + "".join(f"{api}/iiif/2/manifest/{o}.json\n" for o in oids))
        home = Home(tmp_path / "h")
        res = harvest(IiifSource([str(listing)], image_size=64, all_canvases=True), _cfg(None, 64), home)
        assert res.counts == {"ok": 3}
        bad = tmp_path / "bad.txt"
        bad.write_text("ftp://example.org/manifest.json\n")
        with pytest.raises(ArtdataError, match=r"bad.txt:1: not an http\(s\) URL"):
            harvest(IiifSource([str(bad)]), _cfg(), Home(tmp_path / "x"))
        with pytest.raises(ArtdataError, match=r"HTTP 404 from .*/iiif/3/manifest/1.json"):
            harvest(IiifSource([f"{api}/iiif/3/manifest/1.json"]), _cfg(), Home(tmp_path / "y"))
        assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_crawl_iiif(tmp_path):
    from typer.testing import CliRunner
    from artdata.cli import app
    with Mirror() as m:
        r = CliRunner().invoke(app, ["crawl", "iiif", f"{m.base('api')}/iiif/3/collection.json", "--limit", "4",
                                     "--image-size", "64", "--rate", "50", "--home", str(tmp_path)])
        assert r.exit_code == 0, r.output
        assert "iiif: " in r.output and "ok 4" in r.output and "manifest iiif@" in r.output


def test_iiif_parsing_helpers():
    assert text({"en": ["A title"], "fr": ["Un titre"]}) == "A title"
    assert text([{"@value": "x", "@language": "en"}, "y"]) == "x; y"
    assert text({"none": ["1890"]}) == "1890"
    v2 = {"sequences": [{"canvases": [{"images": [{"resource": {"service": {
        "@context": "http://iiif.io/api/image/2/context.json", "@id": "https://img.example/iiif/abc/"}}}]}]}]}
    assert image_service(canvases(v2)[0]) == ("https://img.example/iiif/abc", 2)
    v3 = {"items": [{"type": "Canvas", "items": [{"items": [{"body": {"service": [
        {"id": "https://img.example/3/abc", "type": "ImageService3"}]}}]}]}]}
    assert image_service(canvases(v3)[0]) == ("https://img.example/3/abc", 3)
    assert image_service({"items": []}) is None
    info = {"width": 4000, "height": 3000, "sizes": [{"width": 400, "height": 300}, {"width": 1000, "height": 750}]}
    assert size_request(info, 256) == "400," and size_request(info, 500) == "1000," and size_request(info, 900) == ",900"
    assert size_request({"width": 300, "height": 500}, 512) == "300,"        # never upscaled nor full
    assert size_request(None, 256) == "!512,512"


def _listing(tmp_path, urls, name="manifests.txt"):
    path = tmp_path / name
    path.write_text("".join(u + "\n" for u in urls))
    return str(path)


@pytest.mark.parametrize("version", [2, 3])
def test_gone_manifests_are_not_found(tmp_path, version):
    """A manifest answering 404 (an id the site does not hold) or 410 (withdrawn) is `not_found`, never
    `failed`: listed in a file, in a collection, or with --all-canvases; only a listing whose every URL is gone
    stops the run (one line, nothing left behind)."""
    faults = Faults(seed=5, withdrawn=0.3)
    with Mirror(faults=faults) as m:
        api = m.base("api")
        oids = [o for o, r in m.met.rows.items() if r.get("Is Public Domain")][:12]
        gone = {o for o in oids if faults.pick("withdrawn", f"iiif:{o}", faults.withdrawn)}
        missing = next(o for o in m.met.ids if not m.met.rows[o].get("Is Public Domain"))
        assert gone and set(oids) - gone
        urls = [f"{api}/iiif/{version}/manifest/{o}.json" for o in oids + [missing]]
        for all_canvases in (False, True):
            home = Home(tmp_path / f"list-{all_canvases}")
            res = harvest(IiifSource([_listing(tmp_path, urls)], image_size=64, all_canvases=all_canvases),
                          _cfg(None, 64), home)
            assert res.counts == {"ok": len(oids) - len(gone), "not_found": len(gone) + 1}
            df = load(home.manifests, "iiif").to_pandas().set_index("source_id")
            for o in gone:
                assert df.loc[urls[oids.index(o)], "status"] == "not_found"
                assert df.loc[urls[oids.index(o)], "error"] == f"HTTP 410 from {urls[oids.index(o)]}"
            assert df.loc[urls[-1], "status"] == "not_found" and df.loc[urls[-1], "error"].startswith("HTTP 404 ")
        # a collection listing withdrawn manifests
        home = Home(tmp_path / "collection")
        res = _harvest(m, home, version, limit=30, size=64)
        df = load(home.manifests, "iiif").to_pandas()
        oid = df.source_id.str.rsplit("/", n=1).str[-1].str[:-5]
        withdrawn = {o for o in oid if faults.pick("withdrawn", f"iiif:{o}", faults.withdrawn)}
        assert withdrawn and set(oid[df.status == "not_found"]) == withdrawn
        assert res.counts == {"ok": 30 - len(withdrawn), "not_found": len(withdrawn)}
        # every URL gone: the run says so
        for url in (urls[-1], urls[oids.index(sorted(gone)[0])]):
            with pytest.raises(ArtdataError, match=r"^HTTP (404|410) from http://127\.0\.0\.1:\d+/iiif/"):
                harvest(IiifSource([url]), _cfg(), Home(tmp_path / "none"))
        assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("version", [2, 3])
def test_static_image_canvases(tmp_path, version):
    """A canvas whose image is a plain JPEG with no image service (the cookbook's simplest manifest: v3 `body`,
    v2 `resource`, only an id) is an image: the file is fetched, resized here, `ok`; an oversized one is refused
    by the same pixel guard as every image."""
    with Mirror() as m:
        api = m.base("api")
        oids = [o for o, r in m.met.rows.items() if r.get("Is Public Domain")][:4]
        urls = [f"{api}/iiif/{version}/static/{o}.json" for o in oids]
        home = Home(tmp_path / "h")
        res = harvest(IiifSource([_listing(tmp_path, urls)], image_size=96), _cfg(None, 96), home)
        assert res.counts == {"ok": len(oids)}
        df = load(home.manifests, "iiif").to_pandas()
        assert (df.image_url.str.endswith(".jpg") & df.image_url.str.contains("/iiif-static/")).all()
        assert (df[["orig_width", "orig_height"]].max(axis=1) == 1800).all()      # the file as published
        assert (df[["width", "height"]].min(axis=1) == 96).all()                  # resized here
        assert sorted(m.iiif_static) == sorted(oids) and m.iiif_sizes == []       # no image service asked
        assert df.title.notna().all() and (df.license == "http://creativecommons.org/publicdomain/zero/1.0/").all()
        # the same pixel guard as any image: a file declaring more pixels than allowed is refused
        cfg = HarvestConfig(manifest="iiif", image=ImageConfig(size=96, max_pixels=1_000_000), workers=1,
                            client=_cfg().client)
        res = harvest(IiifSource([_listing(tmp_path, urls, "again.txt")], image_size=96), cfg, Home(tmp_path / "g"))
        df = load(Home(tmp_path / "g").manifests, "iiif").to_pandas()
        assert res.counts == {"failed": len(oids)}
        assert df.error.str.contains("decompression bomb").all() and df.error.str.contains("/iiif-static/").all()


def test_static_and_service_free_canvases_parsed():
    """The cookbook's recipe 0001 (v3: a PNG `body` with only an id) and its v2 form; a canvas with no image at
    all, or a non-http id, is not an image."""
    v3 = {"items": [{"id": "https://example.org/c/p1", "type": "Canvas", "height": 1800, "width": 1200, "items": [
        {"id": "https://example.org/page/p1/1", "type": "AnnotationPage", "items": [
            {"id": "https://example.org/annotation/p0001-image", "type": "Annotation", "motivation": "painting",
             "body": {"id": "http://iiif.io/api/presentation/2.1/example/fixtures/resources/page1-full.png",
                      "type": "Image", "format": "image/png", "height": 1800, "width": 1200},
             "target": "https://example.org/c/p1"}]}]}]}
    canvas = canvases(v3)[0]
    assert image_service(canvas) is None
    assert static_image(canvas) == "http://iiif.io/api/presentation/2.1/example/fixtures/resources/page1-full.png"
    v2 = {"sequences": [{"canvases": [{"@id": "c1", "images": [{"@type": "oa:Annotation", "resource": {
        "@id": "https://example.org/images/page1.jpg", "@type": "dctypes:Image", "format": "image/jpeg"}}]}]}]}
    assert image_service(canvases(v2)[0]) is None
    assert static_image(canvases(v2)[0]) == "https://example.org/images/page1.jpg"
    assert static_image({"items": []}) is None and static_image({"images": []}) is None
    assert static_image({"images": [{"resource": {"@id": "file:///etc/passwd", "format": "image/jpeg"}}]}) is None
    assert static_image({"images": [{"resource": {"@id": "https://example.org/notes.txt",
                                                  "format": "text/plain"}}]}) is None
    # a Choice: its default (v2) / first item (v3)
    choice3 = {"items": [{"type": "Canvas", "items": [{"items": [{"body": {"type": "Choice", "items": [
        {"id": "https://example.org/a.jpg", "type": "Image"}, {"id": "https://example.org/b.jpg", "type": "Image"}]}}]}]}]}
    assert static_image(canvases(choice3)[0]) == "https://example.org/a.jpg"
