"""Training from WebDataset shards (`artdata train --shards URL`): the images are streamed, never materialized.

URL is the folder that `artdata manifests export ... --format webdataset` wrote (a path, `s3://...`,
`https://...`) or its `index.json`. The index names each split's shards with their sample counts and sizes.

Each epoch, the split's samples are numbered in shard order (training: the shards in an order shuffled with the
seed and the epoch, the same on every rank) and cut into contiguous ranges, one per DDP rank and, inside a rank,
one per loader worker: every sample is read once per epoch by exactly one worker, a worker opens only the shards
its range covers (at most one of them shared with the next worker) and stops reading where its range ends.
Training samples then pass a shuffle buffer seeded by (seed, epoch, rank, worker).

A shard is hostile until read: the index is checked (shard names of the form the exporter writes, relative to the
index, so it can steer reads nowhere else; counts and sizes as non-negative integers, at most 64 MB of JSON); a
tar is read as a stream, never extracted, never past the size its index gives; only regular members named
`<key>.jpg|json|cls` are read, each under a cap (image 64 MB, json 1 MB, cls 32 bytes); an image must hash to
its record's `image_key` and declare at most `MAX_PIXELS`. A sample that breaks a rule is skipped, logged and
counted (as the store path skips an unreadable image); a shard that cannot be read ends with one log line and the
run goes on.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import random
import re
import tarfile
from dataclasses import dataclass
from typing import Iterator

import torch
from PIL import Image

from artdata import ArtdataError

log = logging.getLogger("artdata.train")

INDEX = "index.json"
MAX_INDEX_BYTES = 64 << 20
MAX_MEMBER = {"jpg": 64 << 20, "json": 1 << 20, "cls": 32}
MAX_PIXELS = 64_000_000
MAX_SHARD_BYTES = 1 << 40
SHARD_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}-(train|validation|test)-[0-9]{6}\.tar$")
MEMBER_RE = re.compile(r"^([0-9A-Za-z_-]{1,128})\.(jpg|json|cls)$")
SPLITS = {"train": "train", "val": "validation", "test": "test"}     # the trainer's split -> the export's
SHUFFLE_BUFFER = 512


class ShardError(ArtdataError):
    pass


@dataclass(frozen=True)
class Shard:
    url: str
    samples: int
    bytes: int
    offset: int          # position of its first sample in the split, in index order


@dataclass(frozen=True)
class ShardIndex:
    url: str             # the folder
    name: str
    version: str
    classes: list
    multi_label: bool
    splits: dict         # the trainer's split name -> list[Shard]
    left_out: dict       # records of the version not exported (no stored image), by status

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def samples(self, split: str) -> int:
        return sum(s.samples for s in self.splits.get(split, []))


# ---------------------------------------------------------------- opening, the index

def _open(url: str):
    import fsspec
    kwargs = {}
    if url.split("://", 1)[0].lower() in ("http", "https"):
        import aiohttp
        kwargs["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=600, sock_connect=30, sock_read=60)}
    try:
        return fsspec.open(url, "rb", **kwargs).open()
    except (ImportError, ValueError) as exc:
        raise ShardError(f"{url}: {exc}".splitlines()[0]) from None


def _nonneg(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 50


def open_index(url: str) -> ShardIndex:
    """The checked index of an export folder (or of `.../index.json`)."""
    url = url.rstrip("/")
    folder = url[: -len(INDEX) - 1] if url.endswith("/" + INDEX) or url == INDEX else url
    where = f"{folder}/{INDEX}"
    try:
        with _open(where) as fh:
            raw = fh.read(MAX_INDEX_BYTES + 1)
    except FileNotFoundError:
        raise ShardError(f"{where}: no such file (export the shards with `artdata manifests export NAME DEST "
                         f"--format webdataset`)") from None
    except ShardError:
        raise
    except Exception as exc:
        raise ShardError(f"{where}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if len(raw) > MAX_INDEX_BYTES:
        raise ShardError(f"{where}: over {MAX_INDEX_BYTES} bytes; not an artdata shard index")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ShardError(f"{where}: not JSON: {exc}") from None
    return check_index(doc, folder, where)


def check_index(doc, folder: str, where: str) -> ShardIndex:
    from artdata.datasets.manifest import NAME_RE
    bad = lambda key, v: ShardError(f"{where}: {key}: unexpected value {str(v)[:80]!r}")
    if not isinstance(doc, dict) or doc.get("format") != "artdata-webdataset":
        raise ShardError(f"{where}: not an artdata WebDataset index (format {str(doc.get('format') if isinstance(doc, dict) else None)!r})")
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise bad("name", name)
    if not isinstance(version, str) or not re.fullmatch(r"[0-9a-f]{12}", version):
        raise bad("version", version)
    classes = doc.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and len(c) < 1000 for c in classes) \
            or len(classes) > 100_000 or len(set(classes)) != len(classes):
        raise bad("classes", classes)
    multi = doc.get("multi_label")
    if not isinstance(multi, bool):
        raise bad("multi_label", multi)
    splits_doc = doc.get("splits")
    if not isinstance(splits_doc, dict):
        raise bad("splits", splits_doc)
    splits = {}
    for ours, theirs in SPLITS.items():
        part = splits_doc.get(theirs)
        if part is None:
            continue
        if not isinstance(part, dict) or not isinstance(part.get("shards"), list):
            raise bad(f"splits.{theirs}", part)
        shards, offset = [], 0
        for i, s in enumerate(part["shards"]):
            key = f"splits.{theirs}.shards[{i}]"
            if not isinstance(s, dict):
                raise bad(key, s)
            f = s.get("file")
            if not isinstance(f, str) or not SHARD_RE.match(f) or SHARD_RE.match(f).group(1) != theirs:
                raise bad(f"{key}.file", f)
            if not _nonneg(s.get("samples")) or not _nonneg(s.get("bytes")) or s["bytes"] > MAX_SHARD_BYTES \
                    or s["samples"] * 1024 > s["bytes"]:       # a sample takes 2 tar blocks at least
                raise bad(f"{key}.samples/bytes", (s.get("samples"), s.get("bytes")))
            shards.append(Shard(posixpath.join(folder, f) if "://" in folder else f"{folder}/{f}",
                                s["samples"], s["bytes"], offset))
            offset += s["samples"]
        if part.get("samples") != offset:
            raise bad(f"splits.{theirs}.samples", part.get("samples"))
        splits[ours] = shards
    if not splits.get("train"):
        raise ShardError(f"{where}: no train shards")
    left = doc.get("left_out", {})
    if not isinstance(left, dict) or len(left) > 100 or not all(
            isinstance(k, str) and len(k) < 100 and _nonneg(v) for k, v in left.items()):
        raise bad("left_out", left)
    return ShardIndex(folder, name, version, classes, multi, splits, dict(left))


# ---------------------------------------------------------------- who reads what

def epoch_order(shards: list[Shard], shuffle: bool, seed: int, epoch: int) -> list[Shard]:
    if not shuffle:
        return list(shards)
    order = list(shards)
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def partition(shards: list[Shard], slot: int, slots: int) -> list[tuple[Shard, int, int]]:
    """The pieces (shard, first, stop) of the `slot`-th of `slots` equal contiguous ranges of the samples of
    `shards` (in this order): each sample falls in exactly one slot's pieces; sizes differ by at most one."""
    total = sum(s.samples for s in shards)
    lo, hi = slot * total // slots, (slot + 1) * total // slots
    out, pos = [], 0
    for s in shards:
        a, b = max(lo, pos), min(hi, pos + s.samples)
        if a < b:
            out.append((s, a - pos, b - pos))
        pos += s.samples
    return out


