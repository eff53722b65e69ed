"""Data: a split manifest -> batches of images and labels.

Storage (the content-addressed image store) is separate from decoding: `ManifestImages` reads
the JPEG bytes of one record and decodes them to a fixed-size uint8 tensor (`load_size` square,
shorter side resized then center-cropped; JPEG draft mode makes the decode cheap). Augmentation
and normalisation run afterwards on whole batches on the training device (`BatchTransform`):
random resized crop + flip for training, center crop for evaluation, optional grayscale,
ImageNet normalisation. A missing or corrupt image is skipped, logged once and counted; a run
never dies on one bad file.
"""
from __future__ import annotations

import io
import logging
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from artdata import ArtdataError
from artdata.datasets.images import ImageStore

log = logging.getLogger("artdata.train")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig:
    image_size: int = 224          # network input side
    load_size: int = 256           # side decoded from the store before augmentation
    grayscale: bool = False
    scale: tuple = (0.35, 1.0)     # random resized crop: fraction of the area
    ratio: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


def decode(data: bytes, size: int) -> np.ndarray:
    """JPEG bytes -> (size, size, 3) uint8: shorter side to `size`, center crop."""
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (size, size))
    im = im.convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    im = im.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    return np.array(im, dtype=np.uint8)


class ManifestImages(torch.utils.data.Dataset):
    """Items are (uint8 CHW tensor, target) or None for an unreadable image."""

    def __init__(self, keys: list[str], targets, store: ImageStore, load_size: int):
        self.keys, self.targets, self.store, self.load_size = keys, targets, store, load_size

    def __len__(self):
        return len(self.keys)

    def read(self, key: str) -> bytes:
        """The stored bytes of `key`; a store path that resolves outside the store (a symlink out of
        <home>/images) is refused, not read."""
        return self.store.get(key)

    def __getitem__(self, i):
        key = self.keys[i]
        try:
            arr = decode(self.read(key), self.load_size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, ArtdataError) as exc:
            log.warning("skipping image %s: %s", key, exc)
            return None
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), self.targets[i], i


def collate_skip(batch):
    """Drops unreadable items; returns (images, targets, n_skipped, dataset indices)."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return None, None, skipped, None
    images = torch.stack([b[0] for b in good])
    t0 = good[0][1]
    if isinstance(t0, torch.Tensor):
        targets = torch.stack([b[1] for b in good])
    else:
        targets = torch.tensor([b[1] for b in good], dtype=torch.long)
    return images, targets, skipped, torch.tensor([b[2] for b in good], dtype=torch.long)


class BatchTransform(torch.nn.Module):
    """uint8 NCHW batch -> normalised float batch, augmented when training; runs on any device."""

    def __init__(self, cfg: DataConfig, train: bool):
        super().__init__()
        self.cfg, self.train_mode = cfg, train
        ch = 1 if cfg.grayscale else 3
        mean = torch.tensor(cfg.mean).mean().view(1, 1, 1, 1) if cfg.grayscale else torch.tensor(cfg.mean).view(1, 3, 1, 1)
        std = torch.tensor(cfg.std).mean().view(1, 1, 1, 1) if cfg.grayscale else torch.tensor(cfg.std).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.channels = ch

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.float().div_(255)
        n = x.shape[0]
        size = self.cfg.image_size
        if self.train_mode:
            theta = self._random_crops(n, x.device, generator)
            grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        else:
            s = x.shape[-1]
            crop = max(1, round(s * 0.875)) if s > size else s
            o = (s - crop) // 2
            x = x[..., o:o + crop, o:o + crop]
            if crop != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=crop > size)
        if self.cfg.grayscale:
            x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        return (x - self.mean) / self.std

    def _random_crops(self, n, device, generator):
        cfg = self.cfg
        g = generator
        area = torch.empty(n).uniform_(*cfg.scale, generator=g)
        logr = torch.empty(n).uniform_(math.log(cfg.ratio[0]), math.log(cfg.ratio[1]), generator=g)
        r = torch.exp(logr)
        w = torch.sqrt(area * r).clamp(max=1.0)
        h = torch.sqrt(area / r).clamp(max=1.0)
        cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
        flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = w * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        return theta.to(device)


@dataclass
class SplitData:
    keys: list[str]
    targets: list            # class index, or multi-hot float tensor
    ids: list[str]           # source:source_id, for reports


def load_splits(manifest, multi_label: bool | None = None):
    """(splits {name: SplitData}, class names, multi_label) from a split manifest."""
    t = manifest.table(columns=["source", "source_id", "status", "image_key", "label", "labels", "split"])
    df = t.to_pandas()
    if df["split"].isna().all():
        from artdata import ArtdataError
        raise ArtdataError(f"manifest {manifest.ref} has no split column values; make one with `artdata build-split`")
    if multi_label is None:
        multi_label = df["label"].isna().all() and df["labels"].notna().any()
    ok = (df["status"] == "ok") & df["image_key"].notna()
    skipped = Counter(df.loc[~ok, "status"])
    df = df[ok]
    if multi_label:
        classes = sorted({t for ls in df["labels"] if ls is not None for t in ls})
    else:
        classes = sorted(df["label"].dropna().unique().tolist())
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split in ("train", "val", "test"):
        part = df[df["split"] == split]
        if multi_label:
            targets = []
            for ls in part["labels"]:
                v = torch.zeros(len(classes))
                for tag in (ls if ls is not None else []):
                    v[index[tag]] = 1
                targets.append(v)
        else:
            targets = [index[c] for c in part["label"]]
        out[split] = SplitData(part["image_key"].tolist(), targets,
                               (part["source"] + ":" + part["source_id"]).tolist())
    return out, classes, multi_label, dict(skipped)


def create_loader(split: SplitData, store: ImageStore, cfg: DataConfig, batch_size: int, shuffle: bool,
                  workers: int, sampler=None, seed: int = 0, pin_memory: bool = False):
    ds = ManifestImages(split.keys, split.targets, store, cfg.load_size)
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None,
                                       sampler=sampler, num_workers=workers, collate_fn=collate_skip,
                                       pin_memory=pin_memory, persistent_workers=workers > 0, generator=g,
                                       drop_last=False)
