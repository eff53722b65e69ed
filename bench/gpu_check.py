"""The trainer on a GPU, in one command: correctness of every model and path, then ResNet-50 throughput.

    PYTHONPATH=. python bench/gpu_check.py                 # on a CUDA machine, from a plain checkout
    PYTHONPATH=. python bench/gpu_check.py --dry-run       # the same steps on the CPU, tiny (the tests run it)

Needs only torch, torchvision, numpy, pandas, pyarrow and pillow (no install, no network). It builds its own
data in a temporary folder: generated JPEGs whose colour and stripes depend on the class (learnable), put
through artdata's image store, and a split manifest. Then:

1. correctness: every model (the studies' own and the torchvision zoo) trains a few steps with bf16 autocast
   and channels_last on the GPU and its training loss falls; evaluation of the best checkpoint gives final.json's
   figure; --resume continues a run; the feature cache runs on the GPU and is reused; explain runs on a
   GPU-trained run; a torchrun DistributedDataParallel run (nccl, one process per GPU present) finishes;
2. throughput: ResNet-50 at 224 px, training images/s (a) on synthetic tensors already on the GPU (the
   model's ceiling), (b) through artdata's real data path (image store -> DataLoader workers decoding JPEGs ->
   GPU augmentation -> bf16 channels_last step), and (c) of the loader alone, with the loader workers used,
   the peak GPU memory, GPU utilisation (nvidia-smi, when present) and which side is the bottleneck.

Prints one table (and --json FILE writes every figure); exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from artdata.paths import Home  # noqa: E402

CLASSES = ["Baroque", "Cubism", "Impressionism", "Pop art"]


# ---------------------------------------------------------------- data

def _make_one(args):
    """One generated JPEG through the image store's own processing: (key, class, bytes)."""
    from artdata.datasets.images import ImageConfig, process_image
    from artdata.mirror import render_jpeg
    i, cls, store_size = args
    res = process_image(render_jpeg(f"{cls}-{i}", cls, (store_size * 5 // 4, store_size)),
                        ImageConfig(size=store_size))
    return res, cls, i


def build_data(root: Path, per_class: int, store_size: int, workers: int) -> Home:
    """Generated JPEGs in an image store + a stratified 80/10/10 split manifest named `gpucheck`."""
    import pandas as pd
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import write_manifest
    from artdata.datasets.records import new_record, to_table
    from artdata.splits.recipes import stratified_split
    home = Home(root)
    store = ImageStore(home.images)
    jobs = [(i, c, store_size) for c in CLASSES for i in range(per_class)]
    recs = []
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for res, cls, i in pool.map(_make_one, jobs, chunksize=32):
            store.put(res.data, res.key)
            r = new_record("folder", f"{cls}/{i}.jpg", **res.fields())
            r["label"] = cls
            recs.append(r)
    keys = pd.Series([f"{r['source']}:{r['source_id']}" for r in recs])
    strata = pd.Series([r["label"] for r in recs])
    for r, s in zip(recs, stratified_split(keys, strata, (0.8, 0.1, 0.1), 0)):
        r["split"] = s
    write_manifest(home.manifests, "gpucheck", to_table(recs))
    return home


# ---------------------------------------------------------------- correctness

class Checks:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, name: str, ok: bool, detail: str = "", **figures):
        self.rows.append({"check": name, "ok": bool(ok), "detail": detail, **figures})
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def run(self, name: str, fn):
        try:
            fn()
        except Exception as exc:   # a check that raises fails, and the others still run
            self.add(name, False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")

    @property
    def failed(self) -> bool:
        return not all(r["ok"] for r in self.rows)


def correctness(home: Home, checks: Checks, device: str, dry: bool, runs: Path):
    from artdata.train import models as M
    from artdata.train.loop import TrainArgs, evaluate_run, main
    # bf16 autocast on the GPU; a dry run on the CPU leaves it off (CPU bf16 matmuls make vgg16_bn alone take
    # half a minute there; tests/test_train.py runs the autocast path on the CPU)
    amp, channels_last = not dry, True
    names = [n for n in M.all_names() if n != "softmax"]

    def args(**kw):
        base = dict(manifest="gpucheck", epochs=1 if dry else 3, batch_size=4 if dry else 32,
                    max_steps=1 if dry else 12, lr=1e-4, optimizer="adam", workers=0 if dry else 6, weights="none",
                    amp=amp, channels_last=channels_last, device=device, home=str(home.root))
        base.update(kw)
        return TrainArgs(**base)

    def small(name):       # dry run: the smallest sizes that the networks take (inception's aux needs 299)
        return {"inception_v3": 299, "alexnet": 64}.get(name, 48) if dry else None

    for name in names:
        def one(name=name):
            out = runs / f"model-{name}"
            t0 = time.perf_counter()
            final = main(args(model=name, mode="scratch", image_size=small(name), out=str(out),
                              batch_size=2 if dry and name == "inception_v3" else (4 if dry else 32)))
            rows = json.loads((out / "metrics.json").read_text())["epochs"]
            train = [r["loss"] for r in rows if r["split"] == "train"]
            finite = all(torch.isfinite(torch.tensor(x)) for x in train + [final["test_loss"]])
            falls = dry or train[-1] < train[0]
            checks.add(f"train {name}", finite and falls,
                       f"train loss {' -> '.join(f'{x:.3f}' for x in train)}, test top-1 {final['test_top1']:.3f}, "
                       f"{rows[0]['images_per_s']:.0f} img/s", seconds=round(time.perf_counter() - t0, 1))
        checks.run(f"train {name}", one)

    def evaluation():
        out = runs / "model-resnet18"
        final = json.loads((out / "final.json").read_text())
        r = evaluate_run(str(out), "test", str(home.root), device)
        checks.add("evaluate resnet18", abs(r["top1"] - final["test_top1"]) < 1e-6,
                   f"top-1 {r['top1']:.4f} (final.json {final['test_top1']:.4f})")
    checks.run("evaluate resnet18", evaluation)

    def resume():
        kw = dict(model="resnet18", mode="finetune", image_size=small("resnet18"), scheduler="step", step_size=1)
        main(args(out=str(runs / "resume"), **kw))
        ck = torch.load(runs / "resume" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
        dev = next(iter(ck["model"].values())).device
        main(args(out=str(runs / "resume"), resume=True, **{**kw, "epochs": (1 if dry else 3) + 1}))
        rows = json.loads((runs / "resume" / "metrics.json").read_text())["epochs"]
        epochs = sorted({r["epoch"] for r in rows})
        checks.add("resume resnet18", epochs == list(range((1 if dry else 3) + 1)),
                   f"epochs {epochs} after --resume; checkpoint tensors saved from {dev}")
    checks.run("resume resnet18", resume)

    def cache():
        kw = dict(model="resnet50", mode="transfer", image_size=small("resnet50"), lr=1e-3)
        t0 = time.perf_counter()
        main(args(out=str(runs / "cache1"), **kw))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        main(args(out=str(runs / "cache2"), **kw))
        second = time.perf_counter() - t0
        c1 = json.loads((runs / "cache1" / "config.json").read_text())["feature_cache_file"]
        c2 = json.loads((runs / "cache2" / "config.json").read_text())["feature_cache_file"]
        checks.add("feature cache resnet50", c1 == c2 and Path(c1).is_file(),
                   f"computed in a {first:.1f} s run, reused by a {second:.1f} s run")
    checks.run("feature cache resnet50", cache)

    def explain():
        from artdata.reports.explain import explain as run_explain
        page = run_explain(runs / "model-resnet50", home, per_class=1, device=device)
        data = json.loads((page.parent / "explain.json").read_text())
        checks.add("explain resnet50", data["feature_channels"] == 2048,
                   f"{len(data['images'])} images, {data['feature_layer']} with {data['feature_channels']} channels")
    checks.run("explain resnet50", explain)

    def ddp():
        gpus = torch.cuda.device_count() if device == "cuda" else 1
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        out = runs / "ddp"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus), "--master_addr",
               "127.0.0.1", "--master_port", port, "-m", "artdata", "train", "--manifest", "gpucheck", "--model",
               "resnet18", "--weights", "none", "--epochs", "1", "--max-steps", "2" if dry else "20",
               "--batch-size", "4" if dry else "64", "--workers", "0" if dry else "4", "--device", device,
               "--home", str(home.root), "--out", str(out)]
        if dry:
            cmd += ["--image-size", "48"]
        else:
            cmd += ["--amp", "--channels-last"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   OMP_NUM_THREADS="1")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if r.returncode != 0:
            checks.add(f"ddp x{gpus}", False, (r.stderr or r.stdout).strip().splitlines()[-1][:300])
            return
        cfg = json.loads((out / "config.json").read_text())
        backend = "nccl" if device == "cuda" else "gloo"
        checks.add(f"ddp x{gpus}", cfg["world_size"] == gpus and (out / "final.json").is_file(),
                   f"torchrun, {gpus} process(es), {backend}, world_size {cfg['world_size']}")
    checks.run("ddp", ddp)


# ---------------------------------------------------------------- throughput

class GpuUtilisation:
    """Samples nvidia-smi's utilisation.gpu every 200 ms while running (nothing when nvidia-smi is absent)."""

    def __init__(self):
        self.samples: list[float] = []
        self.proc = None

    def __enter__(self):
        exe = shutil.which("nvidia-smi")
        if exe:
            self.proc = subprocess.Popen([exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200", "-i", "0"], stdout=subprocess.PIPE, text=True,
                                         stderr=subprocess.DEVNULL)
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    @property
    def mean(self):
        s = self.samples[len(self.samples) // 5:]     # the first fifth is warm-up
        return round(sum(s) / len(s), 1) if s else None


def throughput(home: Home, device_name: str, dry: bool, batch: int, steps: int, warmup: int, workers: int,
               compile_model: bool) -> dict:
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import load
    from artdata.train import models as M
    from artdata.train.data import BatchTransform, DataConfig, SplitData, create_loader, load_splits
    device = torch.device(device_name)
    size = 64 if dry else 224
    model = M.create_model("resnet50", len(CLASSES), weights="none").to(device).to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not dry):
            loss = loss_fn(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    # (a) synthetic tensors on the device: the model's ceiling
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, len(CLASSES), (batch,), device=device)
    for _ in range(warmup):
        step(x, y)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync()
    synthetic = batch * steps / (time.perf_counter() - t0)

    # (b) the real data path: store -> DataLoader workers (JPEG decode) -> GPU augmentation -> step
    splits, _, _, _ = load_splits(load(home.manifests, "gpucheck"))
    train = splits["train"]
    need = batch * (steps + warmup + 2)
    reps = max(1, -(-need // len(train.keys)))
    long = SplitData(train.keys * reps, train.targets * reps, train.ids * reps)
    dcfg = DataConfig(image_size=size, load_size=round(size * 8 / 7))
    transform = BatchTransform(dcfg, train=True).to(device)
    gen = torch.Generator().manual_seed(0)

    def loader():
        return create_loader(long, ImageStore(home.images), dcfg, batch, True, workers,
                             pin_memory=device.type == "cuda")

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with GpuUtilisation() as util:
        it = iter(loader())
        for _ in range(warmup):
            images, targets, _, _ = next(it)
            step(transform(images.to(device, non_blocking=True), gen).contiguous(memory_format=torch.channels_last),
                 targets.to(device, non_blocking=True))
        sync()
        t0, n = time.perf_counter(), 0
        for _ in range(steps):
            images, targets, _, _ = next(it)
            step(transform(images.to(device, non_blocking=True), gen).contiguous(memory_format=torch.channels_last),
                 targets.to(device, non_blocking=True))
            n += targets.shape[0]
        sync()
        real = n / (time.perf_counter() - t0)
        del it
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None

    # (c) the loader alone: how many images/s the workers decode and batch
    loader_only = loader_rate(home, size, batch, steps, warmup, workers)
    bottleneck = "loader" if loader_only < synthetic * 0.95 else "GPU"
    return {"model": "resnet50", "image_size": size, "batch": batch, "steps": steps, "amp": "bf16" if not dry else None,
            "channels_last": True, "compile": compile_model, "loader_workers": workers,
            "synthetic_images_per_s": round(synthetic, 1), "data_path_images_per_s": round(real, 1),
            "loader_only_images_per_s": round(loader_only, 1), "data_path_fraction_of_ceiling": round(real / synthetic, 3),
            "peak_gpu_memory_gib": round(memory, 2) if memory is not None else None,
            "gpu_utilisation_percent": util.mean, "bottleneck": bottleneck}


def loader_rate(home: Home, size: int, batch: int, steps: int, warmup: int, workers: int) -> float:
    """Images/s of artdata's training loader alone (store -> workers decoding and cropping -> batches)."""
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import load
    from artdata.train.data import DataConfig, SplitData, create_loader, load_splits
    splits, _, _, _ = load_splits(load(home.manifests, "gpucheck"))
    tr = splits["train"]
    reps = max(1, -(-batch * (steps + warmup + 2) // len(tr.keys)))
    long = SplitData(tr.keys * reps, tr.targets * reps, tr.ids * reps)
    it = iter(create_loader(long, ImageStore(home.images), DataConfig(image_size=size, load_size=round(size * 8 / 7)),
                            batch, True, workers))
    for _ in range(warmup):
        next(it)
    t0, n = time.perf_counter(), 0
    for _ in range(steps):
        n += next(it)[1].shape[0]
    return n / (time.perf_counter() - t0)


def loader_only(a) -> int:
    root = Path(tempfile.mkdtemp(prefix="artdata-gpucheck-"))
    try:
        cores = os.cpu_count() or 1
        home = build_data(root / "home", a.images_per_class or 250, 256, min(cores, 16))
        counts = [a.workers] if a.workers is not None else sorted({1, max(1, min(16, cores - 1))})
        for w in counts:
            rate = loader_rate(home, 224, a.batch or 64, a.steps or 30, a.warmup or 3, w)
            print(f"loader alone, 224 px from 256 px JPEGs: {w} worker(s): {rate:.0f} images/s")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny data and models: checks that every step runs")
    ap.add_argument("--images-per-class", type=int, default=None, help="generated images per class [800; dry 8]")
    ap.add_argument("--batch", type=int, default=None, help="throughput batch size [256; dry 4]")
    ap.add_argument("--steps", type=int, default=None, help="timed throughput steps [40; dry 2]")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps before timing [10; dry 1]")
    ap.add_argument("--workers", type=int, default=None, help="loader workers [CPU cores - 1; dry 1]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the throughput model")
    ap.add_argument("--only", choices=("all", "correctness", "throughput", "loader"), default="all",
                    help="loader: only the data path's loader at 224 px, on any machine (no GPU needed)")
    ap.add_argument("--keep", type=Path, default=None, help="build the data and runs here and keep them")
    ap.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    a = ap.parse_args(argv)
    dry = a.dry_run
    if a.only == "loader":
        return loader_only(a)
    if not dry and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run to run the steps on the CPU", file=sys.stderr)
        return 2
    device = "cpu" if dry else "cuda"
    cores = os.cpu_count() or 1
    per_class = a.images_per_class or (8 if dry else 800)
    workers = a.workers if a.workers is not None else (1 if dry else max(1, min(16, cores - 1)))
    root = a.keep or Path(tempfile.mkdtemp(prefix="artdata-gpucheck-"))
    root.mkdir(parents=True, exist_ok=True)
    report = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "cores": cores}
    try:
        import torchvision
        report["torchvision"] = torchvision.__version__
    except Exception:
        report["torchvision"] = None
    print(f"gpu_check: {report['device']}, torch {report['torch']}, torchvision {report['torchvision']}, "
          f"{cores} cores, data in {root}", flush=True)
    try:
        t0 = time.perf_counter()
        home = build_data(root / "home", per_class, 64 if dry else 256, min(cores, 16))
        print(f"data: {per_class * len(CLASSES)} JPEGs in the store in {time.perf_counter() - t0:.1f} s", flush=True)
        checks = Checks()
        if a.only in ("all", "correctness"):
            print("correctness:", flush=True)
            correctness(home, checks, device, dry, root / "runs")
        if a.only in ("all", "throughput"):
            print("throughput (ResNet-50):", flush=True)
            tp = {}

            def measure():
                tp.update(throughput(home, device, dry, a.batch or (4 if dry else 256), a.steps or (2 if dry else 40),
                                     a.warmup or (1 if dry else 10), workers, a.compile))
                target = 3000
                ok = dry or tp["data_path_images_per_s"] >= target
                checks.add("resnet50 throughput", ok,
                           f"synthetic {tp['synthetic_images_per_s']:.0f} img/s, data path "
                           f"{tp['data_path_images_per_s']:.0f} img/s ({'dry run' if dry else f'target {target}'}), "
                           f"loader alone {tp['loader_only_images_per_s']:.0f} img/s with {workers} workers, "
                           f"bottleneck {tp['bottleneck']}")
            checks.run("resnet50 throughput", measure)
            report["throughput"] = tp
        report["checks"] = checks.rows
        print()
        width = max(len(r["check"]) for r in checks.rows)
        print(f"{'check'.ljust(width)}  result  detail")
        for r in checks.rows:
            print(f"{r['check'].ljust(width)}  {'ok' if r['ok'] else 'FAIL':6}  {r['detail']}")
        if report.get("throughput"):
            print()
            for k, v in report["throughput"].items():
                print(f"  {k}: {v}")
        if a.json:
            a.json.write_text(json.dumps(report, indent=2))
        return 1 if checks.failed else 0
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