# ---------------------------------------------------------------- reading a shard

class _Capped(io.RawIOBase):
    """A stream that refuses to give more than `limit` bytes (the shard's size in the index)."""

    def __init__(self, fh, limit: int, url: str):
        self.fh, self.left, self.limit, self.url = fh, limit, limit, url

    def readable(self):
        return True

    def close(self):
        self.fh.close()
        super().close()

    def readinto(self, b):
        if self.left <= 0:
            if self.fh.read(1):
                raise OSError(f"longer than the {self.limit} bytes its index gives")
            return 0
        n = min(len(b), self.left)
        data = self.fh.read(n)
        b[:len(data)] = data
        self.left -= len(data)
        return len(data)


def open_shard(shard: Shard):
    """A shard's bytes as a buffered stream that ends with an error past the size its index gives."""
    return io.BufferedReader(_Capped(_open(shard.url), shard.bytes, shard.url), 1 << 20)


class Stats(dict):
    def add(self, reason: str, where: str, key: str | None = None):
        self[reason] = self.get(reason, 0) + 1
        if self[reason] <= 5:
            log.warning("shards: %s: %s%s", where, reason, f" (sample {key})" if key else "")


def read_samples(fh, url: str, stats: Stats) -> Iterator[tuple[str, dict]]:
    """(key, {ext: bytes}) for each sample of a tar stream, members read under their caps, never extracted."""
    key, parts = None, {}
    try:
        with tarfile.open(fileobj=fh, mode="r|") as tar:
            for m in tar:
                if not m.isreg():
                    stats.add("member that is not a regular file", url, m.name[:100])
                    continue
                hit = MEMBER_RE.match(m.name)
                if not hit:
                    stats.add("member with an unexpected name", url, m.name[:100])
                    continue
                k, ext = hit.groups()
                if m.size > MAX_MEMBER[ext]:
                    stats.add(f"{ext} member over {MAX_MEMBER[ext]} bytes", url, k)
                    continue
                if k != key:
                    if key is not None:
                        yield key, parts
                    key, parts = k, {}
                data = tar.extractfile(m).read(MAX_MEMBER[ext] + 1)
                if len(data) != m.size:
                    raise tarfile.ReadError(f"member {m.name} is truncated")
                parts[ext] = data
            if key is not None:
                yield key, parts
    except (tarfile.TarError, EOFError, OSError) as exc:
        stats.add(f"shard unreadable ({type(exc).__name__}: {str(exc)[:100]})", url)


