"""`artdata manifests export NAME[@V] DEST --format hf | webdataset | imagefolder`: a version as others read it.

    hf           data/<split>/<split>-00000-of-00003.parquet   Parquet shards, the image bytes embedded
                 README.md                                     the Hub's dataset card (YAML: configs, features)
    webdataset   <name>-<split>-000000.tar ...                 tar shards: <key>.jpg, <key>.json, <key>.cls
                 index.json, README.md                         the shards, their samples, bytes and sha256
    imagefolder  <split>/<class>/<key>.jpg, metadata.jsonl     class folders (torchvision ImageFolder, HF imagefolder)

Every export also writes `croissant.json` (the version's Croissant card with its Responsible-AI fields) and
holds only the records whose image is stored (`status` ok); the others are counted in the card, never dropped
silently. Shards are cut at about `shard_bytes` (500 MB) and no folder ever gets more than 10,000 files. Every
image is read from the store and checked against its sha256 (its name) before it is written; a missing or
damaged one stops the export with one line naming the record (`manifests verify` / `materialize` fix it).

DEST is any fsspec URL (a folder, `s3://bucket/prefix`, `hf://datasets/user/name` with huggingface_hub). Each
file is written whole: a temporary name renamed into place on disks, one upload on object stores; the index and
the cards go last, so an export cut short is finished by running it again. DEST must be empty, or hold that same
export cut short (`.artdata-export.json` names version, format and shard size), or an earlier artdata export
that `overwrite` replaces: another export's shards left beside would be read with the new ones.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artdata import ArtdataError
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import Manifest

SHARD_BYTES = 500_000_000          # about this much image data per shard
MAX_FILES_PER_FOLDER = 10_000      # the Hub's limit per folder
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}   # artdata's split -> the Hub's split name
ROW_GROUP_ROWS = 100               # rows per Parquet row group (the Hub's viewer reads row groups of images)
KEY_RE = re.compile(r"^[0-9a-f]{16}$")
# Columns of the records that an export leaves out: every exported record is `ok`, and `label`/`labels`/`split`
# are given as class indices and as the split itself.
DROPPED = ("status", "error", "label", "labels", "split")
LICENSE_IDS = {"cc0-1.0": "cc0-1.0", "cc0": "cc0-1.0", "cc-by-4.0": "cc-by-4.0", "cc-by-sa-4.0": "cc-by-sa-4.0",
               "cc-by-nc-4.0": "cc-by-nc-4.0", "cc-by-nc-sa-4.0": "cc-by-nc-sa-4.0", "mit": "mit",
               "apache-2.0": "apache-2.0"}


class ExportError(ArtdataError):
    pass


@dataclass(frozen=True)
class ExportConfig:
    shard_bytes: int = SHARD_BYTES
    max_files_per_folder: int = MAX_FILES_PER_FOLDER
    rai: dict | None = None          # the user's Responsible-AI fields (--rai FILE), already checked
    overwrite: bool = False          # replace what the destination holds (else only an unfinished same export)

    def __post_init__(self):
        if self.shard_bytes < 1:
            raise ExportError(f"shard size must be positive, not {self.shard_bytes}")
        if not 2 <= self.max_files_per_folder <= MAX_FILES_PER_FOLDER:
            raise ExportError(f"files per folder must be 2..{MAX_FILES_PER_FOLDER}, not {self.max_files_per_folder}")


@dataclass
class ExportResult:
    ref: str
    dest: str
    format: str
    files: list[dict] = field(default_factory=list)       # path, bytes, sha256 (and rows / samples)
    samples: dict[str, int] = field(default_factory=dict)  # per split (the Hub's names)
    left_out: dict[str, int] = field(default_factory=dict)  # records without a stored image, by status
    image_bytes: int = 0
    to_fill: list[str] = field(default_factory=list)        # RAI fields still marked TO FILL (give them: --rai)

    @property
    def total(self) -> int:
        return sum(self.samples.values())


# ---------------------------------------------------------------- what is exported

@dataclass
class Plan:
    """The exported records of one version: split -> table of `ok` rows (canonical order), the classes."""
    manifest: Manifest
    splits: dict[str, pa.Table]
    classes: list[str]
    multi_label: bool
    left_out: dict[str, int]
    table: pa.Table          # every record of the version (the Croissant RAI fields describe them all)

    @property
    def labelled(self) -> bool:
        return bool(self.classes)


def plan(m: Manifest) -> Plan:
    t = whole = m.table()
    status = t.column("status")
    ok = pc.fill_null(pc.and_(pc.equal(status, "ok"), pc.invert(pc.is_null(t.column("image_key")))), False)
    left = Counter(s for s, k in zip(status.to_pylist(), ok.to_pylist()) if not k)
    t = t.filter(ok)
    if not t.num_rows:
        raise ExportError(f"manifest {m.ref} has no record with a stored image (status ok) to export"
                          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(left.items()))})" if left else ""))
    names = t.column_names
    multi = "labels" in names and t.column("labels").null_count < t.num_rows and (
        "label" not in names or t.column("label").null_count == t.num_rows)
    classes: list[str] = []
    if multi:
        classes = sorted({x for ls in t.column("labels").to_pylist() if ls for x in ls})
    elif "label" in names and t.column("label").null_count < t.num_rows:
        if t.column("label").null_count:
            raise ExportError(f"manifest {m.ref}: {t.column('label').null_count} exported record(s) have no label")
        classes = sorted(set(t.column("label").to_pylist()))
    splits: dict[str, pa.Table] = {}
    if "split" in names and t.column("split").null_count < t.num_rows:
        for split, hf in HF_SPLITS.items():
            part = t.filter(pc.fill_null(pc.equal(t.column("split"), split), False))
            if part.num_rows:
                splits[hf] = part
        other = t.num_rows - sum(p.num_rows for p in splits.values())
        if other:
            left["no split"] = other
    else:
        splits["train"] = t
    return Plan(m, splits, classes, multi, dict(sorted(left.items())), whole)


def read_image(store: ImageStore, key: str, rec: str) -> bytes:
    """The stored JPEG of `key`, checked against its sha256."""
    path = store.path(key)
    try:
        data = store.get(key)
    except FileNotFoundError:
        raise ExportError(f"record {rec}: image {key} is not in the store {store.root} "
                          f"(run `artdata manifests materialize` first)") from None
    except OSError as exc:
        raise ExportError(f"record {rec}: image {path}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != key:
        raise ExportError(f"record {rec}: image {path} differs from its sha256 (run `artdata manifests verify`)")
    return data


def sample_key(source: str, source_id: str) -> str:
    """A record's key in the shards: 16 hex digits of sha256(source, source_id): stable, unique in practice
    (checked), no dots (WebDataset splits a member's name at its first dot) and no path characters."""
    return hashlib.sha256(f"{source}\0{source_id}".encode()).hexdigest()[:16]


def cut(sizes: list[int], limit: int, max_count: int | None = None) -> list[tuple[int, int]]:
    """[start, end) row ranges whose summed sizes stay at or under `limit` (a row larger than it alone)."""
    out, start, acc = [], 0, 0
    for i, s in enumerate(sizes):
        if i > start and (acc + s > limit or (max_count and i - start >= max_count)):
            out.append((start, i))
            start, acc = i, 0
        acc += s
    if start < len(sizes):
        out.append((start, len(sizes)))
    return out


def _row_sizes(t: pa.Table) -> list[int]:
    """What each row adds to a shard: its stored JPEG's size, plus a little for its metadata."""
    b = t.column("image_bytes").to_pylist() if "image_bytes" in t.column_names else [None] * t.num_rows
    return [(x or 0) + 1024 for x in b]


# ---------------------------------------------------------------- writing to any fsspec URL

class Destination:
    """Files written whole into a folder URL: a temporary name renamed on disks, one PUT on object stores."""

    def __init__(self, url: str):
        from artdata.datasets.remote import open_store
        self.url = url
        self.fs, self.root = open_store(url)
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = proto in ("file", "local")
        self.tmp = None if self.local else Path(tempfile.mkdtemp(prefix="artdata-export-"))
        self.parts: set[Path] = set()

    def path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if self.root else rel

    def existing(self) -> list[str]:
        """The files under the folder already, relative to it."""
        try:
            found = self.fs.find(self.root) if self.fs.exists(self.root) else []
        except FileNotFoundError:
            return []
        except Exception as exc:
            from artdata.datasets.remote import store_error
            raise store_error(self.url, exc) from None
        strip = self.root.rstrip("/") + "/"
        return sorted(f[len(strip):] if f.startswith(strip) else f for f in found)

    def read_small(self, rel: str, cap: int = 1 << 16) -> bytes | None:
        try:
            if self.fs.size(self.path(rel)) > cap:
                return None
            return self.fs.cat_file(self.path(rel))
        except (FileNotFoundError, OSError):
            return None

    def remove(self, rels: list[str]) -> None:
        try:
            for rel in rels:
                self.fs.rm_file(self.path(rel))
        except Exception as exc:
            from artdata.datasets.remote import store_error
            raise store_error(self.url, exc) from None

    def put(self, local: Path, rel: str) -> None:
        target = self.path(rel)
        try:
            if self.local:          # `local` is already a .part file beside the target
                os.replace(local, target)
                self.parts.discard(local)
            else:
                self.fs.makedirs(posixpath.dirname(target) or ".", exist_ok=True)
                self.fs.put_file(str(local), target)
                local.unlink(missing_ok=True)
        except ArtdataError:
            raise
        except Exception as exc:            # a store's own errors: one line, no secret
            from artdata.datasets.remote import store_error
            raise store_error(f"{self.url.rstrip('/')}/{rel}", exc) from None

    def put_bytes(self, data: bytes, rel: str) -> None:
        p = self.scratch(rel)
        p.write_bytes(data)
        self.put(p, rel)

    def scratch(self, rel: str) -> Path:
        """A local file to write `rel` into before `put`: a .part file beside the target on disks (renamed into
        place), a temporary file on object stores (uploaded)."""
        if self.local:
            p = Path(f"{self.path(rel)}.part-{uuid.uuid4().hex[:8]}")
            p.parent.mkdir(parents=True, exist_ok=True)
            self.parts.add(p)
            return p
        return self.tmp / f"{uuid.uuid4().hex[:8]}-{posixpath.basename(rel)}"

    def close(self) -> None:
        for p in self.parts:        # what an export cut short left half-written
            p.unlink(missing_ok=True)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _file_entry(p: Path, rel: str, **extra) -> dict:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"path": rel, "bytes": p.stat().st_size, "sha256": h.hexdigest(), **extra}


