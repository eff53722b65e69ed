"""Selecting from a museum's bulk files at full size: seconds and peak memory of `ids()` (no image, no request).

    PYTHONPATH=. python bench/selection_bench.py --records 61000     # Cleveland data.json / data.csv, NGA tables

Records are the mirror's (built from the bundled Met sample) repeated under new ids up to --records: the
Cleveland ones as data.json (a JSON array), JSON lines and data.csv, the NGA ones as objects.csv +
published_images.csv (+ the constituents tables). Each case runs in a fresh process; peak RSS is that
process's ru_maxrss (Python, pandas and the tables included).
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASE = r"""
import asyncio, resource, sys, time
from artdata.harvest.client import ClientConfig, PoliteClient
kind, path = sys.argv[1], sys.argv[2]
if kind == "nga":
    from artdata.sources.nga import NgaSource as S; src = S(data=path)
else:
    from artdata.sources.cleveland import ClevelandSource as S; src = S(dump=path)
async def main():
    async with PoliteClient(ClientConfig()) as c:
        return await src.ids(c)
t = time.perf_counter(); ids = asyncio.run(main()); dt = time.perf_counter() - t
print(len(ids), f"{dt:.2f}", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def write_files(n: int, out: Path) -> dict[str, Path]:
    import pandas as pd
    from artdata.mirror import Mirror
    from artdata.mirror.cleveland import cma_artwork
    with Mirror() as m:
        base = [cma_artwork(m, o) for o in m.met.ids]
        tables = m.nga_tables()
    docs = []
    for i in range(n):
        d = dict(base[i % len(base)])
        d["id"] = 1_000_000 + i
        docs.append(d)
    files = {"cleveland data.json": out / "data.json", "cleveland JSON lines": out / "data.jsonl",
             "cleveland data.csv": out / "data.csv", "nga tables": out / "nga"}
    files["cleveland data.json"].write_text(json.dumps(docs))
    files["cleveland JSON lines"].write_text("".join(json.dumps(d) + "\n" for d in docs))
    with open(files["cleveland data.csv"], "w", newline="", encoding="utf-8") as fh:
        rows = [{**{k: v for k, v in d.items() if k != "images"}, "culture": str(d["culture"]),
                 "creators": str(d["creators"]), **{f"image_{k}": (d["images"] or {}).get(k, {}).get("url", "")
                                                    for k in ("web", "print", "full")}} for d in docs]
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    nga = files["nga tables"]
    nga.mkdir()
    import io
    reps = -(-n // len(base))
    for name, data in tables.items():
        df = pd.read_csv(io.BytesIO(data), dtype=str)
        if name in ("objects", "published_images", "objects_constituents"):
            col = {"objects": "objectid", "published_images": "depictstmsobjectid",
                   "objects_constituents": "objectid"}[name]
            parts = []
            for r in range(reps):
                p = df.copy()
                p[col] = (p[col].astype(int) + 1_000_000 * (r + 1)).astype(str)
                parts.append(p)
            df = pd.concat(parts).head(n if name == "objects" else None)
        df.to_csv(nga / f"{name}.csv", index=False)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=61000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(a.records, Path(tmp))
        print(f"{'input':22} {'MB':>7} {'selected':>9} {'seconds':>8} {'peak RSS MB':>12}")
        for label, path in files.items():
            size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
            r = subprocess.run([sys.executable, "-c", CASE, "nga" if "nga" in label else "cma", str(path)],
                               capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                print(f"{label}: failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            n, secs, rss = r.stdout.split()
            print(f"{label:22} {size / 1e6:>7.1f} {n:>9} {secs:>8} {rss:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
