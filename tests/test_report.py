"""Reports: real pages rendered in headless Chromium (Debian's, installed by this setup if missing),
screenshots checked, and every number drawn checked against the files it came from."""
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdata.reports.explain import explain
from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.datasets.manifest import list_manifests, write_manifest
from artdata.datasets.records import new_record, to_table
from artdata.mirror import render_jpeg
from artdata.paths import Home
from artdata.reports.report import dataset_report, run_report, status_figure
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


class Tables(HTMLParser):
    """The page's tables as rows of (tag, text) cells."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [tag, ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None


def table_rows(html: str) -> list[list[tuple[str, str]]]:
    t = Tables()
    t.feed(html.split('<script type="application/json"')[0])
    return t.rows


def assert_no_empty_rows(html: str):
    rows = table_rows(html)
    assert rows
    for r in rows:            # no header row of empty cells (#25): every row says something
        assert r and any(text for _, text in r), r


def assert_integer_ticks(ticks: list[float]):
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


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
    assert_no_empty_rows(html)
    assert table_rows(html)[0] == [("th", "model"), ("td", final["model"])]       # the summary starts with its data
    # every class's accuracy is written on its bar and in the table
    per_class = final["splits"]["test"]["per_class"]
    assert data["figures"]["per_class"]["bar_labels"] == [f"{v:.2f}" for v in per_class]
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
    html = page.read_text()
    assert_no_empty_rows(html)
    assert table_rows(html)[0] == [("th", "manifest"), ("td", s.ref)]
    for fig in ("status", "classes", "sizes"):          # every count axis has whole-number ticks
        assert_integer_ticks(data["figures"][fig]["count_ticks"])
    # each step's count of each class is written on its bar
    classes = sorted(s.card["counts"]["by_class"])
    drawn = [str(st["classes"].get(c, 0)) for st in data["steps"] if st["classes"] for c in classes]
    assert data["figures"]["classes"]["bar_labels"] == drawn
    assert "synthetic_images" not in data and "not the museums' pictures" not in html   # no such card flag here
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


MIRROR_NOTE = "generated by the test's own renderer: stripes, not the museum's picture"
LONG_REASON = "not a recognised image format, the server sent an HTML page where a JPEG was expected"


def small_harvest(home: Home, name: str, synthetic: str | None) -> "Manifest":
    """A harvest-like manifest: 5 + 3 images of two classes, 2 failed as truncated, 1 failed with a long reason."""
    store = ImageStore(home.images)
    recs = []
    for c, n in (("alpha", 5), ("beta", 3)):
        for i in range(n):
            res = process_image(render_jpeg(f"{name}-{c}-{i}", c, (90, 70)), ImageConfig(size=64))
            store.put(res.data, res.key)
            recs.append(new_record("met", f"{c}{i}", label=c, **res.fields()))   # status ok
    recs += [new_record("met", f"bad{i}", status="failed", label="alpha", error="truncated image") for i in range(2)]
    recs.append(new_record("met", "odd", status="failed", label="beta", error=LONG_REASON))
    lineage = {"source": "met", "parents": []}
    if synthetic:
        lineage["synthetic_images"] = synthetic
    return write_manifest(home.manifests, name, to_table(recs), lineage=lineage)


def test_dataset_report_small_counts_and_generated_images_note(tmp_path, chromium):
    home = Home(tmp_path / "home")
    m = small_harvest(home, "small", MIRROR_NOTE)
    page = dataset_report(home, m.ref)
    assert page.is_absolute()
    data = json.loads((page.parent / "report.json").read_text())
    html = page.read_text()
    # counts of 2 and 3: ticks 0, 1, 2 (never 0.25 steps), and the number on every bar
    assert_integer_ticks(data["figures"]["status"]["count_ticks"])
    assert {0.0, 1.0, 2.0} <= set(data["figures"]["status"]["count_ticks"])
    assert data["figures"]["status"]["bar_labels"] == ["3", "8", "2", "1"]     # failed, ok; then by reason
    assert_integer_ticks(data["figures"]["classes"]["count_ticks"])
    assert data["figures"]["classes"]["bar_labels"] == ["7", "4"]
    # the reasons in full in a table (the chart's labels are wrapped), no empty rows anywhere
    assert_no_empty_rows(html)
    assert [("td", LONG_REASON), ("td", "1")] in table_rows(html)
    # the card says the images are generated: the page says so at the top and beside the thumbnails
    assert data["synthetic_images"] == {m.ref: MIRROR_NOTE}
    top = html.split("<h2>")[0]
    assert "not the museums' pictures" in top and MIRROR_NOTE.replace("'", "&#x27;") in top
    assert "Generated stand-ins" in html.split("Samples per label")[1]
    img, dom = render(chromium, page, tmp_path)
    assert_rendered(img, dom)
    # a split built from it says so too (the flag is found through lineage.parents); a harvest without it does not
    split = build_split(home, "movement", m.ref, name="small-split", min_count=1)
    data = json.loads((dataset_report(home, split.ref).parent / "report.json").read_text())
    assert data["synthetic_images"] == {m.ref: MIRROR_NOTE} and data["harvest"]["manifest"] == m.ref
    plain = small_harvest(home, "plain", None)
    assert "not the museums' pictures" not in dataset_report(home, plain.ref).read_text()


def test_status_chart_reason_labels_stay_beside_their_chart():
    fig, info = status_figure({"failed": 3, "ok": 400}, {LONG_REASON: 2, "truncated image": 1}, "records by status")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    left, right = fig.axes[0], fig.axes[1]
    left_box = left.get_tightbbox(r)                     # the status chart with its own labels
    for label in right.get_yticklabels():                # each reason label, wrapped to at most 2 lines
        box = label.get_window_extent(r)
        assert box.x0 >= left_box.x1, (label.get_text(), box, left_box)
        assert label.get_text().count("\n") <= 1
    assert info["bar_labels"] == ["3", "400", "2", "1"]
    from artdata.reports.page import pyplot
    pyplot().close(fig)


def write_run(run: Path, classes, confusion, per_class, manifest=None):
    """A finished run's files as train/loop.py writes them (metrics.json, final.json, config.json)."""
    run.mkdir(parents=True)
    epochs = [{"epoch": e, "split": sp, "loss": 1.0 / (e + 1), "top1": 0.3 + 0.1 * e} for e in range(3)
              for sp in ("train", "val")]
    (run / "metrics.json").write_text(json.dumps({"epochs": epochs}))
    (run / "config.json").write_text(json.dumps({"home": str(run.parent)}))
    (run / "final.json").write_text(json.dumps({
        "model": "tate-cnn", "manifest": manifest, "classes": classes, "test_top1": 0.5, "best_epoch": 2,
        "splits": {"test": {"confusion": confusion, "per_class": per_class}}}))


