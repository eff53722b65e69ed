"""`crawl cleveland` against the mirror's Cleveland Museum of Art API: the listing's filters (cc0, has_image, type,
department), the museum's fields in the schema (culture list, creators' nationality), the smallest rendition
that is large enough, the bulk data.json / JSON lines / data.csv with no API request for metadata, faults and
statuses, the rate, and extending a harvest (the resumed part asks /artworks/{id})."""
import csv
import json
import re

import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.mirror.cleveland import cma_artwork
from artdata.paths import Home
from artdata.sources.cleveland import ClevelandSource, creator, image_urls
from conftest import assert_polite


def _cfg(limit=None, size=96, rate=100.0):
    return HarvestConfig(manifest="cleveland", image=ImageConfig(size=size), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=4, retries=2, backoff=0.05, backoff_max=0.2,
                                             block_pause=0.2))


def _api(m):
    return m.base("api") + "/cma/api"


def _per_id(m) -> list[str]:
    """The ids asked one by one (/artworks/{id}), in order."""
    return [p.rsplit("/", 1)[1] for _, p, _ in m.logs["api"].entries if re.fullmatch(r"/cma/api/artworks/\d+", p)]


def test_type_filter_fields_and_the_smallest_rendition(tmp_path):
    with Mirror() as m:
        home = Home(tmp_path)
        res = harvest(ClevelandSource(api_base=_api(m), types=["Painting"], image_size=96), _cfg(), home)
        want = [o for o, r in m.met.rows.items() if r.get("Classification") == "Paintings" and r.get("Is Public Domain")]
        assert res.total == len(want) and res.counts == {"ok": len(want)}
        df = load(home.manifests, "cleveland").to_pandas()
        assert (df.source == "cleveland").all() and (df.classification == "Painting").all()
        assert df.is_public_domain.all() and (df.license == "CC0-1.0").all()
        assert (df[["width", "height"]].min(axis=1) == 96).all()
        # the museum's culture list and the creators' descriptions land in the schema's fields
        for row in load(home.manifests, "cleveland").table().to_pylist()[:40]:
            a = cma_artwork(m, row["source_id"])
            assert row["culture"] == ("|".join(a["culture"]) or None)
            assert (row["artist"], row["artist_nationality"]) == creator(a)
        assert df.culture.str.contains(r", \d+(?:st|nd|rd|th) century", na=False).any()
        assert df.artist_nationality.notna().any()
        # 96 px: the web rendition is always enough; nothing larger was fetched
        assert {k for _, k in m.cma_renditions} == {"web"}
        assert _per_id(m) == []                                               # the listing carried the records
        assert_polite(m, "api", 100)


def test_rendition_rule():
    def art(sizes):
        return {"images": {k: {"url": f"u/{k}", "width": w, "height": h} for k, (w, h) in sizes.items()}}
    sizes = {"web": (640, 480), "print": (1800, 1350), "full": (3400, 2550)}
    assert image_urls(art(sizes), 256) == ["u/web", "u/print", "u/full"]
    assert image_urls(art(sizes), 480) == ["u/web", "u/print", "u/full"]
    assert image_urls(art(sizes), 481) == ["u/print", "u/full"]
    assert image_urls(art(sizes), 4000) == ["u/full"]                         # none large enough: the largest
    # data.csv: URLs only, tried from the smallest up (the harvest moves on while one is too small)
    assert image_urls({"image_web": "w", "image_print": "p", "image_full": "f"}, 999) == ["w", "p", "f"]
    assert image_urls({"images": None}, 256) == []
    assert creator({"creators": [{"description": "Claude Monet (French, 1840–1926)"}]}) == ("Claude Monet", "French")
    assert creator({"creators": "[{'description': 'Hokusai (Japanese, 1760–1849)'}]"}) == ("Hokusai", "Japanese")
    assert creator({"creators": [{"description": "Unknown (1700s)"}]}) == ("Unknown", None)


def test_creator_nationality_only_from_a_nationality_group():
    """The nationality comes only from a trailing "(Nationality, dates)" group: "Tiwanaku artist(s)" has none
    (not "s"), nor does a trailing alias or a date."""
    def nat(desc):
        return creator({"creators": [{"description": desc, "role": "artist"}]})
    assert nat("Tiwanaku artist(s)") == ("Tiwanaku artist(s)", None)
    assert nat("Moche artist(s) (1700s)") == ("Moche artist(s)", None)
    assert nat("Claude Monet (French, 1840–1926)") == ("Claude Monet", "French")
    assert nat("El Greco (Domenikos Theotokopoulos) (Greek, 1541–1614)") == (
        "El Greco (Domenikos Theotokopoulos)", "Greek")
    assert nat("Jacob Jordaens (Flemish, active 1593–1678)") == ("Jacob Jordaens", "Flemish")
    assert nat("Unknown (Japanese)") == ("Unknown", "Japanese")
    assert nat("Domenikos (Domenikos Theotokopoulos)")[1] is None          # an alias, not a nationality
    assert nat("Someone (active in Rome, 1600s)")[1] is None
    assert nat("Sebastiano Ricci (Italian/Venetian, 1659–1734)")[1] == "Italian/Venetian"


