"""The options several commands share, declared once: the fetching options (rate, concurrency, user agent,
retries, timeout, block pause, workers), the limits on what a server may send (@limit_options), the crawl
commands' common tail (@crawl_options: those, then --name and --home), and the helpers that turn them into
the library's configs."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

# Plain click help, not rich's panels: rich reads "[default: ...]" and "[@VERSION]" in help texts as markup
# and drops them, and its option table squeezes the help into a narrow column at 80 columns.
PLAIN = {"rich_markup_mode": None}

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


# One name and one default per concept across the crawl commands (tests/test_cli_conventions.py checks it);
# the spellings each command had before stay as hidden aliases so that scripts keep working.
def open_access_opt(what: str):
    """The rights filter: on by default for every source (images the museum releases openly)."""
    return typer.Option(True, "--open-access-only/--all-rights", help=f"Only {what}; --all-rights keeps the rest.")


# the older spellings of --open-access-only (met: --public-domain-only, cleveland: --cc0-only, tate:
# --no-copyright-restricted): accepted, not shown; the filter is on by default anyway
RightsAliasOpt = typer.Option(False, "--public-domain-only", "--cc0-only", "--no-copyright-restricted", hidden=True)


def classification_opt(example: str, field: str = ""):
    where = f" ({field})" if field else ""
    return typer.Option(None, "--classification", "-c",
                        help=f"Keep only this classification{where}, e.g. {example} (repeat or comma-separate).")


def limit_opt(what: str = "ids"):
    return typer.Option(None, min=1, help=f"Harvest at most this many {what} of the selection, in its order (records "
                                          "that a later filter or status leaves out count too).")


def resolve_home(home: Optional[Path]):
    from artdata.paths import Home
    return Home.resolve(home)


def split_list(values: Optional[List[str]]) -> list[str]:
    out = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def _kw(name: str, default, annotation) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The limits on what a server may send (shared by every command that fetches): declared once here, added to a
# command's options by @limit_options, and read by client_cfg.
DeadlineOpt = typer.Option(None, "--deadline", help="Total seconds one request may take, connect + headers + body "
                                                      "(a server that trickles is cut off) [default: 10 x --timeout].")
MaxAnswerBytesOpt = typer.Option(64 * 2**20, "--max-answer-bytes",
                                 help="Largest API answer or table read over HTTP, decompressed (bytes).")
AllowPrivateOpt = typer.Option(False, "--allow-private-hosts",
                               help="Let URLs found in answers, dumps and manifests lead to loopback, private or "
                                    "link-local addresses (hosts you name yourself are always allowed).")
MaxImageBytesOpt = typer.Option(200_000_000, "--max-image-bytes", help="Largest image file accepted (bytes).")
_LIMITS: dict = {}          # ClientConfig fields set by the options above, while a command runs
_IMAGE_LIMITS: dict = {}     # ImageConfig fields


def limit_options(fn):
    """Adds --deadline, --max-answer-bytes, --max-image-bytes and --allow-private-hosts to a fetching command."""
    sig = inspect.signature(fn)
    extra = [_kw("deadline", DeadlineOpt, Optional[float]), _kw("max_answer_bytes", MaxAnswerBytesOpt, int),
             _kw("allow_private_hosts", AllowPrivateOpt, bool), _kw("max_image_bytes", MaxImageBytesOpt, int)]

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


@dataclass(frozen=True)
class Fetching:
    """The options every crawl command ends with (see crawl_options)."""
    rate: float
    concurrency: int
    user_agent: Optional[str]
    retries: int
    timeout: float
    block_pause: float
    workers: Optional[int]
    name: str
    home: Optional[Path]


def crawl_options(name: str, rate=RateOpt):
    """Adds the crawl commands' common tail to a command: --rate (or the source's own `rate` option),
    --concurrency, --user-agent, --retries, --timeout, --block-pause, --workers, --name (default `name`), --home,
    then @limit_options. The command receives them as one `fetching: Fetching` argument."""
    def decorate(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "fetching"]
        extra = [_kw("rate", rate, float), _kw("concurrency", ConcurrencyOpt, int),
                 _kw("user_agent", UserAgentOpt, Optional[str]), _kw("retries", RetriesOpt, int),
                 _kw("timeout", TimeoutOpt, float), _kw("block_pause", BlockPauseOpt, float),
                 _kw("workers", WorkersOpt, Optional[int]), _kw("name", typer.Option(name, help="Manifest name."), str),
                 _kw("home", HomeOpt, Optional[Path])]
        fields = [p.name for p in extra]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            fetching = Fetching(**{f: kwargs.pop(f) for f in fields})
            return fn(*args, fetching=fetching, **kwargs)
        wrapper.__signature__ = sig.replace(parameters=[*own, *extra])
        return limit_options(wrapper)
    return decorate


def client_cfg(rate: float, concurrency: int, user_agent: Optional[str], retries: int, timeout: float,
               block_pause: float, trusted: tuple = ()):
    from artdata.harvest.client import ClientConfig, DEFAULT_USER_AGENT
    return ClientConfig(rate=rate, concurrency=concurrency, user_agent=user_agent or DEFAULT_USER_AGENT,
                        retries=retries, timeout=timeout, block_pause=block_pause, trusted_hosts=trusted, **_LIMITS)


def harvest_cfg(f: Fetching, image_size: int, limit: Optional[int], metadata_only: bool = False,
                retry_failed: bool = False, headers: tuple = (), keep_statuses: tuple | None = None):
    """The HarvestConfig of a crawl command from its shared options (checked here, before any request)."""
    from dataclasses import replace
    from artdata.datasets.images import ImageConfig
    from artdata.harvest.runner import HarvestConfig
    client = client_cfg(f.rate, f.concurrency, f.user_agent, f.retries, f.timeout, f.block_pause)
    if headers:
        client = replace(client, headers=headers)
    return HarvestConfig(manifest=f.name, image=ImageConfig(size=image_size, **_IMAGE_LIMITS), client=client,
                         metadata_only=metadata_only, retry_failed=retry_failed, limit=limit, workers=f.workers,
                         keep_statuses=keep_statuses)
