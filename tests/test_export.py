"""Exports read back by the real clients: `datasets` (Parquet with embedded images, WebDataset, imagefolder),
DuckDB, the `webdataset` library, torchvision's ImageFolder and mlcroissant (the Croissant card with its RAI
fields); and the trainer's shard reader (every sample once per epoch across ranks and workers, hostile shards)."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdata.datasets.images import ImageConfig, ImageStore
from artdata.datasets.manifest import card_loader, load
from artdata.paths import Home

from artdata.datasets import export as E
from artdata.datasets import rai as R
from artdata.train import shards as S
from test_remote import s3  # noqa: F401  (the sharing tests' S3 server: moto on 127.0.0.1, signed requests)

COLORS = {"blue": (30, 60, 220), "green": (30, 200, 60), "red": (220, 40, 40)}


def _jpeg(color, seed, w, h) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color, np.int16) + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture(scope="module")
def colors(tmp_path_factory):
    """A class-per-folder import (3 colours x 20 Pillow JPEGs) and its movement split."""
    from artdata.splits.folder import import_folder
    from artdata.splits.recipes import build_split
    root = tmp_path_factory.mktemp("colors")
    home = Home(root / "home")
    for ci, (cls, color) in enumerate(COLORS.items()):
        (root / "src" / cls).mkdir(parents=True)
        for i in range(20):
            (root / "src" / cls / f"img.{i:03d}.jpg").write_bytes(_jpeg(color, ci * 100 + i, 64 + i, 48 + i % 7))
    m = import_folder(home, root / "src", "colors", image=ImageConfig(size=48), workers=1)
    return home, build_split(home, "movement", m.ref, name="colors-movement", min_count=2)


def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _by_id(m) -> dict:
    t = m.table(columns=["source_id", "label", "split", "image_key"]).to_pylist()
    return {r["source_id"]: r for r in t}


# ---------------------------------------------------------------- Hugging Face

def test_hf_export_loads_with_datasets_and_duckdb(colors, tmp_path, monkeypatch):
    home, m = colors
    _offline(monkeypatch, tmp_path)
    dest = tmp_path / "hf"
    # small shards and at most 2 files a folder: several shards per split, nested folders, all still read
    res = E.export(m, ImageStore(home.images), str(dest), "hf", E.ExportConfig(shard_bytes=20_000, max_files_per_folder=2))
    assert res.samples == {"train": 48, "validation": 6, "test": 6} and res.left_out == {}
    for folder in (dest / "data").rglob("*"):       # below data/<split>/: never more than 2 entries a folder
        if folder.is_dir():
            assert len(list(folder.iterdir())) <= 2, folder
    train_files = sorted((dest / "data" / "train").rglob("*.parquet"))
    assert len(train_files) >= 3 and all(p.parent.name.isdigit() for p in train_files)
    front = (dest / "README.md").read_text().split("---")[1]
    assert "config_name: default" in front and "class_label:" in front and "dtype: image" in front

    import datasets
    d = datasets.load_dataset(str(dest))
    assert {s: d[s].num_rows for s in d} == {"train": 48, "validation": 6, "test": 6}
    feats = d["train"].features
    assert isinstance(feats["image"], datasets.Image) and isinstance(feats["label"], datasets.ClassLabel)
    assert feats["label"].names == ["blue", "green", "red"]
    store, want = ImageStore(home.images), _by_id(m)
    split_of = {"train": "train", "validation": "val", "test": "test"}
    for split in d:
        for row in d[split].cast_column("image", datasets.Image(decode=False)):
            rec = want[row["source_id"]]
            assert feats["label"].int2str(row["label"]) == rec["label"] and split_of[split] == rec["split"]
            assert row["image"]["bytes"] == store.path(rec["image_key"]).read_bytes()
    img = d["test"][0]["image"]
    assert isinstance(img, Image.Image) and img.size[1] <= 54

    import duckdb
    rows = duckdb.sql(f"select label, count(*) from read_parquet('{dest}/data/*/**/*.parquet') group by 1 "
                      f"order by 1").fetchall()
    assert rows == [(0, 20), (1, 20), (2, 20)]


def test_harvest_without_labels_exports_one_split_and_counts_what_is_left_out(tmp_path, monkeypatch):
    """A Met harvest through the mirror (withdrawn and image-less objects): only `ok` records go out, the rest
    is counted in the result and the card."""
    from artdata.harvest import HarvestConfig, harvest
    from artdata.harvest.client import ClientConfig
    from artdata.mirror import Faults, Mirror
    from artdata.sources.met import MetSource
    _offline(monkeypatch, tmp_path)
    home = Home(tmp_path / "home")
    fast = ClientConfig(rate=40, concurrency=8, block_pause=0.3, backoff=0.02, backoff_max=0.1, timeout=5)
    with Mirror(faults=Faults(withdrawn=0.15, no_image=0.15)) as mir:
        m = harvest(MetSource(api_base=mir.met_api_base, image_size=32),
                    HarvestConfig("met", image=ImageConfig(size=32), client=fast, limit=40, workers=1), home).manifest
    status = Counter(m.table(columns=["status"]).column("status").to_pylist())
    assert status["ok"] < 40 and status["no_image"] and status["not_found"]
    res = E.export(m, ImageStore(home.images), str(tmp_path / "out"), "hf")
    assert res.samples == {"train": status["ok"]} and res.left_out == {k: v for k, v in status.items() if k != "ok"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"not_found {status['not_found']}" in card and "license: cc0-1.0" in card
    import datasets
    d = datasets.load_dataset(str(tmp_path / "out"))
    assert list(d) == ["train"] and d["train"].num_rows == status["ok"] and "label" not in d["train"].features


def test_export_stops_on_a_missing_or_damaged_image_and_leaves_no_card(colors, tmp_path):
    home, m = colors
    key = m.table(columns=["image_key"]).column("image_key")[5].as_py()
    src = ImageStore(home.images).path(key)
    store_copy = tmp_path / "images"
    import shutil
    shutil.copytree(home.images, store_copy)
    broken = ImageStore(store_copy)
    broken.path(key).write_bytes(src.read_bytes()[:-10])
    with pytest.raises(E.ExportError, match=r"record folder:.*differs from its sha256"):
        E.export(m, broken, str(tmp_path / "a"), "webdataset")
    assert not (tmp_path / "a" / "index.json").exists() and not (tmp_path / "a" / "README.md").exists()
    assert not [p for p in (tmp_path / "a").rglob("*") if ".part-" in p.name]       # nothing half-written
    broken.path(key).unlink()
    with pytest.raises(E.ExportError, match=r"is not in the store .*materialize"):
        E.export(m, broken, str(tmp_path / "b"), "hf")
    assert not (tmp_path / "b" / "README.md").exists()
    assert not [p for p in (tmp_path / "b").rglob("*") if ".part-" in p.name]
    with pytest.raises(E.ExportError, match=r"--format 'zip': choose one of hf, webdataset, imagefolder"):
        E.export(m, broken, str(tmp_path / "c"), "zip")


# ---------------------------------------------------------------- WebDataset

def test_webdataset_export_read_by_webdataset_and_datasets(colors, tmp_path, monkeypatch):
    home, m = colors
    _offline(monkeypatch, tmp_path)
    dest = tmp_path / "wds"
    res = E.export(m, ImageStore(home.images), str(dest), "webdataset", E.ExportConfig(shard_bytes=20_000))
    index = json.loads((dest / "index.json").read_text())
    tr = index["splits"]["train"]
    assert tr["samples"] == 48 and len(tr["shards"]) >= 3 and index["classes"] == ["blue", "green", "red"]
    for s in tr["shards"]:
        p = dest / s["file"]
        assert s["file"].startswith("colors-movement-train-") and p.stat().st_size == s["bytes"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == s["sha256"]
        with tarfile.open(p) as tar:
            names = tar.getnames()
        keys = {n.split(".", 1)[0] for n in names}
        assert all("." not in k and "/" not in k for k in keys) and len(names) == 3 * len(keys)

    import webdataset as wds
    url = str(dest / tr["pattern"])
    got = list(wds.WebDataset(url, shardshuffle=False).decode("pil").to_tuple("jpg", "cls", "json"))
    assert len(got) == 48
    want = _by_id(m)
    for img, cls, meta in got:
        rec = want[meta["source_id"]]
        assert index["classes"][cls] == rec["label"] == meta["label"] and isinstance(img, Image.Image)

    import datasets
    d = datasets.load_dataset(str(dest))
    assert {s: d[s].num_rows for s in d} == {"train": 48, "validation": 6, "test": 6}
    assert d["train"].features["cls"].names == ["blue", "green", "red"]
    assert isinstance(d["train"][0]["jpg"], Image.Image) and d["train"][0]["json"]["source"] == "folder"
    plain = datasets.load_dataset("webdataset", data_files={"test": str(dest / "colors-movement-test-*.tar")})
    assert plain["test"].num_rows == 6 and sorted(plain["test"]["cls"]) == sorted(
        index["classes"].index(r["label"]) for r in want.values() if r["split"] == "test")


def test_imagefolder_export(colors, tmp_path, monkeypatch):
    home, m = colors
    _offline(monkeypatch, tmp_path)
    dest = tmp_path / "folders"
    E.export(m, ImageStore(home.images), str(dest), "imagefolder")
    import torchvision
    tv = torchvision.datasets.ImageFolder(str(dest / "train"))
    assert tv.classes == ["blue", "green", "red"] and len(tv) == 48
    import datasets
    d = datasets.load_dataset("imagefolder", data_dir=str(dest))
    assert {s: d[s].num_rows for s in d} == {"train": 48, "validation": 6, "test": 6}
    assert Counter(d["test"]["label"]) == {"blue": 2, "green": 2, "red": 2}


def test_class_folder_names_are_safe():
    for bad in ("../../etc", "..", "/abs", "a\x00b", "\\server\\x", " .x. "):
        f = E.class_folder(bad)
        assert f and "/" not in f and "\\" not in f and "\x00" not in f and not f.startswith((".", " ")) and f != ".."
    assert E.class_folder("../../etc") == "_.._etc"
    assert E.class_folder("a/b\\c") == "a_b_c"
    assert E.class_folder(".hidden") == "hidden"
    assert E.class_folder("Flemish, 17th c. (probably)") == "Flemish, 17th c. (probably)"
    assert E.class_folder("x" * 300) == "x" * 100
    assert E.class_folder("...") == "_"


# ---------------------------------------------------------------- Croissant RAI

def _validate(path: Path, caplog):
    import mlcroissant as mlc
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        ds = mlc.Dataset(jsonld=str(path))
    issues = ds.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, (issues.errors, issues.warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text[-2000:]
    return ds


def test_croissant_rai_fields_from_the_harvest_validate_and_the_user_fills_the_rest(tmp_path, caplog):
    from artdata.harvest import HarvestConfig, harvest
    from artdata.harvest.client import ClientConfig
    from artdata.datasets.manifest import croissant_with_rai
    from artdata.mirror import Faults, Mirror
    from artdata.sources.met import MetSource
    from artdata.splits.recipes import build_split
    home = Home(tmp_path / "home")
    fast = ClientConfig(rate=40, concurrency=8, block_pause=0.3, backoff=0.02, backoff_max=0.1, timeout=5)
    with Mirror(faults=Faults(withdrawn=0.1, no_image=0.1)) as mir:
        h = harvest(MetSource(api_base=mir.met_api_base, image_size=32),
                    HarvestConfig("met", image=ImageConfig(size=32), client=fast, limit=40, workers=1), home).manifest
    m = build_split(home, "department", h.ref, name="met-department", min_count=3)
    t = m.table()
    anc, missing = R.harvest_ancestors(m.card, card_loader(home.manifests))
    assert [c["version"] for c in anc] == [h.version] and missing == []
    fields = R.rai_fields(m.card, t, anc)
    st = h.card["counts"]["by_status"]
    assert f"no_image {st['no_image']}" in fields["rai:dataCollectionMissingData"]
    assert "at most 40 requests/s per host" in fields["rai:dataCollection"]
    assert h.card["lineage"]["harvest_window"]["start"] in fields["rai:dataCollectionTimeFrame"]
    assert "met: CC0-1.0" in fields["rai:dataCollection"] and fields["rai:dataCollectionType"] == ["Web API"]
    assert any("Class balance" in b for b in fields["rai:dataBiases"])
    assert any("Per-source shares: met 100.0%" in b for b in fields["rai:dataBiases"])
    assert any("32 px on the shorter side" in p for p in fields["rai:dataPreprocessingProtocol"])
    assert any(f"status:not_found {st['not_found']}" in p for p in fields["rai:dataPreprocessingProtocol"])
    assert any("capped at 40 records" in x for x in fields["rai:dataLimitations"])
    assert set(R.to_fill(fields)) == {"rai:dataSocialImpact", "rai:dataReleaseMaintenancePlan", "rai:dataUseCases",
                                      "rai:personalSensitiveInformation"}
    mine = tmp_path / "rai.yaml"
    mine.write_text("dataSocialImpact: Helps study collections; may reinforce a Western canon.\n"
                    "rai:dataUseCases:\n  - Department classification benchmarks\n  - Not for attribution\n")
    user = R.load_rai_file(mine)
    fields = R.rai_fields(m.card, t, anc, user=user)
    assert fields["rai:dataUseCases"] == ["Department classification benchmarks", "Not for attribution"]
    assert "rai:dataSocialImpact" not in R.to_fill(fields)
    own = json.loads((m.path / "croissant.json").read_text())      # every version's card has the fields
    assert own["rai:dataCollection"] == R.rai_fields(m.card, t, anc)["rai:dataCollection"]
    _validate(m.path / "croissant.json", caplog)
    doc = croissant_with_rai(home.manifests, m.card, t, user)
    assert doc["license"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    import shutil
    shutil.copytree(m.path, tmp_path / "card")
    (tmp_path / "card" / "croissant.json").write_text(json.dumps(doc))
    ds = _validate(tmp_path / "card" / "croissant.json", caplog)
    md = ds.metadata
    assert md.data_social_impact.startswith("Helps study") and md.data_collection_type == ["Web API"]
    assert len(md.data_collection_timeframe) == 2 and md.data_limitations
    assert len(list(ds.records("records"))) == m.rows


@pytest.mark.parametrize("text, message", [
    ("dataSocialImpct: x\n", r"rai.yaml: 'dataSocialImpct' is not a Croissant RAI field \(known: dataCollection"),
    ("dataSocialImpact: [a, b]\n", r"rai.yaml: dataSocialImpact: expected one text, not a list"),
    ("dataBiases: 3\n", r"rai.yaml: dataBiases: expected text or a list of texts"),
    ("- a\n", r"rai.yaml: expected a mapping of rai: fields"),
    ("a: [\n", r"rai.yaml: not YAML"),
])
def test_rai_file_errors_are_one_line(tmp_path, text, message):
    p = tmp_path / "rai.yaml"
    p.write_text(text)
    with pytest.raises(R.RaiError, match=message) as e:
        R.load_rai_file(p)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("fmt", ["hf", "webdataset", "imagefolder"])
def test_export_croissant_validates_and_loads(colors, tmp_path, fmt, caplog):
    home, m = colors
    dest = tmp_path / fmt
    res = E.export(m, ImageStore(home.images), str(dest), fmt, E.ExportConfig(shard_bytes=30_000))
    assert "rai:dataSocialImpact" in res.to_fill
    ds = _validate(dest / "croissant.json", caplog)
    assert ds.metadata.data_collection.startswith("Built with artdata from 1 harvest(s) of folder")
    if fmt == "hf":
        recs = list(ds.records("records"))
        assert len(recs) == 60 and Counter(r["records/label"] for r in recs) == {0: 20, 1: 20, 2: 20}
        assert all(isinstance(r["records/image"], Image.Image) for r in recs[:5])
    elif fmt == "imagefolder":
        recs = list(ds.records("images"))
        assert Counter(r["images/label"].decode() for r in recs) == {"blue": 20, "green": 20, "red": 20}
    else:
        shas = {d["name"]: d["sha256"] for d in json.loads((dest / "croissant.json").read_text())["distribution"]}
        assert len(shas) >= 3 and all(hashlib.sha256((dest / n).read_bytes()).hexdigest() == h for n, h in shas.items())


def test_cli_export_with_rai_file_and_errors(colors, tmp_path, caplog):
    from typer.testing import CliRunner
    from artdata.cli import app
    home, m = colors
    rai = tmp_path / "rai.json"
    rai.write_text(json.dumps({"rai:dataSocialImpact": "None expected: colour swatches.",
                               "dataReleaseMaintenancePlan": "Kept by the lab for two years."}))
    r = CliRunner().invoke(app, ["manifests", "export", m.ref, str(tmp_path / "out"), "--format", "webdataset",
                                 "--rai", str(rai), "--home", str(home.root)])
    assert r.exit_code == 0, r.output
    assert f"export {m.ref} -> {tmp_path / 'out'} (webdataset): train 48, validation 6, test 6 images" in r.output
    assert "fields to fill with --rai FILE: rai:dataUseCases, rai:personalSensitiveInformation" in r.output
    doc = json.loads((tmp_path / "out" / "croissant.json").read_text())
    assert doc["rai:dataSocialImpact"] == "None expected: colour swatches."
    _validate(tmp_path / "out" / "croissant.json", caplog)
    for args, message in (
            (["--format", "zip"], "Error: --format 'zip': choose one of hf, webdataset, imagefolder"),
            (["--format", "hf", "--rai", str(tmp_path / "none.yaml")], f"Error: {tmp_path / 'none.yaml'}: cannot read"),
    ):
        r = CliRunner().invoke(app, ["manifests", "export", m.ref, str(tmp_path / "x"), *args, "--home", str(home.root)])
        assert r.exit_code == 1 and r.output.strip().startswith(message) and len(r.output.strip().splitlines()) == 1, \
            r.output
    r = CliRunner().invoke(app, ["manifests", "export", "nope", str(tmp_path / "x"), "--format", "hf",
                                 "--home", str(home.root)])
    assert r.exit_code == 1 and "no manifest named 'nope'" in r.output


def test_export_to_s3_read_back_by_datasets_and_the_shard_reader(colors, s3, tmp_path, monkeypatch):
    """The S3 server of the sharing tests (moto, signed requests): `datasets` reads the Parquet shards from it and
    the trainer's reader streams the tar shards from it."""
    home, m = colors
    store = ImageStore(home.images)
    E.export(m, store, "s3://lab-data/exports/hf", "hf", E.ExportConfig(shard_bytes=30_000))
    E.export(m, store, "s3://lab-data/exports/wds", "webdataset", E.ExportConfig(shard_bytes=30_000))
    _offline(monkeypatch, tmp_path)
    import datasets
    # offline mode refuses every URL, the loopback S3 server's too (read when `datasets` is imported)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    opts = {"client_kwargs": {"endpoint_url": s3}}
    files = {"train": "s3://lab-data/exports/hf/data/train/*.parquet",
             "test": "s3://lab-data/exports/hf/data/test/*.parquet"}
    d = datasets.load_dataset("parquet", data_files=files, storage_options=opts)
    assert d["train"].num_rows == 48 and d["train"].features["label"].names == ["blue", "green", "red"]
    assert isinstance(d["test"][0]["image"], Image.Image)
    index = S.open_index("s3://lab-data/exports/wds")
    assert index.samples("train") == 48 and index.splits["train"][0].url.startswith("s3://lab-data/exports/wds/")
    loader = S.create_shard_loader(index, "train", 32, 8, 0, shuffle=True)
    assert sorted(int(i) for _, _, _, p in loader for i in p) == list(range(48))