def test_run_report_zero_accuracy_class_has_its_number(tmp_path, chromium):
    home = Home(tmp_path / "home")
    m = small_harvest(home, "gen-run", MIRROR_NOTE)
    run = tmp_path / "runs" / "zero"
    classes = ["alpha", "beta", "gamma"]
    write_run(run, classes, [[4, 0, 0], [3, 0, 1], [0, 0, 2]], [1.0, 0.0, 1.0], manifest=m.ref)
    page = run_report(run, home)
    data = json.loads((page.parent / "report.json").read_text())
    html = page.read_text()
    assert data["figures"]["per_class"]["bar_labels"] == ["1.00", "0.00", "1.00"]     # the 0 is drawn too
    assert [("td", "beta"), ("td", "4"), ("td", "0"), ("td", "0.000")] in table_rows(html)
    assert_no_empty_rows(html)
    assert data["synthetic_images"] == {m.ref: MIRROR_NOTE} and "not the museums' pictures" in html.split("<h2>")[0]
    img, dom = render(chromium, page, tmp_path)
    assert_rendered(img, dom)


def test_report_cli_prints_absolute_paths(trained, tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from artdata.cli import app
    home, run = trained
    monkeypatch.chdir(run.parent)
    r = CliRunner().invoke(app, ["report", run.name, "--home", str(home.root), "--out", "rel-run"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"report: {(run.parent / 'rel-run' / 'index.html').resolve()}"
    r = CliRunner().invoke(app, ["report", "gen", "--home", str(home.root), "--out", "rel-data"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"report: {(run.parent / 'rel-data' / 'index.html').resolve()}"
