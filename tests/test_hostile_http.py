"""What a hostile or broken server can do to the HTTP client, reproduced on 127.0.0.1: endless and
oversized bodies (capped, memory flat), compression bombs, trickling answers (a total deadline), redirects
and content that point at loopback / private / link-local addresses (refused before any connection),
redirect loops, and bot challenges (a host given up promptly, its records failed with one clear reason)."""
import asyncio
import gzip
import json
import socket
import socketserver
import threading
import time

import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.harvest.client import ClientConfig, FetchError, HostRefused, PoliteClient
from artdata.datasets.manifest import load
from conftest import jpeg_bytes


class RawServer:
    """A loopback TCP server whose handler writes raw bytes (bounded by its own count or time), counting the
    connections it accepted and the body bytes it managed to send."""

    def __init__(self, handler, host="127.0.0.1"):
        outer = self
        self.connections = 0
        self.sent = 0
        self.paths: list[str] = []

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                outer.connections += 1
                data = b""
                self.request.settimeout(10)
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        piece = self.request.recv(4096)
                        if not piece:
                            return
                        data += piece
                    path = data.split(b" ", 2)[1].decode()
                    outer.paths.append(path)
                    handler(self.request, path, outer)
                except OSError:
                    pass              # the client went away: that is the point of most of these tests

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
        self.server = S((host, 0), H)
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self):
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def send(sock, srv, data: bytes):
    sock.sendall(data)
    srv.sent += len(data)


def get(cfg: ClientConfig, url: str, **kw):
    async def go():
        async with PoliteClient(cfg) as c:
            return await c.get(url, **kw)
    return asyncio.run(go())


FAST = dict(rate=100, retries=0, backoff=0.01, backoff_max=0.02, trusted_hosts=("127.0.0.1",))


# ---------------------------------------------------------------- size caps

def endless_chunked(sock, path, srv):
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n%s\r\n" % (65536, b"\xff" * 65536)
    for _ in range(5000):                 # 320 MB at most, unless the client hangs up first
        send(sock, srv, piece)


def test_endless_chunked_body_stops_at_the_cap_and_the_server_is_cut_off():
    with RawServer(endless_chunked) as srv:
        with pytest.raises(FetchError, match=r"over the 2,000,000-byte cap.*127\.0\.0\.1"):
            get(ClientConfig(**FAST), f"{srv.base}/img.jpg", max_bytes=2_000_000)
        time.sleep(0.2)
    # the client stopped reading and closed: the server could not push its 320 MB (socket buffers allow a few MB)
    assert srv.sent < 40_000_000


def one_huge_chunk(sock, path, srv):
    send(sock, srv, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\n")
    for _ in range(5000):
        send(sock, srv, b"\x00" * 65536)


def test_a_chunk_that_claims_a_terabyte_is_not_buffered_whole():
    with RawServer(one_huge_chunk) as srv:
        with pytest.raises(FetchError, match="cap"):
            get(ClientConfig(**FAST), f"{srv.base}/x", max_bytes=3_000_000)
    assert srv.sent < 40_000_000


def declared_too_large(sock, path, srv):
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Length: 300000000\r\n\r\n")
    for _ in range(5000):
        send(sock, srv, b"\x00" * 65536)


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    with RawServer(declared_too_large) as srv:
        with pytest.raises(FetchError, match=r"300,000,000 bytes is over the 1,000,000-byte cap"):
            get(ClientConfig(**FAST), f"{srv.base}/big.csv", max_bytes=1_000_000)
    assert srv.sent < 40_000_000


def test_api_answers_have_a_default_cap_of_their_own():
    with RawServer(endless_chunked) as srv:
        with pytest.raises(FetchError, match="cap"):
            get(ClientConfig(**FAST, max_bytes=500_000), f"{srv.base}/objects")


BOMB = gzip.compress(b"\x00" * 200_000_000, compresslevel=9)       # about 200 KB on the wire


def gzip_bomb(sock, path, srv):
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(BOMB) + BOMB)


