"""`artdata manifests ...`: list, push, pull, show, diff, verify, materialize and export versioned manifests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from artdata import ArtdataError
from artdata.cli.options import (ConcurrencyOpt, HomeOpt, PLAIN, RateOpt, WorkersOpt, client_cfg, limit_options,
                                 resolve_home)


manifests_app = typer.Typer(**PLAIN, help="List, inspect, compare, check and materialize versioned manifests.",
                            no_args_is_help=True)


@manifests_app.command("list")
def manifests_list(source: Optional[str] = typer.Argument(None, help="A remote store (s3://bucket/prefix, https://..., "
                                                                    "a folder) to list instead of the home."),
                   home: Optional[Path] = HomeOpt):
    """Every manifest version in the home folder (or in a remote store), newest last."""
    from artdata.datasets.manifest import list_manifests
    if source:
        from artdata.datasets.remote import remote_versions
        versions = remote_versions(source)
        if not versions:
            typer.echo(f"no manifests in {source}")
        for v in versions:
            typer.echo(f"{v['name'] + '@' + v['version']:32} {v.get('created_at') or '':26} rows {v.get('rows', 0):>7}"
                       + ("  with images" if v.get("images") else ""))
        return
    h = resolve_home(home)
    ms = list_manifests(h.manifests)
    if not ms:
        typer.echo(f"no manifests in {h.manifests}")
        return
    for m in ms:
        c = m.card["counts"]
        typer.echo(f"{m.ref:32} {m.card['created_at']:26} rows {c['rows']:>7}  "
                   + " ".join(f"{k}:{v}" for k, v in c.get("by_status", {}).items()))


@manifests_app.command("push")
def manifests_push(ref: str = typer.Argument(..., help="NAME[@VERSION] in the home."),
                   dest: str = typer.Argument(..., help="Folder URL: s3://bucket/prefix, file:///path, a plain path "
                                                        "(any fsspec URL whose package is installed)."),
                   with_images: bool = typer.Option(False, "--with-images",
                                                    help="Also upload the images (content-addressed; those "
                                                         "there already are skipped)."),
                   home: Optional[Path] = HomeOpt):
    """Publish a manifest version to a remote store (resumable; versions there are immutable)."""
    from artdata.console import HarvestProgress, console
    from artdata.datasets.remote import push
    res = push(resolve_home(home), ref, dest, with_images, HarvestProgress("push images") if with_images else None)
    console.print(f"push {res.ref} -> {dest}: {len(res.uploaded)} file(s) uploaded, {res.skipped} already there"
                  + (f"; images {res.images_uploaded} uploaded, {res.images_present} already there"
                     + (f", {res.images_missing_locally} not in the local store" if res.images_missing_locally else "")
                     if with_images else ""))


@manifests_app.command("pull")
def manifests_pull(source: str = typer.Argument(..., help="SOURCE[/NAME[@VERSION]]: a store that `push` wrote "
                                                          "(s3://..., https://..., a folder)."),
                   with_images: bool = typer.Option(False, "--with-images",
                                                    help="Also fetch the images: from the store when they were "
                                                         "pushed, else from their original URLs."),
                   home: Optional[Path] = HomeOpt):
    """Download a manifest version into the home, every file checked against its card (resumable)."""
    from artdata.console import HarvestProgress, console
    from artdata.datasets.remote import pull
    res = pull(resolve_home(home), source, with_images, HarvestProgress("pull images") if with_images else None,
               say=lambda line: console.print(line, style="dim", markup=False, highlight=False))
    what = "already here" if res.already else f"{len(res.downloaded)} file(s) downloaded and checked"
    console.print(f"pull {res.ref}: {what}"
                  + (f"; images {res.images_fetched} from the store, {res.images_from_urls} from their URLs, "
                     f"{res.images_present} already here" if with_images else ""))
    typer.echo(f"manifest {res.ref} -> {res.path}")
    if res.image_mismatches:
        raise ArtdataError(f"{len(res.image_mismatches)} image(s) did not match their checksum: "
                           f"{', '.join(str(x)[:70] for x in res.image_mismatches[:3])}")
    if res.images_missing:
        raise ArtdataError(f"{len(res.images_missing)} of {res.images_wanted} image(s) of {res.ref} could not be "
                           f"fetched (first: {res.images_missing[0]}); the records are pulled, the images are not")


@manifests_app.command("show")
def manifests_show(ref: str = typer.Argument(..., help="NAME[@VERSION] or a manifest folder."),
                   as_json: bool = typer.Option(False, "--json", help="Print the whole card as JSON."),
                   home: Optional[Path] = HomeOpt):
    """A manifest's card: lineage, counts, files."""
    from artdata.datasets.manifest import load
    m = load(resolve_home(home).manifests, ref)
    if as_json:
        typer.echo(json.dumps(m.card, indent=2, ensure_ascii=False))
        return
    typer.echo((m.path / "README.md").read_text(encoding="utf-8").split("---\n", 2)[-1].strip())
    typer.echo(f"\npath: {m.path}")
    lin = m.card.get("lineage", {})
    typer.echo("lineage: " + json.dumps(lin, sort_keys=True, ensure_ascii=False))
    for f in m.card["files"]:
        typer.echo(f"  {f['path']:45} {f['bytes']:>10} B  sha256 {f['sha256'][:16]}…")


