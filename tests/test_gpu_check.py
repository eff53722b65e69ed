"""bench/gpu_check.py, the one-command GPU check, runs on the CPU in --dry-run (so it cannot rot): from a
plain checkout (PYTHONPATH=.), every model, evaluation, resume, feature cache, explain, torchrun DDP and
the ResNet-50 throughput measurement."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from artdata.train import models as M

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gc.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--dry-run", "--json", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    report = json.loads(out.read_text())
    checks = {c["check"]: c for c in report["checks"]}
    for name in M.all_names():
        if name != "softmax":
            assert checks[f"train {name}"]["ok"], checks[f"train {name}"]
    for name in ("evaluate resnet18", "resume resnet18", "feature cache resnet50", "explain resnet50", "ddp x1",
                 "resnet50 throughput"):
        assert checks[name]["ok"], checks[name]
    tp = report["throughput"]
    assert tp["synthetic_images_per_s"] > 0 and tp["data_path_images_per_s"] > 0 and tp["loader_only_images_per_s"] > 0
    assert tp["bottleneck"] in ("GPU", "loader") and tp["loader_workers"] == 1
    table = r.stdout.split("check ", 1)[1]
    assert "FAIL" not in table and "resnet50 throughput" in table
    data = Path(r.stdout.split(" data in ", 1)[1].splitlines()[0].strip())
    assert data.name.startswith("artdata-gpucheck-") and not data.exists()      # its temporary data is gone


def test_gpu_check_without_cuda_says_so():
    if torch.cuda.is_available():
        return
    r = subprocess.run([sys.executable, "bench/gpu_check.py"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "gpu_check: no CUDA device here; use --dry-run to run the steps on the CPU"