def test_a_compression_bomb_counts_its_decompressed_bytes():
    assert len(BOMB) < 1_000_000
    with RawServer(gzip_bomb) as srv:
        with pytest.raises(FetchError, match="decompresses past the 5,000,000-byte cap"):
            get(ClientConfig(**FAST), f"{srv.base}/objects", max_bytes=5_000_000)


def gzip_small(sock, path, srv):
    body = gzip.compress(json.dumps({"ok": True}).encode())
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_an_honest_gzip_answer_still_decodes():
    with RawServer(gzip_small) as srv:
        assert get(ClientConfig(**FAST), f"{srv.base}/ok").json() == {"ok": True}


# ---------------------------------------------------------------- deadlines

def trickle(sock, path, srv):
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(600):                  # one byte every 0.1 s: the read timeout never fires
        send(sock, srv, b"x")
        time.sleep(0.1)


def test_a_trickling_server_is_cut_off_at_the_total_deadline():
    with RawServer(trickle) as srv:
        t = time.monotonic()
        with pytest.raises(FetchError, match=r"within the 1.5s deadline"):
            get(ClientConfig(**FAST, timeout=1.0, deadline=1.5), f"{srv.base}/info.json")
        assert time.monotonic() - t < 30        # ends, where the read timeout alone would wait a minute


def silent(sock, path, srv):
    for _ in range(300):
        time.sleep(0.1)


def test_the_deadline_defaults_to_ten_read_timeouts_and_is_checked():
    assert ClientConfig(timeout=5).total_deadline == 50
    assert ClientConfig(timeout=5, deadline=7).total_deadline == 7
    from artdata import ArtdataError
    with pytest.raises(ArtdataError, match="--deadline"):
        ClientConfig(deadline=0)
    with RawServer(silent) as srv:
        with pytest.raises(FetchError, match="timed out"):
            get(ClientConfig(**FAST, timeout=0.5, deadline=20), f"{srv.base}/x")


# ---------------------------------------------------------------- hosts content may not steer us to

def test_content_cannot_send_requests_to_link_local_or_private_addresses(connect_guard):
    connect_guard.forbidden |= {"169.254.169.254", "10.0.0.1", "127.0.0.2"}
    cfg = ClientConfig(**{**FAST, "trusted_hosts": ()})
    for url in ("http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
                "http://10.0.0.1/x.jpg", "http://127.0.0.2:9/x.jpg", "http://[::ffff:169.254.169.254]/x",
                "http://0.0.0.0:80/"):
        with pytest.raises(HostRefused, match="loopback, private or link-local"):
            get(cfg, url)
    # refused before any connection: the guard saw no attempt at all
    assert connect_guard.attempts == []


