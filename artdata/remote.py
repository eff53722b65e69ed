"""Sharing manifest versions through remote stores: `manifests push`, `pull` and `list SOURCE`.

Every store goes through fsspec (s3fs for `s3://`, its HTTP filesystem for `https://` static hosts, local
paths and `file://`; gcsfs, adlfs and the others work the same way once installed). A destination holds:

    index.json                       every pushed version: name, version, created_at, rows, images
    <name>/<version>/                the version's folder as in the home (data/*.parquet, README.md,
                                     croissant.json, side tables) and card.json, written last
    images/ab/cd/<sha256>.jpg        with --with-images: the images, content-addressed like the local store

Versions are immutable: pushing a version that the destination holds with the same content is a no-op, with
other content an error. A pull downloads into a hidden folder of the home, checks every file's size and
sha256 against the card and the records' content hash against the version id, and only then moves the
folder into place, so a half-pulled or tampered version never appears in `manifests list`. Interrupted
downloads resume from the bytes already received. Credentials come only from each store's usual places (the
environment, ~/.aws/config and ~/.aws/credentials, ...); they are never written, logged or echoed: error
messages are stripped of the values of the usual credential variables.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from artdata import ArtdataError
from artdata.images import ImageStore
from artdata.manifest import Manifest, check_name, content_hash, load, parse_ref, sha256_file
from artdata.paths import Home

INDEX = "index.json"
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                    "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN")
RETRIES = 4


class RemoteError(ArtdataError):
    pass


def _scrub(text: str) -> str:
    for var in SECRET_VARIABLES:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _fail(url: str, exc: BaseException) -> RemoteError:
    """One line for a store's error, naming the URL and never a credential."""
    name = type(exc).__name__
    msg = str(exc).splitlines()[0] if str(exc) else ""
    low = (name + " " + msg).lower()
    if any(k in low for k in ("nocredentials", "invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied",
                              "forbidden", "403", "expiredtoken", "unauthorized", "401")):
        hint = (": access denied; check the store's credentials (for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE, ~/.aws/credentials; AWS_ENDPOINT_URL for an S3-compatible server)")
        return RemoteError(_scrub(f"{url}{hint} ({name})"))
    return RemoteError(_scrub(f"{url}: {name}: {msg[:300]}"))


def open_store(url: str):
    """(filesystem, root path) for a folder URL or a plain path."""
    try:
        import fsspec
    except ImportError:
        raise RemoteError("remote stores need fsspec: pip install -e '.[remote]' (s3fs for s3://)") from None
    try:
        # a fresh instance: credentials are read from their usual places at each call, never cached here
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:   # an unknown protocol, or its package missing (s3fs, gcsfs...)
        raise RemoteError(f"{url}: {exc}".splitlines()[0]) from None
    return fs, root.rstrip("/")


def _is_local(fs) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _join(root: str, *parts: str) -> str:
    return posixpath.join(root, *parts) if root else posixpath.join(*parts)


def _read_json(fs, path: str, url: str):
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise RemoteError(f"{url}: {posixpath.basename(path)} is not JSON ({exc.msg})") from None


def _put_bytes(fs, data: bytes, path: str) -> None:
    """Atomic per file: a temporary name renamed into place on local and mounted stores; object stores
    (S3 and the like) make a single PUT visible whole or not at all."""
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    if _is_local(fs):
        tmp = f"{path}.part-{uuid.uuid4().hex[:8]}"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)


def _put_file(fs, local: Path, path: str) -> None:
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    if _is_local(fs):
        tmp = f"{path}.part-{uuid.uuid4().hex[:8]}"
        fs.put_file(str(local), tmp)
        fs.mv(tmp, path)
    else:
        fs.put_file(str(local), path)


def _size(fs, path: str) -> int | None:
    try:
        return fs.size(path)
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------- push

@dataclass
class PushResult:
    ref: str
    dest: str
    uploaded: list[str] = field(default_factory=list)
    skipped: int = 0
    images_uploaded: int = 0
    images_present: int = 0
    images_missing_locally: int = 0


def _image_keys(m: Manifest) -> list[str]:
    t = m.table(columns=["status", "image_key"]).to_pydict()
    return sorted({k for s, k in zip(t["status"], t["image_key"]) if k and s == "ok"})


