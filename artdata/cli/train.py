"""`artdata train`, `artdata tune`, `artdata evaluate`: the thin trainer (artdata.train), imported only when one
of them runs (torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from artdata import ArtdataError
from artdata.cli.options import HomeOpt


def train(
    manifest: Optional[str] = typer.Option(None, help="Split manifest, NAME[@VERSION] [required, unless --config "
                                                      "or --shards gives it]."),
    shards: Optional[str] = typer.Option(None, help="Train from WebDataset shards instead of the image store: the "
                                                    "folder `manifests export --format webdataset` wrote (a path, "
                                                    "s3://..., https://...), streamed, never materialized."),
    model: Optional[str] = typer.Option(None, help="artnet | alexnet-like | dept-cnn-small | dept-cnn | tate-cnn | "
                                                   "vgg-inception | softmax | resnet18 | resnet50 | vgg16_bn | "
                                                   "alexnet | inception_v3 (the last five are torchvision's) "
                                                   "[required, unless --config gives it]."),
    mode: str = typer.Option("scratch", help="scratch | transfer (frozen backbone) | finetune (train all)."),
    epochs: int = typer.Option(10, help="Epochs."),
    batch_size: int = typer.Option(32, help="Batch size (per process)."),
    lr: float = typer.Option(0.01, help="Learning rate."),
    optimizer: str = typer.Option("sgd", help="sgd | adam | adamw."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    scheduler: str = typer.Option("none", help="none | step | plateau | cosine."),
    image_size: Optional[int] = typer.Option(None, help="Input side [the model's own]."),
    grayscale: Optional[bool] = typer.Option(None, "--grayscale/--color", help="Train on one grey channel or on "
                                             "colour [the model's own: grayscale for dept-cnn and dept-cnn-small, as "
                                             "the department study, colour for the rest]."),
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
    given = dict(manifest=manifest, shards=shards, model=model, mode=mode, epochs=epochs, batch_size=batch_size, lr=lr,
                 optimizer=optimizer, weight_decay=weight_decay, scheduler=scheduler, image_size=image_size,
                 grayscale=grayscale, amp=amp, channels_last=channels_last, device=device, workers=workers, seed=seed,
                 resume=resume, out=str(out) if out else None, weights=weights, head=head, head_width=head_width,
                 dropout=dropout, unfreeze_last=unfreeze_last, init_head=init_head, feature_cache=feature_cache,
                 augment=augment, max_steps=max_steps, run_name=run_name, home=str(home) if home else None)
    for k, v in given.items():   # flags given on the command line win over the file
        if k not in values or _given_on_command_line(ctx, k):
            values[k] = v
    if not (values.get("manifest") or values.get("shards")) or not values.get("model"):
        raise ArtdataError("train needs --manifest (or --shards) and --model (or a --config file naming them)")
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


def tune(
    manifest: str = typer.Option(..., help="Split manifest, NAME[@VERSION]."),
    model: str = typer.Option(..., help="Model to tune (see `artdata train --help`)."),
    trials: int = typer.Option(10, min=1, help="Random trials."),
    params: str = typer.Option("lr,dropout,head_width", help="What to search: lr, dropout, head_width, weight_decay."),
    mode: str = typer.Option("scratch", help="scratch | transfer | finetune."),
    epochs: int = typer.Option(5, help="Epochs per trial."),
    optimizer: str = typer.Option("sgd", help="sgd | adam | adamw (the default as `train`'s, so that a trial "
                                              "and a later `train` with its parameters agree)."),
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


def evaluate(run: Path = typer.Argument(..., help="A training run folder."),
             split: str = typer.Option("test", help="train | val | test."),
             device: str = typer.Option("auto", help="auto | cpu | cuda."),
             home: Optional[Path] = HomeOpt):
    """Evaluate a run's best checkpoint on a split (writes eval-<split>.json in the run)."""
    from artdata.train.loop import evaluate_run
    r = evaluate_run(str(run), split, str(home) if home else None, device)
    typer.echo(f"{run} on {split}: top1 {r['top1']:.3f}" + (f", top3 {r['top3']:.3f}" if "top3" in r else "")
               + f" ({r['count']} images)")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(tune)
    app.command()(evaluate)
