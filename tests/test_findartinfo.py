"""findartinfo: parsers, spider callbacks on saved pages, each pipeline alone, full crawls of the mirror."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Request
from scrapy.utils.test import get_crawler

from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.paths import Home
from artdata.spiders import parsing as P
from artdata.spiders.items import SaleItem
from artdata.mirror.findartinfo import NO_DATING_SALE, SHIFTED_SALE, attach
from artdata.spiders.pipelines import CleanPipeline, DedupePipeline, ManifestPipeline, ValidatePipeline
from artdata.spiders.spiders.findartinfo import FindartinfoSpider

FIX = Path(__file__).parent / "fixtures" / "findartinfo"
BASE = "https://www.findartinfo.com"


# ---------------------------------------------------------------- parsers

@pytest.mark.parametrize("text,amount,currency,unsold", [
    ("12,000 USD", 12000, "USD", False), ("1.200 EUR", 1200, "EUR", False), ("£3,400", 3400, "GBP", False),
    ("Unsold", None, None, True), ("$ 950", 950, "USD", False), ("1.200,50 EUR", 1200.5, "EUR", False),
    ("3,400.75 USD", 3400.75, "USD", False), ("bought in", None, None, True), ("", None, None, None),
    ("CHF 2'500", 2500, "CHF", False),
])
def test_parse_price(text, amount, currency, unsold):
    assert P.parse_price(text) == {"amount": amount, "currency": currency, "unsold": unsold}


def test_parse_estimate():
    assert P.parse_estimate("1,000 - 1,500 USD") == {"low": 1000, "high": 1500, "currency": "USD"}
    assert P.parse_estimate("£2,000 - £3,000") == {"low": 2000, "high": 3000, "currency": "GBP"}
    assert P.parse_estimate("7.200 - 10.800 EUR") == {"low": 7200, "high": 10800, "currency": "EUR"}
    assert P.parse_estimate("500 USD") == {"low": 500, "high": 500, "currency": "USD"}
    assert P.parse_estimate("") == {"low": None, "high": None, "currency": None}


@pytest.mark.parametrize("text,out", [
    ("65 x 81 cm", {"height": 65, "width": 81, "unit": "cm"}),
    ("25 1/2 x 32 in.", {"height": 25.5, "width": 32, "unit": "in"}),
    ("65.5 x 81,2 cm", {"height": 65.5, "width": 81.2, "unit": "cm"}),
    ("12 x 9 inches", {"height": 12, "width": 9, "unit": "in"}),
    ("", {"height": None, "width": None, "unit": None}),
])
def test_parse_size(text, out):
    assert P.parse_size(text) == out


@pytest.mark.parametrize("text,year", [
    ("c. 1900", 1900), ("1890s", 1895), ("19th century", 1850), ("early 20th century", 1915),
    ("late 18th century", 1785), ("1880-1890", 1885), ("circa 1650", 1650), ("", None), ("undated", None),
])
def test_approximate_year(text, year):
    assert P.approximate_year(text) == year


@pytest.mark.parametrize("text,value", [("Signed", True), ("Not signed", False), ("Yes", True), ("No", False),
                                        ("Unsigned", False), ("signed lower right", True), ("", None)])
def test_yes_no(text, value):
    assert P.parse_yes_no(text) == value


def test_dates_and_life():
    assert P.parse_date("05 Jun 2016") == "2016-06-05" and P.parse_date("2014-07-20") == "2014-07-20"
    assert P.parse_date("Oil on canvas") is None
    assert P.parse_life("(1840 - 1926)") == (1840, 1926) and P.parse_life("(b. 1950)") == (1950, None)


# ---------------------------------------------------------------- spider callbacks on saved pages

def page(name, url):
    return HtmlResponse(url=url, body=(FIX / name).read_bytes(), encoding="utf-8", request=Request(url))


def spider(**kw):
    s = FindartinfoSpider(base_url=BASE, **kw)
    s.crawler = get_crawler(FindartinfoSpider)
    return s


def test_parse_index_follows_artists_and_pager():
    out = list(spider().parse_index(page("index_A_1.html", f"{BASE}/english/A/browse-by-artist.html"), page=1))
    urls = [r.url for r in out]
    artists = [u for u in urls if "/list-prices-by-artist/" in u and "/private/" not in u]
    assert len(artists) == 8 and all(u.startswith(f"{BASE}/english/list-prices-by-artist/10") for u in artists)
    assert f"{BASE}/english/A/browse-by-artist/page/2.html" in urls
    last = list(spider().parse_index(page("index_A_2.html", f"{BASE}/english/A/browse-by-artist/page/2.html"), page=2))
    assert not any("/page/3" in r.url for r in last) and len(last) == 3
    pics = list(spider(pictures_only=True).parse_index(page("index_A_1.html", f"{BASE}/english/A/browse-by-artist.html"), page=1))
    assert all("/list-prices-has-art-work-by-artist/" in r.url for r in pics if "price" in r.url and "/private/" not in r.url)


def test_parse_price_list_rows_pager_and_missing_cell():
    url = f"{BASE}/english/list-prices-by-artist/1001/x.html"
    out = list(spider().parse_price_list(page("prices_1001_1.html", url), page=1))
    sales = [r for r in out if "/price-info/" in r.url]
    nxt = [r for r in out if "/page/2" in r.url]
    assert len(sales) == 10 and len(nxt) == 1
    assert nxt[0].url == f"{BASE}/english/list-prices-by-artist/1001/x/page/2.html"
    artist = sales[0].cb_kwargs["artist"]
    assert artist["artist_id"] == "1001" and artist["birth_year"] and artist["nationality"]
    listings = {r.url.split("/")[-2]: r.cb_kwargs["listing"] for r in sales}
    assert listings[SHIFTED_SALE]["cells"] == 4 and listings[SHIFTED_SALE]["expected"] == 5
    assert all(v["cells"] == 5 for k, v in listings.items() if k != SHIFTED_SALE)
    assert spider(max_pages=1)._more_pages(page("prices_1001_1.html", url), 1) is False


def _sale(name, sid):
    url = f"{BASE}/english/price-info/{sid}/main.html"
    items = list(spider().parse_sale(page(name, url), artist={"artist_id": "1000", "name": "X"},
                                     listing={"cells": 5, "expected": 5}))
    assert len(items) == 1
    return items[0]


def test_parse_sale_page_fields_and_image():
    it = _sale("sale_100004.html", "100004")
    assert it["sale_id"] == "100004" and it["price"] == "9.000 EUR" and it["estimate"] == "7.200 - 10.800 EUR"
    assert it["price_with_premium"] == "10.800 EUR" and it["signed"] in ("Signed", "Not signed")
    assert it["size"] == "23 1/2 x 62 in." and it["dating"] == "1875" and it["date_sold"] == "05 Jun 2016"
    assert it["image_url"].startswith("https://media.example/images/artwork/") and "Content/Images" not in it["image_url"]
    unsold = _sale("sale_100109_unsold.html", "100109")
    assert unsold["price"] == "Unsold" and "price_with_premium" not in unsold
    nod = _sale(f"sale_{NO_DATING_SALE}_no_dating.html", NO_DATING_SALE)
    assert "dating" not in nod and nod["title"]


# ---------------------------------------------------------------- pipelines on plain items

def _crawler():
    return get_crawler(FindartinfoSpider)


def plain(**kw):
    base = dict(sale_id="1", title="Harbour", date_sold="2014-07-20", size="65 x 81 cm", medium="Oil on canvas",
                signed="Signed", dating="c. 1900", price="12,000 USD", estimate="10,000 - 15,000 USD",
                listing={"cells": 5, "expected": 5, "price": "12,000 USD"}, image_url=None)
    base.update(kw)
    return SaleItem(**base)


def test_clean_pipeline():
    it = CleanPipeline().process_item(plain())
    p = it["parsed"]
    assert (p["price"], p["currency"], p["unsold"]) == (12000, "USD", False)
    assert (p["estimate_low"], p["estimate_high"]) == (10000, 15000)
    assert (p["height"], p["width"], p["unit"]) == (65, 81, "cm") and p["signed"] is True and p["date_begin"] == 1900
    assert p["sale_date"] == "2014-07-20"
    unsold = CleanPipeline().process_item(plain(price="Unsold", listing={"cells": 5, "expected": 5}))["parsed"]
    assert unsold["unsold"] is True and unsold["price"] is None and unsold["currency"] == "USD"


@pytest.mark.parametrize("kw,reason", [
    (dict(price=""), "no price"),
    (dict(price="12,000", estimate=""), "price without currency"),
    (dict(listing={"cells": 4, "expected": 5}), "cells shifted"),
    (dict(date_sold="Oil on canvas"), "cells shifted"),
    (dict(listing={"cells": 5, "expected": 5, "price": "9,000 USD"}), "listing and sale page disagree"),
])
def test_validate_drops_and_counts(kw, reason):
    crawler = _crawler()
    it = CleanPipeline().process_item(plain(**kw))
    with pytest.raises(DropItem, match=reason):
        ValidatePipeline(crawler).process_item(it)
    assert crawler.stats.get_value(f"artdata/dropped/{reason}") == 1


def test_validate_keeps_good_and_unsold():
    v = ValidatePipeline(_crawler())
    assert v.process_item(CleanPipeline().process_item(plain()))
    assert v.process_item(CleanPipeline().process_item(plain(price="Unsold", listing={"cells": 5, "expected": 5})))


def test_dedupe():
    crawler = _crawler()
    d = DedupePipeline(crawler)
    d.process_item(plain(sale_id="7"))
    with pytest.raises(DropItem, match="duplicate"):
        d.process_item(plain(sale_id="7"))
    assert crawler.stats.get_value("artdata/dropped/duplicate") == 1


def test_manifest_pipeline_writes_records(tmp_path):
    crawler = get_crawler(FindartinfoSpider, settings_dict={
        "ARTDATA_JOURNAL": str(tmp_path / "j.jsonl"), "ARTDATA_MANIFESTS": str(tmp_path / "m"),
        "ARTDATA_MANIFEST": "lots"})
    mp = ManifestPipeline.from_crawler(crawler)
    mp.open_spider()
    for i in range(3):
        mp.process_item(CleanPipeline().process_item(plain(sale_id=str(i))))
    mp.close_spider()
    m = load(tmp_path / "m", "lots")
    rows = m.table().to_pylist()
    assert [r["source_id"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["price"] == 12000 and rows[0]["currency"] == "USD" and rows[0]["status"] == "pending"
    assert json.loads(rows[0]["extra"])["unit"] == "cm"


# ---------------------------------------------------------------- full crawls of the mirror

def crawl(m, home, *extra, env=None, timeout=240):
    cmd = [sys.executable, "-m", "artdata", "crawl", "findartinfo", "--base-url", m.base("api"), "--delay", "0",
           "--concurrency", "8", "--image-size", "48", "--home", str(home.root), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy())


def expected(site, letters="A"):
    sales = [s for l in letters for a in site.by_letter[l] for s in a.sales]
    return {s.sale_id for s in sales} - {SHIFTED_SALE}


@pytest.fixture
def fai_mirror():
    m = Mirror().start()
    site = attach(m)
    yield m, site
    m.stop()


def test_full_crawl(fai_mirror, tmp_path):
    m, site = fai_mirror
    home = Home(tmp_path)
    r = crawl(m, home, "--letters", "A")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "dropped: cells shifted 1" in r.stderr and "manifest findartinfo@" in r.stdout
    assert "— done" in r.stderr and "finished: finished" not in r.stderr
    ref = r.stdout.split("manifest ", 1)[1].split()[0]
    assert f"-> {home.manifests / 'findartinfo' / ref.split('@')[1]}" in r.stdout     # where it is, as other crawls say
    man = load(home.manifests, "findartinfo")
    df = man.to_pandas()
    assert set(df.source_id) == expected(site) and not df.source_id.duplicated().any()
    assert man.card["lineage"]["dropped"] == {"cells shifted": 1}
    unsold = df[df.unsold.fillna(False)]
    assert len(unsold) >= 1 and unsold.price.isna().all()
    nod = df[df.source_id == NO_DATING_SALE].iloc[0]
    assert nod.date_text is None or pd.isna(nod.date_text)
    with_pic = {s for s in expected(site) if site.sales[s].has_picture}
    assert set(df[df.status == "ok"].source_id) == with_pic
    assert set(df[df.status == "no_image"].source_id) == expected(site) - with_pic
    assert m.logs["api"].count(prefix="/english/private/") == 0          # robots.txt obeyed
    assert m.logs["api"].count(prefix="/robots.txt") >= 1
    assert set(df.currency) == {"USD", "EUR", "GBP"}


def test_crawl_survives_403_burst(tmp_path):
    with Mirror(faults=Faults(block_burst=15, block_window=1.0, block_seconds=1.0)) as m:
        site = attach(m)
        home = Home(tmp_path)
        r = crawl(m, home, "--letters", "B", "--max-pages", "1")
        assert r.returncode == 0, r.stderr[-3000:]
        assert m.blocks >= 1 and m.logs["api"].count(403) >= 1
        df = load(home.manifests, "findartinfo").to_pandas()
        want = {s.sale_id for a in site.by_letter["B"][:8] for s in a.sales[:10]}
        assert set(df.source_id) == want


def test_resume_after_interrupt(tmp_path):
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.05)) as m:
        site = attach(m)
        # past 20 sale pages each answer waits 1 s: the other ~100 would take a minute, so the crawl is
        # still going when Ctrl-C comes (Scrapy lets the pages in flight finish: a timeout, not a hard hold)
        hold = m.hold("api", "/english/price-info/", after=20, timeout=1.0)
        home = Home(tmp_path)
        cmd = [sys.executable, "-m", "artdata", "crawl", "findartinfo", "--base-url", m.base("api"), "--letters", "A",
               "--delay", "0", "--concurrency", "2", "--metadata-only", "--home", str(home.root)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        journal = None
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                found = list(home.harvest.glob("findartinfo-*/journal.jsonl")) if home.harvest.exists() else []
                if found and sum(1 for _ in open(found[0])) >= 15:
                    journal = found[0]
                    break
                time.sleep(0.05)
            assert journal is not None
            hold.wait_held()
            proc.send_signal(signal.SIGINT)          # Ctrl-C: Scrapy stops gracefully, JOBDIR keeps the queue
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "Interrupted" in err and proc.returncode == 130       # as every crawl command answers Ctrl-C
        done = {json.loads(l)["source_id"] for l in open(journal)}
        assert 15 <= len(done) < len(expected(site)) - 20
        hold.release()
        before = {p: n for p, n in _sale_requests(m).items()}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, r.stderr[-3000:]
        df = load(home.manifests, "findartinfo").to_pandas()
        assert set(df.source_id) == expected(site) and not df.source_id.duplicated().any()
        after = _sale_requests(m)
        refetched = [s for s in done if after.get(s, 0) > before.get(s, 0)]
        assert len(refetched) <= 4          # at most the requests in flight at the interrupt


def _sale_requests(m):
    from collections import Counter
    return Counter(p.split("/")[3] for _, p, _ in m.logs["api"].entries if "/price-info/" in p)


def test_login_from_environment_never_stored(tmp_path):
    with Mirror() as m:
        attach(m, password="s3cret-Pa55")
        home = Home(tmp_path)
        env = dict(os.environ, FINDARTINFO_USER="demo", FINDARTINFO_PASSWORD="s3cret-Pa55")
        r = crawl(m, home, "--letters", "C", "--max-pages", "1", "--metadata-only", "--http-cache", env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        df = load(home.manifests, "findartinfo").to_pandas()
        sold = df[~df.unsold.fillna(False)]
        assert sold.price_with_premium.notna().all()
        assert "s3cret-Pa55" not in r.stdout + r.stderr
        for f in home.root.rglob("*"):
            if f.is_file():
                assert b"s3cret-Pa55" not in f.read_bytes(), f


# ---------------------------------------------------------------- the password never reaches the disk

PASSWORD = "s3cr&t Pa55/é"          # url-encoded in the POST body: s3cr%26t+Pa55%2F%C3%A9


def _secret_forms(secret: str) -> set[bytes]:
    """The password as it could be written: raw (UTF-8, Latin-1), url-encoded (form or path style), base64."""
    from base64 import b64encode
    from urllib.parse import quote, quote_plus
    forms = {secret.encode(), secret.encode("latin-1"), quote_plus(secret).encode(), quote(secret).encode(),
             quote(secret, safe="").encode()}
    return forms | {b64encode(f) for f in forms}


def _files_holding(root: Path, secret: str) -> list[str]:
    """Every file under `root` (recursively, binary) holding the password in any form, also inside a
    gzip/zlib/bz2/xz-compressed file and inside a pickle (Scrapy's queues and cache are pickles)."""
    import bz2
    import gzip
    import lzma
    import pickle
    import zlib
    forms = _secret_forms(secret)
    hits = []
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.is_symlink():
            continue
        data = f.read_bytes()
        seen = [data]
        for unpack in (gzip.decompress, zlib.decompress, bz2.decompress, lzma.decompress):
            try:
                seen.append(unpack(data))
            except Exception:
                pass
        for blob in list(seen):
            try:
                seen.append(repr(pickle.loads(blob)).encode("utf-8", "backslashreplace"))
            except Exception:
                pass
        if any(form in blob for blob in seen for form in forms):
            hits.append(str(f.relative_to(root)))
    return hits


def test_secret_forms_are_found(tmp_path):
    """The search below can fail: it finds the password raw, url-encoded, pickled and compressed."""
    import gzip
    import pickle
    from urllib.parse import urlencode
    body = urlencode({"UserName": "demo", "Password": PASSWORD}).encode()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "q00000").write_bytes(b"\x00\x01" + pickle.dumps({"body": body, "method": "POST"}))
    (tmp_path / "cache.gz").write_bytes(gzip.compress(body))
    (tmp_path / "log").write_text(f"password={PASSWORD}\n")
    (tmp_path / "clean").write_bytes(b"UserName=demo&Password=other")
    assert _files_holding(tmp_path, PASSWORD) == ["a/q00000", "cache.gz", "log"]


