"""Sharing versions for real: `manifests push` / `pull` / `list SOURCE` against a local folder, a real
S3-compatible server (moto in server mode on 127.0.0.1) and a static HTTP host, with faults: a connection
cut mid-file, a tampered Parquet file, a missing index, wrong credentials."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.datasets.manifest import list_manifests, load
from artdata.paths import Home
from artdata.datasets import remote

from test_train import make_split


def _invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def origin(tmp_path):
    """A home with a split manifest whose images are in its store (generated JPEGs)."""
    home = Home(tmp_path / "origin")
    m = make_split(home, n_per_class=6, name="gen")
    return home, m


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- a static host with ranges and faults

class StaticHost:
    """A plain HTTP server over a folder (what a GitHub Pages site or a bucket's website endpoint is), with
    Range support, a request log, and an optional cut: the first GET of `cut_path` whose range starts at or after
    `cut_after` sends its headers and half its body, then drops the connection."""

    def __init__(self, folder: Path):
        self.folder, self.log, self.cut_path, self.cut_after, self.cut_done = folder, [], None, 0, False
        host = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                host.log.append((self.path, rng))
                path = Path(self.translate_path(self.path))
                if not path.is_file():
                    return super().do_GET()
                data = path.read_bytes()
                start, end = 0, len(data)
                if rng:
                    m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng)
                    start = int(m.group(1) or 0)
                    end = int(m.group(2)) + 1 if m.group(2) else len(data)
                body = data[start:end]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if host.cut_path and self.path.endswith(host.cut_path) and start >= host.cut_after \
                        and not host.cut_done:
                    host.cut_done = True
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# ---------------------------------------------------------------- local folder

def test_push_pull_through_a_folder_then_train(origin, tmp_path):
    home, m = origin
    dest = tmp_path / "published"
    r = _invoke("manifests", "push", "gen", dest, "--with-images", "--home", home.root)
    assert r.exit_code == 0, r.output
    index = json.loads((dest / "index.json").read_text())
    assert index["versions"] == [{"name": "gen", "version": m.version, "created_at": m.card["created_at"],
                                  "rows": m.rows, "path": f"gen/{m.version}", "images": True}]
    assert len(list((dest / "images").rglob("*.jpg"))) == m.rows
    assert not list(dest.rglob("*.part-*"))
    again = remote.push(home, "gen", str(dest), with_images=True)
    assert again.uploaded == [] and again.images_uploaded == 0 and again.images_present == m.rows   # a no-op

    other = Home(tmp_path / "colleague")
    r = _invoke("manifests", "pull", f"{dest}/gen@{m.version[:6]}", "--with-images", "--home", other.root)
    assert r.exit_code == 0, r.output
    assert [x.ref for x in list_manifests(other.manifests)] == [m.ref]
    assert _invoke("manifests", "verify", "gen", "--home", other.root).exit_code == 0
    pulled = load(other.manifests, "gen")
    assert pulled.card == m.card
    for f in m.card["files"] + [{"path": "card.json"}]:
        assert (pulled.path / f["path"]).read_bytes() == (m.path / f["path"]).read_bytes()
    r = _invoke("train", "--manifest", "gen", "--model", "tate-cnn", "--epochs", "1", "--image-size", "48",
                "--workers", "0", "--home", other.root)
    assert r.exit_code == 0, r.output
    r = _invoke("manifests", "list", f"file://{dest}")
    assert r.exit_code == 0 and r.output.startswith(m.ref) and "with images" in r.output


def test_versions_are_immutable(origin, tmp_path):
    home, m = origin
    dest = tmp_path / "pub"
    remote.push(home, "gen", str(dest))
    card = json.loads((dest / "gen" / m.version / "card.json").read_text())
    card["content_hash"] = "0" * 64
    (dest / "gen" / m.version / "card.json").write_text(json.dumps(card))
    r = _invoke("manifests", "push", "gen", dest, "--home", home.root)
    assert r.exit_code == 1 and f"{m.ref} is there already with other content; versions are immutable" in r.output


def test_push_resumes_an_interrupted_upload(origin, tmp_path):
    """Files already there with their size are kept; the card goes last, so a cut push is no version yet."""
    home, m = origin
    dest = tmp_path / "pub"
    vdir = dest / "gen" / m.version
    first = m.card["files"][0]["path"]
    (vdir / first).parent.mkdir(parents=True)
    shutil.copy(m.path / first, vdir / first)            # as a push killed after its first file left it
    with pytest.raises(remote.RemoteError, match="no index.json there"):
        remote.pull(Home(tmp_path / "x"), str(dest))
    res = remote.push(home, "gen", str(dest))
    assert first not in res.uploaded and res.skipped == 1 and res.uploaded[-1] == "card.json"


def test_tampered_parquet_is_refused_and_leaves_nothing(origin, tmp_path):
    home, m = origin
    dest = tmp_path / "pub"
    remote.push(home, "gen", str(dest))
    data = next(f["path"] for f in m.card["files"] if f["path"].startswith("data/train"))
    target = dest / "gen" / m.version / data
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                           # same size, other bytes
    target.write_bytes(bytes(raw))
    other = Home(tmp_path / "c")
    r = _invoke("manifests", "pull", f"{dest}/gen", "--home", other.root)
    assert r.exit_code == 1
    line = r.output.strip()
    assert "\n" not in line and f"gen/{m.version}/{data}: its size or sha256 differs from the card's" in line
    assert list_manifests(other.manifests) == []
    assert _invoke("manifests", "list", "--home", other.root).output.startswith("no manifests")


def test_missing_index_and_unknown_version(tmp_path, origin):
    (tmp_path / "empty").mkdir()
    r = _invoke("manifests", "pull", tmp_path / "empty", "--home", tmp_path / "h")
    assert r.exit_code == 1 and r.output.strip().endswith("no index.json there (not a folder that `artdata "
                                                          "manifests push` wrote)")
    home, m = origin
    remote.push(home, "gen", str(tmp_path / "pub"))
    r = _invoke("manifests", "pull", f"{tmp_path / 'pub'}/gen@ffff", "--home", tmp_path / "h")
    assert r.exit_code == 1 and f"no version gen@ffff (there: {m.ref})" in r.output


# ---------------------------------------------------------------- static HTTP host

def test_pull_from_a_static_http_host_resumes_a_cut_transfer(origin, tmp_path, monkeypatch):
    home, m = origin
    dest = tmp_path / "site"
    remote.push(home, "gen", str(dest), with_images=True)
    data = next(f for f in m.card["files"] if f["path"].startswith("data/train"))
    assert data["bytes"] > 2048
    monkeypatch.setattr(remote, "CHUNK", 1024)          # small chunks, so that a cut file resumes mid-way
    with StaticHost(dest) as host:
        host.cut_path, host.cut_after = data["path"], 1024
        other = Home(tmp_path / "c")
        res = remote.pull(other, f"{host.url}/gen", with_images=True)
        assert host.cut_done and not res.already and res.images_fetched == m.rows
        ranges = [rng for path, rng in host.log if path.endswith(data["path"])]
        # bytes 0-1023 came whole; the cut range 1024-2047 was asked again from 1024, not from 0
        assert ranges[:3] == ["bytes=0-1023", "bytes=1024-2047", "bytes=1024-2047"], ranges
        assert _invoke("manifests", "verify", "gen", "--home", other.root).exit_code == 0
        assert remote.remote_versions(host.url)[0]["version"] == m.version


def test_pulled_folder_reads_the_same_in_pandas_duckdb_and_datasets(origin, tmp_path, monkeypatch):
    home, m = origin
    remote.push(home, "gen", str(tmp_path / "pub"))
    other = Home(tmp_path / "c")
    pulled = remote.pull(other, f"{tmp_path / 'pub'}/gen").path
    for folder in (m.path, pulled):
        assert (folder / "data").is_dir()
    a = pd.read_parquet(m.path / "data").sort_values("source_id").reset_index(drop=True)
    b = pd.read_parquet(pulled / "data").sort_values("source_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    import duckdb
    q = "select split, count(*) n, min(source_id) s from read_parquet('{}/data/*.parquet') group by split order by split"
    assert duckdb.sql(q.format(m.path)).fetchall() == duckdb.sql(q.format(pulled)).fetchall()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    files = lambda root: {s: str(root / "data" / f"{f}-00000-of-00001.parquet")
                          for s, f in (("train", "train"), ("validation", "validation"), ("test", "test"))}
    da = datasets.load_dataset("parquet", data_files=files(m.path))
    db = datasets.load_dataset("parquet", data_files=files(pulled))
    for split in ("train", "validation", "test"):
        assert da[split].num_rows == db[split].num_rows > 0
        assert sorted(da[split]["source_id"]) == sorted(db[split]["source_id"])


# ---------------------------------------------------------------- a real S3-compatible server

MOTO = r"""
import os, sys, time
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = sys.argv[2]
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
try:
    sys.stdin.read()      # until the test closes our stdin
finally:
    server.stop()
"""


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """moto's S3 on 127.0.0.1 with IAM authentication on: a user with an access key and an S3 policy is
    made with the first (unauthenticated) requests; every later request must be signed with that key."""
    pytest.importorskip("s3fs")
    import boto3
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", MOTO, str(port), "4"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        endpoint = f"http://127.0.0.1:{port}"
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        boot = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap",
                    aws_secret_access_key="bootstrap")
        iam = boto3.client("iam", **boot)
        iam.create_user(UserName="lab")                                           # 1
        key = iam.create_access_key(UserName="lab")["AccessKey"]                  # 2
        iam.put_user_policy(UserName="lab", PolicyName="s3", PolicyDocument=json.dumps({     # 3
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        boto3.client("s3", **boot).create_bucket(Bucket="lab-data")               # 4, the last unsigned one
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        yield endpoint
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_s3_push_pull_verify_train_and_wrong_credentials(origin, tmp_path, s3, monkeypatch):
    home, m = origin
    dest = "s3://lab-data/datasets"
    r = _invoke("manifests", "push", m.ref, dest, "--with-images", "--home", home.root)
    assert r.exit_code == 0, r.output
    assert f"images {m.rows} uploaded" in r.output
    r = _invoke("manifests", "push", m.ref, dest, "--with-images", "--home", home.root)
    assert r.exit_code == 0 and "0 file(s) uploaded" in r.output and f"images 0 uploaded, {m.rows} already there" \
        in r.output
    r = _invoke("manifests", "list", dest)
    assert r.exit_code == 0 and r.output.startswith(m.ref) and "with images" in r.output

    other = Home(tmp_path / "cluster")
    r = _invoke("manifests", "pull", f"{dest}/gen", "--with-images", "--home", other.root)
    assert r.exit_code == 0, r.output
    assert f"images {m.rows} from the store" in r.output
    assert _invoke("manifests", "verify", "gen", "--home", other.root).exit_code == 0
    r = _invoke("train", "--manifest", "gen", "--model", "tate-cnn", "--epochs", "1", "--image-size", "48",
                "--workers", "0", "--home", other.root)
    assert r.exit_code == 0, r.output

    secret = "wrong-Secret-Value-1234567890"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    for args in (("manifests", "list", dest), ("manifests", "pull", f"{dest}/gen", "--home", tmp_path / "z"),
                 ("manifests", "push", "gen", dest, "--home", home.root)):
        r = _invoke(*args)
        assert r.exit_code == 1, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "access denied; check the store's credentials" in lines[0], r.output
        assert secret not in r.output and os.environ["AWS_ACCESS_KEY_ID"] not in r.output
    assert not (tmp_path / "z").exists() or list_manifests(Home(tmp_path / "z").manifests) == []
