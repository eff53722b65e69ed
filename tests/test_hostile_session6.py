"""Today's additions attacked as a hostile museum, server or shared home would, for real (loopback servers, real
files): Met additionalImages steering requests inside the network, a malformed id or an NGA objectid that reads as
a view's id, a forged journal line's list of views, an id listed twice; `manifests pull` redirected to loopback in
other spellings, or to a name resolving to a public and a private address; a FIFO, a huge file, a link loop or a
linked shard in the image store; a forged, endless, linked or FIFO fingerprints file beside it."""
import json
import os
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.datasets.fingerprint import StoreFingerprints
from artdata.datasets.images import MAX_STORED_BYTES, ImageStore
from artdata.datasets.manifest import list_manifests, load
from artdata.datasets.records import VIEW_SEP, object_of, view_id
from artdata.harvest import harvest
from artdata.mirror import Mirror
from artdata.mirror.nga import NGA_COLUMNS
from artdata.mirror.sample import MetData
from artdata.paths import Home
from artdata.sources.nga import NgaSource

from conftest import jpeg_bytes
from test_remote_hostile import HostileHost, _data_file, _error_line, _invoke, pub, published  # noqa: F401 (fixtures)
from test_train import make_split
from test_views import _met, _nga_cfg, _object_requests, _with_views, _write_csv

