"""A lean HTTP/1.1 transport for httpx, straight on asyncio protocols.

httpx stays the client API (URLs, headers, redirects, content decoding, timeouts, exceptions);
this replaces the layer under it. httpx on httpcore (over anyio) costs about 1.2 ms of CPU per
238 KB image on this project's machines (h11 events, a cancel scope per 64 KB read, every pooled
connection re-checked with `getpeername` on each request); here a response is parsed from one
buffer and the waiting task is woken once, when the whole body (up to `eager_bytes`) has
arrived, and httpx on it costs about 0.4 ms. Measured in bench/README.md.

What it speaks: HTTP/1.1 (and 1.0 answers) over TCP or TLS, keep-alive with a bounded pool,
Content-Length, chunked and read-until-close bodies, informational (1xx) answers skipped.
What it does not: HTTP/2, proxies (httpx mounts its own transport for proxied URLs), upgrades.

Errors are httpx's: ConnectError/ConnectTimeout, ReadTimeout/WriteTimeout/PoolTimeout,
RemoteProtocolError for a malformed answer or a body cut off before its declared end.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx

_CRLF2 = b"\r\n\r\n"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class _StaleConnection(Exception):
    """A reused keep-alive connection that the server had already closed: nothing was answered."""


class _Conn(asyncio.Protocol):
    """One connection: bytes received go into `buf`; a task waits for a condition on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple, high_water: int):
        self.loop, self.key, self.high_water = loop, key, high_water
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.received = 0              # bytes received since the current request was sent
        self.last_rx = 0.0
        self.idle_since = 0.0
        self.reused = False
        self._waiter: asyncio.Future | None = None
        self._ready: Callable[[], bool] | None = None
        self._paused = False
        self._can_write = True
        self._write_waiter: asyncio.Future | None = None

    # protocol callbacks
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.received += len(data)
        self.last_rx = self.loop.time()
        if self._waiter is not None:
            if self._ready():
                self._wake()
        elif len(self.buf) > self.high_water and not self._paused:
            self._paused = True          # nobody is reading: stop taking bytes off the socket
            self.transport.pause_reading()

    def eof_received(self):
        self.eof = True
        self._wake()
        return False                     # let the transport close itself

    def connection_lost(self, exc):
        self.eof = True
        self.error = exc
        self._wake()
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    def pause_writing(self):
        self._can_write = False

    def resume_writing(self):
        self._can_write = True
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # waiting
    @property
    def usable(self) -> bool:
        return not self.eof and self.transport is not None and not self.transport.is_closing()

    async def wait_for(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Until `ready()` or EOF; ReadTimeout after `timeout` seconds without a byte arriving."""
        if ready() or self.eof:
            return
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self._ready = ready
        self._waiter = self.loop.create_future()
        self.last_rx = self.loop.time()
        timer = None
        if timeout is not None:
            def check():
                nonlocal timer
                left = self.last_rx + timeout - self.loop.time()
                if left <= 0:
                    if not self._waiter.done():
                        self._waiter.set_exception(httpx.ReadTimeout(f"no data for {timeout:g}s"))
                else:
                    timer = self.loop.call_later(left, check)
            timer = self.loop.call_later(timeout, check)
        try:
            await self._waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = self._ready = None

    async def need(self, n: int, timeout: float | None) -> None:
        """At least `n` bytes in the buffer, or RemoteProtocolError if the peer closes first."""
        if len(self.buf) < n:
            await self.wait_for(lambda: len(self.buf) >= n, timeout)
            if len(self.buf) < n:
                raise self._cut_off()

    async def need_line(self, timeout: float | None, limit: int) -> bytes:
        """One CRLF-terminated line (without the CRLF), taken off the buffer."""
        i = self.buf.find(b"\r\n")
        if i < 0:
            await self.wait_for(lambda: self.buf.find(b"\r\n") >= 0 or len(self.buf) > limit, timeout)
            i = self.buf.find(b"\r\n")
            if i < 0:
                if len(self.buf) > limit:
                    raise httpx.RemoteProtocolError(f"line longer than {limit} bytes")
                raise self._cut_off()
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def take(self, n: int) -> bytes:
        if n >= len(self.buf):
            out = bytes(self.buf)
            self.buf.clear()
            return out
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _cut_off(self) -> Exception:
        why = f": {self.error}" if self.error else ""
        return httpx.RemoteProtocolError(f"server closed the connection before the answer was complete{why}")

    # writing
    async def write(self, data: bytes, timeout: float | None) -> None:
        if not self.usable:
            raise httpx.WriteError("connection closed")
        self.transport.write(data)
        if not self._can_write:
            self._write_waiter = self.loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._write_waiter
            except TimeoutError:
                raise httpx.WriteTimeout(f"could not send for {timeout:g}s") from None
            finally:
                self._write_waiter = None
            if self.error is not None or self.transport.is_closing():
                raise httpx.WriteError(f"connection closed while sending: {self.error}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.eof = True


def _parse_head(head: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):             # obsolete line folding: part of the previous value
            if not headers:
                raise httpx.RemoteProtocolError("header block starts with a continuation line")
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip(b" \t")))
    return parts[0], int(parts[1]), parts[2] if len(parts) == 3 else b"", headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for k, v in headers if k.lower() == name]


def _tokens(values: list[bytes]) -> set[bytes]:
    return {t.strip().lower() for v in values for t in v.split(b",") if t.strip()}


class _Body(httpx.AsyncByteStream):
    """The body of one answer; closing it gives the connection back (or closes it)."""

    def __init__(self, pool: "FastTransport", conn: _Conn, mode: str, length: int, keep: bool,
                 timeout: float | None):
        self.pool, self.conn, self.mode, self.length, self.keep, self.timeout = pool, conn, mode, length, keep, timeout
        self.complete = mode == "none"
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, timeout, chunk = self.conn, self.timeout, self.pool.chunk_bytes
        try:
            if self.mode == "length":
                left = self.length
                if left <= self.pool.eager_bytes:
                    await conn.need(left, timeout)
                    yield conn.take(left)
                else:
                    while left:
                        n = min(left, chunk)
                        if len(conn.buf) < n:
                            await conn.wait_for(lambda: len(conn.buf) >= n, timeout)
                        if not conn.buf:
                            raise httpx.RemoteProtocolError(
                                f"server closed the connection with {left} of {self.length} body bytes unsent")
                        data = conn.take(min(left, len(conn.buf)))
                        left -= len(data)
                        yield data
            elif self.mode == "chunked":
                limit = self.pool.max_header_bytes
                while True:
                    line = await conn.need_line(timeout, limit)
                    size_s = line.split(b";", 1)[0].strip()
                    try:
                        size = int(size_s, 16)
                    except ValueError:
                        raise httpx.RemoteProtocolError(f"bad chunk size line: {line[:40]!r}") from None
                    if size < 0:
                        raise httpx.RemoteProtocolError(f"bad chunk size line: {line[:40]!r}")
                    if size == 0:
                        while await conn.need_line(timeout, limit):     # trailer fields, ignored
                            pass
                        break
                    left = size          # taken in pieces: a chunk that claims terabytes is never buffered whole
                    while left:
                        want = min(left, chunk)
                        if len(conn.buf) < want:
                            await conn.wait_for(lambda: len(conn.buf) >= want, timeout)
                            if not conn.buf:
                                raise conn._cut_off()
                        data = conn.take(min(left, len(conn.buf)))
                        left -= len(data)
                        yield data
                    await conn.need(2, timeout)
                    if conn.take(2) != b"\r\n":
                        raise httpx.RemoteProtocolError("chunk not followed by CRLF")
            elif self.mode == "close":
                while True:
                    await conn.wait_for(lambda: len(conn.buf) >= chunk, timeout)
                    if conn.buf:
                        yield conn.take(len(conn.buf))
                    elif conn.eof:
                        break
            self.complete = True
        finally:
            if not self.complete:
                self.keep = False

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pool._release(self.conn, self.keep and self.complete and not self.conn.buf)


class FastTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=FastTransport(limits=...))`."""

    def __init__(self, *, limits: httpx.Limits = httpx.Limits(max_connections=8, max_keepalive_connections=8),
                 verify: ssl.SSLContext | bool | str = True, eager_bytes: int = 32 * 2**20,
                 chunk_bytes: int = 2**20, max_header_bytes: int = 64 * 2**10,
                 pinned: Callable[[str, int], str | None] | None = None):
        self.max_connections = limits.max_connections or 2**31
        self.max_keepalive = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else self.max_connections
        self.keepalive_expiry = limits.keepalive_expiry
        self.eager_bytes, self.chunk_bytes, self.max_header_bytes = eager_bytes, chunk_bytes, max_header_bytes
        self._verify = verify
        self._pinned = pinned       # (host, port) -> the address checked for it (connect there: no second lookup)
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[tuple, list[_Conn]] = {}    # keep-alive connections by (scheme, host, port)
        self._n_idle = 0
        self._busy = 0                                 # requests holding a connection
        self._waiters: deque[asyncio.Future] = deque()
        self._closed = False

    # pool
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = self._verify if isinstance(self._verify, ssl.SSLContext) else httpx.create_ssl_context(verify=self._verify)
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def _acquire_slot(self, timeout: float | None) -> None:
        """One of `max_connections` request slots; PoolTimeout after `timeout` seconds."""
        if self._busy < self.max_connections and not self._waiters:
            self._busy += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                self._free_slot()              # handed over just as we gave up: pass it on
            else:
                fut.cancel()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(f"no free connection within {timeout:g}s") from None
            raise

    def _free_slot(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)           # the slot goes straight to the next waiter
                return
        self._busy -= 1

    def _checkout(self, key: tuple) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._n_idle -= 1
            if conn.usable and (self.keepalive_expiry is None or now - conn.idle_since < self.keepalive_expiry):
                conn.reused = True
                return conn
            conn.close()
        # a new connection: keep the sockets open (busy + idle) within max_connections
        while self._n_idle and self._busy + self._n_idle > self.max_connections:
            oldest = min((c for conns in self._idle.values() for c in conns), key=lambda c: c.idle_since)
            self._idle[oldest.key].remove(oldest)
            self._n_idle -= 1
            oldest.close()
        return None

    def _release(self, conn: _Conn, keep: bool) -> None:
        if keep and conn.usable and not self._closed and self._n_idle < self.max_keepalive:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.key, []).append(conn)
            self._n_idle += 1
        else:
            conn.close()
        self._free_slot()

    async def _connect(self, key: tuple, timeout: float | None) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == "https" else None
        addr = (self._pinned(host, port) if self._pinned else None) or host
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(loop, key, 4 * self.chunk_bytes), addr, port,
                    ssl=tls, server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout:g}s") from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS with {host}:{port} failed: {exc}") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        return conn

    # one request
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        host = url.host
        key = (scheme, host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        head = self._request_head(request)
        body = request.stream
        replayable = isinstance(body, httpx.ByteStream) or request.method in ("GET", "HEAD")
        await self._acquire_slot(timeouts.get("pool"))
        conn = None
        try:
            for attempt in range(2):
                # a retry after a stale keep-alive connection goes out on a fresh one
                conn = (None if attempt else self._checkout(key)) or await self._connect(key, timeouts.get("connect"))
                try:
                    return await self._exchange(conn, request, head, body, timeouts)
                except _StaleConnection:
                    conn.close()
                    conn = None
                    if attempt or not (replayable and request.method in _IDEMPOTENT):
                        raise httpx.RemoteProtocolError("server closed the connection without answering") from None
            raise AssertionError("unreachable")
        except BaseException:
            if conn is not None:
                conn.close()
            self._free_slot()
            raise

    @staticmethod
    def _request_head(request: httpx.Request) -> bytes:
        parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name or b":" in name:
                raise httpx.LocalProtocolError(f"illegal header {name!r}")
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _exchange(self, conn: _Conn, request: httpx.Request, head: bytes, body, timeouts: dict) -> httpx.Response:
        reused = conn.reused
        conn.received = 0
        read_timeout = timeouts.get("read")
        chunked = any(k.lower() == b"transfer-encoding" and b"chunked" in v.lower() for k, v in request.headers.raw)
        try:
            if isinstance(body, httpx.ByteStream) and not chunked:
                await conn.write(head + b"".join([c async for c in body]), timeouts.get("write"))
            else:
                await conn.write(head, timeouts.get("write"))
                async for piece in body:
                    if piece:
                        await conn.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece, timeouts.get("write"))
                if chunked:
                    await conn.write(b"0\r\n\r\n", timeouts.get("write"))
        except httpx.WriteError:
            if reused and conn.received == 0:
                raise _StaleConnection() from None
            raise
        while True:                                   # skip 1xx informational answers
            limit = self.max_header_bytes
            if conn.buf.find(_CRLF2) < 0:
                await conn.wait_for(lambda: conn.buf.find(_CRLF2) >= 0 or len(conn.buf) > limit, read_timeout)
            end = conn.buf.find(_CRLF2)
            if end < 0:
                if len(conn.buf) > limit:
                    raise httpx.RemoteProtocolError(f"answer headers longer than {limit} bytes")
                if reused and conn.received == 0:
                    raise _StaleConnection()
                raise conn._cut_off()
            version, status, reason, headers = _parse_head(bytes(conn.buf[:end]))
            del conn.buf[:end + 4]
            if status >= 200 or status == 101:
                break
        if status == 101:
            raise httpx.RemoteProtocolError("protocol upgrades are not supported")
        connection = _tokens(_header(headers, b"connection"))
        req_connection = _tokens(_header(request.headers.raw, b"connection"))
        keep = (b"close" not in connection and b"close" not in req_connection
                and (version != b"HTTP/1.0" or b"keep-alive" in connection))
        mode, length = self._framing(request.method, status, headers)
        if mode == "close":
            keep = False
        stream = _Body(self, conn, mode, length, keep, read_timeout)
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": version, "reason_phrase": reason})

    @staticmethod
    def _framing(method: str, status: int, headers: list) -> tuple[str, int]:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return "none", 0
        te = _header(headers, b"transfer-encoding")
        if te:
            codings = [t.strip().lower() for v in te for t in v.split(b",") if t.strip()]
            return ("chunked" if codings and codings[-1] == b"chunked" else "close"), 0
        cl = _header(headers, b"content-length")
        if cl:
            values = {v.strip() for c in cl for v in c.split(b",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise httpx.RemoteProtocolError(f"bad Content-Length: {b', '.join(cl)[:60]!r}")
            length = int(next(iter(values)))
            return ("length", length) if length else ("none", 0)
        return "close", 0

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._n_idle = 0
