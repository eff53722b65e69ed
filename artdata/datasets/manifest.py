"""Versioned manifests: Parquet records + a card, immutable, addressed as NAME@VERSION.

A manifest version lives in `<manifests>/<name>/<version>/`:

    data/records-00000-of-00001.parquet        (harvests)   or
    data/{train,validation,test}-00000-of-00001.parquet     (splits; HF `datasets` reads these as splits)
    card.json        schema/dataset version, content hash, lineage, counts, files with sha256
    README.md        a short card for humans (with Hugging Face `configs:` front matter)
    croissant.json   the card as MLCommons Croissant JSON-LD

The version id is the first 12 hex digits of the content hash, a sha256 over the records in a
canonical order: the same content always gets the same id, and an existing version is never
rewritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artdata import ArtdataError, __version__
from artdata.datasets.records import KEY_COLUMNS, SCHEMA_VERSION, conform, now_utc

CARD_VERSION = "1"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SPLIT_FILES = {"train": "train", "val": "validation", "test": "test"}
STANDARD_CARD_KEYS = frozenset({"card_version", "schema_version", "name", "version", "content_hash", "created_at",
                                "artdata_version", "git_commit", "description", "lineage", "counts", "columns",
                                "files"})


def check_name(name, flag: str = "--name") -> str:
    """A manifest name as a folder of the home can hold it: lower-case letters, digits, '.', '_', '-', starting
    with a letter or digit (so never '..', a path or an absolute name). Every command checks its names with this
    before any request or write."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        hint = re.sub(r"[^a-z0-9._-]+", "-", str(name).lower()).strip("-._")[:100]
        raise ManifestError(f"{flag} {name!r}: a manifest name is lower-case letters, digits, '.', '_' or '-', "
                            f"starting with a letter or digit" + (f" (e.g. {hint!r})" if hint else ""))
    return name


class ManifestError(ArtdataError):
    pass


@dataclass
class Manifest:
    name: str
    version: str
    path: Path
    card: dict = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def data_files(self) -> list[Path]:
        return [self.path / f["path"] for f in self.card["files"] if f["path"].startswith("data/")]

    def table(self, columns: list[str] | None = None) -> pa.Table:
        files = self.data_files
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise ManifestError(f"manifest {self.ref}: data file missing: {missing[0]}")
        try:
            tables = [pq.read_table(p, columns=columns) for p in files]
        except (pa.ArrowInvalid, OSError) as exc:
            raise ManifestError(f"manifest {self.ref}: cannot read data: {exc}") from None
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def take(self, rows, batch_size: int = 65536) -> pa.Table:
        """The rows at the given positions (in `table()` order), read batch by batch so that only
        the selected rows of wide columns are ever held in memory."""
        import numpy as np
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        parts, offset = [], 0
        for p in self.data_files:
            for batch in pq.ParquetFile(p).iter_batches(batch_size=batch_size):
                lo, hi = np.searchsorted(sorted_rows, [offset, offset + batch.num_rows])
                if hi > lo:
                    parts.append(batch.take(pa.array(sorted_rows[lo:hi] - offset)))
                offset += batch.num_rows
        if parts:
            t = pa.Table.from_batches(parts)
        else:
            t = pq.read_schema(self.data_files[0]).empty_table()
        return t.take(pa.array(np.argsort(order, kind="stable")))   # back to the order asked for

    def extra_table(self, name: str) -> pa.Table:
        """A side table shipped with the manifest (e.g. the price recipe's `features`)."""
        p = self.path / f"{name}.parquet"
        if not p.is_file():
            have = [f["path"] for f in self.card["files"] if not f["path"].startswith("data/")
                    and f["path"].endswith(".parquet")]
            raise ManifestError(f"manifest {self.ref} has no {name} table (have: {', '.join(have) or 'none'})")
        return pq.read_table(p)

    def to_pandas(self, columns: list[str] | None = None):
        return self.table(columns).to_pandas()

    @property
    def rows(self) -> int:
        return self.card["counts"]["rows"]


