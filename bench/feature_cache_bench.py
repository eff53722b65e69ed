"""Feature cache: epoch time of the head trained from cached features vs running the frozen backbone.

    python bench/feature_cache_bench.py --images 600 --image-size 224 --epochs 3

Makes a split manifest of generated JPEGs (the mirror's renderer, 3 classes), then trains
vgg-inception in transfer mode twice: with the feature cache (backbone run once, then the head
trains from tensors on disk) and without it (frozen backbone run every epoch). Reports the
train-epoch seconds from each run's metrics.json and the one-off cost of building the cache.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--model", default="vgg-inception")
    a = ap.parse_args()
    from artdata.paths import Home
    from artdata.train.loop import TrainArgs, main as train
    from test_train import make_split
    tmp = Path(tempfile.mkdtemp(prefix="fcbench-"))
    try:
        home = Home(tmp)
        make_split(home, n_per_class=a.images // 3, name="gen")
        common = dict(manifest="gen", model=a.model, mode="transfer", epochs=a.epochs, image_size=a.image_size,
                      batch_size=32, lr=0.01, optimizer="adam", workers=2, home=str(home.root), augment=False)
        t0 = time.perf_counter()
        train(TrainArgs(out=str(tmp / "cached"), **common))
        cached_total = time.perf_counter() - t0
        t0 = time.perf_counter()
        train(TrainArgs(out=str(tmp / "plain"), feature_cache=False, **common))
        plain_total = time.perf_counter() - t0

        def epochs(run):
            rows = json.loads((tmp / run / "metrics.json").read_text())["epochs"]
            return [r["seconds"] for r in rows if r["split"] == "train"]
        c, p = epochs("cached"), epochs("plain")
        med = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"model {a.model}, {a.images} images at {a.image_size}px, {a.epochs} epochs")
        print(f"train epoch, frozen backbone every epoch: {', '.join(f'{x:.3f}' for x in p)} s (median {med(p):.3f})")
        print(f"train epoch, head from the feature cache:  {', '.join(f'{x:.4f}' for x in c)} s (median {med(c):.4f})")
        print(f"speed-up per epoch: {med(p) / med(c):.0f}x")
        print(f"whole runs (incl. building the cache once, val/test): cached {cached_total:.1f} s, plain {plain_total:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
