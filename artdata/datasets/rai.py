"""Croissant Responsible-AI fields (the `rai:` vocabulary, http://mlcommons.org/croissant/RAI/) from what
artdata knows of a version: its card, its records, and the cards of the versions it was built from.

Filled from the cards and records:
    rai:dataCollection              sources, harvest windows, selections, request rate, statuses, licences
    rai:dataCollectionType          Web API (museum APIs, IIIF), Secondary Data Analysis (published tables,
                                    dumps, image folders), Web Scraping (auction pages)
    rai:dataCollectionTimeFrame     first and last harvest time
    rai:dataCollectionMissingData   records without an image, by status and failure reason
    rai:dataCollectionRawData       what of the source's answer is kept
    rai:dataPreprocessingProtocol   image verification and resizing, every cleaning step of the card
    rai:dataAnnotationProtocol      where the labels come from (the museums' own fields, by recipe)
    rai:dataBiases                  class balance, per-source shares, classes per source
    rai:dataLimitations             dropped classes and records, images a source would not serve, caps
    rai:personalSensitiveInformation  which columns name people
    rai:dataUseCases                the task the labels make
What artdata cannot know (social impact, intended and excluded uses, maintenance, whether images show living
people) is a field that starts with `TO FILL`; give it with `--rai FILE` (YAML or JSON: `dataSocialImpact: ...`,
keys with or without `rai:`), whose values replace artdata's.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable

from artdata import ArtdataError

TO_FILL = "TO FILL (artdata cannot know this; give it with --rai FILE)"
MAX_RAI_FILE = 1 << 20
MAX_VALUE = 64 << 10

# rai: key -> "one" (one text) or "many" (a list of texts), as mlcroissant reads them
FIELDS = {
    "dataCollection": "one", "dataCollectionType": "many", "dataCollectionMissingData": "one",
    "dataCollectionRawData": "one", "dataCollectionTimeFrame": "many", "dataImputationProtocol": "one",
    "dataPreprocessingProtocol": "many", "dataManipulationProtocol": "one", "dataAnnotationProtocol": "many",
    "dataAnnotationPlatform": "many", "dataAnnotationAnalysis": "many", "annotationsPerItem": "one",
    "annotatorDemographics": "many", "machineAnnotationTools": "many", "dataBiases": "many", "dataUseCases": "many",
    "dataLimitations": "many", "dataSocialImpact": "one", "personalSensitiveInformation": "many",
    "dataReleaseMaintenancePlan": "one",
}

COLLECTION = {      # source -> (rai:dataCollectionType, how artdata reads it)
    "met": ("Web API", "the Metropolitan Museum of Art's Collection API"),
    "aic": ("Web API", "the Art Institute of Chicago's API and IIIF image server"),
    "cleveland": ("Web API", "the Cleveland Museum of Art's Open Access API"),
    "iiif": ("Web API", "IIIF Presentation manifests and Image API services"),
    "tate": ("Secondary Data Analysis", "Tate's published collection dataset (images fetched by URL)"),
    "nga": ("Secondary Data Analysis", "the National Gallery of Art's open-data tables (images via IIIF)"),
    "findartinfo": ("Web Scraping", "findartinfo.com auction result pages (Scrapy, robots.txt obeyed)"),
    "urls": ("Web Scraping", "a list of image URLs given by the user"),
    "folder": ("Secondary Data Analysis", "a local folder of images, one class per sub-folder"),
}
DUMP_KEYS = ("dump", "table", "ids_from")
LABEL_FIELDS = {"culture": "culture, then artist nationality, then country", "department": "department",
                "medium": "medium", "price": "hammer price (equal-count bins)", "movement": "the folder's class name"}
STATUS_MEANING = {"no_image": "the source has no image", "not_found": "the source says the object does not exist",
                  "not_public_domain": "not public domain: the source does not serve an open image",
                  "filtered": "excluded by a selection filter", "failed": "failed", "pending": "image not fetched"}


class RaiError(ArtdataError):
    pass


# ---------------------------------------------------------------- the user's fields

def load_rai_file(path: str | Path) -> dict:
    """The user's RAI fields: a YAML or JSON mapping of rai: keys to text (or a list of texts)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_RAI_FILE:
            raise RaiError(f"{p}: {size} bytes; an RAI file is at most {MAX_RAI_FILE} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RaiError(f"{p}: cannot read: {exc}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RaiError(f"{p}: not JSON: {exc}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise RaiError(f"{p}: YAML needs PyYAML (pip install pyyaml), or give the fields as .json") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RaiError(f"{p}: not YAML: {str(exc).splitlines()[0]}") from None
    return check_rai(data, str(p))


def check_rai(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise RaiError(f"{where}: expected a mapping of rai: fields, e.g. `dataSocialImpact: ...`")
    out = {}
    for key, value in data.items():
        name = str(key).removeprefix("rai:")
        if name not in FIELDS:
            raise RaiError(f"{where}: {key!r} is not a Croissant RAI field (known: {', '.join(FIELDS)})")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise RaiError(f"{where}: {key}: expected text or a list of texts")
        if any(len(v) > MAX_VALUE for v in values):
            raise RaiError(f"{where}: {key}: a value is over {MAX_VALUE} characters")
        if FIELDS[name] == "one" and len(values) > 1:
            raise RaiError(f"{where}: {key}: expected one text, not a list")
        out[f"rai:{name}"] = values[0] if FIELDS[name] == "one" else [v.strip() for v in values]
    return out


# ---------------------------------------------------------------- what artdata knows

def harvest_ancestors(card: dict, load_card: Callable[[str], dict | None], _depth: int = 0
                      ) -> tuple[list[dict], list[str]]:
    """(cards of the harvests and imports this version was built from, refs of ancestors `load_card` cannot
    find); `load_card(ref)` gives a version's card, or None."""
    parents = (card.get("lineage") or {}).get("parents") or []
    if not parents:
        return [card], []
    found, missing = [], []
    for ref in parents:
        parent = load_card(ref) if _depth < 20 else None
        if parent is None:
            missing.append(ref)
            continue
        f, m = harvest_ancestors(parent, load_card, _depth + 1)
        found += [c for c in f if all(c["version"] != x["version"] for x in found)]
        missing += [x for x in m if x not in missing]
    return found, missing


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "0%"


def _selection_text(sel: dict) -> str:
    parts = []
    for k, v in (sel or {}).items():
        if v in (None, False, [], {}, ""):
            continue
        parts.append(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}")
    return "; ".join(parts) or "everything the source lists"


def _harvest_text(c: dict) -> str:
    lin = c.get("lineage") or {}
    src = lin.get("source") or next(iter(c.get("counts", {}).get("by_source", {})), "?")
    how = COLLECTION.get(src, ("Others", src))[1]
    win = lin.get("harvest_window") or {}
    when = (f"between {win.get('start')} and {win.get('end')}" if win.get("start")
            else f"on {c.get('created_at')}")
    text = (f"{c['name']}@{c['version']}: {how}, read by artdata {c.get('artdata_version', '')} {when}; "
            f"selection: {_selection_text(lin.get('selection') or {})}")
    if lin.get("limit"):
        text += f"; at most {lin['limit']} records (--limit)"
    if lin.get("rate"):
        text += f"; at most {lin['rate']} requests/s per host"
    if lin.get("metadata_only"):
        text += "; metadata only (images fetched later)"
    counts = c.get("counts") or {}
    text += f"; {counts.get('rows', 0)} records: {_counts_text(counts.get('by_status') or {})}"
    if counts.get("failed_by_reason"):
        text += f" (failed: {_counts_text(counts['failed_by_reason'])})"
    return text + "."


def _licences(table) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for s, lic in zip(table.column("source").to_pylist(), table.column("license").to_pylist()):
        out.setdefault(s, Counter())[lic or "none given"] += 1
    return out


def rai_fields(card: dict, table, ancestors: list[dict], missing: list[str] = (), user: dict | None = None) -> dict:
    """The rai: fields of a version (`table`: its records); `user`'s fields (from `load_rai_file`) replace them."""
    counts = card.get("counts") or {}
    rows = counts.get("rows", table.num_rows)
    lin = card.get("lineage") or {}
    recipe = card.get("recipe") or ({"name": lin["recipe"], "params": lin.get("params", {})} if lin.get("recipe")
                                    else None)
    sources = sorted({(c.get("lineage") or {}).get("source") or "?" for c in ancestors}
                     | set(counts.get("by_source") or {}))
    r: dict = {}

    # collection
    coll = [f"Built with artdata from {len(ancestors)} harvest(s) of {', '.join(sources)}."]
    coll += [_harvest_text(c) for c in ancestors]
    if missing:
        coll.append(f"Parent version(s) not available to describe: {', '.join(missing)}.")
    if recipe:
        coll.append(f"This version ({card['name']}@{card['version']}) selects and labels {rows} of their records "
                    f"with the {recipe['name']} recipe.")
    lic = _licences(table)
    coll.append("Licences per source: " + "; ".join(f"{s}: {_counts_text(c)}" for s, c in sorted(lic.items())) + ".")
    r["rai:dataCollection"] = " ".join(coll)
    r["rai:dataCollectionType"] = sorted({COLLECTION.get(s, ("Others",))[0] for s in sources})
    times = []
    for c in ancestors:
        w = (c.get("lineage") or {}).get("harvest_window") or {}
        times += [t for t in (w.get("start"), w.get("end")) if t] or [c.get("created_at")]
    times = sorted(t for t in times if t)
    if times:
        r["rai:dataCollectionTimeFrame"] = [times[0], times[-1]] if times[0] != times[-1] else [times[0]]
    gone = Counter()
    for c in ancestors:
        for s, n in ((c.get("counts") or {}).get("by_status") or {}).items():
            if s != "ok":
                gone[s] += n
    r["rai:dataCollectionMissingData"] = (
        "Every record the sources listed is kept with its status; records without a stored image: "
        + ("; ".join(f"{s} {n} ({STATUS_MEANING.get(s, s)})" for s, n in gone.most_common()) if gone else "none")
        + ". They are in the harvest versions, not in the training data.")
    r["rai:dataCollectionRawData"] = (
        "The source's complete answer for each object is kept losslessly in the `extra` column (JSON); images are "
        "kept re-encoded at reduced size, with the sha256 of the file the source served in `source_sha256`.")

    # preprocessing
    pre = []
    for c in ancestors:
        img = (c.get("lineage") or {}).get("image")
        if img:
            pre.append(f"{c['name']}: images verified (HTML or JSON answers, truncated files and decompression bombs "
                       f"over {img.get('max_pixels', 0):,} pixels refused), resized to {img.get('size')} px on the "
                       f"{img.get('side', 'shorter')} side with bicubic filtering"
                       f"{'' if img.get('upscale') else ' (never enlarged)'}, re-encoded as JPEG quality "
                       f"{img.get('quality')}, stored under their sha256.")
    for step in card.get("steps") or []:
        dropped = step.get("dropped") or {}
        pre.append(f"{step['step']}: {step['rows']} rows kept"
                   + (f"; dropped: {_counts_text(dropped)}" if dropped else "") + ".")
    if recipe:
        p = recipe.get("params") or {}
        pre.append(f"Split: recipe {recipe['name']}, stratified by class, seed {p.get('seed')}, ratios "
                   f"{'/'.join(str(x) for x in p.get('ratios') or [])} (train/val/test); the same input and "
                   f"parameters always give the same version.")
    r["rai:dataPreprocessingProtocol"] = pre or ["Records as harvested; no cleaning step."]

    # labels
    label_col = "labels" if "labels" in table.column_names and table.column("labels").null_count < table.num_rows \
        and ("label" not in table.column_names or table.column("label").null_count == table.num_rows) else "label"
    classes = Counter()
    if label_col in table.column_names:
        vals = table.column(label_col).to_pylist()
        for v in vals:
            for x in (v if isinstance(v, list) else [v] if v else []):
                classes[x] += 1
    if recipe:
        r["rai:dataAnnotationProtocol"] = [
            f"No manual annotation: the {'tags' if label_col == 'labels' else 'label'} of each record is derived "
            f"by the {recipe['name']} recipe from the sources' own catalogue fields "
            f"({LABEL_FIELDS.get(recipe['name'], recipe['name'])}), cleaned as the preprocessing steps say."]
        r["rai:annotationsPerItem"] = "1 (the source's catalogue value)"

    # biases
    biases = []
    total = sum(classes.values())
    if classes:
        (big, nb), (small, ns) = classes.most_common()[0], classes.most_common()[-1]
        biases.append(f"Class balance: {len(classes)} classes; largest {big} {nb} ({_pct(nb, total)}), smallest "
                      f"{small} {ns} ({_pct(ns, total)}), ratio {nb / ns:.1f}:1.")
    by_source = counts.get("by_source") or dict(Counter(table.column("source").to_pylist()))
    if by_source:
        biases.append("Per-source shares: " + ", ".join(f"{s} {_pct(n, rows)} ({n})" for s, n in
                                                       sorted(by_source.items(), key=lambda kv: -kv[1])) + ".")
        if len(by_source) == 1:
            biases.append(f"All records come from one source ({next(iter(by_source))}): the classes reflect what "
                          f"that collection holds and publishes with an image, not artworks at large.")
    for s, cl in sorted((card.get("classes_by_source") or {}).items()):
        biases.append(f"Classes from {s}: {_counts_text(cl)}.")
    r["rai:dataBiases"] = biases or ["No class or source statistics (no records)."]

    # limitations
    lim = []
    if gone:
        lim.append("Not in the data: " + "; ".join(f"{n} record(s) {STATUS_MEANING.get(s, s)} ({s})"
                                                   for s, n in gone.most_common()) + ".")
    fails = Counter()
    for c in ancestors:
        fails.update((c.get("counts") or {}).get("failed_by_reason") or {})
    if fails:
        lim.append(f"Failed records by reason: {_counts_text(fails)}.")
    if card.get("dropped_classes"):
        lim.append(f"Classes dropped for having too few records: {_counts_text(card['dropped_classes'])}.")
    for key, what in (("departments_without_records", "Departments asked for with no records"),):
        if card.get(key):
            lim.append(f"{what}: {', '.join(card[key])}.")
    for c in ancestors:
        lin_c = c.get("lineage") or {}
        if lin_c.get("limit"):
            lim.append(f"{c['name']} was capped at {lin_c['limit']} records: a sample of its selection, not all of it.")
    sizes = sorted({(c.get("lineage") or {}).get("image", {}).get("size") for c in ancestors} - {None})
    if sizes:
        lim.append(f"Images are stored at {', '.join(map(str, sizes))} px: detail of the originals is not kept.")
    if missing:
        lim.append(f"Harvest details of {', '.join(missing)} are not described (not in this home).")
    r["rai:dataLimitations"] = lim or ["No known gap recorded by artdata."]

    people = ["The records name artists (`artist`, `artist_nationality`, life dates in `extra`) as the sources "
              "publish them; artdata collects nothing about the people who use these sites."]
    if "findartinfo" in sources:
        people.append("Auction records name auction houses and give sale prices (`price`, `auction_house`).")
    people.append(f"{TO_FILL}: whether images show identifiable living people, and any other personal data.")
    r["rai:personalSensitiveInformation"] = people
    uses = []
    if classes:
        uses.append(f"{'Multi-label' if label_col == 'labels' else 'Image'} classification of "
                    f"{recipe['name'] if recipe else 'label'} ({len(classes)} classes).")
    uses.append(f"{TO_FILL}: the uses the dataset is meant for, and those it is not.")
    r["rai:dataUseCases"] = uses
    r["rai:dataSocialImpact"] = f"{TO_FILL}: the dataset's possible social impact."
    r["rai:dataReleaseMaintenancePlan"] = (f"Versions are immutable: {card['version']} is the sha256 prefix of the "
                                           f"records, and a new harvest is a new version. {TO_FILL}: who maintains "
                                           f"it, and for how long.")
    if user:
        r.update(user)
    return {k: r[k] for k in sorted(r)}


def to_fill(rai: dict) -> list[str]:
    """The rai: fields still to be filled by the user."""
    return [k for k, v in rai.items() if any(TO_FILL in x for x in (v if isinstance(v, list) else [v]))]


def licence_urls(table) -> list[str]:
    """The licences of the records, for Croissant's `license` (a URL where one is known)."""
    known = {"cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
             "cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
             "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/"}
    out = set()
    for x in {x for x in table.column("license").to_pylist() if x}:
        v = known.get(x.strip().lower(), x.strip())
        if v.lower().startswith(("http://creativecommons.org/", "https://creativecommons.org/")):
            v = "https://" + v.split("://", 1)[1].rstrip("/") + "/"          # one spelling of each licence URL
        out.add(v)
    return sorted(out)


def add_rai(croissant: dict, rai: dict, licences: list[str] | None = None) -> dict:
    """The Croissant card with its RAI fields (and, when given, a licence list) added."""
    out = dict(croissant)
    if licences:
        out["license"] = licences if len(licences) > 1 else licences[0]
    out.update(rai)
    return out
