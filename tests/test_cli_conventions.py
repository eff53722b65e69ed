"""One name and one default per concept across the crawl commands, and help that reads at 80 columns.
(#25: the rights filter had five names and two defaults, classification three spellings, findartinfo none of
the fetching options.) A new crawl command that strays from these fails here."""
import re

import pytest
import typer
from typer.testing import CliRunner

from artdata.cli import app

CRAWL = typer.main.get_command(app).commands["crawl"]
SOURCES = sorted(CRAWL.commands)
MUSEUMS = ["aic", "cleveland", "met", "nga", "tate"]      # the sources that have a rights filter
RIGHTS_SPELLINGS = {"--public-domain-only", "--cc0-only", "--no-copyright-restricted", "--open-access-only",
                    "--all-rights"}


def visible(cmd):
    return [p for p in cmd.params if not getattr(p, "hidden", False)]


def names(p):
    return set(p.opts) | set(getattr(p, "secondary_opts", []))


def test_every_source_is_checked():
    assert SOURCES == ["aic", "cleveland", "findartinfo", "iiif", "met", "nga", "tate", "urls"]


@pytest.mark.parametrize("source", SOURCES)
def test_fetching_options_have_one_name_everywhere(source):
    opts = {n for p in visible(CRAWL.commands[source]) for n in names(p)}
    for name in ("--limit", "--rate", "--retries", "--timeout", "--user-agent", "--name", "--home"):
        assert name in opts, f"crawl {source} lacks {name}"
    if source != "findartinfo":       # a Scrapy crawl resumes from its JOBDIR: there is nothing to retry by id
        assert "--retry-failed" in opts and "--deadline" in opts and "--allow-private-hosts" in opts


@pytest.mark.parametrize("source", SOURCES)
def test_the_rights_filter_is_open_access_only_on_by_default(source):
    rights = [p for p in visible(CRAWL.commands[source]) if names(p) & RIGHTS_SPELLINGS]
    if source not in MUSEUMS:
        assert rights == []
        return
    assert len(rights) == 1, [names(p) for p in rights]
    p = rights[0]
    assert p.opts == ["--open-access-only"] and p.secondary_opts == ["--all-rights"] and p.default is True


@pytest.mark.parametrize("source", SOURCES)
def test_classification_and_has_image_spellings(source):
    params = visible(CRAWL.commands[source])
    all_names = {n for p in params for n in names(p)}
    assert "--type" not in all_names and "--has-thumbnail" not in all_names
    for p in params:
        if "--classification" in p.opts:
            assert "-c" in p.opts, f"crawl {source}: --classification without -c"


@pytest.mark.parametrize("argv, field, value", [
    (["cleveland", "--type", "Painting", "--cc0-only"], "type_alias", ["Painting"]),
    (["met", "--public-domain-only"], "rights_alias", True),
    (["tate", "t.parquet", "--has-thumbnail", "--no-copyright-restricted"], "has_thumbnail_alias", True),
    (["aic", "--all-rights"], "open_access_only", False),
])
def test_old_spellings_still_parse(argv, field, value):
    cmd = CRAWL.commands[argv[0]]
    ctx = cmd.make_context(argv[0], argv[1:])
    assert ctx.params[field] == value


def _help(*args):
    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert r.exit_code == 0, r.output
    return r.output


COMMANDS = [("crawl", s) for s in SOURCES] + [("manifests", "pull"), ("manifests", "materialize"), ("train",),
                                              ("build-split",), ("explain",), ("mirror", "serve")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_at_80_columns_keeps_urls_and_defaults_whole(command):
    out = _help(*command)
    for line in out.splitlines():
        if "[default:" in line:
            assert "]" in line.split("[default:", 1)[1], f"a default note is cut: {line!r}"
        if "[env var:" in line:
            assert "]" in line.split("[env var:", 1)[1], f"an env var note is cut: {line!r}"
    cmd = typer.main.get_command(app)
    for part in command:
        cmd = cmd.commands[part]
    urls = {u for p in cmd.params for u in re.findall(r"https?://\S+", f"{p.help or ''} {p.default}")}
    for url in urls:
        assert url.rstrip(").,]") in out, f"{url} is cut in `{' '.join(command)} --help`"
