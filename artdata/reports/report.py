"""Reports people look at: one self-contained HTML page (figures and images embedded, opens
offline) plus the PNG figures and a report.json of every number drawn.

    dataset_report(home, "culture@3f2a")   -> <home>/reports/culture-3f2a/index.html
    run_report(Path("runs/x"))             -> runs/x/report/index.html
"""
from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import numpy as np

from artdata import ArtdataError
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import load
from artdata.paths import Home
from artdata.reports.page import (bar_numbers, count_axis, html_page, html_table, img_tag, pyplot, save_figure,
                                  count_ticks, harvest_ancestors, short_label, synthetic_images, synthetic_note, thumbnail, write_page,
                                  SYNTHETIC_SHORT)

GROUP_COLUMNS = ("label", "department", "medium", "classification", "culture")
THUMBS_PER_CLASS = 6
MAX_CLASSES_SHOWN = 20


# ---------------------------------------------------------------- dataset report

def dataset_report(home: Home, ref: str, out: Path | None = None) -> Path:
    m = load(home.manifests, ref)
    out = Path(out) if out else home.root / "reports" / f"{m.name}-{m.version}"
    _check_out(home, out)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    store = ImageStore(home.images)
    cols = [c for c in ("source", "source_id", "status", "error", "image_key", "orig_width", "orig_height",
                        *GROUP_COLUMNS, "split", "group") if c in m.card["columns"]]
    df = m.to_pandas(columns=cols)
    counts = m.card["counts"]
    data: dict = {"manifest": m.ref, "rows": counts["rows"], "by_status": counts.get("by_status", {}),
                  "failed_by_reason": counts.get("failed_by_reason", {}), "figures": {}}
    sections = [("Card", html_table([[k, v] for k, v in (("manifest", m.ref), ("rows", counts["rows"]),
                                                         ("created", m.card["created_at"]),
                                                         ("description", m.card.get("description", "")))]))]
    # images that are not the museums' pictures (the demo's, drawn by the mirror): the harvests' cards say so
    synthetic = synthetic_images(home.manifests, m)
    note = synthetic_note(synthetic)
    if synthetic:
        data["synthetic_images"] = synthetic
    # harvest status: of the harvests this manifest comes from (a split's own rows are all usable), summed
    harvests = harvest_ancestors(home.manifests, m) or [m]
    by_status, by_reason = Counter(), Counter()
    for h in harvests:
        by_status.update(h.card["counts"].get("by_status", {}))
        by_reason.update(h.card["counts"].get("failed_by_reason", {}))
    data["harvest"] = {"manifest": harvests[0].ref if len(harvests) == 1 else [h.ref for h in harvests],
                       "by_status": dict(sorted(by_status.items())), "failed_by_reason": dict(by_reason.most_common())}
    fig, info = status_figure(data["harvest"]["by_status"], data["harvest"]["failed_by_reason"],
                              f"records by status ({harvests[0].ref if len(harvests) == 1 else f'{len(harvests)} harvests'})")
    png = save_figure(fig, out / "status.png")
    data["figures"]["status"] = {**info, "count_ticks": count_ticks(fig)}
    fr = data["harvest"]["failed_by_reason"]
    sections.append(("Harvest status", img_tag(png, "status counts")
                     + (html_table([[r, c] for r, c in fr.items()], ["failed, by reason", "records"]) if fr else "")))
    # class counts per cleaning step
    steps = [s for s in m.card.get("steps", []) if s.get("classes")]
    group = next((c for c in GROUP_COLUMNS if c in df.columns and df[c].notna().any()), None)
    if steps:
        classes = sorted({c for s in steps for c in s["classes"]})[:MAX_CLASSES_SHOWN]
        data["steps"] = [{"step": s["step"], "rows": s["rows"], "dropped": s["dropped"], "classes": s.get("classes")}
                         for s in m.card["steps"]]
        fig, ax = plt.subplots(figsize=(11, 0.22 * len(classes) * len(steps) + 1.8), layout="constrained")
        width = 0.8 / len(steps)
        drawn = []
        for i, s in enumerate(steps):
            values = [s["classes"].get(c, 0) for c in classes]
            bars = ax.barh(np.arange(len(classes)) + i * width, values, height=width, label=short_label(s["step"], 60, 1))
            drawn += bar_numbers(ax, bars, values, fontsize=7)
        ax.set_yticks(np.arange(len(classes)) + 0.4 - width / 2, [short_label(c) for c in classes])
        ax.invert_yaxis()
        ax.margins(x=0.08)
        count_axis(ax, "x")
        ax.set_xlabel("records")
        fig.legend(fontsize=8, loc="outside lower center", ncol=min(3, len(steps)), frameon=False)
        ax.set_title("records per class after each cleaning step")
        png = save_figure(fig, out / "classes.png")
        data["figures"]["classes"] = {"count_ticks": count_ticks(fig), "bar_labels": drawn}
        rows = [[s["step"], s["rows"], ", ".join(f"{k} {v}" for k, v in s["dropped"].items())] for s in m.card["steps"]]
        sections.append(("Cleaning steps", img_tag(png, "class counts per step")
                         + html_table(rows, ["step", "rows kept", "dropped (reason count)"])))
    by_source = m.card.get("classes_by_source")
    if by_source:             # a dataset merged from several museums: what each one brought
        data["classes_by_source"] = by_source
        sources = sorted(by_source)
        classes_all = sorted({c for v in by_source.values() for c in v})
        rows = [[c] + [by_source[src].get(c, 0) for src in sources] + [sum(by_source[src].get(c, 0) for src in sources)]
                for c in classes_all]
        sections.append(("Classes per source", html_table(rows, ["class", *sources, "all"])))
        mapping = m.card.get("field_mapping") or {}
        if mapping:         # which museum field fed each schema field the recipe read
            data["field_mapping"] = mapping
            fields = sorted({f for v in mapping.values() for f in v})
            rows = [[f] + [mapping.get(src, {}).get(f, "") for src in sorted(mapping)] for f in fields]
            sections.append(("Fields per source", html_table(rows, ["schema field", *sorted(mapping)])))
    if not steps and group:
        top = Counter(df[group].dropna()).most_common(MAX_CLASSES_SHOWN)
        data["classes"] = {"column": group, "counts": dict(top)}
        fig, ax = plt.subplots(figsize=(11, 0.4 * len(top) + 1.5), layout="constrained")
        bars = ax.barh(range(len(top)), [v for _, v in top], color="#55a868")
        ax.set_yticks(range(len(top)), [short_label(k, 30) for k, _ in top])
        drawn = bar_numbers(ax, bars, [v for _, v in top])
        ax.invert_yaxis()
        ax.margins(x=0.08)
        count_axis(ax, "x")
        ax.set_xlabel("records")
        ax.set_title(f"records per {group} (top {len(top)})")
        png = save_figure(fig, out / "classes.png")
        data["figures"]["classes"] = {"count_ticks": count_ticks(fig), "bar_labels": drawn}
        sections.append((f"Records per {group}", img_tag(png, "class counts")))
    # sizes
    ok = df[(df["status"] == "ok") & df["orig_width"].notna()] if "orig_width" in df.columns else df.iloc[0:0]
    if len(ok):
        w, h = ok["orig_width"].astype(float).to_numpy(), ok["orig_height"].astype(float).to_numpy()
        data["sizes"] = {"images": int(len(ok)), "width_median": float(np.median(w)),
                         "height_median": float(np.median(h)), "aspect_median": float(np.median(w / h))}
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
        for ax, vals, t in zip(axes, (w, h, w / h), ("width (px)", "height (px)", "aspect ratio (w/h)")):
            ax.hist(vals, bins=30, color="#8172b2")
            ax.set_title(t)
            count_axis(ax, "y")
        axes[0].set_ylabel("images")
        png = save_figure(fig, out / "sizes.png")
        data["figures"]["sizes"] = {"count_ticks": count_ticks(fig)}
        sections.append(("Image sizes (as served)", img_tag(png, "size histograms")))
    # thumbnails per class
    if group and len(ok):
        blocks = [SYNTHETIC_SHORT] if note else []
        sample = ok.sort_values("source_id")
        for cls, part in list(sample.groupby(group))[:MAX_CLASSES_SHOWN]:
            thumbs = [t for t in (thumbnail(store, k) for k in part["image_key"].head(THUMBS_PER_CLASS)) if t]
            blocks.append(f'<div class="row"><span class="cls">{html.escape(str(cls))} ({len(part)})</span>'
                          + "".join(img_tag(t, str(cls), "thumb") for t in thumbs) + "</div>")
        sections.append((f"Samples per {group}", "".join(blocks)))
    # the largest groups: the records of one artwork, kept in one split (splits/groups.py)
    groups = m.card.get("groups") or {}
    if groups and "group" in df.columns:
        data["groups"] = groups
        blocks = [f"<p>{groups['count']} groups ({html.escape(str(groups['by']))}) for {len(df)} records, the largest "
                  f"{groups['largest']}; near-duplicate image pairs {groups['near_duplicate_pairs']}; groups in two "
                  f"splits: {groups['straddling']}</p>"]
        for g in groups.get("largest_groups", []):
            part = df[df["group"] == g["group"]]
            cells = []
            for r in part.itertuples():
                t = thumbnail(store, r.image_key) if isinstance(r.image_key, str) else None
                label = f"{r.source}:{r.source_id} ({getattr(r, 'split', '')})"
                cells.append(img_tag(t, label, "thumb") if t else f"<span>{html.escape(label)}</span>")
            blocks.append(f'<div class="row"><span class="cls">{html.escape(str(g["group"]))} ({g["records"]})</span>'
                          + "".join(cells) + "</div>")
        sections.append(("Largest groups (each kept whole in one split)", "".join(blocks)))
    sections.append(("Lineage", f"<pre>{html.escape(json.dumps(m.card.get('lineage', {}), indent=2, default=str))}</pre>"))
    return write_page(out, html_page(f"Dataset {m.ref}", sections, data, note=note), data)


