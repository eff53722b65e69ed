"""Materialize a manifest: fetch its images from their URLs into the local store and check them.

For someone who received a manifest without images (or who harvested `--metadata-only` and then
split): every record with an image URL is fetched unless its image is already in the store.
Records that were `ok` must reproduce their recorded checksums (`source_sha256` of the served
bytes, `image_key` of the stored JPEG): differences are reported as mismatches, never written
over. Records that were `pending` get their image fields, and a new manifest version (child of
the given one) is written. Progress is journalled, so an interrupted run resumes.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from artdata.harvest.runner import Job, Journal, drain, fetch_image
from artdata.harvest.client import ClientConfig, PoliteClient, trusted_host
from artdata.datasets.images import ImageConfig, ImageStore
from artdata.datasets.manifest import STANDARD_CARD_KEYS, Manifest, load, write_manifest
from artdata.paths import Home
from artdata.harvest.workers import ImageWorkers
from artdata.datasets.records import STATUS_OK, STATUS_PENDING, now_utc, to_table


@dataclass
class MaterializeResult:
    source_ref: str
    manifest: Manifest | None
    counts: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)


def rebase(url: str, base: str | None) -> str:
    if not base:
        return url
    p = urlsplit(url)
    return base.rstrip("/") + p.path + (f"?{p.query}" if p.query else "")


def materialize(home: Home, ref: str, *, image_base: str | None = None, image_size: int | None = None,
                client: ClientConfig = ClientConfig(), workers: int | None = None, progress=None) -> MaterializeResult:
    m = load(home.manifests, ref)
    return asyncio.run(_materialize(home, m, image_base, image_size, client, workers, progress))


async def _materialize(home, m: Manifest, image_base, image_size, client_cfg, workers, progress) -> MaterializeResult:
    store = ImageStore(home.images)
    img = dict((m.card.get("lineage") or {}).get("image") or {})
    if image_size:
        img["size"] = image_size
    # the card says how its images were made; the limits that protect this machine stay this machine's own
    cfg = ImageConfig(**{k: v for k, v in img.items()
                         if k in ImageConfig.__dataclass_fields__ and k not in ("max_pixels", "max_bytes")})
    if image_base:     # the host the user rewrote the URLs to is theirs to name, even a loopback one
        client_cfg = replace(client_cfg, trusted_hosts=(*client_cfg.trusted_hosts, trusted_host(image_base)))
    rows = m.table().to_pylist()
    res = MaterializeResult(m.ref, m)
    journal = Journal(home.harvest / f"materialize-{m.name}-{m.version}" / "journal.jsonl")
    done = journal.load()
    todo = []
    for r in rows:
        sid = f"{r['source']}:{r['source_id']}"
        if r["status"] == STATUS_OK and r.get("image_key") and store.check(r["image_key"]) is None:
            res.counts["present"] += 1
        elif r["status"] in (STATUS_OK, STATUS_PENDING) and r.get("image_url"):
            if sid in done and done[sid]["status"] == STATUS_OK:
                res.counts["present"] += 1
            else:
                todo.append(r)
    pool = await ImageWorkers(store, cfg, workers).start() if todo else None
    if progress:
        progress.start(len(todo) + res.counts["present"], res.counts["present"])
    async with PoliteClient(client_cfg) as client:
        async def one(r):
            sid = f"{r['source']}:{r['source_id']}"
            url = rebase(r["image_url"], image_base)
            got = await fetch_image(client, pool, Job(dict(r), [url]))
            status = got["status"]
            if status == STATUS_OK and r["status"] == STATUS_OK:
                if r.get("source_sha256") and got["source_sha256"] != r["source_sha256"]:
                    res.mismatches.append(f"{sid}: served bytes differ from the manifest's "
                                          f"(sha256 {got['source_sha256'][:12]} != {r['source_sha256'][:12]}) {url}")
                    status = "mismatch"
                elif got["image_key"] != r["image_key"]:
                    res.mismatches.append(f"{sid}: stored image differs (sha256 {got['image_key'][:12]} != "
                                          f"{r['image_key'][:12]}): another Pillow or settings? {url}")
                    status = "mismatch"
            entry = {"source_id": sid, "status": status, **{k: v for k, v in got.items() if k != "status"}}
            journal.append(entry)
            res.counts["fetched" if status == STATUS_OK else status] += 1
            if progress:
                progress.advance(status)

        try:
            await drain(todo, one, client_cfg.concurrency * 2)
        finally:
            journal.close()
            if pool:
                await pool.aclose()
            if progress:
                progress.stop()
    done = journal.load()
    fetched = [r for r in rows if r["status"] == STATUS_PENDING
               and done.get(f"{r['source']}:{r['source_id']}", {}).get("status") == STATUS_OK]
    if fetched:         # a new version holds the images fetched; one that could not be stays pending, with
        out = []        # its error, so that materializing the new version tries it again
        for r in rows:
            sid = f"{r['source']}:{r['source_id']}"
            if r["status"] == STATUS_PENDING and sid in done:
                upd = {k: v for k, v in done[sid].items() if k not in ("source_id",)}
                if upd["status"] == STATUS_OK:
                    r = {**r, **upd, "harvested_at": now_utc()}
                else:
                    r = {**r, "error": f"materialize: {upd.get('error') or upd['status']}"}
            out.append(r)
        lineage = dict(m.card.get("lineage") or {})
        lineage.update(parents=[m.ref], materialized_from=m.ref, image=cfg.__dict__, metadata_only=False)
        res.manifest = write_manifest(home.manifests, m.name, to_table(out), lineage=lineage,
                                      description=f"{m.card.get('description', '')} (images materialized)".strip(),
                                      extra={k: v for k, v in m.card.items() if k not in STANDARD_CARD_KEYS})
    return res
