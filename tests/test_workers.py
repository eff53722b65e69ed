"""artdata.harvest.workers.ImageWorkers: image processes fed from the event loop through pipes."""
from __future__ import annotations

import asyncio
import os
import signal

from artdata.datasets.images import ImageConfig, ImageStore, process_image
from artdata.harvest.workers import ImageWorkers
from conftest import alive, jpeg_bytes


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_results_match_process_image_and_land_in_the_store(tmp_path):
    store = ImageStore(tmp_path / "s")
    cfg = ImageConfig(size=64)
    bodies = [jpeg_bytes(200 + i, 150, color=(i * 20, 0, 0)) for i in range(12)] + [b"<html>blocked</html>", b""]

    async def main():
        async with ImageWorkers(store, cfg, workers=2) as w:
            return await asyncio.gather(*(w.process(b) for b in bodies))
    results = run(main())
    assert [r.status for r in results] == ["ok"] * 12 + ["failed", "failed"]
    assert results[-2].error == "HTML instead of an image" and "empty" in results[-1].error
    for body, r in zip(bodies[:12], results):
        want = process_image(body, cfg)
        assert (r.key, r.source_sha256, r.width, r.height) == (want.key, want.source_sha256, want.width, want.height)
        assert r.data is None and store.check(r.key) is None


def test_a_worker_that_dies_fails_only_its_images_and_is_replaced(tmp_path):
    store = ImageStore(tmp_path / "s")

    async def main():
        async with ImageWorkers(store, ImageConfig(size=32), workers=1) as w:
            first = await w.process(jpeg_bytes(100, 80))
            victim = w._workers[0].proc
            os.kill(victim.pid, signal.SIGKILL)
            lost = await w.process(jpeg_bytes(101, 80))       # sent to the dead worker
            after = await w.process(jpeg_bytes(102, 80))      # waits for the replacement
            assert w._workers[0].proc is not victim
            return first, lost, after, w.crashes
    first, lost, after, crashes = run(main())
    assert first.status == "ok" and after.status == "ok"
    assert lost.status == "failed" and "image worker died" in lost.error
    assert crashes == 1


def test_close_reaps_every_worker(tmp_path):
    async def main():
        w = await ImageWorkers(ImageStore(tmp_path / "s"), ImageConfig(size=32), workers=2).start()
        pids = [x.proc.pid for x in w._workers]
        assert all(alive(p) for p in pids)
        await w.process(jpeg_bytes(64, 64))
        await w.aclose()
        return pids
    pids = run(main())
    assert not any(alive(p) for p in pids)
