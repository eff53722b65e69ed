"""The harvest runner shared by every source: ids -> metadata -> image -> journal -> manifest.

A source (artdata.sources.*) says which ids to harvest and turns one id into a record plus the
image URLs to try. The runner fetches with the polite client, processes images in a process
pool into the store, and appends every finished record to a journal (one JSON line, flushed) so
that a killed run resumes where it stopped: ids already in the journal are not fetched again
(`retry_failed` re-runs the failed ones). At the end the journal becomes a versioned manifest.

One id may give several records: a job's `views` (the object's other photographs, `crawl met --all-images`), each
with its own image. They go to the journal before the object's own record, which lists them (VIEWS_KEY): a run
killed in between has no record of the object and does it again; the manifest holds each object's record
followed by the views its last run made.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from artdata import ArtdataError
from artdata.harvest.client import ClientConfig, FetchError, PoliteClient
from artdata.datasets.images import ImageConfig, ImageStore
from artdata.datasets.manifest import Manifest, write_manifest
from artdata.paths import Home
from artdata.harvest.workers import ImageWorkers
from artdata.datasets.records import STATUS_FAILED, STATUS_OK, STATUS_PENDING, new_record, now_utc, object_of, \
    to_table


@dataclass
class Job:
    """What a source made of one id: a record, and image URLs to try in order of preference."""
    record: dict
    image_urls: list[str] = field(default_factory=list)
    min_side: int | None = None   # if an image's shorter side is below this, try the next URL
    views: list["Job"] = field(default_factory=list)   # more records of the same object (its other images), each
    #                                                    fetched like this one; a view that fails fails alone


# the journal line of an object's own record lists the source_ids of the views its run wrote (before it);
# runner-only: to_table keeps the schema's columns, so it never reaches a manifest
VIEWS_KEY = "_views"


class Source(Protocol):
    name: str

    def selection(self) -> dict: ...

    async def ids(self, client: PoliteClient) -> list[str]: ...

    async def job(self, client: PoliteClient, source_id: str) -> Job: ...


@dataclass(frozen=True)
class HarvestConfig:
    manifest: str
    image: ImageConfig = ImageConfig()
    client: ClientConfig = ClientConfig()
    metadata_only: bool = False
    retry_failed: bool = False
    limit: int | None = None
    workers: int | None = None      # image processes (default: all cores)
    keep_statuses: tuple | None = None   # statuses kept in the manifest (None: all); others counted
    synthetic_images: str | None = None  # what made the images when not the museum (the demo: the mirror)

    def __post_init__(self):   # checked when the command starts: before any request or write
        from artdata.datasets.manifest import check_name
        check_name(self.manifest)
        if self.limit is not None and self.limit < 1:
            raise ArtdataError(f"--limit {self.limit}: at least 1")


class Journal:
    """Append-only JSON lines of finished records; a torn last line (killed mid-write) is cut off."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def load(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        if not self.path.is_file():
            return out
        good_end = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break
                out[rec["source_id"]] = rec
                good_end += len(line)
        if good_end != self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
        return out

    def append(self, rec: dict) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


# the fields of a source that hold what the user typed (an API base, a collection URL, a dump's URL): their hosts
# are the user's choice, so the client may go there even when they are loopback or private (the tests' mirror)
USER_URL_FIELDS = ("api_base", "iiif_url", "dump", "data", "table", "image_base", "urls", "base_url")


def user_hosts(source) -> tuple[str, ...]:
    """The hosts the user named for `source` (its `user_urls()`, or the URL-valued fields above)."""
    from artdata.harvest.client import trusted_host
    if hasattr(source, "user_urls"):
        urls = list(source.user_urls())
    else:
        urls = []
        for name in USER_URL_FIELDS:
            v = getattr(source, name, None)
            urls += [v] if isinstance(v, str) else [u for u in v if isinstance(u, str)] if isinstance(v, list) else []
    return tuple(sorted({h for h in (trusted_host(u) for u in urls if "://" in u) if h}))


def job_dir(home: Home, source: str, manifest: str, selection: dict, image: ImageConfig, metadata_only: bool) -> Path:
    key = json.dumps({"source": source, "selection": selection, "image": asdict(image),
                      "metadata_only": metadata_only}, sort_keys=True, default=str)
    return home.harvest / f"{manifest}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


@dataclass
class HarvestResult:
    manifest: Manifest | None
    counts: Counter
    job_dir: Path
    total: int
    skipped: int
    seconds: float
    client_stats: Any = None
    worker_crashes: int = 0         # image processes that died (and were replaced) during the run


