"""`crawl nga` against the mirror's National Gallery of Art: the open-data CSVs (a folder, a zip, or over HTTP)
joined here (primary view, open access, classification, the first artist's nationality), IIIF `full/!N,N` at the
requested size and never more, a server that ignores the size, faults and statuses, and bad tables."""
import re
import zipfile

import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.http import ClientConfig
from artdata.images import ImageConfig
from artdata.manifest import load
from artdata.mirror import Faults, Mirror, aspect_size
from artdata.mirror_museums import NGA_NATIVE_SIDE, nga_uuid
from artdata.paths import Home
from artdata.sources.nga import NgaSource, iiif_box

TABLES = ("objects", "published_images", "objects_constituents", "constituents")


def _cfg(limit=None, size=96, rate=100.0):
    return HarvestConfig(manifest="nga", image=ImageConfig(size=size), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=4, retries=2, backoff=0.05, backoff_max=0.2,
                                             block_pause=0.2))


def _download(m, folder, tables=TABLES):
    """The open-data folder as a user has it after downloading the museum's CSVs (the mirror's own bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in tables:
        (folder / f"{t}.csv").write_bytes(m.nga_tables()[t])
    return folder


def _open_paintings(m):
    return [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings" and r.get("Is Public Domain")]


@pytest.mark.parametrize("where", ["url", "folder"])
def test_joined_tables_sizes_and_fields(tmp_path, where):
    with Mirror() as m:
        data = m.base("api") + "/nga/data" if where == "url" else str(_download(m, tmp_path / "nga"))
        home = Home(tmp_path / "h")
        res = harvest(NgaSource(data=data, classifications=["painting"], image_size=96), _cfg(), home)
        want = _open_paintings(m)
        assert res.total == len(want) and res.counts == {"ok": len(want)}
        rows = {r["source_id"]: r for r in load(home.manifests, "nga").table().to_pylist()}
        assert set(rows) == set(want)
        for oid, r in rows.items():
            met = m.met.rows[oid]
            assert r["classification"] == "Painting" and r["license"] == "CC0-1.0" and r["is_public_domain"]
            assert r["artist_nationality"] == ((met.get("Artist Nationality") or "").split("|")[0].strip() or None)
            assert r["page_url"] == f"https://www.nga.gov/collection/art-object-page.{oid}.html"
            assert min(r["width"], r["height"]) == 96
            # the primary view, asked at just the size needed, never the native 4000 px
            assert f"/nga/iiif/{nga_uuid(oid)}/full/!" in r["image_url"]
            w, h = aspect_size(f"nga:{oid}", NGA_NATIVE_SIDE)
            assert r["image_url"].endswith(f"/full/!{iiif_box(w, h, 96)},{iiif_box(w, h, 96)}/0/default.jpg")
            assert max(r["orig_width"], r["orig_height"]) == iiif_box(w, h, 96) < NGA_NATIVE_SIDE
        alternates = {nga_uuid(o, "alternate") for o in m.met.ids}
        media = [p for _, p, _ in m.logs["media"].entries]
        assert not any(p.split("/")[3] in alternates for p in media)
        assert all(re.fullmatch(r"!\d+,\d+", s) for s in m.nga_sizes)
        assert m.logs["api"].count(prefix="/nga/data/") == (4 if where == "url" else 0)   # each table once


def test_iiif_box_rule():
    assert iiif_box(3000, 2000, 256) == 384          # landscape: the height is the short side
    assert iiif_box(2000, 3000, 256) == 384
    assert iiif_box(1000, 1000, 256) == 256
    assert iiif_box(300, 200, 256) == 300            # never above the image's own size
    assert iiif_box(None, 2000, 256) == 512          # unknown size: twice the side, and a larger fallback
    assert iiif_box(40000, 30000, 2000, maxpixels=4_000_000) == 2309   # within maxpixels


def test_server_that_ignores_the_size(tmp_path):
    with Mirror(faults=Faults(iiif_ignore_size=True)) as m:
        home = Home(tmp_path)
        res = harvest(NgaSource(data=m.base("api") + "/nga/data", classifications=["Painting"], image_size=64),
                      _cfg(limit=6, size=64), home)
        assert res.counts == {"ok": 6}
        df = load(home.manifests, "nga").to_pandas()
        assert (df[["orig_width", "orig_height"]].max(axis=1) == NGA_NATIVE_SIDE).all()   # it sent the full size
        assert (df[["width", "height"]].min(axis=1) == 64).all()                         # resized here


def test_faults_statuses_all_rights_and_zip(tmp_path):
    faults = Faults(seed=11, withdrawn=0.1, corrupt_image=0.15, server_error=0.2, truncated=0.1, no_image=0.1)
    with Mirror(faults=faults) as m:
        folder = _download(m, tmp_path / "nga", ("objects", "published_images"))
        # objects.csv as the museum also ships its tables: a zip holding the one CSV
        with zipfile.ZipFile(folder / "objects.zip", "w") as z:
            z.write(folder / "objects.csv", "objects.csv")
        (folder / "objects.csv").unlink()
        home = Home(tmp_path / "h")
        harvest(NgaSource(data=str(folder), open_access_only=False, image_size=64),
                _cfg(limit=60, size=64, rate=40), home)
        df = load(home.manifests, "nga").to_pandas()
        assert len(df) == 60 and {"ok", "failed"} <= set(df.status) <= {"ok", "failed"}
        assert df.artist_nationality.isna().all()              # no constituents tables: no nationality, no error
        assert df[df.status == "failed"].error.str.contains("/nga/iiif/").all()
        with_image = {o for o in m.met.ids if not faults.pick("no_image", o, faults.no_image)}
        assert set(df.source_id) <= with_image                 # objects without a published image are not selected
        # the whole selection, metadata only: --all-rights keeps the objects whose image is not open access
        for open_only in (False, True):
            meta = Home(tmp_path / f"meta-{open_only}")
            harvest(NgaSource(data=str(folder), open_access_only=open_only, image_size=64),
                    HarvestConfig(manifest="nga", metadata_only=True, client=_cfg().client), meta)
            rows = load(meta.manifests, "nga").table().to_pylist()
            closed = {o for o in with_image if not m.met.rows[o].get("Is Public Domain")}
            assert len(rows) == len(with_image) - (len(closed) if open_only else 0) and closed
            for r in rows:
                assert r["is_public_domain"] == (r["source_id"] not in closed)
                assert r["license"] == (None if r["source_id"] in closed else "CC0-1.0")
        assert m.max_rate("media") <= 40
        again = harvest(NgaSource(data=str(folder), open_access_only=False, image_size=64),
                        _cfg(limit=60, size=64), home)
        assert again.skipped == 60 and sum(again.counts.values()) == 60


def test_bad_tables_and_cli(tmp_path):
    with pytest.raises(ArtdataError, match=r"no such folder"):
        harvest(NgaSource(data=str(tmp_path / "missing")), _cfg(), Home(tmp_path / "x"))
    folder = tmp_path / "nga"
    folder.mkdir()
    (folder / "objects.csv").write_text("objectid,title\n1,A\n")
    with pytest.raises(ArtdataError, match=r"no published_images.csv \(nor published_images.zip\)"):
        harvest(NgaSource(data=str(folder)), _cfg(), Home(tmp_path / "x"))
    (folder / "published_images.csv").write_text("uuid,iiifurl,viewtype\nu,http://127.0.0.1:9/x,primary\n")
    with pytest.raises(ArtdataError, match=r"published_images.csv: missing column\(s\) depictstmsobjectid, openaccess"):
        harvest(NgaSource(data=str(folder)), _cfg(), Home(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    with Mirror() as m:
        r = CliRunner().invoke(app, ["crawl", "nga", m.base("api") + "/nga/data/", "--classification", "Painting",
                                     "--limit", "4", "--rate", "50", "--image-size", "64",
                                     "--home", str(tmp_path / "z")])
        assert r.exit_code == 0, r.output
        assert "ok 4" in r.output
        r = CliRunner().invoke(app, ["crawl", "nga", m.base("api") + "/nowhere", "--home", str(tmp_path / "w")])
        assert r.exit_code == 1 and "nowhere/objects.csv: HTTP 404" in r.output and "Traceback" not in r.output
        assert not (tmp_path / "w").exists()