# ---------------------------------------------------------------- hashing, writing

def _canonical(table: pa.Table) -> pa.Table:
    table = conform(table)
    return table.sort_by([(k, "ascending") for k in KEY_COLUMNS])


def content_hash(table: pa.Table) -> str:
    """sha256 over the records in canonical order and schema (Arrow IPC stream, no metadata)."""
    t = _canonical(table).replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        for batch in t.to_batches(max_chunksize=65536):
            w.write_batch(batch)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _counts(table: pa.Table) -> dict:
    counts: dict[str, Any] = {"rows": table.num_rows}
    counts["by_status"] = dict(sorted(Counter(table.column("status").to_pylist()).items()))
    if "source" in table.column_names:
        counts["by_source"] = dict(sorted(Counter(table.column("source").to_pylist()).items()))
    errs = Counter(e.split(":")[0] for e, s in zip(table.column("error").to_pylist(),
                                                   table.column("status").to_pylist()) if e and s == "failed")
    if errs:
        counts["failed_by_reason"] = dict(errs.most_common())
    if "label" in table.column_names and table.column("label").null_count < table.num_rows:
        counts["by_class"] = dict(sorted(Counter(x for x in table.column("label").to_pylist() if x).items()))
    if "labels" in table.column_names and table.column("labels").null_count < table.num_rows:
        counts["by_tag"] = dict(sorted(Counter(t for ls in table.column("labels").to_pylist() if ls
                                               for t in ls).items()))
    if "split" in table.column_names:
        counts["by_split"] = {s: c for s, c in Counter(table.column("split").to_pylist()).items() if s}
        if "label" in table.column_names:
            by = Counter(zip(table.column("split").to_pylist(), table.column("label").to_pylist()))
            counts["by_split_class"] = {s: dict(sorted((l, c) for (s2, l), c in by.items() if s2 == s and l))
                                        for s in counts["by_split"]}
    return counts


def write_manifest(root: str | os.PathLike, name: str, table: pa.Table, *, lineage: dict | None = None,
                   description: str = "", extra: dict | None = None,
                   extra_tables: dict[str, pa.Table] | None = None) -> Manifest:
    """Write `table` as a new immutable version of manifest `name` (or return the existing one)."""
    check_name(name, "manifest name")
    root = Path(root)
    table = _canonical(table)
    digest = content_hash(table)
    version = digest[:12]
    dest = root / name / version
    if (dest / "card.json").is_file():
        return load(root, f"{name}@{version}")
    root.joinpath(name).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=root / name))
    try:
        (tmp / "data").mkdir()
        files = []
        if "split" in table.column_names and table.column("split").null_count < table.num_rows:
            known = pc.fill_null(pc.is_in(table.column("split"), value_set=pa.array(list(SPLIT_FILES))), False)
            for split, fname in SPLIT_FILES.items():
                part = table.filter(pc.fill_null(pc.equal(table.column("split"), split), False))
                if part.num_rows:
                    files.append((f"data/{fname}-00000-of-00001.parquet", part))
            other = table.filter(pc.invert(known))
            if other.num_rows:
                files.append(("data/unassigned-00000-of-00001.parquet", other))
        else:
            files.append(("data/records-00000-of-00001.parquet", table))
        entries = []
        for rel, part in files:
            pq.write_table(part, tmp / rel, compression="zstd", row_group_size=100_000)
            entries.append({"path": rel, "sha256": sha256_file(tmp / rel), "bytes": (tmp / rel).stat().st_size,
                            "rows": part.num_rows})
        for tname, t in (extra_tables or {}).items():
            rel = f"{tname}.parquet"
            pq.write_table(t, tmp / rel, compression="zstd")
            entries.append({"path": rel, "sha256": sha256_file(tmp / rel), "bytes": (tmp / rel).stat().st_size,
                            "rows": t.num_rows})
        card = {
            "card_version": CARD_VERSION,
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "version": version,
            "content_hash": digest,
            "created_at": now_utc().isoformat(timespec="seconds"),
            "artdata_version": __version__,
            "git_commit": git_commit(),
            "description": description,
            "lineage": lineage or {},
            "counts": _counts(table),
            "columns": table.column_names,
            "files": entries,
        }
        if extra:
            card.update(extra)
        _write_json(tmp / "card.json", card)
        (tmp / "README.md").write_text(render_readme(card), encoding="utf-8")
        _write_json(tmp / "croissant.json", croissant_with_rai(root, card, table))
        for meta in ("README.md", "croissant.json"):
            card["files"].append({"path": meta, "sha256": sha256_file(tmp / meta),
                                  "bytes": (tmp / meta).stat().st_size})
        _write_json(tmp / "card.json", card)
        try:
            os.replace(tmp, dest)
        except OSError:
            if (dest / "card.json").is_file():   # written meanwhile by someone else: same content
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load(root, f"{name}@{version}")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- reading, listing