def jpeg_answer(sock, path, srv):
    body = jpeg_bytes(64, 48)
    send(sock, srv, b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_a_host_the_user_named_is_allowed_even_on_loopback(connect_guard):
    with RawServer(jpeg_answer, host="127.0.0.2") as srv:
        with pytest.raises(HostRefused):
            get(ClientConfig(**{**FAST, "trusted_hosts": ()}), f"{srv.base}/a.jpg")
        assert srv.connections == 0
        assert get(ClientConfig(**{**FAST, "trusted_hosts": ("127.0.0.2",)}), f"{srv.base}/a.jpg").status_code == 200
        assert get(ClientConfig(**{**FAST, "trusted_hosts": (), "allow_private_hosts": True}),
                   f"{srv.base}/a.jpg").status_code == 200
        assert srv.connections == 2


def redirector(target_of):
    def handle(sock, path, srv):
        target = target_of(path, srv)
        if target is None:
            return jpeg_answer(sock, path, srv)
        send(sock, srv, b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % target.encode())
    return handle


def test_redirects_are_checked_hop_by_hop(connect_guard):
    connect_guard.forbidden.add("127.0.0.2")
    with RawServer(jpeg_answer, host="127.0.0.2") as inner:
        def target(path, srv):
            return {"/to-private": f"{inner.base}/secret", "/loop-a": "/loop-b", "/loop-b": "/loop-a",
                    "/relative": "/final.jpg", "/far": "/far?" + "x" * len(srv.paths)}.get(path.split("?")[0])
        with RawServer(redirector(target)) as srv:
            cfg = ClientConfig(**FAST)
            with pytest.raises(HostRefused, match="127.0.0.2"):
                get(cfg, f"{srv.base}/to-private")
            assert inner.connections == 0
            with pytest.raises(FetchError, match="redirect loop"):
                get(cfg, f"{srv.base}/loop-a")
            with pytest.raises(FetchError, match="more than 10 redirects"):
                get(cfg, f"{srv.base}/far")
            resp = get(cfg, f"{srv.base}/relative")
            assert resp.status_code == 200 and str(resp.request.url).endswith("/final.jpg")


def test_a_crawl_goes_on_past_refused_looping_and_endless_images(tmp_path, connect_guard):
    """`crawl urls`: the list is the user's own (its hosts are allowed), but where its servers redirect is not;
    one looping, one refused, one endless image each become a failed record naming why, the rest is harvested."""
    connect_guard.forbidden.add("127.0.0.2")

    def handle(sock, path, srv):
        if path == "/endless.jpg":
            return endless_chunked(sock, path, srv)
        target = {"/private.jpg": "http://127.0.0.2:9/x.jpg", "/loop.jpg": "/loop.jpg"}.get(path)
        if target:
            return send(sock, srv, b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % target.encode())
        return jpeg_answer(sock, path, srv)
    with RawServer(handle) as srv:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(f"{srv.base}/{n}" for n in ("a.jpg", "private.jpg", "loop.jpg", "endless.jpg",
                                                               "b.jpg")) + "\n")
        home = tmp_path / "home"
        r = CliRunner().invoke(app, ["crawl", "urls", str(urls), "--name", "hostile", "--home", str(home),
                                     "--rate", "100", "--retries", "0", "--workers", "1",
                                     "--max-image-bytes", "3000000"])
    assert r.exit_code == 0, r.output
    rows = {x["source_id"]: x for x in load(home / "manifests", "hostile").table().to_pylist()}
    assert [rows[i]["status"] for i in "01234"] == ["ok", "failed", "failed", "failed", "ok"]
    assert "loopback, private or link-local" in rows["1"]["error"] and "127.0.0.2" in rows["1"]["error"]
    assert "redirect loop" in rows["2"]["error"]
    assert "3,000,000-byte cap" in rows["3"]["error"] and "endless.jpg" in rows["3"]["error"]
    assert srv.sent < 60_000_000


# ---------------------------------------------------------------- bot challenges

