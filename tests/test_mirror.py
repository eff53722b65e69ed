import io
import json
import socket
import time

import httpx
import pandas as pd
import pytest
from PIL import Image

from artdata.datasets.images import process_image
from artdata.mirror import Faults, Mirror, Response, render_jpeg


def get(url, **kw):
    return httpx.get(url, timeout=10, **kw)


def test_met_api_routes(mirror):
    objs = get(f"{mirror.met_api_base}/objects").json()
    assert objs["total"] == len(objs["objectIDs"]) == 2000
    depts = get(f"{mirror.met_api_base}/departments").json()["departments"]
    assert {"departmentId": 11, "displayName": "European Paintings"} in depts
    only = get(f"{mirror.met_api_base}/objects", params={"departmentIds": "11|4"}).json()
    assert 0 < only["total"] < 2000
    one = get(f"{mirror.met_api_base}/objects/{only['objectIDs'][0]}").json()
    assert one["department"] in ("European Paintings", "Arms and Armor")
    since = get(f"{mirror.met_api_base}/objects", params={"metadataDate": "2024-06-01"}).json()
    assert 0 < since["total"] < 2000
    for oid in since["objectIDs"][:20]:
        assert get(f"{mirror.met_api_base}/objects/{oid}").json()["metadataDate"] >= "2024-06-01"
    r = get(f"{mirror.met_api_base}/objects/999999999")
    assert r.status_code == 404 and r.json() == {"message": "Not a valid object"}


def test_images_depend_on_label_and_decode(mirror):
    oid = get(f"{mirror.met_api_base}/objects").json()["objectIDs"][0]
    obj = get(f"{mirror.met_api_base}/objects/{oid}").json()
    small = get(obj["primaryImageSmall"])
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(small.content))
    assert max(im.size) == 800
    assert max(Image.open(io.BytesIO(get(obj["primaryImage"]).content)).size) == 1600
    a = Image.open(io.BytesIO(render_jpeg("k1", "Dutch", (64, 64)))).convert("RGB").resize((1, 1)).getpixel((0, 0))
    b = Image.open(io.BytesIO(render_jpeg("k1", "Chinese", (64, 64)))).convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert sum(abs(x - y) for x, y in zip(a, b)) > 30
    assert render_jpeg("k1", "Dutch", (64, 64)) != render_jpeg("k2", "Dutch", (64, 64))


def test_tate_table_and_renditions(mirror):
    df = pd.read_parquet(io.BytesIO(get(mirror.tate_table_url).content))
    row = df[df.thumbnailUrl.notna()].iloc[0]
    assert row.thumbnailUrl.startswith(mirror.media_base)
    for suffix, side in (("_8", 256), ("_9", 730)):
        im = Image.open(io.BytesIO(get(row.thumbnailUrl.replace("_8.jpg", f"{suffix}.jpg")).content))
        assert max(im.size) == side
    csv = get(mirror.base("api") + "/tate/artwork_data.csv")
    assert csv.status_code == 200 and csv.text.startswith("id,")
    assert get(mirror.media_base + "/art/images/work/X/X00/NOPE_8.jpg").status_code == 404


def test_burst_block_is_html_403_and_lifts():
    with Mirror(faults=Faults(block_burst=5, block_window=1.0, block_seconds=0.6)) as m:
        codes = [get(f"{m.met_api_base}/departments").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [403] * 3
        r = get(f"{m.met_api_base}/departments")
        assert r.status_code == 403 and b"Incapsula" in r.content and "html" in r.headers["content-type"]
        assert "retry-after" not in r.headers
        time.sleep(0.7)
        assert get(f"{m.met_api_base}/departments").status_code == 200
        assert m.blocks == 1


def test_429_with_retry_after_then_ok():
    with Mirror(faults=Faults(too_many=1.0, retry_after=2)) as m:
        r = get(f"{m.met_api_base}/departments")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert get(f"{m.met_api_base}/departments").status_code == 200


def test_5xx_transient():
    with Mirror(faults=Faults(server_error=1.0, transient_attempts=2)) as m:
        codes = [get(f"{m.met_api_base}/departments").status_code for _ in range(3)]
        assert codes[0] >= 500 and codes[1] >= 500 and codes[2] == 200


def test_slow_answers():
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.4)) as m:
        t = time.monotonic()
        assert get(f"{m.met_api_base}/departments").status_code == 200
        assert time.monotonic() - t >= 0.35
        with pytest.raises(httpx.TimeoutException):
            httpx.get(f"{m.met_api_base}/departments", timeout=0.1)