def _trap(host="127.0.0.2"):
    """An HTTP server on `host` that records every request (none may reach it)."""
    hits = []

    class Trap(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
    server = ThreadingHTTPServer((host, 0), Trap)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


# ---------------------------------------------------------------- crawl met --all-images

def test_additional_images_inside_the_network_are_refused_before_any_connection(home, connect_guard):
    """The api host the user named (127.0.0.1) is trusted; an additionalImages entry naming another loopback,
    private or link-local address, in any spelling, or a name resolving to one, is its view's refusal."""
    trap, hits = _trap()
    port = trap.server_address[1]
    steer = [f"http://127.0.0.2:{port}/a.jpg", "http://169.254.169.254/latest/meta-data/x.jpg",
             f"http://[::1]:{port}/a.jpg", f"http://[::ffff:127.0.0.2]:{port}/a.jpg", f"http://localhost:{port}/a.jpg",
             f"http://0x7f.2:{port}/a.jpg", f"http://2130706434:{port}/a.jpg", "http://10.0.0.1/a.jpg",
             f"http://127.0.0.2.:{port}/a.jpg"]
    connect_guard.forbidden.update({"127.0.0.2", "169.254.169.254", "::1", "::ffff:127.0.0.2", "10.0.0.1"})
    try:
        with Mirror() as m:
            listed = m.met.ids[:10]
            a = next(o for o in listed if m.met.rows[o].get("Is Public Domain"))
            real = m.met.object

            def answer(oid, media_base, faults):
                obj = real(oid, media_base, faults)
                if oid == a:
                    obj["additionalImages"] = steer
                return obj
            m.met.object = answer
            by = {r["source_id"]: r for r in _met(m, home, limit=10).manifest.table().to_pylist()}
    finally:
        trap.shutdown()
        trap.server_close()
    assert by[a]["status"] == "ok"
    for k, url in enumerate(steer, 1):
        v = by[view_id(a, k)]
        assert v["status"] == "failed" and "refused" in v["error"] and "loopback, private or link-local" in \
            v["error"], (url, v["error"])
    assert hits == []
    assert not [x for x in connect_guard.attempts if x.startswith(("127.0.0.2", "169.254", "::1", "::ffff", "10."))]


def test_a_malformed_id_that_reads_as_a_view_does_not_take_the_views_place(home, tmp_path):
    """--ids-from lists object A and, on another row, "A#view=1" (no number): the failed record of that row must
    not share its id with A's first view, which keeps its image; the failure is in the manifest, naming the row."""
    with Mirror() as m:
        a = _with_views(m, m.met.ids[:60])[0]
        table = tmp_path / "ids.csv"
        table.write_text(f"Object ID\n{a}#view=1\n{a}\n")
        res = _met(m, home, limit=None, ids_from=str(table))
        rows = res.manifest.table().to_pylist()
    ids = [r["source_id"] for r in rows]
    assert len(ids) == len(set(ids))
    by = {r["source_id"]: r for r in rows}
    assert {view_id(a, k) for k in range(1, MetData.views(a) + 1)} <= set(by)
    assert all(by[view_id(a, k)]["status"] == "ok" for k in range(1, MetData.views(a) + 1))
    bad = [r for r in rows if r["status"] == "failed"]
    assert len(bad) == 1 and VIEW_SEP not in bad[0]["source_id"] and f"--ids-from {table} row 1" in bad[0]["error"]


def test_an_id_listed_twice_is_one_record(home, tmp_path):
    with Mirror() as m:
        a = _with_views(m, m.met.ids[:60])[0]
        listing = tmp_path / "ids.txt"
        listing.write_text(f"{a}\n{a}\n")
        res = _met(m, home, limit=None, ids_from=str(listing))
        ids = [r["source_id"] for r in res.manifest.table().to_pylist()]
        assert _object_requests(m)[a] == 1
    assert ids == [a, *(view_id(a, k) for k in range(1, MetData.views(a) + 1))]


@pytest.mark.parametrize("forged", ["5", "[[1]]", "'abc'", "{'x': 1}", "[b1]", "[a1, a1, a1]", "[a1, b]",
                                    "[str(i) for i in range(10**6)]", "[f'{a}#view={i}' for i in range(1, 10**6)]"],
                         ids=["number", "unhashable", "text", "object", "another-objects-view", "repeated", "an-object",
                              "a-million-ids", "a-million-views"])
def test_a_forged_list_of_views_in_the_journal_redoes_its_object(home, forged):
    """A journal line of object A whose `_views` is not a list a run writes (distinct view ids of A): the resumed
    run does not crash, does A again, and the manifest holds every record once."""
    with Mirror() as m:
        listed = m.met.ids[:30]
        res = _met(m, home, limit=30)
        want = sorted(r["source_id"] for r in res.manifest.table().to_pylist())
        a, b = _with_views(m, listed)[:2]
        journal = res.job_dir / "journal.jsonl"
        lines = []
        for line in journal.read_text().splitlines():
            d = json.loads(line)
            if d["source_id"] == a:
                d["_views"] = eval(forged, {"a": a, "b": b, "a1": view_id(a, 1), "b1": view_id(b, 1)})
            lines.append(json.dumps(d))
        journal.write_text("\n".join(lines) + "\n")
        asked = _object_requests(m)
        again = _met(m, home, limit=30)
        ids = [r["source_id"] for r in again.manifest.table().to_pylist()]
        assert _object_requests(m) - asked == Counter({a: 1})
    assert ids == want


# ---------------------------------------------------------------- crawl nga --all-views

def test_nga_hostile_published_images(tmp_path):
    """An objectid that reads as a view's ("1#view=1") is a failed record of its own, not object 1's first view;
    sequences that are no number sort last without failing; thousands of alternates are MAX_VIEWS; an alternate
    of an object that is not listed, or of the malformed one, makes nothing; an alternate steering to the metadata
    address is that view's refusal."""
    folder = tmp_path / "nga"
    folder.mkdir()
    base = "http://127.0.0.1:9/iiif"
    img = {"width": "3000", "height": "2000"}
    objs = ("1", "2", "1#view=1")
    _write_csv(folder / "objects.csv", NGA_COLUMNS["objects"], [
        {"objectid": i, "title": f"Work {i}", "classification": "Painting", "isvirtual": "0"} for i in objs])
    rows = [{"uuid": f"p{i}", "iiifurl": f"{base}/p{i}", "viewtype": "primary", "sequence": "0",
             "depictstmsobjectid": i, **img} for i in objs]
    for n, seq in enumerate(["abc", "1e400", "nan", "", "2", "-1"]):
        rows.append({"uuid": f"a{n}", "iiifurl": f"{base}/a{n}", "viewtype": "alternate", "sequence": seq,
                     "depictstmsobjectid": "1", **img})
    rows += [{"uuid": f"t{n:05}", "iiifurl": f"{base}/t{n}", "viewtype": "Alternate", "sequence": str(3000 - n),
              "depictstmsobjectid": "2", **img} for n in range(3000)]
    rows += [{"uuid": "u", "iiifurl": f"{base}/u", "viewtype": "alternate", "sequence": "1",
              "depictstmsobjectid": "777", **img},
             {"uuid": "w", "iiifurl": f"{base}/w", "viewtype": "alternate", "sequence": "1",
              "depictstmsobjectid": "1#view=1", **img},
             {"uuid": "md", "iiifurl": "http://169.254.169.254/latest", "viewtype": "alternate", "sequence": "9",
              "depictstmsobjectid": "1", **img}]
    _write_csv(folder / "published_images.csv", NGA_COLUMNS["published_images"], rows)
    h = Home(tmp_path / "h")
    harvest(NgaSource(data=str(folder), image_size=512, all_views=True), _nga_cfg(metadata_only=True), h)
    got = load(h.manifests, "nga").table().to_pylist()
    ids = [r["source_id"] for r in got]
    assert len(ids) == len(set(ids))
    by = {r["source_id"]: r for r in got}
    uuids = [json.loads(by[view_id("1", k)]["extra"])["image"]["uuid"] for k in range(1, 8)]
    assert uuids == ["a5", "a4", "md", "a0", "a1", "a2", "a3"] and view_id("1", 8) not in by
    assert by["1"]["title"] == by[view_id("1", 1)]["title"] == "Work 1"
    bad = [r for r in got if r["status"] == "failed"]
    assert len(bad) == 1 and "objectid '1#view=1'" in bad[0]["error"] and VIEW_SEP not in bad[0]["source_id"]
    assert sum(object_of(s) == "2" for s in ids) == 1 + 100
    assert json.loads(by[view_id("2", 1)]["extra"])["image"]["uuid"] == "t02999"
    assert not [s for s in ids if object_of(s) == "777"]
    # fetched: the alternate on the metadata address is refused, as every other (the tables are a folder: no host
    # is the user's), before any connection
    h2 = Home(tmp_path / "h2")
    harvest(NgaSource(data=str(folder), image_size=512, all_views=True), _nga_cfg(), h2)
    by = {r["source_id"]: r for r in load(h2.manifests, "nga").table().to_pylist()}
    md = by[view_id("1", 3)]
    assert md["status"] == "failed" and "refused: 169.254.169.254 is a loopback, private or link-local" in md["error"]


# ---------------------------------------------------------------- manifests pull: redirects

@pytest.mark.parametrize("to", ["http://[::1]:{port}{path}", "http://[0:0:0:0:0:0:0:1]:{port}{path}",
                                "http://[::ffff:7f00:2]:{port}{path}", "http://2130706434:{port}{path}",
                                "http://0x7f.2:{port}{path}", "http://0x7f000002:{port}{path}",
                                "http://0177.0.0.2:{port}{path}", "http://127.2:{port}{path}",
                                "http://127.0.0.2.:{port}{path}", "//127.0.0.2:{port}{path}",
                                "http://127.0.0.1:{port}@127.0.0.2:{port}{path}", "HTTP://127.0.0.2:{port}{path}",
                                "http://0.0.0.0:{port}{path}"],
                         ids=["v6-loopback", "v6-long", "v4-mapped-hex", "decimal", "hex-short", "hex-full", "octal",
                              "short", "trailing-dot", "scheme-relative", "userinfo", "upper-scheme", "unspecified"])
def test_a_pull_source_cannot_redirect_to_loopback_in_another_spelling(pub, tmp_path, to, connect_guard):
    m, dest = pub
    connect_guard.forbidden.update({"127.0.0.2", "::1", "::ffff:127.0.0.2", "0.0.0.0"})
    home = tmp_path / "home"
    with HostileHost(dest, target=_data_file(m)["path"], mode="redirect", location=to) as host:
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
    line = _error_line(r)
    assert ("refused" in line and "loopback, private or link-local" in line) or "not a canonical IPv4" in line, line
    assert not any(a.startswith(("127.0.0.2", "::1", "::ffff", "0.0.0.0")) for a in connect_guard.attempts)
    assert not any(p.endswith(".moved") for p, _ in host.log)
    assert list_manifests(Home(home).manifests) == []


def test_a_pull_redirect_by_uri_header_or_relative_location(pub, tmp_path, connect_guard):
    """aiohttp follows a `URI` header as well as Location: checked the same; a relative Location stays on the
    store's host and is followed."""
    m, dest = pub
    target = _data_file(m)["path"]
    version = dest / "gen" / m.version
    (version / (target + ".moved")).write_bytes((version / target).read_bytes())
    connect_guard.forbidden.add("127.0.0.2")
    trap, hits = _trap()
    home = tmp_path / "home"
    try:
        with HostileHost(dest, target=target, mode="redirect", location="{path}") as host:       # relative
            r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
        assert r.exit_code == 0, r.output
        assert any(p.endswith(".moved") for p, _ in host.log)
        with HostileHost(dest, target=target, mode="uri") as host:
            def uri(self, path, data, port=trap.server_address[1]):
                self.send_response(302)
                self.send_header("URI", f"http://127.0.0.2:{port}{path}.moved")
                self.send_header("Content-Length", "0")
                self.end_headers()
            host.server.RequestHandlerClass.uri = uri
            r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", tmp_path / "home2")
        line = _error_line(r)
        assert "refused" in line and "127.0.0.2" in line, line
    finally:
        trap.shutdown()
        trap.server_close()
    assert hits == []


def test_a_pull_redirect_to_a_name_with_a_public_and_a_private_address(pub, tmp_path, connect_guard, monkeypatch):
    """A name that resolves to a public address and a private one is refused as a whole, before any connection
    (to either)."""
    m, dest = pub
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *a, **kw):
        if str(host).rstrip(".").lower() == "both.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return real(host, port, *a, **kw)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    connect_guard.forbidden.add("127.0.0.2")
    with HostileHost(dest, target=_data_file(m)["path"], mode="redirect",
                     location="http://both.example:{port}{path}") as host:
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", tmp_path / "home")
    line = _error_line(r)
    assert "refused" in line and "both.example (127.0.0.2)" in line, line
    assert not any(a.startswith(("127.0.0.2", "93.184")) for a in connect_guard.attempts)