# ---------------------------------------------------------------- the trainer's shard reader

@pytest.fixture(scope="module")
def shard_dir(colors, tmp_path_factory):
    home, m = colors
    dest = tmp_path_factory.mktemp("shards")
    E.export(m, ImageStore(home.images), str(dest), "webdataset", E.ExportConfig(shard_bytes=12_000))
    return dest


def test_partition_covers_every_sample_once():
    shards = [S.Shard(f"s{i}", n, 0, 0) for i, n in enumerate([5, 0, 17, 3, 9, 1])]
    for slots in range(1, 40):
        seen = Counter()
        sizes = []
        for slot in range(slots):
            pieces = S.partition(shards, slot, slots)
            sizes.append(sum(b - a for _, a, b in pieces))
            for s, a, b in pieces:
                seen.update((s.url, i) for i in range(a, b))
        assert set(seen.values()) <= {1} and len(seen) == 35 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("world, workers", [(1, 0), (2, 2), (3, 1)])
def test_each_sample_once_per_epoch_across_ranks_and_workers(shard_dir, world, workers):
    index = S.open_index(str(shard_dir))
    assert len(index.splits["train"]) >= world * max(workers, 1) - 1
    for epoch in (0, 1):
        seen = Counter()
        for rank in range(world):
            loader = S.create_shard_loader(index, "train", 32, 4, workers, shuffle=True, seed=3, epoch=epoch,
                                           rank=rank, world=world)
            n = 0
            for images, targets, skipped, pos in loader:
                assert skipped == 0 and images.shape[1:] == (3, 32, 32)
                seen.update(pos.tolist())
                n += len(pos)
            assert n == len(loader.dataset)
        assert sorted(seen) == list(range(48)) and set(seen.values()) == {1}


