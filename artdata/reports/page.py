"""The page helpers both reports share: figures (matplotlib, Agg), images embedded as data URIs, tables, and
one self-contained HTML page written atomically next to a JSON of every number drawn."""
from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

from artdata.datasets.images import ImageStore


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return path


def count_axis(ax, axis: str = "y") -> None:
    """An axis of counts: integer ticks only (a count of 2 reads 0, 1, 2, never 0.25 steps)."""
    from matplotlib.ticker import MaxNLocator
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_gid(f"count:{axis}")          # count_ticks() finds it again


def count_ticks(fig) -> list[float]:
    """The tick values drawn on the figure's count axes (inside the view limits), for report.json; call it
    after save_figure, when the layout is final."""
    values = []
    for ax in fig.axes:
        gid = ax.get_gid() or ""
        if gid.startswith("count:"):
            axis = gid.split(":")[1]
            lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
            ticks = ax.get_yticks() if axis == "y" else ax.get_xticks()
            values += [float(t) for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    return values


def bar_numbers(ax, bars, values, fmt=str, fontsize: int = 9) -> list[str]:
    """The value written at the end of every bar, a zero or an empty bar included; returns the labels drawn."""
    drawn = ax.bar_label(bars, labels=[fmt(v) for v in values], padding=3, fontsize=fontsize)
    return [t.get_text() for t in drawn]          # what is on the figure, for report.json


def short_label(text: str, width: int = 24, lines: int = 2) -> str:
    """A tick label wrapped to `width` columns, at most `lines` lines (the rest cut with an ellipsis), so it
    stays beside its own chart; the full text is in the page's tables."""
    import textwrap
    parts = textwrap.wrap(str(text), width, break_long_words=True) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][:width - 1].rstrip() + "\u2026"
    return "\n".join(parts)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def img_tag(path_or_bytes, alt: str, cls: str = "fig") -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="{data_uri(data, mime)}">'


def html_page(title: str, sections: list[tuple[str, str]], data: dict, note: str = "") -> str:
    """`note`: HTML shown in a box under the title (what a reader must know before reading the page)."""
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    note = f'<p class="note">{note}</p>' if note else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1200px}}
h1{{font-size:24px}} h2{{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}}
img.fig{{max-width:100%;border:1px solid #eee}} img.thumb{{width:96px;height:96px;object-fit:cover;margin:2px}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}}
.row{{margin:6px 0}} .cls{{display:inline-block;width:220px;vertical-align:top;font-weight:600}}
pre{{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}}
.note{{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;max-width:900px}}
th[scope=row]{{font-weight:600;background:#fafafa}} td.num{{text-align:right}}
@media (max-width:640px){{body{{margin:12px}} .cls{{display:block;width:auto;margin-bottom:2px}}}}
</style></head><body><h1>{html.escape(title)}</h1>{note}{body}
<script type="application/json" id="report-data">{html.escape(json.dumps(data, default=str))}</script>
<script>window.addEventListener('load',function(){{var i=document.images,n=0;for(var k=0;k<i.length;k++)
if(i[k].complete&&i[k].naturalWidth>0)n++;document.body.setAttribute('data-images-loaded',n);
document.body.setAttribute('data-images-total',i.length);}});</script>
</body></html>"""


def html_table(rows: list[list], header: list[str] | None = None) -> str:
    """`header`: the column names (a row of <th>); None for a table of `name, value` rows, whose first cell
    is the row's header (no header row at all, never an empty one)."""
    if header is not None and not any(str(h) for h in header):
        header = None
    def cell(c, first: bool) -> str:
        text = html.escape(str(c))
        if first and header is None:
            return f'<th scope="row">{text}</th>'
        number = header is not None and isinstance(c, (int, float)) and not isinstance(c, bool)
        return f'<td class="num">{text}</td>' if number else f"<td>{text}</td>"
    head = "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(c, i == 0) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def write_page(out: Path, page: str, data: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    tmp = out / "index.html.part"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out / "index.html")
    return (out / "index.html").resolve()      # printed whole: the same absolute path for every report


def harvest_ancestors(manifests: Path, m) -> list:
    """Every harvest (a manifest without a recipe) that manifest `m` was built from, by `lineage.parents`,
    those that are in the `manifests` folder."""
    from artdata import ArtdataError
    from artdata.datasets.manifest import load
    found, todo, seen = [], [m], set()
    while todo and len(seen) < 100:
        x = todo.pop(0)
        if x.ref in seen:
            continue
        seen.add(x.ref)
        lin = x.card.get("lineage") or {}
        if not lin.get("recipe"):
            found.append(x)
            continue
        for ref in lin.get("parents") or []:
            try:
                todo.append(load(manifests, ref))
            except ArtdataError:
                pass
    return found


def synthetic_images(manifests: Path, ref) -> dict:
    """{harvest ref: what made its images} for the harvests behind manifest `ref` (a reference or a Manifest)
    whose card says their images are not the museum's (`lineage.synthetic_images`: the demo's, drawn by the
    mirror); {} when none does or the manifest is not here."""
    from artdata import ArtdataError
    from artdata.datasets.manifest import load
    try:
        m = load(manifests, ref) if isinstance(ref, str) else ref
    except ArtdataError:
        return {}
    return {a.ref: str(a.card["lineage"]["synthetic_images"]) for a in harvest_ancestors(manifests, m)
            if (a.card.get("lineage") or {}).get("synthetic_images")}


def synthetic_note(synthetic: dict) -> str:
    """The page's note (HTML) for synthetic_images(): what a reader must know before looking at any picture."""
    if not synthetic:
        return ""
    by_note: dict[str, list[str]] = {}
    for ref, what in synthetic.items():
        by_note.setdefault(what, []).append(ref)
    said = "; those of ".join(", ".join(html.escape(r) for r in refs) + " were " + html.escape(what)
                              for what, refs in by_note.items())
    return ("<b>These are not the museums' pictures.</b> Every image and thumbnail on this page stands in for "
            f"one: the images of {said}. The records, counts and classes are the data.")


SYNTHETIC_SHORT = '<p class="note">Generated stand-ins, not the museums\' pictures (see the note at the top).</p>'


def thumbnail(store: ImageStore, key: str, side: int = 128) -> bytes | None:
    from PIL import Image
    try:
        im = Image.open(io.BytesIO(store.get(key)))
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
        im.thumbnail((side, side))
    except (OSError, ValueError):
        return None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return buf.getvalue()
