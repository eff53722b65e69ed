"""A loopback mirror of the Met Collection API, Tate's dataset and thumbnails (and plug-in sites).

Two real HTTP servers on 127.0.0.1 (an "api" host and a separate "media" host, each with its own
request log), replaying bundled CC0 metadata and serving generated JPEGs whose colour and stripe
pattern depend on the record's label, so that a model can learn from them. Faults are injected
per run (`Faults`): an HTML 403 block after a burst (lifted after a while), 429 with Retry-After,
5xx, slow answers, truncated bodies, corrupt JPEGs, 404 for withdrawn objects, objects without an
image, malformed JSON and HTML answers with status 200. Object-level faults are fixed per object
(a withdrawn object stays withdrawn); transient faults hit the first attempt(s) of a chosen
fraction of URLs, so a polite client with retries always gets through.

    with Mirror(faults=Faults(block_burst=30)) as m:
        m.met_api_base   # http://127.0.0.1:PORT/public/collection/v1
        m.max_rate("api")  # most requests seen in any 1-second window
"""
from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
from PIL import Image

# Real department ids of the Met API, keyed by the names used in the Open Access CSV.
MET_DEPARTMENTS = {
    "The American Wing": 1, "Ancient Near Eastern Art": 3, "Arms and Armor": 4,
    "Arts of Africa, Oceania, and the Americas": 5, "Asian Art": 6, "The Cloisters": 7,
    "Costume Institute": 8, "Drawings and Prints": 9, "Egyptian Art": 10, "European Paintings": 11,
    "European Sculpture and Decorative Arts": 12, "Greek and Roman Art": 13, "Islamic Art": 14,
    "Robert Lehman Collection": 15, "The Libraries": 16, "Medieval Art": 17, "Musical Instruments": 18,
    "Photographs": 19, "Modern and Contemporary Art": 21,
}
MET_ORIGINAL_SIDE = 1600   # longest side of the mirror's "original" images
MET_SMALL_SIDE = 800       # longest side of its "web-large" (primaryImageSmall) images
TATE_RENDITIONS = {"7": 128, "8": 256, "9": 730, "10": 1536}

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


