"""The trainer on CPU: learning, every model, feature cache, resume, softmax, multi-label, DDP (gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from artdata import ArtdataError
from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.datasets.manifest import write_manifest
from artdata.mirror import render_jpeg
from artdata.paths import Home
from artdata.datasets.records import new_record, to_table
from artdata.splits.recipes import build_split, stratified_split
from artdata.train import models as M
from artdata.train.loop import TrainArgs, main

CLASSES = ["Baroque", "Cubism", "Pop art"]


def make_split(home: Home, n_per_class=40, name="gen", multi=False, seed=0):
    """Generated JPEGs whose hue and stripes depend on the class (the mirror's renderer)."""
    store = ImageStore(home.images)
    recs = []
    for c in CLASSES:
        for i in range(n_per_class):
            res = process_image(render_jpeg(f"{c}-{i}-{seed}", c, (96, 80)), ImageConfig(size=64))
            store.put(res.data, res.key)
            r = new_record("folder", f"{c}/{i}.jpg", **res.fields())
            if multi:
                r["labels"] = [c] + (["striped"] if i % 2 else [])
            else:
                r["label"] = c
            recs.append(r)
    import pandas as pd
    keys = pd.Series([f"{r['source']}:{r['source_id']}" for r in recs])
    strata = pd.Series([r["source_id"].split("/")[0] for r in recs])
    for r, s in zip(recs, stratified_split(keys, strata, (0.6, 0.2, 0.2), 0)):
        r["split"] = s
    return write_manifest(home.manifests, name, to_table(recs))


@pytest.fixture(scope="module")
def gen_home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("train"))
    make_split(home)
    return home


def _args(home, **kw):
    base = dict(manifest="gen", model="tate-cnn", epochs=6, image_size=48, batch_size=16, lr=0.05, workers=0,
                home=str(home.root))
    base.update(kw)
    return TrainArgs(**base)


