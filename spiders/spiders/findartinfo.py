"""findartinfo.com: artist index by letter -> each artist's price list -> each sale page.

Declarative: callbacks only read pages (selectors in artdata.spiders.selectors) and follow links;
cleaning and validation live in the item pipelines.
"""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import scrapy
from scrapy.http import FormRequest

from artdata.spiders import selectors as S
from artdata.spiders.items import ArtistItem, SaleItem
from artdata.spiders.parsing import parse_life


def _text(sel, xpath) -> str:
    return " ".join(t.strip() for t in sel.xpath(xpath).getall() if t.strip())


class LoginRequest(FormRequest):
    """The login POST, whose body holds the password: Scrapy keeps it in memory only.

    Scrapy's scheduler pushes a request into the JOBDIR disk queue (a pickle in the job folder, kept
    when the crawl is stopped) through `to_dict`, and puts a request whose `to_dict` raises ValueError
    in its memory queue instead; a retry (`request.copy()`) keeps the class, so a login retried when
    Ctrl-C comes is dropped, never written (a resumed crawl logs in again). The scrapy-redis scheduler
    is given `artdata.spiders.redis_scheduler.RedisScheduler`, which keeps it out of Redis the same
    way, and the request is marked `dont_cache` for the HTTP cache."""

    memory_only = True

    def to_dict(self, *, spider=None):
        raise ValueError("the findartinfo login holds the password: kept in memory, never in the job folder")

    def __reduce__(self):
        raise TypeError("the findartinfo login holds the password and is never pickled")


