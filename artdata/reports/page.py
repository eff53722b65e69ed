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


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def img_tag(path_or_bytes, alt: str, cls: str = "fig") -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="{data_uri(data, mime)}">'


def html_page(title: str, sections: list[tuple[str, str]], data: dict) -> str:
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1200px}}
h1{{font-size:24px}} h2{{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}}
img.fig{{max-width:100%;border:1px solid #eee}} img.thumb{{width:96px;height:96px;object-fit:cover;margin:2px}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}}
.row{{margin:6px 0}} .cls{{display:inline-block;width:220px;vertical-align:top;font-weight:600}}
pre{{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}}
</style></head><body><h1>{html.escape(title)}</h1>{body}
<script type="application/json" id="report-data">{html.escape(json.dumps(data, default=str))}</script>
<script>window.addEventListener('load',function(){{var i=document.images,n=0;for(var k=0;k<i.length;k++)
if(i[k].complete&&i[k].naturalWidth>0)n++;document.body.setAttribute('data-images-loaded',n);
document.body.setAttribute('data-images-total',i.length);}});</script>
</body></html>"""


def html_table(rows: list[list], header: list[str]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def write_page(out: Path, page: str, data: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    tmp = out / "index.html.part"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out / "index.html")
    return out / "index.html"


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