def folder_depth(n: int, per_folder: int) -> int:
    """How many levels of sub-folders `n` files need so that no folder holds more than `per_folder` entries."""
    depth, cap = 0, per_folder
    while cap < n:
        depth, cap = depth + 1, cap * per_folder
    return depth


def spread(prefix: str, names: list[str], per_folder: int) -> list[str]:
    """Paths for `names` under `prefix`: flat when they fit one folder, else in sub-folders 0000/, 0001/...
    (as many levels as needed), so that no folder ever holds more than `per_folder` entries."""
    depth = folder_depth(len(names), per_folder)
    out = []
    for i, n in enumerate(names):
        parts = [f"{(i // per_folder ** (level + 1)) % per_folder:04d}" for level in reversed(range(depth))]
        out.append("/".join([prefix, *parts, n]))
    return out


# ---------------------------------------------------------------- Hugging Face (Parquet + dataset card)

_HF_VALUE = {"string": "string", "large_string": "large_string", "bool": "bool", "int32": "int32",
             "int64": "int64", "double": "float64", "float": "float32", "timestamp[us, tz=UTC]": "timestamp[us, tz=UTC]",
             "binary": "binary"}


def _hf_value(t: pa.DataType) -> dict:
    if pa.types.is_list(t):
        return {"feature": _hf_value(t.value_type), "_type": "List"}
    return {"dtype": _HF_VALUE.get(str(t), "string"), "_type": "Value"}


