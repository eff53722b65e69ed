import hashlib
import io
import signal
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from artdata.datasets.images import ImageConfig, ImagePool, ImageStore, process_image, target_size
from conftest import jpeg_bytes


def test_resize_keeps_aspect_and_original_size():
    res = process_image(jpeg_bytes(1024, 768), ImageConfig(size=256))
    assert res.status == "ok", res.error
    assert (res.width, res.height) == (341, 256)
    assert (res.orig_width, res.orig_height) == (1024, 768)
    im = Image.open(io.BytesIO(res.data))
    assert im.format == "JPEG" and im.size == (341, 256) and im.mode == "RGB"
    assert res.key == hashlib.sha256(res.data).hexdigest()
    assert res.nbytes == len(res.data)


def test_longer_side_and_no_upscale():
    res = process_image(jpeg_bytes(1024, 768), ImageConfig(size=200, side="longer"))
    assert (res.width, res.height) == (200, 150)
    small = process_image(jpeg_bytes(100, 80), ImageConfig(size=256))
    assert (small.width, small.height) == (100, 80)
    assert target_size(100, 80, ImageConfig(size=160, upscale=True)) == (200, 160)


def test_png_with_alpha_and_grayscale_become_rgb_jpeg():
    buf = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 255, 128)).save(buf, "PNG")
    res = process_image(buf.getvalue(), ImageConfig(size=100))
    assert res.status == "ok" and Image.open(io.BytesIO(res.data)).mode == "RGB"
    buf = io.BytesIO()
    Image.new("L", (300, 200), 128).save(buf, "JPEG")
    assert process_image(buf.getvalue()).status == "ok"


def test_deterministic_output():
    data = jpeg_bytes(640, 480)
    assert process_image(data).key == process_image(data).key


@pytest.mark.parametrize("data,reason", [
    (b"", "empty body"),
    (b"<!DOCTYPE html><html><body>Request unsuccessful. Incapsula</body></html>", "HTML instead of an image"),
    (b'{"message": "Not a valid object"}', "JSON instead of an image"),
    (b"GIF89a-not-really" + b"\x00" * 50, "not a recognised image format"),
    (b"plain text, not an image at all", "not a recognised image format"),
])
def test_bad_inputs_fail_with_reason(data, reason):
    res = process_image(data)
    assert res.status == "failed" and reason in res.error and res.key is None


def test_truncated_jpeg():
    data = jpeg_bytes(800, 600)
    res = process_image(data[: len(data) // 2])
    assert res.status == "failed" and "truncated" in res.error


def test_garbled_jpeg():
    data = jpeg_bytes(800, 600)
    bad = data[:2] + b"\x00" * 400 + data[402:]
    res = process_image(bad)
    assert res.status == "failed" and res.error


def test_unsupported_format_tiff_cmyk_ok_but_svg_not():
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert process_image(svg).status == "failed"
    buf = io.BytesIO()
    Image.new("CMYK", (50, 40)).save(buf, "TIFF")
    assert process_image(buf.getvalue()).status == "ok"


def test_decompression_bomb_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")   # 400 Mpx declared, small file
    res = process_image(buf.getvalue(), ImageConfig(max_pixels=50_000_000))
    assert res.status == "failed" and "decompression bomb" in res.error
    assert (res.orig_width, res.orig_height) == (20000, 20000)


def test_oversized_body_refused():
    res = process_image(jpeg_bytes(100, 100), ImageConfig(max_bytes=100))
    assert res.status == "failed" and "max_bytes" in res.error


def test_bad_config_is_a_clear_error():
    from artdata import ArtdataError
    with pytest.raises(ArtdataError, match="side"):
        ImageConfig(side="diagonal")
    with pytest.raises(ArtdataError, match="quality"):
        ImageConfig(quality=0)


def test_store_is_sharded_atomic_and_checks(tmp_path):
    store = ImageStore(tmp_path / "s")
    key = store.put(b"hello")
    p = store.path(key)
    assert p.relative_to(tmp_path / "s").parts[:2] == (key[:2], key[2:4])
    assert store.get(key) == b"hello" and store.check(key) is None
    p.write_bytes(b"tampered")
    assert store.check(key) == "checksum mismatch"
    p.unlink()
    assert store.check(key) == "missing"
    assert not list((tmp_path / "s").rglob(".tmp-*"))
    with pytest.raises(Exception, match="not an image key"):
        store.path("../../etc/passwd")


def test_killed_writer_leaves_no_half_file(tmp_path):
    """A process killed while writing leaves only a .tmp-*.part, never a file under the final name."""
    root = tmp_path / "s"
    code = textwrap.dedent(f"""
        import os, sys, tempfile
        from artdata.datasets.images import ImageStore
        store = ImageStore({str(root)!r})
        real_fdopen = os.fdopen
        class Slow:
            def __init__(self, fh): self.fh = fh
            def __enter__(self): return self
            def __exit__(self, *a): self.fh.close()
            def write(self, data):
                self.fh.write(data[:10]); self.fh.flush(); print("writing", flush=True); import time; time.sleep(30)
        os.fdopen = lambda fd, mode: Slow(real_fdopen(fd, mode))
        store.put(b"x" * 100000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    finals = [p for p in root.rglob("*.jpg")]
    assert finals == []
    key = hashlib.sha256(b"x" * 100000).hexdigest()
    assert ImageStore(root).check(key) == "missing"


def test_pool_processes_on_workers_and_stores(tmp_path):
    store = ImageStore(tmp_path / "s")
    with ImagePool(store, ImageConfig(size=64), workers=2) as pool:
        futs = [pool.submit(jpeg_bytes(200 + i, 150, color=(i * 20, 0, 0))) for i in range(6)]
        futs.append(pool.submit(b"<html>blocked</html>"))
        results = [f.result(timeout=60) for f in futs]
    assert [r.status for r in results] == ["ok"] * 6 + ["failed"]
    assert all(r.data is None for r in results)
    for r in results[:6]:
        assert store.check(r.key) is None