def test_small_model_learns_the_planted_signal(gen_home, tmp_path):
    final = main(_args(gen_home, out=str(tmp_path / "run")))
    assert final["test_top1"] >= 0.95, final
    run = tmp_path / "run"
    for f in ("config.json", "metrics.csv", "metrics.json", "final.json", "checkpoint_best.pt", "checkpoint_last.pt"):
        assert (run / f).is_file(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["classes"] == CLASSES and cfg["manifest_ref"].startswith("gen@")
    rows = json.loads((run / "metrics.json").read_text())["epochs"]
    assert [r["split"] for r in rows[:2]] == ["train", "val"] and len(rows) == 12
    assert all(r["images_per_s"] > 0 and "top3" not in r for r in rows)     # 3 classes: top-3 is always 1
    assert "top3" not in (run / "metrics.csv").read_text().splitlines()[0]
    assert "test_top3" not in json.loads((run / "final.json").read_text())
    fin = json.loads((run / "final.json").read_text())
    cm = np.array(fin["splits"]["test"]["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == fin["splits"]["test"]["count"]
    ck = torch.load(run / "checkpoint_best.pt", weights_only=False)
    assert ck["classes"] == CLASSES and ck["args"]["model"] == "tate-cnn" and ck["manifest"].startswith("gen@")
    from artdata.train.loop import evaluate_run
    ev = evaluate_run(str(run), "test", str(gen_home.root), "cpu")
    assert abs(ev["top1"] - final["test_top1"]) < 1e-6


@pytest.mark.parametrize("name", list(M.MODELS))
def test_every_model_forward_backward_at_its_size(name):
    spec = M.MODELS[name]
    in_ch = 1 if spec.grayscale else 3
    model = M.create_model(name, 5, in_ch=in_ch)
    x = torch.randn(2, in_ch, spec.image_size, spec.image_size)
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert M.backbone_blocks(model)


def test_vgg_inception_is_small():
    m = M.create_model("vgg-inception", 18)
    m(torch.zeros(1, 3, 224, 224))
    conv = sum(p.numel() for mod in m.backbone.modules() if isinstance(mod, torch.nn.Conv2d) for p in mod.parameters())
    assert 30_000 < conv < 80_000


def test_softmax_model_shape():
    m = M.create_model("softmax", 10, num_features=7)
    assert m(torch.zeros(4, 7)).shape == (4, 10)


def test_unknown_choices_fail_at_once(gen_home):
    with pytest.raises(ArtdataError, match="unknown model 'resnet9'; choose from: artnet"):
        main(_args(gen_home, model="resnet9"))
    with pytest.raises(ArtdataError, match="--optimizer 'rmsprop' is not one of: sgd, adam, adamw"):
        main(_args(gen_home, optimizer="rmsprop"))


def test_feature_cache_same_accuracy_and_reused(gen_home, tmp_path):
    kw = dict(model="vgg-inception", mode="transfer", epochs=4, augment=False, lr=0.05, optimizer="adam",
              dropout=0.0)
    cached = main(_args(gen_home, out=str(tmp_path / "c"), **kw))
    cache_files = list((gen_home.root / "cache" / "features").glob("*.pt"))
    assert len(cache_files) == 1
    mtime = cache_files[0].stat().st_mtime
    plain = main(_args(gen_home, out=str(tmp_path / "p"), feature_cache=False, **kw))
    assert abs(cached["test_top1"] - plain["test_top1"]) <= 1 / 24 + 1e-9
    rows_c = json.loads((tmp_path / "c" / "metrics.json").read_text())["epochs"]
    rows_p = json.loads((tmp_path / "p" / "metrics.json").read_text())["epochs"]
    for a, b in zip(rows_c, rows_p):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)
    main(_args(gen_home, out=str(tmp_path / "c2"), **kw))           # a later run reads the cache
    assert cache_files[0].stat().st_mtime == mtime


def test_resume_reproduces_uninterrupted_metrics(gen_home, tmp_path):
    full = main(_args(gen_home, out=str(tmp_path / "full"), epochs=4, scheduler="step", step_size=2))
    main(_args(gen_home, out=str(tmp_path / "cut"), epochs=2, scheduler="step", step_size=2))
    resumed = main(_args(gen_home, out=str(tmp_path / "cut"), epochs=4, scheduler="step", step_size=2, resume=True))
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())["epochs"]
    b = json.loads((tmp_path / "cut" / "metrics.json").read_text())["epochs"]
    assert len(a) == len(b) == 8
    for x, y in zip(a, b):
        assert (x["epoch"], x["split"]) == (y["epoch"], y["split"])
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5) and x["lr"] == y["lr"]
    assert resumed["test_top1"] == pytest.approx(full["test_top1"])


def test_multi_label(tmp_path):
    home = Home(tmp_path)
    make_split(home, n_per_class=20, name="tags", multi=True)
    final = main(_args(home, manifest="tags", epochs=5, out=str(tmp_path / "run")))
    test = final["splits"]["test"]
    assert final["multi_label"] and final["classes"] == sorted(CLASSES + ["striped"])
    assert "exact_match" in test and len(test["tag_accuracy"]) == 4
    assert 0 <= test["exact_match"] <= 1


def test_softmax_learns_planted_rule(tmp_path):
    """Price bins determined by the artist: the metadata model must find it."""
    home = Home(tmp_path)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(600):
        a = i % 5
        price = float(10 ** (2 + a) * rng.uniform(1.0, 1.5))
        recs.append(new_record("findartinfo", i, artist=f"artist{a}", medium=("Oil on canvas", "Watercolor")[i % 2],
                               date_begin=int(1800 + rng.integers(0, 150)), signed=bool(rng.integers(0, 2)),
                               price=price, currency="USD", unsold=False, status="pending"))
    write_manifest(home.manifests, "lots", to_table(recs))
    m = build_split(home, "price", "lots", bins=5)
    final = main(TrainArgs(manifest=m.ref, model="softmax", epochs=60, lr=0.05, optimizer="adam", weight_decay=1e-4,
                           batch_size=64, home=str(home.root), out=str(tmp_path / "run")))
    assert final["test_top1"] >= 0.9, final


