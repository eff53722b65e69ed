"""The `artdata` command line: parses options and calls the library; nothing else lives here.

Library errors (ArtdataError) become one line on stderr (`Error: ...`) and exit code 1.
Heavy imports (httpx, pandas, torch) happen inside the command that needs them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from artdata import ArtdataError


class ArtdataGroup(TyperGroup):
    """Turns library errors into one-line `Error: ...` messages (exit 1), never tracebacks."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ArtdataError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:   # a path the user gave that cannot be read or written
            if not getattr(exc, "filename", None):
                raise
            typer.echo(f"Error: {exc.filename}: {exc.strerror}", err=True)
            raise typer.Exit(1) from None


# Plain click help, not rich's panels: rich reads "[default: ...]" and "[@VERSION]" in help texts as markup
# and drops them, and its option table squeezes the help into a narrow column at 80 columns.
PLAIN = {"rich_markup_mode": None}

app = typer.Typer(cls=ArtdataGroup, **PLAIN, help="Harvest museum collections and auction listings into versioned image datasets, "
                       "split them, and train classifiers on them.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
crawl_app = typer.Typer(**PLAIN, help="Harvest metadata and images from a source into a versioned manifest.",
                        no_args_is_help=True)
manifests_app = typer.Typer(**PLAIN, help="List, inspect, compare, check and materialize versioned manifests.",
                            no_args_is_help=True)
mirror_app = typer.Typer(**PLAIN, help="The loopback mirror of the Met API, Tate and findartinfo (for demos and tests).",
                         no_args_is_help=True)
app.add_typer(crawl_app, name="crawl")
app.add_typer(manifests_app, name="manifests")
app.add_typer(mirror_app, name="mirror")

HomeOpt = typer.Option(None, "--home", envvar="ARTDATA_HOME",
                       help="Folder for manifests, images, harvest journals and runs [default: ./artdata-home].")


# Options shared by the commands that fetch (crawl met, crawl tate, manifests materialize).
MetadataOnlyOpt = typer.Option(False, help="Records only; fetch images later with `manifests materialize`.")
RetryFailedOpt = typer.Option(False, help="Retry only the records that failed last time.")
RateOpt = typer.Option(5.0, help="Requests per second per host, at most.")
ConcurrencyOpt = typer.Option(8, help="Requests in flight at once.")
UserAgentOpt = typer.Option(None, help="Override the identifying User-Agent.")
RetriesOpt = typer.Option(4, help="Retries of a transient failure.")
TimeoutOpt = typer.Option(30.0, help="Seconds before a request times out.")
BlockPauseOpt = typer.Option(30.0, help="First pause (s) after a block without Retry-After.")
WorkersOpt = typer.Option(None, help="Image processes [default: all cores].")


def _home(home: Optional[Path]):
    from artdata.paths import Home
    return Home.resolve(home)


def _split_list(values: Optional[List[str]]) -> list[str]:
    out = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


# ---------------------------------------------------------------- crawl

# The limits on what a server may send (shared by every command that fetches): declared once here, added to a
# command's options by @limit_options, and read by _client_cfg.
DeadlineOpt = typer.Option(None, "--deadline", help="Total seconds one request may take, connect + headers + body "
                                                      "(a server that trickles is cut off) [default: 10 x --timeout].")
MaxAnswerBytesOpt = typer.Option(64 * 2**20, "--max-answer-bytes",
                                 help="Largest API answer or table read over HTTP, decompressed (bytes).")
AllowPrivateOpt = typer.Option(False, "--allow-private-hosts",
                               help="Let URLs found in answers, dumps and manifests lead to loopback, private or "
                                    "link-local addresses (hosts you name yourself are always allowed).")
MaxImageBytesOpt = typer.Option(200_000_000, "--max-image-bytes", help="Largest image file accepted (bytes).")
_LIMITS: dict = {}          # ClientConfig fields set by the options above, while a command runs
_IMAGE_LIMITS: dict = {}    # ImageConfig fields


def limit_options(fn):
    """Adds --deadline, --max-answer-bytes, --max-image-bytes and --allow-private-hosts to a fetching command."""
    import functools
    import inspect
    sig = inspect.signature(fn)
    extra = [inspect.Parameter("deadline", inspect.Parameter.KEYWORD_ONLY, default=DeadlineOpt, annotation=Optional[float]),
             inspect.Parameter("max_answer_bytes", inspect.Parameter.KEYWORD_ONLY, default=MaxAnswerBytesOpt,
                               annotation=int),
             inspect.Parameter("allow_private_hosts", inspect.Parameter.KEYWORD_ONLY, default=AllowPrivateOpt,
                               annotation=bool),
             inspect.Parameter("max_image_bytes", inspect.Parameter.KEYWORD_ONLY, default=MaxImageBytesOpt,
                               annotation=int)]

    @functools.wraps(fn)
    def wrapper(*args, deadline=None, max_answer_bytes=64 * 2**20, allow_private_hosts=False,
                max_image_bytes=200_000_000, **kwargs):
        _LIMITS.update(deadline=deadline, max_bytes=max_answer_bytes, allow_private_hosts=allow_private_hosts)
        _IMAGE_LIMITS.update(max_bytes=max_image_bytes)
        try:
            return fn(*args, **kwargs)
        finally:
            _LIMITS.clear()
            _IMAGE_LIMITS.clear()
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])
    return wrapper


