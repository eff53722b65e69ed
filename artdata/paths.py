"""Where artdata keeps things: one home folder (ARTDATA_HOME, default ./artdata-home).

    <home>/manifests/<name>/<version>/   versioned manifests (plain files: commit or share them)
    <home>/images/ab/cd/<sha256>.jpg     the content-addressed image store
    <home>/harvest/<job>/                resumable harvest journals
    <home>/runs/<run>/                   training runs
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "artdata-home"


@dataclass(frozen=True)
class Home:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> "Home":
        return cls(Path(home or os.environ.get("ARTDATA_HOME") or DEFAULT_HOME).expanduser().resolve())

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def harvest(self) -> Path:
        return self.root / "harvest"

    @property
    def runs(self) -> Path:
        return self.root / "runs"
