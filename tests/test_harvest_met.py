"""artdata crawl met against the loopback mirror: faults, politeness, resume, selection."""
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import pytest

from artdata.harvest import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig, ImageStore
from artdata.datasets.manifest import load, verify
from artdata.mirror import Faults, Mirror, bundled_met
from artdata.sources.met import MetSource
from conftest import descendants, journal_with, parent_pid, still_running, sigkill_when_held, assert_polite

FAST = ClientConfig(rate=40, concurrency=8, block_pause=0.3, backoff=0.02, backoff_max=0.1, timeout=5)
# a manifest's image URLs are content: materialize goes to the mirror's loopback host only when told it may
TRUSTING = replace(FAST, trusted_hosts=("127.0.0.1",))
IMG = ImageConfig(size=32)


def _harvest(m, home, limit=60, client=FAST, **src):
    return harvest(MetSource(api_base=m.met_api_base, image_size=32, **src),
                   HarvestConfig("met", image=IMG, client=client, limit=limit, workers=1), home)


def _rows(res):
    return res.manifest.table().to_pylist()


OBJECTS = "/public/collection/v1/objects/"      # one object's record (the id list is .../objects)


def _object_requests(m):
    return Counter(p.rsplit("/", 1)[1] for _, p, _ in m.logs["api"].entries if "/objects/" in p)


FAULTS = {
    "none": Faults(),
    "block": Faults(block_burst=10, block_window=1.0, block_seconds=0.8),
    "429": Faults(too_many=0.15, retry_after=0.2),
    "5xx": Faults(server_error=0.3, transient_attempts=2),
    "slow": Faults(slow=0.2, slow_seconds=0.2),
    "truncated": Faults(truncated=0.3),
    "corrupt": Faults(corrupt_image=0.2),
    "withdrawn": Faults(withdrawn=0.2),
    "no_image": Faults(no_image=0.2),
    "malformed": Faults(malformed_json=0.2),
    "html_200": Faults(html_200=0.2),
}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_each_fault_all_ids_accounted(kind, home):
    with Mirror(faults=FAULTS[kind]) as m:
        res = _harvest(m, home, limit=40)
        rows = _rows(res)
        ids = [r["source_id"] for r in rows]
        assert len(ids) == 40 and len(set(ids)) == 40
        assert set(ids) == set(m.met.ids[:40])
        assert_polite(m, "api", FAST.rate)
        assert_polite(m, "media", FAST.rate)
        st = Counter(r["status"] for r in rows)
        f = m.faults
        for r in rows:
            sid = r["source_id"]
            if f.pick("withdrawn", sid, f.withdrawn):
                assert r["status"] == "not_found" and "Not a valid object" in r["error"]
            elif f.pick("html_200", sid, f.html_200):
                assert r["status"] == "failed" and "HTML page instead of JSON" in r["error"] and sid in r["error"]
            elif f.pick("malformed", sid, f.malformed_json):
                assert r["status"] == "failed" and "malformed JSON" in r["error"]
            elif f.pick("no_image", sid, f.no_image) or not m.met.rows[sid]["Is Public Domain"]:
                assert r["status"] == "no_image"
            elif f.pick("corrupt", f"met:{sid}", f.corrupt_image):
                assert r["status"] == "failed" and any(w in r["error"] for w in ("corrupt", "truncated", "not a recognised"))
            else:
                assert r["status"] == "ok", (kind, r["error"])
        if kind == "block":
            assert m.blocks >= 1 and res.client_stats.blocks >= 1
        if kind in ("429", "5xx", "truncated"):
            assert res.client_stats.retries + res.client_stats.blocks > 0
        assert st["ok"] > 0
        assert verify(res.manifest, ImageStore(home.images)).ok


def test_all_faults_mixed(home):
    f = Faults(seed=11, block_burst=15, block_window=1.0, block_seconds=0.7, too_many=0.05, retry_after=0.1,
               server_error=0.1, slow=0.05, slow_seconds=0.1, truncated=0.05, corrupt_image=0.05,
               withdrawn=0.05, no_image=0.05, malformed_json=0.05, html_200=0.05)
    with Mirror(faults=f) as m:
        res = _harvest(m, home, limit=120, client=replace(FAST, rate=25))
        rows = _rows(res)
        assert sorted(r["source_id"] for r in rows) == sorted(m.met.ids[:120])
        assert_polite(m, "api", 25)
        assert_polite(m, "media", 25)
        st = Counter(r["status"] for r in rows)
        assert st["ok"] >= 70 and st["not_found"] >= 1 and st["failed"] >= 1, st
        assert all(r["error"] for r in rows if r["status"] in ("failed", "not_found"))
        # no record failed because of a block: blocks are waited out, not given up on
        assert not [r for r in rows if r["error"] and "blocked" in r["error"]]
        assert m.blocks >= 1