def status_figure(by_status: dict, failed_by_reason: dict, title: str):
    """Records by status beside failures by reason; counts on integer axes with the number on every bar, the
    reasons wrapped beside their own chart (the full text is in the page's table). -> (figure, numbers drawn)"""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained", width_ratios=(1, 1.2))
    bars = axes[0].bar(list(by_status), list(by_status.values()), color="#4c72b0")
    info = {"bar_labels": bar_numbers(axes[0], bars, list(by_status.values()))}
    axes[0].margins(y=0.12)
    count_axis(axes[0], "y")
    axes[0].set_ylabel("records")
    axes[0].set_title(title)
    reasons = list(failed_by_reason)[:12]
    if reasons:
        values = [failed_by_reason[r] for r in reasons]
        bars = axes[1].barh(range(len(reasons)), values, height=0.6, color="#c44e52")
        axes[1].set_yticks(range(len(reasons)), [short_label(r, 28) for r in reasons], fontsize=9)
        axes[1].invert_yaxis()
        axes[1].margins(x=0.12)
        info["bar_labels"] += bar_numbers(axes[1], bars, values)
        count_axis(axes[1], "x")
        axes[1].set_xlabel("records")
    else:
        axes[1].text(0.5, 0.5, "no failures", ha="center", va="center", fontsize=14)
        axes[1].set_axis_off()
    axes[1].set_title("failed, by reason")
    return fig, info


