"""Help text as it reads at 80 columns: click wraps an option's help with Python's TextWrapper defaults, which
cut long words and break at hyphens, so a default URL came out as `metmuseum.or` / `g/public/...` and
`[default: no-` / `metadata-only]`. Here URLs and words are never cut, nor split at their hyphens, and a
`[default: ...]` or `[env var: ...]` note stays on one line."""
from __future__ import annotations

import re
import textwrap

import click

try:        # typer >= 0.20 carries its own copy of click, and formats help with that one
    from typer import _click as _typer_click
except ImportError:   # an older typer: plain click
    _typer_click = click
_CLICKS = {id(m): m for m in (click, _typer_click)}.values()

_NOTE = re.compile(r"\[(?:default|env var|required)[^\]]*\]")


def wrap_text(text: str, width: int = 78, initial_indent: str = "", subsequent_indent: str = "",
              preserve_paragraphs: bool = False) -> str:
    """click.formatting.wrap_text, minus the cuts (same arguments)."""
    text = _NOTE.sub(lambda m: m.group(0).replace(" ", "\xa0"), text.expandtabs())
    wrapper = textwrap.TextWrapper(width, initial_indent=initial_indent, subsequent_indent=subsequent_indent,
                                   replace_whitespace=False, break_long_words=False, break_on_hyphens=False)
    paragraphs = [p for p in re.split(r"\n\s*\n", text)] if preserve_paragraphs else [text]
    out = []
    for i, p in enumerate(paragraphs):
        if preserve_paragraphs and p.startswith("\b"):      # click's "do not rewrap" marker
            out.append("\n".join(p[1:].lstrip("\n").splitlines()))
            continue
        wrapper.initial_indent = initial_indent if i == 0 else subsequent_indent
        out.append(wrapper.fill(re.sub(r"[ \t\n\r]+", " ", p).strip(" ")))    # not str.split(): it eats \xa0
    return "\n\n".join(out).replace("\xa0", " ")


def _formatter(base):
    class HelpFormatter(base):
        """click's formatter, wrapping option and command descriptions as above; a description with a word too
        long for its column (a default URL) goes on the lines below its option, indented less, so that nothing
        is cut and no line passes the width."""

        def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
            rows = [(str(a), str(b) if b else "") for a, b in rows]
            if not rows:
                return
            first_col = min(max(len(a) for a, _ in rows), col_max) + col_spacing
            text_width = max(self.width - first_col - 2, 10)
            for first, second in rows:
                self.write(f"{'':>{self.current_indent}}{first}")
                if not second:
                    self.write("\n")
                    continue
                lines = wrap_text(second, text_width, preserve_paragraphs=True).splitlines()
                if any(len(line) > text_width for line in lines):       # an unbreakable word: use the width
                    indent = self.current_indent + 4
                    lines = wrap_text(second, max(self.width - indent, 10), preserve_paragraphs=True).splitlines()
                    self.write("\n" + "".join(f"{'':>{indent}}{line}\n" if line else "\n" for line in lines))
                    continue
                if len(first) <= first_col - col_spacing:
                    self.write(" " * (first_col - len(first)))
                else:
                    self.write("\n" + " " * (first_col + self.current_indent))
                self.write(f"{lines[0]}\n" if lines else "\n")
                for line in lines[1:]:
                    self.write(f"{'':>{first_col + self.current_indent}}{line}\n" if line else "\n")
    return HelpFormatter


def install() -> None:
    """Every context of this process's command line formats its help with the formatter above."""
    for mod in _CLICKS:
        mod.Context.formatter_class = _formatter(mod.HelpFormatter)
