import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.datasets.manifest import ManifestError, content_hash, diff, list_manifests, load, verify, write_manifest
from artdata.datasets.records import new_record, to_table
from conftest import jpeg_bytes


def _records(store, n=5, split=False):
    recs = []
    for i in range(n):
        res = process_image(jpeg_bytes(200, 150, color=(i * 40, 10, 10)), ImageConfig(size=64))
        store.put(res.data, res.key)
        r = new_record("met", i, title=f"t{i}", image_url=f"http://x/{i}.jpg", **res.fields())
        if split:
            r.update(label="A" if i % 2 else "B", split=("train", "val", "test")[i % 3])
        recs.append(r)
    return recs


def test_write_load_round_trip_and_card(tmp_path):
    store = ImageStore(tmp_path / "img")
    recs = _records(store)
    m = write_manifest(tmp_path / "m", "demo", to_table(recs), lineage={"source": "met", "parents": []})
    assert len(m.version) == 12 and m.card["content_hash"].startswith(m.version)
    back = load(tmp_path / "m", "demo").table().to_pylist()
    assert [r["source_id"] for r in back] == ["0", "1", "2", "3", "4"]
    card = json.loads((m.path / "card.json").read_text())
    assert card["counts"]["by_status"] == {"ok": 5}
    assert card["schema_version"] == "1.1" and card["artdata_version"]
    assert {f["path"] for f in card["files"]} == {"data/records-00000-of-00001.parquet", "README.md", "croissant.json"}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in card["files"])
    # generic tools read it directly
    assert len(pd.read_parquet(m.path / "data")) == 5
    assert pq.read_table(m.path / "data" / "records-00000-of-00001.parquet").num_rows == 5


def test_same_content_same_version_immutable(tmp_path):
    store = ImageStore(tmp_path / "img")
    recs = _records(store)
    a = write_manifest(tmp_path / "m", "demo", to_table(recs))
    b = write_manifest(tmp_path / "m", "demo", to_table(list(reversed(recs))))
    assert a.version == b.version and len(list_manifests(tmp_path / "m")) == 1
    recs[0]["title"] = "changed"
    c = write_manifest(tmp_path / "m", "demo", to_table(recs))
    assert c.version != a.version and len(list_manifests(tmp_path / "m")) == 2
    assert content_hash(to_table(recs)) == c.card["content_hash"]


def test_split_manifest_files_croissant_and_hf_front_matter(tmp_path):
    store = ImageStore(tmp_path / "img")
    m = write_manifest(tmp_path / "m", "s", to_table(_records(store, 6, split=True)),
                       lineage={"recipe": "culture", "params": {"seed": 0}, "parents": ["met@abc"]})
    names = sorted(f["path"] for f in m.card["files"] if f["path"].startswith("data/"))
    assert names == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
                     "data/validation-00000-of-00001.parquet"]
    assert m.card["counts"]["by_split"] == {"train": 2, "val": 2, "test": 2}
    assert m.card["counts"]["by_class"] == {"A": 3, "B": 3}
    cr = json.loads((m.path / "croissant.json").read_text())
    assert cr["@type"] == "sc:Dataset" and cr["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    files = {d["contentUrl"]: d["sha256"] for d in cr["distribution"] if d["@type"] == "cr:FileObject"}
    card_files = {f["path"]: f["sha256"] for f in m.card["files"]}
    assert files == {k: v for k, v in card_files.items() if k.startswith("data/")}
    splits = [rs for rs in cr["recordSet"] if rs["@id"] == "splits"][0]
    assert {d["splits/name"] for d in splits["data"]} == {"train", "val", "test"}
    readme = (m.path / "README.md").read_text()
    assert "split: validation" in readme and "path: data/test-00000-of-00001.parquet" in readme


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(ManifestError, match="no manifest named 'nope'"):
        load(tmp_path, "nope")
    store = ImageStore(tmp_path / "img")
    write_manifest(tmp_path, "x", to_table(_records(store, 1)))
    with pytest.raises(ManifestError, match="no version"):
        load(tmp_path, "x@ffff")
    with pytest.raises(ManifestError, match="manifest name 'Bad Name': a manifest name is lower-case letters"):
        write_manifest(tmp_path, "Bad Name", to_table(_records(store, 1)))


def test_diff_added_removed_relabelled_moved(tmp_path):
    store = ImageStore(tmp_path / "img")
    recs = _records(store, 6, split=True)
    a = write_manifest(tmp_path, "s", to_table(recs))
    recs2 = [dict(r) for r in recs[1:]]
    recs2[0]["label"] = "Z"                  # id 1 relabelled
    recs2[1]["split"] = "train" if recs2[1]["split"] != "train" else "test"   # id 2 moved
    recs2[2]["title"] = "new title"           # id 3 otherwise changed
    recs2.append(dict(recs[0], source_id="99"))
    b = write_manifest(tmp_path, "s", to_table(recs2))
    d = diff(a, b)
    assert d.added == [("met", "99")] and d.removed == [("met", "0")]
    assert [k for k, _, _ in d.relabelled] == [("met", "1")]
    assert [k for k, _, _ in d.moved] == [("met", "2")]
    assert d.changed == [(("met", "3"), ["title"])]


def test_verify_finds_missing_and_corrupt_images_and_tampered_files(tmp_path):
    store = ImageStore(tmp_path / "img")
    recs = _records(store, 4)
    m = write_manifest(tmp_path / "m", "v", to_table(recs))
    assert verify(m, store).ok
    store.path(recs[0]["image_key"]).unlink()
    store.path(recs[1]["image_key"]).write_bytes(b"junk")
    rep = verify(m, store)
    assert not rep.ok and len(rep.problems) == 2
    assert any("met:0" in p and "missing" in p for p in rep.problems)
    assert any("met:1" in p and "checksum" in p for p in rep.problems)
    (m.path / "README.md").write_text("edited")
    assert any("README.md: sha256 differs" in p for p in verify(m, store).problems)