@manifests_app.command("diff")
def manifests_diff(a: str = typer.Argument(..., help="NAME[@VERSION]"), b: str = typer.Argument(..., help="NAME[@VERSION]"),
                   limit: int = typer.Option(10, help="Examples shown per kind of change."),
                   home: Optional[Path] = HomeOpt):
    """Records added, removed, relabelled and moved across splits between two versions."""
    from artdata.datasets.manifest import diff, load
    h = resolve_home(home)
    d = diff(load(h.manifests, a), load(h.manifests, b))
    typer.echo(f"{d.a} -> {d.b}: " + ", ".join(f"{k} {v}" for k, v in d.summary().items()))
    for title, items in (("added", d.added), ("removed", d.removed)):
        for k in items[:limit]:
            typer.echo(f"  {title}: {k[0]}:{k[1]}")
    for k, x, y in d.relabelled[:limit]:
        typer.echo(f"  relabelled: {k[0]}:{k[1]} {x!r} -> {y!r}")
    for k, x, y in d.moved[:limit]:
        typer.echo(f"  moved: {k[0]}:{k[1]} {x} -> {y}")
    for k, cols in d.changed[:limit]:
        typer.echo(f"  changed: {k[0]}:{k[1]} ({', '.join(cols)})")


@manifests_app.command("verify")
def manifests_verify(ref: str = typer.Argument(..., help="NAME[@VERSION] or a manifest folder."),
                     home: Optional[Path] = HomeOpt):
    """Check every file against the card and every image in the store against its sha256."""
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import load, verify
    h = resolve_home(home)
    rep = verify(load(h.manifests, ref), ImageStore(h.images))
    for p in rep.problems[:50]:
        typer.echo(f"  {p}", err=True)
    if rep.problems:
        typer.echo(f"Error: {rep.ref}: {len(rep.problems)} problem(s) in {rep.checked_files} files and "
                   f"{rep.checked_images} images", err=True)
        raise typer.Exit(1)
    typer.echo(f"{rep.ref}: OK ({rep.checked_files} files, {rep.checked_images} images)")