def test_ddp_gloo_two_processes(gen_home, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", port, "-m", "artdata", "train", "--manifest", "gen", "--model", "tate-cnn", "--epochs", "2",
           "--image-size", "48", "--batch-size", "8", "--lr", "0.05", "--workers", "0", "--device", "cpu",
           "--home", str(gen_home.root), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    assert len(rows) == 4
    assert json.loads((out / "final.json").read_text())["splits"]["test"]["count"] == 24


def test_cli_train_and_bad_flag(gen_home, tmp_path):
    from typer.testing import CliRunner
    from artdata.cli import app
    r = CliRunner().invoke(app, ["train", "--manifest", "gen", "--model", "tate-cnn", "--mode", "frozen",
                                 "--home", str(gen_home.root)])
    assert r.exit_code == 1 and r.output.strip().endswith("--mode 'frozen' is not one of: scratch, transfer, finetune")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"manifest": "gen", "model": "dept-cnn-small", "epochs": 1, "image_size": 48,
                               "workers": 0, "lr": 0.01}))
    r = CliRunner().invoke(app, ["train", "--config", str(cfg), "--epochs", "2", "--out", str(tmp_path / "r"),
                                 "--home", str(gen_home.root)])
    assert r.exit_code == 0, r.output
    resolved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert resolved["epochs"] == 2 and resolved["model"] == "dept-cnn-small" and resolved["grayscale"] is True
    assert resolved["image_size"] == 48


def test_tune_random_search(gen_home, tmp_path):
    from typer.testing import CliRunner
    from artdata.cli import app
    r = CliRunner().invoke(app, ["tune", "--manifest", "gen", "--model", "vgg-inception", "--trials", "2",
                                 "--epochs", "1", "--image-size", "48", "--workers", "0", "--out", str(tmp_path / "t"),
                                 "--home", str(gen_home.root)])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "t" / "trials.json").read_text())
    assert len(rows) == 2 and rows[0]["lr"] != rows[1]["lr"]
    assert all((Path(x["run"]) / "final.json").is_file() for x in rows)
    best = json.loads((tmp_path / "t" / "best.json").read_text())
    assert best["val_top1"] == max(x["val_top1"] for x in rows)
    r = CliRunner().invoke(app, ["tune", "--manifest", "gen", "--model", "tate-cnn", "--params", "momentum",
                                 "--home", str(gen_home.root)])
    assert r.exit_code == 1 and "cannot search momentum" in r.output


def test_unfreeze_last_from_transfer_head(gen_home, tmp_path):
    main(_args(gen_home, model="vgg-inception", mode="transfer", epochs=2, out=str(tmp_path / "t")))
    final = main(_args(gen_home, model="vgg-inception", mode="finetune", unfreeze_last=2, epochs=1,
                       init_head=str(tmp_path / "t"), out=str(tmp_path / "u")))
    cfg = json.loads((tmp_path / "u" / "config.json").read_text())
    assert 0 < cfg["trainable_parameters"] < cfg["parameters"]
    assert "test_top1" in final


def test_amp_and_channels_last_paths_on_cpu(gen_home, tmp_path):
    """The GPU options run on the CPU too (bf16 autocast, channels_last): same code path, no CUDA."""
    final = main(_args(gen_home, epochs=2, amp=True, channels_last=True, out=str(tmp_path / "amp")))
    cfg = json.loads((tmp_path / "amp" / "config.json").read_text())
    assert cfg["amp"] is True and cfg["channels_last"] is True and cfg["device"] == "cpu"
    assert 0.0 <= final["test_top1"] <= 1.0 and np.isfinite(final["splits"]["test"]["loss"])


def test_device_cuda_without_gpu_is_one_line_error(gen_home):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ArtdataError, match="--device cuda: no CUDA device is available here"):
        main(_args(gen_home, device="cuda"))


def test_top_k_only_below_the_number_of_classes():
    from artdata.train.metrics import Accumulator
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    acc = Accumulator(5, False)
    acc.add(logits, torch.tensor([2, 0]), 0.5)
    r = acc.result()
    assert r["top1"] == 0.0 and r["top3"] == 0.5
    for n in (2, 3):
        acc = Accumulator(n, False)
        acc.add(logits[:, :n], torch.tensor([0, 1]), 0.5)
        assert "top3" not in acc.result()
