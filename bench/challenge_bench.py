"""How long a harvest takes when its image host answers only bot challenges (issue #20 item 4).

    PYTHONPATH=. python bench/challenge_bench.py --records 200

The mirror's AIC image host answers every request with Cloudflare's managed challenge (403, HTML,
`cf-mitigated: challenge`), as the real one does since late 2025; `artdata crawl aic` runs as a user runs it
(a subprocess, the command's defaults: 1 request/s, a 30 s first block pause). Before the challenge was told
apart from a firewall block, a 40-record run was still pausing after 400 s.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artdata.mirror import Faults, Mirror  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    with Mirror(faults=Faults(challenge_media="/aic/iiif/")) as m, tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "artdata", "crawl", "aic", "--api-base", m.base("api") + "/aic/api/v1",
               "--all-rights", "--limit", str(args.records), "--home", tmp]
        t = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
        took = time.monotonic() - t
        print(out.stdout[-1500:], out.stderr[-1500:])
        print(f"{args.records} records, image host challenged: {took:.1f} s (exit {out.returncode}); "
              f"API requests {m.logs['api'].count()}, image requests {m.logs['media'].count()}")


if __name__ == "__main__":
    main()
