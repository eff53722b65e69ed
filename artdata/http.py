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
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from artdata import ArtdataError, __version__
from artdata.transport import FastTransport

DEFAULT_USER_AGENT = (f"artdata/{__version__} (research dataset builder; "
                      "+https://github.com/artdata/artdata)")


@dataclass(frozen=True)
class ClientConfig:
    rate: float = 5.0                 # requests per second, per host, at most
    host_rates: tuple = ()            # ((netloc, rate), ...) overrides for single hosts
    concurrency: int = 8              # requests in flight at once (all hosts)
    timeout: float = 30.0
    retries: int = 4                  # extra attempts after a transient failure
    backoff: float = 0.5              # first retry wait (s); doubles, with jitter
    backoff_max: float = 30.0
    block_pause: float = 30.0         # first pause after a block without Retry-After (s)
    block_pause_max: float = 600.0
    max_blocked: float = 3600.0       # give up a request blocked longer than this in total (s)
    window: float = 1.05              # sliding window of the rate budget (s)
    user_agent: str = DEFAULT_USER_AGENT
    headers: tuple = ()               # ((name, value), ...) sent with every request (e.g. AIC-User-Agent)
    max_bytes: int = 200_000_000

    def __post_init__(self):
        if self.rate <= 0:
            raise ArtdataError(f"--rate must be positive, not {self.rate}")
        if self.concurrency < 1:
            raise ArtdataError(f"--concurrency must be at least 1, not {self.concurrency}")


class FetchError(ArtdataError):
    """A request that failed for good (after retries); `str()` names the URL and the reason."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{reason} ({url})")
        self.url, self.reason = url, reason


class _Transient(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    blocks: int = 0
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
                return self.epoch, probe

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


def is_block(resp: httpx.Response) -> bool:
    if resp.status_code == 429:
        return True
    if resp.status_code == 403:
        ctype = resp.headers.get("content-type", "")
        return "html" in ctype or b"incapsula" in resp.content[:2000].lower() or not resp.content
    return False


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

    async def __aenter__(self):
        # artdata's transport (a third of httpcore's CPU per image); httpx's own with ARTDATA_HTTP_TRANSPORT=httpcore,
        # whose pool is kept no larger than needed: httpcore checks every pooled connection on each request
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        transport = FastTransport(limits=limits) if os.environ.get("ARTDATA_HTTP_TRANSPORT") != "httpcore" else None
        self._client = httpx.AsyncClient(timeout=self.cfg.timeout, limits=limits, follow_redirects=True,
                                         transport=transport, headers={"User-Agent": self.cfg.user_agent, **dict(self.cfg.headers)})
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

    async def get(self, url: str) -> httpx.Response:
        """GET with budget, block handling and retries. Returns 2xx/3xx/4xx (not 403-block/429)
        responses; raises FetchError when the request failed for good."""
        if not url.startswith(("http://", "https://")):
            raise FetchError(url, "not an http(s) URL")
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.cfg.retries + 1),
                    wait=wait_exponential(multiplier=self.cfg.backoff, max=self.cfg.backoff_max) + wait_random(0, self.cfg.backoff),
                    retry=retry_if_exception_type(_Transient), reraise=True):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.stats.retries += 1
                    return await self._once(url)
        except _Transient as exc:
            raise FetchError(url, f"gave up after {self.cfg.retries + 1} attempts: {exc.reason}") from None
        raise AssertionError("unreachable")

    async def _once(self, url: str) -> httpx.Response:
        budget = self.budget(url)
        blocked_since = None
        while True:
            # the host's budget first: a request waiting for its host must not hold an in-flight slot
            epoch, probe = await budget.acquire()
            try:
                async with self._sem:
                    resp = await self._client.get(url)
                self.stats.requests += 1
                self.stats.by_status[resp.status_code] = self.stats.by_status.get(resp.status_code, 0) + 1
            except httpx.TimeoutException:
                budget.on_other(probe)
                raise _Transient("timed out") from None
            except httpx.RemoteProtocolError as exc:
                budget.on_other(probe)
                raise _Transient(f"connection broke off (truncated body?): {exc}") from None
            except httpx.TransportError as exc:
                budget.on_other(probe)
                raise _Transient(f"network error: {exc or type(exc).__name__}") from None
            except BaseException:      # cancelled (Ctrl-C) while waiting or fetching: release the probe
                budget.on_other(probe)
                raise
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
            self.stats.bytes += len(resp.content)
            return resp
