"""Bombs in local dumps: the crawl commands meet a small archive whose member inflates to 1 GiB.

    PYTHONPATH=. python bench/hostile_dumps.py --out bench/out/hostile      # writes the files, then times each crawl

Writes (streamed, never held whole) `aic-bomb.tar.gz` (one artworks/1.json member of 1 GiB, ~1 MB on disk),
`nga-bomb/objects.zip` (one objects.csv of 1 GiB of rows, ~2 MB) beside a real published_images.csv, and
`bomb.jsonl` (one 1 GiB line of JSON lines); then runs `artdata crawl ...` on each under /usr/bin/time -v and prints
its exit code, its one-line error, the seconds and the peak RSS.
"""
from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30


class Filler(io.RawIOBase):
    def __init__(self, n: int, chunk: bytes = b"a"):
        self.left, self.chunk = n, chunk

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = (self.chunk * (k // len(self.chunk) + 1))[:k]
        self.left -= k
        return k


def write_files(out: Path, size: int) -> dict[str, list[str]]:
    out.mkdir(parents=True, exist_ok=True)
    aic = out / "aic-bomb.tar.gz"
    if not aic.exists():
        with tarfile.open(aic, "w:gz") as tar:
            info = tarfile.TarInfo("artworks/1.json")
            info.size = size
            tar.addfile(info, Filler(size))
    nga = out / "nga-bomb"
    if not (nga / "objects.zip").exists():
        nga.mkdir(exist_ok=True)
        row = b"1,Untitled,1850,1850,1850,Oil on canvas,Painting\n"
        with zipfile.ZipFile(nga / "objects.zip", "w", zipfile.ZIP_DEFLATED) as z, z.open("objects.csv", "w",
                                                                                          force_zip64=True) as fh:
            fh.write(b"objectid,title,displaydate,beginyear,endyear,medium,classification\n")
            left = size
            block = row * (2**20 // len(row))
            while left > 0:
                fh.write(block[:left])
                left -= len(block)
        (nga / "published_images.csv").write_text("uuid,iiifurl,viewtype,maxpixels,depictstmsobjectid\n"
                                                  "u,https://api.nga.gov/iiif/u,primary,,1\n")
    cma = out / "bomb.jsonl"
    if not cma.exists():
        with open(cma, "wb") as fh:
            fh.write(b'{"id": 1, "title": "')
            src = Filler(size)
            while chunk := src.read(2**24):
                fh.write(chunk)
    home = str(out / "home")
    return {f"crawl aic --dump {aic.name}": ["crawl", "aic", "--dump", str(aic), "--home", home],
            f"crawl nga {nga.name}/ (objects.zip)": ["crawl", "nga", str(nga), "--home", home],
            f"crawl aic --dump {cma.name} (JSON lines)": ["crawl", "aic", "--dump", str(cma), "--home", home]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hostile")
    ap.add_argument("--size", type=int, default=GIB, help="decompressed bytes of each bomb [1 GiB]")
    args = ap.parse_args()
    t = time.perf_counter()
    cases = write_files(args.out, args.size)
    print(f"files written in {time.perf_counter() - t:.1f}s:",
          ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(args.out.rglob("*"))
                    if p.is_file() and "bomb" in str(p)))
    for label, argv in cases.items():
        r = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "artdata", *argv], capture_output=True,
                           text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) // 1024
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr).group(1)
        err = next((l for l in r.stderr.splitlines() if l.startswith("Error:")), "")
        print(f"| {label} | exit {r.returncode} | {wall} | {rss} MB | {err} |")


if __name__ == "__main__":
    main()
