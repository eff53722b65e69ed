"""`artdata tune`: random hyper-parameter search (the movement study's method).

Each trial is a normal training run (its own folder, config, metrics, checkpoints); the table
of trials is written to `trials.csv` / `trials.json` as they finish, and the best trial (by
validation top-1) is named at the end. A rerun skips trials that already have a final.json.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
from pathlib import Path

from artdata import ArtdataError
from artdata.train.loop import TrainArgs, main as train_main
from artdata.train.metrics import write_json

# name -> (kind, low, high): log-uniform for "log", uniform for "float", integer choices for "choice"
SPACE = {
    "lr": ("log", 1e-4, 1e-1),
    "dropout": ("float", 0.0, 0.6),
    "head_width": ("choice", (64, 128, 256, 512, 650)),
    "weight_decay": ("log", 1e-6, 1e-2),
}


def sample(rng: random.Random, names) -> dict:
    out = {}
    for n in names:
        kind, *spec = SPACE[n]
        if kind == "log":
            out[n] = math.exp(rng.uniform(math.log(spec[0]), math.log(spec[1])))
        elif kind == "float":
            out[n] = rng.uniform(spec[0], spec[1])
        else:
            out[n] = rng.choice(spec[0])
    return out


def tune(base: TrainArgs, trials: int, out: Path, params=("lr", "dropout", "head_width"), seed: int = 0) -> dict:
    unknown = [p for p in params if p not in SPACE]
    if unknown:
        raise ArtdataError(f"tune: cannot search {', '.join(unknown)}; searchable: {', '.join(SPACE)}")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(trials):
        chosen = sample(rng, params)
        run = out / f"trial-{i:03d}"
        done = run / "final.json"
        if done.is_file():
            final = json.loads(done.read_text())
        else:
            final = train_main(dataclasses.replace(base, out=str(run), resume=False, **chosen))
        rows.append({"trial": i, **chosen, "val_top1": final.get("val_top1"), "test_top1": final.get("test_top1"),
                     "run": str(run)})
        _write(out, rows)
    best = max(rows, key=lambda r: (r["val_top1"] if r["val_top1"] is not None else -1))
    write_json(out / "best.json", best)
    return {"trials": rows, "best": best}


def _write(out: Path, rows):
    tmp = out / "trials.csv.part"
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out / "trials.csv")
    write_json(out / "trials.json", rows)
