import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdata.mirror import Faults, Mirror
from artdata.paths import Home

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def jpeg_bytes(w=320, h=240, color=(200, 40, 40), quality=90, noise=True) -> bytes:
    arr = np.zeros((h, w, 3), np.uint8) + np.array(color, np.uint8)
    if noise:
        arr = np.clip(arr.astype(np.int16) + np.random.default_rng(0).integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def mirror():
    m = Mirror(faults=Faults.none()).start()
    yield m
    m.stop()


def shared_path(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available (../shared/data beside the checkout)")
    return p
