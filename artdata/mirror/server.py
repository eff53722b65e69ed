"""The mirror's core: two real HTTP servers on 127.0.0.1 (an "api" host and a separate "media" host, each with
its own request log), the routes registry the site modules plug into (`site`, `Mirror.add_route`), and the
faults injected per run (`Faults`): an HTML 403 block after a burst (lifted after a while), 429 with
Retry-After, 5xx, slow answers, truncated bodies, corrupt JPEGs, 404 for withdrawn objects, objects without an
image, malformed JSON and HTML answers with status 200, a Cloudflare managed challenge on media paths.
Object-level faults are fixed per object (a withdrawn object stays withdrawn); transient faults hit the first
attempt(s) of a chosen fraction of URLs, so a polite client with retries always gets through. The sites
themselves (met, tate, iiif, aic, cleveland, nga; findartinfo on request) are one module each beside this one.

    with Mirror(faults=Faults(block_burst=30)) as m:
        m.met_api_base   # http://127.0.0.1:PORT/public/collection/v1
        m.max_rate("api")  # most requests seen in any 1-second window
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from artdata.mirror.sample import MetData, bundled_met, bundled_tate, corrupt, render_jpeg, render_work, stable_hash


# Cloudflare's managed challenge as an API client meets it (the AIC image host since late 2025): 403, HTML, and
# the `cf-mitigated: challenge` header; the page needs a browser to run its script
CHALLENGE_PAGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
                  b"<meta http-equiv=\"refresh\" content=\"390\"></head><body><div class=\"main-wrapper\">"
                  b"<noscript>Enable JavaScript and cookies to continue</noscript></div><script>(function(){window._cf_chl_opt="
                  b"{cvId: '3',cZone: 'artic.edu',cType: 'managed'};var a = document.createElement('script');"
                  b"a.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f0';"
                  b"document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>")
BLOCK_PAGE = (b"<html><head><title>Request Rejected</title></head><body>Request unsuccessful. "
              b"Incapsula incident ID: 000000000000000000-000000000000000000</body></html>")


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often (fractions are of objects or URLs, chosen by hash of `seed`)."""
    seed: int = 0
    block_burst: int = 0           # > 0: more than this many api requests within block_window -> 403 page
    block_window: float = 1.0
    block_seconds: float = 2.0     # how long a block lasts
    block_media: bool = False      # apply the burst block to the media host too
    too_many: float = 0.0          # URLs whose first attempt(s) answer 429 with Retry-After
    retry_after: float = 0.5
    server_error: float = 0.0      # URLs whose first attempt(s) answer 500/502/503
    slow: float = 0.0              # URLs answered only after slow_seconds
    slow_seconds: float = 0.3
    truncated: float = 0.0         # URLs whose first attempt(s) send half the promised body
    transient_attempts: int = 1    # attempts a transient fault lasts for
    corrupt_image: float = 0.0     # objects whose image is always a damaged JPEG
    withdrawn: float = 0.0         # objects answering 404 {"message": "Not a valid object"}
    no_image: float = 0.0          # public-domain objects that nevertheless have no image
    malformed_json: float = 0.0    # objects whose JSON is cut short (status 200)
    html_200: float = 0.0          # objects answering an HTML page with status 200
    iiif_info_error: float = 0.0   # IIIF images whose info.json answers 500
    iiif_ignore_size: bool = False  # the IIIF image service sends its full size whatever is asked
    challenge_media: str = ""      # media paths with this prefix ("/" for all) answer a Cloudflare managed challenge

    @classmethod
    def none(cls) -> "Faults":
        return cls()

    @classmethod
    def demo(cls) -> "Faults":
        """A little of everything, mild enough for a quick demo."""
        return cls(seed=7, too_many=0.01, server_error=0.02, truncated=0.01, corrupt_image=0.01,
                   withdrawn=0.01, no_image=0.03)

    def pick(self, kind: str, key: str, fraction: float) -> bool:
        if fraction <= 0:
            return False
        h = hashlib.sha256(f"{self.seed}:{kind}:{key}".encode()).digest()
        return int.from_bytes(h[:4], "big") / 2**32 < fraction


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    truncate: bool = False   # send only half of the body after promising all of it
    delay: float = 0.0