# ---------------------------------------------------------------- the image store

def _unblock(path):
    """Open the FIFO `path` for writing and close it: a reader stuck in open() sees its end."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _within(fn, fifo=None, limit=120):
    """fn() run in a thread; fails the test (releasing a reader stuck on `fifo`) when it has not returned within
    `limit` s: a hang, not a speed."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:        # handed to the test
            out["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        while t.is_alive() and fifo is not None:
            _unblock(fifo)
            t.join(1)
        pytest.fail(f"{fn} did not return: it waits on {fifo}")
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_fifo_in_the_store_hangs_no_reader(tmp_path):
    home = Home(tmp_path / "home")
    m = make_split(home, n_per_class=4, name="gen")
    store = ImageStore(home.images)
    key = m.table(["image_key"]).column("image_key").to_pylist()[0]
    path = store.path(key)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(OSError, match="is not a regular file"):
        _within(lambda: store.get(key), path)
    from artdata.reports.page import thumbnail
    assert _within(lambda: thumbnail(store, key), path) is None
    r = _within(lambda: _invoke("manifests", "export", "gen", tmp_path / "out", "--format", "imagefolder",
                                "--home", home.root), path)
    assert f"{path} is not a regular file" in _error_line(r)
    r = _within(lambda: _invoke("manifests", "push", "gen", tmp_path / "pushed", "--with-images",
                                "--home", home.root), path)
    assert r.exit_code == 0 and "1 not in the local store" in r.output, r.output     # not sent: not a file
    assert not list((tmp_path / "pushed").rglob(f"{key}.jpg"))


def test_a_huge_file_in_the_store_is_not_read(tmp_path):
    store = ImageStore(tmp_path / "images")
    key = store.put(jpeg_bytes(32, 32))
    path = store.path(key)
    with open(path, "r+b") as fh:                   # sparse: no disk used, MAX_STORED_BYTES + 1 long
        fh.truncate(MAX_STORED_BYTES + 1)
    with pytest.raises(OSError, match=f"over the {MAX_STORED_BYTES:,}"):
        store.get(key)
    assert "over the" in store.check(key)


def test_a_link_loop_and_a_linked_shard_are_refused(tmp_path):
    store = ImageStore(tmp_path / "images")
    key = store.put(jpeg_bytes(32, 32))
    path = store.path(key)
    path.unlink()
    path.symlink_to(path)
    with pytest.raises(OSError):
        store.get(key)
    outside = tmp_path / "outside"
    shard = path.parent                     # images/ab/cd: a link to a folder out of the store holding the file
    (outside / shard.name).mkdir(parents=True)
    (outside / shard.name / path.name).write_bytes(b"secret")
    path.unlink()
    shard.rmdir()
    shard.parent.rmdir()
    shard.parent.symlink_to(outside)
    with pytest.raises(OSError, match="leads outside the image store"):
        store.get(key)


# ---------------------------------------------------------------- the store's fingerprints file

KEY = "ab" * 32


def test_the_fingerprints_file_is_never_written_through_a_link(tmp_path):
    root = tmp_path / "images"
    victim = tmp_path / "bashrc"
    victim.write_text("keep\n")
    fps = StoreFingerprints(root)
    fps.path.parent.mkdir(parents=True)
    fps.path.symlink_to(victim)
    fps.put(KEY, (1, 2))
    fps.close()
    assert victim.read_text() == "keep\n"
    assert StoreFingerprints(root).get(KEY) is None          # a link there is not read either
    # a .fingerprints folder that leads out of the store
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root2 = tmp_path / "images2"
    root2.mkdir()
    (root2 / ".fingerprints").symlink_to(elsewhere)
    fps = StoreFingerprints(root2)
    fps.put(KEY, (1, 2))
    fps.close()
    assert list(elsewhere.iterdir()) == []
    # a hard link: the other name's file is not appended to
    root3 = tmp_path / "images3"
    fps = StoreFingerprints(root3)
    fps.path.parent.mkdir(parents=True)
    os.link(victim, fps.path)
    fps.put(KEY, (1, 2))
    fps.close()
    assert victim.read_text() == "keep\n"


def test_an_endless_or_fifo_fingerprints_file_neither_hangs_nor_fills_memory(tmp_path):
    root = tmp_path / "images"
    fps = StoreFingerprints(root)
    fps.path.parent.mkdir(parents=True)
    os.mkfifo(fps.path)
    assert _within(lambda: fps.get(KEY), fps.path) is None
    fps.path.unlink()
    fps.path.symlink_to("/dev/zero")
    assert _within(lambda: StoreFingerprints(root).get(KEY)) is None
    fps.path.unlink()
    good = json.dumps({"k": KEY, "f": 5, "c": -7}) + "\n"
    with open(fps.path, "wb") as fh:          # one line of 64 MiB (no newline until its end), then a good one
        chunk = b"x" * 2**20
        for _ in range(64):
            fh.write(chunk)
        fh.write(b"\n" + good.encode())
    import tracemalloc
    tracemalloc.start()
    try:
        assert StoreFingerprints(root).get(KEY) == (5, -7)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak                # the long line was never held whole


def test_only_the_wanted_fingerprints_are_kept_and_writers_append_whole_lines(tmp_path):
    root = tmp_path / "images"
    keys = [f"{i:064x}" for i in range(2000)]
    a, b = StoreFingerprints(root), StoreFingerprints(root)
    for i, k in enumerate(keys):                 # two writers on the one file, interleaved
        (a if i % 2 else b).put(k, (i, -i))
    a.close()
    b.close()
    lines = StoreFingerprints(root).path.read_text().splitlines()
    assert len(lines) == 2000 and all(json.loads(x)["k"] in keys for x in lines)
    only = StoreFingerprints(root, wanted=keys[:3])
    assert only.get(keys[1]) == (1, -1) and only.get(keys[5]) is None
    assert len(only._known) == 3
