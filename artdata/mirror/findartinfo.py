"""findartinfo on the loopback mirror: a deterministic site laid out as shared/notes/findartinfo.md says.

    /robots.txt
    /english/{L}/browse-by-artist.html, .../browse-by-artist/page/{n}.html       artist index, paged
    /english/list-prices-by-artist/{id}/{slug}.html, .../page/{n}.html           price list, paged
    /english/list-prices-has-art-work-by-artist/{id}/{slug}.html                 only sales with a picture
    /english/price-info/{saleId}/main.html                                       sale page (table#table6)
    /login.html (GET form with a verification token, POST to log in)             paid details
    media host: /images/artwork/{year}/{month}/{saleId}.jpg

The data covers the forms the parsers must read: "12,000 USD", "1.200 EUR", "£3,400", "Unsold",
"1,000 - 1,500 USD" estimates, "Signed"/"Not signed", "c. 1900", "1890s", "19th century", sizes
in cm and inches. One listing row lacks its size cell (cells shift) and one sale page lacks its
dating row. Images are coloured by the price's order of magnitude, so a model can learn price.
"""
from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from artdata.mirror.server import Mirror, Response

FIRST = ["Adam", "Berthe", "Camille", "Diego", "Edith", "Franz", "Gustave", "Hilma", "Ivan", "Jules", "Käthe",
         "Louis", "Mary", "Nils", "Odilon", "Paula"]
LAST = {"A": ["Abbott", "Achard", "Adler", "Aiken", "Albers", "Allston", "Amiet", "Ancher", "Appel", "Arp", "Avery"],
        "B": ["Bacon", "Balla", "Barye", "Bauer", "Beckmann", "Benton", "Bevan", "Blake", "Bonnard", "Boudin", "Brown"],
        "C": ["Cabanel", "Calder", "Carr", "Cassatt", "Cézanne", "Chase", "Church", "Claude", "Corot", "Cox", "Cross"]}
NATIONALITIES = ["French", "American", "German", "British", "Italian", "Dutch", "Spanish"]
MEDIA = ["Oil on canvas", "Watercolor", "Oil on board", "Gouache", "Pastel", "Etching", "Lithograph",
         "Charcoal", "Ink on paper", "Bronze", "Oil on panel", "Tempera", "Acrylic", "Pencil", "Mixed media"]
HOUSES = ["Christie's", "Sotheby's", "Bonhams", "Dorotheum", "Lempertz"]
DATINGS = ["c. 1900", "1890s", "19th century", "1875", "early 20th century", "1920-1925", ""]
PAGE_ARTISTS = 8
PAGE_SALES = 10
SHIFTED_SALE = "100102"      # its listing row lacks the size cell
NO_DATING_SALE = "100103"    # its sale page lacks the dating row


