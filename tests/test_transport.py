"""artdata.harvest.transport.FastTransport under httpx, against a scripted HTTP server on loopback.

The server answers each request with the raw bytes the test gives for its path, so every framing
and failure case is exact: Content-Length, chunked, read-until-close, HTTP/1.0, 1xx, HEAD/204,
gzip, cut-off bodies, malformed heads, stale keep-alive, slow bodies, pool limits, TLS.
"""
from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import time

import httpx
import pytest

from artdata.harvest.transport import FastTransport


def ok(body: bytes, *headers: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    head = [f"{version} {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Script:
    """path -> list of steps: bytes to send, a float to sleep, or None to close the connection."""

    def __init__(self, routes: dict, tls: ssl.SSLContext | None = None):
        self.routes, self.tls = routes, tls
        self.connections = 0
        self.open_now = 0
        self.max_open = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                lines = head.decode("latin-1").split("\r\n")
                hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
                body = b""
                if "content-length" in hdrs:
                    body = await reader.readexactly(int(hdrs["content-length"]))
                elif hdrs.get("transfer-encoding") == "chunked":
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                self.bodies.append(body)
                path = lines[0].split(" ")[1].split("?")[0]
                steps = self.routes[path]
                if callable(steps):
                    steps = steps(body)
                for step in steps:
                    if step is None:
                        writer.close()
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                    else:
                        writer.write(step)
                        await writer.drain()
        finally:
            self.open_now -= 1
            writer.close()


def client(**kw) -> httpx.AsyncClient:
    limits = kw.pop("limits", httpx.Limits(max_connections=4, max_keepalive_connections=4))
    timeout = kw.pop("timeout", 5.0)
    return httpx.AsyncClient(transport=FastTransport(limits=limits, **kw), timeout=timeout, follow_redirects=True)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_content_length_answers_reuse_one_connection():
    async def main():
        async with Script({"/a": [ok(b"hello", "X-Multi: 1", "X-Multi: 2")], "/b": [ok(b"")]}) as s:
            async with client() as c:
                r1 = await c.get(s.base + "/a")
                r2 = await c.get(s.base + "/b")
                r3 = await c.get(s.base + "/a?x=1")
            assert (r1.status_code, r1.content, r1.headers.get_list("x-multi")) == (200, b"hello", ["1", "2"])
            assert r1.http_version == "HTTP/1.1" and r1.reason_phrase == "OK"
            assert r2.content == b"" and r3.content == b"hello"
            assert s.connections == 1
            assert s.requests[2].startswith(b"GET /a?x=1 HTTP/1.1\r\n")
            assert b"\r\nhost: 127.0.0.1:" in s.requests[0].lower()
    run(main())


def test_chunked_body_with_extensions_and_trailers_then_reuse():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=val\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    async def main():
        async with Script({"/c": [chunked], "/a": [ok(b"again")]}) as s:
            async with client() as c:
                r = await c.get(s.base + "/c")
                r2 = await c.get(s.base + "/a")
            assert r.content == b"hello world" and r2.content == b"again"
            assert s.connections == 1
    run(main())


def test_body_until_close_and_http10():
    async def main():
        routes = {"/close": [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", None],
                  "/10": [ok(b"old", version="HTTP/1.0")],
                  "/10ka": [ok(b"old but kept", "Connection: keep-alive", version="HTTP/1.0")],
                  "/a": [ok(b"a")]}
        async with Script(routes) as s:
            async with client() as c:
                assert (await c.get(s.base + "/close")).content == b"until the end"
                assert (await c.get(s.base + "/10")).content == b"old"        # not kept: HTTP/1.0
                assert (await c.get(s.base + "/10ka")).content == b"old but kept"
                assert (await c.get(s.base + "/a")).content == b"a"          # on the kept one
            assert s.connections == 3
    run(main())


def test_informational_answers_skipped_head_and_204_have_no_body():
    async def main():
        routes = {"/hints": [b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", ok(b"final")],
                  "/empty": [b"HTTP/1.1 204 No Content\r\n\r\n"],
                  "/head": [b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n"],
                  "/a": [ok(b"a")]}
        async with Script(routes) as s:
            async with client() as c:
                r = await c.get(s.base + "/hints")
                assert (r.status_code, r.content) == (200, b"final")
                assert (await c.get(s.base + "/empty")).status_code == 204
                h = await c.head(s.base + "/head")
                assert h.headers["content-length"] == "12345" and h.content == b""
                assert (await c.get(s.base + "/a")).content == b"a"
            assert s.connections == 1
    run(main())


def test_gzip_decoded_and_redirect_followed_by_httpx():
    z = gzip.compress(b"squeezed " * 100)
    async def main():
        routes = {"/z": [ok(z, "Content-Encoding: gzip")],
                  "/old": [ok(b"", "Location: /z", status="301 Moved Permanently")]}
        async with Script(routes) as s:
            async with client() as c:
                r = await c.get(s.base + "/old")
            assert r.content == b"squeezed " * 100 and r.url.path == "/z" and r.history[0].status_code == 301
    run(main())


@pytest.mark.parametrize("steps, message", [
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10, None], "closed the connection"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", None], "closed the connection"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", None], "bad chunk size"),
    ([b"HTTP/1.1 200 OK\r\nContent-Le", None], "closed the connection"),
    ([b"ICY 200 OK\r\n\r\n", None], "not an HTTP/1.x status line"),
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", None], "bad Content-Length"),
    ([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", None], "malformed header line"),
])
def test_broken_answers_are_remote_protocol_errors(steps, message):
    async def main():
        async with Script({"/bad": steps, "/a": [ok(b"fine")]}) as s:
            async with client() as c:
                with pytest.raises(httpx.RemoteProtocolError, match=message):
                    await c.get(s.base + "/bad")
                assert (await c.get(s.base + "/a")).content == b"fine"    # the pool is still usable
    run(main())


def test_server_closing_an_idle_keepalive_connection_is_retried_once():
    async def main():
        # the server drops the connection after each answer without saying Connection: close
        async with Script({"/a": [ok(b"one"), 0.05, None]}) as s:
            async with client() as c:
                assert (await c.get(s.base + "/a")).content == b"one"
                await asyncio.sleep(0.2)                        # the server has closed it by now
                assert (await c.get(s.base + "/a")).content == b"one"
            assert s.connections == 2
    run(main())


def test_read_timeout_is_inactivity_not_total_time():
    async def main():
        drip = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"]
        for ch in b"slow!":
            drip += [0.12, bytes([ch])]
        routes = {"/drip": drip, "/stall": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 3.0, b"cde"]}
        async with Script(routes) as s:
            async with client(timeout=httpx.Timeout(5.0, read=0.4)) as c:
                t = time.monotonic()
                assert (await c.get(s.base + "/drip")).content == b"slow!"    # 0.6 s in all
                assert time.monotonic() - t >= 0.5
                t = time.monotonic()
                with pytest.raises(httpx.ReadTimeout):
                    await c.get(s.base + "/stall")
                assert time.monotonic() - t < 2.0
    run(main())


def test_pool_limit_and_pool_timeout():
    async def main():
        async with Script({"/slow": [0.3, ok(b"z")]}) as s:
            limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
            async with client(limits=limits) as c:
                rs = await asyncio.gather(*(c.get(s.base + "/slow") for _ in range(6)))
                assert [r.content for r in rs] == [b"z"] * 6
                assert s.max_open <= 2
            async with client(limits=limits, timeout=httpx.Timeout(5.0, pool=0.1)) as c:
                got = await asyncio.gather(*(c.get(s.base + "/slow") for _ in range(3)), return_exceptions=True)
                assert sum(isinstance(g, httpx.PoolTimeout) for g in got) == 1
                assert sum(isinstance(g, httpx.Response) for g in got) == 2
    run(main())


def test_connect_error_and_unsupported_scheme():
    async def main():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()
        async with client() as c:
            with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
                await c.get(f"http://127.0.0.1:{port}/")
            with pytest.raises(httpx.UnsupportedProtocol):
                await FastTransport().handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))
    run(main())


def test_large_body_streams_in_chunks_and_connection_is_kept():
    body = bytes(range(256)) * 400                # 100 KB
    async def main():
        big = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body[:50_000], 0.05, body[50_000:]]
        async with Script({"/big": big, "/a": [ok(b"a")]}) as s:
            async with client(eager_bytes=1000, chunk_bytes=8192) as c:
                pieces = []
                async with c.stream("GET", s.base + "/big") as r:
                    async for piece in r.aiter_raw():
                        pieces.append(piece)
                assert b"".join(pieces) == body and len(pieces) > 1
                assert max(map(len, pieces)) < len(body)       # never the whole body at once
                assert (await c.get(s.base + "/a")).content == b"a"
            assert s.connections == 1
    run(main())


