"""The polite async HTTP client: per-host rate budget, block detection, adaptive backoff, retries.

* Every host (scheme://host:port) has its own budget: requests are spaced at 1/rate seconds and
  never more than `rate` are sent in any `window` (1.05 s) — so a server never sees more than
  `--rate` requests in a second from us.
* A block (HTTP 403 with an HTML page, as the Met's firewall sends, or 429) pauses all traffic to
  that host: Retry-After when given, else exponential backoff with jitter. After the pause one
  probe request goes alone; when it succeeds traffic resumes at half the rate, which then
  recovers gradually (additive increase) up to the configured rate.
* Transient failures (timeouts, resets, truncated bodies, 5xx) are retried with tenacity
  (exponential backoff with jitter); 404 and other 4xx answers are returned, never retried.
* A bot challenge (Cloudflare's managed challenge: `cf-mitigated: challenge`, or a 403 "Just a
  moment..." page) is no rate limit: it fails that request at once, and after `challenge_limit`
  of them in a row from one host (no success between) the host is given up for the run.
* Everything an answer can do to us is bounded: every body is read as a stream and refused past
  `max_bytes` (decompressed bytes count; a larger Content-Length is refused before reading), every
  request has a total `deadline` (connect + headers + body: a trickling server cannot hold a run),
  redirects are followed here one hop at a time (`max_redirects`, loops named), and no request goes
  to a loopback, private or link-local address unless the user named that host (`trusted_hosts`) or
  allowed it (`allow_private_hosts`): URLs inside answers, dumps and manifests cannot steer requests
  into the machine's network. The address is checked before any connection is made.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from artdata import ArtdataError, __version__
from artdata.harvest.transport import FastTransport

DEFAULT_USER_AGENT = (f"artdata/{__version__} (research dataset builder; "
                      "+https://github.com/artdata/artdata)")


@dataclass(frozen=True)
class ClientConfig:
    rate: float = 5.0                 # requests per second, per host, at most
    host_rates: tuple = ()            # ((netloc, rate), ...) overrides for single hosts
    concurrency: int = 8              # requests in flight at once (all hosts)
    timeout: float = 30.0             # seconds without a byte before a read times out
    deadline: float | None = None     # total seconds for one request (connect + headers + body) [10 x timeout]
    retries: int = 4                  # extra attempts after a transient failure
    backoff: float = 0.5              # first retry wait (s); doubles, with jitter
    backoff_max: float = 30.0
    block_pause: float = 30.0         # first pause after a block without Retry-After (s)
    block_pause_max: float = 600.0
    max_blocked: float = 3600.0       # give up a request blocked longer than this in total (s)
    window: float = 1.05              # sliding window of the rate budget (s)
    user_agent: str = DEFAULT_USER_AGENT
    headers: tuple = ()               # ((name, value), ...) sent with every request (e.g. AIC-User-Agent)
    max_bytes: int = 64 * 2**20       # largest answer body (decompressed) unless a caller asks for another cap
    max_redirects: int = 10
    trusted_hosts: tuple = ()         # host names/addresses the user named (--api-base, a collection URL...)
    allow_private_hosts: bool = False  # let content send requests to loopback/private/link-local addresses
    challenge_limit: int = 3          # bot challenges in a row from one host before it is given up for the run

    @property
    def total_deadline(self) -> float:
        return self.deadline if self.deadline is not None else 10 * self.timeout

    def __post_init__(self):
        if self.deadline is not None and self.deadline <= 0:
            raise ArtdataError(f"--deadline must be positive, not {self.deadline}")
        if self.max_bytes < 1:
            raise ArtdataError(f"--max-answer-bytes must be positive, not {self.max_bytes}")
        if self.rate <= 0:
            raise ArtdataError(f"--rate must be positive, not {self.rate}")
        if self.concurrency < 1:
            raise ArtdataError(f"--concurrency must be at least 1, not {self.concurrency}")


class FetchError(ArtdataError):
    """A request that failed for good (after retries); `str()` names the URL and the reason."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{reason} ({url})")
        self.url, self.reason = url, reason


