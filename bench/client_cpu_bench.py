"""CPU seconds the polite client spends per downloaded image (the harvest's main process), against a static
server in another process, so that the server's work does not count.

    PYTHONPATH=. python bench/client_cpu_bench.py --images 600 --kb 238

Used to check that the hostile-input guards (streamed, capped bodies; the total deadline; redirects checked hop
by hop; the private-address check) cost little next to the client they guard.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time

SERVER = r'''
import http.server, sys
body = b"\xff" * int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True); s.serve_forever()
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--kb", type=int, default=238)
    ap.add_argument("--port", type=int, default=18931)
    args = ap.parse_args()
    try:
        from artdata.harvest.client import ClientConfig, PoliteClient
        extra = {"trusted_hosts": ("127.0.0.1",)}
    except ImportError:                       # before the layout of #21
        from artdata.http import ClientConfig, PoliteClient
        extra = {}
    with tempfile.TemporaryDirectory():
        srv = subprocess.Popen([sys.executable, "-c", SERVER, str(args.port), str(args.kb * 1000)],
                               stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout.readline().strip() == "ready"

            async def go():
                async with PoliteClient(ClientConfig(rate=100000, concurrency=8, **extra)) as c:
                    sem = asyncio.Semaphore(16)

                    async def one(i):
                        async with sem:
                            r = await c.get(f"http://127.0.0.1:{args.port}/img/{i}.jpg")
                            assert r.status_code == 200 and len(r.content) == args.kb * 1000
                    await asyncio.gather(*(one(i) for i in range(args.images)))
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            asyncio.run(go())
            r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        finally:
            srv.kill()
            srv.wait()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"{args.images} images of {args.kb} KB: {cpu:.2f} CPU s in the client ({1000 * cpu / args.images:.2f} ms "
          f"an image), {t1 - t0:.1f} s wall, peak RSS {r1.ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
