"""Build a Met-like harvest manifest of N rows by resampling the real sample (for benchmarks).

    python bench/make_met_like.py --rows 500000 --home bench/out/home

The 2,000 real Open Access rows are turned into records exactly as a harvest would (through the
mirror's API JSON and `record_from_object`, with the whole JSON in `extra`), then drawn with
replacement and given fresh ids, so the value distributions are the real ones.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from artdata.datasets.manifest import write_manifest
from artdata.mirror import Faults, MetData
from artdata.paths import Home
from artdata.datasets.records import to_table
from artdata.sources.met import record_from_object

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "met" / "objects_sample.parquet"


def met_like(rows: int, seed: int = 0) -> pa.Table:
    sample = pd.read_parquet(SAMPLE)
    data = MetData(sample)
    recs = []
    for oid in data.ids:
        rec = record_from_object(data.object(oid, "http://127.0.0.1:1", Faults()))
        rec["status"] = "ok" if rec["is_public_domain"] else "no_image"
        recs.append(rec)
    base = to_table(recs)
    idx = np.random.default_rng(seed).integers(0, base.num_rows, rows)
    t = base.take(pa.array(idx))
    ids = pa.array([str(10_000_000 + i) for i in range(rows)])
    return t.set_column(t.schema.get_field_index("source_id"), "source_id", ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--home", default="bench/out/home")
    ap.add_argument("--name", default="metlike")
    a = ap.parse_args()
    t0 = time.perf_counter()
    m = write_manifest(Home(Path(a.home)).manifests, a.name, met_like(a.rows),
                       lineage={"source": "met", "note": "resampled from shared/data/met/objects_sample.parquet"})
    print(f"{m.ref}: {m.rows} rows in {time.perf_counter() - t0:.1f}s -> {m.path}")


if __name__ == "__main__":
    main()