def push(home: Home, ref: str, dest: str, with_images: bool = False, progress=None) -> PushResult:
    m = load(home.manifests, ref)
    fs, root = open_store(dest)
    res = PushResult(m.ref, dest)
    vdir = _join(root, m.name, m.version)
    try:
        remote_card = _read_json(fs, _join(vdir, "card.json"), dest)
        if remote_card is not None and (remote_card.get("content_hash") != m.card["content_hash"]
                                        or remote_card.get("files") != m.card["files"]):
            raise RemoteError(f"{dest}: {m.ref} is there already with other content; versions are immutable "
                              f"(build a new version instead)")
        for f in m.card["files"]:               # resumable: what is there with the right size is kept
            local = m.path / f["path"]
            if not local.is_file() or local.stat().st_size != f["bytes"] or sha256_file(local) != f["sha256"]:
                raise RemoteError(f"{local}: does not match its card (run `artdata manifests verify {m.ref}`)")
            target = _join(vdir, f["path"])
            if remote_card is None and _size(fs, target) != f["bytes"]:
                _put_file(fs, local, target)
                res.uploaded.append(f["path"])
            else:
                res.skipped += 1
        if remote_card is None:                 # the card last: its presence means the version is complete
            _put_file(fs, m.path / "card.json", _join(vdir, "card.json"))
            res.uploaded.append("card.json")
        if with_images:
            _push_images(fs, root, m, ImageStore(home.images), res, progress)
        _update_index(fs, root, m, with_images, dest)
    except RemoteError:
        raise
    except Exception as exc:     # a store's own errors (botocore, aiohttp, OSError): one line, no secret
        raise _fail(dest, exc) from None
    return res


def _push_images(fs, root: str, m: Manifest, store: ImageStore, res: PushResult, progress) -> None:
    keys = _image_keys(m)
    images_root = _join(root, "images")
    try:
        present = {posixpath.basename(p)[:-4] for p in fs.find(images_root) if p.endswith(".jpg")}
    except FileNotFoundError:
        present = set()
    todo = []
    for k in keys:
        if k in present:
            res.images_present += 1
        elif store.has(k):
            todo.append(k)
        else:
            res.images_missing_locally += 1
    if progress:
        progress.start(len(todo), 0)
    for i in range(0, len(todo), 64):       # batches: an async store (s3fs) sends each batch concurrently
        batch = todo[i:i + 64]
        remote = [_join(images_root, k[:2], k[2:4], f"{k}.jpg") for k in batch]
        if _is_local(fs):
            for k, r in zip(batch, remote):
                _put_file(fs, store.path(k), r)
        else:
            fs.put([str(store.path(k)) for k in batch], remote)
        res.images_uploaded += len(batch)
        for _ in batch if progress else ():
            progress.advance("uploaded")
    if progress:
        progress.stop()


def _update_index(fs, root: str, m: Manifest, with_images: bool, dest: str) -> None:
    path = _join(root, INDEX)
    index = _read_json(fs, path, dest) or {"format": "artdata-remote-index", "format_version": 1, "versions": []}
    entry = {"name": m.name, "version": m.version, "created_at": m.card.get("created_at"), "rows": m.rows,
             "path": f"{m.name}/{m.version}"}
    old = next((e for e in index["versions"] if e["name"] == m.name and e["version"] == m.version), None)
    entry["images"] = with_images or bool(old and old.get("images"))
    if old == entry:
        return
    index["versions"] = [e for e in index["versions"] if e is not old] + [entry]
    index["versions"].sort(key=lambda e: (e["name"], e.get("created_at") or "", e["version"]))
    _put_bytes(fs, (json.dumps(index, indent=2) + "\n").encode(), path)


# ---------------------------------------------------------------- list, pull

def remote_versions(source: str) -> list[dict]:
    fs, root = open_store(source)
    try:
        index = _read_json(fs, _join(root, INDEX), source)
    except RemoteError:
        raise
    except Exception as exc:
        raise _fail(source, exc) from None
    if index is None:
        raise RemoteError(f"{source}: no {INDEX} there (not a folder that `artdata manifests push` wrote)")
    return index.get("versions", [])


def _locate(source: str) -> tuple[str, str | None]:
    """SOURCE or SOURCE/NAME[@VERSION] -> (store URL, NAME[@VERSION] or None)."""
    fs, root = open_store(source)
    try:
        if fs.exists(_join(root, INDEX)):
            return source, None
    except Exception as exc:
        raise _fail(source, exc) from None
    base, _, last = source.rstrip("/").rpartition("/")
    if base and last and not base.endswith(":/") and not base.endswith(":"):
        return base, last
    return source, None


@dataclass
class PullResult:
    ref: str
    path: Path
    downloaded: list[str] = field(default_factory=list)
    already: bool = False
    images_fetched: int = 0
    images_present: int = 0
    images_from_urls: int = 0
    image_mismatches: list[str] = field(default_factory=list)


CHUNK = 8 << 20      # bytes asked for at once: a cut transfer loses at most this much


def _download(fs, path: str, local: Path, size: int, url: str) -> None:
    """Into `local`, in ranged chunks appended as they come, so that a cut transfer (or a killed pull run)
    resumes from the bytes already received; up to RETRIES tries. A server that ignores ranges and sends the
    whole file is taken as it is."""
    last = None
    for _ in range(RETRIES):
        have = local.stat().st_size if local.exists() else 0
        if have > size:
            local.unlink()
            have = 0
        try:
            while have < size:
                end = min(size, have + CHUNK)
                data = fs.cat_file(path, start=have, end=end)
                if len(data) != end - have:
                    if len(data) == size:             # no range support: the whole file came
                        local.write_bytes(data)
                        have = size
                        break
                    raise OSError(f"asked for bytes {have}-{end - 1}, got {len(data)} bytes")
                with open(local, "ab") as fh:
                    fh.write(data)
                have = end
            return
        except FileNotFoundError:
            raise RemoteError(f"{url}: missing from the remote version") from None
        except Exception as exc:      # a cut connection, a timeout: keep what came and try again
            last = exc
    raise _fail(url, last or OSError(f"incomplete after {RETRIES} tries"))


