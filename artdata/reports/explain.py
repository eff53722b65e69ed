"""`artdata explain RUN`: what a trained image model looks at (the studies' analyses).

* saliency maps (medium study): |d score / d input|, max over channels, for chosen images;
* feature-map overlays (culture study): the last conv block's activations (ResNet-50: layer4's 2048
  channels) summed over channels, normalised, upsampled and laid over the image;
* examples drawn per class, a right and a wrong prediction of each while there are;
* per-class mean embeddings (culture study's "style distance"): the backbone's features averaged
  per class, their pairwise L2 distances, and a 2-D layout of the classes (classical MDS).
Writes PNGs, an explain.json of the numbers and a self-contained explain/index.html.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np

from artdata import ArtdataError
from artdata.paths import Home


def _overlay(image: np.ndarray, heat: np.ndarray) -> bytes:
    """uint8 HxWx3 image + HxW heat in [0,1] -> PNG of the blend (jet-like colours)."""
    from PIL import Image
    h = np.clip(heat, 0, 1)
    colour = np.stack([np.clip(1.5 - np.abs(4 * h - 3), 0, 1), np.clip(1.5 - np.abs(4 * h - 2), 0, 1),
                       np.clip(1.5 - np.abs(4 * h - 1), 0, 1)], -1)
    out = (0.5 * image / 255.0 + 0.5 * colour) * 255
    buf = io.BytesIO()
    Image.fromarray(out.clip(0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _norm(x: np.ndarray) -> np.ndarray:
    x = x - x.min()
    return x / x.max() if x.max() > 0 else x


def classical_mds(d: np.ndarray, dims: int = 2) -> np.ndarray:
    n = d.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ (d ** 2) @ j
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1][:dims]
    return vecs[:, order] * np.sqrt(np.maximum(vals[order], 0))


def pick_examples(targets: list[int], preds: list[int], per_class: int) -> list[int]:
    """Positions of up to `per_class` examples of every class, alternating a right and a wrong prediction
    while both are left (so each class shows what the model gets right and what it confuses)."""
    chosen = []
    for c in sorted(set(targets)):
        right = [i for i, (t, p) in enumerate(zip(targets, preds)) if t == c and p == c]
        wrong = [i for i, (t, p) in enumerate(zip(targets, preds)) if t == c and p != c]
        picked = []
        while len(picked) < per_class and (right or wrong):
            for pool in (right, wrong):
                if pool and len(picked) < per_class:
                    picked.append(pool.pop(0))
        chosen += picked
    return chosen


def explain(run: Path, home: Home | None = None, images: list[str] | None = None, per_class: int = 2,
            split: str = "test", device: str = "auto", out: Path | None = None) -> Path:
    import torch
    import torch.nn.functional as F
    from artdata.datasets.images import ImageStore
    from artdata.reports.page import SYNTHETIC_SHORT, html_page, img_tag, pyplot, save_figure, synthetic_images, \
        synthetic_note, write_page
    from artdata.train import models as M
    from artdata.train.data import BatchTransform, create_loader, decode
    from artdata.train.loop import load_run
    lr = load_run(str(run), str(home.root) if home else None, device)
    model, classes, dcfg = lr.model, lr.classes, lr.dcfg
    if lr.multi:
        raise ArtdataError(f"{run}: explain works on single-label runs")
    if per_class < 1:
        raise ArtdataError("--per-class must be at least 1")
    store = ImageStore(lr.home.images)
    data = lr.splits[split] if lr.splits.get(split) and lr.splits[split].keys else lr.splits["train"]
    by_id = dict(zip(data.ids, data.keys))
    if images:
        missing = [i for i in images if i not in by_id and i not in set(data.keys)]
        if missing:
            raise ArtdataError(f"image(s) not in the {split} split: {', '.join(missing[:5])} "
                               f"(give source:source_id as in the manifest, or an image key)")
    try:
        layer_name, layer = M.last_conv_block(model)
    except ArtdataError:
        raise ArtdataError(f"{run}: the model has no convolution layer to explain") from None
    out = Path(out) if out else Path(run) / "explain"
    out.mkdir(parents=True, exist_ok=True)
    evalt = BatchTransform(dcfg, train=False).to(lr.device)

    # one pass over the split: per-class mean embeddings, and every image's prediction
    loader = create_loader(data, store, dcfg, 32, False, 0)
    sums, n, targets_all, preds_all, index_all = {}, {}, [], [], []
    with torch.no_grad():
        for imgs, targets, _, idx in loader:
            if imgs is None:
                continue
            f = torch.flatten(model.backbone(evalt(imgs.to(lr.device))), 1)
            preds_all += model.head(f).argmax(1).tolist()
            targets_all += targets.tolist()
            index_all += idx.tolist()
            for v, t in zip(f.cpu().numpy(), targets.tolist()):
                sums[t] = sums.get(t, 0) + v
                n[t] = n.get(t, 0) + 1
    if images:
        keys = [by_id.get(i, i) for i in images]
    else:
        keys = [data.keys[index_all[j]] for j in pick_examples(targets_all, preds_all, per_class)]
    truth = dict(zip(data.keys, data.targets))

    acts = {}
    hook = layer.register_forward_hook(lambda mod, i, o: acts.__setitem__("last", o))
    blocks, per_image, channels = [], [], None
    for key in keys:
        raw = decode(store.get(key), dcfg.load_size)
        x = evalt(torch.from_numpy(raw).permute(2, 0, 1)[None].to(lr.device)).requires_grad_(True)
        logits = model(x)
        cls = int(logits.argmax(1))
        logits[0, cls].backward()
        sal = x.grad.abs().amax(1)[0].cpu().numpy()
        fmap = acts["last"].detach().float()
        channels = fmap.shape[1]
        fmap = F.interpolate(fmap.sum(1, keepdim=True), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)[0, 0].cpu().numpy()
        shown = np.asarray(_resize(raw, x.shape[-1]))
        sal_png, fmap_png = _overlay(shown, _norm(sal)), _overlay(shown, _norm(fmap))
        (out / f"saliency_{key[:12]}.png").write_bytes(sal_png)
        (out / f"featuremap_{key[:12]}.png").write_bytes(fmap_png)
        true = classes[truth[key]] if key in truth else None
        per_image.append({"image_key": key, "true": true, "predicted": classes[cls], "correct": true == classes[cls]})
        mark = "right" if true == classes[cls] else "wrong"
        blocks.append(f'<div class="row"><span class="cls">{html.escape(str(true))} &rarr; '
                      f'{html.escape(classes[cls])} ({mark})</span>'
                      f'{img_tag(_png(shown), "image", "thumb")}{img_tag(sal_png, "saliency", "thumb")}'
                      f'{img_tag(fmap_png, "feature map", "thumb")}</div>')
    hook.remove()
    present = sorted(sums)
    means = np.stack([sums[t] / n[t] for t in present])
    dist = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))
    xy = classical_mds(dist) if len(present) > 2 else np.c_[np.arange(len(present)), np.zeros(len(present))]
    names = [classes[t] for t in present]
    plt = pyplot()
    from artdata.reports.page import short_label
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    im = axes[0].imshow(dist, cmap="viridis")
    axes[0].set_xticks(range(len(names)), [short_label(x) for x in names], rotation=45, ha="right")
    axes[0].set_yticks(range(len(names)), [short_label(x) for x in names])
    axes[0].set_title("distance between class mean embeddings")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    axes[1].scatter(xy[:, 0], xy[:, 1], s=60)
    for (a, b), text, right in _layout_labels(xy, names):
        axes[1].annotate(text, (a, b), xytext=(-6 if right else 6, 4), textcoords="offset points", fontsize=9,
                         ha="right" if right else "left", va="bottom")
    axes[1].margins(0.15)
    axes[1].set_title("classes laid out by embedding distance (MDS)")
    png = save_figure(fig, out / "class_distances.png")
    result = {"run": str(run), "images": per_image, "classes": names, "distances": dist.round(6).tolist(),
              "layout": xy.round(6).tolist(), "class_counts": [n[t] for t in present], "split": split,
              "feature_layer": layer_name, "feature_channels": channels}
    synthetic = synthetic_images(lr.home.manifests, lr.args.manifest) if lr.args.manifest else {}
    result["synthetic_images"] = synthetic
    sections = [(f"Image, saliency, feature map of layer {layer_name} (true → predicted)",
                 (SYNTHETIC_SHORT if synthetic else "") + "".join(blocks)),
                ("Class distances (mean embeddings)", img_tag(png, "class distances"))]
    write_page(out, html_page(f"Explain {Path(run).name}", sections, result, note=synthetic_note(synthetic)), result)
    (out / "explain.json").write_text(json.dumps(result, indent=2))
    return (out / "index.html").resolve()


def _layout_labels(xy: np.ndarray, names: list[str]):
    """One label per place on the MDS plot: classes (nearly) on the same point share one label, one name a
    line, instead of being drawn over each other; a label right of the middle is written leftwards, so it
    stays inside the plot. -> [((x, y), text, right-aligned)]"""
    span = float(np.ptp(xy, axis=0).max()) if len(xy) else 0.0
    near = 0.04 * span if span > 0 else 1e-9
    groups: list[list[int]] = []
    for i in range(len(xy)):
        for g in groups:
            if np.abs(xy[g[0]] - xy[i]).max() <= near:
                g.append(i)
                break
        else:
            groups.append([i])
    mid = float(xy[:, 0].min() + xy[:, 0].max()) / 2 if len(xy) else 0.0
    return [((float(xy[g[0], 0]), float(xy[g[0], 1])), "\n".join(names[i] for i in g), bool(xy[g[0], 0] > mid))
            for g in groups]


def _resize(arr: np.ndarray, side: int):
    from PIL import Image
    return Image.fromarray(arr).resize((side, side), Image.Resampling.BILINEAR)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()