def test_shard_items_equal_the_store_path(colors, shard_dir):
    from artdata.train.data import ManifestImages, load_splits
    home, m = colors
    splits, classes, _, _ = load_splits(m)
    index = S.open_index(str(shard_dir / "index.json"))
    assert index.classes == classes and index.ref == m.ref
    store_items = ManifestImages(splits["test"].keys, splits["test"].targets, ImageStore(home.images), 40)
    by_target = sorted((int(t), x.numpy().tobytes()) for x, t, _ in (store_items[i] for i in range(len(store_items))))
    shard_items = sorted((t, x.numpy().tobytes()) for x, t, _ in S.ShardImages(index, "test", 40))
    assert by_target == shard_items


def _tar(path: Path, members: list[tuple[str, bytes]], symlink: str | None = None) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)


def _index(folder: Path, files: list[str], samples: list[int]) -> None:
    shards = [{"file": f, "samples": n, "bytes": (folder / f).stat().st_size if (folder / f).exists() else 0}
              for f, n in zip(files, samples)]
    (folder / "index.json").write_text(json.dumps({
        "format": "artdata-webdataset", "format_version": 1, "name": "x", "version": "0123456789ab",
        "classes": ["a", "b"], "multi_label": False, "splits": {"train": {"samples": sum(samples), "shards": shards}}}))