def _login_request(monkeypatch):
    from artdata.mirror.findartinfo import FindartinfoSite
    monkeypatch.setenv("FINDARTINFO_USER", "demo")
    monkeypatch.setenv("FINDARTINFO_PASSWORD", PASSWORD)
    url = f"{BASE}/login.html"
    form = HtmlResponse(url=url, body=FindartinfoSite(letters="A", artists_per_letter=1).login_page().encode(),
                        encoding="utf-8", request=Request(url))
    (req,) = list(spider().login(form))
    return req


def test_login_request_is_built_from_the_form_and_never_serialized(monkeypatch):
    from urllib.parse import parse_qs
    from scrapy.downloadermiddlewares.retry import get_retry_request
    from artdata.spiders.spiders.findartinfo import LoginRequest
    req = _login_request(monkeypatch)
    assert isinstance(req, LoginRequest) and req.method == "POST" and req.url == f"{BASE}/login.html"
    assert parse_qs(req.body.decode()) == {"__RequestVerificationToken": ["tok-123"], "UserName": ["demo"],
                                           "Password": [PASSWORD]}
    assert req.meta["dont_cache"] and PASSWORD not in repr(req)
    retry = get_retry_request(req, spider=spider(), reason="503 Service Unavailable")
    for r in (req, retry):                                  # a retry keeps the class: kept in memory too
        assert isinstance(r, LoginRequest)
        with pytest.raises(ValueError, match="kept in memory"):
            r.to_dict(spider=spider())
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(req)


