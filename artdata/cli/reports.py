"""`artdata report` (a dataset's or a training run's page) and `artdata explain` (what a trained model looks at)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from artdata.cli.options import HomeOpt, resolve_home


def report_cmd(target: str = typer.Argument(..., help="A manifest NAME[@VERSION], or a training run folder."),
               out: Optional[Path] = typer.Option(None, help="Folder for the page and figures [a dataset: "
                                                             "HOME/reports/NAME-VERSION; a run: RUN/report]."),
               home: Optional[Path] = HomeOpt):
    """A self-contained HTML page (and PNG figures) for a dataset or a training run."""
    from artdata.reports.report import report
    typer.echo(f"report: {report(resolve_home(home), target, out).resolve()}")   # absolute, like every page path


def explain(run: Path = typer.Argument(..., help="A training run folder."),
            images: Optional[str] = typer.Option(None, help="Images to explain: source:source_id or image keys, "
                                                            "comma-separated [--per-class of each class]."),
            per_class: int = typer.Option(2, help="Examples per class when --images is not given (a right and a "
                                                  "wrong prediction while there are)."),
            split: str = typer.Option("test", help="Split whose images and class embeddings are used."),
            device: str = typer.Option("auto", help="auto | cpu | cuda (auto: a GPU when there is one)."),
            out: Optional[Path] = typer.Option(None, help="Folder [RUN/explain]."),
            home: Optional[Path] = HomeOpt):
    """Saliency maps, feature-map overlays and class-embedding distances for a trained image model."""
    from artdata.reports.explain import explain as run_explain
    path = run_explain(run, resolve_home(home) if home else None, [i for i in (images or "").split(",") if i] or None,
                       per_class, split, device, out)
    typer.echo(f"explain: {path.resolve()}")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command()(explain)