def test_a_record_without_a_nationality_group_harvested(tmp_path):
    """A data.json record whose creator is "Tiwanaku artist(s)" lands with no nationality; Monet's with French."""
    with Mirror() as m:
        docs = [cma_artwork(m, o) for o in m.met.ids[:40]]
        chosen = [d for d in docs if d["share_license_status"] == "CC0" and d["images"]][:2]
        chosen[0]["creators"] = [{"id": 1, "role": "artist", "description": "Tiwanaku artist(s)", "biography": None}]
        chosen[1]["creators"] = [{"id": 2, "role": "artist", "description": "Claude Monet (French, 1840–1926)",
                                  "biography": None}]
        dump = tmp_path / "data.json"
        dump.write_text(json.dumps(chosen))
        home = Home(tmp_path / "h")
        res = harvest(ClevelandSource(api_base=_api(m), dump=str(dump), image_size=64),
                      HarvestConfig(manifest="cleveland", metadata_only=True, client=_cfg().client), home)
        assert res.total == 2
        rows = {r["source_id"]: r for r in load(home.manifests, "cleveland").table().to_pylist()}
        assert (rows[str(chosen[0]["id"])]["artist"], rows[str(chosen[0]["id"])]["artist_nationality"]) == \
            ("Tiwanaku artist(s)", None)
        assert (rows[str(chosen[1]["id"])]["artist"], rows[str(chosen[1]["id"])]["artist_nationality"]) == \
            ("Claude Monet", "French")


def test_larger_renditions_when_the_size_asks(tmp_path):
    with Mirror() as m:
        home = Home(tmp_path)
        res = harvest(ClevelandSource(api_base=_api(m), types=["Painting"], image_size=500), _cfg(limit=12, size=500),
                      home)
        assert res.counts == {"ok": 12}
        df = load(home.manifests, "cleveland").to_pandas()
        fetched = dict(m.cma_renditions)
        for _, row in df.iterrows():
            w, h = (int(x) for x in (cma_artwork(m, row.source_id)["images"]["web"][k] for k in ("width", "height")))
            assert fetched[row.source_id] == ("web" if min(w, h) >= 500 else "print")
            assert row.image_url.endswith(f"/{fetched[row.source_id]}.jpg")
            assert min(row.width, row.height) == 500
        assert "print" in fetched.values() and "full" not in fetched.values()
        assert len(m.cma_renditions) == 12                                    # one image request per artwork


def _csv_row(a: dict) -> dict:
    """A data.csv row as the museum flattens a record: lists as text, image_web/print/full as bare URLs."""
    row = {k: v for k, v in a.items() if k != "images"}
    row["culture"] = str(a["culture"]) if a["culture"] else ""
    row["creators"] = str(a["creators"]) if a["creators"] else ""
    for k in ("web", "print", "full"):
        row[f"image_{k}"] = a["images"][k]["url"] if a["images"] else ""
    return row


