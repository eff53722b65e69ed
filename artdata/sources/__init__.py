"""One module per source (met, tate, aic, cleveland, nga, iiif, urls), each turning what a museum publishes into
records through the same harvest runner; the field helpers they share are here.

Everything a museum sends or a dump holds is hostile until checked (DESIGN.md, Habits): the helpers below coerce
a value of the wrong type where that is harmless (a number where text is expected) and otherwise raise a
FieldError naming the field, so that one malformed record becomes a `failed` record saying which field, never the
end of a harvest. Files and archive members are read as streams under a size cap (`--max-member-bytes`), counted
in decompressed bytes.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from artdata import ArtdataError

INT32 = 2**31 - 1
MAX_DEPTH = 32                       # nesting followed inside one value (lists of lists, IIIF language maps)
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", re.I)


class FieldError(ArtdataError):
    """A value of the wrong type in one field of one record (the message names the field; the harvest names the
    record)."""


class TooLarge(ArtdataError):
    """A file, archive member or record larger than the cap it is read under."""


@dataclass
class Dump:
    """What a museum's dump held: its records by id, and its malformed entries (a stand-in id: the malformed id,
    or where the entry is -> why it cannot be read), each of which becomes a `failed` record naming it while the
    rest is harvested."""
    records: dict[str, dict]
    bad: dict[str, str]
    readable: int = 0           # records read, whether kept or not

    def add_bad(self, key: str, why: str) -> None:
        if len(self.bad) < 100_000:         # a dump of nothing but garbage is not held whole either
            self.bad.setdefault(key, why)

    def check(self) -> "Dump":
        """A dump without one readable record is the wrong file: an error naming its first entry."""
        if self.bad and not self.readable:
            first = next(iter(self.bad.values()))
            raise ArtdataError(first + (f" (and {len(self.bad) - 1} more entries: no record could be read)"
                                        if len(self.bad) > 1 else ""))
        return self


def text(v, field: str | None = None, _depth: int = 0) -> str | None:
    """Stripped text; None for missing, NaN (pandas' empty cell) and blank values. Numbers are written out, a list
    of texts is joined with "; "; an object (dict) where text is expected is a FieldError naming `field`."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (list, tuple)):
        if _depth >= MAX_DEPTH:
            raise FieldError(f"{field or 'a text field'}: lists nested deeper than {MAX_DEPTH}")
        parts = [text(x, field, _depth + 1) for x in v]
        return "; ".join(p for p in parts if p) or None
    if isinstance(v, dict):
        raise FieldError(f"{field or 'a text field'}: an object where text was expected")
    v = str(v).strip()
    return v or None


def integer(v) -> int | None:
    """An int from 1850, "1850", "1850.0" or 1850.0; None for anything else (NaN, "", "c. 1850", True)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and len(v) > 64:      # no number is that long; float() of a huge string is slow
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(f) if f == f and f not in (float("inf"), float("-inf")) else None


def int32(v) -> int | None:
    """integer(v) when it fits the record schema's int32 columns (years, sizes), else None."""
    i = integer(v)
    return i if i is not None and -INT32 <= i <= INT32 else None


def boolean(v) -> bool | None:
    """True / False from a JSON boolean, 1 / 0, or "true" / "false" / "1" / "0" / "yes" / "no"; None otherwise
    (so that "false", a truthy string, never counts as true)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        return {"true": True, "1": True, "yes": True, "t": True, "false": False, "0": False, "no": False,
                "f": False}.get(v.strip().lower())
    return None


def mapping(v, field: str) -> dict:
    """An object field: {} when missing, the dict itself, else a FieldError naming `field`."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise FieldError(f"{field}: expected an object, got {_kind(v)}")
    return v


def sequence(v, field: str) -> list:
    """A list field: [] when missing, the list itself, else a FieldError naming `field`."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise FieldError(f"{field}: expected a list, got {_kind(v)}")
    return v


def http_url(v, field: str) -> str | None:
    """An http(s) URL from a record (None when missing); anything else is a FieldError naming `field`."""
    s = text(v, field)
    if s is None:
        return None
    if not s.lower().startswith(("http://", "https://")) or any(c.isspace() for c in s) or len(s) > 4096:
        raise FieldError(f"{field}: not an http(s) URL: {s[:80]!r}")
    return s


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(v), type(v).__name__)


def record_id(v) -> str | None:
    """A museum's integer id as text ("12", 12, 12.0 -> "12"); None for anything else ("abc", "", 1.5e30)."""
    i = integer(v)
    if i is None or (isinstance(v, float) and v != i) or not (0 <= i < 10**15):
        return None
    if isinstance(v, str) and not re.fullmatch(r"\s*\d+(\.0*)?\s*", v):
        return None
    return str(i)


def shown(v, n: int = 60) -> str:
    """A value from a record, short and printable, for an error message or a stand-in id."""
    s = v if isinstance(v, str) else json.dumps(v, default=str)[:n + 10] if not isinstance(v, (dict, list)) \
        else _kind(v)
    s = "".join(c if c.isprintable() else "?" for c in str(s))
    return s if len(s) <= n else s[: n - 1] + "…"


def id_order(k: str):
    """Sort key of ids: numbers in order first, then anything else (the stand-ins of malformed records)."""
    i = integer(k) if isinstance(k, str) and k.isdigit() else None
    return (i is None, i or 0, k)


# ---------------------------------------------------------------- reading files under a cap

def parse_bytes(value: str | int | None, default: int, option: str = "--max-member-bytes") -> int:
    """A byte count from the command line: 1048576, 64MiB, 2G, 500kB (K/M/G/T are powers of 1024)."""
    if value is None:
        return default
    if isinstance(value, int):
        n = value
    else:
        hit = _SIZE_RE.fullmatch(str(value))
        if not hit:
            raise ArtdataError(f"{option} {value!r}: expected a size in bytes, e.g. 2GiB, 500MiB or 1048576")
        n = int(float(hit.group(1)) * 1024 ** " kmgt".index(hit.group(2).lower() or " "))
    if n < 1:
        raise ArtdataError(f"{option} {value!r}: must be at least 1 byte")
    return n


def size_text(n: int) -> str:
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.3g} {unit}"
    return f"{n} bytes"