def test_hostile_shards_are_read_as_streams_and_bad_samples_skipped(tmp_path, caplog):
    good = _jpeg((200, 0, 0), 1, 40, 40)
    key = hashlib.sha256(good).hexdigest()
    meta = json.dumps({"image_key": key}).encode()
    other = _jpeg((0, 200, 0), 2, 40, 40)
    _tar(tmp_path / "x-train-000000.tar", [
        ("k1.jpg", good), ("k1.json", meta), ("k1.cls", b"0"),                 # good
        ("../../evil.jpg", good),                                              # a path: skipped, never written
        ("k2.jpg", other), ("k2.json", meta), ("k2.cls", b"1"),                # differs from its image_key
        ("k3.jpg", good), ("k3.cls", b"7"),                                    # class out of range
        ("k4.jpg", b"not a jpeg"), ("k4.cls", b"1"),                           # not decodable
        ("k5.jpg", good), ("k5.cls", b"1"),                                    # good
    ], symlink="k6.jpg")
    _index(tmp_path, ["x-train-000000.tar"], [5])
    index = S.open_index(str(tmp_path))
    ds = S.ShardImages(index, "train", 32)
    with caplog.at_level(logging.WARNING):
        items = list(ds)
    assert [it[1] if it else None for it in items] == [0, None, None, None, 1]
    assert ds.stats == {"member with an unexpected name": 1, "image that differs from its image_key": 1,
                        "sample without a valid class": 1, "member that is not a regular file": 1,
                        **{k: 1 for k in ds.stats if k.startswith("image not decoded")}}
    assert not (tmp_path.parent / "evil.jpg").exists() and not list(Path(".").glob("evil.jpg"))

    # a shard longer than its index says, and a truncated one: counted, the samples skipped, the run goes on
    whole = (tmp_path / "x-train-000000.tar").read_bytes()
    idx = json.loads((tmp_path / "index.json").read_text())
    idx["splits"]["train"]["shards"][0]["bytes"] = 6000
    (tmp_path / "index.json").write_text(json.dumps(idx))
    ds = S.ShardImages(S.open_index(str(tmp_path)), "train", 32)
    out = list(ds)
    assert len(out) < 5 and any("longer than the 6000 bytes its index gives" in k for k in ds.stats)
    assert any("sample(s) missing" in k for k in ds.stats)
    (tmp_path / "x-train-000000.tar").write_bytes(whole[:1500])
    _index(tmp_path, ["x-train-000000.tar"], [1])
    ds = S.ShardImages(S.open_index(str(tmp_path)), "train", 32)
    assert list(ds) == [] and any("truncated" in k or "unreadable" in k for k in ds.stats)
    assert any("1 sample(s) missing" in k for k in ds.stats)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["splits"]["train"]["shards"][0].update(file="../../etc/x-train-000000.tar"), r"shards\[0\]\.file"),
    (lambda d: d["splits"]["train"]["shards"][0].update(file="http://169.254.169.254/x-train-000000.tar"), r"\.file"),
    (lambda d: d["splits"]["train"]["shards"][0].update(file="x-test-000000.tar"), r"\.file"),
    (lambda d: d["splits"]["train"]["shards"][0].update(samples=-1), r"samples/bytes"),
    (lambda d: d["splits"]["train"]["shards"][0].update(samples=10 ** 9), r"samples/bytes"),   # more than fit
    (lambda d: d["splits"]["train"].update(samples=99), r"splits\.train\.samples"),
    (lambda d: d.update(version="../x"), r"version"),
    (lambda d: d.update(format="other"), r"not an artdata WebDataset index"),
])
def test_hostile_index_is_refused_in_one_line(tmp_path, change, message):
    _tar(tmp_path / "x-train-000000.tar", [("k.jpg", b"x")])
    _index(tmp_path, ["x-train-000000.tar"], [1])
    d = json.loads((tmp_path / "index.json").read_text())
    change(d)
    (tmp_path / "index.json").write_text(json.dumps(d))
    with pytest.raises(S.ShardError, match=message) as e:
        S.open_index(str(tmp_path))
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path / "index.json").write_text("[" * 100_000)
    with pytest.raises(S.ShardError, match="not JSON"):
        S.open_index(str(tmp_path))