def test_403_block_window_survived_without_losing_records(home):
    with Mirror(faults=Faults(block_burst=5, block_window=1.0, block_seconds=1.5)) as m:
        res = _harvest(m, home, limit=30, client=replace(FAST, rate=20))
        rows = _rows(res)
        assert len(rows) == 30 and all(r["status"] in ("ok", "no_image") for r in rows)
        assert m.blocks >= 1
        assert m.logs["api"].count(403) >= 1


def test_image_variant_small_first_original_only_when_needed(home):
    with Mirror() as m:
        res = harvest(MetSource(api_base=m.met_api_base, image_size=300),
                      HarvestConfig("met", image=ImageConfig(size=300), client=FAST, limit=10, workers=1), home)
        rows = [r for r in _rows(res) if r["status"] == "ok"]
        assert rows and all("/web-large/" in r["image_url"] for r in rows if min(r["orig_width"], r["orig_height"]) >= 300)
        originals = m.logs["media"].count(200, "/CRDImages/") - len(rows)
        # only objects whose web-large image is too small (shorter side < 300) fetch the original
        small = [r for r in rows if "/original/" in r["image_url"]]
        assert originals == len(small)
        big = harvest(MetSource(api_base=m.met_api_base, image_size=1000),
                      HarvestConfig("met-big", image=ImageConfig(size=1000), client=FAST, limit=3, workers=1), home)
        assert all("/original/" in r["image_url"] for r in _rows(big) if r["status"] == "ok")


def test_selection_by_department_since_and_ids_from(home, tmp_path):
    with Mirror() as m:
        res = _harvest(m, home, limit=None, departments=["European Paintings"])
        rows = _rows(res)
        assert len(rows) == 80 and {r["department"] for r in rows} == {"European Paintings"}
        res = harvest(MetSource(api_base=m.met_api_base, since="2025-05-01", image_size=32),
                      HarvestConfig("met-since", image=IMG, client=FAST, metadata_only=True), home)
        since_ids = {r["source_id"] for r in _rows(res)}
        from artdata.mirror import MetData
        assert since_ids == {i for i in m.met.ids if MetData.metadata_date(i)[:10] >= "2025-05-01"}
        # the bulk CSV, filtered locally: only the chosen ids are asked of the API
        csv = tmp_path / "MetObjects.csv"
        bundled_met().to_csv(csv, index=False)
        before = len(_object_requests(m))
        res = harvest(MetSource(api_base=m.met_api_base, ids_from=str(csv), classifications=["Paintings"],
                                public_domain_only=True, image_size=32),
                      HarvestConfig("met-paint", image=IMG, client=FAST, metadata_only=True), home)
        rows = _rows(res)
        df = bundled_met()
        want = set(df[(df.Classification == "Paintings") & df["Is Public Domain"]]["Object ID"])
        assert {r["source_id"] for r in rows} == want
        assert len(_object_requests(m)) - before <= len(want)
        assert all(r["status"] == "pending" and r["classification"] == "Paintings" for r in rows)


def test_unknown_department_is_one_line_error(home):
    from artdata import ArtdataError
    with Mirror() as m, pytest.raises(ArtdataError, match="unknown Met department 'Nope'; known: "):
        _harvest(m, home, departments=["Nope"])


def test_retry_failed_retries_only_failed(home):
    with Mirror(faults=Faults(server_error=0.3, transient_attempts=50)) as m:
        client = replace(FAST, retries=1)
        first = _rows(_harvest(m, home, limit=30, client=client))
        failed = {r["source_id"] for r in first if r["status"] == "failed"}
        assert failed
        m.set_faults(Faults())
        n0 = _object_requests(m)
        res = harvest(MetSource(api_base=m.met_api_base, image_size=32),
                      HarvestConfig("met", image=IMG, client=client, limit=30, workers=1, retry_failed=True), home)
        n1 = _object_requests(m)
        asked_again = {i for i in n1 if n1[i] > n0.get(i, 0)}
        assert asked_again <= failed
        assert res.skipped == 30 - len(failed)
        assert len(_rows(res)) == 30


