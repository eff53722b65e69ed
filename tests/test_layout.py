"""Packaging and import boundaries."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_never_imports_harvesting_side():
    code = ("import sys, importlib, pkgutil, artdata.train as t\n"
            "for m in pkgutil.walk_packages(t.__path__, 'artdata.train.'):\n"
            "    importlib.import_module(m.name)\n"
            "import artdata.datasets.manifest, artdata.datasets.records, artdata.datasets.images\n"
            "bad = [m for m in ('httpx', 'scrapy', 'tenacity', 'bs4', 'twisted') if m in sys.modules]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_generic_top_level_packages_installed():
    import importlib.util
    for name in ("train", "spiders"):
        spec = importlib.util.find_spec(name)
        assert spec is None or Path(spec.origin or "").resolve().is_relative_to(ROOT), name


def test_source_checkout_works_without_install(tmp_path):
    """PYTHONPATH=. python -m artdata ... from the working tree (as on a GPU box)."""
    out = subprocess.run([sys.executable, "-c", "import artdata.train, artdata.spiders; print(artdata.train.__file__)"],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == ROOT / "train" / "__init__.py"


LAYOUT_CHECK = ROOT.parent / "shared" / "tools" / "layout_check.py"


def test_no_import_cycles_and_no_private_reach_ins():
    """The layout stays as ARCHITECTURE.md draws it: no module imports its way back to itself, none takes
    another module's _private names, and few modules sit at the artdata/ root."""
    import pytest
    if not LAYOUT_CHECK.is_file():
        pytest.skip(f"{LAYOUT_CHECK} is not beside this checkout (it lives in the project's shared/tools)")
    out = subprocess.run([sys.executable, str(LAYOUT_CHECK), str(ROOT)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert [x for x in lines if x.startswith(("cycle:", "private:"))] == [], out.stdout
    summary = lines[-1]
    assert " 0 import cycles, 0 private reach-ins, " in summary, summary
    assert out.returncode == 0, out.stdout


def test_image_workers_import_no_harvest_client():
    """The image processes (forkserver preload: artdata.harvest.workers) import neither httpx nor tenacity."""
    code = ("import sys, artdata.harvest.workers\n"
            "print([m for m in ('httpx', 'tenacity', 'scrapy') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