def test_class_names_that_yaml_or_json_could_misread_come_back_as_written(tmp_path, monkeypatch):
    from artdata.datasets.images import process_image
    from artdata.datasets.manifest import write_manifest
    from artdata.datasets.records import new_record, to_table
    _offline(monkeypatch, tmp_path)
    home = Home(tmp_path / "home")
    store = ImageStore(home.images)
    names = ["null", 'Fran\u00e7ais "x": y', "\u65e5\u672c \U0001F600", "- dash #hash", "1"]
    recs = []
    for ci, c in enumerate(names):
        for i, split in enumerate(("train", "train", "val", "test")):
            res = process_image(_jpeg((40 * ci, 90, 200 - 30 * ci), ci * 10 + i, 40, 36), ImageConfig(size=32))
            store.put(res.data, res.key)
            recs.append(new_record("folder", f"{ci}/{i}.jpg", label=c, split=split, **res.fields()))
    m = write_manifest(home.manifests, "odd", to_table(recs))
    import datasets
    E.export(m, store, str(tmp_path / "hf"), "hf")
    d = datasets.load_dataset(str(tmp_path / "hf"))
    assert d["train"].features["label"].names == sorted(names)
    E.export(m, store, str(tmp_path / "wds"), "webdataset")
    w = datasets.load_dataset(str(tmp_path / "wds"))
    assert w["test"].features["cls"].names == sorted(names) and w["test"].num_rows == len(names)
    E.export(m, store, str(tmp_path / "folders"), "imagefolder")
    assert sorted(p.name for p in (tmp_path / "folders" / "train").iterdir() if p.is_dir()) == sorted(
        E.class_folder(n) for n in names)