def test_truncated_body_is_detected_by_clients():
    with Mirror(faults=Faults(truncated=1.0)) as m:
        with pytest.raises(httpx.RemoteProtocolError):
            get(f"{m.met_api_base}/departments")
        assert get(f"{m.met_api_base}/departments").status_code == 200


def test_object_level_faults_are_stable():
    f = Faults(seed=3, withdrawn=0.2, no_image=0.2, malformed_json=0.1, html_200=0.1, corrupt_image=0.3)
    with Mirror(faults=f) as m:
        ids = get(f"{m.met_api_base}/objects").json()["objectIDs"][:120]
        kinds = {"404": 0, "html": 0, "malformed": 0, "noimg": 0, "corrupt": 0, "ok": 0}
        for oid in ids:
            r = get(f"{m.met_api_base}/objects/{oid}")
            again = get(f"{m.met_api_base}/objects/{oid}")
            assert (r.status_code, r.content) == (again.status_code, again.content)
            if r.status_code == 404:
                kinds["404"] += 1
                assert r.json()["message"] == "Not a valid object"
                continue
            if r.content.startswith(b"<!DOCTYPE html>"):
                kinds["html"] += 1
                continue
            try:
                obj = r.json()
            except json.JSONDecodeError:
                kinds["malformed"] += 1
                continue
            if not obj["primaryImageSmall"]:
                kinds["noimg"] += 1
                continue
            res = process_image(get(obj["primaryImageSmall"]).content)
            kinds["corrupt" if res.status == "failed" else "ok"] += 1
        assert all(v > 0 for v in kinds.values()), kinds


def test_request_rate_counting_and_plugin_route():
    with Mirror() as m:
        m.add_route("api", "/hello/", lambda mir, path, q: Response(200, b"hi " + path.encode(), "text/plain"))
        assert get(m.base("api") + "/hello/x").text == "hi /hello/x"
        for _ in range(5):
            get(m.base("api") + "/hello/y")
        assert m.max_rate("api") == 6
        assert m.logs["api"].count(200, "/hello/") == 6
        assert m.logs["media"].count() == 0


def test_servers_stop_and_free_ports():
    m = Mirror().start()
    port = int(m.base("api").rsplit(":", 1)[1])
    m.stop()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.close()


def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, return everything the mirror answers until it closes (or 2 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def test_request_parsing_keep_alive_and_bad_requests(mirror):
    port = int(mirror.met_api_base.split(":")[2].split("/")[0])
    prefix = mirror.met_api_base.split(str(port), 1)[1]
    # two HTTP/1.1 requests on one connection, the second asking to close: both answered, then closed
    two = (f"GET {prefix}/departments HTTP/1.1\r\nHost: x\r\n\r\n"
           f"GET {prefix}/departments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    out = _raw(port, two)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.count(b"European Paintings") == 2
    # HTTP/1.0 closes after one answer unless asked to keep alive
    assert _raw(port, f"GET {prefix}/departments HTTP/1.0\r\n\r\n".encode()).count(b" 200 ") == 1
    assert b" 400 " in _raw(port, b"NONSENSE\r\n\r\n").split(b"\r\n")[0]
    assert b" 400 " in _raw(port, f"GET {prefix}/departments HTTP/1.1\r\nno colon\r\n\r\n".encode())[:20]
    assert b" 431 " in _raw(port, f"GET {prefix}/departments HTTP/1.1\r\nX: {'a' * 70000}\r\n\r\n".encode())[:20]
    many = "".join(f"X-{i}: {i}\r\n" for i in range(120))
    assert b" 431 " in _raw(port, f"GET {prefix}/departments HTTP/1.1\r\n{many}\r\n".encode())[:20]
    # headers reach the routes (the plug-in route sees them through `_headers`)
    seen = {}
    mirror.add_route("api", "/echo-headers", lambda m, path, q: seen.update(q.get("_headers", {})) or Response(200, b"ok", "text/plain"))
    assert get(f"http://127.0.0.1:{port}/echo-headers", headers={"X-Probe": "yes"}).status_code == 200
    assert seen.get("x-probe") == "yes"