def json_response(obj, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode(), "application/json")


# ---------------------------------------------------------------- request log

class RequestLog:
    def __init__(self):
        self._lock = threading.Lock()
        self.entries: list[tuple[float, str, int]] = []

    def add(self, t: float, path: str, status: int) -> None:
        with self._lock:
            self.entries.append((t, path, status))

    def times(self) -> list[float]:
        with self._lock:
            return sorted(t for t, _, _ in self.entries)

    def max_in_window(self, window: float = 1.0) -> int:
        ts = self.times()
        best, j = 0, 0
        for i, t in enumerate(ts):
            while ts[j] < t - window + 1e-9:
                j += 1
            best = max(best, i - j + 1)
        return best

    def count(self, status: int | None = None, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for _, p, s in self.entries if (status is None or s == status) and p.startswith(prefix))


Route = Callable[["Mirror", str, dict], Response]

# The sites a new Mirror serves, in registration order: module name -> attach(mirror), which adds the site's
# routes (Mirror.add_route) and its request logs. A site module registers itself with @site on import; the
# package's __init__ imports them all, so `from artdata.mirror import Mirror` serves every one.
SITES: dict[str, Callable[["Mirror"], None]] = {}


def site(attach: Callable[["Mirror"], None]) -> Callable[["Mirror"], None]:
    """Register a site module's attach function (idempotent: one entry per module)."""
    SITES[attach.__module__] = attach
    return attach


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "artdata-mirror/1"

    def log_message(self, *args):  # quiet
        pass

    _date = (0, "")

    def date_time_string(self, timestamp=None) -> str:
        """The Date header, formatted once a second rather than on every answer."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        if _Handler._date[0] != now:
            _Handler._date = (now, super().date_time_string(now))
        return _Handler._date[1]

    def parse_request(self) -> bool:
        """The request line and header lines, read straight into an HTTPMessage: the stdlib's
        version runs every request's headers through the email package's feed parser, the largest
        part of the mirror's CPU per request (which benchmarks share with the harvester)."""
        self.command = None
        self.close_connection = True
        self.requestline = line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = self.default_request_version
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {line[:100]!r}")
            return False
        self.command, self.path, self.request_version = words
        headers = HTTPMessage()
        for _ in range(100):
            raw = self.rfile.readline(65537)
            if len(raw) > 65536:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Header line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("iso-8859-1").partition(":")
            if not sep or not name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {raw[:100]!r}")
                return False
            headers[name.strip()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers
        conn = headers.get("Connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = "close" in conn
        else:
            self.close_connection = "keep-alive" not in conn
        if headers.get("Expect", "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def do_GET(self):  # noqa: N802
        self._answer(None)

    def _answer(self, body: bytes | None):
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        role: str = self.server.role  # type: ignore[attr-defined]
        try:
            resp = mirror.handle(role, self.path, headers=dict(self.headers.items()), body=body)
        except Exception as exc:  # a bug in a route must not hang the client
            resp = Response(500, f"mirror error: {exc}".encode(), "text/plain")
        if resp.delay:
            time.sleep(resp.delay)
        body = resp.body
        reason = self.responses.get(resp.status, ("",))[0]
        head = [f"HTTP/1.1 {resp.status} {reason}", f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}", f"Content-Type: {resp.content_type}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in resp.headers.items()]
        if resp.truncate:
            head.append("Connection: close")
            self.close_connection = True
        # head and body leave in one call (no second send, no copy of the body)
        parts = [memoryview(("\r\n".join(head) + "\r\n\r\n").encode("latin-1")),
                 memoryview(body)[: len(body) // 2] if resp.truncate else memoryview(body)]
        try:
            while parts:
                sent = self.connection.sendmsg(parts)
                while parts and sent >= len(parts[0]):
                    sent -= len(parts[0])
                    parts.pop(0)
                if parts and sent:
                    parts[0] = parts[0][sent:]
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Hold:
    """Answers held back (tests that interrupt a harvest): past the first `after` requests under `prefix`
    on host `role`, each request waits until `release()` — or `timeout` seconds, then is answered as usual
    (slow answers) — so the harvest is provably still running when the test signals it. `held` counts the
    requests held so far, `waiting` those waiting now."""

    def __init__(self, role: str, prefix: str = "/", after: int = 0, timeout: float = 60.0):
        self.role, self.prefix, self.after, self.timeout = role, prefix, after, timeout
        self.seen = self.held = self.waiting = 0
        self._lock = threading.Lock()
        self._open = threading.Event()

    def admit(self, role: str, path: str) -> None:
        if role != self.role or not path.startswith(self.prefix) or self._open.is_set():
            return
        with self._lock:
            self.seen += 1
            if self.seen <= self.after:
                return
            self.held += 1
            self.waiting += 1
        try:
            self._open.wait(self.timeout)
        finally:
            with self._lock:
                self.waiting -= 1

    def release(self) -> None:
        """Answer the waiting requests now, and every later one at once."""
        self._open.set()

    def wait_held(self, n: int = 1, timeout: float = 90.0) -> None:
        """Return once `n` requests have been held (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while self.held < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"the mirror held {self.held} of {n} requests under {self.prefix} "
                                     f"within {timeout:g}s")
            time.sleep(0.02)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Mirror:
    """Start with `start()` (or `with Mirror() as m:`), stop with `stop()`."""

    def __init__(self, met: pd.DataFrame | None = None, tate: pd.DataFrame | None = None,
                 faults: Faults = Faults(), host: str = "127.0.0.1", port: int = 0, media_port: int = 0,
                 image_noise: int = 40):
        self.faults = faults
        self.host = host
        self._ports = (port, media_port)
        self.met = MetData(met if met is not None else bundled_met())
        self._tate_df = tate
        self.image_noise = image_noise
        self.logs = {"api": RequestLog(), "media": RequestLog()}
        self.routes: list[tuple[str, str, Route]] = []
        self._attempts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._recent: dict[str, deque] = {"api": deque(), "media": deque()}
        self._blocked_until = {"api": 0.0, "media": 0.0}
        self.blocks = 0
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.iiif_sizes: list[str] = []          # the size parameter of every IIIF image request
        self.holds: list[Hold] = []              # see hold()
        for attach in SITES.values():           # every site module registered (artdata/mirror/__init__.py)
            attach(self)

    # -- lifecycle
    def start(self) -> "Mirror":
        for role, port in zip(("api", "media"), self._ports):
            srv = _Server((self.host, port), _Handler)
            srv.mirror, srv.role = self, role  # type: ignore[attr-defined]
            th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"mirror-{role}", daemon=True)
            th.start()
            self._servers.append(srv)
            self._threads.append(th)
        return self

    def hold(self, role: str, prefix: str = "/", after: int = 0, timeout: float = 60.0) -> Hold:
        """Hold back the answers under `prefix` on host `role` past the first `after` (see Hold)."""
        h = Hold(role, prefix, after, timeout)
        self.holds.append(h)
        return h

    def stop(self) -> None:
        for h in self.holds:
            h.release()
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for th in self._threads:
            th.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses
    def base(self, role: str = "api") -> str:
        srv = self._servers[0 if role == "api" else 1]
        return f"http://{self.host}:{srv.server_address[1]}"

    @property
    def met_api_base(self) -> str:
        return self.base("api") + "/public/collection/v1"

    @property
    def media_base(self) -> str:
        return self.base("media")

    @property
    def tate_table_url(self) -> str:
        return self.base("api") + "/tate/artworks.parquet"

    def max_rate(self, role: str = "api", window: float = 1.0) -> int:
        return self.logs[role].max_in_window(window)

    # -- routing
    def add_route(self, role: str, prefix: str, fn: Route) -> None:
        """Plug in a site: GET requests under `prefix` on host `role` go to fn(mirror, path, query)."""
        self.routes.insert(0, (role, prefix, fn))

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._attempts.clear()

    def _transient(self, kind: str, path: str, fraction: float) -> bool:
        if not self.faults.pick(kind, path, fraction):
            return False
        with self._lock:
            n = self._attempts.get((kind, path), 0) + 1
            self._attempts[(kind, path)] = n
        return n <= self.faults.transient_attempts

    def _check_block(self, role: str, now: float) -> bool:
        f = self.faults
        if f.block_burst <= 0 or (role == "media" and not f.block_media):
            return False
        with self._lock:
            if now < self._blocked_until[role]:
                return True
            q = self._recent[role]
            q.append(now)
            while q and q[0] < now - f.block_window:
                q.popleft()
            if len(q) > f.block_burst:
                self._blocked_until[role] = now + f.block_seconds
                self.blocks += 1
                q.clear()
                return True
        return False

    def handle(self, role: str, raw_path: str, headers: dict | None = None, body: bytes | None = None) -> Response:
        """Answer one request. Routes get the query with two extra keys: `_headers` (request
        headers) and `_body` (the POST body, None for GET)."""
        now = time.monotonic()
        if raw_path.startswith("/"):            # origin form, as clients send it: no urlsplit needed
            path, _, qs = raw_path.partition("?")
        else:
            parts = urlsplit(raw_path)
            path, qs = parts.path, parts.query
        query = parse_qs(qs) if qs else {}
        query["_headers"] = {k.lower(): v for k, v in (headers or {}).items()}
        query["_body"] = body
        for h in self.holds:
            h.admit(role, path)
        f = self.faults
        if role == "media" and f.challenge_media and path.startswith(f.challenge_media):
            resp = Response(403, CHALLENGE_PAGE, "text/html; charset=UTF-8",
                            {"cf-mitigated": "challenge", "Server": "cloudflare", "Cache-Control": "no-store"})
        elif self._check_block(role, now):
            resp = Response(403, BLOCK_PAGE, "text/html")
        elif self._transient("429", raw_path, f.too_many):
            resp = Response(429, b"Too Many Requests", "text/plain", {"Retry-After": f"{f.retry_after:g}"})
        elif self._transient("5xx", raw_path, f.server_error):
            code = (500, 502, 503)[stable_hash("code", raw_path) % 3]
            resp = Response(code, b"<html><body>Server Error</body></html>", "text/html")
        else:
            for r, prefix, fn in self.routes:
                if r == role and path.startswith(prefix):
                    resp = fn(self, path, query)
                    break
            else:
                resp = Response(404, b"<html><body>Not Found</body></html>", "text/html")
            if resp.status == 200 and self._transient("truncated", raw_path, f.truncated):
                resp = replace(resp, truncate=True)
            if f.pick("slow", raw_path, f.slow):
                resp = replace(resp, delay=f.slow_seconds)
        self.logs[role].add(now, path, resp.status)
        return resp

    # -- data
    @functools.cached_property
    def tate(self) -> pd.DataFrame:
        return self._tate_df if self._tate_df is not None else bundled_tate()

    @functools.cached_property
    def tate_by_accession(self) -> dict:
        return {str(r["accession_number"]): r for r in self.tate.to_dict("records")}

    def image(self, key: str, label: str, size: tuple[int, int], secondary: str = "", work: str | None = None) -> bytes:
        """The JPEG `key` (faults are drawn by it). `work` ("met:<id>"): the picture is that bundled work's
        own, as every museum of the mirror photographs the same objects, served at this site's size."""
        if work is None:
            data = render_jpeg(key, label, size, secondary, noise=self.image_noise)
        else:
            data = render_work(work, label, size, secondary, noise=self.image_noise)
        if self.faults.pick("corrupt", key, self.faults.corrupt_image):
            data = corrupt(data, key)
        return data


def object_response(m: Mirror, oid: str, doc) -> Response:
    """One record's JSON answer (`doc()` builds it) with the record-level faults of every API of the mirror:
    an HTML page with status 200 (`html_200`), JSON cut short (`malformed_json`)."""
    f = m.faults
    if f.pick("html_200", oid, f.html_200):
        return Response(200, b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>", "text/html")
    body = json.dumps(doc()).encode()
    if f.pick("malformed", oid, f.malformed_json):
        body = body[: len(body) // 2]
    return Response(200, body, "application/json")
