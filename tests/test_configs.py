"""One config per study model (configs/): each parses, names a real model and options, and runs one
training step through `artdata train --config` on a tiny split of real JPEGs (flags override the file)."""
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from artdata.cli import app
from artdata.datasets.manifest import write_manifest
from artdata.paths import Home
from artdata.datasets.records import new_record, to_table
from artdata.splits.recipes import build_split
from artdata.train import models as M
from artdata.train.loop import TrainArgs, load_config, study_configs

from test_train import make_split

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
STUDIES = {"000": "appraisal", "001": "department", "002": "tate", "003": "culture", "004": "movement"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A single-label split, a multi-label one and a price split with its feature table."""
    home = Home(tmp_path_factory.mktemp("configs"))
    make_split(home, n_per_class=8, name="single")
    make_split(home, n_per_class=8, name="tags", multi=True)
    rng = np.random.default_rng(0)
    recs = [new_record("findartinfo", i, artist=f"artist{i % 5}", medium=("Oil on canvas", "Watercolor")[i % 2],
                       date_begin=int(1800 + rng.integers(0, 150)), signed=bool(i % 3), price=float(100 + 37 * i),
                       currency="USD", unsold=False, status="pending") for i in range(120)]
    write_manifest(home.manifests, "lots", to_table(recs))
    build_split(home, "price", "lots", name="price", bins=4)
    return home


def test_every_study_has_configs_and_all_are_shipped():
    assert {c.name[:3] for c in CONFIGS} == set(STUDIES)
    assert set(study_configs()) == {c.stem for c in CONFIGS}     # packaged: --config NAME finds each
    for c in CONFIGS:
        assert c.stem.split("-")[1] == STUDIES[c.name[:3]], c.name


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_to_valid_options(path):
    text = path.read_text()
    assert re.search(r"^# Study 00\d", text, re.M) and "# Dataset: artdata " in text and "# Study's figure:" in text
    values = load_config(str(path))
    args = TrainArgs(**values)
    args.validate()
    assert args.run_name == path.stem
    assert args.model in M.all_names()
    assert tomllib.loads(text) == {k: v for k, v in values.items()}


def _manifest_for(values: dict) -> str:
    if values["model"] == "softmax":
        return "price"
    return "tags" if values["manifest"].endswith("-tags") else "single"


def _run(home: Home, path: Path):
    values = load_config(str(path))
    if values.get("init_head") and not (home.runs / values["init_head"] / "checkpoint_best.pt").is_file():
        _run(home, path.parent / f"{values['init_head']}.toml")     # the run it starts from, first
    extra = ["--weights", "none"] if values["model"] in M.ZOO else []
    r = CliRunner().invoke(app, ["train", "--config", str(path), "--manifest", _manifest_for(values), "--epochs", "1",
                                 "--max-steps", "1", "--batch-size", "4", "--workers", "0", "--home", str(home.root),
                                 *extra])
    assert r.exit_code == 0, r.output
    return values


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_runs_one_step(tiny, path):
    values = _run(tiny, path)
    run = tiny.runs / path.stem
    final = json.loads((run / "final.json").read_text())
    assert final["model"] == values["model"] and "test_top1" in final
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["batch_size"] == 4 and cfg["max_steps"] == 1      # the flags won
    for key in ("mode", "optimizer", "lr", "head", "head_width", "dropout", "scheduler", "unfreeze_last",
                "augment", "feature_cache", "load_size", "grayscale", "image_size"):
        if key in values and values["model"] != "softmax":
            assert cfg[key] == values[key], key                                   # the file's options held
    if values["model"] != "softmax":
        assert cfg["image_size"] == values.get("image_size", M.default_image_size(values["model"]))
    if values.get("mode") == "transfer" and values.get("feature_cache", True):
        assert Path(cfg["feature_cache_file"]).is_file()


def test_config_by_name_and_unknown_name(tiny, tmp_path):
    r = CliRunner().invoke(app, ["train", "--config", "003-culture-alexnet", "--manifest", "single", "--epochs", "1",
                                 "--max-steps", "1", "--weights", "none", "--image-size", "64", "--workers", "0",
                                 "--run-name", "by-name", "--home", str(tiny.root)])
    assert r.exit_code == 0, r.output
    assert json.loads((tiny.runs / "by-name" / "config.json").read_text())["head"] == "mlp3"
    r = CliRunner().invoke(app, ["train", "--config", "003-culture-resnet9", "--home", str(tiny.root)])
    assert r.exit_code == 1
    assert r.output.strip().startswith("Error: --config 003-culture-resnet9: no such file, nor a shipped config "
                                       "(those are: 000-appraisal-alexnet-like,")


def test_readme_table_lists_every_config():
    readme = (ROOT / "README.md").read_text()
    for c in CONFIGS:
        assert f"configs/{c.name}" in readme, c.name
