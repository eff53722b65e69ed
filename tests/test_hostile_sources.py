"""Hostile dumps and malformed records, met where a user meets them (`artdata crawl ...` through the CLI):

* bombs: a tarball or zip member, a table, a Parquet file, a line larger than `--max-member-bytes` (decompressed
  bytes count) is one line naming the archive and the member, read as a stream (memory stays flat);
* a truncated tarball says so; a Cleveland CSV with an unterminated quote names the line;
* one malformed record (an id that is no number, an object where text is expected, an empty or non-http URL,
  IIIF `items: ["x", 5]`, JSON nested 100,000 deep, a redirect loop on one image) is one `failed` record naming
  it, and the rest of the harvest goes on: exit 0, a manifest with the good records.

Every dump is built in tmp_path; every answer comes from the loopback mirror (nothing leaves the machine)."""
import csv
import io
import json
import tarfile
import tracemalloc
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from artdata import ArtdataError
from artdata.cli import app
from artdata.datasets.manifest import load
from artdata.mirror import Mirror, Response, json_response
from artdata.mirror.aic import artwork
from artdata.mirror.cleveland import cma_artwork
from artdata.paths import Home
from artdata.sources import (CappedReader, TooLarge, capped_lines, int32, parse_bytes, record_id, text)
from artdata.sources.aic import read_dump as aic_dump
from artdata.sources.cleveland import read_dump as cma_dump

FAST = ["--rate", "200", "--retries", "1", "--block-pause", "0.2", "--workers", "1"]