class _Progress:
    """Minimal progress sink; the CLI passes a rich-backed one."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, status: str) -> None: ...

    def note(self, text: str) -> None: ...

    def stop(self) -> None: ...


async def fetch_image(client: PoliteClient, pool: ImageWorkers, job: Job) -> dict:
    """Try the job's image URLs in order; returns the image fields of the record."""
    best: dict | None = None
    last_error = "no image URL"
    for url in job.image_urls:
        try:
            resp = await client.get(url, max_bytes=pool.cfg.max_bytes)
        except FetchError as exc:
            last_error = str(exc)
            continue
        if resp.status_code != 200:
            last_error = f"HTTP {resp.status_code} for image {url}"
            continue
        res = await pool.process(resp.content)
        if res.status != STATUS_OK:
            last_error = f"{res.error} ({url})"
            continue
        fields = res.fields()
        fields["image_url"] = url
        best = fields
        if job.min_side and min(res.orig_width, res.orig_height) < job.min_side:
            continue   # too small: try a larger variant, keep this one if none is better
        break
    if best is not None:
        return best
    return {"status": STATUS_FAILED, "error": last_error}


async def _harvest(source: Source, cfg: HarvestConfig, home: Home, progress: _Progress) -> HarvestResult:
    t0 = time.monotonic()
    started = now_utc()
    jdir = job_dir(home, source.name, cfg.manifest, source.selection(), cfg.image, cfg.metadata_only)
    if not jdir.resolve().is_relative_to(home.harvest.resolve()):
        raise ArtdataError(f"job folder {jdir} would be outside {home.harvest}")
    # the folder is made once the selection is known (its input read, its ids listed): a wrong path, an
    # unreadable list or a selection that matches nothing leaves nothing behind
    journal = Journal(jdir / "journal.jsonl")
    done = journal.load()
    meta_path = jdir / "job.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"started_at": started.isoformat()}
    store = ImageStore(home.images)
    counts: Counter = Counter()
    client_cfg = replace(cfg.client, trusted_hosts=tuple(cfg.client.trusted_hosts) + user_hosts(source))
    async with PoliteClient(client_cfg) as client:
        client.on_pause = lambda host, s: progress.note(f"blocked by {host}: pausing {s:.0f}s")
        client.on_note = progress.note
        ids_path = jdir / "ids.json"
        if ids_path.is_file():      # a resumed run keeps the selection it started with
            ids = json.loads(ids_path.read_text())
        else:
            ids = await source.ids(client)
            if ids:
                jdir.mkdir(parents=True, exist_ok=True)
                tmp = ids_path.with_suffix(".part")
                tmp.write_text(json.dumps(ids))
                os.replace(tmp, ids_path)
                meta["selection"] = source.selection()
                meta_path.write_text(json.dumps(meta, indent=2, default=str))
        ids = list(dict.fromkeys(ids))     # an id listed twice is one object (one record, fetched once)
        if cfg.limit is not None:   # applied at run time: a larger --limit later extends the harvest
            ids = first_objects(ids, cfg.limit)

        def redo(i) -> bool:    # not done yet, a view lost, its line's list of views damaged or forged, or
            if i not in done:   # (retry_failed) the object or one of its views failed
                return True
            listed = listed_views(done[i])
            views = [done.get(v) for v in listed or ()]
            return listed is None or None in views or (cfg.retry_failed and any(
                r.get("status") == STATUS_FAILED for r in (done[i], *views)))
        todo = [i for i in ids if redo(i)]
        skipped = len(ids) - len(todo)
        pool = None if cfg.metadata_only or not todo else await ImageWorkers(store, cfg.image, cfg.workers).start()
        crashes = 0
        progress.start(len(ids), skipped)

        async def one(sid):
            rec, views = await _one(source, client, pool, sid, cfg)
            for v in views:             # the views first: a run killed before the object's line does it again
                journal.append(v)
                counts[v["status"]] += 1
            if views:
                rec[VIEWS_KEY] = [v["source_id"] for v in views]
            journal.append(rec)
            counts[rec["status"]] += 1
            progress.advance(rec["status"])

        try:
            await drain(todo, one, cfg.client.concurrency * 2)
        finally:
            journal.close()
            if pool:
                await pool.aclose()
                crashes = pool.crashes
            progress.stop()
        stats = client.stats
    records = journal.load()
    listed = set(ids)
    rows = []
    for i in ids:                   # each object's record, then the views its last run made
        if i in records:
            rows.append(records[i])
            rows += [records[v] for v in listed_views(records[i]) or () if v in records and v not in listed]
    manifest = None
    excluded = Counter()
    if cfg.keep_statuses is not None:
        excluded = Counter(r["status"] for r in rows if r["status"] not in cfg.keep_statuses)
        rows = [r for r in rows if r["status"] in cfg.keep_statuses]
    for r in rows:
        if isinstance(r.get("harvested_at"), str):
            r["harvested_at"] = datetime.fromisoformat(r["harvested_at"])
    lineage = {
        "source": source.name,
        "selection": source.selection(),
        "image": asdict(cfg.image),
        "metadata_only": cfg.metadata_only,
        "harvest_window": {"start": meta.get("started_at"), "end": now_utc().isoformat(timespec="seconds")},
        "limit": cfg.limit,
        "rate": cfg.client.rate,
        "parents": [],
    }
    if excluded:
        lineage["excluded"] = dict(excluded)
    if cfg.synthetic_images:            # the card says so, and the dataset report shows it
        lineage["synthetic_images"] = cfg.synthetic_images
    if rows:
        manifest = write_manifest(home.manifests, cfg.manifest, to_table(rows), lineage=lineage,
                                  description=f"{source.name} harvest ({len(rows)} records)")
    return HarvestResult(manifest, Counter(r["status"] for r in rows), jdir, len(ids), skipped,
                         time.monotonic() - t0, stats, crashes)


