"""Item pipelines, one concern each, in the order settings.ITEM_PIPELINES gives them:

    CleanPipeline      raw text -> parsed fields (prices, estimate, size, dating, yes/no)
    ValidatePipeline   drops rows without a price (unless unsold) or with shifted cells
    DedupePipeline     one item per sale id
    ImagePipeline      image fetched through Scrapy's engine, verified/resized into artdata's store
    ManifestPipeline   records appended to a journal; a versioned manifest at the end

Why artdata's image store and not Scrapy's ImagesPipeline: every source then lands in one
content-addressed, verified store with the same record fields (image_key, sizes, status/error),
so `manifests verify/materialize` and the trainer treat auction images like museum ones. The
download still goes through Scrapy (robots.txt, AutoThrottle, retries, per-domain concurrency).
Every drop is counted (`artdata/dropped/<reason>` in the crawl stats) and raised as DropItem.
"""
from __future__ import annotations

from pathlib import Path

from scrapy import Request
from scrapy.exceptions import DropItem

from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.datasets.records import STATUS_FAILED, STATUS_NO_IMAGE, STATUS_PENDING, extra_json, new_record, now_utc
from artdata.spiders import parsing as P


def _count(crawler, reason: str):
    if crawler is not None:
        crawler.stats.inc_value(f"artdata/dropped/{reason}")


class _Base:
    def __init__(self, crawler=None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)


class CleanPipeline(_Base):
    def process_item(self, item, spider=None):
        price = P.parse_price(item.get("price"))
        prem = P.parse_price(item.get("price_with_premium"))
        est = P.parse_estimate(item.get("estimate"))
        size = P.parse_size(item.get("size"))
        dating = (item.get("dating") or "").strip() or None
        year = P.approximate_year(dating)
        item["parsed"] = {
            "title": (item.get("title") or "").strip() or None,
            "artist": (item.get("artist") or "").strip() or None,
            "artist_nationality": (item.get("artist_nationality") or "").strip() or None,
            "medium": (item.get("medium") or "").strip() or None,
            "dimensions": (item.get("size") or "").strip() or None,
            "height": size["height"], "width": size["width"], "unit": size["unit"],
            "signed": P.parse_yes_no(item.get("signed")),
            "stamped": P.parse_yes_no(item.get("stamped")),
            "inscribed": P.parse_yes_no(item.get("inscribed")),
            "date_text": dating, "date_begin": year, "date_end": year,
            "sale_date": P.parse_date(item.get("date_sold")) or ((item.get("date_sold") or "").strip() or None),
            "sale_date_parsed": P.parse_date(item.get("date_sold")) is not None,
            "lot_number": (item.get("lot_number") or "").strip() or None,
            "auction_house": (item.get("auction_house") or "").strip() or None,
            "estimate_low": est["low"], "estimate_high": est["high"],
            "price": price["amount"], "unsold": price["unsold"],
            "currency": price["currency"] or est["currency"] or prem["currency"],
            "price_with_premium": prem["amount"],
        }
        return item


class ValidatePipeline(_Base):
    """A row is stored only when every field is where it should be."""

    def process_item(self, item, spider=None):
        p = item["parsed"]
        listing = item.get("listing") or {}
        if listing.get("cells") is not None and listing["cells"] != listing.get("expected"):
            reason = "cells shifted"
        elif p["unsold"] is None and p["price"] is None:
            reason = "no price"
        elif not p["unsold"] and not p["currency"]:
            reason = "price without currency"
        elif item.get("date_sold") and not p["sale_date_parsed"]:
            reason = "cells shifted"      # the date cell holds something else
        elif listing.get("price") and P.parse_price(listing["price"])["amount"] not in (None, p["price"]):
            reason = "listing and sale page disagree"
        else:
            return item
        _count(self.crawler, reason)
        raise DropItem(reason)


class DedupePipeline(_Base):
    def __init__(self, crawler=None):
        super().__init__(crawler)
        self.seen: set[str] = set()

    def process_item(self, item, spider=None):
        sid = str(item["sale_id"])
        if sid in self.seen:
            _count(self.crawler, "duplicate")
            raise DropItem("duplicate")
        self.seen.add(sid)
        return item


