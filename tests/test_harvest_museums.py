"""Kill and resume, for each of the other museums' harvesters: `crawl aic | cleveland | nga | iiif` killed with
SIGKILL mid-run, then the same command again: the manifest holds every selected record once, no image of a record
the first run finished is fetched again, no process is left, and the rate was never exceeded."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import unquote, urlsplit

import pytest

from artdata.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.paths import Home
from conftest import descendants, still_running

N = 60
RATE = 30


def _args(source: str, m: Mirror) -> list[str]:
    api = m.base("api")
    return {"aic": ["aic", "--api-base", f"{api}/aic/api/v1", "--all-rights"],
            "cleveland": ["cleveland", "--api-base", f"{api}/cma/api"],
            "nga": ["nga", f"{api}/nga/data"],
            "iiif": ["iiif", f"{api}/iiif/3/collection.json"]}[source]


def _journal_with(home: Home, n: int, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(home.harvest.glob("*/journal.jsonl")) if home.harvest.exists() else []
        if found and sum(1 for _ in open(found[0], "rb")) >= n:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"the harvest did not record {n} ids within {timeout:g}s")


def _paths(m: Mirror) -> Counter:
    return Counter(unquote(p) for _, p, _ in m.logs["media"].entries)


@pytest.mark.parametrize("source", ["aic", "cleveland", "nga", "iiif"])
def test_kill_and_resume(tmp_path, source):
    home = Home(tmp_path)
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.05)) as m:
        cmd = [sys.executable, "-m", "artdata", "crawl", *_args(source, m), "--limit", str(N), "--rate", str(RATE),
               "--concurrency", "4", "--image-size", "32", "--workers", "1", "--home", str(home.root)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            journal = _journal_with(home, 20)
            tree = descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        done = [json.loads(line) for line in open(journal, "rb") if line.endswith(b"\n")]
        assert 20 <= len(done) < N
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr
        assert "resuming" in out.stderr and "Traceback" not in out.stderr
        rows = load(home.manifests, source).table(columns=["source_id", "status", "image_url"]).to_pylist()
        assert len(rows) == N and len({r["source_id"] for r in rows}) == N
        assert {r["status"] for r in rows} == {"ok"}
        fetched = _paths(m)
        for r in done:                                   # finished before the kill: its image asked once, ever
            assert r["status"] == "ok" and fetched[unquote(urlsplit(r["image_url"]).path)] == 1, r["source_id"]
        assert m.max_rate("api") <= RATE and m.max_rate("media") <= RATE
    assert still_running(tree) == []