# ---------------------------------------------------------------- run report

def run_report(run: Path, home: Home | None = None, out: Path | None = None) -> Path:
    run = Path(run)
    if not (run / "metrics.json").is_file() or not (run / "final.json").is_file():
        raise ArtdataError(f"{run}: not a finished training run (metrics.json and final.json expected)")
    out = Path(out) if out else run / "report"
    _check_out(home or Home.resolve(), out)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    rows = json.loads((run / "metrics.json").read_text())["epochs"]
    final = json.loads((run / "final.json").read_text())
    classes = final["classes"]
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    run_home = home or Home.resolve(cfg.get("home"))
    synthetic = synthetic_images(run_home.manifests, final["manifest"]) if final.get("manifest") else {}
    note = synthetic_note(synthetic)
    data: dict = {"run": str(run), "synthetic_images": synthetic, "model": final.get("model"), "manifest": final.get("manifest"),
                  "test_top1": final.get("test_top1"), "test_top3": final.get("test_top3"), "curves": {}}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for split in ("train", "val"):
        r = [x for x in rows if x["split"] == split]
        if not r:
            continue
        ep = [x["epoch"] for x in r]
        data["curves"][f"{split}_loss"] = [x["loss"] for x in r]
        data["curves"][f"{split}_top1"] = [x.get("top1") for x in r]
        data["curves"]["epochs"] = ep
        axes[0].plot(ep, data["curves"][f"{split}_loss"], marker="o", label=split)
        axes[1].plot(ep, data["curves"][f"{split}_top1"], marker="o", label=split)
    axes[0].set_title("loss")
    axes[1].set_title("top-1 accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    sections = [("Summary", html_table([["model", final.get("model")], ["manifest", final.get("manifest")],
                                    ["test top-1", _fmt(final.get("test_top1"))]]
                                   + ([["test top-3", _fmt(final["test_top3"])]] if "test_top3" in final else [])
                                   + [["best epoch", final.get("best_epoch")]])),
                ("Learning curves", img_tag(save_figure(fig, out / "curves.png"), "learning curves"))]
    test = (final.get("splits") or {}).get("test") or {}
    if test.get("confusion"):
        cm = np.array(test["confusion"])
        data["confusion"] = cm.tolist()
        data["per_class"] = dict(zip(classes, test.get("per_class", [])))
        n = len(classes)
        fig, ax = plt.subplots(figsize=(max(5, 0.6 * n + 3), max(4, 0.6 * n + 2)))
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), [short_label(c) for c in classes], rotation=45, ha="right")
        ax.set_yticks(range(n), [short_label(c) for c in classes])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title("confusion matrix (test; counts, colour = row share)")
        conf_png = save_figure(fig, out / "confusion.png")
        fig, ax = plt.subplots(figsize=(8, 0.4 * n + 1.5), layout="constrained")
        acc = list(test.get("per_class", []))
        bars = ax.barh(range(n), [v or 0 for v in acc], color="#4c72b0")
        ax.set_yticks(range(n), [short_label(c, 30) for c in classes])
        # the number on every bar: a class at 0 reads "0.00", one without test images "no images"
        labels = bar_numbers(ax, bars, acc, fmt=lambda v: "no images" if v is None else f"{v:.2f}")
        ax.invert_yaxis()
        ax.set_xlim(0, 1.12)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_xlabel("accuracy (share of the class's test images predicted right)")
        ax.set_title("per-class accuracy (test)")
        data["figures"] = {"per_class": {"bar_labels": labels}}
        support = cm.sum(1)
        table = html_table([[c, int(support[i]), int(cm[i, i]), "-" if i >= len(acc) or acc[i] is None else f"{acc[i]:.3f}"]
                            for i, c in enumerate(classes)], ["class", "test images", "predicted right", "accuracy"])
        sections += [("Confusion matrix", img_tag(conf_png, "confusion matrix")),
                     ("Per-class accuracy", img_tag(save_figure(fig, out / "per_class.png"), "per-class accuracy")
                      + table)]
        pairs = sorted(((int(cm[i, j]), classes[i], classes[j]) for i in range(n) for j in range(n)
                        if i != j and cm[i, j] > 0), reverse=True)[:5]
        data["worst_pairs"] = [{"true": t, "predicted": p, "count": c} for c, t, p in pairs]
        if pairs:
            blocks = [SYNTHETIC_SHORT] if note else []
            preds = _predictions(run)
            store = ImageStore(run_home.images)
            for c, t, p in pairs:
                keys = [] if preds is None else preds[(preds["target"] == t) & (preds["pred"] == p)]["image_key"].head(6)
                thumbs = [x for x in (thumbnail(store, k) for k in keys) if x]
                blocks.append(f'<div class="row"><span class="cls">{html.escape(t)} → {html.escape(p)} ({c})</span>'
                              + "".join(img_tag(x, f"{t} as {p}", "thumb") for x in thumbs) + "</div>")
            sections.append(("Most confused pairs (true → predicted), with examples", "".join(blocks)))
    return write_page(out, html_page(f"Run {run.name}", sections, data, note=note), data)