@pytest.mark.parametrize("form", ["json", "data-json", "jsonl", "csv"])
def test_dump_selects_without_api_requests(tmp_path, form):
    with Mirror() as m:
        docs = [cma_artwork(m, o) for o in m.met.ids[:80]]
        dump = tmp_path / ("data.csv" if form == "csv" else "data.jsonl" if form == "jsonl" else "data.json")
        if form == "json":
            dump.write_text(json.dumps(docs))
        elif form == "data-json":
            dump.write_text(json.dumps({"data": docs}))
        elif form == "jsonl":
            dump.write_text("".join(json.dumps(d) + "\n" for d in docs))
        else:
            rows = [_csv_row(d) for d in docs]
            with open(dump, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        home = Home(tmp_path / "h")
        res = harvest(ClevelandSource(api_base=_api(m), dump=str(dump), image_size=64), _cfg(size=64), home)
        chosen = [d for d in docs if d["share_license_status"] == "CC0" and d["images"]]
        assert res.total == len(chosen) and res.counts == {"ok": len(chosen)}
        assert m.logs["api"].count(prefix="/cma/") == 0                      # metadata from the dump only
        assert {k for _, k in m.cma_renditions} == {"web"} and len(m.cma_renditions) == len(chosen)
        rows = {r["source_id"]: r for r in load(home.manifests, "cleveland").table().to_pylist()}
        for d in chosen[:20]:
            assert rows[str(d["id"])]["culture"] == ("|".join(d["culture"]) or None)
            assert rows[str(d["id"])]["artist_nationality"] == creator(d)[1]


def test_faults_statuses_and_extending(tmp_path):
    faults = Faults(seed=3, withdrawn=0.15, corrupt_image=0.15, server_error=0.2, truncated=0.1, too_many=0.1,
                    retry_after=0.1, no_image=0.1)
    with Mirror(faults=faults) as m:
        home = Home(tmp_path)
        res = harvest(ClevelandSource(api_base=_api(m), cc0_only=False, image_size=64), _cfg(limit=40, size=64, rate=40),
                      home)
        df = load(home.manifests, "cleveland").to_pandas()
        assert len(df) == 40 and set(df.status) == {"ok", "failed"}     # has_image=1: none without an image
        # a corrupt web image: the print rendition was tried next, and the error names the URLs
        failed = df[df.status == "failed"]
        assert failed.error.str.contains("/cma/images/").all()
        assert_polite(m, "api", 40)
        assert _per_id(m) == []
        res = harvest(ClevelandSource(api_base=_api(m), cc0_only=False, image_size=64), _cfg(limit=70, size=64), home)
        assert res.skipped == 40
        assert len(set(_per_id(m))) == 30                                     # only the thirty new artworks
        df = load(home.manifests, "cleveland").to_pandas()
        assert len(df) == 70 and "not_found" in set(df.status)                # withdrawn since the listing


def test_bad_dump_and_cli(tmp_path):
    bad = tmp_path / "data.json"
    bad.write_text('[{"title": "no id"}]')
    with pytest.raises(ArtdataError, match=r"--dump .*data.json\[0\]: not an artwork record \(no id\)"):
        harvest(ClevelandSource(dump=str(bad)), _cfg(), Home(tmp_path / "x"))
    cut = tmp_path / "cut.json"
    cut.write_text('[{"id": 1, "title": "A"}, {"id": 2, "ti')             # a download cut short
    with pytest.raises(ArtdataError, match=r"--dump .*cut.json: unreadable \(JSONDecodeError"):
        harvest(ClevelandSource(dump=str(cut)), _cfg(), Home(tmp_path / "x"))
    nocol = tmp_path / "data.csv"
    nocol.write_text("title,type\nA,Painting\n")
    with pytest.raises(ArtdataError, match=r"--dump .*data.csv: no id column"):
        harvest(ClevelandSource(dump=str(nocol)), _cfg(), Home(tmp_path / "x"))
    r = CliRunner().invoke(app, ["crawl", "cleveland", "--dump", str(tmp_path / "missing.json"),
                                 "--home", str(tmp_path / "y")])
    assert r.exit_code == 1 and "--dump" in r.output and "no such file" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with Mirror() as m:
        r = CliRunner().invoke(app, ["crawl", "cleveland", "--api-base", _api(m), "--type", "Painting,Drawing",
                                     "--limit", "5", "--rate", "50", "--image-size", "64",
                                     "--home", str(tmp_path / "z")])
        assert r.exit_code == 0, r.output
        assert "ok 5" in r.output
        lists = [p for _, p, _ in m.logs["api"].entries if p.rstrip("/") == "/cma/api/artworks"]
        assert len(lists) >= 2                                                # one listing per type



def test_department_filter(tmp_path):
    """Two departments (a listing each), metadata only: exactly the CC0 works with an image of those two."""
    with Mirror(faults=Faults(seed=1, no_image=0.1)) as m:
        depts = ["European Paintings", "Asian Art"]
        home = Home(tmp_path)
        harvest(ClevelandSource(api_base=_api(m), departments=depts),
                HarvestConfig(manifest="cleveland", metadata_only=True, client=_cfg().client), home)
        rows = load(home.manifests, "cleveland").table().to_pylist()
        docs = [cma_artwork(m, o) for o in m.met.ids]
        want = {str(d["id"]) for d in docs if d["department"] in depts and d["images"]}
        assert {r["source_id"] for r in rows} == want and len(want) > 50
        assert all(r["license"] == "CC0-1.0" and r["status"] == "pending" for r in rows)
        assert {r["department"] for r in rows} == set(depts)
        lists = [q for _, q, _ in m.logs["api"].entries if q.rstrip("/") == "/cma/api/artworks"]
        assert len(lists) >= 2                                                # a listing per department
