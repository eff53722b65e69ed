"""Pure parsers for auction text: prices, estimates, sizes, dating, yes/no fields.

Each returns None (or a documented neutral value) for what it cannot read; none raises on text.
"""
from __future__ import annotations

import re
from datetime import datetime

CURRENCY_SYMBOLS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "CHF": "CHF", "US$": "USD"}
CODE_RE = re.compile(r"\b([A-Z]{3})\b")
NUM_RE = re.compile(r"\d[\d.,' ]*")


def parse_number(text: str) -> float | None:
    """'12,000' -> 12000; '1.200' -> 1200 (European thousands); '1.200,50' -> 1200.5; '3,400.75' -> 3400.75."""
    s = text.strip().replace(" ", "").replace("'", "")
    if not s or not any(c.isdigit() for c in s):
        return None
    if "," in s and "." in s:
        if s.rfind(",") > s.rfind("."):      # 1.200,50
            s = s.replace(".", "").replace(",", ".")
        else:                                  # 1,200.50
            s = s.replace(",", "")
    elif "," in s:
        parts = s.split(",")
        s = s.replace(",", "") if all(len(p) == 3 for p in parts[1:]) else s.replace(",", ".")
    elif "." in s:
        parts = s.split(".")
        if len(parts) > 2 or (len(parts) == 2 and len(parts[1]) == 3):
            s = s.replace(".", "")           # 1.200 = one thousand two hundred
    try:
        return float(s)
    except ValueError:
        return None


def parse_currency(text: str) -> str | None:
    for sym, code in sorted(CURRENCY_SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        if sym in text:
            return code
    m = CODE_RE.search(text)
    return m.group(1) if m else None


def parse_price(text: str | None) -> dict:
    """'12,000 USD' / '1.200 EUR' / '£3,400' / 'Unsold' -> {amount, currency, unsold}."""
    s = (text or "").strip()
    if not s:
        return {"amount": None, "currency": None, "unsold": None}
    if re.search(r"\b(unsold|not sold|bought in|withdrawn|passed)\b", s, re.I):
        return {"amount": None, "currency": parse_currency(s), "unsold": True}
    m = NUM_RE.search(s)
    amount = parse_number(m.group(0)) if m else None
    return {"amount": amount, "currency": parse_currency(s), "unsold": False if amount is not None else None}


def parse_estimate(text: str | None) -> dict:
    """'1,000 - 1,500 USD' -> {low: 1000, high: 1500, currency: 'USD'}; one number: low = high."""
    s = (text or "").strip()
    nums = [parse_number(n) for n in NUM_RE.findall(s)]
    nums = [n for n in nums if n is not None]
    cur = parse_currency(s)
    if not nums:
        return {"low": None, "high": None, "currency": cur}
    return {"low": nums[0], "high": nums[1] if len(nums) > 1 else nums[0], "currency": cur}


_FRACTION = re.compile(r"(\d+)\s+(\d+)/(\d+)")


def parse_size(text: str | None) -> dict:
    """'65 x 81 cm' / '25 1/2 x 32 in.' / '65.5 x 81 cm' -> {height, width, unit} (first is height)."""
    s = (text or "").strip().lower()
    s = _FRACTION.sub(lambda m: str(int(m.group(1)) + int(m.group(2)) / int(m.group(3))), s)
    unit = "cm" if "cm" in s else "in" if re.search(r"\bin\b|\binch|\"", s) else "mm" if "mm" in s else None
    nums = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", s.replace(",", "."))]
    if len(nums) < 2:
        return {"height": nums[0] if nums else None, "width": None, "unit": unit}
    return {"height": nums[0], "width": nums[1], "unit": unit}


def parse_yes_no(text: str | None) -> bool | None:
    """'Signed' / 'Yes' -> True; 'Not signed' / 'No' / 'Unsigned' -> False; else None."""
    s = (text or "").strip().lower()
    if not s:
        return None
    if re.search(r"\b(not|no|un\w+|without)\b", s) or s in ("n", "false", "0"):
        return False
    if s in ("y", "true", "1") or re.search(r"\b(yes|signed|stamped|inscribed)\b", s):
        return True
    return None


def approximate_year(text: str | None) -> int | None:
    """'c. 1900' -> 1900; '1890s' -> 1895; '19th century' -> 1850; 'early 20th century' -> 1915;
    '1880-1890' -> 1885; nothing -> None."""
    s = (text or "").strip().lower()
    if not s:
        return None
    m = re.search(r"(\d{1,2})(?:st|nd|rd|th)\s+century", s)
    if m:
        start = (int(m.group(1)) - 1) * 100
        if "early" in s:
            return start + 15
        if "late" in s:
            return start + 85
        if "mid" in s:
            return start + 50
        return start + 50
    m = re.search(r"\b(\d{3})0s\b", s)
    if m:
        return int(m.group(1)) * 10 + 5
    years = [int(y) for y in re.findall(r"\b(1[0-9]{3}|20[0-9]{2})\b", s)]
    if len(years) >= 2:
        return (years[0] + years[1]) // 2
    return years[0] if years else None


def parse_date(text: str | None) -> str | None:
    """Sale dates as ISO (YYYY-MM-DD) when they parse, else None."""
    s = (text or "").strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(s, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_life(text: str | None) -> tuple[int | None, int | None]:
    """'(1840 - 1926)' / '1840-1926' / 'b. 1950' -> (birth, death)."""
    years = [int(y) for y in re.findall(r"\b(1[0-9]{3}|20[0-9]{2})\b", text or "")]
    if not years:
        return None, None
    return years[0], (years[1] if len(years) > 1 else None)
