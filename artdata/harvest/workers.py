"""Image processes fed straight from the harvest's event loop.

`ImagePool` (a ProcessPoolExecutor) moves every body through a pickling feeder thread and gets
results back through a manager thread; on a 2-core machine those two threads fight the event
loop for the GIL and cost about 0.5 ms of main-process CPU per 238 KB image. Here each worker
process has two pipes: bodies go down as length-prefixed frames written by the event loop's own
pipe transport (no thread, no pickling of the body), results come back as small pickled frames
read by a pipe protocol. A worker that dies (a crash in a decoder) fails only the images it held
— each becomes a `failed` record naming the cause — and is replaced.

    async with ImageWorkers(store, cfg) as workers:
        result = await workers.process(body)      # an ImageResult, pixels already in the store
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import struct

from artdata import ArtdataError
from artdata.datasets.images import ImageConfig, ImageResult, ImageStore, process_and_store

_HEAD = struct.Struct("!iQ")        # multiprocessing.Connection's length prefix, then the job id
_F_SETPIPE_SZ = 1031                # Linux: grow a pipe so one write carries a whole body


def _worker_main(inp, out, cfg: ImageConfig, root: str) -> None:
    """Images in, results out, until the harvest closes the pipe or dies (EOF either way)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the harvest's to handle
    while True:
        try:
            msg = inp.recv_bytes()
        except (EOFError, OSError):
            return                  # the harvest closed our pipe: done
        jid = int.from_bytes(msg[:8], "big")
        res = process_and_store(msg[8:], cfg, root)
        try:
            out.send_bytes(jid.to_bytes(8, "big") + pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return


def _context():
    """forkserver where there is one, else spawn: a worker inherits none of the harvest's sockets
    and pipes (forked, each worker would hold the other workers' pipe ends and every open
    connection), so it sees EOF on its pipe when the harvest closes it or is killed. As with any
    such start method, a script that harvests must keep its top level under `if __name__ == "__main__":`."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        ctx.set_forkserver_preload(["artdata.harvest.workers"])
    return ctx


class _Results(asyncio.Protocol):
    """Frames coming back from one worker."""

    def __init__(self, pool: "ImageWorkers", worker: "_Worker"):
        self.pool, self.worker = pool, worker
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 4:
            (n,) = struct.unpack_from("!i", buf)
            if len(buf) < 4 + n:
                break
            jid = int.from_bytes(buf[4:12], "big")
            res = pickle.loads(buf[12:4 + n])
            del buf[:4 + n]
            self.pool._finished(self.worker, jid, res)

    def connection_lost(self, exc) -> None:
        self.pool._lost(self.worker)


class _Worker:
    def __init__(self, proc, send: asyncio.WriteTransport, recv: asyncio.ReadTransport | None = None):
        self.proc, self.send, self.recv = proc, send, recv
        self.jobs: dict[int, asyncio.Future] = {}
        self.alive = True
        self.gone = asyncio.get_running_loop().create_future()    # its result pipe reached EOF


class ImageWorkers:
    """`workers` processes (default: all cores), each holding at most `depth` images at a time."""

    def __init__(self, store: ImageStore, cfg: ImageConfig, workers: int | None = None, depth: int = 2):
        self.store, self.cfg = store, cfg
        self.n = (os.cpu_count() or 1) if workers is None else workers
        if self.n < 1:
            raise ArtdataError(f"image workers must be at least 1, not {self.n}")
        self.depth = depth
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._slots: asyncio.Semaphore | None = None
        self._closing = False
        self._respawning: set[asyncio.Task] = set()
        self.crashes = 0

    async def start(self) -> "ImageWorkers":
        """Start the processes (from a forkserver: about 0.1 s the first time in a process)."""
        self._slots = asyncio.Semaphore(self.n * self.depth)
        for _ in range(self.n):
            self._workers.append(await self._spawn())
        return self

    async def _spawn(self) -> _Worker:
        loop = asyncio.get_running_loop()
        ctx = _context()
        down_r, down_w = ctx.Pipe(duplex=False)
        up_r, up_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(down_r, up_w, self.cfg, str(self.store.root)),
                           daemon=True, name="artdata-image")
        proc.start()
        down_r.close()
        up_w.close()
        try:
            import fcntl
            fcntl.fcntl(down_w.fileno(), _F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass                    # a smaller pipe only means more, smaller writes
        wfile = os.fdopen(os.dup(down_w.fileno()), "wb", buffering=0)
        rfile = os.fdopen(os.dup(up_r.fileno()), "rb", buffering=0)
        down_w.close()
        up_r.close()
        send, _ = await loop.connect_write_pipe(asyncio.Protocol, wfile)
        worker = _Worker(proc, send)
        worker.recv, _ = await loop.connect_read_pipe(lambda: _Results(self, worker), rfile)
        return worker

    async def process(self, data: bytes) -> ImageResult:
        """Decode, resize, re-encode and store one image in a worker; never raises for bad bytes."""
        if self._slots is None:
            raise RuntimeError("ImageWorkers.start() was not awaited")
        async with self._slots:
            live = [w for w in self._workers if w.alive]
            while not live and self._respawning:      # a crashed worker's replacement is starting
                await asyncio.wait(set(self._respawning))
                live = [w for w in self._workers if w.alive]
            if not live:
                raise ArtdataError("no image worker is running (they kept crashing)")
            worker = min(live, key=lambda w: len(w.jobs))
            self._next_id += 1
            jid = self._next_id
            fut = asyncio.get_running_loop().create_future()
            worker.jobs[jid] = fut
            worker.send.write(_HEAD.pack(8 + len(data), jid))
            worker.send.write(data)
            try:
                return await fut
            finally:
                worker.jobs.pop(jid, None)

    def _finished(self, worker: _Worker, jid: int, res: ImageResult) -> None:
        fut = worker.jobs.pop(jid, None)
        if fut is not None and not fut.done():
            fut.set_result(res)

    def _lost(self, worker: _Worker) -> None:
        if not worker.gone.done():
            worker.gone.set_result(None)
        if not worker.alive:
            return
        worker.alive = False
        worker.send.close()
        if self._closing:
            return
        self.crashes += 1
        worker.proc.join(1)
        why = f"image worker died (exit code {worker.proc.exitcode}) while processing this image"
        for fut in worker.jobs.values():
            if not fut.done():
                fut.set_result(ImageResult("failed", why))
        worker.jobs.clear()
        self._workers.remove(worker)
        if self.crashes <= 10 * self.n:
            task = asyncio.ensure_future(self._spawn())
            self._respawning.add(task)

            def started(t: asyncio.Task) -> None:
                self._respawning.discard(t)
                if not t.cancelled() and t.exception() is None:
                    self._workers.append(t.result())
            task.add_done_callback(started)

    async def aclose(self) -> None:
        """Let the workers finish what they hold, then reap them."""
        self._closing = True
        if self._respawning:
            await asyncio.wait(set(self._respawning))
        for w in self._workers:
            w.send.close()          # EOF: the worker returns after its current image
        if self._workers:
            await asyncio.wait([w.gone for w in self._workers], timeout=5)
        for w in self._workers:
            if w.proc.is_alive() and not w.gone.done():
                w.proc.terminate()
            w.proc.join(5)
            if w.recv is not None:
                w.recv.close()
            for fut in w.jobs.values():
                if not fut.done():
                    fut.cancel()
        self._workers.clear()

    async def __aenter__(self) -> "ImageWorkers":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
