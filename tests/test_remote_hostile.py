"""A hostile remote, for real (issue #19): `manifests pull` from a hand-made store on this machine (a folder, and
loopback HTTP servers started here) whose index.json and card.json steer paths, whose host ignores Range and
sends more than the card says, trickles or stays silent, and whose JSON is malformed; pull --with-images that
fetches nothing; `report --out` into the manifests tree; a symlink out of the image store and the trainer."""
import json
import logging
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from artdata.datasets import remote
from artdata.cli import app
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import list_manifests
from artdata.paths import Home

from conftest import jpeg_bytes
from test_train import make_split


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _error_line(r) -> str:
    """The CLI's one error line (exit 1, no traceback)."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, r.output
    return errors[0]


def _tree(root: Path) -> dict:
    """Every path under `root` with its size (folders as -1): what was written anywhere in the test's folder."""
    return {str(p.relative_to(root)): (-1 if p.is_dir() else p.stat().st_size) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A home with a split manifest (generated JPEGs in its store) pushed with its images to a folder."""
    base = tmp_path_factory.mktemp("published")
    home = Home(base / "origin")
    m = make_split(home, n_per_class=4, name="gen")
    remote.push(home, "gen", str(base / "pub"), with_images=True)
    return home, m, base / "pub"


@pytest.fixture
def pub(published, tmp_path):
    """A fresh copy of the published folder, deep inside tmp_path (so that '../' paths stay inside it too)."""
    import shutil
    home, m, src = published
    dest = tmp_path / "r1" / "r2" / "pub"
    shutil.copytree(src, dest)
    return m, dest


def _edit_json(path: Path, edit):
    doc = json.loads(path.read_text())
    out = edit(doc)
    path.write_text(out if isinstance(out, str) else json.dumps(doc if out is None else out))


def _plant_version(pub: Path, m, rel: str, version=None) -> None:
    """The version's real files also where `rel` (relative to the store) points, their card naming `version`,
    so that a pull that follows `rel` finds what it needs there."""
    import shutil
    target = Path(os.path.normpath(pub / rel))
    assert target.is_relative_to(pub.parents[2]), target          # the test's own folder
    shutil.copytree(pub / "gen" / m.version, target, dirs_exist_ok=True)
    if version is not None:
        _edit_json(target / "card.json", lambda c: c.update(version=version))


# ---------------------------------------------------------------- paths from the remote

BAD_VERSIONS = ["../../../../victim", "zz/../../victim/0123456789ab", "/tmp/victim", "0123456789AB", "0123456789a",
                "0123456789ab/", "", 1234, None, ["x"]]


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=[repr(v) for v in BAD_VERSIONS])
def test_a_version_id_not_of_artdata_form_is_refused_and_nothing_is_written(pub, tmp_path, version):
    m, dest = pub
    if isinstance(version, str) and version and not version.startswith("/"):
        _plant_version(dest, m, f"gen/{version}", version)
    _edit_json(dest / "index.json", lambda index: index["versions"][0].update(version=version, path=f"gen/{version}"))
    home = tmp_path / "h1" / "h2" / "home"
    before = _tree(tmp_path)
    r = _invoke("manifests", "pull", f"{dest}/gen", "--home", home)
    line = _error_line(r)
    assert f"{dest}/index.json: versions[0].version: {version!r} is not a version id (12 hex digits)" in line, line
    assert _tree(tmp_path) == before                   # nothing anywhere: no home, no victim, no hidden folder
    assert not home.exists()


@pytest.mark.parametrize("field,value,says", [
    ("name", "../../../../victim", "versions[0].name: '../../../../victim' is not a manifest name"),
    ("name", "Gen", "versions[0].name: 'Gen' is not a manifest name"),
    ("name", "a/b", "versions[0].name: 'a/b' is not a manifest name"),
    ("path", "../../../victim", "versions[0].path: '../../../victim', not gen/"),
    ("path", "/etc", "versions[0].path: '/etc', not gen/"),
    ("rows", "12", "versions[0].rows: '12' is not a count"),
    ("images", "yes", "versions[0].images: 'yes' is not true or false"),
])
def test_other_index_values_are_checked_before_any_path(pub, tmp_path, field, value, says):
    m, dest = pub
    if field == "path":
        _plant_version(dest, m, value.lstrip("/"))
    _edit_json(dest / "index.json", lambda index: index["versions"][0].update({field: value}))
    home = tmp_path / "h1" / "h2" / "home"
    before = _tree(tmp_path)
    source = f"{dest}/gen" if field != "name" else str(dest)
    line = _error_line(_invoke("manifests", "pull", source, "--home", home))
    assert f"{dest}/index.json: {says}" in line, line
    assert _tree(tmp_path) == before


BAD_FILES = [
    ({"path": "../../../../victim/x.parquet"}, "files[0].path", "is not a file name artdata writes"),
    ({"path": "data/../../../victim.parquet"}, "files[0].path", "is not a file name artdata writes"),
    ({"path": "/tmp/victim.parquet"}, "files[0].path", "is not a file name artdata writes"),
    ({"path": "card.json"}, "files[0].path", "is not a file name artdata writes"),
    ({"path": "data\\..\\x.parquet"}, "files[0].path", "is not a file name artdata writes"),
    ({"bytes": -1}, "files[0].bytes", "is not a size in bytes"),
    ({"bytes": "467"}, "files[0].bytes", "is not a size in bytes"),
    ({"bytes": True}, "files[0].bytes", "is not a size in bytes"),
    ({"bytes": 4.5}, "files[0].bytes", "is not a size in bytes"),
    ({"sha256": "abc"}, "files[0].sha256", "is not a sha256 (64 hex digits)"),
    ({"sha256": "G" * 64}, "files[0].sha256", "is not a sha256 (64 hex digits)"),
]


@pytest.mark.parametrize("change,key,says", BAD_FILES, ids=[f"{k}={v!r}" for c, k, s in BAD_FILES
                                                             for v in c.values()])
def test_file_entries_of_a_card_are_checked_before_any_path(pub, tmp_path, change, key, says):
    m, dest = pub
    card_path = dest / "gen" / m.version / "card.json"
    _edit_json(card_path, lambda card: card["files"][0].update(change))
    if "path" in change:               # what the old pull would have written, put where it would have read it
        target = Path(os.path.normpath(dest / "gen" / m.version / change["path"]))
        if target.parent.is_relative_to(tmp_path) and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"attacker's bytes")
    home = tmp_path / "h1" / "h2" / "home"
    before = _tree(tmp_path)
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", home))
    assert f"{dest}/gen/{m.version}/card.json: key '{key}': " in line and says in line, line
    assert _tree(tmp_path) == before


def test_a_file_listed_twice_and_a_card_of_another_version_are_refused(pub, tmp_path):
    m, dest = pub
    card_path = dest / "gen" / m.version / "card.json"
    original = card_path.read_text()
    _edit_json(card_path, lambda card: card["files"].append(dict(card["files"][0])))
    home = tmp_path / "home"
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", home))
    assert "key 'files[" in line and "is listed twice" in line
    card_path.write_text(original)
    _edit_json(card_path, lambda card: card.update(version="0" * 12))
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", home))
    assert f"card.json: key 'version': '000000000000', where index.json says '{m.version}'" in line
    assert not home.exists()


def test_a_refused_pull_after_downloads_leaves_nothing(pub, tmp_path):
    """Files that come with their card's sizes and checksums but whose records are not the version's: the hidden
    folder, and the folders made for it, are removed."""
    m, dest = pub
    vdir = dest / "gen" / m.version
    card = json.loads((vdir / "card.json").read_text())
    data = next(f for f in card["files"] if f["path"].startswith("data/train"))
    # the test split's file as the train split's: a valid Parquet file, its checksum put in the card
    other = next(f for f in card["files"] if f["path"].startswith("data/test"))
    (vdir / data["path"]).write_bytes((vdir / other["path"]).read_bytes())
    data.update(sha256=other["sha256"], bytes=other["bytes"])
    (vdir / "card.json").write_text(json.dumps(card))
    home = tmp_path / "home"
    before = _tree(tmp_path)
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", home))
    assert f"{dest}/gen/{m.version}: its records do not hash to the version id {m.version}; not pulled" in line
    assert _tree(tmp_path) == before and not home.exists()


# ---------------------------------------------------------------- malformed JSON

DEEP = "[" * 100_000 + "]" * 100_000

MALFORMED = [
    ("index.json", lambda s: "{not json", "index.json: not JSON (Expecting property name"),
    ("index.json", lambda s: b"\x80\x81{}", "index.json: not JSON (not UTF-8 text)"),
    ("index.json", lambda s: DEEP, "index.json: JSON nested too deeply"),
    ("index.json", lambda s: "[]", "index.json: a JSON list, not the object"),
    ("index.json", lambda s: "{}", "index.json: key 'versions': missing, not a list"),
    ("index.json", lambda s: '{"versions": {"a": 1}}', "index.json: key 'versions': {'a': 1}, not a list"),
    ("index.json", lambda s: '{"versions": [7]}', "index.json: versions[0]: 7, not an object"),
    ("index.json", lambda s: '{"versions": [{"name": "gen"}]}', "index.json: versions[0].version: None is not"),
    ("card.json", lambda s: "", "card.json: not JSON (Expecting value"),
    ("card.json", lambda s: DEEP, "card.json: JSON nested too deeply"),
    ("card.json", lambda s: '"a card"', "card.json: a JSON str, not a manifest card"),
    ("card.json", lambda s: _card_without(s, "files"), "card.json: key 'files': None is not a list of files"),
    ("card.json", lambda s: _card_without(s, "content_hash"), "card.json: key 'content_hash': None is not a sha256"),
    ("card.json", lambda s: _card_with(s, counts=[1]), "card.json: key 'counts': [1] has no row count"),
    ("card.json", lambda s: _card_with(s, files=[]), "card.json: key 'files': [] is not a list of files"),
    ("card.json", lambda s: _card_with(s, lineage={"image": {"size": "big"}}),
     "card.json: key 'lineage.image': {'size': 'big'} is not image settings"),
    ("card.json", lambda s: _card_with(s, description={"x": 1}),
     "card.json: key 'description': {'x': 1} is not a str"),
]


def _card_without(text, key):
    card = json.loads(text)
    del card[key]
    return json.dumps(card)


def _card_with(text, **kw):
    card = json.loads(text)
    card.update(kw)
    return json.dumps(card)


@pytest.mark.parametrize("which,make,says", MALFORMED, ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(MALFORMED)])
def test_a_malformed_index_or_card_is_one_line_naming_file_and_key(pub, tmp_path, which, make, says):
    m, dest = pub
    path = dest / "index.json" if which == "index.json" else dest / "gen" / m.version / "card.json"
    new = make(path.read_text())
    path.write_bytes(new if isinstance(new, bytes) else new.encode())
    home = tmp_path / "home"
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", home))
    assert says in line, line
    assert str(path.relative_to(dest)) in line.replace(str(dest) + "/", "")
    assert not home.exists()
    if which == "index.json":          # `list SOURCE` reads the same index the same way
        assert says in _error_line(_invoke("manifests", "list", dest))


def test_a_json_document_over_the_cap_is_not_read(pub, tmp_path, monkeypatch):
    m, dest = pub
    monkeypatch.setattr(remote, "MAX_JSON_BYTES", 100)
    line = _error_line(_invoke("manifests", "pull", f"{dest}/gen", "--home", tmp_path / "home"))
    assert f"{dest}/index.json: " in line and "over the 100 bytes a remote's JSON may have" in line


# ---------------------------------------------------------------- hostile hosts

class HostileHost:
    """An HTTP/1.0 server over a folder on 127.0.0.1 whose answers for paths ending in `target` misbehave:
    mode "bigger" ignores Range and sends `extra` bytes more than the file (declared in Content-Length, or not,
    with `declare`); "trickle" sends the headers, then one byte a second; "silent" reads the request and never
    answers. Every loop is bounded (at most `extra` bytes, 60 s); __exit__ releases the handlers still waiting."""

    def __init__(self, folder: Path, target: str | None = None, mode: str = "", extra: int = 0, declare=True,
                 location: str = ""):
        self.folder, self.target, self.mode, self.extra, self.declare = folder, target, mode, extra, declare
        self.location = location        # mode "redirect": where `target` is sent ({port}, {path} filled in)
        self.log, self.sent, self.stop, self.done = [], {}, threading.Event(), threading.Event()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                host.log.append((path, self.headers.get("Range")))
                file = host.folder / path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                if host.target and path.endswith(host.target) and host.mode:
                    try:
                        getattr(self, host.mode)(path, data)
                    finally:
                        host.done.set()
                    return
                start, end = 0, len(data)
                rng = self.headers.get("Range")
                if rng:
                    a, b = re.fullmatch(r"bytes=(\d*)-(\d*)", rng).groups()
                    start, end = int(a or 0), (int(b) + 1 if b else len(data))
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                self.wfile.write(data[start:end])

            def bigger(self, path, data):
                self.send_response(200)                          # Range or not: the whole thing, and more
                if host.declare:
                    self.send_header("Content-Length", str(len(data) + host.extra))
                self.end_headers()
                body = b"\0" * (len(data) + host.extra)               # another, bigger file
                n = 0
                try:
                    for i in range(0, len(body), 65536):
                        self.wfile.write(body[i:i + 65536])
                        n += len(body[i:i + 65536])
                except OSError:                                  # the client hung up: it stopped reading
                    pass
                host.sent[path] = host.sent.get(path, 0) + n

            def trickle(self, path, data):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                n = 0
                try:
                    for b in data[:60]:                      # one byte a second, for a minute at most
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        n += 1
                        if host.stop.wait(1.0):
                            break
                    else:
                        host.stop.wait(60)
                except OSError:
                    pass
                host.sent[path] = n

            def silent(self, path, data):
                host.stop.wait(60)

            def redirect(self, path, data):
                self.send_response(302)
                self.send_header("Location", host.location.format(port=self.server.server_address[1],
                                                                  path=path + ".moved"))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _data_file(m) -> dict:
    return next(f for f in m.card["files"] if f["path"].startswith("data/train"))


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
def test_a_host_that_ignores_range_and_sends_more_is_stopped_at_the_card_size(pub, tmp_path, declare):
    m, dest = pub
    data = _data_file(m)
    with HostileHost(dest, data["path"], "bigger", extra=48 << 20, declare=declare) as host:
        home = tmp_path / "home"
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
        line = _error_line(r)
        url = f"{host.url}/gen/{m.version}/{data['path']}"
        if declare:        # refused on its headers
            assert f"{url}: the remote file has {data['bytes'] + (48 << 20)} bytes where the card says " \
                   f"{data['bytes']}; not pulled" in line, line
        else:              # read up to the card's size, then the checksum says no
            assert f"{url}: its size or sha256 differs from the card's; not pulled" in line, line
        assert host.done.wait(30)
        asked = [p for p, _ in host.log if p.endswith(data["path"])]
        assert len(asked) == 1                               # once, not once per chunk or per retry
        assert host.sent[asked[0]] < 40 << 20                # the client hung up; it did not read the 48 MB
    assert not home.exists() and list_manifests(Home(home).manifests) == []


def _slow(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTDATA_PULL_TIMEOUT", "2")
    monkeypatch.setattr(remote, "WAIT_NOTE", 0)             # say what is waited for at each file's start


def test_a_trickling_host_fails_the_file_at_its_deadline_and_says_what_it_waited_for(pub, tmp_path, monkeypatch):
    m, dest = pub
    data = _data_file(m)
    assert data["bytes"] > 200
    _slow(tmp_path, monkeypatch)
    with HostileHost(dest, data["path"], "trickle") as host:
        home = tmp_path / "home"
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
        url = f"{host.url}/gen/{m.version}/{data['path']}"
        assert f"waiting for {data['path']} ({data['bytes']} bytes) from {url} (deadline 2 s)" in r.output
        line = _error_line(r)
        assert f"{url}: not complete within its deadline of 2 s (connect, headers and body" in line, line
        host.stop.set()
        assert host.done.wait(30)
        assert host.sent[f"/gen/{m.version}/{data['path']}"] < 60    # it hung up long before the trickle ended
    assert list_manifests(Home(home).manifests) == []


@pytest.mark.parametrize("target", ["index.json", "card.json", "data"])
def test_a_silent_host_fails_at_the_deadline(pub, tmp_path, monkeypatch, target):
    m, dest = pub
    data = _data_file(m)
    _slow(tmp_path, monkeypatch)
    name = data["path"] if target == "data" else target
    with HostileHost(dest, name, "silent") as host:
        home = tmp_path / "home"
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
        line = _error_line(r)
        if target == "index.json":
            assert f"{host.url}/gen: no complete answer within the deadline of 2 s (ARTDATA_PULL_TIMEOUT)" in line \
                or f"{host.url}/index.json: no complete answer within 2 s" in line, line
        elif target == "card.json":
            assert f"waiting for card.json from {host.url}/gen/{m.version}/card.json" in r.output
            assert f"{host.url}/gen/{m.version}/card.json: no complete answer within 2 s" in line, line
        else:
            assert f"waiting for {data['path']} ({data['bytes']} bytes) from {host.url}" in r.output
            assert f"{data['path']}: not complete within its deadline of 2 s" in line, line
    assert list_manifests(Home(home).manifests) == []


def test_a_cut_trickle_resumes_once_the_host_answers(pub, tmp_path, monkeypatch):
    """A stalled file keeps what came in the hidden folder; the next pull from a sane host completes it."""
    m, dest = pub
    data = _data_file(m)
    _slow(tmp_path, monkeypatch)
    home = tmp_path / "home"
    with HostileHost(dest, data["path"], "trickle") as host:
        _error_line(_invoke("manifests", "pull", f"{host.url}/gen", "--home", home))
    hidden = Home(home).manifests / "gen" / f".pull-{m.version}"
    assert hidden.is_dir() and list_manifests(Home(home).manifests) == []
    with HostileHost(dest) as host:
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
        assert r.exit_code == 0, r.output
    assert [x.ref for x in list_manifests(Home(home).manifests)] == [m.ref] and not hidden.exists()
    pulled = list_manifests(Home(home).manifests)[0]
    assert (pulled.path / data["path"]).read_bytes() == (m.path / data["path"]).read_bytes()


def test_an_image_over_the_cap_is_not_read_and_the_pull_exits_1(pub, tmp_path, monkeypatch):
    m, dest = pub
    monkeypatch.setattr(remote, "MAX_IMAGE_BYTES", 100)
    with HostileHost(dest) as host:
        home = tmp_path / "home"
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--with-images", "--home", home)
        line = _error_line(r)
        assert f"{m.rows} of {m.rows} image(s) of {m.ref} could not be fetched (first: " in line, line
        assert "bytes, over the 100 bytes an image may have" in line
    assert [x.ref for x in list_manifests(Home(home).manifests)] == [m.ref]       # the records are pulled
    assert not list(Path(home, "images").rglob("*.part")) and not list(Path(home, "images").rglob("*.jpg"))


# ---------------------------------------------------------------- --with-images that fetches nothing

@pytest.mark.parametrize("how", ["deleted from the store", "never pushed"])
def test_pull_with_images_that_fetches_none_exits_1(pub, tmp_path, how):
    import shutil
    m, dest = pub
    shutil.rmtree(dest / "images")
    if how == "never pushed":
        _edit_json(dest / "index.json", lambda index: index["versions"][0].update(images=False))
    home = tmp_path / "home"
    r = _invoke("manifests", "pull", f"{dest}/gen", "--with-images", "--home", home)
    line = _error_line(r)
    assert f"Error: {m.rows} of {m.rows} image(s) of {m.ref} could not be fetched (first: " in line, line
    assert ("not in the store (" if how == "deleted from the store" else "not in the store, and not fetched") \
        in line and line.endswith("the records are pulled, the images are not")
    assert [x.ref for x in list_manifests(Home(home).manifests)] == [m.ref]
    # all there: exit 0
    r = _invoke("manifests", "pull", f"{dest}/gen", "--home", home)
    assert r.exit_code == 0 and "already here" in r.output


# ---------------------------------------------------------------- report --out, the trainer's reads

def test_report_out_inside_the_manifests_tree_is_refused(tmp_path):
    home = Home(tmp_path / "home")
    m = make_split(home, n_per_class=2, name="gen")
    (tmp_path / "link").symlink_to(home.manifests)
    before = _tree(home.root)
    for out in (m.path / "report", home.manifests, home.manifests / "new", tmp_path / "link" / "gen" / "x"):
        line = _error_line(_invoke("report", "gen", "--out", out, "--home", home.root))
        assert line == (f"Error: --out {out}: inside the manifests folder {home.manifests}; versions there are "
                        f"immutable, write the report to another folder")
    assert _tree(home.root) == before
    r = _invoke("report", "gen", "--out", tmp_path / "elsewhere", "--home", home.root)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "elsewhere" / "index.html").is_file()


def test_the_trainer_does_not_follow_a_symlink_out_of_the_image_store(tmp_path, caplog):
    from train.data import ManifestImages, load_splits
    home = Home(tmp_path / "home")
    m = make_split(home, n_per_class=4, name="gen")
    store = ImageStore(home.images)
    splits, classes, _, _ = load_splits(m)
    keys = splits["train"].keys
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg_bytes(64, 64))            # a readable, decodable image: only the check stops it
    store.path(keys[0]).unlink()
    store.path(keys[0]).symlink_to(outside)
    inside = store.path(keys[1]).with_name("elsewhere-in-the-store.jpg")
    store.path(keys[1]).rename(inside)
    store.path(keys[1]).symlink_to(inside)             # a link that stays in the store is read
    ds = ManifestImages(keys, splits["train"].targets, store, 32)
    with caplog.at_level(logging.WARNING, logger="artdata.train"):
        assert ds[0] is None
    assert f"skipping image {keys[0]}: {store.path(keys[0])} leads outside the image store {store.root} " \
           f"(to {outside}); not read" in caplog.text
    assert ds[1] is not None and ds[2] is not None


def test_no_reader_of_the_image_store_follows_a_link_out_of_it(tmp_path):
    """A stored image replaced by a link to a file outside the store (a key file, say): the report's thumbnails,
    verify, export and push --with-images refuse it with a line naming both paths, and its bytes reach nothing."""
    from artdata.reports.page import thumbnail
    home = Home(tmp_path / "home")
    m = make_split(home, n_per_class=4, name="gen")
    store = ImageStore(home.images)
    key = m.table(["image_key"]).column("image_key").to_pylist()[0]
    secret = tmp_path / "id_ed25519.jpg"
    secret.write_bytes(jpeg_bytes(64, 64) + b"PRIVATE-KEY-MATERIAL")   # decodable, so only the check stops it
    store.path(key).unlink()
    store.path(key).symlink_to(secret)
    said = f"{store.path(key)} leads outside the image store {store.root} (to {secret}); not read"
    with pytest.raises(OSError, match="leads outside the image store"):
        store.get(key)
    assert thumbnail(store, key) is None
    assert store.check(key) == said
    out = tmp_path / "exported"
    line = _error_line(_invoke("manifests", "export", "gen", out, "--format", "imagefolder", "--home", home.root))
    assert said in line, line
    dest = tmp_path / "pushed"
    line = _error_line(_invoke("manifests", "push", "gen", dest, "--with-images", "--home", home.root))
    assert line == f"Error: push: {said}", line
    for root in (out, dest):
        for f in (root.rglob("*") if root.exists() else ()):
            assert not f.is_file() or b"PRIVATE-KEY-MATERIAL" not in f.read_bytes(), f


@pytest.mark.parametrize("to", ["http://127.0.0.2:{port}{path}", "http://[::ffff:169.254.169.254]:{port}{path}",
                                "http://localhost:{port}{path}", "http://127.0.0.1:{port}{path}"],
                         ids=["loopback-literal", "metadata-mapped", "name-to-loopback", "own-host"])
def test_a_pull_source_cannot_redirect_to_a_private_address(pub, tmp_path, to, connect_guard):
    """The pull source is the host the user named; where it redirects is content: a loopback, private or
    link-local address there is refused before any connection (the store's own host stays allowed)."""
    m, dest = pub
    target = _data_file(m)["path"]
    moved = dest / "gen" / m.version / (target + ".moved")
    moved.write_bytes((dest / "gen" / m.version / target).read_bytes())      # where the own-host hop leads
    connect_guard.forbidden.update({"127.0.0.2", "169.254.169.254", "::ffff:169.254.169.254"})
    home = tmp_path / "home"
    with HostileHost(dest, target=target, mode="redirect", location=to) as host:
        r = _invoke("manifests", "pull", f"{host.url}/gen", "--home", home)
    if "127.0.0.1" in to:
        assert r.exit_code == 0, r.output
        assert [x.ref for x in list_manifests(Home(home).manifests)] == [m.ref]
        return
    line = _error_line(r)
    assert "refused" in line and "is a loopback, private or link-local address, which the store 127.0.0.1 " \
           "may not redirect to" in line, line
    assert not any(a.startswith(("127.0.0.2", "169.254", "::ffff:169")) for a in connect_guard.attempts)
    assert list_manifests(Home(home).manifests) == []
