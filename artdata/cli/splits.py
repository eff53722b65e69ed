"""`artdata build-split` (a recipe: clean, label, split) and `artdata import-folder` (a class-per-folder
collection as a manifest)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from artdata import ArtdataError
from artdata.cli.options import HomeOpt, WorkersOpt, resolve_home, split_list


def _ratios(text: str) -> tuple:
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ArtdataError(f"--ratios takes three numbers like 0.8,0.1,0.1, not {text!r}") from None
    return vals


def build_split_cmd(
    recipe: str = typer.Argument(..., help="culture | department | medium | price | movement"),
    source: List[str] = typer.Option(..., "--from", help="The harvested manifest, NAME[@VERSION]; repeat it to "
                                                         "merge several (--from met --from iiif)."),
    name: Optional[str] = typer.Option(None, help="Output manifest name [default: <from>-<recipe>]."),
    min_count: Optional[int] = typer.Option(None, help="Drop classes with fewer records (culture: 100, others: 1)."),
    max_per_class: Optional[int] = typer.Option(None, help="Keep at most this many records per class (seeded)."),
    seed: int = typer.Option(0, help="Seed of the split and of --max-per-class."),
    ratios: str = typer.Option("0.8,0.1,0.1", help="train,val,test fractions."),
    group_by: str = typer.Option("artwork", help="Keep together: artwork (the records of one work: same object, "
                                                 "parent/child, same Wikidata item, near-duplicate images), artist "
                                                 "(artist-disjoint splits), or none (record by record)."),
    classification: Optional[List[str]] = typer.Option(None, help="culture: classification(s) kept [Paintings]."),
    region_map: Optional[Path] = typer.Option(None, help="culture: JSON value -> class map replacing the shipped one."),
    exclude: Optional[Path] = typer.Option(None, help="culture: file of ids judged mis-tagged, one per line."),
    drop_flagged: bool = typer.Option(False, help="culture: drop records flagged as likely non-paintings."),
    departments: Optional[List[str]] = typer.Option(None, help="department: departments kept [the study's 10]."),
    top: Optional[int] = typer.Option(None, help="medium: the N most common descriptions [10]."),
    classes: Optional[List[str]] = typer.Option(None, help="medium: exactly these descriptions."),
    multi_label: bool = typer.Option(False, help="medium: media tags (labels) instead of one description."),
    tags: Optional[int] = typer.Option(None, help="medium --multi-label: vocabulary size [10]."),
    currency: Optional[str] = typer.Option(None, help="price: currency kept [the most common]."),
    rates: Optional[Path] = typer.Option(None, help="price: CSV currency,rate converting others into --currency."),
    bins: Optional[int] = typer.Option(None, help="price: equal-count bins [10]."),
    top_artists: Optional[int] = typer.Option(None, help="price: keep only the N artists with most lots."),
    home: Optional[Path] = HomeOpt,
):
    """Clean tags, label and split a manifest into train/val/test (a new versioned manifest)."""
    from artdata.splits.recipes import build_split
    given = {"min_count": min_count, "max_per_class": max_per_class, "classification": split_list(classification) or None,
             "region_map": str(region_map) if region_map else None, "exclude": str(exclude) if exclude else None,
             "drop_flagged": drop_flagged or None, "departments": split_list(departments) or None, "top": top,
             "classes": classes or None, "multi_label": multi_label or None, "tags": tags, "currency": currency,
             "rates": str(rates) if rates else None, "bins": bins, "top_artists": top_artists}
    given = {k: v for k, v in given.items() if v is not None}
    if seed:
        given["seed"] = seed
    if ratios != "0.8,0.1,0.1":
        given["ratios"] = _ratios(ratios)
    if group_by != "artwork":
        given["group_by"] = group_by
    m = build_split(resolve_home(home), recipe, source if len(source) > 1 else source[0], name=name, **given)
    for step in m.card["steps"]:
        dropped = ", ".join(f"{k} {v}" for k, v in step["dropped"].items())
        typer.echo(f"  {step['rows']:>7}  {step['step']}" + (f"  (dropped: {dropped})" if dropped else ""))
    c = m.card["counts"]
    typer.echo("classes: " + ", ".join(f"{k} {v}" for k, v in (c.get("by_class") or c.get("by_tag") or {}).items()))
    typer.echo("splits: " + ", ".join(f"{k} {v}" for k, v in c.get("by_split", {}).items()))
    g = m.card.get("groups") or {}
    if g:
        typer.echo(f"groups ({g['by']}): {g['count']} for {sum(c.get('by_split', {}).values())} records, largest "
                   f"{g['largest']}; near-duplicate pairs {g['near_duplicate_pairs']} "
                   f"({g['near_duplicate_pairs_straddling']} across splits); groups in two splits: {g['straddling']}")
    for src, classes in (m.card.get("classes_by_source") or {}).items():
        typer.echo(f"  from {src}: " + ", ".join(f"{k} {v}" for k, v in classes.items()))
    for warning in m.card.get("warnings") or []:
        typer.secho(f"Warning: {warning}", fg="yellow", err=True)
    typer.echo(f"manifest {m.ref} -> {m.path}")


def import_folder_cmd(
    folder: Path = typer.Argument(..., help="A folder with one sub-folder of images per class."),
    name: str = typer.Option(..., help="Manifest name."),
    image_size: int = typer.Option(512, help="Shorter side of stored images (512, not the crawls' 256: a "
                                             "collection imported whole is often the movement study's, whose "
                                             "Inception-v3 trains on 299 px crops)."),
    workers: Optional[int] = WorkersOpt,
    home: Optional[Path] = HomeOpt,
):
    """Turn a class-per-folder image collection (Pandora18k, WikiArt style) into a manifest."""
    from artdata.console import HarvestProgress
    from artdata.splits.folder import import_folder
    from artdata.datasets.images import ImageConfig
    m = import_folder(resolve_home(home), folder, name, ImageConfig(size=image_size), workers, HarvestProgress("import"))
    prof = m.card.get("profile", {})
    if prof.get("width"):
        typer.echo(f"{prof['images']} images; width median {prof['width']['median']:.0f}, height median "
                   f"{prof['height']['median']:.0f}, aspect median {prof['aspect']['median']:.2f}")
    typer.echo("status: " + ", ".join(f"{k} {v}" for k, v in m.card["counts"]["by_status"].items()))
    typer.echo(f"manifest {m.ref} -> {m.path}")


def audit_cmd(
    manifest: str = typer.Argument(..., help="NAME[@VERSION]: any manifest, split or not."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: pairs, straddling, groups."),
    fail_on_leak: bool = typer.Option(False, help="Exit 1 when a near-duplicate pair straddles splits."),
    radius: Optional[int] = typer.Option(None, help="Fingerprint distance of candidate pairs, in bits of 64 [8]."),
    threshold: Optional[float] = typer.Option(None, help="Similarity a candidate must reach [0.4]."),
    limit: int = typer.Option(20, help="Pairs shown in the table (--json has all)."),
    home: Optional[Path] = HomeOpt,
):
    """Near-duplicate images in a manifest: the pairs, those that straddle splits, the groups."""
    import json
    from artdata.console import HarvestProgress
    from artdata.datasets.images import ImageStore
    from artdata.datasets.manifest import load
    from artdata.splits.groups import audit_table
    h = resolve_home(home)
    m = load(h.manifests, manifest)
    res = audit_table(m.table(), ImageStore(h.images), radius=radius, threshold=threshold,
                      progress=HarvestProgress("fingerprints from the store"))
    if as_json:
        typer.echo(json.dumps(res, ensure_ascii=False))
    else:
        g = res["groups"]
        typer.echo(f"{m.ref}: {res['records']} records, {g['fingerprints']} with a fingerprint"
                   + (f" ({g['fingerprints_computed']} made from the store)" if g["fingerprints_computed"] else ""))
        typer.echo(f"near-duplicate pairs: {len(res['pairs'])} (within {g['radius']} bits, similarity >= "
                   f"{g['threshold']}); straddling splits: {res['straddling']}")
        for p in res["pairs"][:limit]:
            sim = "-" if p["similarity"] is None else f"{p['similarity']:.2f}"
            where = "" if p["splits"] == [None, None] else f"  {p['splits'][0]} / {p['splits'][1]}"
            typer.echo(f"  {p['a']:<28} {p['b']:<28} d={p['distance']:<2} sim={sim}{where}")
        if len(res["pairs"]) > limit:
            typer.echo(f"  ... {len(res['pairs']) - limit} more (--json for all)")
        typer.echo(f"groups: {g['count']}, largest {g['largest']}, {g['multi']} with two or more records"
                   + (f"; in two splits: {g['straddling_groups']}" if g["straddling_groups"] else ""))
    if fail_on_leak and res["straddling"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)
    app.command("build-split")(build_split_cmd)
    app.command("import-folder")(import_folder_cmd)
