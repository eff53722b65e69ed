"""Records (with their images) per second for each source against the loopback mirror.

    PYTHONPATH=. python bench/source_bench.py --records 300            # every source
    PYTHONPATH=. python bench/source_bench.py --source iiif --records 1000

Each source is harvested by the real `artdata crawl ...` command (a subprocess, as a user runs it) into a
fresh home, with a rate high enough not to be the limit, 16 requests in flight and 256 px images. The
mirror runs in this process and renders every image on the fly, on the same cores: the figures compare
sources on one machine, they are not the museums' own speeds (those are set by their rate limits).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artdata.mirror import Mirror  # noqa: E402

SOURCES = ("met", "tate", "iiif", "aic", "cleveland", "nga")


def command(source: str, m: Mirror, n: int) -> list[str]:
    if source == "met":
        return ["met", "--api-base", m.met_api_base, "--limit", str(n)]
    if source == "tate":
        return ["tate", m.tate_table_url, "--has-image", "--all-rights", "--limit", str(n)]
    if source == "iiif":
        return ["iiif", m.base("api") + "/iiif/3/collection.json", "--limit", str(n)]
    if source == "aic":
        return ["aic", "--api-base", m.base("api") + "/aic/api/v1", "--all-rights", "--limit", str(n)]
    if source == "cleveland":
        return ["cleveland", "--api-base", m.base("api") + "/cma/api", "--limit", str(n)]
    if source == "nga":
        return ["nga", m.base("api") + "/nga/data", "--limit", str(n)]
    raise SystemExit(f"unknown source {source}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", choices=SOURCES)
    ap.add_argument("--records", type=int, default=300)
    a = ap.parse_args()
    print(f"{'source':9} {'records':>8} {'ok':>6} {'seconds':>8} {'records/s':>10} {'images/s':>9} {'requests':>9}")
    for source in a.source or SOURCES:
        with Mirror() as m, tempfile.TemporaryDirectory() as home:
            cmd = [sys.executable, "-m", "artdata", "crawl", *command(source, m, a.records), "--image-size", "256",
                   "--rate", "1000", "--concurrency", "16", "--home", home]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                print(f"{source}: failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            summary = re.search(r"(\d+) records in ([\d.]+)s", r.stderr)
            ok = re.search(r"ok (\d+)", r.stderr)
            reqs = re.search(r"requests (\d+)", r.stderr)
            n, secs, k = int(summary.group(1)), float(summary.group(2)), int(ok.group(1)) if ok else 0
            print(f"{source:9} {n:>8} {k:>6} {secs:>8.1f} {n / secs:>10.1f} {k / secs:>9.1f} "
                  f"{reqs.group(1) if reqs else '?':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
