"""Bytes in -> verified image out: decode (JPEG draft), resize, re-encode, content-addressed store.

`process_image` is a pure function of (bytes, ImageConfig) returning an `ImageResult`; a bad input
is a result with `status="failed"` and a reason, never an exception. `ImageStore` keeps JPEGs
under sharded sha256 paths and writes atomically. `ImagePool` runs `process_image` + store writes
in a process pool on all cores.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from artdata import ArtdataError
from artdata.datasets.fingerprint import fingerprints

# artdata checks the declared size itself (ImageConfig.max_pixels) before decoding anything,
# so that a bomb becomes a record with its declared size rather than Pillow's exception.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageConfig:
    """How stored images are made from what a source serves."""
    size: int = 256                 # target length of `side`, in pixels
    side: str = "shorter"           # "shorter" or "longer": which side gets `size`
    quality: int = 90               # JPEG quality of stored images
    upscale: bool = False           # enlarge images smaller than `size`?
    max_pixels: int = 120_000_000   # larger declared sizes are refused as decompression bombs
    max_bytes: int = 200_000_000    # larger bodies are refused before decoding

    def __post_init__(self):
        if self.side not in ("shorter", "longer"):
            raise ArtdataError(f"image side must be 'shorter' or 'longer', not {self.side!r}")
        if not 8 <= self.size <= 8192:
            raise ArtdataError(f"image size must be between 8 and 8192 pixels, not {self.size}")
        if not 1 <= self.quality <= 100:
            raise ArtdataError(f"JPEG quality must be between 1 and 100, not {self.quality}")


@dataclass
class ImageResult:
    status: str                     # "ok" or "failed"
    error: str | None = None
    key: str | None = None          # sha256 of the stored JPEG
    source_sha256: str | None = None
    width: int | None = None
    height: int | None = None
    orig_width: int | None = None
    orig_height: int | None = None
    nbytes: int | None = None
    data: bytes | None = None       # the stored JPEG (dropped once written by the pool)
    fingerprint: int | None = None  # perceptual hash of the stored pixels (datasets.fingerprint)
    fingerprint_centre: int | None = None   # the same of the picture's middle (datasets.fingerprint.CENTRE)

    def fields(self) -> dict:
        """The record columns this result fills."""
        return {"image_key": self.key, "source_sha256": self.source_sha256,
                "width": self.width, "height": self.height,
                "orig_width": self.orig_width, "orig_height": self.orig_height,
                "image_bytes": self.nbytes, "fingerprint": self.fingerprint,
                "fingerprint_centre": self.fingerprint_centre,
                "status": self.status, "error": self.error}


def target_size(w: int, h: int, cfg: ImageConfig) -> tuple[int, int]:
    """Keep aspect ratio; the chosen side becomes cfg.size (never enlarged unless cfg.upscale)."""
    ref = min(w, h) if cfg.side == "shorter" else max(w, h)
    if ref <= cfg.size and not cfg.upscale:
        return w, h
    scale = cfg.size / ref
    return max(1, round(w * scale)), max(1, round(h * scale))


def _sniff(data: bytes) -> str | None:
    """A reason to refuse `data` before decoding, or None."""
    if not data:
        return "empty body (0 bytes)"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")) or b"<html" in head:
        kind = "JSON" if head[:1] in (b"{", b"[") else "HTML"
        return f"{kind} instead of an image"
    return None


def process_image(data: bytes, cfg: ImageConfig = ImageConfig()) -> ImageResult:
    """Verify, decode, resize and re-encode one image. Never raises for bad bytes."""
    source_sha = hashlib.sha256(data).hexdigest() if data else None
    reason = _sniff(data)
    if reason is None and len(data) > cfg.max_bytes:
        reason = f"body of {len(data)} bytes exceeds max_bytes={cfg.max_bytes}"
    if reason:
        return ImageResult("failed", reason, source_sha256=source_sha)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            ow, oh = im.size
            if ow * oh > cfg.max_pixels:
                return ImageResult("failed", f"decompression bomb: {ow}x{oh} exceeds {cfg.max_pixels} pixels",
                                   source_sha256=source_sha, orig_width=ow, orig_height=oh)
            tw, th = target_size(ow, oh, cfg)
            if im.format == "JPEG":
                # decode at a reduced scale (1/2, 1/4, 1/8) no smaller than the target: cheap
                im.draft("RGB", (tw, th))
            im.load()
            if im.mode != "RGB":
                if im.mode in ("RGBA", "LA", "P", "PA"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGB", im.size, (255, 255, 255))
                    bg.paste(im, mask=im.getchannel("A"))
                    im = bg
                else:
                    im = im.convert("RGB")
            if im.size != (tw, th):
                im = im.resize((tw, th), Image.Resampling.BICUBIC, reducing_gap=2.0)
            out = io.BytesIO()
            im.save(out, format="JPEG", quality=cfg.quality, optimize=False)
            fps = fingerprints(im)   # the decoded, resized pixels are at hand (cost: bench/README.md)
    except UnidentifiedImageError:
        return ImageResult("failed", "not a recognised image format", source_sha256=source_sha)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ImageResult("failed", f"decompression bomb: {exc}", source_sha256=source_sha)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        kind = "truncated image" if "truncated" in msg.lower() or isinstance(exc, EOFError) else "corrupt image"
        return ImageResult("failed", f"{kind}: {msg}", source_sha256=source_sha)
    blob = out.getvalue()
    return ImageResult("ok", None, hashlib.sha256(blob).hexdigest(), source_sha, tw, th, ow, oh,
                       len(blob), blob, *fps)


_tmp_seq = itertools.count()
# the largest stored file read: no image artdata stores comes near (max_pixels of JPEG); a larger one (a sparse file
# planted in a shared home) is refused rather than read into memory
MAX_STORED_BYTES = 512 * 2**20


def _regular(path, st) -> None:
    """Refuse (OSError naming `path`) what is not a regular file of at most MAX_STORED_BYTES."""
    import stat
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file (a FIFO, device or folder); not read")
    if st.st_size > MAX_STORED_BYTES:
        raise OSError(f"{path} is {st.st_size:,} bytes, over the {MAX_STORED_BYTES:,} an image of the store may "
                      "have; not read")


class ImageStore:
    """Content-addressed JPEG store: <root>/<k[:2]>/<k[2:4]>/<k>.jpg, atomic writes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ArtdataError(f"not an image key (sha256 hex): {key!r}")
        return self.root / key[:2] / key[2:4] / f"{key}.jpg"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def resolve(self, key: str) -> Path:
        """The file that holds `key`, refused (OSError naming both) when it resolves outside the store: the
        store never writes a link, but a home can be copied, shared or tampered with, and a link out of it
        (to a key file, /dev/zero) must not be read into a report, an export or a push."""
        path = self.path(key)
        real = os.path.realpath(path)
        root = os.path.realpath(self.root)
        if os.path.commonpath([real, root]) != root:
            raise OSError(f"{path} leads outside the image store {self.root} (to {real}); not read")
        _regular(path, os.stat(real))       # a FIFO would hang the reader, a device never end
        return Path(real)

    def get(self, key: str) -> bytes:
        # O_NONBLOCK: a FIFO swapped in after resolve() opens without waiting for a writer, and is refused
        fd = os.open(self.resolve(key), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as fh:
            _regular(self.path(key), os.fstat(fd))
            data = fh.read(MAX_STORED_BYTES + 1)
        if len(data) > MAX_STORED_BYTES:
            raise OSError(f"{self.path(key)} grew past {MAX_STORED_BYTES:,} bytes while read; not read")
        return data

    def put(self, data: bytes, key: str | None = None) -> str:
        """Store `data` under its sha256 (computed if not given); a no-op when already present."""
        key = key or hashlib.sha256(data).hexdigest()
        dest = self.path(key)
        if dest.is_file():
            return key
        # a name of our own in the shard (no mkdir or mkstemp per image: both cost more than the write)
        tmp = dest.parent / f".tmp-{os.getpid()}-{next(_tmp_seq)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            try:
                fd = os.open(tmp, flags, 0o644)
            except FileNotFoundError:                  # the shard's first image
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, flags, 0o644)
        except FileExistsError:                        # left by a killed process with our pid
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
            tmp = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return key

    def check(self, key: str) -> str | None:
        """None if the image is present with the right checksum, else the problem."""
        p = self.path(key)
        if not p.is_file():
            return "missing"
        try:
            data = self.get(key)
        except OSError as exc:
            return str(exc)
        if hashlib.sha256(data).hexdigest() != key:
            return "checksum mismatch"
        return None


