"""Every selector the findartinfo spider uses, in one place: fix them here when the site changes.

They follow what is known of the site (shared/notes/findartinfo.md); the live site cannot be
reached from here, so they are checked against saved pages (tests) and the mirror.
"""
from __future__ import annotations

# artist index (per letter, paged)
INDEX_URL = "{base}/english/{letter}/browse-by-artist.html"
INDEX_PAGE_URL = "{base}/english/{letter}/browse-by-artist/page/{page}.html"
ARTIST_LINKS = "//a[contains(@href, '/list-prices-by-artist/')]"
# artist price list (paged); the picture-only variant
PRICE_LIST_PATH = "/english/list-prices-by-artist/"
PICTURE_LIST_PATH = "/english/list-prices-has-art-work-by-artist/"
PAGER_TEXT = "//*[contains(text(), 'Page ') and contains(text(), ' of ')]/text()"
NEXT_PAGE = "//a[normalize-space(text())='Next' or normalize-space(text())='>']/@href"
ARTIST_NAME = "//h1//text()"
ARTIST_YEARS = "//*[contains(@class, 'artist-years')]//text()"     # "(1840 - 1926)"
ARTIST_NATIONALITY = "//*[contains(@class, 'artist-nationality')]//text()"
# listing rows and their cells, in order: date sold, title (link in a span), size (span), medium, price
LISTING_ROWS = "//tr[@onmouseover]"
ROW_CELLS = "./td"
CELL_ORDER = ("date_sold", "title", "size", "medium", "price")
ROW_SALE_LINK = ".//span//a[contains(@href, '/price-info/')]/@href"
# sale page: a label/value table
SALE_TABLE_ROWS = "//table[@id='table6']//tr"
SALE_LABEL = "./td[1]//text()"
SALE_VALUE = "./td[2]//text()"
SALE_TITLE = "//h1//text()"
SALE_IMAGES = "//img/@src"
LAYOUT_IMAGE_PREFIX = "/Content/Images"            # icons and layout, never the artwork
SALE_ID_FROM_URL = r"/price-info/(\d+)/"
ARTIST_ID_FROM_URL = r"/list-prices-(?:has-art-work-)?by-artist/(\d+)/"
# labels of the sale table (lower-case) -> item field
SALE_LABELS = {
    "title": "title", "date sold": "date_sold", "size": "size", "kind": "medium", "medium": "medium",
    "artist": "artist", "signed": "signed", "stamped": "stamped", "inscribed": "inscribed", "dating": "dating",
    "lot number": "lot_number", "lot": "lot_number", "auction house": "auction_house", "estimate": "estimate",
    "auction result": "price", "hammer price": "price", "price with premium": "price_with_premium",
}
# login (paid pages)
LOGIN_URL = "{base}/login.html"
LOGIN_FORM = "//form[@id='login-form']"
LOGIN_FORM_FIELDS = ".//input[@name and not(@type='submit' or @type='button' or @type='image' or @type='reset')]"
LOGIN_USER_FIELD = "UserName"
LOGIN_PASSWORD_FIELD = "Password"
LOGGED_IN_MARK = "Log out"