RECORD_CAP = 64 * 2**20     # one record's line or row in a streamed dump (JSON lines, CSV): never more than this


def too_large(where: str, cap: int, size: int | None = None, raise_hint: bool = True) -> TooLarge:
    have = f" ({size_text(size)})" if size is not None else ""
    hint = "; --max-member-bytes raises it" if raise_hint else " (one record's line)"
    return TooLarge(f"{where}: larger than the {size_text(cap)} limit{have}{hint}")


class CappedReader(io.RawIOBase):
    """A binary stream that raises TooLarge once more than `cap` bytes have come through (decompressed streams
    included: the bytes counted are those read, so a bomb stops at the cap, never in memory whole)."""

    def __init__(self, raw, cap: int, where: str):
        self.raw, self.cap, self.where, self.count = raw, cap, where, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        want = min(len(b), self.cap + 1 - self.count)
        if want <= 0:
            raise too_large(self.where, self.cap)
        data = self.raw.read(want)
        n = len(data)
        b[:n] = data
        self.count += n
        if self.count > self.cap:
            raise too_large(self.where, self.cap)
        return n

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


def read_capped(fh, cap: int, where: str) -> bytes:
    """All of a binary stream, refusing it past `cap` bytes (reads at most cap + 1)."""
    data = fh.read(cap + 1)
    if len(data) > cap:
        raise too_large(where, cap)
    return data


def check_file(path: Path, cap: int, where: str | None = None) -> None:
    """A plain file read whole (or parsed whole) is refused above the cap, before any byte is read."""
    size = path.stat().st_size
    if size > cap:
        raise too_large(where or str(path), cap, size)


def check_parquet(data, where: str, cap: int) -> None:
    """A Parquet file (a path or a seekable stream) is refused when its data, uncompressed as its footer states
    it, is above `cap`: a small file that would inflate to gigabytes is never read."""
    import pyarrow.parquet as pq
    meta = pq.ParquetFile(data).metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if size > cap:
        raise too_large(f"{where} (uncompressed)", cap, size)
    if hasattr(data, "seek"):
        data.seek(0)


def capped_lines(fh, cap: int, where: str):
    """(line number, line) of a text or binary stream; a line longer than `cap` (and than RECORD_CAP, one record's
    most) is a TooLarge naming it: a file of one endless line is never held whole."""
    hint = cap < RECORD_CAP
    cap = min(cap, RECORD_CAP)
    n = 0
    while True:
        line = fh.readline(cap + 1)
        if not line:
            return
        n += 1
        if len(line) > cap and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
            raise too_large(f"{where}:{n}", cap, raise_hint=hint)
        yield n, line


def loads(data: str | bytes, where: str):
    """json.loads that names `where` for malformed or too deeply nested JSON (an ArtdataError, never
    RecursionError)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ArtdataError(f"{where}: JSON nested too deeply to read") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtdataError(f"{where}: malformed JSON ({exc})") from None


def json_answer(resp, what: str):
    """harvest.decode_json, with a too deeply nested answer an ArtdataError naming the URL too."""
    from artdata.harvest.runner import decode_json
    try:
        return decode_json(resp, what)
    except RecursionError:
        raise ArtdataError(f"{what}: JSON nested too deeply to read from {resp.request.url}") from None