def _h(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _money(amount: float, currency: str) -> str:
    n = int(round(amount))
    if currency == "EUR":
        return f"{n:,}".replace(",", ".") + " EUR"
    if currency == "GBP":
        return f"£{n:,}"
    return f"{n:,} {currency}"


@dataclass
class Sale:
    sale_id: str
    artist_id: int
    title: str
    date: str
    size: str
    medium: str
    signed: bool
    stamped: bool
    inscribed: bool
    dating: str
    lot: str
    house: str
    currency: str
    low: float
    high: float
    price: float | None      # None: unsold
    has_picture: bool

    @property
    def price_text(self) -> str:
        return "Unsold" if self.price is None else _money(self.price, self.currency)

    @property
    def premium_text(self) -> str:
        return "" if self.price is None else _money(self.price * 1.2, self.currency)

    @property
    def estimate_text(self) -> str:
        return f"{_money(self.low, self.currency).replace(' ' + self.currency, '')} - {_money(self.high, self.currency)}" \
            if self.currency != "GBP" else f"£{int(self.low):,} - £{int(self.high):,}"


@dataclass
class Artist:
    artist_id: int
    name: str
    birth: int
    death: int | None
    nationality: str
    sales: list[Sale] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "-".join(self.name.lower().split())


class FindartinfoSite:
    def __init__(self, letters: str = "ABC", artists_per_letter: int = 11, seed: int = 0):
        self.artists: dict[int, Artist] = {}
        self.by_letter: dict[str, list[Artist]] = {}
        self.sales: dict[str, Sale] = {}
        for li, letter in enumerate(letters):
            names = LAST.get(letter, [f"{letter}son"] * artists_per_letter)
            for k in range(artists_per_letter):
                aid = 1000 + li * 100 + k
                birth = 1780 + _h(seed, "birth", aid) % 150
                a = Artist(aid, f"{FIRST[_h(seed, 'first', aid) % len(FIRST)]} {names[k % len(names)]}", birth,
                           birth + 40 + _h(seed, "life", aid) % 45 if birth < 1900 else None,
                           NATIONALITIES[_h(seed, "nat", aid) % len(NATIONALITIES)])
                n_sales = 3 + _h(seed, "n", aid) % 18
                for j in range(n_sales):
                    sid = str(aid * 100 + j)
                    cur = ("USD", "USD", "USD", "EUR", "GBP")[_h(seed, "cur", sid) % 5]
                    mag = 2 + _h(seed, "mag", aid) % 3 + (_h(seed, "mag2", sid) % 2)
                    price = float((1 + _h(seed, "p", sid) % 9) * 10 ** mag)
                    unsold = _h(seed, "unsold", sid) % 12 == 0
                    y, mo, d = 2005 + _h(seed, "y", sid) % 12, 1 + _h(seed, "m", sid) % 12, 1 + _h(seed, "d", sid) % 28
                    inches = _h(seed, "unit", sid) % 3 == 0
                    hgt, wid = 20 + _h(seed, "h", sid) % 80, 20 + _h(seed, "w", sid) % 90
                    s = Sale(sid, aid, f"{('Landscape', 'Portrait', 'Still life', 'Harbour', 'Study')[_h(seed, 't', sid) % 5]} {j + 1}",
                             f"{y}-{mo:02d}-{d:02d}" if j % 2 else f"{d:02d} {('Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec')[mo - 1]} {y}",
                             f"{hgt} 1/2 x {wid} in." if inches else f"{hgt} x {wid} cm",
                             MEDIA[_h(seed, "med", sid) % len(MEDIA)], _h(seed, "sig", sid) % 3 != 0,
                             _h(seed, "st", sid) % 5 == 0, _h(seed, "ins", sid) % 4 == 0,
                             DATINGS[_h(seed, "dat", sid) % len(DATINGS)], str(1 + _h(seed, "lot", sid) % 400),
                             HOUSES[_h(seed, "house", sid) % len(HOUSES)], cur, price * 0.8, price * 1.2,
                             None if unsold else price, _h(seed, "pic", sid) % 5 != 0)
                    a.sales.append(s)
                    self.sales[sid] = s
                self.artists[aid] = a
                self.by_letter.setdefault(letter, []).append(a)

    # -- pages
    @staticmethod
    def _page(title: str, body: str, logged_in: bool = False) -> str:
        account = '<a href="/logout.html">Log out</a>' if logged_in else '<a href="/login.html">Log in</a>'
        return (f"<!DOCTYPE html><html><head><title>{html.escape(title)} - findartinfo</title></head><body>"
                f'<div id="header"><img src="/Content/Images/logo.png" alt="findartinfo"> {account}</div>'
                f"{body}</body></html>")

    @staticmethod
    def _pager(page: int, pages: int, base: str) -> str:
        nxt = f' <a href="{base}/page/{page + 1}.html">Next</a>' if page < pages else ""
        return f'<div class="pager"><span>Page {page} of {pages}</span>{nxt}</div>'

    def index_page(self, letter: str, page: int = 1) -> str | None:
        artists = self.by_letter.get(letter)
        if not artists:
            return None
        pages = (len(artists) + PAGE_ARTISTS - 1) // PAGE_ARTISTS
        if not 1 <= page <= pages:
            return None
        rows = "".join(f'<li><a href="/english/list-prices-by-artist/{a.artist_id}/{a.slug}.html">{html.escape(a.name)}</a></li>'
                       for a in artists[(page - 1) * PAGE_ARTISTS: page * PAGE_ARTISTS])
        if page == 1:   # a link robots.txt forbids: a polite crawler never asks for it
            rows += '<li><a href="/english/private/list-prices-by-artist/9999/hidden.html">Members only</a></li>'
        return self._page(f"Artists {letter}", f"<h1>Artists: {letter}</h1><ul>{rows}</ul>"
                          + self._pager(page, pages, f"/english/{letter}/browse-by-artist"))

    def price_list_page(self, artist_id: int, page: int = 1, pictures_only: bool = False,
                        logged_in: bool = False) -> str | None:
        a = self.artists.get(artist_id)
        if a is None:
            return None
        sales = [s for s in a.sales if s.has_picture or not pictures_only]
        pages = max(1, (len(sales) + PAGE_SALES - 1) // PAGE_SALES)
        if not 1 <= page <= pages:
            return None
        rows = []
        for s in sales[(page - 1) * PAGE_SALES: page * PAGE_SALES]:
            cells = [f"<td>{s.date}</td>",
                     f'<td><span><a href="/english/price-info/{s.sale_id}/main.html">{html.escape(s.title)}</a></span></td>',
                     f"<td><span>{s.size}</span></td>", f"<td>{html.escape(s.medium)}</td>", f"<td>{s.price_text}</td>"]
            if s.sale_id == SHIFTED_SALE:
                del cells[2]
            rows.append(f"<tr onmouseover=\"this.className='hl'\">{''.join(cells)}</tr>")
        kind = "list-prices-has-art-work-by-artist" if pictures_only else "list-prices-by-artist"
        life = f"({a.birth} - {a.death})" if a.death else f"(b. {a.birth})"
        body = (f"<h1>{html.escape(a.name)}</h1><div class='artist-years'>{life}</div>"
                f"<div class='artist-nationality'>{a.nationality}</div>"
                f"<table class='prices'><tr><th>Date</th><th>Title</th><th>Size</th><th>Medium</th><th>Price</th></tr>"
                f"{''.join(rows)}</table>"
                + self._pager(page, pages, f"/english/{kind}/{a.artist_id}/{a.slug}"))
        return self._page(a.name, body, logged_in)

    def sale_page(self, sale_id: str, media_base: str, logged_in: bool = False) -> str | None:
        s = self.sales.get(sale_id)
        if s is None:
            return None
        a = self.artists[s.artist_id]
        rows = [("Title", s.title), ("Date sold", s.date), ("Size", s.size), ("Kind", s.medium), ("Artist", a.name),
                ("Signed", "Signed" if s.signed else "Not signed"), ("Stamped", "Yes" if s.stamped else "No"),
                ("Inscribed", "Yes" if s.inscribed else "No"), ("Dating", s.dating), ("Lot number", s.lot),
                ("Auction house", s.house), ("Estimate", s.estimate_text), ("Auction result", s.price_text)]
        if sale_id == NO_DATING_SALE:
            rows = [r for r in rows if r[0] != "Dating"]
        if logged_in and s.price is not None:
            rows.append(("Price with premium", s.premium_text))
        table = "".join(f"<tr><td>{k}:</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
        img = (f'<img src="{media_base}/images/artwork/{s.date[:4] if s.date[:4].isdigit() else s.date[-4:]}/01/'
               f'{s.sale_id}.jpg" alt="artwork">') if s.has_picture else ""
        return self._page(s.title, f"<h1>{html.escape(s.title)}</h1><img src='/Content/Images/icon-print.png'>"
                          f"{img}<table id='table6'>{table}</table>", logged_in)

    def login_page(self) -> str:
        return self._page("Log in", "<form id='login-form' method='post' action='/login.html'>"
                          "<input type='hidden' name='__RequestVerificationToken' value='tok-123'>"
                          "<input name='UserName'><input name='Password' type='password'>"
                          "<button type='submit'>Log in</button></form>")


def attach(mirror: Mirror, site: FindartinfoSite | None = None, user: str = "demo", password: str = "demo-pass") -> FindartinfoSite:
    """Serve `site` on the mirror's api host (pages) and media host (images)."""
    site = site or FindartinfoSite()
    mirror.findartinfo = site
    mirror.findartinfo_base = mirror.base("api") if mirror._servers else None

    def logged_in(q) -> bool:
        return "fai_session=ok" in q["_headers"].get("cookie", "")

    def page(m: Mirror, path: str, q: dict) -> Response:
        parts = path.strip("/").split("/")
        text = None
        li = logged_in(q)
        if len(parts) >= 3 and parts[2].startswith("browse-by-artist"):
            n = int(parts[-1].split(".")[0]) if "page" in parts else 1
            text = site.index_page(parts[1], n)
        elif len(parts) >= 4 and parts[1] in ("list-prices-by-artist", "list-prices-has-art-work-by-artist"):
            n = int(parts[-1].split(".")[0]) if "page" in parts else 1
            text = site.price_list_page(int(parts[2]) if parts[2].isdigit() else -1, n,
                                        parts[1] == "list-prices-has-art-work-by-artist", li)
        elif len(parts) == 4 and parts[1] == "price-info":
            text = site.sale_page(parts[2], m.media_base, li)
        if text is None:
            return Response(404, b"<html><body>Page not found</body></html>", "text/html")
        return Response(200, text.encode(), "text/html; charset=utf-8")

    def login(m: Mirror, path: str, q: dict) -> Response:
        body = q.get("_body")
        if body is None:
            return Response(200, site.login_page().encode(), "text/html; charset=utf-8")
        form = parse_qs(body.decode())
        ok = (form.get("UserName") == [user] and form.get("Password") == [password]
              and form.get("__RequestVerificationToken") == ["tok-123"])
        if not ok:
            return Response(200, site.login_page().replace("<form", "<p>Wrong user name or password</p><form").encode(),
                            "text/html")
        return Response(200, site._page("Welcome", "<p>Welcome back</p>", True).encode(), "text/html",
                        {"Set-Cookie": "fai_session=ok; Path=/"})

    def robots(m: Mirror, path: str, q: dict) -> Response:
        return Response(200, b"User-agent: *\nDisallow: /english/private/\n", "text/plain")

    def image(m: Mirror, path: str, q: dict) -> Response:
        sid = path.rsplit("/", 1)[-1].removesuffix(".jpg")
        s = site.sales.get(sid)
        if s is None or not s.has_picture:
            return Response(404, b"not found", "text/plain")
        label = "unsold" if s.price is None else f"1e{len(str(int(s.price)))}"
        return Response(200, m.image(f"fai:{sid}", label, (400, 320), s.medium), "image/jpeg")

    mirror.add_route("api", "/english/", page)
    mirror.add_route("api", "/login.html", login)
    mirror.add_route("api", "/robots.txt", robots)
    mirror.add_route("media", "/images/artwork/", image)
    return site
