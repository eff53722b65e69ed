"""Reports: real pages rendered in headless Chromium (Debian's, installed by this setup if missing),
screenshots checked, and every number drawn checked against the files it came from."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdata.reports.explain import explain
from artdata.datasets.manifest import list_manifests
from artdata.paths import Home
from artdata.reports.report import dataset_report, run_report
from artdata.splits.recipes import build_split
from artdata.train.loop import TrainArgs, main
from conftest import debian_tool
from test_train import CLASSES, make_split

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="session")
def chromium():
    return debian_tool("chromium", "chromium")


def render(chromium, page: Path, tmp: Path, size=(1200, 1600)):
    shot = tmp / f"{page.parent.name}.png"
    prof = tmp / "chrome-profile"
    r = subprocess.run([chromium, *CHROME_FLAGS, f"--user-data-dir={prof}", f"--window-size={size[0]},{size[1]}",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), r.stderr[-2000:]
    dom = subprocess.run([chromium, *CHROME_FLAGS, f"--user-data-dir={prof}", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    return Image.open(shot), dom


def assert_rendered(img: Image.Image, dom: str, size=(1200, 1600)):
    assert img.size == size
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert arr.std() > 20                                     # not blank
    assert (np.abs(arr - 255).sum(-1) > 60).mean() > 0.05     # a good share of non-white pixels (charts)
    loaded = int(dom.split('data-images-loaded="')[1].split('"')[0])
    total = int(dom.split('data-images-total="')[1].split('"')[0])
    assert total >= 2 and loaded == total                     # every embedded figure decoded in the browser


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("rep"))
    make_split(home, n_per_class=24)
    out = home.runs / "r"
    main(TrainArgs(manifest="gen", model="tate-cnn", epochs=4, image_size=48, batch_size=16, lr=0.05, workers=0,
                   home=str(home.root), out=str(out)))
    return home, out


def test_run_report_numbers_and_browser(trained, chromium, tmp_path):
    home, run = trained
    page = run_report(run, home)
    data = json.loads((page.parent / "report.json").read_text())
    rows = json.loads((run / "metrics.json").read_text())["epochs"]
    final = json.loads((run / "final.json").read_text())
    assert data["curves"]["train_loss"] == [r["loss"] for r in rows if r["split"] == "train"]
    assert data["curves"]["val_top1"] == [r["top1"] for r in rows if r["split"] == "val"]
    assert data["confusion"] == final["splits"]["test"]["confusion"]
    assert data["test_top1"] == final["test_top1"] and list(data["per_class"]) == CLASSES
    for f in ("curves.png", "confusion.png", "per_class.png", "index.html"):
        assert (page.parent / f).is_file()
    html = page.read_text()
    assert "src=\"file:" not in html and "http://" not in html.split("<script")[0]   # self-contained
    img, dom = render(chromium, page, tmp_path)
    assert_rendered(img, dom)


def test_dataset_report_numbers_and_browser(trained, chromium, tmp_path):
    home, _ = trained
    s = build_split(home, "movement", "gen", name="gen2")
    page = dataset_report(home, s.ref)
    data = json.loads((page.parent / "report.json").read_text())
    assert data["by_status"] == s.card["counts"]["by_status"]
    gen = list_manifests(home.manifests, "gen")[-1]
    assert data["harvest"]["manifest"] == gen.ref and data["harvest"]["by_status"] == gen.card["counts"]["by_status"]
    assert data["steps"][-1]["classes"] == s.card["counts"]["by_class"]
    assert data["sizes"]["images"] == s.rows
    assert page.read_text().count('class="thumb"') == 3 * 6
    img, dom = render(chromium, page, tmp_path)
    assert_rendered(img, dom)


def test_explain(trained, tmp_path):
    home, run = trained
    page = explain(run, home, per_class=1)
    data = json.loads((page.parent / "explain.json").read_text())
    assert len(data["images"]) == 3 and data["classes"] == CLASSES
    d = np.array(data["distances"])
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0) and (d[~np.eye(3, dtype=bool)] > 0).all()
    assert len(list(page.parent.glob("saliency_*.png"))) == 3 and len(list(page.parent.glob("featuremap_*.png"))) == 3
    one = data["images"][0]["image_key"]
    again = explain(run, home, images=[one], out=tmp_path / "e")
    assert json.loads((again.parent / "explain.json").read_text())["images"][0]["image_key"] == one


def test_report_cli_errors(tmp_path):
    from typer.testing import CliRunner
    from artdata.cli import app
    r = CliRunner().invoke(app, ["report", "nope", "--home", str(tmp_path)])
    assert r.exit_code == 1 and r.output.startswith("Error: no manifest named 'nope'")
    (tmp_path / "run").mkdir()
    r = CliRunner().invoke(app, ["explain", str(tmp_path / "run"), "--home", str(tmp_path)])
    assert r.exit_code == 1 and "no checkpoint_best.pt" in r.output