def decode_checked(data: bytes, size: int):
    """JPEG bytes -> (size, size, 3) uint8, refusing an image that declares over MAX_PIXELS."""
    from artdata.train.data import decode
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    if w * h > MAX_PIXELS:
        raise ValueError(f"image of {w}x{h} over {MAX_PIXELS} pixels")
    return decode(data, size)


class ShardImages(torch.utils.data.IterableDataset):
    """Items as `ManifestImages` gives them: (uint8 CHW tensor, target, position in the split) or None."""

    def __init__(self, index: ShardIndex, split: str, load_size: int, *, shuffle: bool = False, seed: int = 0,
                 epoch: int = 0, rank: int = 0, world: int = 1, buffer: int = SHUFFLE_BUFFER):
        if split not in index.splits:
            raise ShardError(f"{index.url}: no {SPLITS.get(split, split)} shards")
        self.index, self.split, self.load_size = index, split, load_size
        self.shuffle, self.seed, self.epoch, self.rank, self.world, self.buffer = shuffle, seed, epoch, rank, world, buffer
        self.ncls = len(index.classes)
        self.stats = Stats()

    def __len__(self):             # this rank's share (the loader's progress and length)
        n = self.index.samples(self.split)
        return (self.rank + 1) * n // self.world - self.rank * n // self.world

    def pieces(self, worker: int = 0, workers: int = 1) -> list[tuple[Shard, int, int]]:
        order = epoch_order(self.index.splits[self.split], self.shuffle, self.seed, self.epoch)
        return partition(order, self.rank * workers + worker, self.world * workers)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        items = self._items(self.pieces(worker, workers))
        if not self.shuffle:
            yield from items
            return
        rng = random.Random(hash((self.seed, self.epoch, self.rank, worker)) & 0xFFFFFFFF)
        buf = []
        for it in items:
            if len(buf) < self.buffer:
                buf.append(it)
                continue
            j = rng.randrange(len(buf))
            buf[j], it = it, buf[j]
            yield it
        rng.shuffle(buf)
        yield from buf

    def _items(self, pieces):
        for shard, first, stop in pieces:
            try:
                fh = open_shard(shard)
            except Exception as exc:        # a store's own errors: the shard is logged and counted, the run goes on
                self.stats.add(f"shard not opened ({type(exc).__name__}: {str(exc)[:100]}); "
                               f"{stop - first} sample(s) missing", shard.url)
                continue
            got = 0
            with fh:
                pos = -1
                for key, parts in read_samples(fh, shard.url, self.stats):
                    pos += 1
                    if pos < first:
                        continue
                    if pos >= stop:
                        break
                    got += 1
                    yield self._item(key, parts, shard, shard.offset + pos)
            if got < stop - first:        # a short shard: logged with the count, the epoch goes on without them
                self.stats.add(f"shard has fewer samples than its index says ({first + got} of {stop}); "
                               f"{stop - first - got} sample(s) missing", shard.url)

    def _item(self, key: str, parts: dict, shard: Shard, position: int):
        where = shard.url
        if "jpg" not in parts:
            self.stats.add("sample without a jpg", where, key)
            return None
        meta = None
        if "json" in parts:
            try:
                meta = json.loads(parts["json"])
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                self.stats.add("sample with malformed json", where, key)
                return None
            if not isinstance(meta, dict):
                self.stats.add("sample whose json is not an object", where, key)
                return None
            want = meta.get("image_key")
            if want is not None and hashlib.sha256(parts["jpg"]).hexdigest() != want:
                self.stats.add("image that differs from its image_key", where, key)
                return None
        target = self._target(parts, meta)
        if target is None:
            self.stats.add("sample without a valid class", where, key)
            return None
        try:
            arr = decode_checked(parts["jpg"], self.load_size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            self.stats.add(f"image not decoded ({str(exc)[:80]})", where, key)
            return None
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), target, position

    def _target(self, parts: dict, meta: dict | None):
        if self.index.multi_label:
            idx = meta.get("label_indices") if meta else None
            if not isinstance(idx, list) or not all(isinstance(i, int) and 0 <= i < self.ncls for i in idx):
                return None
            v = torch.zeros(self.ncls)
            v[idx] = 1
            return v
        if "cls" in parts:
            text = parts["cls"].decode("ascii", "replace").strip()
            i = int(text) if text.isdigit() else -1
        else:
            i = meta.get("label_index") if meta else -1
        return i if isinstance(i, int) and 0 <= i < self.ncls else None