def _client_cfg(rate: float, concurrency: int, user_agent: Optional[str], retries: int, timeout: float,
                block_pause: float, trusted: tuple = ()):
    from artdata.harvest.client import ClientConfig, DEFAULT_USER_AGENT
    return ClientConfig(rate=rate, concurrency=concurrency, user_agent=user_agent or DEFAULT_USER_AGENT,
                        retries=retries, timeout=timeout, block_pause=block_pause, trusted_hosts=trusted, **_LIMITS)


def _harvest_cfg(name: str, image_size: int, rate: float, concurrency: int, user_agent: Optional[str], retries: int,
                 timeout: float, block_pause: float, limit: Optional[int], workers: Optional[int],
                 metadata_only: bool = False, retry_failed: bool = False, headers: tuple = ()):
    """The HarvestConfig of a crawl command from its shared options (checked here, before any request)."""
    from dataclasses import replace
    from artdata.harvest.runner import HarvestConfig
    from artdata.datasets.images import ImageConfig
    client = replace(_client_cfg(rate, concurrency, user_agent, retries, timeout, block_pause), headers=headers)
    return HarvestConfig(manifest=name, image=ImageConfig(size=image_size, **_IMAGE_LIMITS), client=client, metadata_only=metadata_only,
                         retry_failed=retry_failed, limit=limit, workers=workers)


