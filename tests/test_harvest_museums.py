"""The mirror's faults and kill-and-resume, for each of the other museums' harvesters (`crawl aic | cleveland |
nga | iiif`): 403 bursts on both hosts, 429 with Retry-After, 5xx and cut-off bodies are waited out and retried
until every record is harvested, within the rate; a record's JSON cut short or an HTML page with status 200 is a
failed record naming its URL; killed with SIGKILL mid-run, the same command again leaves every selected record
once in the manifest, fetches no finished record's image again, and leaves no process behind."""
import json
import subprocess
import sys
from collections import Counter
from urllib.parse import unquote, urlsplit

import pytest

from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.datasets.manifest import load
from artdata.mirror import Faults, Mirror
from artdata.paths import Home
from artdata.sources.aic import AicSource
from artdata.sources.cleveland import ClevelandSource
from artdata.sources.iiif import IiifSource
from artdata.sources.nga import NgaSource
from conftest import sigkill_when_held, still_running, assert_polite

N = 60
RATE = 30


def _args(source: str, m: Mirror) -> list[str]:
    api = m.base("api")
    return {"aic": ["aic", "--api-base", f"{api}/aic/api/v1", "--all-rights"],
            "cleveland": ["cleveland", "--api-base", f"{api}/cma/api"],
            "nga": ["nga", f"{api}/nga/data"],
            "iiif": ["iiif", f"{api}/iiif/3/collection.json"]}[source]



def _paths(m: Mirror) -> Counter:
    return Counter(unquote(p) for _, p, _ in m.logs["media"].entries)


@pytest.mark.parametrize("source", ["aic", "cleveland", "nga", "iiif"])
def test_kill_and_resume(tmp_path, source):
    home = Home(tmp_path)
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.05)) as m:
        # past 30 records' images (IIIF: info.json and image) the media host holds its answers: the run is
        # still going when the kill comes, however loaded the machine (released for the second run)
        hold = m.hold("media", "/", after=30 * (2 if source == "iiif" else 1))
        cmd = [sys.executable, "-m", "artdata", "crawl", *_args(source, m), "--limit", str(N), "--rate", str(RATE),
               "--concurrency", "4", "--image-size", "32", "--workers", "1", "--home", str(home.root)]
        journal, tree, env = sigkill_when_held(cmd, home, hold, 20)
        done = [json.loads(line) for line in open(journal, "rb") if line.endswith(b"\n")]
        assert 20 <= len(done) <= 30
        hold.release()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr
        assert "resuming" in out.stderr and "Traceback" not in out.stderr
        rows = load(home.manifests, source).table(columns=["source_id", "status", "image_url"]).to_pylist()
        assert len(rows) == N and len({r["source_id"] for r in rows}) == N
        assert {r["status"] for r in rows} == {"ok"}
        fetched = _paths(m)
        for r in done:                                   # finished before the kill: its image asked once, ever
            assert r["status"] == "ok" and fetched[unquote(urlsplit(r["image_url"]).path)] == 1, r["source_id"]
        assert_polite(m, "api", RATE)
        assert_polite(m, "media", RATE)
        if source == "nga":                              # the tables: once per run, not once per waiting job
            assert m.logs["api"].count(prefix="/nga/data/objects.csv") == 2
    assert still_running(tree) == []


def _source(source: str, m: Mirror):
    api = m.base("api")
    return {"aic": lambda: AicSource(api_base=f"{api}/aic/api/v1", public_domain_only=False, image_size=48),
            "cleveland": lambda: ClevelandSource(api_base=f"{api}/cma/api", image_size=48),
            "nga": lambda: NgaSource(data=f"{api}/nga/data", image_size=48),
            "iiif": lambda: IiifSource([f"{api}/iiif/3/collection.json"], image_size=48)}[source]()


def _cfg(limit: int, rate: float = 40):
    return HarvestConfig(manifest="m", image=ImageConfig(size=48), limit=limit, workers=1,
                         client=ClientConfig(rate=rate, concurrency=6, retries=5, backoff=0.05, backoff_max=0.3,
                                             block_pause=0.3))


@pytest.mark.parametrize("source", ["aic", "cleveland", "nga", "iiif"])
def test_transient_faults_are_waited_out(tmp_path, source):
    faults = Faults(seed=4, block_burst=12, block_window=1.0, block_seconds=0.4, block_media=True, too_many=0.1,
                    retry_after=0.1, server_error=0.15, truncated=0.1)
    with Mirror(faults=faults) as m:
        res = harvest(_source(source, m), _cfg(40), Home(tmp_path))
        assert res.counts == {"ok": 40}, load(Home(tmp_path).manifests, "m").to_pandas().error.dropna().tolist()
        assert m.blocks >= 1 and res.client_stats.retries > 0 and res.client_stats.blocks >= 1
        assert {s for _, _, s in m.logs["api"].entries + m.logs["media"].entries} >= {403, 429, 200}
        assert_polite(m, "api", 40)
        assert_polite(m, "media", 40)


@pytest.mark.parametrize("source", ["aic", "cleveland"])
def test_a_broken_record_answer_is_a_failed_record(tmp_path, source):
    """AIC asks each artwork; Cleveland asks each artwork it did not get from the listing (a resumed run)."""
    home = Home(tmp_path)
    with Mirror(faults=Faults(seed=9, malformed_json=0.2, html_200=0.2)) as m:
        if source == "cleveland":           # the listing carried the first 10; the next 40 are asked one by one
            harvest(_source(source, m), _cfg(10), home)
        res = harvest(_source(source, m), _cfg(50), home)
        rows = load(home.manifests, "m").table(columns=["source_id", "status", "error"]).to_pylist()
        failed = [r for r in rows if r["status"] == "failed"]
        assert failed and res.counts["ok"] >= 15 and len(rows) == 50
        for r in failed:
            assert ("malformed JSON from http://127.0.0.1:" in r["error"] or
                    "HTML page instead of JSON (HTTP 200) from http://127.0.0.1:" in r["error"]), r
            assert f"/artworks/{r['source_id']}" in r["error"] and "\n" not in r["error"]