def run(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def one_error_line(out: str) -> str:
    """The CLI's one `Error: ...` line (and no traceback)."""
    assert "Traceback" not in out and "Aborted" not in out, out
    lines = [l for l in out.splitlines() if l.startswith("Error: ")]
    assert len(lines) == 1, out
    return lines[0]


def records(home: Home, name: str) -> dict[str, dict]:
    return {r["source_id"]: r for r in load(home.manifests, name).table().to_pylist()}


class Zeros(io.RawIOBase):
    """`n` bytes of a JSON string's inside ('a' * n), made as they are read (never held whole)."""

    def __init__(self, n: int):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = b"a" * k
        self.left -= k
        return k


def tar_with(path, members: dict[str, bytes], big: tuple[str, int] | None = None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if big:
            info = tarfile.TarInfo(big[0])
            info.size = big[1]
            tar.addfile(info, Zeros(big[1]))


# ---------------------------------------------------------------- the helpers' rules

def test_field_helpers_coerce_or_name_the_field():
    assert text(5) == "5" and text(" a ") == "a" and text(["a", 5, None]) == "a; 5" and text(float("nan")) is None
    with pytest.raises(ArtdataError, match="title: an object where text was expected"):
        text({"x": 1}, "title")
    assert int32("1850") == 1850 and int32(10**12) is None and int32(True) is None and int32("c. 1850") is None
    assert record_id(12) == "12" and record_id("12") == "12" and record_id(12.0) == "12"
    assert record_id("abc") is None and record_id(1.5) is None and record_id("../1") is None and record_id(True) is None
    assert parse_bytes("64MiB", 1) == 64 * 2**20 and parse_bytes("2G", 1) == 2 * 2**30 and parse_bytes(None, 7) == 7
    assert parse_bytes("1048576", 1) == 2**20
    with pytest.raises(ArtdataError, match="--max-member-bytes 'lots'"):
        parse_bytes("lots", 1)


def test_capped_reader_and_lines_stop_at_the_cap():
    r = CappedReader(io.BytesIO(b"x" * 100), 100, "a.zip:b.csv")
    assert r.read() == b"x" * 100                               # exactly the cap: fine
    with pytest.raises(TooLarge, match=r"a\.zip:b\.csv: larger than the 100 bytes limit; --max-member-bytes"):
        CappedReader(io.BytesIO(b"x" * 101), 100, "a.zip:b.csv").read()
    assert [n for n, _ in capped_lines(io.BytesIO(b"ab\ncd\n"), 3, "f")] == [1, 2]
    with pytest.raises(TooLarge, match="f:2: larger than"):
        list(capped_lines(io.BytesIO(b"ab\n" + b"c" * 50), 10, "f"))


# ---------------------------------------------------------------- bombs

def test_tarball_member_over_the_cap_is_one_line_naming_archive_and_member(tmp_path):
    dump = tmp_path / "artic-api-data.tar.gz"
    good = json.dumps({"id": 1, "title": "ok", "is_public_domain": True}).encode()
    tar_with(dump, {"artworks/1.json": good}, big=("artworks/2.json", 3 * 2**20))
    code, out = run("crawl", "aic", "--dump", dump, "--max-member-bytes", "1MiB", "--home", tmp_path / "h")
    line = one_error_line(out)
    assert code == 1 and f"{dump}:artworks/2.json" in line and "1 MiB limit" in line and "--max-member-bytes" in line
    assert not (tmp_path / "h" / "harvest").exists()            # nothing left behind
    code, out = run("crawl", "aic", "--dump", dump, "--max-member-bytes", "4MiB", "--metadata-only",
                    "--home", tmp_path / "h2")                  # raised: the member is read (and is no JSON)
    assert code == 0, out


def test_a_200_mb_member_with_a_10_mb_cap_is_never_held(tmp_path):
    dump = tmp_path / "bomb.tar.gz"
    tar_with(dump, {}, big=("artworks/1.json", 200 * 2**20))
    assert dump.stat().st_size < 2 * 2**20                      # a small file ...
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="bomb.tar.gz:artworks/1.json"):
            aic_dump(str(dump), 10 * 2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak                              # ... that is never inflated into memory


def test_a_json_lines_dump_of_one_endless_line(tmp_path):
    dump = tmp_path / "artworks.jsonl"
    with open(dump, "wb") as fh:
        fh.write(b'{"id": 1, "title": "' + b"a" * (4 * 2**20))     # no newline: one 4 MB line
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=r"artworks.jsonl:1: larger than the 1 MiB limit"):
            aic_dump(str(dump), 2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2**20, peak


def test_zip_bomb_table_is_refused_before_it_is_inflated(tmp_path):
    with Mirror() as m:
        tables = m.nga_tables()
    data = tmp_path / "nga"
    data.mkdir()
    for name, body in tables.items():
        (data / f"{name}.csv").write_bytes(body)
    (data / "objects.csv").unlink()
    header, first = tables["objects"].split(b"\n")[:2]
    with zipfile.ZipFile(data / "objects.zip", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("objects.csv", "w") as fh:                  # ~60 MB of rows, about 100 kB zipped
            fh.write(header + b"\n")
            for _ in range(60 * 2**20 // (len(first) + 1)):
                fh.write(first + b"\n")
    assert (data / "objects.zip").stat().st_size < 2**20
    tracemalloc.start()
    try:
        code, out = run("crawl", "nga", data, "--max-member-bytes", "8MiB", "--home", tmp_path / "h")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    line = one_error_line(out)
    assert code == 1 and f"{data / 'objects.zip'}:objects.csv" in line and "8 MiB limit" in line
    assert peak < 40 * 2**20, peak


def test_parquet_and_csv_tables_over_the_cap(tmp_path):
    p = tmp_path / "artworks.parquet"                           # 40 MB of text that compresses to almost nothing
    pq.write_table(pa.table({"id": list(range(2000)), "medium": ["x" * 20_000] * 2000,
                             "thumbnailUrl": [None] * 2000}), p, use_dictionary=False, compression="zstd")
    assert p.stat().st_size < 2**20
    code, out = run("crawl", "tate", p, "--max-member-bytes", "10MiB", "--home", tmp_path / "h")
    line = one_error_line(out)
    assert code == 1 and "artworks.parquet (uncompressed)" in line and "10 MiB limit" in line
    ids = tmp_path / "MetObjects.csv"
    ids.write_text("Object ID,Title\n" + "".join(f"{i},t\n" for i in range(100_000)))
    code, out = run("crawl", "met", "--ids-from", ids, "--max-member-bytes", "100kB", "--home", tmp_path / "h")
    line = one_error_line(out)
    assert code == 1 and "MetObjects.csv" in line and "--max-member-bytes" in line


def test_a_bad_cap_is_one_line(tmp_path):
    code, out = run("crawl", "aic", "--dump", tmp_path, "--max-member-bytes", "a lot", "--home", tmp_path / "h")
    assert code == 1 and "--max-member-bytes 'a lot'" in one_error_line(out)


# ---------------------------------------------------------------- broken files

def test_truncated_tarball_says_so(tmp_path):
    whole = tmp_path / "whole.tar.gz"
    tar_with(whole, {f"artworks/{i}.json": json.dumps({"id": i, "title": "x" * 3000}).encode() for i in range(40)})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, out = run("crawl", "aic", "--dump", cut, "--metadata-only", "--home", tmp_path / "h")
    line = one_error_line(out)
    assert code == 1 and str(cut) in line and "truncated or damaged archive" in line
    assert not (tmp_path / "h" / "harvest").exists()


def test_cleveland_csv_with_an_unterminated_quote_names_the_line(tmp_path):
    with Mirror() as m:
        docs = [cma_artwork(m, o) for o in m.met.ids[:5]]
    p = tmp_path / "data.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "share_license_status", "image_web"])
        for d in docs[:3]:
            w.writerow([d["id"], d["title"], "CC0", "http://127.0.0.1:9/x.jpg"])
        fh.write(f'{docs[3]["id"]},"A title that never ends,CC0,http://127.0.0.1:9/y.jpg\n')
        w.writerow([docs[4]["id"], "after", "CC0", "http://127.0.0.1:9/z.jpg"])
    code, out = run("crawl", "cleveland", "--dump", p, "--metadata-only", "--home", tmp_path / "h")
    line = one_error_line(out)
    assert code == 1 and "starting on line 5" in line and "unterminated quote" in line
    assert "matched no records" not in out


def test_cleveland_data_json_nested_too_deep_and_over_the_cap(tmp_path):
    p = tmp_path / "data.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    code, out = run("crawl", "cleveland", "--dump", p, "--home", tmp_path / "h")
    assert code == 1 and "nested too deeply" in one_error_line(out)
    code, out = run("crawl", "cleveland", "--dump", p, "--max-member-bytes", "1000", "--home", tmp_path / "h")
    assert code == 1 and "data.json: larger than the 1000 bytes limit" in one_error_line(out)


# ---------------------------------------------------------------- malformed records: failed, named, the rest goes on

def test_aic_dump_with_malformed_records(tmp_path):
    with Mirror() as m:
        docs = [artwork(m, o) for o in m.met.ids[:40]]
    docs = [dict(d, is_public_domain=True) for d in docs]
    good = [str(d["id"]) for d in docs]
    lines = [json.dumps(d) for d in docs]
    lines[3] = json.dumps(dict(docs[3], artist_display=5, artist_title=None))    # a number: coerced
    lines[5] = json.dumps(dict(docs[5], title={"en": "x"}))                     # an object: failed, named
    lines[7] = json.dumps(dict(docs[7], date_start=10**12))                     # off the int32 column: dropped
    lines += [json.dumps(dict(docs[0], id="abc")), "not json at all", "[" * 100_000 + "]" * 100_000,
              json.dumps({"title": "no id"}), json.dumps({"id": 9, "api_model": "agents"})]
    dump = tmp_path / "artworks.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    home = Home(tmp_path / "h")
    code, out = run("crawl", "aic", "--dump", dump, "--metadata-only", "--home", home.root)
    assert code == 0, out
    recs = records(home, "aic")
    assert recs[good[3]]["status"] == "pending" and recs[good[3]]["artist"] == "5"
    assert recs[good[7]]["status"] == "pending" and recs[good[7]]["date_begin"] is None
    assert recs[good[5]]["status"] == "failed" and "title" in recs[good[5]]["error"]
    assert recs["abc"]["status"] == "failed" and "artwork id 'abc' is not a number" in recs["abc"]["error"]
    assert "malformed JSON" in recs["artworks.jsonl:42"]["error"] and f"{dump}:42" in recs["artworks.jsonl:42"]["error"]
    assert "nested too deeply" in recs["artworks.jsonl:43"]["error"]
    assert "no id" in recs["artworks.jsonl:44"]["error"]
    assert "9" not in recs                                      # an agent of the same dump: not an artwork
    assert sum(r["status"] == "pending" for r in recs.values()) == 39


def test_aic_dump_tarball_skips_other_kinds_of_record(tmp_path):
    dump = tmp_path / "artic-api-data.tar.gz"
    tar_with(dump, {"artic-api-data/json/artworks/1.json": json.dumps({"id": 1, "is_public_domain": True}).encode(),
                    "artic-api-data/json/agents/1.json": json.dumps({"id": 1, "title": "an agent"}).encode(),
                    "artic-api-data/json/artworks/x.json": b"{broken"})
    d = aic_dump(str(dump))
    assert list(d.records) == ["1"] and "title" not in d.records["1"]
    assert list(d.bad) == ["artic-api-data/json/artworks/x.json"]


def test_cleveland_api_with_malformed_records(tmp_path):
    from artdata.mirror.cleveland import cma_route

    def hostile(m, path, query):
        resp = cma_route(m, path, query)
        if path.rstrip("/") != "/cma/api/artworks" or resp.status != 200:
            return resp
        body = json.loads(resp.body)
        data = body["data"]
        if data:
            data[0]["images"]["web"]["url"] = 5                 # a number where a URL is expected
            data[1]["id"] = "abc"
            data[2]["creators"] = [{"description": {"nested": True}}]
            data[3]["images"] = ["a list where an object is expected"]
        return json_response(body)

    with Mirror() as m:
        m.add_route("api", "/cma/api/artworks", hostile)
        home = Home(tmp_path / "h")
        code, out = run("crawl", "cleveland", "--api-base", m.base("api") + "/cma/api", "--limit", "12",
                        "--image-size", "64", *FAST, "--home", home.root)
        assert code == 0, out
        recs = records(home, "cleveland")
    assert len(recs) == 12
    failed = {k: r["error"] for k, r in recs.items() if r["status"] == "failed"}
    assert any("images.web.url: not an http(s) URL: '5'" in e for e in failed.values()), failed
    assert "abc" in failed and "artwork id 'abc' is not a number" in failed["abc"]
    assert any("images: expected an object" in e for e in failed.values()), failed
    assert sum(r["status"] == "ok" for r in recs.values()) >= 8


def test_nga_row_with_an_empty_iiifurl(tmp_path):
    with Mirror() as m:
        tables = m.nga_tables()
        images = pd.read_csv(io.BytesIO(tables["published_images"]), dtype=str, keep_default_na=False)
        objects = pd.read_csv(io.BytesIO(tables["objects"]), dtype=str, keep_default_na=False)
        primary = images[(images.viewtype == "primary") & (images.maxpixels == "")]
        victim = min(set(primary.depictstmsobjectid) & set(objects.objectid), key=int)   # the first selected
        images.loc[images.depictstmsobjectid == victim, "iiifurl"] = ""
        data = tmp_path / "nga"
        data.mkdir()
        images.to_csv(data / "published_images.csv", index=False)
        objects.to_csv(data / "objects.csv", index=False)
        home = Home(tmp_path / "h")
        code, out = run("crawl", "nga", data, "--limit", "6", "--image-size", "64", *FAST, "--allow-private-hosts",
                        "--home", home.root)            # the tables name the mirror: a loopback address
        assert code == 0, out
        recs = records(home, "nga")
    assert recs[victim]["status"] == "failed" and "empty iiifurl" in recs[victim]["error"]
    assert sum(r["status"] == "ok" for r in recs.values()) == 5


def test_iiif_collection_with_malformed_members_and_manifests(tmp_path):
    def hostile(m, path, query):
        api = m.base("api")
        if path == "/hostile/collection.json":
            good = [{"id": f"{api}/iiif/3/manifest/{o}.json", "type": "Manifest"} for o in pd_ids[:4]]
            return json_response({"type": "Collection", "id": f"{api}{path}", "items": good + [
                {"id": f"{api}/hostile/items.json", "type": "Manifest"},
                {"id": f"{api}/hostile/deep.json", "type": "Manifest"},
                {"id": 5, "type": "Manifest"}, "x"]})
        if path == "/hostile/items.json":
            return json_response({"type": "Manifest", "id": f"{api}{path}", "label": "x", "items": ["x", 5]})
        if path == "/hostile/deep.json":
            return Response(200, b"[" * 100_000 + b"]" * 100_000, "application/json")
        return Response(404, b"nope", "text/plain")

    with Mirror() as m:
        pd_ids = [o for o, r in m.met.rows.items() if r.get("Is Public Domain")]
        m.add_route("api", "/hostile/", hostile)
        home = Home(tmp_path / "h")
        code, out = run("crawl", "iiif", m.base("api") + "/hostile/collection.json", "--image-size", "64", *FAST,
                        "--home", home.root)
        assert code == 0, out
        recs = records(home, "iiif")
        api = m.base("api")
    assert sum(r["status"] == "ok" for r in recs.values()) == 4
    assert recs[f"{api}/hostile/items.json"]["status"] == "failed"
    assert "items[0]: expected an object" in recs[f"{api}/hostile/items.json"]["error"]
    assert "nested too deeply" in recs[f"{api}/hostile/deep.json"]["error"]
    bad_members = [r for k, r in recs.items() if "#member=" in k]
    assert len(bad_members) == 2 and all("no http(s) id" in r["error"] for r in bad_members)


def test_a_redirect_loop_on_one_image_fails_that_record_only(tmp_path):
    """Needs the runner's and client's side too (a redirect loop is a FetchError naming the URL)."""
    from artdata.mirror.cleveland import cma_image_route

    def looping(m, path, query):
        if path == f"/cma/images/{victim}/web.jpg" or path == f"/cma/images/{victim}/print.jpg" or \
                path == f"/cma/images/{victim}/full.jpg":
            return Response(302, b"", "text/plain", {"Location": path})
        return cma_image_route(m, path, query)

    with Mirror() as m:
        victim = next(o for o in m.met.ids if m.met.rows[o].get("Is Public Domain"))
        m.add_route("media", "/cma/images/", looping)
        home = Home(tmp_path / "h")
        code, out = run("crawl", "cleveland", "--api-base", m.base("api") + "/cma/api", "--limit", "5",
                        "--image-size", "64", *FAST, "--home", home.root)
        assert code == 0, out
        recs = records(home, "cleveland")
    assert recs[victim]["status"] == "failed" and "redirect" in recs[victim]["error"].lower()
    assert sum(r["status"] == "ok" for r in recs.values()) == 4


def test_cleveland_dump_with_malformed_records(tmp_path):
    with Mirror() as m:
        docs = [cma_artwork(m, o) for o in m.met.ids[:80]]
    docs = [d for d in docs if d["images"] and d["share_license_status"] == "CC0"][:10]
    docs[0] = dict(docs[0], id="abc")
    docs[1] = dict(docs[1], images={"web": {"url": 5}})
    docs[2] = dict(docs[2], title=["a", "list"])                # coerced: "a; list"
    p = tmp_path / "data.json"
    p.write_text(json.dumps({"data": docs + ["not an object"]}))
    d = cma_dump(str(p))
    assert set(d.bad) == {"abc", "[10]"} and "not an artwork record" in d.bad["[10]"]
    home = Home(tmp_path / "h")
    code, out = run("crawl", "cleveland", "--dump", p, "--metadata-only", "--home", home.root)
    assert code == 0, out
    recs = records(home, "cleveland")
    assert recs["abc"]["status"] == "failed" and recs["[10]"]["status"] == "failed"
    assert recs[str(docs[1]["id"])]["status"] == "failed"
    assert "images.web.url" in recs[str(docs[1]["id"])]["error"]
    assert recs[str(docs[2]["id"])]["title"] == "a; list"
    assert sum(r["status"] == "pending" for r in recs.values()) == 8
