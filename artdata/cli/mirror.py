"""`artdata mirror serve` (the loopback mirror, for trying things out) and `artdata demo` (the whole pipeline
offline against it)."""
from __future__ import annotations

from pathlib import Path

import typer

from artdata import ArtdataError
from artdata.cli.options import PLAIN

mirror_app = typer.Typer(**PLAIN, help="The loopback mirror of every site artdata harvests: the Met, Tate, the Art "
                                       "Institute of Chicago, Cleveland, the NGA, a IIIF collection and findartinfo "
                                       "(for demos and tests).",
                         no_args_is_help=True)


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
             f"IIIF:      {api}/iiif/3/collection.json   (crawl iiif ...; /iiif/2/ for Presentation 2)",
             "           one sub-collection per department, e.g. the paintings the demo harvests:",
             f"           {api}/iiif/3/collection/european-paintings.json"]
    if hasattr(m, "findartinfo"):
        lines.append(f"findartinfo: {api} (e.g. /english/A/browse-by-artist.html)")
    return lines


def demo(out: Path = typer.Option(Path("artdata-demo"), help="Folder for everything the demo writes."),
         objects: int = typer.Option(400, help="Met objects to harvest."),
         tate: int = typer.Option(300, help="Tate works to harvest."),
         quick: bool = typer.Option(False, help="Smaller and faster (for tests)."),
         ):
    """The whole pipeline offline: starts the mirror, harvests, splits, trains, reports."""
    from artdata.demo import run_demo
    run_demo(out, met_objects=objects, tate_works=tate, quick=quick)


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.add_typer(mirror_app, name="mirror")
