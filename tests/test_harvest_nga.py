"""`crawl nga` against the mirror's National Gallery of Art: the open-data CSVs with the museum's own columns (a
folder, a zip, or over HTTP) joined here (primary view, open access = no `maxpixels` fair-use limit,
classification, the first artist's nationality), IIIF `full/!N,N` at the requested size and never more (nor
above a fair-use image's maxpixels box), a server that ignores the size, faults and statuses, a copy of the
tables with an `openaccess` column, real constituents rows, and bad tables."""
import csv
import io
import re
import zipfile

import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror, aspect_size
from artdata.mirror.nga import NGA_COLUMNS, NGA_FAIR_USE_BOX, NGA_NATIVE_SIDE, nga_uuid
from artdata.paths import Home
from artdata.sources.nga import NgaSource, iiif_box, open_access
from conftest import assert_polite

TABLES = ("objects", "published_images", "objects_constituents", "constituents")


def _cfg(limit=None, size=96, rate=100.0, m=None):
    """`m`: a run from a folder of tables, whose image URLs name the mirror's media host (on loopback, which the
    client goes to only when the user names it)."""
    return HarvestConfig(manifest="nga", image=ImageConfig(size=size), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=4, retries=2, backoff=0.05, backoff_max=0.2,
                                             block_pause=0.2, trusted_hosts=(m.base("media"),) if m else ()))


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
        res = harvest(NgaSource(data=data, classifications=["painting"], image_size=96), _cfg(m=m), home)
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


def test_the_tables_have_the_museums_columns():
    """The mirror's CSVs have exactly the columns of the museum's sql_tables/*.sql; published_images.csv has no
    open-access column, and its fair-use images (works that are not public domain) have maxpixels set."""
    with Mirror() as m:
        tables = {name: list(csv.DictReader(io.StringIO(data.decode()))) for name, data in m.nga_tables().items()}
        for name, rows in tables.items():
            assert tuple(rows[0]) == NGA_COLUMNS[name]
        assert NGA_COLUMNS["published_images"] == (
            "uuid", "iiifurl", "iiifthumburl", "viewtype", "sequence", "width", "height", "maxpixels", "created",
            "modified", "depictstmsobjectid", "assistivetext")
        for img in tables["published_images"]:
            pd_ = bool(m.met.rows[img["depictstmsobjectid"]].get("Is Public Domain"))
            assert img["maxpixels"] == ("" if pd_ else str(NGA_FAIR_USE_BOX))
            assert re.fullmatch(r"\d+", img["width"]) and re.fullmatch(r"\d+", img["height"])
        assert any("\n" in i["assistivetext"] and "," in i["assistivetext"] for i in tables["published_images"])
        assert {r["roletype"] for r in tables["objects_constituents"]} == {"artist", "donor"}