class FindartinfoSpider(scrapy.Spider):
    name = "findartinfo"

    def __init__(self, base_url="https://www.findartinfo.com", letters="A", artist_url=None, max_pages=None,
                 pictures_only=False, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.letters = [l.strip().upper() for l in (letters or "").split(",") if l.strip()]
        self.artist_urls = [u for u in (artist_url or "").split(",") if u]
        self.max_pages = int(max_pages) if max_pages else None
        self.pictures_only = str(pictures_only).lower() in ("1", "true", "yes")
        self.allowed_domains = [urlsplit(self.base_url).hostname]

    # -- start: log in first when credentials are in the environment
    async def start(self):
        for req in self.start_requests():
            yield req

    def start_requests(self):
        if os.environ.get("FINDARTINFO_USER") and os.environ.get("FINDARTINFO_PASSWORD"):
            yield scrapy.Request(S.LOGIN_URL.format(base=self.base_url), callback=self.login, dont_filter=True)
        else:
            yield from self.entry_requests()

    def entry_requests(self):
        for url in self.artist_urls:
            yield scrapy.Request(self._listing_url(url), callback=self.parse_price_list, cb_kwargs={"page": 1})
        for letter in self.letters:
            yield scrapy.Request(S.INDEX_URL.format(base=self.base_url, letter=letter), callback=self.parse_index,
                                 cb_kwargs={"page": 1})

    def login(self, response):
        # credentials come from the environment only; they are never logged or stored (see LoginRequest)
        form = response.xpath(S.LOGIN_FORM)
        if not form:
            self.logger.error(f"findartinfo login: no login form at {response.url} (selectors.LOGIN_FORM); "
                              f"crawling without the paid details")
            self.crawler.stats.set_value("artdata/login", "no form")
            yield from self.entry_requests()
            return
        fields = {i.attrib["name"]: i.attrib.get("value", "") for i in form.xpath(S.LOGIN_FORM_FIELDS)}
        fields[S.LOGIN_USER_FIELD] = os.environ["FINDARTINFO_USER"]
        fields[S.LOGIN_PASSWORD_FIELD] = os.environ["FINDARTINFO_PASSWORD"]
        yield LoginRequest(response.urljoin(form.attrib.get("action") or response.url), formdata=fields,
                           callback=self.after_login, errback=self.login_error, dont_filter=True,
                           meta={"dont_cache": True, "handle_httpstatus_all": True})

    def after_login(self, response):
        if response.status != 200 or S.LOGGED_IN_MARK not in response.text:
            why = f"HTTP {response.status}" if response.status != 200 else \
                "check FINDARTINFO_USER / FINDARTINFO_PASSWORD"
            self.logger.error(f"findartinfo login failed ({why}); crawling without the paid details")
            self.crawler.stats.set_value("artdata/login", "failed")
        else:
            self.crawler.stats.set_value("artdata/login", "ok")
        yield from self.entry_requests()

    def login_error(self, failure):
        self.logger.error(f"findartinfo login failed ({failure.value.__class__.__name__}); "
                          f"crawling without the paid details")
        self.crawler.stats.set_value("artdata/login", "failed")
        yield from self.entry_requests()

    def _listing_url(self, url: str) -> str:
        if self.pictures_only:
            url = url.replace(S.PRICE_LIST_PATH, S.PICTURE_LIST_PATH)
        return url

    def _more_pages(self, response, page: int) -> bool:
        if self.max_pages and page >= self.max_pages:
            return False
        pager = _text(response, S.PAGER_TEXT)
        m = re.search(r"Page\s+(\d+)\s+of\s+(\d+)", pager)
        return bool(m) and int(m.group(1)) < int(m.group(2))

    # -- callbacks
    def parse_index(self, response, page: int):
        for href in response.xpath(S.ARTIST_LINKS + "/@href").getall():
            yield response.follow(self._listing_url(href), callback=self.parse_price_list, cb_kwargs={"page": 1})
        if self._more_pages(response, page):
            letter = response.url.split("/english/")[1].split("/")[0]
            yield response.follow(S.INDEX_PAGE_URL.format(base=self.base_url, letter=letter, page=page + 1),
                                  callback=self.parse_index, cb_kwargs={"page": page + 1})

    def parse_price_list(self, response, page: int):
        m = re.search(S.ARTIST_ID_FROM_URL, response.url)
        artist_id = m.group(1) if m else None
        birth, death = parse_life(_text(response, S.ARTIST_YEARS))
        artist = ArtistItem(artist_id=artist_id, name=_text(response, S.ARTIST_NAME), birth_year=birth,
                            death_year=death, nationality=_text(response, S.ARTIST_NATIONALITY) or None,
                            url=response.url)
        for row in response.xpath(S.LISTING_ROWS):
            cells = row.xpath(S.ROW_CELLS)
            texts = [" ".join(t.strip() for t in c.xpath(".//text()").getall() if t.strip()) for c in cells]
            listing = {"cells": len(cells), "expected": len(S.CELL_ORDER),
                       **{k: v for k, v in zip(S.CELL_ORDER, texts)}}
            link = row.xpath(S.ROW_SALE_LINK).get()
            if not link:
                self.crawler.stats.inc_value("artdata/dropped/row without sale link")
                continue
            yield response.follow(link, callback=self.parse_sale, cb_kwargs={"artist": dict(artist), "listing": listing})
        if self._more_pages(response, page):
            base = response.url.split("/page/")[0].removesuffix(".html")
            yield response.follow(f"{base}/page/{page + 1}.html", callback=self.parse_price_list,
                                  cb_kwargs={"page": page + 1})

    def parse_sale(self, response, artist: dict, listing: dict):
        m = re.search(S.SALE_ID_FROM_URL, response.url)
        item = SaleItem(sale_id=m.group(1) if m else response.url, artist_id=artist.get("artist_id"),
                        artist=artist.get("name"), artist_birth=artist.get("birth_year"),
                        artist_death=artist.get("death_year"), artist_nationality=artist.get("nationality"),
                        page_url=response.url, listing=listing)
        for row in response.xpath(S.SALE_TABLE_ROWS):
            label = _text(row, S.SALE_LABEL).rstrip(":").strip().lower()
            field = S.SALE_LABELS.get(label)
            if field:
                value = _text(row, S.SALE_VALUE)
                if field == "artist" and not value:
                    continue
                item[field] = value
        if not item.get("title"):
            item["title"] = _text(response, S.SALE_TITLE) or listing.get("title")
        for key in ("date_sold", "size", "medium", "price"):     # fall back on the listing row
            if not item.get(key) and listing.get(key) and listing["cells"] == listing["expected"]:
                item[key] = listing[key]
        for src in response.xpath(S.SALE_IMAGES).getall():
            if not urlsplit(src).path.startswith(S.LAYOUT_IMAGE_PREFIX):
                item["image_url"] = response.urljoin(src)
                break
        yield item
