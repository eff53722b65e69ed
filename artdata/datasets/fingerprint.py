"""A perceptual fingerprint of a decoded image: a 64-bit DCT hash of its trimmed luminance.

Made where an image is already decoded (`images.process_image`, which the image workers, the Scrapy
pipeline, import-folder and materialize all use) and kept in the record's `fingerprint` column;
`fingerprint_bytes` makes it from a stored JPEG for manifests made before.

    fp = fingerprint(img)          # int in [-2**63, 2**63): fits a Parquet int64 column
    fp, centre = fingerprints(img) # and the same hash of the picture's middle 80 % (the
                                   # `fingerprint_centre` column: candidates near in either)
    d = hamming(fp_a, fp_b)        # 0 (same picture) .. 64

The recipe (FINGERPRINT_VERSION names it; a split's card records it):
1. luminance only (a colour shift between two photographs of one work moves little);
2. a larger image is first reduced by a whole factor (exact box average); the image workers
   already hold the decoded, resized (256 px) image, which is used as it is;
3. solid frames are trimmed (a border one museum adds, a copy stand's backdrop), so that bordered
   and unbordered copies describe the same picture; paper is not a solid frame (see trim_frame);
4. resized to 32x32, 2-D DCT, the 63 AC coefficients of the 8x8 lowest frequencies and (8, 0),
   each bit set when its coefficient is above their median (insensitive to brightness, contrast,
   JPEG). Half the bits are set, so distances are even.

`structure` makes the second, finer description used to confirm a candidate pair
(`artdata.splits.neardup.similarity`). Measured on real artwork images in bench/README.md.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

FINGERPRINT_VERSION = "dct64-trim-v1"
CENTRE = 0.8         # the share of each side of the trimmed picture the centre fingerprint hashes
CENTRE_VERSION = "dct64-trim-centre80-v1"
HASH_SIDE = 32
WORK_SIDE = 384      # larger images are reduced by a whole factor first (stored ones are 256 px)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(HASH_SIDE)
# the 63 AC coefficients of the 8x8 lowest frequencies, and (8, 0): 64 bits
_ZIGZAG = [(u, v) for u in range(8) for v in range(8) if (u, v) != (0, 0)] + [(8, 0)]
_ZU = np.array([u for u, _ in _ZIGZAG])
_ZV = np.array([v for _, v in _ZIGZAG])
_ZIDX = _ZU * 8 + _ZV                      # their places in the 9x8 block, row by row
_DCT_ROWS = np.ascontiguousarray(_DCT[:9])
_DCT_COLS = np.ascontiguousarray(_DCT[:8].T)


def gray(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """The image's luminance ("L"), reduced by a whole factor while its longer side exceeds `side`
    (an exact box average; a stored 256 px image is used as it is)."""
    if img.mode not in ("L", "RGB"):
        if "A" in img.getbands() or img.mode == "P":
            img = img.convert("RGBA")
            bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, img)
        img = img.convert("RGB")
    if img.mode != "L":
        img = img.convert("L")               # one channel before any resampling: 3x less work
    factor = max(img.size) // side
    return img.reduce(factor) if factor >= 2 else img


def luminance(img: Image.Image, side: int = WORK_SIDE) -> np.ndarray:
    """float32 luminance (0..255) of `gray(img, side)`."""
    return np.asarray(gray(img, side), dtype=np.float32)


def _trim_once(a: np.ndarray, box: tuple[int, int, int, int], tol: float, share: float,
               max_trim: float) -> tuple[int, int, int, int]:
    top, bottom, left, right = box
    v = a[top:bottom, left:right]
    h, w = v.shape
    if h < 8 or w < 8:
        return box
    edge = np.concatenate([v[0], v[-1], v[:, 0], v[:, -1]])
    k = len(edge) // 2                       # the median, as np.median gives it, for less
    mid = np.partition(edge, (k - 1, k))
    colour = int((int(mid[k - 1]) + int(mid[k])) / 2) if len(edge) % 2 == 0 else int(mid[k])
    near_edge = np.abs(edge.astype(np.int16) - colour) <= tol
    # the share of each side (top, bottom, left, right) near that colour
    if (np.add.reduceat(near_edge, [0, w, 2 * w, 2 * w + h]) / (w, w, h, h) < share).all():
        return box                           # no side is a frame's row or column: most pictures
    near = np.abs(v.astype(np.int16) - colour) <= tol
    rows = near.mean(axis=1) >= share
    cols = near.mean(axis=0) >= share

    def run(mask: np.ndarray, limit: int) -> int:
        stop = np.flatnonzero(~mask[:limit])
        return int(stop[0]) if stop.size else limit

    lim_h, lim_w = int(h * max_trim), int(w * max_trim)
    return (top + run(rows, lim_h), bottom - run(rows[::-1], lim_h),
            left + run(cols, lim_w), right - run(cols[::-1], lim_w))


def trim_box(a: np.ndarray, tol: float = 6.0, share: float = 0.97, max_trim: float = 0.3,
             rounds: int = 3, shave: int = 2) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of `a` once solid frames are cut away: outer rows/columns (almost)
    all of one colour.

    The frame colour is the median of the outermost pixels; a row or column belongs to the frame
    while at least `share` of its pixels are within `tol` grey levels of it. Repeated (a museum's
    border around a copy stand's background is two frames), each time shaving `shave` more pixels
    (the ringing of the frame's edge). Paper is not a solid frame: its grain and the light's
    fall-off exceed `tol`, so a print's margin or a drawing's sheet stays part of the picture,
    the same in every copy. At most `max_trim` of a side goes per round."""
    box = (0, a.shape[0], 0, a.shape[1])
    for _ in range(rounds):
        new = _trim_once(a, box, tol, share, max_trim)
        if new == box:
            break
        t, b, l, r = new
        if min(b - t, r - l) > 4 * shave + 8:
            new = (t + shave, b - shave, l + shave, r - shave)
        box = new
    return box