def challenge(sock, path, srv):
    body = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
            b"<script src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1'></script></body></html>")
    send(sock, srv, b"HTTP/1.1 403 Forbidden\r\nServer: cloudflare\r\ncf-mitigated: challenge\r\n"
                    b"Content-Type: text/html; charset=UTF-8\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_a_challenge_is_not_a_block_and_the_host_is_given_up_after_three():
    with RawServer(challenge) as srv:
        async def go():
            notes = []
            async with PoliteClient(ClientConfig(**FAST, block_pause=60)) as c:
                c.on_note = notes.append
                errors = []
                for i in range(6):
                    try:
                        await c.get(f"{srv.base}/iiif/{i}/full/843,/0/default.jpg")
                    except FetchError as exc:
                        errors.append(str(exc))
                return errors, notes, c.stats
        t = time.monotonic()
        errors, notes, stats = asyncio.run(go())
        assert time.monotonic() - t < 30          # no 60 s block pause
    assert len(errors) == 6 and stats.blocks == 0 and stats.challenges == 3
    assert "bot challenge" in errors[0] and "not a rate limit" in errors[0]
    assert "stopped asking 127.0.0.1" in errors[2] and "--retry-failed" in errors[5]
    assert srv.connections <= 3                  # after the third, nothing more is asked of that host
    assert len(notes) == 1 and "no more requests to 127.0.0.1" in notes[0]


def test_a_challenged_image_host_ends_the_harvest_promptly_with_every_record_kept(tmp_path):
    """The AIC's image host answering only Cloudflare challenges: the metadata is harvested, every image
    record is failed naming the challenge and the host, one line says what happened, no block pauses."""
    from artdata.console import console
    from artdata.mirror import Faults, Mirror
    with Mirror(faults=Faults(challenge_media="/aic/iiif/")) as m:
        home = tmp_path / "home"
        t = time.monotonic()
        with console.capture() as cap:
            r = CliRunner().invoke(app, ["crawl", "aic", "--api-base", m.base("api") + "/aic/api/v1", "--limit", "40",
                                         "--rate", "50", "--block-pause", "60", "--workers", "1", "--home", str(home)])
        took = time.monotonic() - t
        challenged = m.logs["media"].count(prefix="/aic/iiif/")
    out = r.output + cap.get()
    assert r.exit_code == 0, out
    assert took < 60                                   # no 60 s block pauses: a challenge is not a rate limit
    assert challenged <= 3 + 8                         # three in a row, plus those already in flight
    df = load(home / "manifests", "aic").to_pandas()
    assert len(df) == 40 and (df.status == "failed").all()
    assert df.title.notna().all() and df.artist.notna().any()          # the metadata is kept
    assert df.error.str.contains("bot challenge").all() and df.error.str.contains("127.0.0.1").all()
    assert out.count("no more requests to 127.0.0.1") == 1 and "--retry-failed" in out


def test_a_manifests_urls_do_not_lead_materialize_to_loopback_hosts(tmp_path, connect_guard):
    """A manifest someone gave you whose image URLs point into this machine's network: refused, record by record,
    before any connection; naming the host yourself (--image-base, --allow-private-hosts) lets it through."""
    from artdata.harvest import HarvestConfig, harvest
    from artdata.datasets.images import ImageConfig
    from artdata.datasets.materialize import materialize
    from artdata.mirror import Mirror
    from artdata.paths import Home
    from artdata.sources.met import MetSource
    fast = ClientConfig(rate=100, concurrency=4, backoff=0.01, backoff_max=0.05)
    with Mirror() as m:
        home = Home(tmp_path / "home")
        res = harvest(MetSource(api_base=m.met_api_base, image_size=32),
                      HarvestConfig("meta", image=ImageConfig(size=32), client=fast, limit=12, metadata_only=True,
                                    workers=1), home)
        media_before = m.logs["media"].count()
        out = materialize(home, res.manifest.ref, client=fast, workers=1)
        assert m.logs["media"].count() == media_before == 0
        assert out.counts["failed"] >= 1 and not out.counts.get("fetched")
        r = CliRunner().invoke(app, ["manifests", "materialize", res.manifest.ref, "--home", str(home.root), "--rate", "100",
                                     "--allow-private-hosts", "--workers", "1"])
        assert r.exit_code == 0, r.output
        assert m.logs["media"].count() >= 1, r.output


def test_the_address_checked_is_the_address_connected_to(monkeypatch):
    """A name that resolves to a public address when checked and to a loopback one a moment later (DNS
    rebinding) is connected to at the address that was checked, never looked up again."""
    import asyncio as aio
    answers = iter(["93.184.216.34", "127.0.0.2", "127.0.0.2"])
    tried = []

    async def getaddrinfo(self, host, port, *a, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    async def create_connection(self, factory, host=None, port=None, **kw):
        tried.append((host, port, kw.get("server_hostname")))
        raise OSError("no network in tests")
    monkeypatch.setattr(aio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(aio.BaseEventLoop, "create_connection", create_connection)
    with pytest.raises(FetchError, match="cannot connect"):
        get(ClientConfig(**{**FAST, "trusted_hosts": ()}), "http://museum.example/iiif/info.json")
    assert tried == [("93.184.216.34", 80, None)]