def pull(home: Home, source: str, with_images: bool = False, progress=None) -> PullResult:
    store_url, want = _locate(source)
    versions = remote_versions(store_url)
    if not versions:
        raise RemoteError(f"{store_url}: {INDEX} lists no versions")
    if want is None:
        names = sorted({v["name"] for v in versions})
        if len(names) > 1:
            raise RemoteError(f"{store_url} holds several manifests ({', '.join(names)}): name one, "
                              f"as {store_url.rstrip('/')}/{names[0]}")
        want = names[0]
    name, version = parse_ref(want)
    check_name(name, "manifest name")
    hits = [v for v in versions if v["name"] == name and (version is None or v["version"].startswith(version))]
    if not hits:
        have = ", ".join(sorted({f"{v['name']}@{v['version']}" for v in versions})[:10])
        raise RemoteError(f"{store_url}: no version {want} (there: {have})")
    if version is not None and len({h["version"] for h in hits}) > 1:
        raise RemoteError(f"{store_url}: several versions of {name} start with {version}")
    entry = hits[-1]
    fs, root = open_store(store_url)
    vdir = _join(root, entry.get("path") or f"{name}/{entry['version']}")
    vurl = f"{store_url.rstrip('/')}/{entry.get('path') or name + '/' + entry['version']}"
    ref = f"{name}@{entry['version']}"
    final = home.manifests / name / entry["version"]
    res = PullResult(ref, final)
    try:
        card = _read_json(fs, _join(vdir, "card.json"), vurl)
        if card is None:
            raise RemoteError(f"{vurl}/card.json: missing (the version was not pushed completely)")
        if card.get("name") != name or card.get("version") != entry["version"]:
            raise RemoteError(f"{vurl}/card.json: names {card.get('name')}@{card.get('version')}, not {ref}")
        if (final / "card.json").is_file():
            local = json.loads((final / "card.json").read_text())
            if local.get("content_hash") != card.get("content_hash"):
                raise RemoteError(f"{ref} is in {home.manifests} already with other content")
            res.already = True
        else:
            partial = home.manifests / name / f".pull-{entry['version']}"
            for f in card["files"]:
                rel = f["path"]
                if rel.startswith("/") or ".." in Path(rel).parts:
                    raise RemoteError(f"{vurl}/card.json: a file path outside the version folder: {rel!r}")
                local = partial / rel
                local.parent.mkdir(parents=True, exist_ok=True)
                if local.is_file() and local.stat().st_size == f["bytes"] and sha256_file(local) == f["sha256"]:
                    continue
                _download(fs, _join(vdir, rel), local, f["bytes"], f"{vurl}/{rel}")
                if local.stat().st_size != f["bytes"] or sha256_file(local) != f["sha256"]:
                    local.unlink()
                    raise RemoteError(f"{vurl}/{rel}: its size or sha256 differs from the card's; not pulled "
                                      f"(the remote copy was changed or damaged)")
                res.downloaded.append(rel)
            (partial / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
            pulled = load(home.manifests, str(partial))
            if content_hash(pulled.table()) != card["content_hash"] or not card["content_hash"].startswith(
                    entry["version"]):
                raise RemoteError(f"{vurl}: its records do not hash to the version id {entry['version']}; not pulled")
            try:
                os.replace(partial, final)
            except OSError:
                if not (final / "card.json").is_file():
                    raise
                shutil.rmtree(partial, ignore_errors=True)
        if with_images:
            _pull_images(fs, root, entry, home, load(home.manifests, ref), res, progress)
    except RemoteError:
        raise
    except Exception as exc:
        raise _fail(vurl, exc) from None
    return res


def _pull_images(fs, root: str, entry: dict, home: Home, m: Manifest, res: PullResult, progress) -> None:
    store = ImageStore(home.images)
    keys = _image_keys(m)
    todo = [k for k in keys if store.check(k) is not None]
    res.images_present = len(keys) - len(todo)
    if entry.get("images") and todo:
        if progress:
            progress.start(len(todo), 0)
        for k in todo:
            path = _join(root, "images", k[:2], k[2:4], f"{k}.jpg")
            try:
                data = fs.cat_file(path)
            except FileNotFoundError:
                continue
            if hashlib.sha256(data).hexdigest() != k:
                res.image_mismatches.append(k)
                continue
            store.put(data, k)
            res.images_fetched += 1
            if progress:
                progress.advance("fetched")
        if progress:
            progress.stop()
    left = [k for k in keys if store.check(k) is not None]
    if left:                    # not pushed with the manifest: from their original URLs, as materialize does
        from artdata.materialize import materialize
        r = materialize(home, m.ref)
        res.images_from_urls = r.counts.get("fetched", 0)
        res.image_mismatches += r.mismatches
