import json
from collections import Counter

import pandas as pd
import pytest

from artdata import ArtdataError
from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.mirror import Faults, Mirror, bundled_tate
from artdata.sources.tate import choose_rendition, read_table, record_from_row, TateSource
from conftest import assert_polite

FAST = ClientConfig(rate=50, concurrency=8, block_pause=0.3, backoff=0.02, backoff_max=0.1, timeout=5)


def test_choose_rendition():
    url = "http://www.tate.org.uk/art/images/work/A/A00/A00001_8.jpg"
    assert choose_rendition(url, 100, 400, 300).endswith("_8.jpg")     # 256 * .75 = 192 >= 100
    assert choose_rendition(url, 200, 400, 300).endswith("_9.jpg")     # 192 < 200 <= 547
    assert choose_rendition(url, 1000, 400, 300).endswith("_10.jpg")
    assert choose_rendition(url, 5000, 400, 300).endswith("_10.jpg")   # the largest there is
    assert choose_rendition(url, 100, None, None).endswith("_8.jpg")
    assert choose_rendition(url, 250, 300, 300, side="longer").endswith("_8.jpg")


def test_record_from_real_row():
    df = bundled_tate()
    row = df[df.thumbnailUrl.notna() & df.subjects.notna()].iloc[0].to_dict()
    r = record_from_row(row)
    assert r["source"] == "tate" and r["source_id"] == str(row["id"])
    assert r["medium"] == row["medium"] and r["tags"] == row["subjects"].split("|")
    assert json.loads(r["extra"])["accession_number"] == row["accession_number"]


def test_harvest_from_mirror_table(home):
    with Mirror(faults=Faults(server_error=0.1, truncated=0.05, corrupt_image=0.05)) as m:
        src = TateSource(table=m.tate_table_url, image_size=200)
        res = harvest(src, HarvestConfig("tate", image=ImageConfig(size=200), client=FAST, workers=1, limit=120), home)
        rows = res.manifest.table().to_pylist()
        assert len(rows) == 120 and len({r["source_id"] for r in rows}) == 120
        st = Counter(r["status"] for r in rows)
        assert st["ok"] > 80 and st["no_image"] >= 1, st
        ok = [r for r in rows if r["status"] == "ok"]
        assert all(r["image_url"].startswith(m.media_base) for r in ok)
        assert all(min(r["width"], r["height"]) == 200 or "_10.jpg" in r["image_url"] for r in ok)
        assert any("_9.jpg" in r["image_url"] for r in ok)
        assert_polite(m, "media", 50)
        assert res.manifest.card["lineage"]["selection"]["table"] == m.tate_table_url


def test_filters_and_local_csv(home, tmp_path):
    df = bundled_tate()
    csv = tmp_path / "artwork_data.csv"
    df.to_csv(csv, index=False)
    with Mirror() as m:
        src = TateSource(table=str(csv), media=["Oil paint on canvas"], has_thumbnail=True,
                         image_base=m.media_base, image_size=64)
        res = harvest(src, HarvestConfig("oil", image=ImageConfig(size=64), client=FAST, workers=1), home)
        rows = res.manifest.table().to_pylist()
        want = df[(df.medium == "Oil paint on canvas") & df.thumbnailUrl.notna()]
        assert {r["source_id"] for r in rows} == {str(i) for i in want.id}
        assert all(r["status"] == "ok" for r in rows)
        src = TateSource(table=str(csv), acquired_from=1990, acquired_to=2000, no_copyright_restricted=True,
                         image_base=m.media_base)
        res = harvest(src, HarvestConfig("acq", client=FAST, metadata_only=True), home)
        acq = pd.to_numeric(df.acquisitionYear, errors="coerce")
        want = df[(acq >= 1990) & (acq <= 2000) & df.thumbnailCopyright.isna()]
        assert res.manifest.rows == len(want)


def test_json_tree_input(tmp_path):
    tree = tmp_path / "artworks" / "a" / "000"
    tree.mkdir(parents=True)
    (tree / "A00001-1035.json").write_text(json.dumps({
        "id": 1035, "acno": "A00001", "title": "A Figure Bowing", "medium": "Watercolour on paper",
        "thumbnailUrl": "http://www.tate.org.uk/art/images/work/A/A00/A00001_8.jpg", "width": 394, "height": 419,
        "contributors": [{"fc": "Robert Blake", "id": 38}], "classification": "on paper, unique",
        "subjects": {"name": "subject", "children": [{"name": "religion", "children": [{"name": "angel"}]}]}}))
    df = read_table(str(tmp_path / "artworks"))
    assert df.iloc[0]["accession_number"] == "A00001" and df.iloc[0]["subjects"] == "angel"


def test_bad_tables_give_one_line_errors(tmp_path):
    with pytest.raises(ArtdataError, match="missing column"):
        p = tmp_path / "x.csv"
        p.write_text("a,b\n1,2\n")
        read_table(str(p))
    with pytest.raises(ArtdataError, match="expected a .parquet or .csv"):
        read_table(str(tmp_path / "x.txt"))
    with pytest.raises(ArtdataError, match="cannot read Tate table"):
        p = tmp_path / "broken.parquet"
        p.write_bytes(b"not parquet")
        read_table(str(p))