def test_scrapy_scheduler_keeps_the_login_out_of_the_job_folder(tmp_path, monkeypatch):
    """Scrapy's own scheduler with a JOBDIR: the login (and its retry) goes to the memory queue, a page to
    the disk queue; closed (as on Ctrl-C) the job folder keeps the page, not the login."""
    from scrapy.core.scheduler import Scheduler
    from scrapy.downloadermiddlewares.retry import get_retry_request
    login = _login_request(monkeypatch)
    # the disk-or-memory choice is the Scheduler's, whatever the priority queue (the default one needs an engine)
    crawler = get_crawler(FindartinfoSpider, settings_dict={"JOBDIR": str(tmp_path / "job"),
                                                            "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue"})
    sp = FindartinfoSpider(base_url=BASE)
    sp.crawler, crawler.spider = crawler, sp
    sched = Scheduler.from_crawler(crawler)
    sched.open(sp)
    page = Request(f"{BASE}/english/C/browse-by-artist.html", callback=sp.parse_index, cb_kwargs={"page": 1})
    assert sched.enqueue_request(get_retry_request(login, spider=sp, reason="503"))
    assert sched.enqueue_request(page)
    assert crawler.stats.get_value("scheduler/enqueued/memory") == 1
    assert crawler.stats.get_value("scheduler/enqueued/disk") == 1
    sched.close("shutdown")
    assert _files_holding(tmp_path, PASSWORD) == []
    again = Scheduler.from_crawler(crawler)                 # the resumed job: the page, and only the page
    again.open(sp)
    assert len(again) == 1 and again.next_request().url == page.url
    again.close("finished")


