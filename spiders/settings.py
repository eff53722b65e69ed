"""Scrapy settings of the findartinfo project (`artdata crawl findartinfo` adds its own on top)."""

BOT_NAME = "artdata"
SPIDER_MODULES = ["artdata.spiders.spiders"]
NEWSPIDER_MODULE = "artdata.spiders.spiders"

USER_AGENT = "artdata/0.1 (research dataset builder; +https://github.com/artdata/artdata)"
ROBOTSTXT_OBEY = True

# politeness
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
# 403 (firewall blocks) and 429 are retried with backoff, like 5xx
RETRY_ENABLED = True
RETRY_TIMES = 6
RETRY_HTTP_CODES = [403, 429, 500, 502, 503, 504, 522, 524, 408]
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "artdata.spiders.middlewares.BackoffRetryMiddleware": 550,
}
RETRY_BACKOFF_BASE = 1.0     # seconds; doubles per retry of the same request, with jitter
RETRY_BACKOFF_MAX = 60.0
# media (images) may be redirected
MEDIA_ALLOW_REDIRECTS = True
REDIRECT_ENABLED = True

# development: an HTTP cache (`artdata crawl findartinfo --http-cache`); never stores the login
HTTPCACHE_ENABLED = False
HTTPCACHE_DIR = "httpcache"
HTTPCACHE_IGNORE_HTTP_CODES = [403, 429, 500, 502, 503, 504]

ITEM_PIPELINES = {
    "artdata.spiders.pipelines.CleanPipeline": 100,
    "artdata.spiders.pipelines.ValidatePipeline": 200,
    "artdata.spiders.pipelines.DedupePipeline": 300,
    "artdata.spiders.pipelines.ImagePipeline": 400,
    "artdata.spiders.pipelines.ManifestPipeline": 900,
}

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
LOG_FORMATTER = "artdata.spiders.pipelines.QuietDropsLogFormatter"