def test_request_bodies_sized_and_chunked():
    async def main():
        echo = lambda body: [ok(b"got " + body)]
        async with Script({"/echo": echo}) as s:
            async with client() as c:
                r = await c.post(s.base + "/echo", content=b"form=1")

                async def gen():
                    yield b"part1,"
                    yield b"part2"
                r2 = await c.post(s.base + "/echo", content=gen())
            assert r.content == b"got form=1" and r2.content == b"got part1,part2"
            assert b"transfer-encoding: chunked" in s.requests[1].lower()
    run(main())


def test_header_injection_refused():
    async def main():
        async with client() as c:
            with pytest.raises((httpx.LocalProtocolError, ValueError)):
                await c.get("http://127.0.0.1:9/", headers={"X-Evil": "a\r\nInjected: 1"})
    run(main())


def _self_signed() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "artdata test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_tls_verified_against_the_given_ca_and_refused_otherwise(tmp_path):
    cert, key = _self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    trusting = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    async def main():
        async with Script({"/a": [ok(b"secret")], "/b": [ok(b"again")]}, tls=server_ctx) as s:
            async with client(verify=trusting) as c:
                assert (await c.get(s.base + "/a")).content == b"secret"
                assert (await c.get(s.base + "/b")).content == b"again"
            assert s.connections == 1
            async with client() as c:                      # the system's CAs do not know it
                with pytest.raises(httpx.ConnectError, match="TLS|certificate"):
                    await c.get(s.base + "/a")
    run(main())
