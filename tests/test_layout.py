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
