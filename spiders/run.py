"""Run the findartinfo crawl in-process (what `artdata crawl findartinfo` calls), with a live
display and the final stats: pages, items, drops by reason, images, manifest."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from artdata import ArtdataError
from artdata.paths import Home


def parse_letters(value: str) -> list[str]:
    """--letters: 'A,B', 'A B' or 'ABM' -> ['A', 'B', 'M']; anything but letters A-Z is an error."""
    out: list[str] = []
    for token in (value or "").replace(",", " ").split():
        if not token.isascii() or not token.isalpha():
            raise ArtdataError(f"--letters {value!r}: artist index letters A-Z, as A,B,C or ABC")
        for c in token.upper():
            if c not in out:
                out.append(c)
    if not out:
        raise ArtdataError(f"--letters {value!r}: give at least one letter A-Z")
    return out


def job_dir(home: Home, options: dict) -> Path:
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
    return home.harvest / f"findartinfo-{key}"


def build_settings(home: Home, jobdir: Path, *, manifest: str, images: bool, image_size: int, http_cache: bool,
                   redis_url: str | None, concurrency: int | None, delay: float | None, lineage: dict,
                   log_level: str = "WARNING"):
    from scrapy.settings import Settings
    from artdata.spiders import settings as defaults
    s = Settings()
    s.setmodule(defaults, priority="project")
    s.set("JOBDIR", str(jobdir / "scrapy"))
    s.set("ARTDATA_JOURNAL", str(jobdir / "journal.jsonl"))
    s.set("ARTDATA_MANIFESTS", str(home.manifests))
    s.set("ARTDATA_MANIFEST", manifest)
    s.set("ARTDATA_IMAGE_STORE", str(home.images))
    s.set("ARTDATA_IMAGES", images)
    s.set("ARTDATA_IMAGE_SIZE", image_size)
    s.set("ARTDATA_LINEAGE", lineage)
    s.set("LOG_LEVEL", log_level)
    if http_cache:
        s.set("HTTPCACHE_ENABLED", True)
        s.set("HTTPCACHE_DIR", str(home.root / "httpcache" / "findartinfo"))
    if concurrency:
        s.set("CONCURRENT_REQUESTS_PER_DOMAIN", concurrency)
        s.set("CONCURRENT_REQUESTS", max(concurrency, s.getint("CONCURRENT_REQUESTS")))
    if delay is not None:
        s.set("DOWNLOAD_DELAY", delay)
        s.set("AUTOTHROTTLE_START_DELAY", max(delay, 0.01))
    if redis_url:
        try:
            import scrapy_redis  # noqa: F401
        except ImportError:
            raise ArtdataError("--redis-url needs scrapy-redis: pip install scrapy-redis") from None
        s.set("SCHEDULER", "artdata.spiders.redis_scheduler.RedisScheduler")   # the login stays out of Redis
        s.set("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter")
        s.set("SCHEDULER_PERSIST", True)
        s.set("REDIS_URL", redis_url)
        s.set("JOBDIR", None)
    return s


def run_crawl(home: Home, *, base_url: str, letters: str, artist_url: str | None, max_pages: int | None,
              pictures_only: bool, images: bool, image_size: int, http_cache: bool, manifest: str,
              redis_url: str | None = None, concurrency: int | None = None, delay: float | None = None,
              progress: bool = True, settings: dict | None = None) -> dict:
    """Run the findartinfo crawl; `settings` are Scrapy settings the command line sets (RETRY_TIMES,
    DOWNLOAD_TIMEOUT, USER_AGENT, CLOSESPIDER_ITEMCOUNT...), applied over the project's."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from artdata.spiders.spiders.findartinfo import FindartinfoSpider
    from artdata.datasets.manifest import check_name
    check_name(manifest)
    letters = ",".join(parse_letters(letters)) if not artist_url else letters
    options = {"base_url": base_url, "letters": letters, "artist_url": artist_url, "max_pages": max_pages,
               "pictures_only": pictures_only, "images": images, "image_size": image_size, "manifest": manifest}
    extra = settings
    jdir = job_dir(home, options)
    jdir.mkdir(parents=True, exist_ok=True)
    settings = build_settings(home, jdir, manifest=manifest, images=images, image_size=image_size,
                              http_cache=http_cache, redis_url=redis_url, concurrency=concurrency, delay=delay,
                              lineage={"selection": options})
    settings.set("LOG_INSTALL_ROOT_HANDLER", True)
    for key, value in (extra or {}).items():
        settings.set(key, value, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(FindartinfoSpider)
    display = _Display(progress)
    crawler.signals.connect(display.page, signal=signals.response_received)
    crawler.signals.connect(display.item, signal=signals.item_scraped)
    crawler.signals.connect(display.dropped, signal=signals.item_dropped)
    process.crawl(crawler, base_url=base_url, letters=letters, artist_url=artist_url, max_pages=max_pages,
                  pictures_only=pictures_only)
    try:
        process.start()
    finally:
        display.stop()
    stats = crawler.stats.get_stats()
    return {"job_dir": str(jdir), "stats": stats, "manifest": stats.get("artdata/manifest"), "letters": letters,
            "finish_reason": stats.get("finish_reason")}


class _Display:
    def __init__(self, enabled: bool):
        import sys
        self.pages = self.items = self.drops = 0
        self.p = None
        if enabled and sys.stderr.isatty():
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            from artdata.console import console
            self.p = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
            self.p.start()
            self.task = self.p.add_task("findartinfo")

    def _update(self):
        if self.p:
            self.p.update(self.task, description=f"findartinfo: {self.pages} pages, {self.items} items, "
                                                 f"{self.drops} dropped")

    def page(self, response, request, spider):
        self.pages += 1
        self._update()

    def item(self, item, response, spider):
        self.items += 1
        self._update()

    def dropped(self, item, response, exception, spider):
        self.drops += 1
        self._update()

    def stop(self):
        if self.p:
            self.p.stop()
            self.p = None
