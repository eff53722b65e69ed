"""The README's first command, `artdata demo`, end to end (quick sizes): it finishes, prints every path
whole and every stage title uncut at 80 columns, ends with a plain list of its folders, its pages say that the
images are the mirror's generated ones, and every manifest it writes has a Croissant card that the Croissant library's own
validator accepts with no warning."""
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CONTEXT = Path(__file__).parent / "fixtures" / "croissant-1.0-context.json"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    r = subprocess.run([sys.executable, "-m", "artdata", "demo", "--out", str(out), "--quick", "--objects", "120",
                        "--tate", "100"], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, COLUMNS="80"))
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return out, r.stdout + r.stderr


def test_demo_runs_and_prints_paths_whole(demo):
    out, text = demo
    assert "Traceback" not in text and "Warning" not in text
    paths = re.findall(r"(/\S+)", text)
    listed = [p for p in paths if p.startswith(str(out))]
    assert len(listed) >= 8
    for p in listed:
        assert Path(p.rstrip(")")).exists(), p                  # each one whole: it names a real file or folder
    assert any(p.endswith("/report/index.html") for p in listed)
    assert any(p.endswith("/explain/index.html") for p in listed)
    # four more museums harvested from the mirror and merged into one culture dataset
    assert "culture from 4 museums" in text
    card = json.loads(next((out / "home" / "manifests" / "demo-cultures").glob("*/card.json")).read_text())
    assert len(card["lineage"]["parents"]) == 4 and len(card["classes_by_source"]) >= 3


def test_demo_stage_titles_whole_and_last_block_plain(demo):
    out, text = demo
    lines = text.splitlines()
    rules = [ln for ln in lines if ln.startswith("─")]
    titles = [re.fullmatch(r"─+ (.+?) ─+", ln).group(1) for ln in rules]
    numbers = [int(t.split(".")[0]) for t in titles if t[0].isdigit()]
    assert len(numbers) >= 8 and numbers == sorted(numbers) and numbers[0] == 1, titles     # every stage ran
    for ln, title in zip(rules, titles):          # at 80 columns every title is whole: never cut with "…"
        assert len(ln) <= 80 and "…" not in ln, ln
    from artdata.demo import TITLE_MAX
    assert all(len(t) <= TITLE_MAX for t in titles), titles
    # the last block: human names, absolute paths, each printed once and none printed before it
    done = lines.index(next(ln for ln in rules if " done " in ln))
    before = set(re.findall(r"(/\S+)", "\n".join(lines[:done])))
    block = lines[done + 1:]
    paths = re.findall(r"(/\S+)", "\n".join(block))
    assert len(paths) == len(set(paths)) >= 3 and not set(paths) & before, block
    assert all(Path(p).is_absolute() and Path(p).exists() for p in paths), block
    assert not [ln for ln in block if re.match(r"\s+\w+_\w+:", ln)], block      # no internal key names
    # the pages, named for people, with absolute paths
    pages = [ln for ln in lines[:done] if ln.strip().startswith(("dataset page,", "training run page,", "what the model"))]
    assert len(pages) == 4 and all(re.search(r": /\S+/index\.html$", ln) for ln in pages), pages


def test_demo_pages_say_the_images_are_generated(demo):
    out, _ = demo
    pages = sorted((out / "home" / "reports").glob("*/index.html"))
    pages += [out / "home" / "runs" / "demo-medium-tate-cnn" / d / "index.html" for d in ("report", "explain")]
    assert len(pages) == 4
    for page in pages:                                  # the harvests' cards carry the mirror's flag
        top = page.read_text().split("<h2>")[0]
        assert "These are not the museums&#x27; pictures" in top or "These are not the museums' pictures" in top, page
        assert "loopback mirror" in top, page
    for page in pages[:2]:
        data = json.loads((page.parent / "report.json").read_text())
        assert data["synthetic_images"] and all("mirror" in v for v in data["synthetic_images"].values())


def test_demo_croissant_cards_validate_without_warnings(demo, caplog):
    out, _ = demo
    cards = sorted((out / "home" / "manifests").glob("*/*/croissant.json"))
    assert len(cards) >= 5
    published = json.loads(CONTEXT.read_text())
    import mlcroissant as mlc      # in the dev extra: the Croissant library's own validator
    for path in cards:
        doc = json.loads(path.read_text())
        assert doc["@context"] == published, path                       # the standard context, key for key
        card = json.loads((path.parent / "card.json").read_text())
        assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", doc["version"]) and doc["identifier"] == card["version"]
        assert doc["citeAs"].startswith("@misc{") and card["version"] in doc["citeAs"]
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            ds = mlc.Dataset(jsonld=str(path))
        issues = ds.metadata.ctx.issues
        assert not issues.errors and not issues.warnings, (path, issues.errors, issues.warnings)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], (path, caplog.text[-2000:])
