"""One training config per model of the five studies (`artdata train --config FILE` or `--config NAME`).

Each TOML file holds `artdata train` options (flags given on the command line override them); its header
comments name the study, the command that builds its dataset and the study's own figure. Installed, the
files live in the package `artdata.configs`, so `--config 003-culture-resnet50-finetune` finds them anywhere.
"""
