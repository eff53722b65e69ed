"""`artdata crawl SOURCE`: one command per source; each builds the source from its own options and hands it to
the harvest runner with the options every crawl shares (options.crawl_options)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from artdata import ArtdataError
from artdata.cli.options import (Fetching, HomeOpt, MetadataOnlyOpt, PLAIN, RetryFailedOpt, RightsAliasOpt,
                                 classification_opt, crawl_options, harvest_cfg, limit_opt, open_access_opt,
                                 resolve_home, split_list)


crawl_app = typer.Typer(**PLAIN, help="Harvest metadata and images from a source into a versioned manifest.",
                        no_args_is_help=True)

# the Art Institute asks anonymous clients for about 60 requests a minute
AIC_RATE = typer.Option(1.0, help="Requests per second per host, at most (the museum allows anonymous "
                                  "clients about 60 a minute).")


def run_harvest(source, cfg, home, label: str):
    from artdata.console import HarvestProgress, console, counts_line
    from artdata.harvest.runner import harvest
    progress = HarvestProgress(label)
    try:
        res = harvest(source, cfg, home, progress)
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]Interrupted.[/yellow] Every finished record is saved; run the same command "
                      "again to resume.")
        raise typer.Exit(130)
    console.print(f"{label}: {res.total} ids, {res.skipped} already done, {sum(res.counts.values())} records "
                  f"in {res.seconds:.1f}s — {counts_line(res.counts)}")
    if res.client_stats:
        s = res.client_stats
        console.print(f"  requests {s.requests}, retries {s.retries}, blocks {s.blocks}, "
                      f"{s.bytes / 1e6:.1f} MB")
    if res.worker_crashes:
        console.print(f"  [yellow]an image process died {res.worker_crashes} time(s) and was replaced[/yellow]; "
                      "the images it held are failed records ('image worker died'): --retry-failed fetches them again")
    if res.manifest:
        typer.echo(f"manifest {res.manifest.ref} -> {res.manifest.path}")
    if res.total == 0:
        raise ArtdataError(f"{label}: the selection matched no records: nothing harvested (check its filters, "
                           f"--ids-from or --limit)")
    return res


@crawl_app.command("met")
@crawl_options("met")
def crawl_met(
    department: Optional[List[str]] = typer.Option(None, "--department", "-d",
                                                   help="Department name or id (repeat or comma-separate)."),
    classification: Optional[List[str]] = classification_opt("Paintings"),
    open_access_only: bool = open_access_opt("public-domain objects' images (the others' records are kept as "
                                             "not_public_domain)"),
    rights_alias: bool = RightsAliasOpt,
    has_image: bool = typer.Option(False, "--has-image",
                                   help="Leave objects without an image out of the manifest (counted in its card)."),
    since: Optional[str] = typer.Option(None, help="Only objects whose metadata changed since DATE (YYYY-MM-DD)."),
    ids_from: Optional[Path] = typer.Option(None, help="Ids to harvest: a list (one per line) or the bulk "
                                                       "MetObjects.csv/.parquet, filtered locally first."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest --ids-from file "
                                                   "read (e.g. 4GiB) [default: 1GiB]."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many ids of the selection, in its "
                                                          "order (records that a later filter or status leaves out "
                                                          "count too: without --ids-from, --classification is "
                                                          "checked on each fetched object, so filter with "
                                                          "--ids-from to count kept records)."),
    image_size: int = typer.Option(256, help="Shorter side of stored images, in pixels."),
    all_images: bool = typer.Option(False, "--all-images", help="A record for each of an object's "
                                    "additionalImages too (back, details; at most 100), source_id ID#view=K, "
                                    "kept in one split with the object by build-split."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    api_base: str = typer.Option("https://collectionapi.metmuseum.org/public/collection/v1",
                                 help="Any Met-compatible API (e.g. the mirror)."),
    *,
    fetching: Fetching,
):
    """Harvest The Met's Collection API (object JSON, then the image) into a manifest."""
    from artdata.datasets.records import STATUSES, STATUS_NO_IMAGE
    from artdata.sources.met import MetSource
    src = MetSource(api_base=api_base.rstrip("/"), departments=split_list(department),
                    classifications=split_list(classification), public_domain_only=open_access_only or rights_alias,
                    has_image=has_image, since=since, ids_from=str(ids_from) if ids_from else None,
                    image_size=image_size, max_member_bytes=max_member_bytes, all_images=all_images)
    keep = tuple(s for s in STATUSES if s != STATUS_NO_IMAGE) if has_image else None
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed, keep_statuses=keep)
    run_harvest(src, cfg, resolve_home(fetching.home), "met")