def trim_frame(a: np.ndarray, **kw) -> np.ndarray:
    """`a` without its solid frames (see trim_box)."""
    t, b, l, r = trim_box(a, **kw)
    return a[t:b, l:r]


def resize_array(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """A float array resized to w x h with a box filter."""
    return np.asarray(Image.fromarray(a, mode="F").resize((w, h), Image.BOX), dtype=np.float32)


def _bits(small: np.ndarray) -> int:
    # only the 9x8 lowest frequencies are used: rows 0-8 and columns 0-7 of the 2-D DCT
    ac = (_DCT_ROWS @ small @ _DCT_COLS).ravel()[_ZIDX]
    mid = np.partition(ac, (31, 32))
    bits = ac > (mid[31] + mid[32]) / 2          # above the median of the 64
    value = int(np.packbits(bits, bitorder="little").view("<u8")[0])
    return value - (1 << 64) if value >= (1 << 63) else value


def hash_array(lum: np.ndarray) -> int:
    """The 64-bit hash of a (trimmed) luminance array, as a signed int64 value."""
    return _bits(resize_array(np.asarray(lum, np.float32), HASH_SIDE, HASH_SIDE).astype(np.float64))


def _whole(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int], int]:
    """(grey image, trim box (top, bottom, left, right), the fingerprint of what the box holds)."""
    g = gray(img)
    t, b, l, r = trim_box(np.asarray(g))
    small = g.resize((HASH_SIDE, HASH_SIDE), Image.BOX, box=(l, t, r, b))
    return g, (t, b, l, r), _bits(np.asarray(small, dtype=np.float64))


def fingerprint(img: Image.Image) -> int:
    """The perceptual fingerprint of a decoded image (see the module docstring)."""
    return _whole(img)[2]