def _predictions(run: Path):
    p = run / "predictions_test.parquet"
    if not p.is_file():
        return None
    import pandas as pd
    return pd.read_parquet(p)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _check_out(home: Home, out: Path | None) -> None:
    """--out never points into the manifests tree: versions there are immutable (their files are checksummed)."""
    if out is None:
        return
    manifests = home.manifests.resolve()
    where = Path(out).resolve()
    if where == manifests or manifests in where.parents:
        raise ArtdataError(f"--out {out}: inside the manifests folder {home.manifests}; versions there are "
                           f"immutable, write the report to another folder")


def report(home: Home, target: str, out: Path | None = None) -> Path:
    """A run folder -> run report; anything else -> a manifest reference."""
    p = Path(target)
    if p.is_dir() and (p / "metrics.json").is_file():
        return run_report(p, home, out)
    return dataset_report(home, target, out)


DEMO_PAGES = (("split_medium", "Tate medium split"), ("met", "Met harvest"))


def demo_stage(home: Home, results: dict, quick: bool = False) -> None:
    """The demo's pages, each printed once with what it shows (absolute paths: open them in a browser)."""
    from artdata.console import console
    console.rule("[bold]8. reports (open them in a browser)")
    for key, what in DEMO_PAGES:
        m = results.get(key)
        if m is not None:
            path = dataset_report(home, m.ref)
            results[f"report_{key}"] = path
            console.print(f"  dataset page, {what} {m.ref}: {path}")
    run = results.get("run")
    if run is not None:
        path = run_report(Path(run), home)
        results["report_run"] = path
        console.print(f"  training run page, {Path(run).name}: {path}")
        from artdata.reports.explain import explain
        exp = explain(Path(run), home, per_class=2)
        results["explain"] = exp
        console.print(f"  what the model looks at (saliency, feature maps): {exp}")