class ImagePipeline(_Base):
    """Fetches the sale's image through the engine and stores it verified and resized."""

    def __init__(self, crawler=None):
        super().__init__(crawler)
        s = crawler.settings if crawler else {}
        self.enabled = bool(s.get("ARTDATA_IMAGES", True))
        self.store = ImageStore(s.get("ARTDATA_IMAGE_STORE", "artdata-home/images"))
        self.cfg = ImageConfig(size=int(s.get("ARTDATA_IMAGE_SIZE", 256)))

    async def process_item(self, item, spider=None):
        url = item.get("image_url")
        if not url:
            item["image"] = {"status": STATUS_NO_IMAGE}
            return item
        if not self.enabled:
            item["image"] = {"status": STATUS_PENDING}
            return item
        try:
            resp = await self._download(Request(url, meta={"artdata_image": True}))
        except Exception as exc:      # network failures after Scrapy's retries: data, not a crash
            item["image"] = {"status": STATUS_FAILED, "error": f"{type(exc).__name__}: {exc} ({url})"}
            self.crawler.stats.inc_value("artdata/images/failed")
            return item
        if resp.status != 200:
            item["image"] = {"status": STATUS_FAILED, "error": f"HTTP {resp.status} for image {url}"}
            self.crawler.stats.inc_value("artdata/images/failed")
            return item
        res = process_image(resp.body, self.cfg)
        if res.status == "ok":
            self.store.put(res.data, res.key)
            self.crawler.stats.inc_value("artdata/images/ok")
        else:
            res.error = f"{res.error} ({url})"
            self.crawler.stats.inc_value("artdata/images/failed")
        res.data = None
        item["image"] = res.fields()
        return item

    async def _download(self, request):
        engine = self.crawler.engine
        if hasattr(engine, "download_async"):
            return await engine.download_async(request)
        from scrapy.utils.defer import maybe_deferred_to_future
        return await maybe_deferred_to_future(engine.download(request))


class ManifestPipeline(_Base):
    """Records go to a journal as they come (a resumed crawl keeps them); close_spider writes the manifest."""

    def __init__(self, crawler=None):
        super().__init__(crawler)
        s = crawler.settings if crawler else {}
        self.journal_path = Path(s.get("ARTDATA_JOURNAL", "findartinfo-journal.jsonl"))
        self.manifests = s.get("ARTDATA_MANIFESTS")
        self.name = s.get("ARTDATA_MANIFEST", "findartinfo")
        self.lineage = dict(s.get("ARTDATA_LINEAGE") or {})
        self.manifest = None
        self._journal = None

    def open_spider(self, spider=None):
        from artdata.harvest.runner import Journal
        self._journal = Journal(self.journal_path)
        self.started = now_utc()

    def process_item(self, item, spider=None):
        rec = to_record(item)
        self._journal.append(rec)
        return item

    def close_spider(self, spider=None):
        from datetime import datetime
        from artdata.datasets.manifest import write_manifest
        from artdata.datasets.records import to_table
        self._journal.close()
        rows = list(self._journal.load().values())
        for r in rows:
            if isinstance(r.get("harvested_at"), str):
                r["harvested_at"] = datetime.fromisoformat(r["harvested_at"])
        if rows and self.manifests:
            stats = self.crawler.stats.get_stats() if self.crawler else {}
            drops = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("artdata/dropped/")}
            self.lineage.update(source="findartinfo", dropped=drops, parents=[],
                                harvest_window={"end": now_utc().isoformat(timespec="seconds")})
            self.manifest = write_manifest(self.manifests, self.name, to_table(rows), lineage=self.lineage,
                                           description=f"findartinfo auction lots ({len(rows)} records)")
            if self.crawler:
                self.crawler.stats.set_value("artdata/manifest", self.manifest.ref)


def to_record(item) -> dict:
    p = item["parsed"]
    img = dict(item.get("image") or {"status": STATUS_PENDING})
    extra = {k: p[k] for k in ("height", "width", "unit", "stamped", "inscribed")}
    extra.update(artist_id=item.get("artist_id"), artist_birth=item.get("artist_birth"),
                 artist_death=item.get("artist_death"), estimate_text=item.get("estimate"),
                 price_text=item.get("price"), date_sold_text=item.get("date_sold"))
    rec = new_record("findartinfo", item["sale_id"], page_url=item.get("page_url"), image_url=item.get("image_url"),
                     title=p["title"], artist=p["artist"], artist_nationality=p["artist_nationality"],
                     medium=p["medium"], dimensions=p["dimensions"], signed=p["signed"], date_text=p["date_text"],
                     date_begin=p["date_begin"], date_end=p["date_end"], sale_date=p["sale_date"],
                     auction_house=p["auction_house"], lot_number=p["lot_number"], estimate_low=p["estimate_low"],
                     estimate_high=p["estimate_high"], price=p["price"], price_with_premium=p["price_with_premium"],
                     currency=p["currency"], unsold=p["unsold"], extra=extra_json(extra))
    rec.update({k: v for k, v in img.items() if k in rec})
    rec["harvested_at"] = now_utc().isoformat()
    return rec


class QuietDropsLogFormatter:
    """Dropped items are counted in the stats (artdata/dropped/<reason>); log them at DEBUG only."""

    def __new__(cls, *args, **kwargs):
        from scrapy.logformatter import LogFormatter

        class _F(LogFormatter):
            def dropped(self, item, exception, response, spider=None):
                entry = super().dropped(item, exception, response, spider)
                entry["level"] = 10
                return entry
        return _F(*args, **kwargs)

    @classmethod
    def from_crawler(cls, crawler):
        return cls()