def fingerprints(img: Image.Image) -> tuple[int, int]:
    """(fingerprint, centre fingerprint) of a decoded image, the trim made once: the second is the same
    hash of the middle CENTRE of the trimmed picture (CENTRE_VERSION). A crop of a few per cent a side
    (two photographs of one sheet, a museum's tighter framing) moves the picture inside the frame and
    can flip 10-16 bits of the first; the centre, which loses other pixels to the crop, often keeps
    closer, so a pair near in either is a candidate (bench/README.md: recall of planted crops)."""
    g, (t, b, l, r), whole = _whole(img)
    dx, dy = (r - l) * (1 - CENTRE) / 2, (b - t) * (1 - CENTRE) / 2
    # reducing_gap: a whole-factor reduction of the box first, then the box filter (a third less work)
    centre = g.resize((HASH_SIDE, HASH_SIDE), Image.BOX, box=(l + dx, t + dy, r - dx, b - dy), reducing_gap=2.0)
    return whole, _bits(np.asarray(centre, dtype=np.float64))


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def as_uint64(values) -> np.ndarray:
    """int64 fingerprints (as stored) -> uint64 array with the same bits."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


# ---------------------------------------------------------------- structure (for confirmation)

STRUCTURE_SIDE = 96


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected edges (numpy only; Pillow cannot blur float images)."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    p = np.pad(a, r, mode="reflect")
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, p)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, p).astype(np.float32)


def structure(img: Image.Image | np.ndarray, side: int = STRUCTURE_SIDE) -> np.ndarray:
    """Trimmed luminance at side x side, high-passed (minus a blur of side/12): what is drawn or
    painted, without paper tone and lighting fall-off (float32 grey levels, ~zero mean)."""
    if isinstance(img, np.ndarray):
        a = resize_array(np.asarray(img, np.float32), side, side)
    else:
        g = gray(img)
        t, b, l, r = trim_box(np.asarray(g))
        a = np.asarray(g.resize((side, side), Image.BOX, box=(l, t, r, b)), dtype=np.float32)
    return (a - _blur(a, side / 12)).astype(np.float32)


def fingerprint_bytes(data: bytes) -> int | None:
    """The fingerprint of an encoded image (a stored JPEG); None when it cannot be decoded."""
    both = fingerprints_bytes(data)
    return None if both is None else both[0]


def _of_bytes(data: bytes, make):
    """make(the decoded image) of an encoded image (a stored JPEG); None when it cannot be decoded."""
    import io
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return make(im)
    except (OSError, SyntaxError, ValueError, EOFError):
        return None


def fingerprints_bytes(data: bytes) -> tuple[int, int] | None:
    """`fingerprints` of an encoded image (a stored JPEG); None when it cannot be decoded."""
    return _of_bytes(data, fingerprints)


def structure_bytes(data: bytes) -> np.ndarray | None:
    """The structure map of an encoded image; None when it cannot be decoded."""
    return _of_bytes(data, structure)


# ---------------------------------------------------------------- fingerprints made from a store, kept

class StoreFingerprints:
    """Fingerprints made from a store's images for records that had none (manifests made before they were
    kept), kept beside the store so that they are made once, not at every split: the store is
    content-addressed, so an image key's fingerprints hold for good (for one recipe: the file is named
    after both versions). `<store>/.fingerprints/<FINGERPRINT_VERSION>+<CENTRE_VERSION>.jsonl`, one line
    {"k": key, "f": fingerprint, "c": centre} each, appended; a line that cannot be read is skipped (a
    killed run's last). Best effort: a store that cannot be written is read without it.

    The file is the home's, which may be shared or tampered with: it is read and written only as a regular file
    inside the store (a link there, or a .fingerprints folder leading out of it, is neither read nor written
    through; a FIFO or device is not opened for good), a line longer than any it writes is skipped unread, and
    with `wanted` only those keys are kept in memory."""

    MAX_LINE = 256          # a line it writes is about 120 bytes

    def __init__(self, store_root, wanted=None):
        from pathlib import Path
        self.root = Path(store_root)
        self.path = self.root / ".fingerprints" / f"{FINGERPRINT_VERSION}+{CENTRE_VERSION}.jsonl"
        self.wanted = None if wanted is None else set(wanted)
        self._known: dict[str, tuple[int, int]] | None = None
        self._fh = None
        self._writable = True

    def _open(self, flags: int):
        """The file opened with `flags`, refused (OSError) unless it is a regular file inside the store."""
        import os
        import stat
        folder = os.path.realpath(self.path.parent)
        root = os.path.realpath(self.root)
        if os.path.commonpath([folder, root]) != root:
            raise OSError(f"{self.path.parent} leads outside the image store {self.root}")
        fd = os.open(self.path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (flags & os.O_WRONLY and st.st_nlink > 1):   # (a hard link: another
            os.close(fd)                                                                  # file's name too)
            raise OSError(f"{self.path} is not a regular file of the store's own")
        return fd

    def _lines(self, fh):
        """The file's lines of at most MAX_LINE bytes (a longer one is skipped, never held whole)."""
        while True:
            line = fh.readline(self.MAX_LINE + 1)
            if not line:
                return
            if len(line) <= self.MAX_LINE:
                yield line
                continue
            while line and not line.endswith(b"\n"):      # the rest of an over-long line
                line = fh.readline(65536)

    def _load(self) -> dict[str, tuple[int, int]]:
        import json
        import os
        known: dict[str, tuple[int, int]] = {}
        try:
            with os.fdopen(self._open(os.O_RDONLY), "rb") as fh:
                for line in self._lines(fh):
                    try:
                        d = json.loads(line)
                        k, f, c = d["k"], d["f"], d["c"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    if (isinstance(k, str) and len(k) == 64 and all(ch in "0123456789abcdef" for ch in k)
                            and (self.wanted is None or k in self.wanted)
                            and all(type(v) is int and -2**63 <= v < 2**63 for v in (f, c))):
                        known[k] = (f, c)
        except OSError:
            pass
        return known

    def get(self, key: str) -> tuple[int, int] | None:
        if self._known is None:
            self._known = self._load()
        return self._known.get(key)

    def put(self, key: str, both: tuple[int, int]) -> None:
        import json
        import os
        if self._known is None:
            self._known = self._load()
        self._known[key] = both
        if not self._writable:
            return
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = os.fdopen(self._open(os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")
            self._fh.write(json.dumps({"k": key, "f": both[0], "c": both[1]}) + "\n")
            self._fh.flush()
        except OSError:
            self._writable = False

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