def create_shard_loader(index: ShardIndex, split: str, load_size: int, batch_size: int, workers: int, *,
                        shuffle: bool = False, seed: int = 0, epoch: int = 0, rank: int = 0, world: int = 1,
                        pin_memory: bool = False):
    from artdata.train.data import collate_skip
    ds = ShardImages(index, split, load_size, shuffle=shuffle, seed=seed, epoch=epoch, rank=rank, world=world)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip,
                                       pin_memory=pin_memory, drop_last=False)


def split_records(index: ShardIndex, split: str) -> tuple[list, list]:
    """(ids `source:source_id`, image keys) of a split's samples in index order, from their json members (for
    the predictions file); None where a sample has no readable json."""
    ids, keys, stats = [], [], Stats()
    for shard in index.splits.get(split, []):
        got = 0
        try:
            with open_shard(shard) as fh:
                for _, parts in read_samples(fh, shard.url, stats):
                    if got == shard.samples:
                        break
                    got += 1
                    try:
                        meta = json.loads(parts.get("json") or b"null")
                    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                        meta = None
                    meta = meta if isinstance(meta, dict) else {}
                    src, sid = meta.get("source"), meta.get("source_id")
                    ids.append(f"{src}:{sid}" if isinstance(src, str) and isinstance(sid, str) else None)
                    keys.append(meta.get("image_key") if isinstance(meta.get("image_key"), str) else None)
        except Exception as exc:
            stats.add(f"shard not read ({type(exc).__name__})", shard.url)
        ids += [None] * (shard.samples - got)
        keys += [None] * (shard.samples - got)
    return ids, keys