def _run_harvest(source, cfg, home, label: str):
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
@limit_options
def crawl_met(
    department: Optional[List[str]] = typer.Option(None, "--department", "-d",
                                                   help="Department name or id (repeat or comma-separate)."),
    classification: Optional[List[str]] = typer.Option(None, "--classification", "-c",
                                                       help="Keep only this classification, e.g. Paintings."),
    public_domain_only: bool = typer.Option(False, "--public-domain-only", help="Skip images of non-PD objects."),
    has_image: bool = typer.Option(False, "--has-image",
                                   help="Leave objects without an image out of the manifest (counted in its card)."),
    since: Optional[str] = typer.Option(None, help="Only objects whose metadata changed since DATE (YYYY-MM-DD)."),
    ids_from: Optional[Path] = typer.Option(None, help="Ids to harvest: a list (one per line) or the bulk "
                                                       "MetObjects.csv/.parquet, filtered locally first."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest --ids-from file "
                                                   "read (e.g. 4GiB) [default: 1GiB]."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many ids."),
    image_size: int = typer.Option(256, help="Shorter side of stored images, in pixels."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    api_base: str = typer.Option("https://collectionapi.metmuseum.org/public/collection/v1",
                                 help="Any Met-compatible API (e.g. the mirror)."),
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("met", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest The Met's Collection API (object JSON, then the image) into a manifest."""
    from artdata.harvest.runner import HarvestConfig
    from artdata.datasets.images import ImageConfig
    from artdata.datasets.records import STATUSES, STATUS_NO_IMAGE
    from artdata.sources.met import MetSource
    src = MetSource(api_base=api_base.rstrip("/"), departments=_split_list(department),
                    classifications=_split_list(classification), public_domain_only=public_domain_only,
                    has_image=has_image, since=since, ids_from=str(ids_from) if ids_from else None,
                    image_size=image_size, max_member_bytes=max_member_bytes)
    keep = tuple(s for s in STATUSES if s != STATUS_NO_IMAGE) if has_image else None
    cfg = HarvestConfig(manifest=name, image=ImageConfig(size=image_size, **_IMAGE_LIMITS),
                        client=_client_cfg(rate, concurrency, user_agent, retries, timeout, block_pause),
                        metadata_only=metadata_only, retry_failed=retry_failed, limit=limit, workers=workers,
                        keep_statuses=keep)
    _run_harvest(src, cfg, _home(home), "met")


@crawl_app.command("tate")
@limit_options
def crawl_tate(
    table: str = typer.Argument(..., help="Tate artworks: .parquet, artwork_data.csv, the JSON tree folder, or a URL."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest table read; a Parquet "
                                                   "file also uncompressed (e.g. 4GiB) [default: 512MiB]."),
    classification: Optional[List[str]] = typer.Option(None, "--classification", "-c", help="e.g. painting."),
    medium: Optional[List[str]] = typer.Option(None, "--medium", "-m", help="Exact medium text (repeatable)."),
    has_thumbnail: bool = typer.Option(False, "--has-thumbnail", help="Only works with a thumbnail."),
    acquired_from: Optional[int] = typer.Option(None, help="First acquisition year."),
    acquired_to: Optional[int] = typer.Option(None, help="Last acquisition year."),
    no_copyright_restricted: bool = typer.Option(False, "--no-copyright-restricted",
                                                 help="Skip works with a thumbnail copyright note."),
    image_base: Optional[str] = typer.Option(None, help="Replace http://www.tate.org.uk in image URLs (a mirror)."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; picks the rendition (_8/_9/_10)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many works."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("tate", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest Tate's collection dataset (metadata from the table, thumbnails over HTTP)."""
    from artdata.harvest.runner import HarvestConfig
    from artdata.datasets.images import ImageConfig
    from artdata.sources.tate import TateSource
    src = TateSource(table=table, classifications=_split_list(classification), media=medium or [],
                     has_thumbnail=has_thumbnail, acquired_from=acquired_from, acquired_to=acquired_to,
                     no_copyright_restricted=no_copyright_restricted, image_base=image_base, image_size=image_size,
                     max_member_bytes=max_member_bytes)
    cfg = HarvestConfig(manifest=name, image=ImageConfig(size=image_size, **_IMAGE_LIMITS),
                        client=_client_cfg(rate, concurrency, user_agent, retries, timeout, block_pause),
                        metadata_only=metadata_only, retry_failed=retry_failed, limit=limit, workers=workers)
    _run_harvest(src, cfg, _home(home), "tate")


@crawl_app.command("aic")
@limit_options
def crawl_aic(
    api_base: str = typer.Option("https://api.artic.edu/api/v1", help="The Art Institute of Chicago's API (or the mirror)."),
    classification: Optional[List[str]] = typer.Option(None, help="classification_title(s) kept, e.g. painting "
                                                                  "(repeat or comma-separate)."),
    department: Optional[List[str]] = typer.Option(None, help="department_title(s) kept."),
    public_domain_only: bool = typer.Option(True, "--public-domain-only/--all-rights",
                                            help="Only public-domain (CC0) artworks."),
    dump: Optional[Path] = typer.Option(None, help="The museum's data dump (a folder or tarball of JSON, or JSON "
                                                   "lines): select from it, no API request for metadata."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest --dump file, tarball "
                                                   "member or line read, decompressed (e.g. 4GiB) [default: 64MiB]."),
    contact: str = typer.Option("", help="Your e-mail or project URL, sent in the AIC-User-Agent header the museum "
                                         "asks for."),
    image_size: int = typer.Option(256, help="Shorter side of stored images (IIIF width at most 843, as the "
                                             "museum asks)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many artworks."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    rate: float = typer.Option(1.0, help="Requests per second per host, at most (the museum allows anonymous "
                                         "clients about 60 a minute)."),
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("aic", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest the Art Institute of Chicago (public API or data dump; images through its IIIF server)."""
    from artdata.sources.aic import AicSource
    ua = f"artdata ({contact})" if contact else "artdata (https://github.com/artdata)"
    cfg = _harvest_cfg(name, image_size, rate, concurrency, user_agent, retries, timeout, block_pause, limit, workers,
                       metadata_only, retry_failed, headers=(("AIC-User-Agent", ua),))
    src = AicSource(api_base=api_base.rstrip("/"), classifications=_split_list(classification),
                    departments=_split_list(department), public_domain_only=public_domain_only,
                    dump=str(dump) if dump else None, image_size=image_size, max_member_bytes=max_member_bytes)
    _run_harvest(src, cfg, _home(home), "aic")


@crawl_app.command("cleveland")
@limit_options
def crawl_cleveland(
    api_base: str = typer.Option("https://openaccess-api.clevelandart.org/api",
                                 help="The Cleveland Museum of Art's Open Access API (or the mirror)."),
    type_: Optional[List[str]] = typer.Option(None, "--type", help="Artwork type(s) kept, e.g. Painting (repeat or "
                                                                   "comma-separate)."),
    department: Optional[List[str]] = typer.Option(None, help="Department(s) kept, e.g. 'European Painting and "
                                                              "Sculpture'."),
    cc0_only: bool = typer.Option(True, "--cc0-only/--all-rights", help="Only CC0 artworks (share_license_status)."),
    dump: Optional[Path] = typer.Option(None, help="The museum's bulk data.json or data.csv: select from it, no "
                                                   "API request for metadata."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest data.json, or line or "
                                                   "row of a streamed dump, read (e.g. 4GiB) [default: 2GiB]."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; picks the smallest of the web, "
                                             "print and full renditions that is large enough."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many artworks."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("cleveland", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest the Cleveland Museum of Art (Open Access API or its bulk data file; CC0 images)."""
    from artdata.sources.cleveland import ClevelandSource
    cfg = _harvest_cfg(name, image_size, rate, concurrency, user_agent, retries, timeout, block_pause, limit, workers,
                       metadata_only, retry_failed)
    src = ClevelandSource(api_base=api_base.rstrip("/"), types=_split_list(type_), departments=_split_list(department),
                          cc0_only=cc0_only, dump=str(dump) if dump else None, image_size=image_size,
                          max_member_bytes=max_member_bytes)
    _run_harvest(src, cfg, _home(home), "cleveland")


@crawl_app.command("nga")
@limit_options
def crawl_nga(
    data: str = typer.Argument("https://raw.githubusercontent.com/NationalGalleryOfArt/opendata/main/data",
                               help="The NGA open-data folder (objects.csv, published_images.csv and, for "
                                    "nationalities, objects_constituents.csv, constituents.csv), or its URL."),
    max_member_bytes: Optional[str] = typer.Option(None, "--max-member-bytes", help="Largest table read, a .zip's "
                                                   "CSV decompressed (e.g. 4GiB) [default: 512MiB]."),
    classification: Optional[List[str]] = typer.Option(None, help="objects.classification kept, e.g. Painting "
                                                                  "(repeat or comma-separate)."),
    open_access_only: bool = typer.Option(True, "--open-access-only/--all-rights",
                                          help="Only objects whose primary image is open access (CC0)."),
    image_size: int = typer.Option(256, help="Shorter side of stored images (the IIIF server is asked for this "
                                             "size)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many objects."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("nga", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest the National Gallery of Art (open-data CSVs joined here; images through its IIIF server)."""
    from artdata.sources.nga import NgaSource
    cfg = _harvest_cfg(name, image_size, rate, concurrency, user_agent, retries, timeout, block_pause, limit, workers,
                       metadata_only, retry_failed)
    src = NgaSource(data=data.rstrip("/") if data.startswith(("http://", "https://")) else data,
                    classifications=_split_list(classification), open_access_only=open_access_only,
                    image_size=image_size, max_member_bytes=max_member_bytes)
    _run_harvest(src, cfg, _home(home), "nga")


@crawl_app.command("iiif")
@limit_options
def crawl_iiif(
    urls: List[str] = typer.Argument(..., help="IIIF manifest or collection URLs (Presentation API 2 or 3), or files "
                                               "listing them one per line."),
    image_size: int = typer.Option(256, help="Shorter side of stored images; the image service is asked for "
                                             "this size, never for its full resolution."),
    all_canvases: bool = typer.Option(False, "--all-canvases", help="Every canvas of a manifest (pages, views), "
                                                                    "not only the first."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many records."),
    metadata_only: bool = MetadataOnlyOpt,
    retry_failed: bool = RetryFailedOpt,
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("iiif", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest any IIIF collection: manifests (or collections of them) -> records with their metadata -> images."""
    from artdata.sources.iiif import IiifSource
    cfg = _harvest_cfg(name, image_size, rate, concurrency, user_agent, retries, timeout, block_pause, limit, workers,
                       metadata_only, retry_failed)
    _run_harvest(IiifSource(list(urls), image_size=image_size, all_canvases=all_canvases), cfg, _home(home), "iiif")


@crawl_app.command("urls")
@limit_options
def crawl_urls(
    path: Path = typer.Argument(..., help="Image URLs: one per line, or a .csv/.parquet with a url column."),
    column: str = typer.Option("url", help="Column of the URLs in a table."),
    image_size: int = typer.Option(256, help="Shorter side of stored images, in pixels."),
    limit: Optional[int] = typer.Option(None, min=1, help="Harvest at most this many URLs."),
    retry_failed: bool = RetryFailedOpt,
    rate: float = RateOpt,
    concurrency: int = ConcurrencyOpt,
    user_agent: Optional[str] = UserAgentOpt,
    retries: int = RetriesOpt,
    timeout: float = TimeoutOpt,
    block_pause: float = BlockPauseOpt,
    workers: Optional[int] = WorkersOpt,
    name: str = typer.Option("urls", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Harvest a plain list of image URLs (no metadata) into a manifest."""
    from artdata.sources.urls import UrlListSource
    cfg = _harvest_cfg(name, image_size, rate, concurrency, user_agent, retries, timeout, block_pause, limit, workers,
                       retry_failed=retry_failed)
    _run_harvest(UrlListSource(str(path), column), cfg, _home(home), "urls")


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
    name: str = typer.Option("findartinfo", help="Manifest name."),
    home: Optional[Path] = HomeOpt,
):
    """Crawl findartinfo auction prices (Scrapy): artist index -> price lists -> sale pages -> manifest.

    Log-in for the paid details: set FINDARTINFO_USER and FINDARTINFO_PASSWORD in the environment."""
    from artdata.console import console
    from artdata.spiders.run import run_crawl
    res = run_crawl(_home(home), base_url=base_url.rstrip("/"), letters=letters, artist_url=artist_url,
                    max_pages=max_pages, pictures_only=pictures_only, images=not metadata_only, image_size=image_size,
                    http_cache=http_cache, manifest=name, redis_url=redis_url, concurrency=concurrency, delay=delay)
    st = res["stats"]
    drops = {k.split("/", 2)[2]: v for k, v in st.items() if k.startswith("artdata/dropped/")}
    console.print(f"findartinfo: {st.get('response_received_count', 0)} pages, {st.get('item_scraped_count', 0)} items, "
                  f"images ok {st.get('artdata/images/ok', 0)} failed {st.get('artdata/images/failed', 0)}, "
                  f"finished: {res['finish_reason']}")
    if drops:
        console.print("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    if res["finish_reason"] != "finished":
        console.print("[yellow]Interrupted.[/yellow] Run the same command again to resume.")
    if res["manifest"]:
        typer.echo(f"manifest {res['manifest']}")
    if res["finish_reason"] == "finished" and not st.get("item_scraped_count"):
        raise ArtdataError(f"findartinfo: no sales found in {st.get('response_received_count', 0)} pages "
                           f"(letters {res['letters']}{', pictures only' if pictures_only else ''} at {base_url}): "
                           f"check --letters, --artist-url and --base-url")


# ---------------------------------------------------------------- manifests

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
    h = _home(home)
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
    res = push(_home(home), ref, dest, with_images, HarvestProgress("push images") if with_images else None)
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
    res = pull(_home(home), source, with_images, HarvestProgress("pull images") if with_images else None,
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
    m = load(_home(home).manifests, ref)
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
    h = _home(home)
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
    h = _home(home)
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
    h = _home(home)
    progress = HarvestProgress("materialize")
    try:
        res = materialize(h, ref, image_base=image_base, image_size=image_size,
                          client=_client_cfg(rate, concurrency, None, 4, 30.0, 30.0), workers=workers,
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


# ---------------------------------------------------------------- splits

def _ratios(text: str) -> tuple:
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ArtdataError(f"--ratios takes three numbers like 0.8,0.1,0.1, not {text!r}") from None
    return vals


@app.command("build-split")
def build_split_cmd(
    recipe: str = typer.Argument(..., help="culture | department | medium | price | movement"),
    source: List[str] = typer.Option(..., "--from", help="The harvested manifest, NAME[@VERSION]; repeat it to "
                                                         "merge several (--from met --from iiif)."),
    name: Optional[str] = typer.Option(None, help="Output manifest name [default: <from>-<recipe>]."),
    min_count: Optional[int] = typer.Option(None, help="Drop classes with fewer records (culture: 100, others: 1)."),
    max_per_class: Optional[int] = typer.Option(None, help="Keep at most this many records per class (seeded)."),
    seed: int = typer.Option(0, help="Seed of the split and of --max-per-class."),
    ratios: str = typer.Option("0.8,0.1,0.1", help="train,val,test fractions."),
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
    given = {"min_count": min_count, "max_per_class": max_per_class, "classification": _split_list(classification) or None,
             "region_map": str(region_map) if region_map else None, "exclude": str(exclude) if exclude else None,
             "drop_flagged": drop_flagged or None, "departments": _split_list(departments) or None, "top": top,
             "classes": classes or None, "multi_label": multi_label or None, "tags": tags, "currency": currency,
             "rates": str(rates) if rates else None, "bins": bins, "top_artists": top_artists}
    given = {k: v for k, v in given.items() if v is not None}
    if seed:
        given["seed"] = seed
    if ratios != "0.8,0.1,0.1":
        given["ratios"] = _ratios(ratios)
    m = build_split(_home(home), recipe, source if len(source) > 1 else source[0], name=name, **given)
    for step in m.card["steps"]:
        dropped = ", ".join(f"{k} {v}" for k, v in step["dropped"].items())
        typer.echo(f"  {step['rows']:>7}  {step['step']}" + (f"  (dropped: {dropped})" if dropped else ""))
    c = m.card["counts"]
    typer.echo("classes: " + ", ".join(f"{k} {v}" for k, v in (c.get("by_class") or c.get("by_tag") or {}).items()))
    typer.echo("splits: " + ", ".join(f"{k} {v}" for k, v in c.get("by_split", {}).items()))
    for src, classes in (m.card.get("classes_by_source") or {}).items():
        typer.echo(f"  from {src}: " + ", ".join(f"{k} {v}" for k, v in classes.items()))
    typer.echo(f"manifest {m.ref} -> {m.path}")


@app.command("import-folder")
def import_folder_cmd(
    folder: Path = typer.Argument(..., help="A folder with one sub-folder of images per class."),
    name: str = typer.Option(..., help="Manifest name."),
    image_size: int = typer.Option(512, help="Shorter side of stored images."),
    workers: Optional[int] = WorkersOpt,
    home: Optional[Path] = HomeOpt,
):
    """Turn a class-per-folder image collection (Pandora18k, WikiArt style) into a manifest."""
    from artdata.console import HarvestProgress
    from artdata.splits.folder import import_folder
    from artdata.datasets.images import ImageConfig
    m = import_folder(_home(home), folder, name, ImageConfig(size=image_size), workers, HarvestProgress("import"))
    prof = m.card.get("profile", {})
    if prof.get("width"):
        typer.echo(f"{prof['images']} images; width median {prof['width']['median']:.0f}, height median "
                   f"{prof['height']['median']:.0f}, aspect median {prof['aspect']['median']:.2f}")
    typer.echo("status: " + ", ".join(f"{k} {v}" for k, v in m.card["counts"]["by_status"].items()))
    typer.echo(f"manifest {m.ref} -> {m.path}")


# ---------------------------------------------------------------- train

@app.command()
def train(
    manifest: Optional[str] = typer.Option(None, help="Split manifest, NAME[@VERSION]."),
    model: Optional[str] = typer.Option(None, help="artnet | alexnet-like | dept-cnn-small | dept-cnn | tate-cnn | "
                                                   "vgg-inception | softmax | resnet18 | resnet50 | vgg16_bn | "
                                                   "alexnet | inception_v3 (the last five are torchvision's)."),
    mode: str = typer.Option("scratch", help="scratch | transfer (frozen backbone) | finetune (train all)."),
    epochs: int = typer.Option(10, help="Epochs."),
    batch_size: int = typer.Option(32, help="Batch size (per process)."),
    lr: float = typer.Option(0.01, help="Learning rate."),
    optimizer: str = typer.Option("sgd", help="sgd | adam | adamw."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    scheduler: str = typer.Option("none", help="none | step | plateau | cosine."),
    image_size: Optional[int] = typer.Option(None, help="Input side [the model's own]."),
    grayscale: Optional[bool] = typer.Option(None, "--grayscale/--color", help="[the model's own]"),
    amp: bool = typer.Option(False, help="bf16 autocast."),
    channels_last: bool = typer.Option(False, help="channels_last memory format."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    workers: int = typer.Option(2, help="Data loading processes."),
    seed: int = typer.Option(0, help="Seed of shuffling, augmentation and initialisation."),
    resume: bool = typer.Option(False, help="Continue a killed run from its last checkpoint."),
    out: Optional[Path] = typer.Option(None, help="Run folder [<home>/runs/<manifest>-<model>]."),
    weights: Optional[str] = typer.Option(None, help="Zoo weights: DEFAULT, none, a torchvision weights name "
                                                     "(IMAGENET1K_V2...), or a local .pth/.safetensors state dict "
                                                     "[DEFAULT unless scratch]."),
    head: str = typer.Option("linear", help="linear | mlp (one hidden layer of --head-width) | mlp3 (the culture "
                                            "study's three FC layers)."),
    head_width: int = typer.Option(256, help="Width of the mlp / mlp3 / vgg-inception head."),
    dropout: float = typer.Option(0.5, help="Dropout in the head."),
    unfreeze_last: int = typer.Option(0, help="Fine-tune only the last K backbone blocks + head."),
    init_head: Optional[str] = typer.Option(None, help="A run (folder, or name under <home>/runs) whose head "
                                                       "initialises this one."),
    feature_cache: bool = typer.Option(True, "--feature-cache/--no-feature-cache",
                                       help="transfer: backbone features computed once and cached on disk."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Random resized crop and flip."),
    max_steps: int = typer.Option(0, help="Training batches per epoch at most (0: all)."),
    run_name: Optional[str] = typer.Option(None, help="Run folder name under <home>/runs [<manifest>-<model>]."),
    config: Optional[Path] = typer.Option(None, help="JSON or TOML file with these options (flags override it)."),
    home: Optional[Path] = HomeOpt,
):
    """Train a classifier on a split manifest (CPU here, GPU when present, torchrun for several)."""
    import dataclasses
    import logging
    from artdata.train.loop import TrainArgs, load_config, main as train_main
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ctx = click_context()
    values = load_config(str(config)) if config else {}
    given = dict(manifest=manifest, model=model, mode=mode, epochs=epochs, batch_size=batch_size, lr=lr,
                 optimizer=optimizer, weight_decay=weight_decay, scheduler=scheduler, image_size=image_size,
                 grayscale=grayscale, amp=amp, channels_last=channels_last, device=device, workers=workers, seed=seed,
                 resume=resume, out=str(out) if out else None, weights=weights, head=head, head_width=head_width,
                 dropout=dropout, unfreeze_last=unfreeze_last, init_head=init_head, feature_cache=feature_cache,
                 augment=augment, max_steps=max_steps, run_name=run_name, home=str(home) if home else None)
    for k, v in given.items():   # flags given on the command line win over the file
        if k not in values or _given_on_command_line(ctx, k):
            values[k] = v
    if not values.get("manifest") or not values.get("model"):
        raise ArtdataError("train needs --manifest and --model (or a --config file naming them)")
    try:
        result = train_main(TrainArgs(**{k: v for k, v in values.items()
                                         if k in {f.name for f in dataclasses.fields(TrainArgs)}}))
    except KeyboardInterrupt:
        typer.echo("Interrupted. The last finished epoch is in checkpoint_last.pt: add --resume to continue.", err=True)
        raise typer.Exit(130)
    if result:
        line = ", ".join(f"{k} {result[k]:.3f}" for k in ("test_top1", "test_top3", "val_top1") if k in result)
        typer.echo(f"run {result['out']}: {line}")


def click_context():
    try:
        from typer._click.globals import get_current_context  # typer >= 0.20 vendors click
    except ImportError:
        from click import get_current_context
    return get_current_context(silent=True)


def _given_on_command_line(ctx, name: str) -> bool:
    if ctx is None:
        return True
    try:
        src = ctx.get_parameter_source(name)
    except (AttributeError, KeyError):
        return True
    return src is not None and getattr(src, "name", str(src)) == "COMMANDLINE"


@app.command()
def tune(
    manifest: str = typer.Option(..., help="Split manifest, NAME[@VERSION]."),
    model: str = typer.Option(..., help="Model to tune (see `artdata train --help`)."),
    trials: int = typer.Option(10, min=1, help="Random trials."),
    params: str = typer.Option("lr,dropout,head_width", help="What to search: lr, dropout, head_width, weight_decay."),
    mode: str = typer.Option("scratch", help="scratch | transfer | finetune."),
    epochs: int = typer.Option(5, help="Epochs per trial."),
    optimizer: str = typer.Option("adam", help="sgd | adam | adamw."),
    image_size: Optional[int] = typer.Option(None, help="Input side [the model's own]."),
    batch_size: int = typer.Option(32, help="Batch size."),
    workers: int = typer.Option(2, help="Data loading processes."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    seed: int = typer.Option(0, help="Seed of the search."),
    out: Optional[Path] = typer.Option(None, help="Folder of the trials [<home>/runs/<manifest>-<model>-tune]."),
    home: Optional[Path] = HomeOpt,
):
    """Random search over learning rate, dropout, head width...: each trial a normal run, best one named."""
    import logging
    from artdata.paths import Home
    from artdata.train.loop import TrainArgs
    from artdata.train.tune import tune as run_tune
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = TrainArgs(manifest=manifest, model=model, mode=mode, epochs=epochs, optimizer=optimizer,
                     image_size=image_size, batch_size=batch_size, workers=workers, device=device, seed=seed,
                     home=str(home) if home else None)
    base.validate()
    folder = out or Home.resolve(home).runs / f"{manifest.split('@')[0]}-{model}-tune"
    res = run_tune(base, trials, Path(folder), tuple(p.strip() for p in params.split(",") if p.strip()), seed)
    for r in res["trials"]:
        typer.echo("  " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                                    if k != "run"))
    typer.echo(f"best: trial {res['best']['trial']} (val top-1 {res['best']['val_top1']:.3f}) -> {res['best']['run']}")


@app.command()
def evaluate(run: Path = typer.Argument(..., help="A training run folder."),
             split: str = typer.Option("test", help="train | val | test."),
             device: str = typer.Option("auto", help="auto | cpu | cuda."),
             home: Optional[Path] = HomeOpt):
    """Evaluate a run's best checkpoint on a split (writes eval-<split>.json in the run)."""
    from artdata.train.loop import evaluate_run
    r = evaluate_run(str(run), split, str(home) if home else None, device)
    typer.echo(f"{run} on {split}: top1 {r['top1']:.3f}" + (f", top3 {r['top3']:.3f}" if "top3" in r else "")
               + f" ({r['count']} images)")


# ---------------------------------------------------------------- reports

@app.command("report")
def report_cmd(target: str = typer.Argument(..., help="A manifest NAME[@VERSION], or a training run folder."),
               out: Optional[Path] = typer.Option(None, help="Folder for the page and figures."),
               home: Optional[Path] = HomeOpt):
    """A self-contained HTML page (and PNG figures) for a dataset or a training run."""
    from artdata.reports.report import report
    typer.echo(f"report: {report(_home(home), target, out)}")


@app.command()
def explain(run: Path = typer.Argument(..., help="A training run folder."),
            images: Optional[str] = typer.Option(None, help="Images to explain: source:source_id or image keys, "
                                                            "comma-separated [the first --count of the split]."),
            per_class: int = typer.Option(2, help="Examples per class when --images is not given (a right and a "
                                                  "wrong prediction while there are)."),
            split: str = typer.Option("test", help="Split whose images and class embeddings are used."),
            device: str = typer.Option("cpu", help="cpu | cuda."),
            out: Optional[Path] = typer.Option(None, help="Folder [RUN/explain]."),
            home: Optional[Path] = HomeOpt):
    """Saliency maps, feature-map overlays and class-embedding distances for a trained image model."""
    from artdata.reports.explain import explain as run_explain
    path = run_explain(run, _home(home) if home else None, [i for i in (images or "").split(",") if i] or None,
                       per_class, split, device, out)
    typer.echo(f"explain: {path}")


# ---------------------------------------------------------------- mirror, demo

@mirror_app.command("serve")
def mirror_serve(port: int = typer.Option(8700, help="Port of the API host (0: any free port)."),
                 media_port: int = typer.Option(8701, help="Port of the media (images) host."),
                 faults: str = typer.Option("none", help="Fault preset: none or demo."),
                 block_burst: int = typer.Option(0, help="Block (HTML 403) after this many requests per second."),
                 block_seconds: float = typer.Option(30.0, help="How long a block lasts.")):
    """Serve the mirror (Met API, Tate, AIC, Cleveland, NGA, IIIF, findartinfo) on 127.0.0.1 until Ctrl-C."""
    import time
    from dataclasses import replace
    from artdata.mirror import Faults, Mirror
    presets = {"none": Faults.none(), "demo": Faults.demo()}
    if faults not in presets:
        raise ArtdataError(f"unknown fault preset {faults!r}; choose from: {', '.join(presets)}")
    f = replace(presets[faults], block_burst=block_burst, block_seconds=block_seconds)
    with _full_mirror(Mirror(faults=f, port=port, media_port=media_port)) as m:
        typer.echo(f"Met API:   {m.met_api_base}\nTate table: {m.tate_table_url}\nmedia:     {m.media_base}")
        for line in _extra_mirror_lines(m):
            typer.echo(line)
        typer.echo("Ctrl-C to stop.")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def _full_mirror(m):
    """Attach the plug-in sites that are installed (findartinfo)."""
    try:
        from artdata.mirror.findartinfo import attach
    except ImportError:
        return m
    attach(m)
    return m


def _extra_mirror_lines(m):
    api = m.base("api")
    lines = [f"AIC API:   {api}/aic/api/v1   (crawl aic --api-base ...)",
             f"Cleveland: {api}/cma/api      (crawl cleveland --api-base ...)",
             f"NGA data:  {api}/nga/data     (crawl nga ...)",
             f"IIIF:      {api}/iiif/3/collection.json   (crawl iiif ...)"]
    if hasattr(m, "findartinfo"):
        lines.append(f"findartinfo: {api} (e.g. /english/A/browse-by-artist.html)")
    return lines


@app.command()
def demo(out: Path = typer.Option(Path("artdata-demo"), help="Folder for everything the demo writes."),
         objects: int = typer.Option(400, help="Met objects to harvest."),
         tate: int = typer.Option(300, help="Tate works to harvest."),
         quick: bool = typer.Option(False, help="Smaller and faster (for tests)."),
         ):
    """The whole pipeline offline: starts the mirror, harvests, splits, trains, reports."""
    from artdata.demo import run_demo
    run_demo(out, met_objects=objects, tate_works=tate, quick=quick)


def main() -> None:
    app(prog_name="artdata")


if __name__ == "__main__":
    main()
