import asyncio
import time
from dataclasses import replace

import pytest

from artdata.harvest.client import ClientConfig, FetchError, PoliteClient
from artdata.mirror import Faults, Mirror
from conftest import assert_polite


def run(coro):
    return asyncio.run(coro)


async def _fetch_all(cfg, urls):
    # the tests name their mirror's host, as a user names --api-base (content may not lead to loopback hosts)
    cfg = replace(cfg, trusted_hosts=("127.0.0.1",))
    async with PoliteClient(cfg) as c:
        out = await asyncio.gather(*(c.get(u) for u in urls))
        return out, c.stats


def test_rate_is_never_exceeded():
    with Mirror() as m:
        urls = [f"{m.met_api_base}/objects/{i}" for i in m.met.ids[:30]]
        t = time.monotonic()
        res, _ = run(_fetch_all(ClientConfig(rate=10, concurrency=8), urls))
        assert all(r.status_code == 200 for r in res)
        assert_polite(m, "api", 10)
        assert time.monotonic() - t >= 2.0    # 30 requests at 10/s


def test_separate_budgets_per_host():
    with Mirror() as m:
        api = [f"{m.met_api_base}/objects/{i}" for i in m.met.ids[:24]]
        obj = [run(_fetch_all(ClientConfig(rate=50), api[:1]))[0][0].json()]
        media = [obj[0]["primaryImageSmall"]] * 24
        time.sleep(1.1)   # let the first request leave the 1-second window
        t = time.monotonic()
        run(_fetch_all(ClientConfig(rate=6, concurrency=8), api + media))
        # 24 + 24 requests at 6/s per host: about 4 s when the budgets are separate, 8 s if shared
        assert time.monotonic() - t < 6.5
        assert_polite(m, "api", 6)
        assert_polite(m, "media", 6)


def test_block_pauses_probes_and_recovers():
    with Mirror(faults=Faults(block_burst=8, block_window=1.0, block_seconds=1.0)) as m:
        urls = [f"{m.met_api_base}/objects/{i}" for i in m.met.ids[:40]]
        res, stats = run(_fetch_all(ClientConfig(rate=20, concurrency=8, block_pause=0.5), urls))
        assert all(r.status_code == 200 for r in res)
        assert stats.blocks >= 1 and m.blocks >= 1


def test_429_retry_after_respected():
    with Mirror(faults=Faults(too_many=1.0, retry_after=0.5)) as m:
        t = time.monotonic()
        res, stats = run(_fetch_all(ClientConfig(rate=50), [f"{m.met_api_base}/departments"]))
        assert res[0].status_code == 200 and stats.blocks == 1
        assert time.monotonic() - t >= 0.5


def test_transient_errors_retried_and_404_not():
    f = Faults(server_error=1.0, truncated=0.0, transient_attempts=2)
    with Mirror(faults=f) as m:
        res, stats = run(_fetch_all(ClientConfig(rate=50, backoff=0.01, backoff_max=0.05),
                                    [f"{m.met_api_base}/departments"]))
        assert res[0].status_code == 200 and stats.retries == 2
    with Mirror() as m:
        res, stats = run(_fetch_all(ClientConfig(rate=50), [f"{m.met_api_base}/objects/1"]))
        assert res[0].status_code == 404 and stats.retries == 0 and stats.requests == 1


def test_gives_up_with_url_in_message():
    with Mirror(faults=Faults(server_error=1.0, transient_attempts=100)) as m:
        url = f"{m.met_api_base}/departments"
        with pytest.raises(FetchError, match=r"gave up after 3 attempts: HTTP 5\d\d.*departments"):
            run(_fetch_all(ClientConfig(rate=50, retries=2, backoff=0.01, backoff_max=0.02), [url]))


def test_user_agent_identifies_and_can_be_overridden():
    seen = []
    with Mirror() as m:
        # the request handler sees headers; record them through a route
        import artdata.mirror.server as mm
        orig = mm._Handler.do_GET

        def spy(self):
            seen.append(self.headers.get("User-Agent"))
            return orig(self)
        mm._Handler.do_GET = spy
        try:
            run(_fetch_all(ClientConfig(), [f"{m.met_api_base}/departments"]))
            run(_fetch_all(ClientConfig(user_agent="me/1.0"), [f"{m.met_api_base}/departments"]))
        finally:
            mm._Handler.do_GET = orig
    assert seen[0].startswith("artdata/") and seen[1] == "me/1.0"
