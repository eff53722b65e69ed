"""The findartinfo Scrapy project (installed as artdata.spiders)."""

import os as _os

# Scrapy's cookies middleware builds a tldextract extractor when it is imported; left alone, that fetches the
# public suffix list from the network (publicsuffix.org, then a mirror) and prints tracebacks where there is
# none (offline, behind a proxy, CI). An empty URL list makes tldextract use the snapshot it ships. Set here,
# before Scrapy's middlewares are imported; a value the user set stays.
_os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
