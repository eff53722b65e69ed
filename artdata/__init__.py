"""artdata: museum collections and auction listings -> clean, versioned image datasets.

The repository keeps ``train/`` and ``spiders/`` at its top level (see DESIGN.md); installed,
they live under this package as ``artdata.train`` and ``artdata.spiders``. When the package is
used straight from a source checkout (``PYTHONPATH=. python -m artdata ...``, as on a GPU box
where nothing is installed), the checkout root is added to this package's search path so the
same ``artdata.train`` / ``artdata.spiders`` imports work there too.
"""
from __future__ import annotations

from pathlib import Path as _Path

__version__ = "0.1.0"

_here = _Path(__file__).resolve().parent
_root = _here.parent
if not (_here / "train").is_dir() and (_root / "train" / "__init__.py").is_file():
    __path__.append(str(_root))  # type: ignore[name-defined]  # noqa: F821


class ArtdataError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits 1."""
