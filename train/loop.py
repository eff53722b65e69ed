"""The thin trainer, read top to bottom: load_data, create model, train_one_epoch, evaluate, main.

Runs on CPU here and on a GPU when present (bf16 autocast with --amp, channels_last), and under
torchrun with DistributedDataParallel (nccl on GPUs, gloo on CPU). Imports only torch, numpy,
pandas, pyarrow, pillow (and torchvision for the zoo, when installed).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from artdata import ArtdataError
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import load, sha256_file
from artdata.paths import Home
from artdata.train import models as M
from artdata.train.data import BatchTransform, DataConfig, ManifestImages, SplitData, create_loader, load_splits
from artdata.train.metrics import Accumulator, MetricsFile, write_json

log = logging.getLogger("artdata.train")

MODES = ("scratch", "transfer", "finetune")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "plateau", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainArgs:
    manifest: str | None
    model: str
    mode: str = "scratch"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "none"
    step_size: int = 7
    gamma: float = 0.1
    image_size: int | None = None       # model's default when None
    load_size: int | None = None        # decoded size before augmentation (default image_size * 8/7)
    grayscale: bool | None = None       # model's default when None
    amp: bool = False
    channels_last: bool = False
    device: str = "auto"
    workers: int = 2
    seed: int = 0
    resume: bool = False
    out: str | None = None
    weights: str | None = None          # DEFAULT | none | an enum name | a local .pth/.safetensors file (zoo)
    head: str = "linear"                # linear | mlp (one hidden layer) | mlp3 (culture study)
    head_width: int = 256
    dropout: float = 0.5
    unfreeze_last: int = 0              # fine-tune only the last K backbone blocks + head
    init_head: str | None = None        # a transfer run whose head initialises this one
    feature_cache: bool = True          # transfer mode: backbone features computed once, on disk
    augment: bool = True
    home: str | None = None
    log_every: int = 0
    max_steps: int = 0                  # training batches per epoch at most (0: all); smoke tests, GPU checks
    run_name: str | None = None         # the run folder under <home>/runs [<manifest>-<model>]
    shards: str | None = None           # WebDataset shards (an export folder: path, s3://, https://), not the store

    def validate(self):
        for name, value, allowed in (("mode", self.mode, MODES), ("optimizer", self.optimizer, OPTIMIZERS),
                                     ("scheduler", self.scheduler, SCHEDULERS), ("device", self.device, DEVICES),
                                     ("head", self.head, M.HEADS)):
            if value not in allowed:
                raise ArtdataError(f"--{name} {value!r} is not one of: {', '.join(allowed)}")
        if self.model not in M.all_names():
            raise ArtdataError(f"unknown model {self.model!r}; choose from: {', '.join(M.all_names())}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ArtdataError("--epochs and --batch-size must be at least 1 and --lr positive")
        if self.unfreeze_last < 0 or self.max_steps < 0 or self.workers < 0:
            raise ArtdataError("--unfreeze-last, --max-steps and --workers cannot be negative")
        if self.run_name is not None and (not self.run_name or self.run_name in (".", "..")
                                          or any(c in self.run_name for c in "/\\")):
            raise ArtdataError(f"--run-name {self.run_name!r}: a plain folder name, without / or ..")
        if M.is_weights_file(self.weights) and not Path(self.weights).is_file():
            raise ArtdataError(f"--weights {self.weights}: no such file")


def study_configs() -> dict[str, Path]:
    """The shipped configs (one per study model): name -> file."""
    from importlib import resources
    try:
        folder = resources.files("artdata.configs")
    except ModuleNotFoundError:
        return {}
    return {Path(f.name).stem: Path(str(f)) for f in folder.iterdir() if f.name.endswith(".toml")}


def load_config(path: str) -> dict:
    """Options from a JSON or TOML file (the same names as the command-line options, with _), or from a
    shipped study config named without its folder and suffix (`003-culture-resnet50-finetune`)."""
    p = Path(path)
    if not p.is_file() and not p.suffix and "/" not in path:
        shipped = study_configs()
        if path not in shipped:
            raise ArtdataError(f"--config {path}: no such file, nor a shipped config "
                               f"(those are: {', '.join(sorted(shipped))})")
        p = shipped[path]
    try:
        if p.suffix == ".toml":
            import tomllib
            data = tomllib.loads(p.read_text())
        else:
            data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ArtdataError(f"--config {path}: {exc}") from None
    names = {f.name for f in dataclasses.fields(TrainArgs)}
    unknown = [k for k in data if k.replace("-", "_") not in names]
    if unknown:
        raise ArtdataError(f"--config {path}: unknown option(s) {', '.join(unknown)}")
    return {k.replace("-", "_"): v for k, v in data.items()}


# ---------------------------------------------------------------- distributed helpers

def dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device):
    world, rank, _ = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, rank


def all_reduce_sum(values: list[float], device) -> list[float]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------- setup

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ArtdataError("--device cuda: no CUDA device is available here (use --device auto or cpu)")
    if name == "cuda":
        _, _, local = dist_info()
        return torch.device("cuda", local)
    return torch.device("cpu")


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_trainable(model: nn.Module, args: TrainArgs):
    """scratch/finetune: everything; transfer: the head only; --unfreeze-last K: head + last K blocks."""
    if args.mode == "transfer" or args.unfreeze_last:
        for p in model.backbone.parameters():
            p.requires_grad = False
        if args.unfreeze_last:
            for block in M.backbone_blocks(model)[-args.unfreeze_last:]:
                for p in block.parameters():
                    p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]


def check_image_size(args: TrainArgs, size: int) -> None:
    """A zoo network given an input too small for it fails here in one line, not deep in a forward pass."""
    if args.model not in M.MIN_SIZE:
        return
    trains_aux = args.model == "inception_v3" and args.mode != "transfer" and not args.unfreeze_last
    least = M.AUX_MIN_SIZE if trains_aux else M.MIN_SIZE[args.model]
    if size < least:
        why = (" (its auxiliary classifier trains with it; 75 px in transfer mode or with --unfreeze-last)"
               if trains_aux else "")
        raise ArtdataError(f"--image-size {size}: {args.model} takes inputs of at least {least} px{why}")


def set_train_mode(model: nn.Module, args: TrainArgs):
    """Training mode, except frozen layers: they keep their batch-norm statistics and use no dropout
    (transfer: the whole backbone; --unfreeze-last K: all but the last K blocks)."""
    model.train()
    inner = unwrap(model)
    if (args.mode == "transfer" or args.unfreeze_last) and hasattr(inner, "backbone"):
        inner.backbone.eval()
        if args.unfreeze_last:
            for block in M.backbone_blocks(inner)[-args.unfreeze_last:]:
                block.train()


def create_optimizer(params, args: TrainArgs):
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    if args.optimizer == "adam":
        return torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def create_scheduler(opt, args: TrainArgs):
    if args.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=args.step_size, gamma=args.gamma)
    if args.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=args.gamma, patience=2)
    if args.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    return None


# ---------------------------------------------------------------- one epoch

def compute_loss(out, targets, loss_fn):
    """(loss, logits) of a forward pass; inception_v3's training output adds its auxiliary classifier's loss
    with weight AUX_WEIGHT (evaluation outputs have no auxiliary logits)."""
    if isinstance(out, M.AuxOutput):
        return loss_fn(out.logits.float(), targets) + M.AUX_WEIGHT * loss_fn(out.aux.float(), targets), out.logits
    return loss_fn(out.float(), targets), out


def train_one_epoch(model, loss_fn, opt, loader, transform, device, epoch, args, num_classes, multi):
    set_train_mode(model, args)
    acc = Accumulator(num_classes, multi)
    gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    skipped, t0, n = 0, time.perf_counter(), 0
    for i, batch in enumerate(loader):
        images, targets, sk, _ = batch
        skipped += sk
        if images is None:
            continue
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        x = transform(images, gen) if transform is not None else images
        if args.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            loss, logits = compute_loss(model(x), targets, loss_fn)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc.add(logits, targets, loss.item())
        n += targets.shape[0]
        if args.log_every and i % args.log_every == 0:
            log.info("epoch %d step %d loss %.4f", epoch, i, loss.item())
        if args.max_steps and i + 1 >= args.max_steps:
            break
    res = acc.result()
    seconds = time.perf_counter() - t0
    res.update(seconds=seconds, images_per_s=n / seconds if seconds else 0.0, skipped=skipped)
    return res


@torch.no_grad()
def evaluate(model, loss_fn, loader, transform, device, args, num_classes, multi):
    model.eval()
    acc = Accumulator(num_classes, multi)
    skipped, t0, n = 0, time.perf_counter(), 0
    offset = 0
    for images, targets, sk, idx in loader:
        skipped += sk
        if images is None:
            continue
        if idx is None:      # cached features: sequential
            idx = torch.arange(offset, offset + targets.shape[0])
        offset += targets.shape[0] + sk
        acc.indices.append(idx)
        images, targets = images.to(device), targets.to(device)
        x = transform(images) if transform is not None else images
        if args.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            logits = model(x)
        acc.add(logits, targets, loss_fn(logits.float(), targets).item())
        n += targets.shape[0]
    res = acc.result()
    seconds = time.perf_counter() - t0
    res.update(seconds=seconds, images_per_s=n / seconds if seconds else 0.0, skipped=skipped)
    return res


# ---------------------------------------------------------------- feature cache

def feature_key(args: TrainArgs, manifest_ref: str, dcfg: DataConfig) -> str:
    weights = args.weights
    if M.is_weights_file(weights):    # the file's content, not its name
        weights = "sha256:" + sha256_file(Path(weights))
    blob = json.dumps({"model": args.model, "weights": weights, "manifest": manifest_ref,
                       "transform": dataclasses.asdict(dcfg), "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@torch.no_grad()
def compute_features(model, loader, transform, device, args):
    model.eval()
    feats, targets, skipped = [], [], 0
    for images, t, sk, _ in loader:
        skipped += sk
        if images is None:
            continue
        x = transform(images.to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            f = torch.flatten(model.backbone(x), 1)
        feats.append(f.float().cpu())
        targets.append(t)
    return torch.cat(feats), torch.cat(targets), skipped


def cached_features(model, splits, store, dcfg, device, args, home: Home, manifest_ref: str):
    """{split: TensorDataset of (features, targets)}; computed once, then read from disk."""
    path = home.root / "cache" / "features" / f"{feature_key(args, manifest_ref, dcfg)}.pt"
    if path.is_file():
        data = torch.load(path, weights_only=True)
        log.info("feature cache hit: %s", path)
    else:
        evalt = BatchTransform(dcfg, train=False).to(device)
        data = {}
        for name, split in splits.items():
            if not split.keys:
                continue
            loader = create_loader(split, store, dcfg, args.batch_size, False, args.workers)
            f, t, _ = compute_features(model, loader, evalt, device, args)
            data[name] = {"x": f, "y": t}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        torch.save(data, tmp)
        os.replace(tmp, path)
    return {k: torch.utils.data.TensorDataset(v["x"], v["y"]) for k, v in data.items()}, path


def tensor_loader(ds, batch_size, shuffle, seed):
    def collate(items):
        x = torch.stack([a for a, _ in items])
        y = torch.stack([b for _, b in items])
        return x, y, 0, None
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=g)


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(path: Path, **state):
    tmp = path.with_suffix(".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def link_checkpoint(src: Path, dst: Path):
    """`dst` becomes the same file as `src` (a hard link, so a big model's state is written once; a copy
    where links are not possible). `src` is later replaced by os.replace, which leaves `dst` intact."""
    tmp = dst.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def unwrap(model):
    return model.module if hasattr(model, "module") else model


def resolve_run(run: str, home: Home) -> Path:
    """A run folder given as a path, or as a name under <home>/runs."""
    p = Path(run)
    if not p.is_dir() and not p.is_absolute() and (home.runs / run).is_dir():
        p = home.runs / run
    return p


def init_head_checkpoint(run: str, home: Home) -> Path:
    """The best checkpoint of the --init-head run (a folder, or a run name under <home>/runs), or one line."""
    path = resolve_run(run, home) / "checkpoint_best.pt"
    if not path.is_file():
        raise ArtdataError(f"--init-head {run}: no checkpoint_best.pt there (a finished training run folder, "
                           f"or a run name under {home.runs})")
    return path


def load_head(model: nn.Module, run: str, home: Home) -> Path:
    """Copies the head of a finished run (--init-head) into `model`'s head; fails in one line when the run
    is missing or its head does not fit (another model, head or number of classes)."""
    path = init_head_checkpoint(run, home)
    init = torch.load(path, map_location="cpu", weights_only=False)
    head_state = {k[5:]: v for k, v in init["model"].items() if k.startswith("head.")}
    head = unwrap(model).head
    own = head.state_dict()
    bad = [k for k in own if k not in head_state or head_state[k].shape != own[k].shape]
    if bad or len(head_state) != len(own):
        raise ArtdataError(f"--init-head {run}: its head ({init['args'].get('model')}, head "
                           f"{init['args'].get('head')}, {len(init.get('classes', []))} classes) does not fit this "
                           f"model's head (first mismatched key {(bad or sorted(set(head_state) - set(own)))[0]!r})")
    head.load_state_dict(head_state)
    return path


# ---------------------------------------------------------------- main

def main(args: TrainArgs) -> dict:
    args.validate()
    home = Home.resolve(args.home)
    index = None
    if args.shards:             # the export's index stands for the manifest: its name, version and classes
        from artdata.train.shards import open_index
        manifest = index = open_index(args.shards)
        name, _, version = (args.manifest or index.name).partition("@")
        if name != index.name or not index.version.startswith(version):
            raise ArtdataError(f"--shards {args.shards} hold {index.ref}, not --manifest {args.manifest}")
    else:
        manifest = load(home.manifests, args.manifest)
    device = resolve_device(args.device)
    world, rank = init_distributed(device)
    seed_everything(args.seed)
    out = Path(args.out) if args.out else home.runs / (args.run_name or f"{manifest.name}-{args.model}")
    if args.init_head:          # checked before anything is built or written
        init_head_checkpoint(args.init_head, home)
    if args.weights is None:
        args.weights = "none" if args.mode == "scratch" or args.model in M.MODELS else "DEFAULT"

    if args.model == "softmax":
        if index is not None:
            raise ArtdataError("--shards: the softmax model trains on the manifest's features table, not on images; "
                               "use --manifest")
        return train_softmax(args, manifest, out, device)

    if index is not None:
        splits, classes, multi, status_skipped = {}, index.classes, index.multi_label, dict(index.left_out)
        sizes = {k: index.samples(k) for k in ("train", "val", "test")}
    else:
        splits, classes, multi, status_skipped = load_splits(manifest)
        sizes = {k: len(v.keys) for k, v in splits.items()}
    if not sizes["train"]:
        raise ArtdataError(f"manifest {manifest.ref} has no usable training images (status ok)")
    image_size = args.image_size or M.default_image_size(args.model)
    check_image_size(args, image_size)
    gray = M.default_grayscale(args.model) if args.grayscale is None else args.grayscale
    dcfg = DataConfig(image_size=image_size, load_size=args.load_size or max(image_size, round(image_size * 8 / 7)),
                      grayscale=gray, flip=args.augment, scale=(0.35, 1.0) if args.augment else (1.0, 1.0),
                      ratio=(3 / 4, 4 / 3) if args.augment else (1.0, 1.0))
    store = ImageStore(home.images)
    model = M.create_model(args.model, len(classes), in_ch=1 if gray else 3, weights=args.weights, head=args.head,
                           head_width=args.head_width, dropout=args.dropout).to(device)
    with torch.no_grad():   # materialise lazy layers at this input size
        model.eval()
        model(torch.zeros(2, 1 if gray else 3, image_size, image_size, device=device))
    if args.init_head:
        load_head(model, args.init_head, home)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = set_trainable(model, args)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    loss_fn = nn.BCEWithLogitsLoss() if multi else nn.CrossEntropyLoss()

    config = {**dataclasses.asdict(args), "image_size": image_size, "grayscale": gray, "load_size": dcfg.load_size,
              "manifest_ref": manifest.ref, "classes": classes, "multi_label": multi, "device": str(device),
              "world_size": world, "torch": torch.__version__, "records_without_image": status_skipped,
              "trainable_parameters": sum(p.numel() for p in params),
              "parameters": sum(p.numel() for p in model.parameters())}

    use_cache = (args.mode == "transfer" and args.feature_cache and not args.unfreeze_last and world == 1
                 and index is None)
    if use_cache:
        feats, cache_path = cached_features(unwrap(model), splits, store, dcfg, device, args, home, manifest.ref)
        config["feature_cache_file"] = str(cache_path)
        train_loader_fn = lambda epoch: tensor_loader(feats["train"], args.batch_size, True, args.seed + epoch)
        eval_loader = {k: tensor_loader(v, args.batch_size, False, 0) for k, v in feats.items()}
        head = unwrap(model).head
        step_model, train_t, eval_t = head, None, None
        params = list(head.parameters())
    elif index is not None:     # streamed shards: each rank and loader worker reads its own share of the samples
        from artdata.train.shards import create_shard_loader

        def train_loader_fn(epoch):
            return create_shard_loader(index, "train", dcfg.load_size, args.batch_size, args.workers, shuffle=True,
                                       seed=args.seed, epoch=epoch, rank=rank, world=world,
                                       pin_memory=device.type == "cuda")
        eval_loader = {k: create_shard_loader(index, k, dcfg.load_size, args.batch_size, args.workers)
                       for k, n in sizes.items() if n}
        step_model = model
        if world > 1:
            step_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        train_t = BatchTransform(dcfg, train=args.augment).to(device)
        eval_t = BatchTransform(dcfg, train=False).to(device)
    else:
        sampler_fn = None
        if world > 1:
            sampler = torch.utils.data.distributed.DistributedSampler(
                ManifestImages(splits["train"].keys, splits["train"].targets, store, dcfg.load_size), seed=args.seed)
            sampler_fn = sampler

        def train_loader_fn(epoch):
            if sampler_fn is not None:
                sampler_fn.set_epoch(epoch)
            return create_loader(splits["train"], store, dcfg, args.batch_size, sampler_fn is None, args.workers,
                                 sampler=sampler_fn, seed=args.seed + epoch, pin_memory=device.type == "cuda")
        eval_loader = {k: create_loader(v, store, dcfg, args.batch_size, False, args.workers)
                       for k, v in splits.items() if v.keys}
        step_model = model
        if world > 1:
            step_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        train_t = BatchTransform(dcfg, train=args.augment).to(device)
        eval_t = BatchTransform(dcfg, train=False).to(device)

    if rank == 0:
        write_json(out / "config.json", config)
    opt = create_optimizer(params, args)
    sched = create_scheduler(opt, args)
    metrics = MetricsFile(out, args.resume)
    start, best = 0, -1.0
    last = out / "checkpoint_last.pt"
    if args.resume and last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        unwrap(model).load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck.get("scheduler"):
            sched.load_state_dict(ck["scheduler"])
        start, best = ck["epoch"] + 1, ck["best"]
        metrics.truncate(start)
        log.info("resumed from %s at epoch %d", last, start)
    elif args.resume:
        log.warning("--resume: no checkpoint in %s; starting from scratch", out)

    for epoch in range(start, args.epochs):
        torch.manual_seed(args.seed * 7919 + epoch)
        lr = opt.param_groups[0]["lr"]
        # shards give ranks shares that differ by a sample or so: DDP's join lets a rank that ends first wait
        with step_model.join() if index is not None and world > 1 else contextlib.nullcontext():
            tr = train_one_epoch(step_model, loss_fn, opt, train_loader_fn(epoch), train_t, device, epoch, args,
                                 len(classes), multi)
        tot = all_reduce_sum([tr["loss"] * tr["count"], tr["top1"] * tr["count"], tr["count"]], device)
        tr["loss"], tr["top1"] = tot[0] / tot[2], tot[1] / tot[2]
        row = {"epoch": epoch, "split": "train", "lr": lr, **_scalars(tr)}
        va = None
        if rank == 0:
            metrics.add(row)
            if "val" in eval_loader:
                va = evaluate(unwrap(model) if not use_cache else head, loss_fn, eval_loader["val"], eval_t, device,
                              args, len(classes), multi)
                metrics.add({"epoch": epoch, "split": "val", "lr": lr, **_scalars(va)})
        score = va["top1"] if va else tr["top1"]
        if sched is not None:
            sched.step(score) if args.scheduler == "plateau" else sched.step()
        if rank == 0:
            state = {"model": unwrap(model).state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict() if sched is not None else None, "epoch": epoch,
                     "best": max(best, score), "args": dataclasses.asdict(args), "classes": classes,
                     "manifest": manifest.ref, "multi_label": multi, "config": config}
            save_checkpoint(last, **state)
            if score > best:
                best = score
                link_checkpoint(last, out / "checkpoint_best.pt")
            log.info("epoch %d: train loss %.4f top1 %.3f%s", epoch, tr["loss"], tr["top1"],
                     f", val top1 {va['top1']:.3f}" if va else "")

    final = {}
    if rank == 0:
        best_ck = torch.load(out / "checkpoint_best.pt", map_location=device, weights_only=False)
        unwrap(model).load_state_dict(best_ck["model"])
        for split in ("test", "val"):
            if split in eval_loader:
                r = evaluate(model if not use_cache else unwrap(model).head, loss_fn, eval_loader[split], eval_t,
                             device, args, len(classes), multi)
                pred = r.pop("_pred", None)
                final[split] = r
                if split == "test" and pred is not None and not use_cache:
                    write_predictions(out / "predictions_test.parquet", pred,
                                      splits["test"] if index is None else _shard_split(index, "test"), classes)
        result = {"manifest": manifest.ref, "model": args.model, "classes": classes, "multi_label": multi,
                  "best_epoch": best_ck["epoch"], **{f"{s}_{k}": v for s, r in final.items()
                                                       for k, v in _scalars(r).items() if k in ("top1", "top3", "loss")},
                  "splits": final, "out": str(out)}
        write_json(out / "final.json", result)
        final = result
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return final


def write_predictions(path: Path, pred: dict, split, classes) -> None:
    """One row per evaluated image: id, image key, target, prediction, top-3 (single-label runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    idx, target, top3 = pred["index"], pred["target"], pred["top3"]
    table = pa.table({"id": [split.ids[i] for i in idx], "image_key": [split.keys[i] for i in idx],
                      "target": [classes[t] for t in target], "pred": [classes[p[0]] for p in top3],
                      "top3": [[classes[k] for k in p] for p in top3],
                      "correct": [t == p[0] for t, p in zip(target, top3)]})
    tmp = path.with_suffix(".part")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _shard_split(index, split: str) -> SplitData:
    """A split of shards as SplitData (ids and image keys from the samples' json), for the predictions file."""
    from artdata.train.shards import split_records
    ids, keys = split_records(index, split)
    return SplitData(keys, [], ids)


def _scalars(r: dict) -> dict:
    return {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ---------------------------------------------------------------- the metadata model

def train_softmax(args: TrainArgs, manifest, out: Path, device) -> dict:
    """Multinomial logistic regression on the `features` table of a price split (appraisal study)."""
    feats = manifest.extra_table("features").to_pandas()
    cols = [c for c in feats.columns if c not in ("source", "source_id", "split", "label")]
    classes = sorted(feats["label"].unique().tolist())
    index = {c: i for i, c in enumerate(classes)}
    x = torch.tensor(feats[cols].to_numpy(dtype=np.float32))
    mu, sd = x.mean(0), x.std(0).clamp(min=1e-6)
    dating = cols.index("dating") if "dating" in cols else None
    if dating is not None:   # standardise the one numeric column; one-hots stay 0/1
        x[:, dating] = (x[:, dating] - mu[dating]) / sd[dating]
    y = torch.tensor([index[c] for c in feats["label"]])
    model = M.create_model("softmax", len(classes), num_features=len(cols)).to(device)
    out.mkdir(parents=True, exist_ok=True)
    opt = create_optimizer(model.parameters(), args)
    loss_fn = nn.CrossEntropyLoss()
    split = feats["split"].to_numpy()
    ds = {s: torch.utils.data.TensorDataset(x[split == s], y[split == s]) for s in ("train", "val", "test")
          if (split == s).any()}
    metrics = MetricsFile(out, False)
    write_json(out / "config.json", {**dataclasses.asdict(args), "manifest_ref": manifest.ref, "classes": classes,
                                     "features": cols})
    best, best_state = -1.0, None
    for epoch in range(args.epochs):
        torch.manual_seed(args.seed * 7919 + epoch)
        tr = train_one_epoch(model, loss_fn, opt, tensor_loader(ds["train"], args.batch_size, True, args.seed + epoch),
                             None, device, epoch, args, len(classes), False)
        metrics.add({"epoch": epoch, "split": "train", "lr": args.lr, **_scalars(tr)})
        ev = ds.get("val", ds["train"])
        va = evaluate(model, loss_fn, tensor_loader(ev, 1024, False, 0), None, device, args, len(classes), False)
        metrics.add({"epoch": epoch, "split": "val", "lr": args.lr, **_scalars(va)})
        if va["top1"] > best:
            best, best_state = va["top1"], {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    save_checkpoint(out / "checkpoint_best.pt", model=best_state, args=dataclasses.asdict(args), classes=classes,
                    manifest=manifest.ref, features=cols, epoch=args.epochs - 1)
    final = {"manifest": manifest.ref, "model": "softmax", "classes": classes, "splits": {}, "out": str(out)}
    for s in ("test", "val"):
        if s in ds:
            r = evaluate(model, loss_fn, tensor_loader(ds[s], 1024, False, 0), None, device, args, len(classes), False)
            r.pop("_pred", None)
            final["splits"][s] = r
            final.update({f"{s}_{k}": r[k] for k in ("top1", "top3") if k in r})
    write_json(out / "final.json", final)
    return final


@dataclass
class LoadedRun:
    model: nn.Module
    args: TrainArgs
    config: dict
    classes: list
    multi: bool
    splits: dict
    dcfg: DataConfig
    home: Home
    device: torch.device


def load_run(run: str, home: str | None = None, device: str = "auto") -> LoadedRun:
    """A finished run's best model, rebuilt from its checkpoint, with its data and settings."""
    out = Path(run)
    ck_path = out / "checkpoint_best.pt"
    if not ck_path.is_file():
        raise ArtdataError(f"{run}: no checkpoint_best.pt (is it a training run folder?)")
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    args = TrainArgs(**{**ck["args"], "resume": False, "home": home or ck["args"].get("home")})
    if args.model == "softmax":
        raise ArtdataError(f"{run}: the softmax model works on metadata, not images (see its final.json)")
    cfg = ck["config"]
    h = Home.resolve(args.home)
    if args.shards:             # a run on shards is evaluated on them (no manifest or store needed)
        classes, multi, splits = cfg["classes"], cfg["multi_label"], {}
    else:
        manifest = load(h.manifests, cfg["manifest_ref"])
        splits, classes, multi, _ = load_splits(manifest, cfg["multi_label"])
    dev = resolve_device(device)
    dcfg = DataConfig(image_size=cfg["image_size"], load_size=cfg["load_size"], grayscale=cfg["grayscale"])
    model = M.create_model(args.model, len(classes), in_ch=1 if cfg["grayscale"] else 3, weights="none",
                           head=args.head, head_width=args.head_width, dropout=args.dropout).to(dev)
    with torch.no_grad():
        model.eval()
        model(torch.zeros(2, 1 if cfg["grayscale"] else 3, cfg["image_size"], cfg["image_size"], device=dev))
    model.load_state_dict(ck["model"])
    model.eval()
    return LoadedRun(model, args, cfg, classes, multi, splits, dcfg, h, dev)


def evaluate_run(run: str, split: str = "test", home: str | None = None, device: str = "auto") -> dict:
    """Re-evaluate a finished run's best checkpoint on one split."""
    out = Path(run)
    lr = load_run(run, home, device)
    model, args, classes, multi, splits, dcfg, h, dev = (lr.model, lr.args, lr.classes, lr.multi, lr.splits,
                                                         lr.dcfg, lr.home, lr.device)
    loss_fn = nn.BCEWithLogitsLoss() if multi else nn.CrossEntropyLoss()
    if args.shards:
        from artdata.train.shards import create_shard_loader, open_index
        index = open_index(args.shards)
        if not index.samples(split):
            raise ArtdataError(f"{run}: its shards have no {split!r} images (splits: train, val, test)")
        loader = create_shard_loader(index, split, dcfg.load_size, args.batch_size, args.workers)
    elif split not in splits or not splits[split].keys:
        raise ArtdataError(f"{run}: its manifest has no {split!r} images (splits: train, val, test)")
    else:
        loader = create_loader(splits[split], ImageStore(h.images), dcfg, args.batch_size, False, args.workers)
    r = evaluate(model, loss_fn, loader, BatchTransform(dcfg, train=False).to(dev), dev, args, len(classes), multi)
    r.pop("_pred", None)
    r["classes"] = classes
    write_json(out / f"eval-{split}.json", r)
    return r