def test_fair_use_images_all_rights_and_the_box(tmp_path):
    """Open access only: the public-domain works, none of the fair-use images. --all-rights: the fair-use ones
    too, with no licence, each asked within its maxpixels box (here 640, below the 683 px that 512 needs)."""
    with Mirror() as m:
        data = m.base("api") + "/nga/data"
        paintings = [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings"]
        fair_use = {o for o in paintings if not m.met.rows[o].get("Is Public Domain")}
        assert fair_use and set(paintings) - fair_use
        home = Home(tmp_path / "open")
        res = harvest(NgaSource(data=data, classifications=["Painting"], image_size=512), _cfg(size=512), home)
        assert res.total == len(paintings) - len(fair_use) and res.counts == {"ok": res.total}
        assert not fair_use & {r["source_id"] for r in load(home.manifests, "nga").table().to_pylist()}
        m.nga_sizes.clear()
        home = Home(tmp_path / "all")
        res = harvest(NgaSource(data=data, classifications=["Painting"], open_access_only=False, image_size=512),
                      _cfg(size=512), home)
        assert res.total == len(paintings) and res.counts == {"ok": len(paintings)}
        rows = {r["source_id"]: r for r in load(home.manifests, "nga").table().to_pylist()}
        capped = 0
        for oid, r in rows.items():
            w, h = aspect_size(f"nga:{oid}", NGA_NATIVE_SIDE)
            n = iiif_box(w, h, 512)                             # what 512 on the shorter side needs
            if oid in fair_use:
                assert r["license"] is None and r["is_public_domain"] is False
                n, capped = min(n, NGA_FAIR_USE_BOX), capped + (n > NGA_FAIR_USE_BOX)
                if n < 512 * max(w, h) / min(w, h):
                    assert min(r["width"], r["height"]) < 512    # what the box gives, never enlarged
            else:
                assert r["license"] == "CC0-1.0" and r["is_public_domain"] is True
                assert min(r["width"], r["height"]) == 512
            assert r["image_url"].endswith(f"/full/!{n},{n}/0/default.jpg")
            assert max(r["orig_width"], r["orig_height"]) == n
        assert capped > 0
        assert m.nga_over_box == [] and len(m.nga_sizes) == len(paintings)      # one request each, in the box


def _write_csv(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


# two rows of the museum's own constituents.csv (NationalGalleryOfArt/opendata, data export of 2025-03-08)
REAL_CONSTITUENTS = (
    "constituentid,ulanid,preferreddisplayname,forwarddisplayname,lastname,displaydate,artistofngaobject,beginyear,"
    "endyear,visualbrowsertimespan,nationality,visualbrowsernationality,constituenttype,wikidataid\n"
    '1726,500019484,"Monet, Claude",Claude Monet,Monet,"French, 1840 - 1926",1,1840,1926,1826 to 1850,French,French,'
    "individual,Q296\n"
    '1107,500012368,"Cassatt, Mary",Mary Cassatt,Cassatt,"American, 1844 - 1926",1,1844,1926,1826 to 1850,American,'
    "American,individual,Q173223\n")


def test_tables_in_the_museums_layout_and_an_openaccess_copy(tmp_path):
    """Hand-written tables in the museum's column layout (real constituents rows): the join, the open-access
    rule, a donor never taken for the artist, an unreadable maxpixels failing its record (never asked without
    its box), and a copy of published_images.csv with an `openaccess` column, whose flag is followed."""
    folder = tmp_path / "nga"
    folder.mkdir()
    base = "http://127.0.0.1:9/iiif"
    _write_csv(folder / "objects.csv", NGA_COLUMNS["objects"], [
        {"objectid": "10", "accessioned": "1", "title": "Woman with a Parasol", "beginyear": "1875",
         "endyear": "1875", "attribution": "Claude Monet", "classification": "Painting", "departmentabbr": "CFP",
         "isvirtual": "0"},
        {"objectid": "11", "accessioned": "1", "title": "The Boating Party", "attribution": "Mary Cassatt",
         "classification": "Painting", "departmentabbr": "CAP", "isvirtual": "0"},
        {"objectid": "12", "accessioned": "1", "title": "A modern work", "attribution": "Someone",
         "classification": "Painting", "departmentabbr": "MA", "isvirtual": "0"},
        {"objectid": "13", "accessioned": "1", "title": "Unreadable limit", "classification": "Painting",
         "departmentabbr": "MA", "isvirtual": "0"},
    ])
    images = [
        {"uuid": "u10", "iiifurl": f"{base}/u10", "viewtype": "primary", "sequence": "0", "width": "3000",
         "height": "4000", "depictstmsobjectid": "10"},
        {"uuid": "u10b", "iiifurl": f"{base}/u10b", "viewtype": "alternate", "sequence": "1", "width": "3000",
         "height": "4000", "maxpixels": "640", "depictstmsobjectid": "10"},
        {"uuid": "u11", "iiifurl": f"{base}/u11", "viewtype": "primary", "sequence": "0", "width": "3000",
         "height": "2000", "depictstmsobjectid": "11"},
        {"uuid": "u12", "iiifurl": f"{base}/u12", "viewtype": "primary", "sequence": "0", "width": "3000",
         "height": "2000", "maxpixels": "640", "depictstmsobjectid": "12"},
        {"uuid": "u13", "iiifurl": f"{base}/u13", "viewtype": "primary", "sequence": "0", "width": "3000",
         "height": "2000", "maxpixels": "n/a", "depictstmsobjectid": "13"},
    ]
    _write_csv(folder / "published_images.csv", NGA_COLUMNS["published_images"], images)
    _write_csv(folder / "objects_constituents.csv", NGA_COLUMNS["objects_constituents"], [
        {"objectid": "10", "constituentid": "1726", "displayorder": "1", "roletype": "artist", "role": "painter"},
        {"objectid": "11", "constituentid": "1", "displayorder": "0", "roletype": "donor", "role": "donor"},
        {"objectid": "11", "constituentid": "1107", "displayorder": "1", "roletype": "artist", "role": "painter"},
    ])
    (folder / "constituents.csv").write_text(
        REAL_CONSTITUENTS + '1,,"Donor, A",A Donor,Donor,German,0,,,,German,German,individual,\n')
    runs = iter(range(10))

    def rows(open_only):
        home = Home(tmp_path / f"h{next(runs)}")
        harvest(NgaSource(data=str(folder), open_access_only=open_only, image_size=512),
                HarvestConfig(manifest="nga", metadata_only=True, client=_cfg().client), home)
        return {r["source_id"]: r for r in load(home.manifests, "nga").table().to_pylist()}

    got = rows(True)
    assert set(got) == {"10", "11"}
    assert got["10"]["artist_nationality"] == "French" and got["11"]["artist_nationality"] == "American"
    assert got["10"]["license"] == "CC0-1.0" and got["10"]["status"] == "pending"
    assert got["10"]["image_url"] == f"{base}/u10/full/!683,683/0/default.jpg"       # the primary view
    got = rows(False)
    assert set(got) == {"10", "11", "12", "13"}
    assert got["12"]["license"] is None and got["12"]["is_public_domain"] is False
    assert got["12"]["image_url"] == f"{base}/u12/full/!640,640/0/default.jpg"       # within its box
    assert got["13"]["status"] == "failed" and "maxpixels 'n/a' of image u13" in got["13"]["error"]
    assert got["13"]["image_url"] is None
    # a copy of the tables with an openaccess column: its flag decides (the box still holds)
    for img in images:
        img["openaccess"] = {"u10": "0", "u12": "1"}.get(img["uuid"], "")
    _write_csv(folder / "published_images.csv", NGA_COLUMNS["published_images"] + ("openaccess",), images)
    got = rows(True)
    assert set(got) == {"11", "12"}
    assert got["12"]["license"] == "CC0-1.0" and got["12"]["image_url"].endswith("/full/!640,640/0/default.jpg")


def test_iiif_box_rule():
    assert iiif_box(3000, 2000, 256) == 384          # landscape: the height is the short side
    assert iiif_box(2000, 3000, 256) == 384
    assert iiif_box(1000, 1000, 256) == 256
    assert iiif_box(300, 200, 256) == 300            # never above the image's own size
    assert iiif_box(None, 2000, 256) == 512          # unknown size: twice the side, and a larger fallback
    # maxpixels is the side of the box a fair-use image is rendered from: never asked above it
    assert iiif_box(40000, 30000, 2000, maxpixels=4096) == 2667
    assert iiif_box(4000, 3000, 512, maxpixels=640) == 640 < iiif_box(4000, 3000, 512)
    assert iiif_box(None, None, 512, maxpixels=640) == 640
    assert iiif_box(4000, 3000, 512, maxpixels="") == iiif_box(4000, 3000, 512) == 683


def test_open_access_rule():
    assert open_access({"maxpixels": None}) and open_access({"maxpixels": "", "openaccess": ""})
    assert not open_access({"maxpixels": "640"})
    assert open_access({"maxpixels": "640", "openaccess": "1"})           # a copy with the flag: the flag decides
    assert not open_access({"maxpixels": None, "openaccess": "0"})


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
                _cfg(limit=60, size=64, rate=40, m=m), home)
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
        assert_polite(m, "media", 40)
        again = harvest(NgaSource(data=str(folder), open_access_only=False, image_size=64),
                        _cfg(limit=60, size=64, m=m), home)
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
    with pytest.raises(ArtdataError, match=r"published_images.csv: missing column\(s\) depictstmsobjectid, maxpixels"):
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
