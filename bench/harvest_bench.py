"""Harvest throughput: artdata vs img2dataset on the same 5,000 URLs, and the machine's ceiling.

    python bench/harvest_bench.py --images 5000 --img2dataset /tmp/i2d/bin/img2dataset

1. Renders N distinct 1024x768 JPEGs (~250 KB each, the mirror's renderer) into bench/out/src/.
2. Serves them from the loopback mirror (faults and rate limits off) at /bench/<n>.jpg.
3. Runs `artdata crawl urls` (256 px shorter side, JPEG q90, all cores) and img2dataset
   (`--resize_mode keep_ratio --image_size 256 --encode_quality 90 --output_format files`,
   2 processes) on the same URL list, each in its own process tree, measuring wall time and the
   peak summed RSS of the tree (sampled every 0.1 s from /proc).
4. The ceiling: decode + resize + encode of the same files on all cores, no network
   (`artdata.datasets.images.process_image` in a process pool), measured before and after every artdata
   run; each run's ratio is taken against the higher of its two neighbouring ceilings.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

from artdata.datasets.images import ImageConfig, process_image
from artdata.mirror import Mirror, Response, render_jpeg

OUT = Path(__file__).resolve().parent / "out"
LABELS = ["Dutch", "French", "Italian", "Chinese", "Japanese"]


def _render(i: int) -> None:
    p = OUT / "src" / f"{i:05d}.jpg"
    if not p.exists():
        tmp = p.with_suffix(".part")
        tmp.write_bytes(render_jpeg(f"bench-{i}", LABELS[i % 5], (1024, 768), "", 88, 18))
        os.replace(tmp, p)


def _children(pid: int) -> list[int] | None:
    """Direct children from /proc/<pid>/task/*/children (Linux); None where that file is missing."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as fh:
                out += [int(c) for c in fh.read().split()]
        except FileNotFoundError:
            return None
        except OSError:
            continue
    return out


def _all_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                continue
    return children


def tree_rss(pid: int) -> int:
    """Summed RSS (bytes) of pid and all its descendants. Walks the tree through each process's
    `children` file (a few reads) rather than scanning all of /proc, so that sampling every 0.1 s
    costs the measured tools next to nothing."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = None
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        kids = _children(p)
        if kids is None:
            table = table if table is not None else _all_children()
            kids = table.get(p, [])
        todo += kids
    return total


def measured(cmd: list[str], cwd=None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.1)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate(timeout=3600)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, peak[0], out


def _ceiling_one(path: str) -> bool:
    return process_image(Path(path).read_bytes(), ImageConfig(size=256, quality=90)).status == "ok"


def ceiling(files: list[Path]) -> float:
    """Images per second of decode + resize + encode of the files on all cores, no network."""
    t0 = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        ok = sum(pool.map(_ceiling_one, [str(f) for f in files], chunksize=20))
    return ok / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--img2dataset", default="/tmp/i2d/bin/img2dataset")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="artdata runs, each between two ceiling runs")
    ap.add_argument("--fingerprint-ab", type=int, default=0, metavar="PAIRS",
                    help="instead: PAIRS pairs of artdata runs with and without the fingerprint (#22)")
    a = ap.parse_args()
    (OUT / "src").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        pool.map(_render, range(a.images), chunksize=50)
    files = [OUT / "src" / f"{i:05d}.jpg" for i in range(a.images)]
    size = sum(f.stat().st_size for f in files)
    print(f"{a.images} source images, mean {size / a.images / 1e3:.0f} KB (ready in {time.perf_counter() - t0:.0f}s)")

    results = {"images": a.images, "mean_source_kb": size / a.images / 1e3, "cores": os.cpu_count(), "rounds": []}
    src = str(OUT / "src")

    def serve(m, path, q):
        try:
            with open(os.path.join(src, os.path.basename(path)), "rb") as fh:
                return Response(200, fh.read(), "image/jpeg")
        except OSError:
            return Response(404, b"", "text/plain")

    # Rounds of ceiling, artdata, ceiling, ...: each artdata run is set against the higher of the
    # ceilings measured just before and just after it (this VM's speed drifts by 10-20% over minutes,
    # and the host's steal time is recorded for each run); img2dataset runs once, after round 1.
    with Mirror() as m:
        m.add_route("media", "/bench/", serve)
        urls = OUT / "urls.txt"
        urls.write_text("".join(f"{m.media_base}/bench/{i:05d}.jpg\n" for i in range(a.images)))
        if a.fingerprint_ab:
            return fingerprint_ab(a, urls)
        before = ceiling(files)
        print(f"ceiling (decode+resize+encode, {os.cpu_count()} processes): {before:.0f} images/s")
        for r in range(a.rounds):
            home = OUT / "artdata-home"
            shutil.rmtree(home, ignore_errors=True)
            st = _steal()
            wall, rss, out = measured([sys.executable, "-m", "artdata", "crawl", "urls", str(urls), "--image-size",
                                       "256", "--rate", "100000", "--concurrency", str(a.concurrency),
                                       "--home", str(home)])
            steal = _steal() - st
            ok = sum(1 for _ in (home / "images").rglob("*.jpg"))
            after = ceiling(files)
            run = {"wall_s": wall, "peak_rss_mb": rss / 2**20, "ok": ok, "images_per_s": ok / wall,
                   "steal_s": steal, "ceilings": [before, after], "vs_ceiling": ok / wall / max(before, after)}
            results["rounds"].append(run)
            print(f"artdata:     {ok} images in {wall:.1f}s = {ok / wall:.0f} images/s, peak RSS {rss / 2**20:.0f} MB, "
                  f"host steal {steal:.1f}s; ceiling after {after:.0f}: {run['vs_ceiling']:.2f} of the higher ceiling")
            before = after
            if r == 0 and Path(a.img2dataset).exists():
                dest = OUT / "img2dataset-out"
                shutil.rmtree(dest, ignore_errors=True)
                wall, rss, out = measured([a.img2dataset, "--url_list", str(urls), "--input_format", "txt",
                                           "--output_folder", str(dest), "--output_format", "files",
                                           "--image_size", "256", "--resize_mode", "keep_ratio", "--encode_quality",
                                           "90", "--processes_count", str(os.cpu_count()), "--thread_count",
                                           str(a.concurrency), "--timeout", "30", "--retries", "0",
                                           "--enable_wandb", "False"])
                ok = sum(1 for _ in dest.rglob("*.jpg"))
                results["img2dataset"] = {"wall_s": wall, "peak_rss_mb": rss / 2**20, "ok": ok, "images_per_s": ok / wall}
                print(f"img2dataset: {ok} images in {wall:.1f}s = {ok / wall:.0f} images/s, peak RSS {rss / 2**20:.0f} MB")
                before = ceiling(files)
    rounds = results["rounds"]
    ratios = sorted(x["vs_ceiling"] for x in rounds)
    rates = sorted(x["images_per_s"] for x in rounds)
    results["artdata"] = {"images_per_s_median": statistics.median(rates),
                          "peak_rss_mb_max": max(x["peak_rss_mb"] for x in rounds),
                          "vs_ceiling_median": statistics.median(ratios), "vs_ceiling_min": ratios[0]}
    print(f"artdata / ceiling over {len(rounds)} rounds: median {statistics.median(ratios):.2f}, "
          f"lowest {ratios[0]:.2f}, highest {ratios[-1]:.2f}")
    if "img2dataset" in results:
        first = rounds[0]
        print(f"artdata / img2dataset (round 1): {first['images_per_s'] / results['img2dataset']['images_per_s']:.2f}x "
              f"images/s, RSS {first['peak_rss_mb'] / results['img2dataset']['peak_rss_mb']:.2f}x")
    (OUT / "harvest_bench.json").write_text(json.dumps(results, indent=2))


def artdata_cmd(fingerprint: bool) -> list[str]:
    """`python -m artdata`, or the same with bench/_no_fingerprint.py imported in the harvest's process and its
    forkserver (the image workers are forked from it)."""
    if fingerprint:
        return [sys.executable, "-m", "artdata"]
    here = str(Path(__file__).resolve().parent)
    # artdata sets its own preload list (artdata.harvest.workers): the switch is added to whatever it sets
    # (the forkserver finds the switch through PYTHONPATH: it does not take the parent's sys.path)
    return [sys.executable, "-c", f"import os, sys, runpy, multiprocessing.forkserver as fs; sys.path.insert(0, {here!r}); "
            f"os.environ['PYTHONPATH'] = os.pathsep.join([{here!r}] + sys.path[1:]); "
            "keep = fs.set_forkserver_preload; "
            "fs.set_forkserver_preload = lambda names: keep(list(names) + ['_no_fingerprint']); "
            "import _no_fingerprint; sys.argv[0] = 'artdata'; runpy.run_module('artdata', run_name='__main__')"]


def fingerprint_ab(a, urls: Path) -> None:
    """PAIRS pairs of the same harvest with and without the fingerprint, the order swapped every pair (this VM
    drifts over minutes): the median of the pairs' images/s ratios is the fingerprint's cost in a harvest."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    drops = []
    for pair in range(a.fingerprint_ab):
        got = {}
        for fp in ((True, False) if pair % 2 == 0 else (False, True)):
            home = OUT / "artdata-home"
            shutil.rmtree(home, ignore_errors=True)
            wall, rss, out = measured(artdata_cmd(fp) + ["crawl", "urls", str(urls), "--image-size", "256",
                                                         "--rate", "100000", "--concurrency", str(a.concurrency),
                                                         "--home", str(home)])
            ok = sum(1 for _ in (home / "images").rglob("*.jpg"))
            import pyarrow.parquet as pq
            made = pq.read_table(next((home / "manifests").rglob("records-*.parquet")), columns=["fingerprint"])
            have = made.column("fingerprint").null_count < made.num_rows
            if have != fp:
                raise SystemExit(f"run {'with' if fp else 'without'} the fingerprint: fingerprints "
                                 f"{'missing' if fp else 'made'} (the switch did not reach the image workers)")
            got[fp] = ok / wall
            rates[fp].append(ok / wall)
            print(f"pair {pair + 1}, {'with   ' if fp else 'without'} the fingerprint: {ok} images in {wall:.1f}s = "
                  f"{ok / wall:.0f} images/s, peak RSS {rss / 2**20:.0f} MB")
        drops.append(1 - got[True] / got[False])
    print(f"images/s with the fingerprint: median {statistics.median(rates[True]):.0f}, without: "
          f"{statistics.median(rates[False]):.0f}; drop per pair: {', '.join(f'{100 * d:.1f} %' for d in drops)}; "
          f"median {100 * statistics.median(drops):.1f} %")


def _steal() -> float:
    """Seconds of CPU the hypervisor gave to others (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            return int(fh.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


if __name__ == "__main__":
    main()
