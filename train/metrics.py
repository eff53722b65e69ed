"""Metrics and their files: top-k, per-class accuracy, confusion matrix, multi-label accuracy;
per-epoch rows written to metrics.csv and metrics.json."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch


class Accumulator:
    """Collects logits and targets of one pass, then computes every metric at once."""

    def __init__(self, num_classes: int, multi_label: bool):
        self.n, self.multi = num_classes, multi_label
        self.loss_sum, self.count = 0.0, 0
        self.preds, self.targets, self.top3, self.topk, self.indices = [], [], [], [], []

    def add(self, logits: torch.Tensor, targets: torch.Tensor, loss: float):
        b = targets.shape[0]
        self.loss_sum += loss * b
        self.count += b
        logits, targets = logits.detach().float().cpu(), targets.detach().cpu()
        if self.multi:
            self.preds.append((logits > 0).float())
        else:
            self.preds.append(logits.argmax(1))
            k = min(3, logits.shape[1])
            top = logits.topk(k, 1).indices
            self.topk.append(top)
            self.top3.append((top == targets[:, None]).any(1))
        self.targets.append(targets)

    def result(self) -> dict:
        if not self.count:
            return {"loss": float("nan"), "count": 0}
        preds, targets = torch.cat(self.preds), torch.cat(self.targets)
        out = {"loss": self.loss_sum / self.count, "count": self.count}
        if self.multi:
            out["exact_match"] = (preds == targets).all(1).float().mean().item()
            out["tag_accuracy"] = (preds == targets).float().mean(0).tolist()
            out["top1"] = out["exact_match"]
            return out
        out["top1"] = (preds == targets).float().mean().item()
        if self.n > 3:     # top-k only where k < the number of classes (else it is always 1)
            out["top3"] = torch.cat(self.top3).float().mean().item()
        cm = torch.zeros(self.n, self.n, dtype=torch.long)
        cm.index_put_((targets, preds), torch.ones_like(targets), accumulate=True)
        out["confusion"] = cm.tolist()
        support = cm.sum(1)
        out["per_class"] = [(cm[i, i] / support[i]).item() if support[i] else None for i in range(self.n)]
        if self.indices and len(self.indices) == len(self.topk):
            out["_pred"] = {"index": torch.cat(self.indices).tolist(), "target": targets.tolist(),
                            "top3": torch.cat(self.topk).tolist()}
        return out


class MetricsFile:
    """metrics.csv (one row per epoch and split) and metrics.json (everything), written atomically."""

    FIELDS = ("epoch", "split", "loss", "top1", "top3", "lr", "images_per_s", "seconds", "skipped")

    def __init__(self, out: Path, resume: bool):
        self.csv, self.json = out / "metrics.csv", out / "metrics.json"
        self.rows: list[dict] = []
        if resume and self.json.is_file():
            self.rows = json.loads(self.json.read_text())["epochs"]

    def add(self, row: dict):
        self.rows.append(row)
        self._write()

    def truncate(self, epochs: int):
        self.rows = [r for r in self.rows if r["epoch"] < epochs]

    def _write(self):
        tmp = self.csv.with_suffix(".part")
        with open(tmp, "w", newline="") as fh:
            fields = [f for f in self.FIELDS if f != "top3" or any("top3" in r for r in self.rows)]
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in self.rows:
                w.writerow({k: r.get(k) for k in fields})
        os.replace(tmp, self.csv)
        write_json(self.json, {"epochs": self.rows})


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