def _h(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def label_colour(label: str) -> tuple[int, int, int]:
    hue = (_h("hue", label) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=256)
def render_jpeg(key: str, label: str, size: tuple[int, int], secondary: str = "", quality: int = 88,
                noise: int = 40) -> bytes:
    """A deterministic JPEG whose hue (from `label`), stripes (from `label` and `secondary`)
    and noise (from `key`) make the class learnable, in colour or in grey."""
    w, h = size
    rng = np.random.default_rng(_h("noise", key) % 2**32)
    colour = np.array(label_colour(label), dtype=np.float32)
    angle = (_h("angle", label) % 180) * np.pi / 180
    freq = 6 + _h("freq", label) % 18 + (_h("freq2", secondary) % 6 if secondary else 0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) * (2 * np.pi * freq / max(w, h))
    stripes = (np.sin(phase + (_h("phase", key) % 628) / 100) * 0.5 + 0.5)[..., None]
    img = colour * (0.55 + 0.45 * stripes) + (1 - stripes) * 30
    img += rng.integers(-noise, noise + 1, size=(h, w, 3), dtype=np.int16)
    arr = np.clip(img, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr, "RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def corrupt(data: bytes, key: str) -> bytes:
    """A damaged JPEG: cut short, or with its header garbled (chosen by key)."""
    variant = _h("corrupt", key) % 3
    if variant == 0:
        return data[: max(200, len(data) // 3)]
    if variant == 1:
        return b"\xff\xd8\xff\xe0" + bytes(_h("x", key, i) % 256 for i in range(64)) + data[600:]
    return data[:2] + b"\x00" * 300 + data[302:]


def aspect_size(key: str, longest: int) -> tuple[int, int]:
    """A deterministic landscape or portrait size with the given longest side."""
    ratio = (0.6, 0.75, 0.8, 1.0, 1.25, 1.33, 1.5)[_h("aspect", key) % 7]
    if ratio >= 1:
        return longest, max(1, round(longest / ratio))
    return max(1, round(longest * ratio)), longest


# ---------------------------------------------------------------- bundled data

def bundled_met() -> pd.DataFrame:
    with resources.files("artdata.data").joinpath("met_objects.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def bundled_tate() -> pd.DataFrame:
    with resources.files("artdata.data").joinpath("tate_artworks.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def _int_or(s, default=0) -> int:
    try:
        return int(str(s).strip())
    except (TypeError, ValueError):
        return default


def _slug(s: str) -> str:
    return "".join(c.lower() if c.isalnum() else "-" for c in s).strip("-") or "x"


class MetData:
    """The Open Access CSV rows (bundled sample or any such table) answered as the Collection API."""

    def __init__(self, table: pd.DataFrame):
        self.rows = {str(r["Object ID"]).strip(): r for r in table.to_dict("records")}
        self.ids = sorted(self.rows, key=int)

    @staticmethod
    def metadata_date(oid: str) -> str:
        d = date(2023, 1, 1) + timedelta(days=_h("mdate", oid) % 900)
        return f"{d.isoformat()}T04:05:{_h('sec', oid) % 60:02d}.123Z"

    def object(self, oid: str, media_base: str, faults: Faults) -> dict:
        r = self.rows[oid]
        dept = r.get("Department") or ""
        has_image = bool(r.get("Is Public Domain")) and not faults.pick("no_image", oid, faults.no_image)
        path = f"/CRDImages/{_slug(dept)[:3]}"
        nat = [n.strip() for n in str(r.get("Artist Nationality") or "").split("|")]
        return {
            "objectID": int(oid),
            "isHighlight": bool(r.get("Is Highlight")),
            "accessionNumber": r.get("Object Number") or "",
            "accessionYear": r.get("AccessionYear") or "",
            "isPublicDomain": bool(r.get("Is Public Domain")),
            "primaryImage": f"{media_base}{path}/original/{oid}.jpg" if has_image else "",
            "primaryImageSmall": f"{media_base}{path}/web-large/{oid}.jpg" if has_image else "",
            "additionalImages": [],
            "constituents": None,
            "department": dept,
            "objectName": r.get("Object Name") or "",
            "title": r.get("Title") or "",
            "culture": r.get("Culture") or "",
            "period": r.get("Period") or "",
            "dynasty": r.get("Dynasty") or "",
            "reign": r.get("Reign") or "",
            "artistRole": (r.get("Artist Role") or "").split("|")[0],
            "artistDisplayName": (r.get("Artist Display Name") or "").split("|")[0],
            "artistDisplayBio": (r.get("Artist Display Bio") or "").split("|")[0],
            "artistNationality": nat[0] if nat else "",
            "artistBeginDate": (r.get("Artist Begin Date") or "").split("|")[0].strip(),
            "artistEndDate": (r.get("Artist End Date") or "").split("|")[0].strip(),
            "objectDate": r.get("Object Date") or "",
            "objectBeginDate": _int_or(r.get("Object Begin Date")),
            "objectEndDate": _int_or(r.get("Object End Date")),
            "medium": r.get("Medium") or "",
            "dimensions": r.get("Dimensions") or "",
            "creditLine": r.get("Credit Line") or "",
            "city": r.get("City") or "",
            "state": r.get("State") or "",
            "county": r.get("County") or "",
            "country": r.get("Country") or "",
            "region": r.get("Region") or "",
            "subregion": r.get("Subregion") or "",
            "classification": r.get("Classification") or "",
            "rightsAndReproduction": r.get("Rights and Reproduction") or "",
            "linkResource": "",
            "metadataDate": self.metadata_date(oid),
            "repository": r.get("Repository") or "Metropolitan Museum of Art, New York, NY",
            "objectURL": r.get("Link Resource") or f"https://www.metmuseum.org/art/collection/search/{oid}",
            "tags": [{"term": t} for t in str(r.get("Tags") or "").split("|") if t] or None,
            "objectWikidata_URL": r.get("Object Wikidata URL") or "",
            "isTimelineWork": bool(r.get("Is Timeline Work")),
            "GalleryNumber": r.get("Gallery Number") or "",
        }


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
        self.add_route("api", "/public/collection/v1/", _met_routes)
        self.add_route("api", "/tate/", _tate_table_routes)
        self.add_route("media", "/CRDImages/", _met_image_route)
        self.add_route("media", "/art/images/work/", _tate_image_route)
        self.iiif_sizes: list[str] = []          # the size parameter of every IIIF image request
        self.holds: list[Hold] = []              # see hold()
        from artdata.mirror_iiif import attach as attach_iiif
        from artdata.mirror_museums import attach as attach_museums
        attach_iiif(self)
        attach_museums(self)

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
            code = (500, 502, 503)[_h("code", raw_path) % 3]
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
    def _tate_by_accession(self) -> dict:
        return {str(r["accession_number"]): r for r in self.tate.to_dict("records")}

    def image(self, key: str, label: str, size: tuple[int, int], secondary: str = "") -> bytes:
        data = render_jpeg(key, label, size, secondary, noise=self.image_noise)
        if self.faults.pick("corrupt", key, self.faults.corrupt_image):
            data = corrupt(data, key)
        return data


# ---------------------------------------------------------------- routes

def _met_routes(m: Mirror, path: str, query: dict) -> Response:
    rest = path[len("/public/collection/v1/"):].strip("/")
    if rest == "departments":
        return json_response({"departments": [{"departmentId": i, "displayName": n}
                                              for n, i in sorted(MET_DEPARTMENTS.items(), key=lambda x: x[1])]})
    if rest == "objects":
        ids = m.met.ids
        if "departmentIds" in query:
            wanted = {int(x) for x in query["departmentIds"][0].split("|") if x.strip().isdigit()}
            ids = [i for i in ids if MET_DEPARTMENTS.get(m.met.rows[i].get("Department")) in wanted]
        if "metadataDate" in query:
            since = query["metadataDate"][0]
            ids = [i for i in ids if MetData.metadata_date(i)[:10] >= since]
        return json_response({"total": len(ids), "objectIDs": [int(i) for i in ids]})
    if rest.startswith("objects/"):
        oid = rest.split("/", 1)[1]
        f = m.faults
        if oid not in m.met.rows or f.pick("withdrawn", oid, f.withdrawn):
            return json_response({"message": "Not a valid object"}, 404) if oid.isdigit() else \
                json_response({"message": "ObjectID not found"}, 404)
        return object_response(m, oid, lambda: m.met.object(oid, m.media_base, f))
    return json_response({"message": "Not found"}, 404)


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


def _met_image_route(m: Mirror, path: str, query: dict) -> Response:
    # /CRDImages/<dept>/<variant>/<id>.jpg
    parts = path.strip("/").split("/")
    if len(parts) != 4 or not parts[3].endswith(".jpg"):
        return Response(404, b"not found", "text/plain")
    variant, oid = parts[2], parts[3][:-4]
    row = m.met.rows.get(oid)
    if row is None or variant not in ("original", "web-large"):
        return Response(404, b"not found", "text/plain")
    side = MET_ORIGINAL_SIDE if variant == "original" else MET_SMALL_SIDE
    size = aspect_size(oid, side)
    data = m.image(f"met:{oid}", str(row.get("Department") or ""), size, str(row.get("Culture") or ""))
    return Response(200, data, "image/jpeg")


def _tate_image_route(m: Mirror, path: str, query: dict) -> Response:
    # /art/images/work/A/A00/A00001_8.jpg
    name = path.rsplit("/", 1)[-1]
    stem, _, ext = name.partition(".")
    acc, _, rendition = stem.rpartition("_")
    row = m._tate_by_accession.get(acc)
    if ext != "jpg" or row is None or rendition not in TATE_RENDITIONS or not row.get("thumbnailUrl"):
        return Response(404, b"<html><body>Not Found</body></html>", "text/html")
    side = TATE_RENDITIONS[rendition]
    w, h = row.get("width"), row.get("height")
    if w and h and w == w and h == h and w > 0 and h > 0:   # not NaN
        size = (side, max(1, round(side * h / w))) if w >= h else (max(1, round(side * w / h)), side)
    else:
        size = aspect_size(acc, side)
    data = m.image(f"tate:{acc}", str(row.get("medium") or ""), size, str(row.get("classification") or ""))
    return Response(200, data, "image/jpeg")


def _tate_table_routes(m: Mirror, path: str, query: dict) -> Response:
    name = path.rsplit("/", 1)[-1]
    df = m.tate.copy()
    df["thumbnailUrl"] = df["thumbnailUrl"].str.replace("http://www.tate.org.uk", m.media_base, regex=False)
    if name == "artworks.parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return Response(200, buf.getvalue(), "application/vnd.apache.parquet")
    if name == "artwork_data.csv":
        return Response(200, df.to_csv(index=False).encode(), "text/csv")
    return Response(404, b"<html><body>Not Found</body></html>", "text/html")