def test_rerun_is_a_no_op(home):
    with Mirror() as m:
        a = _harvest(m, home, limit=20)
        n = len(m.logs["api"].entries) + len(m.logs["media"].entries)
        b = _harvest(m, home, limit=20)
        assert a.manifest.version == b.manifest.version and b.skipped == 20
        assert len(m.logs["api"].entries) + len(m.logs["media"].entries) == n


def test_metadata_only_then_materialize(home):
    from artdata.datasets.materialize import materialize
    with Mirror() as m:
        res = harvest(MetSource(api_base=m.met_api_base, image_size=32),
                      HarvestConfig("meta", image=IMG, client=FAST, limit=25, metadata_only=True), home)
        rows = _rows(res)
        assert m.logs["media"].count() == 0
        assert {r["status"] for r in rows} <= {"pending", "no_image"}
        out = materialize(home, res.manifest.ref, client=TRUSTING, workers=1)
        assert out.manifest.version != res.manifest.version
        assert out.manifest.card["lineage"]["parents"] == [res.manifest.ref]
        new = out.manifest.table().to_pylist()
        assert all(r["status"] == "ok" for r in new if r["image_url"])
        assert verify(out.manifest, ImageStore(home.images)).ok


def test_images_materialize_could_not_fetch_stay_pending_and_the_next_run_fetches_them(home):
    """A materialize run that fetched some images: the new version has them ok and the others still pending, with
    why; materializing that version (the name's latest) once the host serves them fetches exactly those."""
    from artdata.datasets.materialize import materialize
    with Mirror() as m:
        res = harvest(MetSource(api_base=m.met_api_base, image_size=32),
                      HarvestConfig("meta", image=IMG, client=FAST, limit=25, metadata_only=True), home)
    wanted = [r for r in _rows(res) if r["status"] == "pending"]
    with Mirror(faults=Faults(corrupt_image=0.4, seed=3)) as bad:
        first = materialize(home, "meta", image_base=bad.media_base, client=FAST, workers=1)
    failed = first.counts["failed"]
    assert 0 < failed < len(wanted) and first.counts["fetched"] == len(wanted) - failed
    rows = first.manifest.table().to_pylist()
    left = [r for r in rows if r["status"] == "pending"]
    assert len(left) == failed and all(r["error"].startswith("materialize: ") and r["image_key"] is None
                                       for r in left)
    assert sum(r["status"] == "ok" for r in rows) == len(wanted) - failed
    with Mirror() as good:
        second = materialize(home, "meta", image_base=good.media_base, client=FAST, workers=1)
        assert second.source_ref == first.manifest.ref
        assert second.counts["fetched"] == failed and second.counts["present"] == len(wanted) - failed
        assert good.logs["media"].count() == failed
    final = second.manifest.table().to_pylist()
    assert all(r["status"] == "ok" for r in final if r["image_url"])
    assert second.manifest.card["lineage"]["parents"] == [first.manifest.ref]
    assert verify(second.manifest, ImageStore(home.images)).ok


def test_materialize_someone_elses_manifest_and_report_mismatch(home, tmp_path):
    import shutil
    from artdata.datasets.materialize import materialize
    from artdata.paths import Home
    with Mirror() as m:
        res = _harvest(m, home, limit=15)
        theirs = Home(tmp_path / "theirs")
        dest = theirs.manifests / "met" / res.manifest.version
        shutil.copytree(res.manifest.path, dest)
        assert not verify(load(theirs.manifests, "met"), ImageStore(theirs.images)).ok
        out = materialize(theirs, "met", client=TRUSTING, workers=1)
        ok = sum(1 for r in _rows(res) if r["status"] == "ok")
        assert out.counts["fetched"] == ok and not out.mismatches
        assert verify(load(theirs.manifests, "met"), ImageStore(theirs.images)).ok
        again = materialize(theirs, "met", client=TRUSTING, workers=1)
        assert again.counts["present"] == ok and again.counts["fetched"] == 0
    # the source now serves different bytes: reported, not written over
    with Mirror(image_noise=10) as m2:
        other = Home(tmp_path / "other")
        shutil.copytree(res.manifest.path, other.manifests / "met" / res.manifest.version)
        port = m2.media_base
        out = materialize(other, "met", image_base=port, client=FAST, workers=1)   # --image-base names the host
        assert len(out.mismatches) == ok and "differ" in out.mismatches[0]