@manifests_app.command("materialize")
@limit_options
def manifests_materialize(
    ref: str = typer.Argument(..., help="NAME[@VERSION] or a manifest folder someone gave you."),
    image_base: Optional[str] = typer.Option(None, help="Rewrite image URLs' scheme://host to this (a mirror)."),
    image_size: Optional[int] = typer.Option(None, help="Shorter side for images not fetched yet "
                                                        "[default: the harvest's]."),
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    workers: Optional[int] = WorkersOpt,
    home: Optional[Path] = HomeOpt,
):
    """Fetch every image of a manifest into the local store and check its sha256 (resumable)."""
    from artdata.console import HarvestProgress, console, counts_line
    from artdata.datasets.materialize import materialize
    h = resolve_home(home)
    progress = HarvestProgress("materialize")
    try:
        res = materialize(h, ref, image_base=image_base, image_size=image_size,
                          client=client_cfg(rate, concurrency, None, 4, 30.0, 30.0), workers=workers,
                          progress=progress)
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]Interrupted.[/yellow] Run the same command again to resume.")
        raise typer.Exit(130)
    console.print(f"materialize {res.source_ref}: {counts_line(res.counts)}")
    for line in res.mismatches[:20]:
        console.print(f"  [red]{line}[/red]")
    if res.manifest is not None and res.manifest.ref != res.source_ref:
        typer.echo(f"manifest {res.manifest.ref} -> {res.manifest.path}")
    if res.mismatches or res.counts.get("failed"):
        typer.echo(f"Error: {len(res.mismatches)} checksum mismatch(es), {res.counts.get('failed', 0)} "
                   f"failed download(s); see above", err=True)
        raise typer.Exit(1)


@manifests_app.command("export")
def manifests_export(
    ref: str = typer.Argument(..., help="NAME[@VERSION] in the home, or a manifest folder."),
    dest: str = typer.Argument(..., help="Folder URL to write: a path, s3://bucket/prefix, hf://datasets/USER/NAME "
                                         "(any fsspec URL whose package is installed)."),
    format: str = typer.Option(..., "--format", help="hf (Parquet with the images embedded + the Hub's dataset "
                                                      "card), webdataset (tar shards + index.json) or imagefolder "
                                                      "(<split>/<class>/<key>.jpg)."),
    rai: Optional[Path] = typer.Option(None, "--rai", help="YAML or JSON of Croissant RAI fields (dataSocialImpact, "
                                                            "dataUseCases, ...) that replace artdata's own in "
                                                            "croissant.json; those it cannot know say TO FILL."),
    shard_mb: float = typer.Option(500.0, "--shard-mb", help="About this many MB of images per shard (hf, "
                                                             "webdataset)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier artdata export in DEST (else it "
                                                              "must be empty, or this same export cut short)."),
    home: Optional[Path] = HomeOpt,
):
    """Write a version for others to read: the Hub (datasets.load_dataset), WebDataset, class folders."""
    from artdata.console import HarvestProgress, console
    from artdata.datasets.export import ExportConfig, FORMATS, export
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import load
    from artdata.datasets.rai import load_rai_file
    if format not in FORMATS:
        raise ArtdataError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    h = resolve_home(home)
    m = load(h.manifests, ref)
    cfg = ExportConfig(shard_bytes=int(shard_mb * 1e6), rai=load_rai_file(rai) if rai else None,
                       overwrite=overwrite)
    progress = HarvestProgress(f"export {format}")
    progress.start(m.card["counts"].get("by_status", {}).get("ok", 0), 0)
    try:
        res = export(m, ImageStore(h.images), dest, format, cfg,
                     progress=lambda n: [progress.advance("exported") for _ in range(n)])
    finally:
        progress.stop()
    console.print(f"export {res.ref} -> {dest} ({format}): " + ", ".join(f"{s} {n}" for s, n in res.samples.items())
                  + f" images, {len(res.files)} files, {res.image_bytes / 1e6:.1f} MB of images"
                  + (f"; not exported (no stored image): {', '.join(f'{k} {v}' for k, v in res.left_out.items())}"
                     if res.left_out else ""))
    if res.to_fill:
        console.print(f"croissant.json: fields to fill with --rai FILE: {', '.join(res.to_fill)}")


def register(app: typer.Typer) -> None:
    app.add_typer(manifests_app, name="manifests")
