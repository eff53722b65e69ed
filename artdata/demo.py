"""`artdata demo`: the whole pipeline offline, on the bundled CC0 sample and the loopback mirror.

Each stage that exists runs in turn and prints where its output went; it all stays in `out`.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from artdata.console import console
from artdata.harvest.runner import HarvestConfig, harvest
from artdata.harvest.client import ClientConfig
from artdata.datasets.images import ImageConfig
from artdata.mirror import Faults, Mirror
from artdata.paths import Home


def _stage(title: str):
    console.rule(f"[bold]{title}")


def run_demo(out: Path, *, met_objects: int = 400, tate_works: int = 300, quick: bool = False) -> dict:
    t0 = time.monotonic()
    out = Path(out).resolve()
    home = Home(out / "home")
    if home.root.exists():        # a demo always starts from scratch
        shutil.rmtree(home.root)
    results: dict = {}
    client = ClientConfig(rate=200, concurrency=16, block_pause=1.0, backoff=0.05, backoff_max=0.5)
    image = ImageConfig(size=64 if quick else 128)
    with Mirror(faults=Faults.demo()) as mirror:
        console.print(f"mirror: Met API {mirror.met_api_base}, images {mirror.media_base}")
        _stage("1. harvest the Met (mirror, with injected faults)")
        from artdata.sources.met import MetSource
        met = harvest(MetSource(api_base=mirror.met_api_base, image_size=image.size),
                      HarvestConfig("demo-met", image=image, client=client, limit=met_objects), home)
        console.print(f"  {sum(met.counts.values())} records: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(met.counts.items())))
        console.print(f"  manifest {met.manifest.ref} -> {met.manifest.path}")
        results["met"] = met.manifest

        _stage("2. harvest Tate thumbnails (mirror)")
        from artdata.sources.tate import TateSource
        tate = harvest(TateSource(table=mirror.tate_table_url, has_thumbnail=True, image_size=image.size),
                       HarvestConfig("demo-tate", image=image, client=client, limit=tate_works), home)
        console.print(f"  {sum(tate.counts.values())} records: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(tate.counts.items())))
        console.print(f"  manifest {tate.manifest.ref} -> {tate.manifest.path}")
        results["tate"] = tate.manifest

        _stage("3. crawl findartinfo auction lots (Scrapy, mirror)")
        import subprocess
        import sys
        from artdata.mirror.findartinfo import attach
        attach(mirror)
        r = subprocess.run([sys.executable, "-m", "artdata", "crawl", "findartinfo", "--base-url", mirror.base("api"),
                            "--letters", "A" if quick else "A,B,C", "--delay", "0", "--concurrency", "8",
                            "--image-size", str(image.size), "--name", "demo-lots", "--home", str(home.root)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            from artdata import ArtdataError
            raise ArtdataError(f"findartinfo crawl failed: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
        from artdata.datasets.manifest import load
        lots = load(home.manifests, "demo-lots")
        results["lots"] = lots
        console.print(f"  {lots.rows} lots: " + ", ".join(f"{k} {v}" for k, v in lots.card["counts"]["by_status"].items())
                      + f"; dropped {lots.card['lineage'].get('dropped', {})}")
        console.print(f"  manifest {lots.ref} -> {lots.path}")

        _stage("4. verify the manifests against the image store")
        from artdata.datasets.images import ImageStore
        from artdata.datasets.manifest import verify
        for m in (met.manifest, tate.manifest, lots):
            rep = verify(m, ImageStore(home.images))
            console.print(f"  {m.ref}: {'OK' if rep.ok else 'PROBLEMS'} ({rep.checked_images} images)")

        _stage("5. harvest paintings from other museums (AIC, Cleveland, NGA, a IIIF collection; mirror)")
        results["museums"] = _other_museums(mirror, home, image, client, 24 if quick else 60)

    for hook in _later_stages():
        hook(home, results, quick=quick)

    console.rule("[bold]done")
    console.print(f"everything is under {out} ({time.monotonic() - t0:.0f}s)")
    console.print(f"  manifests: {home.manifests}\n  images:    {home.images}")
    for key, value in results.items():
        if isinstance(value, Path):
            console.print(f"  {key}: {value}")
    return results


def _other_museums(mirror: Mirror, home: Home, image: ImageConfig, client: ClientConfig, n: int) -> list:
    """Paintings from four more museums' APIs and files, each into its own manifest (merged in the split stage)."""
    from dataclasses import replace
    from artdata.sources.aic import AicSource
    from artdata.sources.cleveland import ClevelandSource
    from artdata.sources.iiif import IiifSource
    from artdata.sources.nga import NgaSource
    api = mirror.base("api")
    sources = [("demo-aic", AicSource(api_base=f"{api}/aic/api/v1", classifications=["painting"],
                                      departments=["European Paintings"], image_size=image.size),
                (("AIC-User-Agent", "artdata demo"),)),
               ("demo-cleveland", ClevelandSource(api_base=f"{api}/cma/api", types=["Painting"],
                                                  departments=["European Paintings"], image_size=image.size), ()),
               ("demo-nga", NgaSource(data=f"{api}/nga/data", classifications=["Painting"], image_size=image.size), ()),
               ("demo-iiif", IiifSource([f"{api}/iiif/3/collection/european-paintings.json"], image_size=image.size),
                ())]
    out = []
    for name, src, headers in sources:
        res = harvest(src, HarvestConfig(name, image=image, client=replace(client, headers=headers), limit=n), home)
        console.print(f"  {src.name:9} {sum(res.counts.values())} records: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(res.counts.items())) + f" -> {res.manifest.path}")
        out.append(res.manifest)
    return out


def _later_stages():
    """Stages added by later parts of the pipeline (split, train, report), when present."""
    stages = []
    try:
        from artdata.splits.recipes import demo_stage as split_stage
        stages.append(split_stage)
    except ImportError:
        pass
    try:
        from artdata.train.demo import demo_stage as train_stage
        stages.append(train_stage)
    except ImportError:
        pass
    try:
        from artdata.reports.report import demo_stage as report_stage
        stages.append(report_stage)
    except ImportError:
        pass
    return stages