def parse_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, (version or None)


def list_manifests(root: str | os.PathLike, name: str | None = None) -> list[Manifest]:
    root = Path(root)
    out = []
    if not root.is_dir():
        return out
    for card_path in sorted(root.glob(f"{name or '*'}/*/card.json")):
        if card_path.parent.name.startswith("."):
            continue
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        out.append(Manifest(card["name"], card["version"], card_path.parent, card))
    out.sort(key=lambda m: (m.name, m.card.get("created_at", ""), m.version))
    return out


def load(root: str | os.PathLike, ref: str) -> Manifest:
    """NAME (the newest version), NAME@VERSION (a prefix of the id is enough) or a manifest folder path."""
    p = Path(ref)
    if (p / "card.json").is_file():
        card = _read_card(p / "card.json")
        return Manifest(card["name"], card["version"], p.resolve(), card)
    name, version = parse_ref(ref)
    versions = list_manifests(root, name) if NAME_RE.match(name) else []
    if not versions:
        known = sorted({m.name for m in list_manifests(root)})
        raise ManifestError(f"no manifest named {name!r} in {root}"
                            + (f" (have: {', '.join(known)})" if known else " (none yet)"))
    if version is None or version == "latest":
        return versions[-1]
    hits = [m for m in versions if m.version.startswith(version)]
    if len(hits) != 1:
        raise ManifestError(f"manifest {name} has {'no' if not hits else 'several'} version(s) matching "
                            f"{version!r} (have: {', '.join(m.version for m in versions)})")
    return hits[0]