def hf_features(schema: pa.Schema, classes: list[str], multi: bool) -> dict:
    """The `datasets` Features (as its JSON form) of the exported Parquet: image, label, then the records'."""
    feats: dict = {"image": {"_type": "Image"}}
    if classes:
        cl = {"names": classes, "_type": "ClassLabel"}
        if multi:
            feats["labels"] = {"feature": cl, "_type": "List"}
        else:
            feats["label"] = cl
    for f in schema:
        if f.name not in feats:
            feats[f.name] = _hf_value(f.type)
    return feats


def yaml_quote(text: str) -> str:
    """`text` as a YAML double-quoted scalar that every YAML reader gives back unchanged: JSON's escapes, and
    YAML's own for what YAML would not keep as is (C1 controls, line separators, astral characters)."""
    out = []
    for ch in json.dumps(text, ensure_ascii=False):
        o = ord(ch)
        if 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029) or 0xE000 <= o <= 0xFFFD:
            out.append(ch)
        elif o > 0xFFFF:
            out.append(f"\\U{o:08X}")
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


def _yaml_feature(name: str, spec: dict, pad: str = "  ") -> list[str]:
    """One feature of the card's `dataset_info.features` list, as `datasets` writes it."""
    q = yaml_quote
    head = [f"{pad}- name: {q(name)}"]
    if spec["_type"] == "Image":
        return head + [f"{pad}  dtype: image"]
    if spec["_type"] == "ClassLabel":
        return (head + [f"{pad}  dtype:", f"{pad}    class_label:", f"{pad}      names:"]
                + [f"{pad}        {q(str(i))}: {q(c)}" for i, c in enumerate(spec["names"])])
    if spec["_type"] == "List":
        inner = spec["feature"]
        if inner["_type"] == "ClassLabel":
            return (head + [f"{pad}  list:", f"{pad}    class_label:", f"{pad}      names:"]
                    + [f"{pad}        {q(str(i))}: {q(c)}" for i, c in enumerate(inner["names"])])
        return head + [f"{pad}  list: {inner['dtype']}"]
    if spec["_type"] == "Struct":
        out = head + [f"{pad}  struct:"]
        for k, v in spec["fields"].items():
            out += _yaml_feature(k, v, pad + "  ")
        return out
    return head + [f"{pad}  dtype: {spec['dtype']}"]


