"""Retry with exponential backoff (and Retry-After) for blocks (403/429) and server errors."""
from __future__ import annotations

import asyncio
import random

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.utils.response import response_status_message


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware, but a retried request is sent again only after base * 2^n seconds
    (with jitter), or the server's Retry-After; the wait does not block the reactor."""

    def __init__(self, settings):
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)

    async def process_response(self, request, response, spider=None):
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        spider = spider or (self.crawler.spider if getattr(self, "crawler", None) else None)
        new = get_retry_request(request, reason=response_status_message(response.status), spider=spider,
                                max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
                                priority_adjust=request.meta.get("priority_adjust", self.priority_adjust))
        if new is None:
            return response
        n = new.meta.get("retry_times", 1)
        wait = None
        ra = response.headers.get(b"Retry-After")
        if ra:
            try:
                wait = float(ra.decode())
            except ValueError:
                wait = None
        if wait is None:
            wait = min(self.cap, self.base * 2 ** (n - 1)) * random.uniform(0.75, 1.25)
        if spider is not None and getattr(spider, "crawler", None):
            spider.crawler.stats.inc_value("artdata/backoff_seconds", wait)
        await asyncio.sleep(wait)
        return new
