"""`artdata train --shards`: the trainer streams the WebDataset export instead of reading the image store, and
learns the same thing from it (same split, same accuracy, the same model scoring the same on both paths)."""
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch

from artdata.datasets.export import ExportConfig, export
from artdata.datasets.images import ImageStore
from artdata.paths import Home
from artdata.train import shards as S
from artdata.train.data import create_loader, load_splits
from artdata.train.loop import TrainArgs, evaluate, evaluate_run, load_run, main
from test_train import CLASSES, make_split


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """The trainer tests' planted-signal split (41 a class: 75 training images, an odd count) and its shards."""
    root = tmp_path_factory.mktemp("shards")
    home = Home(root / "home")
    m = make_split(home, n_per_class=41)
    dest = root / "wds"
    export(m, ImageStore(home.images), str(dest), "webdataset", ExportConfig(shard_bytes=12_000))
    return home, m, dest


def _args(home, **kw):
    base = dict(manifest="gen", model="tate-cnn", epochs=6, image_size=48, batch_size=16, lr=0.05, workers=0,
                home=str(home.root), device="cpu")
    base.update(kw)
    return TrainArgs(**base)


def test_shards_train_as_well_as_the_store_and_score_the_same(gen, tmp_path):
    home, m, dest = gen
    index = S.open_index(str(dest))
    assert index.ref == m.ref and index.classes == CLASSES and len(index.splits["train"]) >= 4
    store_run = main(_args(home, out=str(tmp_path / "store")))
    shard_run = main(_args(home, manifest=None, shards=str(dest), out=str(tmp_path / "shards")))
    n_test = shard_run["splits"]["test"]["count"]
    assert n_test == store_run["splits"]["test"]["count"] == index.samples("test")
    assert store_run["test_top1"] >= 0.95 and abs(shard_run["test_top1"] - store_run["test_top1"]) <= 1 / n_test
    cfg = json.loads((tmp_path / "shards" / "config.json").read_text())
    assert cfg["manifest_ref"] == m.ref and cfg["shards"] == str(dest) and cfg["classes"] == CLASSES

    # one model, both input paths: the same score and the same confusion matrix on the test split
    lr = load_run(str(tmp_path / "store"), str(home.root), "cpu")
    loss = torch.nn.CrossEntropyLoss()
    from artdata.train.data import BatchTransform
    t = BatchTransform(lr.dcfg, train=False)
    a = evaluate(lr.model, loss, create_loader(lr.splits["test"], ImageStore(home.images), lr.dcfg, 8, False, 0), t,
                 lr.device, lr.args, 3, False)
    b = evaluate(lr.model, loss, S.create_shard_loader(index, "test", lr.dcfg.load_size, 8, 0), t, lr.device,
                 lr.args, 3, False)
    assert a["top1"] == b["top1"] and a["confusion"] == b["confusion"] and b["skipped"] == 0

    # the shard run's predictions name the records, and `evaluate RUN` reads the shards again
    pred = pq.read_table(tmp_path / "shards" / "predictions_test.parquet").to_pylist()
    splits, _, _, _ = load_splits(m)
    assert sorted(p["id"] for p in pred) == sorted(splits["test"].ids)
    ev = evaluate_run(str(tmp_path / "shards"), "test", str(home.root), "cpu")
    assert abs(ev["top1"] - shard_run["test_top1"]) < 1e-9


def test_cli_train_shards_with_loader_workers(gen, tmp_path):
    from typer.testing import CliRunner
    from artdata.cli import app
    home, m, dest = gen
    r = CliRunner().invoke(app, ["train", "--shards", str(dest), "--model", "tate-cnn", "--epochs", "1",
                                 "--image-size", "48", "--batch-size", "8", "--workers", "2", "--device", "cpu",
                                 "--home", str(home.root), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    assert rows[0]["split"] == "train" and rows[0]["skipped"] == 0 and rows[0]["count"] == S.open_index(
        str(dest)).samples("train")
    r = CliRunner().invoke(app, ["train", "--shards", str(dest), "--manifest", "other", "--model", "tate-cnn",
                                 "--home", str(home.root)])
    assert r.exit_code == 1 and f"--shards {dest} hold {m.ref}, not --manifest other" in r.output
    r = CliRunner().invoke(app, ["train", "--shards", str(tmp_path / "nothing"), "--model", "tate-cnn",
                                 "--home", str(home.root)])
    assert r.exit_code == 1 and "index.json: no such file" in r.output and "Traceback" not in r.output


def test_ddp_two_processes_on_shards_with_uneven_shares(gen, tmp_path):
    """75 training images on 2 ranks: 37 and 38, in batches of 37, so rank 1 has one batch more; DDP's join lets
    rank 0 wait for it instead of hanging."""
    import socket
    home, m, dest = gen
    assert S.open_index(str(dest)).samples("train") == 75
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", port, "-m", "artdata", "train", "--shards", str(dest), "--model", "tate-cnn",
           "--epochs", "2", "--image-size", "48", "--batch-size", "37", "--lr", "0.05", "--workers", "0",
           "--device", "cpu", "--home", str(home.root), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)       # its own group: a hang is ended whole, workers too
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
        pytest.fail(f"DDP on shards did not finish in 240 s (a rank waiting for the other?): {err[-2000:]}")
    assert proc.returncode == 0, err[-3000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert json.loads((out / "final.json").read_text())["splits"]["test"]["count"] == S.open_index(
        str(dest)).samples("test")