def _hf_table(part: pa.Table, p: Plan, store: ImageStore, index: dict[str, int]) -> pa.Table:
    keys = part.column("image_key").to_pylist()
    recs = [f"{s}:{i}" for s, i in zip(part.column("source").to_pylist(), part.column("source_id").to_pylist())]
    images = [{"bytes": read_image(store, k, r), "path": f"{k}.jpg"} for k, r in zip(keys, recs)]
    cols = {"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))}
    if p.labelled and p.multi_label:
        cols["labels"] = pa.array([[index[x] for x in ls or []] for ls in part.column("labels").to_pylist()],
                                  pa.list_(pa.int64()))
    elif p.labelled:
        cols["label"] = pa.array([index[x] for x in part.column("label").to_pylist()], pa.int64())
    for name in part.column_names:
        if name not in DROPPED and name not in cols:
            cols[name] = part.column(name)
    return pa.table(cols)


def export_hf(p: Plan, store: ImageStore, dest: Destination, cfg: ExportConfig, res: ExportResult,
              progress: Callable[[int], None] | None = None) -> None:
    index = {c: i for i, c in enumerate(p.classes)}
    features = None
    split_files: dict[str, list[str]] = {}
    split_bytes: dict[str, int] = {}
    for split, part in p.splits.items():
        ranges = cut(_row_sizes(part), cfg.shard_bytes)
        n = len(ranges)
        names = [f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        paths = spread(f"data/{split}", names, cfg.max_files_per_folder)
        split_files[split] = paths
        for (a, b), rel in zip(ranges, paths):
            local = dest.scratch(rel)
            writer = None
            try:
                for g in range(a, b, ROW_GROUP_ROWS):   # one row group of images in memory at a time
                    t = _hf_table(part.slice(g, min(ROW_GROUP_ROWS, b - g)), p, store, index)
                    if features is None:
                        features = hf_features(t.schema, p.classes, p.multi_label)
                    t = t.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
                    if writer is None:
                        writer = pq.ParquetWriter(local, t.schema, compression="zstd",
                                                  use_dictionary=[c for c in t.column_names if c != "image"])
                    writer.write_table(t, row_group_size=ROW_GROUP_ROWS)
                    res.image_bytes += sum(pc.binary_length(pc.struct_field(t.column("image"), "bytes")).to_pylist())
                    if progress:
                        progress(t.num_rows)
            finally:
                if writer is not None:
                    writer.close()
            entry = _file_entry(local, rel, rows=b - a)
            dest.put(local, rel)
            res.files.append(entry)
            split_bytes[split] = split_bytes.get(split, 0) + entry["bytes"]
        res.samples[split] = part.num_rows
    card = hf_card(p, features or {}, split_files, split_bytes, res)
    dest.put_bytes(card.encode("utf-8"), "README.md")
    res.files.append({"path": "README.md", "bytes": len(card.encode()),
                      "sha256": hashlib.sha256(card.encode()).hexdigest()})


def _license_yaml(p: Plan) -> str:
    found = set()
    for part in p.splits.values():
        found |= {str(x).lower() for x in part.column("license").to_pylist() if x}
    ids = {LICENSE_IDS.get(x) for x in found}
    if len(ids) == 1 and None not in ids:
        return ids.pop()
    return "other"


def hf_card(p: Plan, features: dict, split_files: dict[str, list[str]], split_bytes: dict[str, int],
            res: ExportResult) -> str:
    """README.md with the YAML header the Hub reads: licence, task, one data_files entry per split, features."""
    m = p.manifest
    q = yaml_quote
    lines = ["---", f"license: {_license_yaml(p)}", "task_categories:", "- image-classification",
             f"pretty_name: {q(m.name)}", "tags:", "- artdata", "- art", "configs:", "- config_name: default",
             "  data_files:"]
    for split, paths in split_files.items():
        depth = paths[0].count("/") - 2
        lines += [f"  - split: {split}", f"    path: {q(f'data/{split}/' + '*/' * depth + '*.parquet')}"]
    lines += ["dataset_info:", "  features:"]
    for name, spec in features.items():
        lines += _yaml_feature(name, spec)
    lines += ["  splits:"]
    for split, n in res.samples.items():
        lines += [f"  - name: {split}", f"    num_bytes: {split_bytes.get(split, 0)}", f"    num_examples: {n}"]
    lines += [f"  download_size: {sum(split_bytes.values())}", "---", ""]
    lines += _card_body(p, res, "Load it with `datasets.load_dataset(\"<this folder or repo>\")`: the `image` "
                                "column decodes to PIL images and `label` is a ClassLabel.")
    return "\n".join(lines)


def _card_body(p: Plan, res: ExportResult, how: str) -> list[str]:
    m, c = p.manifest, p.manifest.card
    from artdata.datasets.manifest import cite_as
    lines = [f"# {m.name} @ {m.version}", ""]
    if c.get("description"):
        lines += [c["description"], ""]
    lines += [f"Exported by artdata {c.get('artdata_version', '')} from manifest `{m.ref}` "
              f"(content hash `{c['content_hash']}`). {how}", ""]
    lines += ["| split | examples |", "|---|---|"] + [f"| {s} | {n} |" for s, n in res.samples.items()] + [""]
    if p.classes:
        by = {s: Counter(x for ls in (t.column("labels").to_pylist() if p.multi_label else
                                     [[v] for v in t.column("label").to_pylist()]) for x in ls or [])
              for s, t in p.splits.items()}
        lines += ["| class | " + " | ".join(by) + " |", "|---|" + "---|" * len(by)]
        lines += [f"| {cl} | " + " | ".join(str(by[s].get(cl, 0)) for s in by) + " |" for cl in p.classes]
        lines.append("")
    if p.left_out:
        lines += ["Records of the version without a stored image are not in this export: "
                  + ", ".join(f"{k} {v}" for k, v in p.left_out.items()) + ".", ""]
    lines += ["Responsible-AI fields (collection, preprocessing, biases, limitations): `croissant.json`.", "",
              "## Citation", "", "```bibtex", cite_as(c), "```", ""]
    return lines


# ---------------------------------------------------------------- WebDataset (tar shards + index)

def _json_value(v):
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def export_webdataset(p: Plan, store: ImageStore, dest: Destination, cfg: ExportConfig, res: ExportResult,
                      progress: Callable[[int], None] | None = None) -> None:
    m = p.manifest
    index_cls = {c: i for i, c in enumerate(p.classes)}
    mtime = int(_created(m.card))
    first = p.splits[next(iter(p.splits))]
    meta_cols = [c for c in first.column_names if c not in ("extra", "status", "error")]
    meta_types = {f.name: f.type for f in first.schema if f.name in meta_cols}
    json_keys = set(wds_features(p, meta_types)["json"]["fields"])
    splits_index: dict = {}
    total_shards = 0
    seen: set[str] = set()
    for split, part in p.splits.items():
        ranges = cut(_row_sizes(part), cfg.shard_bytes)
        total_shards += len(ranges)
        if total_shards > cfg.max_files_per_folder:
            raise ExportError(f"{m.ref}: {total_shards}+ shards would go into one folder (at most "
                              f"{cfg.max_files_per_folder}); use a larger shard size")
        shards = []
        rows = part.select(meta_cols).to_pylist()
        for i, (a, b) in enumerate(ranges):
            rel = f"{m.name}-{split}-{i:06d}.tar"
            local = dest.scratch(rel)
            with tarfile.open(local, "w", format=tarfile.GNU_FORMAT) as tar:
                for r in rows[a:b]:
                    key = sample_key(r["source"], r["source_id"])
                    if key in seen:
                        raise ExportError(f"{m.ref}: two records share the sample key {key} "
                                          f"({r['source']}:{r['source_id']})")
                    seen.add(key)
                    data = read_image(store, r["image_key"], f"{r['source']}:{r['source_id']}")
                    meta = {k: _json_value(v) for k, v in r.items() if k in json_keys}
                    meta["split"] = split
                    if p.labelled and p.multi_label:
                        meta["label_indices"] = [index_cls[x] for x in r.get("labels") or []]
                    elif p.labelled:
                        meta["label_index"] = index_cls[r["label"]]
                        _tar_add(tar, f"{key}.cls", str(index_cls[r["label"]]).encode(), mtime)
                    _tar_add(tar, f"{key}.jpg", data, mtime)
                    _tar_add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(), mtime)
                    res.image_bytes += len(data)
            entry = _file_entry(local, rel, samples=b - a)
            dest.put(local, rel)
            res.files.append(entry)
            shards.append({"file": rel, "samples": b - a, "bytes": entry["bytes"], "sha256": entry["sha256"]})
            if progress:
                progress(b - a)
        res.samples[split] = part.num_rows
        n = len(shards)
        splits_index[split] = {"samples": part.num_rows, "shards": shards,
                               "pattern": f"{m.name}-{split}-{{000000..{n - 1:06d}}}.tar"}
    index = {"format": "artdata-webdataset", "format_version": 1, "name": m.name, "version": m.version,
             "content_hash": m.card["content_hash"], "classes": p.classes, "multi_label": p.multi_label,
             "labelled": p.labelled, "image_extension": "jpg", "splits": splits_index, "left_out": p.left_out}
    raw = (json.dumps(index, indent=1, ensure_ascii=False) + "\n").encode()
    dest.put_bytes(raw, "index.json")
    res.files.append({"path": "index.json", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
    q = yaml_quote
    lines = ["---", f"license: {_license_yaml(p)}", "task_categories:", "- image-classification", "tags:",
             "- artdata", "- webdataset", "configs:", "- config_name: default", "  data_files:"]
    for split in splits_index:
        lines += [f"  - split: {split}", f"    path: {q(f'{m.name}-{split}-*.tar')}"]
    lines += ["dataset_info:", "  features:"]
    for name, spec in wds_features(p, meta_types).items():
        lines += _yaml_feature(name, spec)
    lines += ["---", ""]
    lines += _card_body(p, res, "WebDataset shards (`<key>.jpg`, `<key>.json`, `<key>.cls`); `index.json` lists "
                                "each shard with its samples and sha256.")
    card = "\n".join(lines).encode()
    dest.put_bytes(card, "README.md")
    res.files.append({"path": "README.md", "bytes": len(card), "sha256": hashlib.sha256(card).hexdigest()})


def wds_features(p: Plan, meta_types: dict[str, pa.DataType]) -> dict:
    """The `datasets` features of a shard's samples (jpg, json, cls), declared so that sparse metadata (a field
    null in the first samples, text later) is read with its own type, never inferred from a few samples."""
    fields = {k: _hf_value(t) for k, t in meta_types.items()}
    for k in ("label", "labels"):
        if not p.labelled or (k == "label") == p.multi_label:
            fields.pop(k, None)
    fields["split"] = {"dtype": "string", "_type": "Value"}
    if p.labelled and p.multi_label:
        fields["label_indices"] = {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "List"}
    elif p.labelled:
        fields["label_index"] = {"dtype": "int64", "_type": "Value"}
    fields["harvested_at"] = {"dtype": "string", "_type": "Value"}
    feats: dict = {}
    if p.labelled and not p.multi_label:
        feats["cls"] = {"names": p.classes, "_type": "ClassLabel"}
    feats["jpg"] = {"_type": "Image"}
    feats["json"] = {"fields": dict(sorted(fields.items())), "_type": "Struct"}
    return feats


def _created(card: dict) -> float:
    from datetime import datetime
    try:
        return datetime.fromisoformat(str(card.get("created_at"))).timestamp()
    except ValueError:
        return 0.0


# ---------------------------------------------------------------- imagefolder

_UNSAFE = re.compile(r"[^\w .,()&'+-]+", re.UNICODE)


def class_folder(label: str) -> str:
    """A label as a folder name: no path separators, no leading dot or space, at most 100 characters."""
    name = _UNSAFE.sub("_", label).strip(" .") or "_"
    return name[:100].rstrip(" .") or "_"


def export_imagefolder(p: Plan, store: ImageStore, dest: Destination, cfg: ExportConfig, res: ExportResult,
                       progress: Callable[[int], None] | None = None) -> None:
    if not p.labelled or p.multi_label:
        raise ExportError(f"manifest {p.manifest.ref}: --format imagefolder needs one label per record "
                          f"(a single-label split); use --format hf or webdataset")
    folders: dict[str, str] = {}
    used: set[str] = set()
    for c in p.classes:                       # distinct labels never share a folder
        base = f = class_folder(c)
        n = 2
        while f.lower() in used:
            f, n = f"{base}-{n}", n + 1
        used.add(f.lower())
        folders[c] = f
    for split, part in p.splits.items():
        meta_lines = []
        rows = part.select([c for c in part.column_names if c not in ("extra", "status", "error")]).to_pylist()
        by_class: dict[str, list[dict]] = {}
        for r in rows:
            by_class.setdefault(r["label"], []).append(r)
        for c, rs in by_class.items():
            names = [f"{sample_key(r['source'], r['source_id'])}.jpg" for r in rs]
            for r, rel in zip(rs, spread(f"{split}/{folders[c]}", names, cfg.max_files_per_folder)):
                data = read_image(store, r["image_key"], f"{r['source']}:{r['source_id']}")
                dest.put_bytes(data, rel)
                res.image_bytes += len(data)
                meta_lines.append(json.dumps({"file_name": rel[len(split) + 1:], "label": c, "source": r["source"],
                                              "source_id": r["source_id"], "title": r.get("title"),
                                              "license": r.get("license")}, ensure_ascii=False))
            if progress:
                progress(len(rs))
        res.samples[split] = part.num_rows
        raw = ("\n".join(meta_lines) + "\n").encode()       # HF imagefolder reads each split's metadata.jsonl
        dest.put_bytes(raw, f"{split}/metadata.jsonl")
        res.files.append({"path": f"{split}/metadata.jsonl", "bytes": len(raw)})
    classes = (json.dumps({"classes": p.classes, "folders": folders}, indent=1, ensure_ascii=False) + "\n").encode()
    dest.put_bytes(classes, "classes.json")
    res.files.append({"path": "classes.json", "bytes": len(classes)})


# ---------------------------------------------------------------- the registry, the entry point

FORMATS: dict[str, Callable] = {"hf": export_hf, "webdataset": export_webdataset, "imagefolder": export_imagefolder}


def export(m: Manifest, store: ImageStore, dest_url: str, fmt: str, cfg: ExportConfig = ExportConfig(),
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """Write version `m` to `dest_url` in format `fmt`, with a `croissant.json` describing what was written
    (its RAI fields from the version and its harvests, `cfg.rai` replacing them field by field)."""
    from artdata.datasets.manifest import card_loader
    from artdata.datasets.rai import harvest_ancestors, rai_fields, to_fill
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    p = plan(m)
    res = ExportResult(m.ref, dest_url, fmt, left_out=p.left_out)
    ancestors, missing = harvest_ancestors(m.card, card_loader(m.path.parent.parent))
    rai = rai_fields(m.card, p.table, ancestors, missing, cfg.rai)
    res.to_fill = to_fill(rai)
    dest = Destination(dest_url)
    try:
        _claim(dest, m, fmt, cfg)
        FORMATS[fmt](p, store, dest, cfg, res, progress)
        raw = (json.dumps(export_croissant(p, res, rai), indent=2, ensure_ascii=False, default=str) + "\n").encode()
        dest.put_bytes(raw, "croissant.json")
        res.files.append({"path": "croissant.json", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
    finally:
        dest.close()
    return res


MARKER = ".artdata-export.json"


def _claim(dest: Destination, m: Manifest, fmt: str, cfg: ExportConfig) -> None:
    """Start writing into `dest`: an empty folder, the leftovers of the same export cut short (its marker says
    so: same version, format and shard size, so the same file names), or with `overwrite` another artdata
    export, removed first. Files of another export left beside this one would be read with it
    (`data/train/*.parquet`); a folder that holds anything else is never written into."""
    marker = {"name": m.name, "version": m.version, "format": fmt, "shard_bytes": cfg.shard_bytes,
              "max_files_per_folder": cfg.max_files_per_folder}
    have = dest.existing()
    if have and MARKER not in have:        # never removed, even with overwrite: it is not an export
        raise ExportError(f"{dest.url}: holds {len(have)} file(s) that are not an artdata export (e.g. "
                          f"{have[0]}); export into an empty folder")
    if have and cfg.overwrite:
        dest.remove(have)
    elif have:
        raw = dest.read_small(MARKER) if MARKER in have else None
        try:
            same = raw is not None and json.loads(raw) == marker
        except (ValueError, RecursionError):
            same = False
        if not same:
            other = next((f for f in have if f != MARKER), have[0])
            raise ExportError(f"{dest.url}: holds {len(have)} file(s) of something else (e.g. {other}); export "
                              f"into an empty folder, or add --overwrite to replace them")
        dest.remove([f for f in have if ".part-" in posixpath.basename(f)])      # a run cut short
    dest.put_bytes((json.dumps(marker) + "\n").encode(), MARKER)


# ---------------------------------------------------------------- the export's Croissant card

def export_croissant(p: Plan, res: ExportResult, rai: dict) -> dict:
    """Croissant 1.0 JSON-LD describing the exported files (sha256 of each), with the version's RAI fields."""
    from artdata.datasets.manifest import croissant
    m = p.manifest
    first = next(iter(p.splits.values()))
    base = croissant(m.card, first.schema)
    doc = {k: v for k, v in base.items() if k not in ("distribution", "recordSet")}
    doc["description"] = f"{base['description']} (exported by artdata as {res.format})"
    from artdata.datasets.rai import add_rai, licence_urls
    doc = add_rai(doc, rai, licence_urls(pa.concat_tables(list(p.splits.values()))))
    mime = {"hf": "application/x-parquet", "webdataset": "application/x-tar", "imagefolder": "image/jpeg"}[res.format]
    dist = [{"@type": "cr:FileObject", "@id": f["path"], "name": f["path"], "contentUrl": f["path"],
             "encodingFormat": mime, "sha256": f["sha256"], "contentSize": f"{f['bytes']} B"}
            for f in res.files if f.get("sha256") and f["path"].endswith((".parquet", ".tar"))]
    record_sets = []
    if res.format == "hf":
        dist.append({"@type": "cr:FileSet", "@id": "parquet-files", "name": "parquet-files",
                     "encodingFormat": "application/x-parquet", "includes": "data/*/*.parquet"})
        src = lambda col: {"fileSet": {"@id": "parquet-files"}, "extract": {"column": col}}
        fields = [{"@type": "cr:Field", "@id": "records/image", "name": "image", "dataType": "sc:ImageObject",
                   "source": {**src("image"), "transform": {"jsonPath": "bytes"}}}]
        if p.labelled and not p.multi_label:
            fields.append({"@type": "cr:Field", "@id": "records/label", "name": "label", "dataType": "sc:Integer",
                           "description": "class index into: " + ", ".join(p.classes), "source": src("label")})
        for col in ("source", "source_id", "title", "artist", "license", "image_key"):
            fields.append({"@type": "cr:Field", "@id": f"records/{col}", "name": col, "dataType": "sc:Text",
                           "source": src(col)})
        record_sets.append({"@type": "cr:RecordSet", "@id": "records", "name": "records",
                            "key": [{"@id": "records/source"}, {"@id": "records/source_id"}], "field": fields})
    elif res.format == "imagefolder":
        dist.append({"@type": "cr:FileSet", "@id": "image-files", "name": "image-files",
                     "encodingFormat": "image/jpeg", "includes": "*/*/*.jpg"})
        src = {"fileSet": {"@id": "image-files"}}
        record_sets.append({"@type": "cr:RecordSet", "@id": "images", "name": "images", "field": [
            {"@type": "cr:Field", "@id": "images/image", "name": "image", "dataType": "sc:ImageObject",
             "source": {**src, "extract": {"fileProperty": "content"}}},
            {"@type": "cr:Field", "@id": "images/label", "name": "label", "dataType": "sc:Text",
             "source": {**src, "extract": {"fileProperty": "fullpath"}, "transform": {"regex": r"^(?:.*/)?[^/]+/([^/]+)/[^/]+\.jpg$"}}},
            {"@type": "cr:Field", "@id": "images/split", "name": "split", "dataType": "sc:Text",
             "source": {**src, "extract": {"fileProperty": "fullpath"}, "transform": {"regex": r"^(?:.*/)?([^/]+)/[^/]+/[^/]+\.jpg$"}}}]})
    doc["distribution"] = dist
    if record_sets:
        doc["recordSet"] = record_sets
    return doc