@crawl_app.command("tate")
@crawl_options("tate")
def crawl_tate(
    table: str = typer.Argument(..., help="Tate artworks: .parquet, artwork_data.csv, the JSON tree folder, or a URL."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest table read; a Parquet "
                                                   "file also uncompressed (e.g. 4GiB) [default: 512MiB]."),
    classification: Optional[List[str]] = classification_opt("painting"),
    medium: Optional[List[str]] = typer.Option(None, "--medium", "-m", help="Exact medium text (repeatable)."),
    has_image: bool = typer.Option(False, "--has-image", help="Only works with a thumbnail."),
    has_thumbnail_alias: bool = typer.Option(False, "--has-thumbnail", hidden=True),
    acquired_from: Optional[int] = typer.Option(None, help="First acquisition year."),
    acquired_to: Optional[int] = typer.Option(None, help="Last acquisition year."),
    open_access_only: bool = open_access_opt("works whose thumbnail has no copyright note"),
    rights_alias: bool = RightsAliasOpt,
    image_base: Optional[str] = typer.Option(None, help="Replace http://www.tate.org.uk in image URLs (a mirror)."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; picks the rendition (_8/_9/_10)."),
    limit: Optional[int] = limit_opt("works"),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest Tate's collection dataset (metadata from the table, thumbnails over HTTP)."""
    from artdata.sources.tate import TateSource
    src = TateSource(table=table, classifications=split_list(classification), media=medium or [],
                     has_thumbnail=has_image or has_thumbnail_alias, acquired_from=acquired_from, acquired_to=acquired_to,
                     no_copyright_restricted=open_access_only or rights_alias, image_base=image_base, image_size=image_size,
                     max_member_bytes=max_member_bytes)
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed)
    run_harvest(src, cfg, resolve_home(fetching.home), "tate")


@crawl_app.command("aic")
@crawl_options("aic", rate=AIC_RATE)
def crawl_aic(
    api_base: str = typer.Option("https://api.artic.edu/api/v1", help="The Art Institute of Chicago's API (or the mirror)."),
    classification: Optional[List[str]] = classification_opt("painting", "classification_title"),
    department: Optional[List[str]] = typer.Option(None, help="department_title(s) kept."),
    open_access_only: bool = open_access_opt("public-domain (CC0) artworks"),
    rights_alias: bool = RightsAliasOpt,
    dump: Optional[Path] = typer.Option(None, help="The museum's data dump (a folder or tarball of JSON, or JSON "
                                                   "lines): select from it, no API request for metadata."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest --dump file, tarball "
                                                   "member or line read, decompressed (e.g. 4GiB) [default: 64MiB]."),
    contact: str = typer.Option("", help="Your e-mail or project URL, sent in the AIC-User-Agent header the museum "
                                         "asks for."),
    image_size: int = typer.Option(256, help="Shorter side of stored images (IIIF width at most 843, as the "
                                             "museum asks)."),
    limit: Optional[int] = limit_opt("artworks"),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest the Art Institute of Chicago (public API or data dump; images through its IIIF server)."""
    from artdata.sources.aic import AicSource
    ua = f"artdata ({contact})" if contact else "artdata (https://github.com/artdata)"
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed, headers=(("AIC-User-Agent", ua),))
    src = AicSource(api_base=api_base.rstrip("/"), classifications=split_list(classification),
                    departments=split_list(department), public_domain_only=open_access_only or rights_alias,
                    dump=str(dump) if dump else None, image_size=image_size, max_member_bytes=max_member_bytes)
    run_harvest(src, cfg, resolve_home(fetching.home), "aic")


@crawl_app.command("cleveland")
@crawl_options("cleveland")
def crawl_cleveland(
    api_base: str = typer.Option("https://openaccess-api.clevelandart.org/api",
                                 help="The Cleveland Museum of Art's Open Access API (or the mirror)."),
    classification: Optional[List[str]] = classification_opt("Painting", "the museum's type"),
    type_alias: Optional[List[str]] = typer.Option(None, "--type", hidden=True),
    department: Optional[List[str]] = typer.Option(None, help="Department(s) kept, e.g. 'European Painting and "
                                                              "Sculpture'."),
    open_access_only: bool = open_access_opt("CC0 artworks (share_license_status)"),
    rights_alias: bool = RightsAliasOpt,
    dump: Optional[Path] = typer.Option(None, help="The museum's bulk data.json or data.csv: select from it, no "
                                                   "API request for metadata."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest data.json, or line or "
                                                   "row of a streamed dump, read (e.g. 4GiB) [default: 2GiB]."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; picks the smallest of the web, "
                                             "print and full renditions that is large enough."),
    limit: Optional[int] = limit_opt("artworks"),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest the Cleveland Museum of Art (Open Access API or its bulk data file; CC0 images)."""
    from artdata.sources.cleveland import ClevelandSource
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed)
    src = ClevelandSource(api_base=api_base.rstrip("/"), types=split_list((classification or []) + (type_alias or [])),
                          departments=split_list(department), cc0_only=open_access_only or rights_alias, dump=str(dump) if dump else None, image_size=image_size,
                          max_member_bytes=max_member_bytes)
    run_harvest(src, cfg, resolve_home(fetching.home), "cleveland")


NGA_DATA = "https://raw.githubusercontent.com/NationalGalleryOfArt/opendata/main/data"


@crawl_app.command("nga")
@crawl_options("nga")
def crawl_nga(
    data: str = typer.Argument(NGA_DATA, show_default=False,
                               help="The NGA open-data folder (objects.csv, published_images.csv and, for "
                                    "nationalities, objects_constituents.csv, constituents.csv), or its URL "
                                    "[default: the museum's own, below]."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest table read, a .zip's "
                                                   "CSV decompressed (e.g. 4GiB) [default: 512MiB]."),
    classification: Optional[List[str]] = classification_opt("Painting", "objects.classification"),
    open_access_only: bool = open_access_opt("objects whose primary image is open access (no maxpixels: CC0)"),
    rights_alias: bool = RightsAliasOpt,
    image_size: int = typer.Option(256, help="Shorter side of stored images (the IIIF server is asked for this "
                                             "size)."),
    all_views: bool = typer.Option(False, "--all-views", help="A record for each alternate view of an object "
                                   "too (published_images viewtype alternate), source_id ID#view=K, kept in one "
                                   "split with the object by build-split."),
    limit: Optional[int] = limit_opt("objects"),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest the National Gallery of Art (open-data CSVs joined here; images through its IIIF server).

    DATA defaults to the tables the museum publishes:
    https://raw.githubusercontent.com/NationalGalleryOfArt/opendata/main/data"""
    from artdata.sources.nga import NgaSource
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed)
    src = NgaSource(data=data.rstrip("/") if data.startswith(("http://", "https://")) else data,
                    classifications=split_list(classification), open_access_only=open_access_only or rights_alias,
                    image_size=image_size, max_member_bytes=max_member_bytes, all_views=all_views)
    run_harvest(src, cfg, resolve_home(fetching.home), "nga")


@crawl_app.command("iiif")
@crawl_options("iiif")
def crawl_iiif(
    urls: List[str] = typer.Argument(..., help="IIIF manifest or collection URLs (Presentation API 2 or 3), or files "
                                               "listing them one per line."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; the image service is asked for "
                                             "this size, never for its full resolution."),
    all_canvases: bool = typer.Option(False, "--all-canvases", help="Every canvas of a manifest (pages, views), "
                                                                    "not only the first."),
    limit: Optional[int] = limit_opt("records"),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest any IIIF collection: manifests (or collections of them) -> records with their metadata -> images."""
    from artdata.sources.iiif import IiifSource
    cfg = harvest_cfg(fetching, image_size, limit, metadata_only, retry_failed)
    run_harvest(IiifSource(list(urls), image_size=image_size, all_canvases=all_canvases), cfg,
                resolve_home(fetching.home), "iiif")


@crawl_app.command("urls")
@crawl_options("urls")
def crawl_urls(
    path: Path = typer.Argument(..., help="Image URLs: one per line, or a .csv/.parquet with a url column."),
    column: str = typer.Option("url", help="Column of the URLs in a table."),
    image_size: int = typer.Option(256, help="Shorter side of stored images, in pixels."),
    limit: Optional[int] = limit_opt("URLs"),
    retry_failed: bool = RetryFailedOpt,
    *,
    fetching: Fetching,
):
    """Harvest a plain list of image URLs (no metadata) into a manifest."""
    from artdata.sources.urls import UrlListSource
    cfg = harvest_cfg(fetching, image_size, limit, retry_failed=retry_failed)
    run_harvest(UrlListSource(str(path), column), cfg, resolve_home(fetching.home), "urls")


@crawl_app.command("findartinfo")
def crawl_findartinfo(
    letters: str = typer.Option("A", help="Artist index letters, comma-separated (A,B,C)."),
    artist_url: Optional[str] = typer.Option(None, help="Crawl only these artists' price lists (URLs, comma-separated)."),
    max_pages: Optional[int] = typer.Option(None, min=1, help="Follow at most this many pages of each pager."),
    pictures_only: bool = typer.Option(False, help="Only sales that have a picture (the has-art-work lists)."),
    base_url: str = typer.Option("https://www.findartinfo.com", help="The site, or the mirror."),
    metadata_only: bool = MetadataOnlyOpt,
    image_size: int = typer.Option(256, help="Shorter side of stored images."),
    http_cache: bool = typer.Option(False, help="Cache HTTP answers on disk (development)."),
    concurrency: Optional[int] = typer.Option(None, help="Requests in flight per domain [4]."),
    delay: Optional[float] = typer.Option(None, help="Seconds between requests to the site [0.25, AutoThrottle adapts]."),
    redis_url: Optional[str] = typer.Option(None, help="Share the crawl between machines through scrapy-redis."),
    limit: Optional[int] = typer.Option(None, min=1, help="Stop after this many sales kept (Scrapy's "
                                                          "CLOSESPIDER_ITEMCOUNT; a few in flight may still land)."),
    rate: Optional[float] = typer.Option(None, help="Requests per second to the site, at most at the start "
                                                    "[4, then AutoThrottle adapts]; sets --delay to 1/RATE."),
    retries: int = typer.Option(6, help="Retries of a transient failure (403/429/5xx, timeouts)."),
    timeout: float = typer.Option(30.0, help="Seconds before a request times out."),
    user_agent: Optional[str] = typer.Option(None, help="Override the identifying User-Agent."),
    name: str = typer.Option("findartinfo", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Crawl findartinfo auction prices (Scrapy): artist index -> price lists -> sale pages -> manifest.

    Log-in for the paid details: set FINDARTINFO_USER and FINDARTINFO_PASSWORD in the environment."""
    from artdata.console import console
    from artdata.spiders.run import run_crawl
    if rate is not None and rate <= 0:
        raise ArtdataError(f"--rate must be positive, not {rate}")
    if delay is None and rate is not None:
        delay = 1.0 / rate
    settings = {"RETRY_TIMES": retries, "DOWNLOAD_TIMEOUT": timeout}
    if limit:
        settings["CLOSESPIDER_ITEMCOUNT"] = limit
    if user_agent:
        settings["USER_AGENT"] = user_agent
    h = resolve_home(home)
    res = run_crawl(h, base_url=base_url.rstrip("/"), letters=letters, artist_url=artist_url,
                    max_pages=max_pages, pictures_only=pictures_only, images=not metadata_only, image_size=image_size,
                    http_cache=http_cache, manifest=name, redis_url=redis_url, concurrency=concurrency, delay=delay,
                    settings=settings)
    st = res["stats"]
    reason = res["finish_reason"]
    done = reason in ("finished", "closespider_itemcount")
    drops = {k.split("/", 2)[2]: v for k, v in st.items() if k.startswith("artdata/dropped/")}
    how = {"finished": "done", "closespider_itemcount": f"stopped at --limit {limit}"}.get(reason, f"stopped ({reason})")
    console.print(f"findartinfo: {st.get('response_received_count', 0)} pages, {st.get('item_scraped_count', 0)} items, "
                  f"images ok {st.get('artdata/images/ok', 0)} failed {st.get('artdata/images/failed', 0)} — {how}")
    if drops:
        console.print("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    if res["manifest"]:
        ref = res["manifest"]
        mname, _, version = str(ref).partition("@")
        typer.echo(f"manifest {ref} -> {h.manifests / mname / version}")
    if not done:
        console.print("[yellow]Interrupted.[/yellow] Run the same command again to resume.")
        raise typer.Exit(130)
    if not st.get("item_scraped_count"):
        raise ArtdataError(f"findartinfo: no sales found in {st.get('response_received_count', 0)} pages "
                           f"(letters {res['letters']}{', pictures only' if pictures_only else ''} at {base_url}): "
                           f"check --letters, --artist-url and --base-url")


def register(app: typer.Typer) -> None:
    app.add_typer(crawl_app, name="crawl")