def test_redis_scheduler_keeps_the_login_out_of_redis(monkeypatch):
    """`--redis-url`: the login waits in this process's memory; pages go to the shared Redis queue
    (here a recorder standing in for the Redis client: what would be sent)."""
    from artdata.spiders.redis_scheduler import RedisScheduler

    class Recorder:
        def __init__(self):
            self.sent = []

        def execute_command(self, *args):
            self.sent.append(args)

        def zcard(self, key):
            return sum(a[0] == "ZADD" for a in self.sent)

    class NoDupes:
        def request_seen(self, request):
            return False

    login = _login_request(monkeypatch)
    server = Recorder()
    sched = RedisScheduler(server=server, persist=True, dupefilter=NoDupes())
    sp = spider()
    sched.open(sp)
    page = Request(f"{BASE}/english/C/browse-by-artist.html", callback=sp.parse_index, cb_kwargs={"page": 1})
    assert sched.enqueue_request(login) and sched.enqueue_request(page)
    assert len(server.sent) == 1 and page.url.encode() in server.sent[0][-1]
    assert not any(f in repr(server.sent).encode() for f in _secret_forms(PASSWORD))
    assert len(sched) == 2 and sched.has_pending_requests()
    assert sched.next_request() is login and len(sched) == 1


class _FlakyLogin:
    """The mirror's login, whose POST answers 503 with Retry-After while `down` is set (a GET, the form,
    always works); counts the POST attempts."""

    def __init__(self, m: Mirror, retry_after: float):
        self.login = next(fn for role, prefix, fn in m.routes if role == "api" and prefix == "/login.html")
        self.retry_after, self.down, self.posts, self.ok = retry_after, True, 0, 0
        m.add_route("api", "/login.html", self)

    def __call__(self, m, path, q):
        from artdata.mirror import Response
        if q.get("_body") is None:
            return self.login(m, path, q)
        self.posts += 1
        if self.down:
            return Response(503, b"<html><body>Service Unavailable</body></html>", "text/html",
                            {"Retry-After": f"{self.retry_after:g}"})
        resp = self.login(m, path, q)
        self.ok += "Set-Cookie" in resp.headers
        return resp