def _read_card(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: unreadable card: {exc}") from None


# ---------------------------------------------------------------- diff

@dataclass
class ManifestDiff:
    a: str
    b: str
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    relabelled: list[tuple[tuple[str, str], Any, Any]]
    moved: list[tuple[tuple[str, str], Any, Any]]
    changed: list[tuple[tuple[str, str], list[str]]]

    def summary(self) -> dict:
        return {"added": len(self.added), "removed": len(self.removed), "relabelled": len(self.relabelled),
                "moved_across_splits": len(self.moved), "otherwise_changed": len(self.changed)}


_IGNORED_IN_DIFF = {"harvested_at"}


def diff(a: Manifest, b: Manifest) -> ManifestDiff:
    ta, tb = a.table().to_pylist(), b.table().to_pylist()
    ia = {(r["source"], r["source_id"]): r for r in ta}
    ib = {(r["source"], r["source_id"]): r for r in tb}
    added = sorted(set(ib) - set(ia))
    removed = sorted(set(ia) - set(ib))
    relabelled, moved, changed = [], [], []
    for k in sorted(set(ia) & set(ib)):
        ra, rb = ia[k], ib[k]
        la, lb = ra.get("label", ra.get("labels")), rb.get("label", rb.get("labels"))
        if la != lb:
            relabelled.append((k, la, lb))
        if ra.get("split") != rb.get("split"):
            moved.append((k, ra.get("split"), rb.get("split")))
        other = [c for c in rb if c not in ("label", "labels", "split") and c not in _IGNORED_IN_DIFF
                 and ra.get(c) != rb.get(c)]
        if other:
            changed.append((k, other))
    return ManifestDiff(a.ref, b.ref, added, removed, relabelled, moved, changed)


# ---------------------------------------------------------------- verify

@dataclass
class VerifyReport:
    ref: str
    checked_files: int = 0
    checked_images: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(m: Manifest, store, *, progress=None) -> VerifyReport:
    """Every file matches its sha256 in the card; every `ok` record's image is in the store, intact."""
    rep = VerifyReport(m.ref)
    for f in m.card["files"]:
        p = m.path / f["path"]
        rep.checked_files += 1
        if not p.is_file():
            rep.problems.append(f"{f['path']}: missing")
        elif sha256_file(p) != f["sha256"]:
            rep.problems.append(f"{f['path']}: sha256 differs from the card")
    if rep.problems:
        return rep
    t = m.table(columns=["source", "source_id", "status", "image_key"])
    for src, sid, status, key in zip(*(t.column(c).to_pylist() for c in t.column_names)):
        if status != "ok":
            continue
        rep.checked_images += 1
        problem = store.check(key) if key else "no image_key"
        if problem:
            rep.problems.append(f"{src}:{sid}: image {key}: {problem}")
        if progress:
            progress()
    return rep


# ---------------------------------------------------------------- human card, Croissant

def render_readme(card: dict) -> str:
    c = card["counts"]
    lin = card.get("lineage") or {}
    lines = ["---"]
    splits = [f for f in card["files"] if f["path"].startswith("data/")]
    lines += ["configs:", "- config_name: default", "  data_files:"]
    for f in splits:
        split = Path(f["path"]).name.split("-")[0]
        lines += [f"  - split: {'train' if split == 'records' else split}", f"    path: {f['path']}"]
    lines += ["---", "", f"# {card['name']} @ {card['version']}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += [f"- created: {card['created_at']} by artdata {card['artdata_version']}"
              + (f" (git {card['git_commit'][:10]})" if card.get("git_commit") else ""),
              f"- rows: {c['rows']}",
              "- status: " + ", ".join(f"{k} {v}" for k, v in c.get("by_status", {}).items())]
    if lin.get("source"):
        lines.append(f"- source: {lin['source']}")
    if lin.get("parents"):
        lines.append(f"- parents: {', '.join(lin['parents'])}")
    if lin.get("recipe"):
        lines.append(f"- recipe: {lin['recipe']} {json.dumps(lin.get('params', {}), sort_keys=True)}")
    if c.get("by_class"):
        lines += ["", "| class | " + " | ".join(c.get("by_split", {}) or ["all"]) + " |",
                  "|---|" + "---|" * max(1, len(c.get("by_split", {})))]
        for cls in c["by_class"]:
            if c.get("by_split_class"):
                row = [str(c["by_split_class"].get(s, {}).get(cls, 0)) for s in c["by_split"]]
            else:
                row = [str(c["by_class"][cls])]
            lines.append(f"| {cls} | " + " | ".join(row) + " |")
    lines += ["", "Load with pandas: `pandas.read_parquet('data/')`; check with `artdata manifests verify "
              f"{card['name']}@{card['version']}`.", ""]
    return "\n".join(lines)


_CR_TYPES = {"string": "sc:Text", "bool": "sc:Boolean", "int32": "sc:Integer", "int64": "sc:Integer",
             "double": "sc:Float", "timestamp[us, tz=UTC]": "sc:DateTime"}


# The standard Croissant 1.0 JSON-LD context, key for key (what mlcroissant's validator and the published
# datasets use; a context with keys of its own makes the validator warn).
CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "sc": "https://schema.org/", "samplingRate": "cr:samplingRate", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform",
}


def semantic_version(card: dict) -> str:
    """MAJOR.MINOR.PATCH for Croissant: the record schema's version, with the content id as build metadata
    (1.0.0+4e9b2c1472ff); the content id alone is the card's `version` and Croissant's `identifier`."""
    parts = (str(card.get("schema_version") or "1").split(".") + ["0", "0"])[:3]
    core = ".".join(str(int(p)) if p.isdigit() else "0" for p in parts)
    return f"{core}+{card['version']}"