def test_shards_over_http(shard_dir):
    """`--shards https://...`: the index and the tars fetched from a static web host (here on 127.0.0.1)."""
    import functools
    import http.server
    import threading
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shard_dir))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        index = S.open_index(f"http://127.0.0.1:{server.server_port}/index.json")
        assert index.splits["train"][0].url.startswith(f"http://127.0.0.1:{server.server_port}/colors-movement-")
        seen = sorted(int(i) for _, _, sk, pos in S.create_shard_loader(index, "train", 32, 8, 0, shuffle=True)
                      for i in pos)
        assert seen == list(range(48))
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


@pytest.mark.parametrize("text", ["\u65e5\u672c \U0001F600", "a\u2028b", "x\x85y\x7f", 'tab\tq"\\', "null", "#: -"])
def test_yaml_quote_round_trips(text):
    import yaml
    assert yaml.safe_load("k: " + E.yaml_quote(text))["k"] == text


def test_multi_label_split_exports_tags_as_a_list_of_class_labels(tmp_path, monkeypatch):
    from test_train import make_split
    _offline(monkeypatch, tmp_path)
    home = Home(tmp_path / "home")
    m = make_split(home, n_per_class=5, name="ml", multi=True)
    store = ImageStore(home.images)
    import datasets
    E.export(m, store, str(tmp_path / "hf"), "hf")
    d = datasets.load_dataset(str(tmp_path / "hf"))
    feat = d["train"].features["labels"]
    assert isinstance(feat, datasets.List) and feat.feature.names == ["Baroque", "Cubism", "Pop art", "striped"]
    want = {r["source_id"]: sorted(r["labels"]) for r in m.table(columns=["source_id", "labels"]).to_pylist()}
    for split in d:
        for row in d[split]:
            assert sorted(feat.feature.int2str(i) for i in row["labels"]) == want[row["source_id"]]
    E.export(m, store, str(tmp_path / "wds"), "webdataset")
    assert not list((tmp_path / "wds").glob("*.cls")) and json.loads((tmp_path / "wds" / "index.json").read_text())[
        "multi_label"] is True
    w = datasets.load_dataset(str(tmp_path / "wds"))
    assert "cls" not in w["train"].features and w["train"][0]["json"]["label_indices"]
    index = S.open_index(str(tmp_path / "wds"))           # the trainer reads the tags as multi-hot targets
    classes = index.classes
    got = {}
    for x, target, pos in S.ShardImages(index, "train", 32):
        got[pos] = sorted(classes[i] for i in range(len(classes)) if target[i] == 1)
    assert len(got) == index.samples("train") and sorted(map(tuple, got.values())) == sorted(
        tuple(want[r["source_id"]]) for r in d["train"])
    with pytest.raises(E.ExportError, match="imagefolder needs one label per record"):
        E.export(m, store, str(tmp_path / "folders"), "imagefolder")