def _wait_for(cond, what: str, timeout: float = 90.0, proc=None):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the crawl ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:g}s")
        time.sleep(0.02)


def test_ctrl_c_while_the_login_is_retried_writes_no_password(tmp_path):
    """Ctrl-C while the login POST is being retried (503 + Retry-After): neither the job folder (Scrapy's
    pickled request queue), the HTTP cache nor anything else under the home holds the password, in any
    form; the same command then logs in and crawls."""
    with Mirror() as m:
        attach(m, password=PASSWORD)
        flaky = _FlakyLogin(m, retry_after=4)     # 6 retries: a window of 20 s after the second attempt
        home = Home(tmp_path / "home")
        env = dict(os.environ, FINDARTINFO_USER="demo", FINDARTINFO_PASSWORD=PASSWORD)
        cmd = [sys.executable, "-m", "artdata", "crawl", "findartinfo", "--base-url", m.base("api"),
               "--letters", "C", "--max-pages", "1", "--metadata-only", "--http-cache", "--delay", "0",
               "--concurrency", "4", "--home", str(home.root)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            _wait_for(lambda: flaky.posts >= 2, "retried login POST", proc=proc)   # the first retry went out
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert flaky.posts < 7, "the login gave up before the Ctrl-C: the crawl was not interrupted mid-retry"
        assert "stopped (shutdown)" in out + err and "Interrupted" in out + err, out + err
        assert proc.returncode == 130
        assert m.logs["api"].count(prefix="/english/") == 0            # still logging in when stopped
        jobs = list(home.harvest.glob("findartinfo-*/scrapy"))
        assert len(jobs) == 1 and (jobs[0] / "requests.queue").is_dir()  # the job folder Scrapy resumes from
        assert PASSWORD not in out + err and _files_holding(home.root, PASSWORD) == []

        flaky.down = False
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
        assert r.returncode == 0, r.stderr[-3000:]
        assert flaky.ok == 1
        df = load(home.manifests, "findartinfo").to_pandas()
        sold = df[~df.unsold.fillna(False)]
        assert len(sold) and sold.price_with_premium.notna().all()          # the paid details: logged in
        assert PASSWORD not in r.stdout + r.stderr and _files_holding(home.root, PASSWORD) == []
        assert (home.root / "httpcache").is_dir()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real Redis on loopback (Debian's redis-server, installed with apt when missing; needs root)."""
    import socket
    from conftest import debian_tool
    exe = debian_tool("redis-server", "redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(d)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}", client
    proc.terminate()
    proc.wait(timeout=10)


def test_crawl_through_scrapy_redis(redis_server, tmp_path):
    url, client = redis_server
    with Mirror() as m:
        site = attach(m)
        home = Home(tmp_path)
        r = crawl(m, home, "--letters", "B", "--max-pages", "1", "--metadata-only", "--redis-url", url)
        assert r.returncode == 0, r.stderr[-3000:]
        df = load(home.manifests, "findartinfo").to_pandas()
        want = {s.sale_id for a in site.by_letter["B"][:8] for s in a.sales[:10]}
        assert set(df.source_id) == want and not df.source_id.duplicated().any()
        # the shared queue's dupe filter lives in Redis, holding every request seen
        keys = [k.decode() for k in client.keys("findartinfo:*")]
        assert "findartinfo:dupefilter" in keys
        assert client.scard("findartinfo:dupefilter") >= len(want)


def test_the_fetching_options_reach_scrapy(fai_mirror, tmp_path):
    """--limit, --user-agent, --retries and --timeout, named as on every other crawl command, set Scrapy's
    CLOSESPIDER_ITEMCOUNT, USER_AGENT, RETRY_TIMES and DOWNLOAD_TIMEOUT."""
    m, site = fai_mirror
    import artdata.mirror.server as server
    seen = []
    orig = server.Mirror.handle

    def spy(self, role, raw_path, headers=None, body=None):
        seen.append((headers or {}).get("User-Agent"))
        return orig(self, role, raw_path, headers=headers, body=body)
    server.Mirror.handle = spy
    try:
        home = Home(tmp_path)
        r = crawl(m, home, "--letters", "A", "--metadata-only", "--limit", "5", "--user-agent", "lab-bot/1.0",
                  "--retries", "1", "--timeout", "10", "--concurrency", "1")
    finally:
        server.Mirror.handle = orig
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stopped at --limit 5" in r.stderr
    df = load(home.manifests, "findartinfo").to_pandas()
    assert 5 <= len(df) < len(expected(site))          # a few in flight may still land, never the whole letter
    assert "lab-bot/1.0" in seen