def cite_as(card: dict) -> str:
    """A BibTeX entry for the version, built from its name, version, sources and date."""
    sources = ", ".join(card.get("counts", {}).get("by_source", {})) or "artdata"
    year = str(card.get("created_at", ""))[:4] or "n.d."
    key = re.sub(r"[^A-Za-z0-9]+", "-", f"{card['name']}-{card['version']}")
    return (f"@misc{{{key}, title={{{card['name']} (artdata manifest, version {card['version']})}}, "
            f"note={{Records from {sources}, built with artdata {card.get('artdata_version', '')}}}, "
            f"howpublished={{artdata://{card['name']}@{card['version']}}}, year={{{year}}}}}")


def card_loader(root: str | os.PathLike):
    """ref -> that version's card in `root`, or None (what the RAI fields read of a version's ancestors)."""
    def load_card(ref: str) -> dict | None:
        try:
            return load(root, ref).card
        except ManifestError:
            return None
    return load_card


def croissant_with_rai(root: str | os.PathLike, card: dict, table: pa.Table, user: dict | None = None) -> dict:
    """The Croissant card with its Responsible-AI fields, from this version and the harvests it comes from
    (found in `root`); `user`: the fields given with --rai FILE (`rai.load_rai_file`)."""
    from artdata.datasets.rai import add_rai, harvest_ancestors, licence_urls, rai_fields
    ancestors, missing = harvest_ancestors(card, card_loader(root))
    return add_rai(croissant(card, table.schema), rai_fields(card, table, ancestors, missing, user),
                   licence_urls(table))


def croissant(card: dict, schema: pa.Schema) -> dict:
    """The card as MLCommons Croissant 1.0 JSON-LD."""
    files = [f for f in card["files"] if f["path"].startswith("data/")]
    dist = [{"@type": "cr:FileObject", "@id": f["path"], "name": f["path"], "contentUrl": f["path"],
             "encodingFormat": "application/x-parquet", "sha256": f["sha256"],
             "contentSize": f"{f['bytes']} B"} for f in files]
    dist.append({"@type": "cr:FileSet", "@id": "parquet-files", "name": "parquet-files",
                 "encodingFormat": "application/x-parquet", "includes": "data/*.parquet"})
    fields = []
    for fld in schema:
        t = str(fld.type)
        dtype = _CR_TYPES.get(t, "sc:Text")
        entry = {"@type": "cr:Field", "@id": f"records/{fld.name}", "name": fld.name, "dataType": dtype,
                 "source": {"fileSet": {"@id": "parquet-files"}, "extract": {"column": fld.name}}}
        if t.startswith("list"):
            entry["repeated"] = True
        fields.append(entry)
    record_sets = [{"@type": "cr:RecordSet", "@id": "records", "name": "records",
                    "key": [{"@id": "records/source"}, {"@id": "records/source_id"}], "field": fields}]
    if "split" in schema.names:
        record_sets.append({
            "@type": "cr:RecordSet", "@id": "splits", "name": "splits", "dataType": "cr:Split",
            "key": {"@id": "splits/name"},
            "field": [{"@type": "cr:Field", "@id": "splits/name", "name": "name", "dataType": "sc:Text"}],
            "data": [{"splits/name": s} for s in card["counts"].get("by_split", {})]})
        for f in fields:
            if f["name"] == "split":
                f["references"] = {"field": {"@id": "splits/name"}}
                f["dataType"] = ["sc:Text", "cr:Split"]
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": card["name"],
        "description": card.get("description") or f"artdata manifest {card['name']}",
        "version": semantic_version(card),
        "identifier": card["version"],
        "citeAs": cite_as(card),
        "datePublished": card["created_at"],
        "license": (card.get("lineage") or {}).get("license", "see records' license column"),
        "url": f"artdata://{card['name']}@{card['version']}",
        "distribution": dist,
        "recordSet": record_sets,
    }

