"""The `artdata` command line: parses options and calls the library; nothing else lives here.

Library errors (ArtdataError) become one line on stderr (`Error: ...`) and exit code 1.
Heavy imports (httpx, pandas, torch) happen inside the command that needs them.

One module per command group, each with a `register(app)`: crawl (crawl SOURCE), manifests (manifests ...),
splits (build-split, import-folder), train (train, tune, evaluate), reports (report, explain), mirror (mirror
serve, demo); the options several commands share are declared once in options.
"""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from artdata import ArtdataError
from artdata.cli import crawl, help, manifests, mirror, reports, splits, train
from artdata.cli.options import PLAIN

help.install()

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


app = typer.Typer(cls=ArtdataGroup, **PLAIN, help="Harvest museum collections and auction listings into versioned image datasets, "
                       "split them, and train classifiers on them.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
# the help lists the top-level commands in the order registered, then the groups in theirs
for group in (splits, train, reports, crawl, manifests, mirror):
    group.register(app)


def main() -> None:
    app(prog_name="artdata")


if __name__ == "__main__":
    main()
