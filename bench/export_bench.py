"""Export and shard-read throughput (bench/README.md, "Exports and shards").

    python bench/export_bench.py [--images 3000] [--size 256] [--workers 2]

Builds a class-per-folder import of synthetic photos (smooth gradients + noise, JPEG quality 90, stored at
--size px on the shorter side) and its movement split in a temporary home, then measures, each on a warm cache:
- `manifests export --format hf` and `--format webdataset` (images/s and MB/s written, sha256 checks included),
- the trainer's input: the store path (ManifestImages: one file per image) against the shard path
  (ShardImages: tar streams), both decoding to the same 256 px uint8 tensors, with 0 and --workers loader workers,
- `datasets.load_dataset` on the hf export (rows/s to iterate with the image decoded).
Each figure is the best of --rounds runs (store and shard runs alternate), this machine being shared.
`--keep DIR` keeps (and on a second run reuses) the generated home.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def photos(root: Path, n: int, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % classes
        d = root / f"class{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        w, h = 400 + int(rng.integers(0, 200)), 320 + int(rng.integers(0, 200))
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * (c + 1)) % 256, (y * 3) % 256, ((x + y) * (10 - c)) % 256], -1)
        arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
        (d / f"{i:06d}.jpg").write_bytes(buf.getvalue())


ROUNDS = 3


def timed(fn):
    """(result, best seconds of ROUNDS runs)."""
    best = None
    for _ in range(ROUNDS):
        t = time.perf_counter()
        out = fn()
        s = time.perf_counter() - t
        best = s if best is None else min(best, s)
    return out, best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", help="keep the temporary home here (and reuse it when it is there)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    global ROUNDS
    ROUNDS = a.rounds

    from artdata.datasets.export import ExportConfig, export
    from artdata.datasets.images import ImageConfig, ImageStore
    from artdata.paths import Home
    from artdata.splits.folder import import_folder
    from artdata.splits.recipes import build_split
    from artdata.train.data import collate_skip, create_loader, load_splits
    from artdata.train.shards import create_shard_loader, open_index

    tmp = Path(a.keep or tempfile.mkdtemp(prefix="artdata-export-bench-"))
    home = Home(tmp / "home")
    print(f"{a.images} images, stored at {a.size} px; {os.cpu_count()} cores; {tmp}")
    from artdata.datasets.manifest import ManifestError, load
    try:
        m = load(home.manifests, "bench-movement")
    except ManifestError:
        photos(tmp / "src", a.images)
        m = import_folder(home, tmp / "src", "bench", image=ImageConfig(size=a.size), workers=a.workers)
        m = build_split(home, "movement", m.ref, name="bench-movement", min_count=2)
    store = ImageStore(home.images)
    n = m.rows
    mb = sum(m.table(columns=["image_bytes"]).column("image_bytes").to_pylist()) / 1e6
    print(f"split {m.ref}: {n} images, {mb:.1f} MB of JPEG ({mb * 1e3 / n:.1f} kB each)")

    for fmt in ("hf", "webdataset"):
        dest = tmp / f"out-{fmt}"
        shutil.rmtree(dest, ignore_errors=True)
        export(m, store, str(dest), fmt, ExportConfig(shard_bytes=50_000_000))      # warm the page cache

        def once():
            shutil.rmtree(dest, ignore_errors=True)
            return export(m, store, str(dest), fmt, ExportConfig(shard_bytes=50_000_000))
        _, s = timed(once)
        print(f"export --format {fmt:10}: {n / s:8.0f} images/s  {mb / s:7.1f} MB/s  ({s:.2f} s)")

    import torch
    # one intra-op thread, as in DataLoader workers: on this loaded 2-core machine two threads make each
    # HWC->CHW copy of a 256 px image take ~5 ms instead of ~0.2 ms, which would hide the I/O being compared
    torch.set_num_threads(1)
    splits, classes, _, _ = load_splits(m)
    index = open_index(str(tmp / "out-webdataset"))
    from artdata.train.data import DataConfig
    cfg = DataConfig(image_size=224, load_size=256)
    for workers in (0, a.workers):
        def store_epoch():
            return sum(len(b[1]) for b in create_loader(splits["train"], store, cfg, 64, True, workers) if b[1] is not None)

        def shard_epoch():
            return sum(len(b[1]) for b in create_shard_loader(index, "train", 256, 64, workers, shuffle=True)
                       if b[1] is not None)
        store_epoch(), shard_epoch()
        k1, s1 = timed(store_epoch)
        k2, s2 = timed(shard_epoch)
        assert k1 == k2 == len(splits["train"].keys), (k1, k2)
        print(f"train input, {workers} workers: store {k1 / s1:7.0f} images/s   shards {k2 / s2:7.0f} images/s "
              f"({k2} images, decode to 256 px included)")

    from artdata.train.shards import Stats, open_shard, read_samples

    def store_bytes():
        return sum(len(store.path(k).read_bytes()) > 0 for k in splits["train"].keys)

    def shard_bytes():
        k = 0
        for sh in index.splits["train"]:
            with open_shard(sh) as fh:
                k += sum(1 for _ in read_samples(fh, sh.url, Stats()))
        return k
    store_bytes(), shard_bytes()
    k1, s1 = timed(store_bytes)
    k2, s2 = timed(shard_bytes)
    print(f"bytes only (no decode): store {k1 / s1:7.0f} images/s   shards {k2 / s2:7.0f} images/s")

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets
    d = datasets.load_dataset(str(tmp / "out-hf"), cache_dir=str(tmp / "hf-cache"))

    def hf_iter():
        return sum(1 for r in d["train"] if r["image"].size)
    k, s = timed(hf_iter)
    print(f"datasets.load_dataset(hf export) iteration with PIL decode: {k / s:7.0f} images/s")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