def process_and_store(data: bytes, cfg: ImageConfig, root: str) -> ImageResult:
    res = process_image(data, cfg)
    if res.status == "ok":
        ImageStore(root).put(res.data, res.key)
    res.data = None
    return res


def _process_file_and_store(path: str, cfg: ImageConfig, root: str) -> ImageResult:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return ImageResult("failed", f"cannot read {path}: {exc.strerror or exc}")
    return process_and_store(data, cfg, root)


def _worker_init(parent: int) -> None:
    """Pool workers leave Ctrl-C to the parent, and exit when the parent is gone (even SIGKILLed)."""
    import signal
    import threading
    import time
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.5)
    threading.Thread(target=watch, daemon=True).start()


class ImagePool:
    """Process images on all cores, writing results straight into the store.

    `submit(bytes)` returns a concurrent.futures.Future of an ImageResult (without pixel data).
    With workers=0 it runs in-thread (for debugging and tiny jobs).
    """

    def __init__(self, store: ImageStore, cfg: ImageConfig, workers: int | None = None, kind: str | None = None):
        self.store, self.cfg = store, cfg
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.kind = kind or os.environ.get("ARTDATA_IMAGE_POOL", "process")
        if self.kind not in ("thread", "process"):
            raise ArtdataError(f"image pool kind must be 'thread' or 'process', not {self.kind!r}")
        if self.workers > 0 and self.kind == "process":
            self._ex: Executor = ProcessPoolExecutor(self.workers, initializer=_worker_init, initargs=(os.getpid(),))
        else:
            self._ex = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="artdata-image")

    def submit(self, data: bytes):
        return self._ex.submit(process_and_store, data, self.cfg, str(self.store.root))

    def submit_file(self, path: str | os.PathLike):
        return self._ex.submit(_process_file_and_store, str(path), self.cfg, str(self.store.root))

    def close(self):
        self._ex.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