def test_licences_are_listed_once_each():
    import pyarrow as pa
    t = pa.table({"license": ["CC0-1.0", "http://creativecommons.org/publicdomain/zero/1.0/",
                              "https://creativecommons.org/publicdomain/zero/1.0", None, "\u00a9 Tate"]})
    assert R.licence_urls(t) == ["https://creativecommons.org/publicdomain/zero/1.0/", "\u00a9 Tate"]


def test_destination_must_be_empty_or_this_export_or_overwritten(colors, tmp_path, monkeypatch):
    """Another export's shards left beside this one would be read with it: refused, or removed with overwrite."""
    home, m = colors
    _offline(monkeypatch, tmp_path)
    store, dest = ImageStore(home.images), tmp_path / "out"
    E.export(m, store, str(dest), "hf", E.ExportConfig(shard_bytes=10_000))
    small = sorted(p.name for p in (dest / "data" / "train").rglob("*.parquet"))
    E.export(m, store, str(dest), "hf", E.ExportConfig(shard_bytes=10_000))          # the same export again: fine
    with pytest.raises(E.ExportError, match=r"holds \d+ file\(s\) of something else .*add --overwrite"):
        E.export(m, store, str(dest), "hf", E.ExportConfig(shard_bytes=100_000))
    E.export(m, store, str(dest), "hf", E.ExportConfig(shard_bytes=100_000, overwrite=True))
    big = sorted(p.name for p in (dest / "data" / "train").rglob("*.parquet"))
    assert len(big) < len(small) and not set(big) & set(small)
    import datasets
    assert datasets.load_dataset(str(dest))["train"].num_rows == 48        # no stale shard read with the new ones
    # an export cut short (marker, one shard, a half-written file) is finished by the same command
    cut = tmp_path / "cut"
    E.export(m, store, str(cut), "webdataset", E.ExportConfig(shard_bytes=20_000))
    for f in ("index.json", "README.md", "croissant.json"):
        (cut / f).unlink()
    (cut / "colors-movement-train-000001.tar.part-1234abcd").write_bytes(b"half")
    E.export(m, store, str(cut), "webdataset", E.ExportConfig(shard_bytes=20_000))
    assert (cut / "index.json").is_file() and not list(cut.glob("*.part-*"))
    # a folder holding anything else is never written into, overwrite or not
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(E.ExportError, match=r"holds 1 file\(s\) that are not an artdata export \(e\.g\. thesis"):
            E.export(m, store, str(other), "imagefolder", E.ExportConfig(overwrite=overwrite))
    assert (other / "thesis.tex").read_text() == "keep me" and len(list(other.iterdir())) == 1