class HostRefused(FetchError):
    """A request refused before any connection: the host is not one artdata may be sent to."""


class _Transient(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    blocks: int = 0
    challenges: int = 0
    refused: int = 0
    bytes: int = 0
    by_status: dict = field(default_factory=dict)


class HostBudget:
    """Rate budget and block state of one host."""

    def __init__(self, rate: float, cfg: ClientConfig):
        self.max_rate = rate
        self.rate = rate
        self.cfg = cfg
        self.min_rate = min(rate, 0.2)
        self.sent: deque[float] = deque()
        self.next_at = 0.0
        self.paused_until = 0.0
        self.blocks_in_row = 0
        self.epoch = 0
        self.need_probe = False
        self.probe_pending = False
        self.probe_done = asyncio.Event()
        self.probe_done.set()
        self.lock = asyncio.Lock()

    async def acquire(self) -> tuple[int, bool]:
        """Wait for a slot; returns (epoch, is_probe)."""
        epoch, probe, _ = await self.take()
        return epoch, probe

    def give_back(self, stamp: float) -> None:
        """Forget a slot taken at `stamp` that was not used at once (its request waited for a free connection)."""
        try:
            self.sent.remove(stamp)
        except ValueError:
            pass            # already out of the window

    async def take(self) -> tuple[int, bool, float]:
        """Wait for a slot; returns (epoch, is_probe, the slot's time)."""
        async with self.lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                if self.probe_pending:
                    await self.probe_done.wait()
                    continue
                wait = self.next_at - now
                cap = max(1, int(self.max_rate))
                while self.sent and self.sent[0] <= now - self.cfg.window:
                    self.sent.popleft()
                if len(self.sent) >= cap:
                    wait = max(wait, self.sent[0] + self.cfg.window - now)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                self.next_at = now + 1.0 / self.rate
                self.sent.append(now)
                probe = self.need_probe
                if probe:
                    self.need_probe = False
                    self.probe_pending = True
                    self.probe_done.clear()
                return self.epoch, probe, now

    def _end_probe(self, probe: bool) -> None:
        if probe:
            self.probe_pending = False
            self.probe_done.set()

    def on_success(self, probe: bool) -> None:
        if probe:
            self.blocks_in_row = 0
        self.rate = min(self.max_rate, self.rate + self.max_rate * 0.05)
        self._end_probe(probe)

    def on_block(self, epoch: int, probe: bool, retry_after: float | None) -> float:
        """Pause the host (once per block episode); returns the pause in seconds."""
        pause = 0.0
        if epoch == self.epoch or probe:
            self.epoch += 1
            self.blocks_in_row += 1
            if retry_after is not None:
                pause = retry_after
            else:
                base = min(self.cfg.block_pause * 2 ** (self.blocks_in_row - 1), self.cfg.block_pause_max)
                pause = base * random.uniform(0.8, 1.2)
            self.paused_until = max(self.paused_until, time.monotonic() + pause)
            self.rate = max(self.min_rate, self.rate / 2)
            self.need_probe = True
        self._end_probe(probe)
        return pause

    def on_other(self, probe: bool) -> None:
        self._end_probe(probe)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None   # an HTTP date: fall back to our own backoff


_CHALLENGE_MARKS = (b"just a moment", b"challenge-platform", b"cf-chl", b"cf_chl", b"attention required! | cloudflare",
                    b"checking your browser", b"ddos-guard", b"_incapsula_resource?swjiylwa")


def is_challenge(resp: httpx.Response) -> bool:
    """A bot challenge (an interactive page a script cannot pass), not a rate limit: Cloudflare's managed
    challenge says so in `cf-mitigated: challenge`; older challenge pages are recognised by their markup."""
    if resp.headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return True
    if resp.status_code in (403, 503) and "html" in resp.headers.get("content-type", ""):
        head = resp.content[:8000].lower()
        return any(m in head for m in _CHALLENGE_MARKS)
    return False


def is_block(resp: httpx.Response) -> bool:
    if resp.status_code == 429:
        return True
    if resp.status_code == 403:
        ctype = resp.headers.get("content-type", "")
        return "html" in ctype or b"incapsula" in resp.content[:2000].lower() or not resp.content
    return False


def refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local (169.254.169.254, the cloud metadata address), CGNAT, multicast,
    unspecified or reserved: anything that is not a public unicast address."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return not ip.is_global or ip.is_multicast


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def trusted_host(url_or_host: str) -> str:
    """The host part of a URL the user named, as `ClientConfig.trusted_hosts` holds it ('' for a path)."""
    if "://" in url_or_host:
        return _host_of(url_or_host) if url_or_host.startswith(("http://", "https://")) else ""
    return url_or_host.lower().strip("[]").rstrip(".")


async def _read_capped(resp: httpx.Response, cap: int, url: str) -> bytes:
    """The body of a streamed answer, decompressed, refused past `cap` bytes without holding more."""
    declared = resp.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > cap and not resp.headers.get("content-encoding"):
        raise FetchError(url, f"answer of {int(declared):,} bytes is over the {cap:,}-byte cap")
    enc = resp.headers.get("content-encoding", "").strip().lower()
    if enc in ("", "identity"):
        decomp = None
    elif enc in ("gzip", "x-gzip"):
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        decomp = None, zlib.decompressobj()       # zlib-wrapped; raw deflate tried if that fails
    else:
        raise FetchError(url, f"unsupported Content-Encoding {enc!r} (artdata asks for gzip or deflate)")
    parts: list[bytes] = []
    size = 0
    pending = b""
    async for piece in resp.aiter_raw():
        if decomp is None:
            out = piece
        else:
            if isinstance(decomp, tuple):       # deflate: decide zlib or raw on the first bytes
                pending += piece
                if len(pending) < 2:
                    continue
                decomp = (zlib.decompressobj() if (pending[0] & 0x0F) == 8 and (pending[0] << 8 | pending[1]) % 31 == 0
                          else zlib.decompressobj(-zlib.MAX_WBITS))
                piece, pending = pending, b""
            try:
                out = decomp.decompress(piece, cap + 1 - size)
            except zlib.error as exc:
                raise FetchError(url, f"answer's {enc} body is damaged: {exc}") from None
            if decomp.unconsumed_tail:
                raise FetchError(url, f"answer decompresses past the {cap:,}-byte cap")
        size += len(out)
        if size > cap:
            raise FetchError(url, f"answer is over the {cap:,}-byte cap (stopped reading)")
        parts.append(out)
    return parts[0] if len(parts) == 1 else b"".join(parts)      # one piece (the transport's usual): no copy


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, minus the urllib request/response shims built for every answer
    (about 8% of the harvest's main-process CPU) when the answer sets no cookie."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class PoliteClient:
    """`async with PoliteClient(cfg) as c: resp = await c.get(url)`."""

    def __init__(self, cfg: ClientConfig = ClientConfig()):
        self.cfg = cfg
        self.stats = ClientStats()
        self._hosts: dict[str, HostBudget] = {}
        self._sem = asyncio.Semaphore(cfg.concurrency)
        self._client: httpx.AsyncClient | None = None
        self.on_pause = None   # optional callback(host, seconds) for progress displays
        self.on_note = None    # optional callback(text): one line for the console (a host given up...)
        self._trusted = frozenset(t for t in (trusted_host(h) for h in cfg.trusted_hosts) if t)
        self._checked: dict[tuple[str, int], str | None] = {}   # (host, port) -> refusal reason or None
        self._pins: dict[tuple[str, int], str] = {}              # (host, port) -> the public address checked
        self._challenged: dict[str, int] = {}                   # host:port -> challenges in a row
        self._given_up: dict[str, str] = {}                     # host:port -> why, for the rest of the run

    async def __aenter__(self):
        # artdata's transport (a third of httpcore's CPU per image); httpx's own with ARTDATA_HTTP_TRANSPORT=httpcore,
        # whose pool is kept no larger than needed: httpcore checks every pooled connection on each request
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        # the address checked for a host is the one connected to (a DNS answer that changes in between cannot
        # slip a private address past the check)
        transport = (FastTransport(limits=limits, pinned=lambda host, port: self._pins.get((host.lower(), port)))
                     if os.environ.get("ARTDATA_HTTP_TRANSPORT") != "httpcore" else None)
        # redirects are followed in get(), one checked hop at a time; only encodings _read_capped can bound
        self._client = httpx.AsyncClient(timeout=self.cfg.timeout, limits=limits, follow_redirects=False,
                                         transport=transport,
                                         headers={"User-Agent": self.cfg.user_agent, "Accept-Encoding": "gzip, deflate",
                                                  **dict(self.cfg.headers)})
        if isinstance(getattr(self._client, "_cookies", None), httpx.Cookies):
            self._client._cookies = _Cookies()
        return self

    async def __aexit__(self, *exc):
        await self._client.aclose()

    def budget(self, url: str) -> HostBudget:
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}"
        b = self._hosts.get(host)
        if b is None:
            rate = dict(self.cfg.host_rates).get(parts.netloc, self.cfg.rate)
            b = self._hosts[host] = HostBudget(rate, self.cfg)
        return b

    async def get(self, url: str, max_bytes: int | None = None) -> httpx.Response:
        """GET with budget, block handling, retries, a total deadline and a body cap (`max_bytes`, default
        `cfg.max_bytes`). Returns 2xx/4xx (not 403-block/429) responses, redirects followed; raises FetchError
        when the request failed for good, was refused, or its answer broke a limit."""
        cap = max_bytes or self.cfg.max_bytes
        seen = [url]
        for _ in range(self.cfg.max_redirects + 1):
            resp = await self._get_one(url, cap)
            location = resp.headers.get("location") if resp.status_code in (301, 302, 303, 307, 308) else None
            if location is None:
                return resp
            nxt = urljoin(url, location.strip())
            if not nxt.startswith(("http://", "https://")):
                raise FetchError(url, f"redirect to a non-http(s) URL {nxt[:200]!r}")
            if nxt in seen:
                raise FetchError(seen[0], f"redirect loop ({' -> '.join(seen[-3:] + [nxt])})")
            seen.append(nxt)
            url = nxt
        raise FetchError(seen[0], f"more than {self.cfg.max_redirects} redirects (last: {url})")

    async def _get_one(self, url: str, cap: int) -> httpx.Response:
        if not url.startswith(("http://", "https://")):
            raise FetchError(url, "not an http(s) URL")
        await self._check_host(url)
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.cfg.retries + 1),
                    wait=wait_exponential(multiplier=self.cfg.backoff, max=self.cfg.backoff_max) + wait_random(0, self.cfg.backoff),
                    retry=retry_if_exception_type(_Transient), reraise=True):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.stats.retries += 1
                    return await self._once(url, cap)
        except _Transient as exc:
            raise FetchError(url, f"gave up after {self.cfg.retries + 1} attempts: {exc.reason}") from None
        raise AssertionError("unreachable")

    async def _check_host(self, url: str) -> None:
        """Refuse, before any connection, a host given up for this run or one whose address is loopback,
        private or link-local, unless the user named it or allowed private hosts."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        why = self._given_up.get(parts.netloc.lower())
        if why:
            self.stats.refused += 1
            raise FetchError(url, why)
        if self.cfg.allow_private_hosts or host in self._trusted:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(url, "malformed port in URL") from None
        key = (host, port)
        if key not in self._checked:
            self._checked[key] = await self._address_refusal(host, port, self._pins)
        reason = self._checked[key]
        if reason:
            self.stats.refused += 1
            raise HostRefused(url, reason)

    @staticmethod
    async def _address_refusal(host: str, port: int, pins: dict) -> str | None:
        try:
            addrs = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                return None          # unresolvable: the connection fails on its own, as a network error
            addrs = []
            for info in infos:
                try:
                    addrs.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
                except ValueError:
                    return f"host {host} resolves to an unparsable address {info[4][0]!r}"
        for ip in addrs:
            if refused_address(ip):
                where = host if str(ip) == host else f"{host} ({ip})"
                return (f"refused: {where} is a loopback, private or link-local address, which content may not "
                        "steer artdata to (name the host yourself, or --allow-private-hosts)")
        if addrs and str(addrs[0]) != host:
            pins[(host, port)] = str(addrs[0])
        return None

    async def _once(self, url: str, cap: int) -> httpx.Response:
        budget = self.budget(url)
        blocked_since = None
        deadline = self.cfg.total_deadline
        host = urlsplit(url).netloc.lower()      # the site: scheme-less host:port, as the budget keys it
        while True:
            # the host's budget first: a request waiting for its host must not hold an in-flight slot
            epoch, probe, stamp = await budget.take()
            try:
                async with self._sem:
                    # a slot is the moment a request leaves: one that waited for a free connection longer than the
                    # window's slack takes a new slot (else it could leave together with those counted after it,
                    # and the host would see more than --rate in a second)
                    if not probe and time.monotonic() - stamp > self.cfg.window - 1.0:
                        budget.give_back(stamp)
                        epoch, probe, stamp = await budget.take()
                    async with asyncio.timeout(deadline) as clock:
                        async with self._client.stream("GET", url) as streamed:
                            body = await _read_capped(streamed, cap, url)
                resp = httpx.Response(streamed.status_code, request=streamed.request, content=body,
                                      headers=[(k, v) for k, v in streamed.headers.multi_items()
                                               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")])
                self.stats.requests += 1
                self.stats.by_status[resp.status_code] = self.stats.by_status.get(resp.status_code, 0) + 1
            except TimeoutError:
                budget.on_other(probe)
                if clock.expired():
                    raise FetchError(url, f"no complete answer within the {deadline:g}s deadline (connect + "
                                          "headers + body; --deadline)") from None
                raise _Transient("timed out") from None
            except httpx.TimeoutException:
                budget.on_other(probe)
                raise _Transient("timed out") from None
            except httpx.RemoteProtocolError as exc:
                budget.on_other(probe)
                raise _Transient(f"connection broke off (truncated body?): {exc}") from None
            except httpx.TransportError as exc:
                budget.on_other(probe)
                raise _Transient(f"network error: {exc or type(exc).__name__}") from None
            except BaseException:      # cancelled (Ctrl-C), a cap broken: release the probe
                budget.on_other(probe)
                raise
            if is_challenge(resp):
                budget.on_other(probe)
                self.stats.challenges += 1
                n = self._challenged[host] = self._challenged.get(host, 0) + 1
                what = f"{host} answers with a bot challenge (HTTP {resp.status_code}"
                what += ", cf-mitigated: challenge)" if resp.headers.get("cf-mitigated") else ", a challenge page)"
                if n >= self.cfg.challenge_limit and host not in self._given_up:
                    self._given_up[host] = (f"{what}; {n} in a row, so artdata stopped asking {host} for this run "
                                            "(--retry-failed later, or images from another host)")
                    if self.on_note:
                        self.on_note(f"{what} {n} times in a row: no more requests to {host} in this run; its records "
                                     "are failed (run again with --retry-failed later)")
                raise FetchError(url, self._given_up.get(host) or f"{what}; not a rate limit, not retried")
            if is_block(resp):
                self.stats.blocks += 1
                pause = budget.on_block(epoch, probe, _retry_after(resp.headers.get("retry-after")))
                if pause and self.on_pause:
                    self.on_pause(urlsplit(url).netloc, pause)
                now = time.monotonic()
                blocked_since = blocked_since or now
                if now - blocked_since > self.cfg.max_blocked:
                    raise FetchError(url, f"blocked (HTTP {resp.status_code}) for over {self.cfg.max_blocked:g}s")
                continue
            if resp.status_code >= 500:
                budget.on_other(probe)
                raise _Transient(f"HTTP {resp.status_code}")
            budget.on_success(probe)
            if resp.status_code < 400:
                self._challenged.pop(host, None)
            self.stats.bytes += len(resp.content)
            return resp