def test_resume_after_sigkill(home, tmp_path):
    """Kill the CLI mid-run with SIGKILL, run the same command again: nothing lost, nothing twice."""
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.05)) as m:
        # past 30 objects the API holds its answers: the run is still going when the kill comes, however
        # loaded the machine (released for the second run)
        hold = m.hold("api", OBJECTS, after=30)
        cmd = [sys.executable, "-m", "artdata", "crawl", "met", "--api-base", m.met_api_base, "--limit", "80",
               "--rate", "30", "--concurrency", "4", "--image-size", "32", "--workers", "1",
               "--home", str(home.root)]
        journal, tree, env = sigkill_when_held(cmd, home, hold, 25)
        assert len(tree) >= 1, "the image workers were not found"
        done_before = {json.loads(l)["source_id"] for l in open(journal, "rb") if l.endswith(b"\n")}
        assert 25 <= len(done_before) <= 30
        asked_before = _object_requests(m)
        hold.release()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "resuming" in out.stderr
        asked_after = _object_requests(m)
        refetched = {i for i in done_before if asked_after[i] > asked_before[i]}
        assert not refetched
        man = load(home.manifests, "met")
        ids = man.table(columns=["source_id"]).column("source_id").to_pylist()
        assert len(ids) == 80 and len(set(ids)) == 80
        # in-flight ids at the kill may have been asked twice; nothing else
        twice = [i for i, n in asked_after.items() if n > 1]
        assert len(twice) <= 8
    # the killed run's image workers (and the process that forked them) noticed and went away
    assert still_running(tree) == []
    left = subprocess.run(["pgrep", "-f", "--", f"--home {home.root}"], capture_output=True, text=True).stdout.split()
    assert left == []



def test_ctrl_c_stops_cleanly_and_resumes(home):
    """SIGINT (Ctrl-C) mid-run: a one-line message, exit 130, the journal intact, the image
    processes gone; the same command then finishes without fetching anything twice."""
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.05)) as m:
        hold = m.hold("api", OBJECTS, after=20)      # the run cannot finish before the Ctrl-C
        cmd = [sys.executable, "-m", "artdata", "crawl", "met", "--api-base", m.met_api_base, "--limit", "60",
               "--rate", "30", "--concurrency", "4", "--image-size", "32", "--home", str(home.root)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            journal = journal_with(home, 15)
            hold.wait_held()
            tree = descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert "Interrupted" in out + err and "Traceback" not in err
        lines = open(journal, "rb").read().splitlines(keepends=True)
        assert lines and all(l.endswith(b"\n") for l in lines)
        done_before = {json.loads(l)["source_id"] for l in lines}
        assert still_running(tree) == []
        assert 15 <= len(done_before) <= 20
        asked_before = _object_requests(m)
        hold.release()
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        asked_after = _object_requests(m)
        assert not {i for i in done_before if asked_after[i] > asked_before[i]}
        ids = load(home.manifests, "met").table(columns=["source_id"]).column("source_id").to_pylist()
        assert len(ids) == 60 and len(set(ids)) == 60


def test_image_worker_crash_mid_run_fails_only_its_images(home):
    """An image process killed mid-harvest (as a crashing decoder would be): its images become
    failed records that say so, a replacement takes over, every id is still accounted for."""
    with Mirror(faults=Faults(slow=1.0, slow_seconds=0.03)) as m:
        hold = m.hold("api", OBJECTS, after=15)      # the run is still going when its worker is killed
        cmd = [sys.executable, "-m", "artdata", "crawl", "met", "--api-base", m.met_api_base, "--limit", "60",
               "--rate", "40", "--concurrency", "4", "--image-size", "32", "--workers", "1",
               "--home", str(home.root)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            journal_with(home, 10)
            hold.wait_held()
            # the image worker: the deepest process below the CLI (CLI -> forkserver -> worker)
            kids = descendants(proc.pid)
            workers = [p for p in kids if not descendants(p) and parent_pid(p) != proc.pid]
            assert len(workers) == 1, kids
            os.kill(workers[0], signal.SIGKILL)
            hold.release()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "an image process died 1 time(s) and was replaced" in " ".join((out + err).split())
    rows = load(home.manifests, "met").table(columns=["source_id", "status", "error"]).to_pylist()
    assert len(rows) == 60 and len({r["source_id"] for r in rows}) == 60
    died = [r for r in rows if r["error"] and "image worker died" in r["error"]]
    assert len(died) <= 2 and all(r["status"] == "failed" for r in died)
    assert sum(r["status"] == "ok" for r in rows) >= 40
