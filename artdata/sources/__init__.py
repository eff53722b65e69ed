"""One module per source (met, tate, aic, cleveland, nga, iiif, urls), each turning what a museum publishes into
records through the same harvest runner; the field helpers they share are here."""
from __future__ import annotations


def text(v) -> str | None:
    """Stripped text; None for missing, NaN (pandas' empty cell) and blank values."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    v = str(v).strip()
    return v or None


def integer(v) -> int | None:
    """An int from 1850, "1850", "1850.0" or 1850.0; None for anything else (NaN, "", "c. 1850")."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f == f and f not in (float("inf"), float("-inf")) else None
