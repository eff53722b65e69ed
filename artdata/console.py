"""Progress displays and summaries (rich), kept out of the library's logic."""
from __future__ import annotations

import sys
import time
from collections import Counter

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# soft_wrap: a long line (a path, a URL) is printed whole and the terminal folds it, so it can be copied or
# clicked; rich would otherwise cut it into lines at the console's width
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class HarvestProgress:
    """done / total, rate, counts by status, ETA; quiet when stderr is not a terminal."""

    def __init__(self, description: str, enabled: bool | None = None):
        self.description = description
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.counts: Counter = Counter()
        self._p: Progress | None = None
        self._task = None
        self._t0 = time.monotonic()
        self._done0 = 0

    def start(self, total: int, done: int) -> None:
        self._done0 = done
        if done:
            console.print(f"[dim]{self.description}: resuming, {done} of {total} already done[/dim]")
        if not self.enabled:
            return
        self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                           TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                           TimeRemainingColumn(), console=console, transient=False)
        self._p.start()
        self._task = self._p.add_task(self.description, total=total, completed=done, rate="", counts="")

    def advance(self, status: str) -> None:
        self.counts[status] += 1
        if self._p is None:
            return
        n = sum(self.counts.values())
        rate = n / max(1e-6, time.monotonic() - self._t0)
        self._p.update(self._task, advance=1, rate=f"{rate:.1f}/s",
                       counts=" ".join(f"{k}:{v}" for k, v in sorted(self.counts.items())))

    def note(self, text: str) -> None:
        console.print(text, style="yellow", markup=False, highlight=False)    # URLs and "[::1]" are not markup

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


def counts_line(counts) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