async def _one(source: Source, client: PoliteClient, pool: ImageWorkers | None, sid: str,
               cfg: HarvestConfig) -> tuple[dict, list[dict]]:
    """The object's record and its views' records, images fetched (each view's alone)."""
    try:
        job = await source.job(client, sid)
    except FetchError as exc:
        job = Job(_failed(source.name, sid, str(exc)))
    except ArtdataError as exc:
        job = Job(_failed(source.name, sid, str(exc)))
    except RecursionError:
        job = Job(_failed(source.name, sid, "malformed record: nested too deeply to read"))
    except Exception as exc:     # any malformed value of one record: that record fails, the harvest goes on
        job = Job(_failed(source.name, sid, f"malformed record ({type(exc).__name__}: {str(exc)[:300]})"))
    rec = await _with_image(client, pool, job, cfg)
    views = [await _with_image(client, pool, v, cfg) for v in job.views]
    return rec, [v for v in views if v["source_id"] != rec["source_id"]]


async def _with_image(client: PoliteClient, pool: ImageWorkers | None, job: Job, cfg: HarvestConfig) -> dict:
    rec = job.record
    if rec["status"] == STATUS_PENDING and not cfg.metadata_only:
        if job.image_urls:
            rec.update(await fetch_image(client, pool, job))
        else:
            rec.update(status=STATUS_FAILED, error="no image URL")
    rec["harvested_at"] = now_utc().isoformat()
    return rec


def listed_views(rec: dict) -> list[str] | None:
    """The views an object's journal line lists (VIEWS_KEY), or None when that is not a list a run writes:
    distinct view ids of this very object (a damaged or forged line; its object is done again)."""
    views = rec.get(VIEWS_KEY)
    if views is None:
        return []
    sid = rec.get("source_id")
    if not isinstance(views, list) or not all(isinstance(v, str) and v != sid and object_of(v) == sid
                                              for v in views) or len(set(views)) != len(views):
        return None
    return views


def first_objects(ids: list[str], n: int) -> list[str]:
    """The ids of the first `n` objects: a view listed among the ids (`crawl nga --all-views`) comes with its
    object and is not counted apart."""
    seen: set[str] = set()
    for k, i in enumerate(ids):
        o = object_of(i)
        if o not in seen:
            if len(seen) == n:
                return ids[:k]
            seen.add(o)
    return ids


async def drain(items, fn, workers: int) -> None:
    """Run `fn(item)` for every item with at most `workers` at once (items in order)."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker():
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await fn(item)
    await asyncio.gather(*(worker() for _ in range(max(1, min(workers, len(items))))))


def _failed(source: str, sid: str, error: str) -> dict:
    return new_record(source, sid, status=STATUS_FAILED, error=error)


def harvest(source: Source, cfg: HarvestConfig, home: Home, progress: _Progress | None = None) -> HarvestResult:
    return asyncio.run(_harvest(source, cfg, home, progress or _Progress()))


def decode_json(resp: httpx.Response, what: str) -> Any:
    """JSON from a 200 answer, or an ArtdataError naming the URL (HTML pages, cut-off bodies)."""
    url = str(resp.request.url)
    head = resp.content[:200].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html")) or "html" in resp.headers.get("content-type", ""):
        raise ArtdataError(f"{what}: HTML page instead of JSON (HTTP {resp.status_code}) from {url}")
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtdataError(f"{what}: malformed JSON from {url}: {exc}") from None


async def fetch_record(client: PoliteClient, url: str, what: str) -> dict | None:
    """The answer of a one-record JSON API (`{"data": {"id": ...}, ...}`, as the AIC and Cleveland APIs give);
    None when the API says 404; an ArtdataError naming the URL for any other answer."""
    resp = await client.get(url)
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise ArtdataError(f"HTTP {resp.status_code} from {url}")
    body = decode_json(resp, what)
    a = body.get("data") if isinstance(body, dict) else None
    if not isinstance(a, dict) or a.get("id") is None:
        raise ArtdataError(f"{what}: answer without data.id from {url}")
    return body


__all__ = ["Job", "Source", "HarvestConfig", "HarvestResult", "harvest", "fetch_image", "decode_json", "fetch_record",
           "drain", "Journal"]
