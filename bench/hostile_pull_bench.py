"""Peak memory of `artdata manifests pull` from a host that ignores Range (issue #19).

Publishes a manifest whose side table is a big incompressible Parquet file (--mb, default 300), serves the
folder with `python -m http.server` on 127.0.0.1 (which ignores Range: every answer is the whole file), and
runs under /usr/bin/time -v:

  sane      the card says the file's true size: one streamed GET, written to disk in 1 MB pieces
  hostile   the card's entry for README.md says 467 bytes, the host serves a file of --mb MB under that name
            (declared in Content-Length: refused on the headers)

Each with the checkout's code, and with --old DIR (a `git archive` of an earlier commit) for comparison.

    .venv/bin/python bench/hostile_pull_bench.py --mb 300 [--old /tmp/oldtree]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path, mb: int) -> tuple[Path, str]:
    import numpy as np
    import pyarrow as pa
    from artdata.datasets.manifest import write_manifest
    from artdata.datasets.records import new_record, to_table
    recs = [new_record("folder", str(i), status="failed", error="bench: no image") for i in range(10)]
    rng = np.random.default_rng(0)
    blobs = [rng.bytes(1 << 20) for _ in range(mb)]
    side = pa.table({"blob": pa.array(blobs, pa.binary())})
    from artdata.paths import Home
    from artdata.datasets.remote import push
    home = Home(out / "origin")
    m = write_manifest(home.manifests, "big", to_table(recs), extra_tables={"features": side})
    pub = out / "pub"
    push(home, m.ref, str(pub))
    # the hostile copy: the same store, but README.md replaced by the big file (its card entry unchanged)
    bad = out / "pub-hostile"
    shutil.copytree(pub, bad)
    shutil.copy(pub / "big" / m.version / "features.parquet", bad / "big" / m.version / "README.md")
    return pub, m.version


def serve(folder: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def run(url: str, home: Path, pythonpath: Path) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(pythonpath), ARTDATA_PULL_TIMEOUT="600")
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "artdata", "manifests", "pull", url,
                        "--home", str(home)], env=env, cwd=pythonpath, capture_output=True, text=True,
                       timeout=3600)
    wall = time.monotonic() - t
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    last = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.startswith(("Error", "manifest "))]
    return {"rc": p.returncode, "wall_s": round(wall, 1), "peak_rss_mb": round(rss), "said": (last or [""])[0][:160]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hostile")
    ap.add_argument("--old", type=Path, help="a checkout of an earlier commit, to compare")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    pub, version = build(a.out, a.mb)
    trees = [("this checkout", ROOT)] + ([("old", a.old)] if a.old else [])
    results = {}
    for case, folder in (("sane", pub), ("hostile", a.out / "pub-hostile")):
        proc, url = serve(folder)
        try:
            for label, tree in trees:
                results[f"{case} / {label}"] = run(f"{url}/big", a.out / "home", tree)
                print(f"{case:8} {label:14} {json.dumps(results[f'{case} / {label}'])}", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    shutil.rmtree(a.out, ignore_errors=True)


if __name__ == "__main__":
    main()
