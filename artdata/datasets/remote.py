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
downloads resume from the bytes already received.

A remote is hostile until checked: every value of its index.json and card.json (names, version ids, paths, file
names, sizes, checksums) is checked against the forms artdata itself writes before it becomes a path, each
remote file is read in pieces straight to disk and never past the size its card gives (images and JSON documents
past a cap), each has a total deadline (connect, headers and body), and a refused pull removes what it wrote.
Credentials come only from each store's usual places (the
environment, ~/.aws/config and ~/.aws/credentials, ...); they are never written, logged or echoed: error
messages are stripped of the values of the usual credential variables.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import posixpath
import re
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from artdata import ArtdataError
from artdata.datasets.images import ImageStore
from artdata.datasets.manifest import NAME_RE, Manifest, check_name, content_hash, load, parse_ref, sha256_file
from artdata.paths import Home

INDEX = "index.json"
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                    "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN")
RETRIES = 4

# the forms artdata writes, and nothing else is taken from a remote
VERSION_RE = re.compile(r"^[0-9a-f]{12}$")             # manifest.write_manifest: the content hash's first 12 digits
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CARD_FILE_RE = re.compile(r"^(data/[a-z0-9][a-z0-9_]{0,99}-[0-9]{5}-of-[0-9]{5}\.parquet"   # the records
                          r"|[a-z0-9][a-z0-9_]{0,99}\.parquet|README\.md|croissant\.json)$")  # side tables, cards
MAX_JSON_BYTES = 64 << 20      # index.json, card.json
MAX_IMAGE_BYTES = 64 << 20     # one stored image (the store's JPEGs are re-encoded: kilobytes to a few MB)
PIECE = 1 << 20                # bytes read at once from a remote body, written out before the next read
MIN_RATE = 256 << 10           # bytes/s a file's deadline allows on top of ARTDATA_PULL_TIMEOUT
WAIT_NOTE = 5.0                # seconds of waiting on one remote file before the console says what for (0: at once)


class RemoteError(ArtdataError):
    pass


class RemoteRefused(RemoteError):
    """The remote's content is not what artdata writes or not what its card says: nothing of it is kept."""


class RemoteStalled(RemoteError):
    """A transfer that did not finish (a deadline, a cut): what came is kept in the hidden folder for a resume."""


def pull_timeout() -> float:
    """The deadline base in seconds (connect + headers + body of one remote file): ARTDATA_PULL_TIMEOUT, default 60;
    a file of n bytes gets this plus n / MIN_RATE."""
    raw = os.environ.get("ARTDATA_PULL_TIMEOUT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e7:
        raise RemoteError(f"ARTDATA_PULL_TIMEOUT={raw!r}: a number of seconds above 0")
    return value


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
    if isinstance(exc, TimeoutError):
        return RemoteStalled(_scrub(f"{url}: no complete answer within the deadline of {pull_timeout():g} s "
                                    f"(ARTDATA_PULL_TIMEOUT)"))
    low = (name + " " + msg).lower()
    if any(k in low for k in ("nocredentials", "invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied",
                              "forbidden", "403", "expiredtoken", "unauthorized", "401")):
        hint = (": access denied; check the store's credentials (for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE, ~/.aws/credentials; AWS_ENDPOINT_URL for an S3-compatible server)")
        return RemoteError(_scrub(f"{url}{hint} ({name})"))
    return RemoteError(_scrub(f"{url}: {name}: {msg[:300]}"))


def store_error(url: str, exc: BaseException) -> RemoteError:
    """A store's own error (botocore, aiohttp, OSError...) as one line naming `url`, with no credential in it."""
    return _fail(url, exc)


def open_store(url: str):
    """(filesystem, root path) for a folder URL or a plain path."""
    try:
        import fsspec
    except ImportError:
        raise RemoteError("remote stores need fsspec: pip install -e '.[remote]' (s3fs for s3://)") from None
    try:
        # a fresh instance: credentials are read from their usual places at each call, never cached here
        kwargs = {}
        if url.split("://", 1)[0].lower() in ("http", "https"):      # every request of the session gets a deadline
            import aiohttp
            base = pull_timeout()
            # read_bufsize: a body's pieces come up to PIECE at once (aiohttp's default, 64 kB, costs a round trip
            # to fsspec's event loop per 64 kB)
            kwargs["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=base, sock_connect=min(base, 30)),
                                       "read_bufsize": PIECE}
            kwargs["get_client"] = guarded_client(urlsplit(url).hostname or "")
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **kwargs)
    except (ImportError, ValueError) as exc:   # an unknown protocol, or its package missing (s3fs, gcsfs...)
        raise RemoteError(f"{url}: {exc}".splitlines()[0]) from None
    return fs, root.rstrip("/")


def guarded_client(own_host: str):
    """fsspec's `get_client` for an http(s) store: an aiohttp session that, on every hop (a redirect's too),
    refuses a host other than the store's own when it is, or resolves to, a loopback, private or link-local
    address (as the harvest's client does: the store is the host the user named, a redirect is its content).
    Names are checked where they are resolved for the connection (no second lookup); address literals, which
    aiohttp does not resolve, when each request starts."""
    import aiohttp
    import yarl
    from artdata.harvest.client import refused_address
    own = own_host.lower().rstrip(".")

    def refusal(host: str, ip: str, url=None) -> RemoteError | None:
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return RemoteError(f"{host} resolves to an unparsable address {ip!r}")
        if refused_address(addr):
            where = host if host == ip else f"{host} ({ip})"
            return RemoteError(f"refused{f' {url}' if url else ''}: {where} is a loopback, private or link-local "
                               f"address, which the store {own_host} may not redirect to")
        return None

    class Resolver(aiohttp.ThreadedResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            found = await super().resolve(host, port, family)
            if host.lower().rstrip(".") != own:
                for r in found:
                    if (exc := refusal(host, r["host"])) is not None:
                        raise exc
            return found

    def check_literal(url) -> None:
        host = (url.host or "").lower().rstrip(".").strip("[]")
        if host != own:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return                  # a name: checked as it is resolved
            if (exc := refusal(host, host, url)) is not None:
                raise exc

    async def on_start(session, ctx, params):
        check_literal(params.url)

    async def on_redirect(session, ctx, params):        # before the next hop is asked
        location = params.response.headers.get("Location") or params.response.headers.get("URI")
        if location:
            check_literal(params.url.join(yarl.URL(location)))

    async def get_client(**kw):
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_start)
        trace.on_request_redirect.append(on_redirect)
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=Resolver()), trace_configs=[trace], **kw)
    return get_client


def _protocol(fs) -> str:
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def _is_local(fs) -> bool:
    return _protocol(fs) in ("file", "local")


def _is_http(fs) -> bool:
    return _protocol(fs) in ("http", "https")


def _join(root: str, *parts: str) -> str:
    return posixpath.join(root, *parts) if root else posixpath.join(*parts)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _cap(n: int) -> str:
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n} bytes"


def _capped_pieces(f, total: int | None, cap: int, deadline: float, where: str, what: str):
    """The pieces of a whole remote body, refused over `cap` bytes (declared or received: `what` may have at
    most that) and cut off past `deadline` (TimeoutError)."""
    if total is not None and total > cap:
        raise RemoteRefused(f"{where}: {total} bytes, over the {_cap(cap)} {what} may have")
    n = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        data = f.read(PIECE)
        if not data:
            return
        n += len(data)
        if n > cap:
            raise RemoteRefused(f"{where}: over the {_cap(cap)} {what} may have; not read further")
        yield data


def _read_small(fs, path: str, where: str, cap: int, timeout: float) -> bytes:
    """A whole remote document of at most `cap` bytes, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    f, _, total, _ = _open_body(fs, path, 0, None, timeout)
    with f:
        return b"".join(_capped_pieces(f, total, cap, deadline, where, "a remote's JSON"))


def _read_json(fs, path: str, where: str):
    """The JSON document at `path` (None when there is none); `where` names it in errors."""
    try:
        raw = _read_small(fs, path, where, MAX_JSON_BYTES, pull_timeout())
    except FileNotFoundError:
        return None
    except TimeoutError:
        raise RemoteStalled(f"{where}: no complete answer within {pull_timeout():g} s (the deadline of one remote "
                            f"file; ARTDATA_PULL_TIMEOUT sets it)") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RemoteRefused(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise RemoteRefused(f"{where}: not JSON (not UTF-8 text)") from None
    except RecursionError:
        raise RemoteRefused(f"{where}: JSON nested too deeply to be an artdata file") from None


def _check_index(index, where: str) -> list[dict]:
    """index.json's versions, each entry as `push` writes it (else one line naming the key)."""
    if not isinstance(index, dict):
        raise RemoteRefused(f"{where}: a JSON {type(index).__name__}, not the object `artdata manifests push` writes")
    versions = index.get("versions")
    if not isinstance(versions, list):
        raise RemoteRefused(f"{where}: key 'versions': {'missing' if versions is None else _show(versions)}, "
                            f"not a list")
    for i, e in enumerate(versions):
        key = f"versions[{i}]"
        if not isinstance(e, dict):
            raise RemoteRefused(f"{where}: {key}: {_show(e)}, not an object")
        name, version = e.get("name"), e.get("version")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise RemoteRefused(f"{where}: {key}.name: {_show(name)} is not a manifest name (lower-case letters, "
                                f"digits, '.', '_', '-')")
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise RemoteRefused(f"{where}: {key}.version: {_show(version)} is not a version id (12 hex digits)")
        if "path" in e and e["path"] != f"{name}/{version}":
            raise RemoteRefused(f"{where}: {key}.path: {_show(e['path'])}, not {name}/{version}")
        if e.get("created_at") is not None and not (isinstance(e["created_at"], str) and len(e["created_at"]) <= 40):
            raise RemoteRefused(f"{where}: {key}.created_at: {_show(e['created_at'])} is not a date")
        if "rows" in e and not _count(e["rows"]):
            raise RemoteRefused(f"{where}: {key}.rows: {_show(e['rows'])} is not a count")
        if "images" in e and not isinstance(e["images"], bool):
            raise RemoteRefused(f"{where}: {key}.images: {_show(e['images'])} is not true or false")
    return versions


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_card(card, where: str, name: str, version: str) -> None:
    """A remote card.json as `write_manifest` writes it, for version `name@version` (else one line naming the key)."""
    if not isinstance(card, dict):
        raise RemoteRefused(f"{where}: a JSON {type(card).__name__}, not a manifest card")

    def bad(key, what):
        return RemoteRefused(f"{where}: key {key!r}: {what}")

    for key, want in (("name", name), ("version", version)):
        if card.get(key) != want:
            raise bad(key, f"{_show(card.get(key))}, where {INDEX} says {want!r}")
    ch = card.get("content_hash")
    if not isinstance(ch, str) or not SHA256_RE.match(ch) or not ch.startswith(version):
        raise bad("content_hash", f"{_show(ch)} is not a sha256 starting with the version id {version}")
    if not isinstance(card.get("created_at"), str):
        raise bad("created_at", f"{_show(card.get('created_at'))} is not a date")
    counts = card.get("counts")
    if not isinstance(counts, dict) or not _count(counts.get("rows")):
        raise bad("counts", f"{_show(counts)} has no row count")
    for key, types in (("card_version", str), ("schema_version", str), ("artdata_version", str),
                       ("description", str), ("git_commit", (str, type(None))), ("lineage", dict), ("columns", list)):
        if key in card and not isinstance(card[key], types):
            raise bad(key, f"{_show(card[key])} is not a {getattr(types, '__name__', 'text or null')}")
    if not all(isinstance(c, str) for c in card.get("columns", [])):
        raise bad("columns", "not a list of names")
    image = (card.get("lineage") or {}).get("image")
    if image is not None:      # `materialize` makes images with these settings
        kinds = {"size": int, "quality": int, "max_pixels": int, "max_bytes": int, "side": str, "upscale": bool}
        if not isinstance(image, dict) or any(k in kinds and (not isinstance(v, kinds[k]) or (kinds[k] is int
                                              and isinstance(v, bool))) for k, v in image.items()):
            raise bad("lineage.image", f"{_show(image)} is not image settings")
    files = card.get("files")
    if not isinstance(files, list) or not files:
        raise bad("files", f"{_show(files)} is not a list of files")
    seen = set()
    for i, f in enumerate(files):
        key = f"files[{i}]"
        if not isinstance(f, dict):
            raise bad(key, f"{_show(f)} is not an object")
        path = f.get("path")
        if not isinstance(path, str) or not CARD_FILE_RE.match(path):
            raise bad(f"{key}.path", f"{_show(path)} is not a file name artdata writes (data/*-00000-of-00001.parquet, "
                                     f"NAME.parquet, README.md, croissant.json)")
        if path in seen:
            raise bad(f"{key}.path", f"{path} is listed twice")
        seen.add(path)
        if not isinstance(f.get("sha256"), str) or not SHA256_RE.match(f["sha256"]):
            raise bad(f"{key}.sha256", f"{_show(f.get('sha256'))} is not a sha256 (64 hex digits)")
        if not _count(f.get("bytes")):
            raise bad(f"{key}.bytes", f"{_show(f.get('bytes'))} is not a size in bytes")
        if "rows" in f and not _count(f["rows"]):
            raise bad(f"{key}.rows", f"{_show(f['rows'])} is not a count")
    if not any(p.startswith("data/") for p in seen):
        raise bad("files", "no data/*.parquet file")


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
        remote_card = _read_json(fs, _join(vdir, "card.json"), f"{dest.rstrip('/')}/{m.name}/{m.version}/card.json")
        if remote_card is not None and not isinstance(remote_card, dict):
            raise RemoteError(f"{dest.rstrip('/')}/{m.name}/{m.version}/card.json: not a manifest card")
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
        try:                        # a stored file that is a link out of the store is never sent
            local = [store.resolve(k) for k in batch]
        except OSError as exc:
            raise RemoteError(f"push: {exc}") from None
        if _is_local(fs):
            for path, r in zip(local, remote):
                _put_file(fs, path, r)
        else:
            fs.put([str(path) for path in local], remote)
        res.images_uploaded += len(batch)
        for _ in batch if progress else ():
            progress.advance("uploaded")
    if progress:
        progress.stop()


def _update_index(fs, root: str, m: Manifest, with_images: bool, dest: str) -> None:
    path = _join(root, INDEX)
    index = _read_json(fs, path, f"{dest.rstrip('/')}/{INDEX}")
    if index is None:
        index = {"format": "artdata-remote-index", "format_version": 1, "versions": []}
    _check_index(index, f"{dest.rstrip('/')}/{INDEX}")
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
    return _versions(fs, root, source)


def _versions(fs, root: str, source: str) -> list[dict]:
    where = f"{source.rstrip('/')}/{INDEX}"
    try:
        index = _read_json(fs, _join(root, INDEX), where)
    except RemoteError:
        raise
    except Exception as exc:
        raise _fail(source, exc) from None
    if index is None:
        raise RemoteError(f"{source}: no {INDEX} there (not a folder that `artdata manifests push` wrote)")
    return _check_index(index, where)


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
    images_wanted: int = 0
    images_fetched: int = 0
    images_present: int = 0
    images_from_urls: int = 0
    image_mismatches: list[str] = field(default_factory=list)
    images_missing: list[str] = field(default_factory=list)    # "KEY: why", each image still not in the store


CHUNK = 8 << 20      # bytes asked for at once: a cut transfer loses at most this much


class _Watch:
    """Tells the console what a pull is waiting for (which file, from where) once one remote file has taken
    WAIT_NOTE seconds, and again every WAIT_NOTE seconds; at each file's start when WAIT_NOTE is 0."""

    def __init__(self, say):
        self.say, self.what, self.t0, self.limit, self.last = say, None, 0.0, 0.0, 0.0
        self._lock, self._stop, self._thread = threading.Lock(), threading.Event(), None

    def begin(self, what: str, limit: float) -> None:
        if self.say is None:
            return
        with self._lock:
            self.what, self.limit = what, limit
            self.t0 = self.last = time.monotonic()
        if WAIT_NOTE <= 0:
            self.say(f"waiting for {what} (deadline {limit:.0f} s)")
        elif self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="artdata-pull-watch")
            self._thread.start()

    def end(self) -> None:
        with self._lock:
            self.what = None

    def _run(self) -> None:
        while not self._stop.wait(min(WAIT_NOTE, 1.0)):
            with self._lock:
                now = time.monotonic()
                if self.what is None or now - self.last < WAIT_NOTE:
                    continue
                self.last, line = now, (f"waiting for {self.what}: {now - self.t0:.0f} s so far "
                                        f"(deadline {self.limit:.0f} s)")
            self.say(line)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def _download(fs, path: str, local: Path, size: int, url: str, timeout: float) -> None:
    """Into `local`, in ranged chunks of CHUNK bytes, each read in pieces of PIECE bytes written out as they come
    (memory stays flat); a cut chunk is asked again from its start, so a cut transfer (or a killed pull run)
    resumes from the chunks already received; up to RETRIES tries, all within the file's deadline `timeout`
    (connect, headers and body). A host that ignores Range is read once from its start, never past `size`, and
    refused at once when it declares another size than the card's."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    for _ in range(RETRIES):
        have = local.stat().st_size if local.exists() else 0
        if have > size:
            local.unlink()
            have = 0
        try:
            while have < size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                have = _fetch_chunk(fs, path, local, have, min(size, have + CHUNK), size, url, deadline, left)
            return
        except FileNotFoundError:
            raise RemoteRefused(f"{url}: missing from the remote version") from None
        except RemoteError:
            raise
        except Exception as exc:      # a cut connection, a timeout: keep the chunks that came and try again
            last = exc
            if time.monotonic() >= deadline - 0.05:
                break
    got = local.stat().st_size if local.exists() else 0
    kept = f"; {got} of {size} bytes kept for a resume: run the pull again" if got else ""
    if isinstance(last, TimeoutError) or time.monotonic() >= deadline - 0.05:
        raise RemoteStalled(f"{url}: not complete within its deadline of {timeout:.0f} s (connect, headers and "
                            f"body; ARTDATA_PULL_TIMEOUT sets its base){kept}")
    raise RemoteStalled(f"{_fail(url, last or OSError(f'incomplete after {RETRIES} tries'))}{kept}")


def _fetch_chunk(fs, path: str, local: Path, have: int, end: int, size: int, url: str, deadline: float,
                 left: float) -> int:
    """Bytes have..end-1 appended to `local` (or, from a host that ignores Range, the whole file written from its
    start); returns the new length of `local`."""
    f, offset, total, ranged = _open_body(fs, path, have, end, left)
    with f:
        if total is not None and total != size:
            raise RemoteRefused(f"{url}: the remote file has {total} bytes where the card says {size}; not pulled")
        if not ranged:
            stop, mode, offset = size, "wb", 0
        elif offset == have:
            stop, mode = end, "ab"
        else:
            raise OSError(f"asked for bytes from {have}, got bytes from {offset}")
        pos = offset
        with open(local, mode) as out:
            try:
                while pos < stop:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    data = f.read(min(PIECE, stop - pos))
                    if not data:
                        raise OSError(f"the answer ended after {pos - offset} of {stop - offset} bytes")
                    out.write(data)
                    pos += len(data)
            except BaseException:
                out.truncate(offset)          # a cut chunk is asked again whole
                raise
    return pos


def _open_body(fs, path: str, start: int, end: int | None, timeout: float):
    """(file object, offset, total size, ranged) for bytes start..end-1 of a remote file (to its end when `end`
    is None), read in pieces by the caller. `offset` is where the body starts in the file, `total` the file's size
    as the store declares it (None: not declared), `ranged` False when a host answered a Range with the whole file.
    On http(s) it is one streamed GET whose connect, headers and body share `timeout`."""
    if _is_http(fs):
        import aiohttp
        headers = {"Accept-Encoding": "identity"}      # the bytes as stored: sizes and checksums are of those
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        # a size given: no HEAD first (fsspec sends one otherwise); block_size 0: a streamed body, never read whole
        f = fs.open(path, "rb", block_size=0, size=max(1, end or 1), headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 30)))
        r = f.r
        if r.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", r.headers.get("Content-Range", ""))
            offset = int(m.group(1)) if m else start
            total = int(m.group(2)) if m and m.group(2) != "*" else None
            return f, offset, total, True
        return f, 0, r.content_length, "Range" not in headers
    f = fs.open(path, "rb", block_size=CHUNK)
    size = getattr(f, "size", None)
    if start:
        f.seek(start)
    return f, start, (size if isinstance(size, int) else None), True


def pull(home: Home, source: str, with_images: bool = False, progress=None, say=None) -> PullResult:
    """`say(line)`: where to tell what a slow remote file is being waited for (the console, in the CLI)."""
    store_url, want = _locate(source)
    fs, root = open_store(store_url)
    versions = _versions(fs, root, store_url)
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
    version = entry["version"]               # checked by _check_index: 12 hex digits, as is `name`
    vdir = _join(root, name, version)
    vurl = f"{store_url.rstrip('/')}/{name}/{version}"
    ref = f"{name}@{version}"
    final = home.manifests / name / version
    res = PullResult(ref, final)
    watch = _Watch(say)
    try:
        watch.begin(f"card.json from {vurl}/card.json", pull_timeout())
        card = _read_json(fs, _join(vdir, "card.json"), f"{vurl}/card.json")
        watch.end()
        if card is None:
            raise RemoteError(f"{vurl}/card.json: missing (the version was not pushed completely)")
        _check_card(card, f"{vurl}/card.json", name, version)
        if (final / "card.json").is_file():
            local = json.loads((final / "card.json").read_text())
            if local.get("content_hash") != card.get("content_hash"):
                raise RemoteError(f"{ref} is in {home.manifests} already with other content")
            res.already = True
        else:
            _pull_files(fs, vdir, vurl, card, home, final, res, watch)
        if with_images:
            _pull_images(fs, root, store_url, entry, home, load(home.manifests, ref), res, progress, watch)
    except RemoteError:
        raise
    except Exception as exc:
        raise _fail(vurl, exc) from None
    finally:
        watch.close()
    return res


def _pull_files(fs, vdir: str, vurl: str, card: dict, home: Home, final: Path, res: PullResult, watch) -> None:
    """The card's files into a hidden folder beside `final`, each checked; then the folder becomes `final`. A
    refusal removes the hidden folder (and the folders made for it); a stalled transfer keeps it for a resume."""
    name, version = card["name"], card["version"]
    partial = home.manifests / name / f".pull-{version}"
    made = [d for d in (home.root, home.manifests, home.manifests / name) if not d.exists()]
    try:
        for f in card["files"]:
            rel = f["path"]                  # checked by _check_card: one of the names artdata writes
            local = partial / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            if local.is_file() and local.stat().st_size == f["bytes"] and sha256_file(local) == f["sha256"]:
                continue
            timeout = pull_timeout() + f["bytes"] / MIN_RATE
            watch.begin(f"{rel} ({f['bytes']} bytes) from {vurl}/{rel}", timeout)
            _download(fs, _join(vdir, rel), local, f["bytes"], f"{vurl}/{rel}", timeout)
            watch.end()
            if local.stat().st_size != f["bytes"] or sha256_file(local) != f["sha256"]:
                local.unlink()
                raise RemoteRefused(f"{vurl}/{rel}: its size or sha256 differs from the card's; not pulled "
                                    f"(the remote copy was changed or damaged)")
            res.downloaded.append(rel)
        (partial / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        pulled = load(home.manifests, str(partial))
        try:
            digest = content_hash(pulled.table())
        except Exception as exc:          # Parquet that is not records: pyarrow's, conform's errors
            raise RemoteRefused(f"{vurl}: its records cannot be read ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); not pulled") from None
        if digest != card["content_hash"]:
            raise RemoteRefused(f"{vurl}: its records do not hash to the version id {version}; not pulled")
        try:
            os.replace(partial, final)
        except OSError:
            if not (final / "card.json").is_file():
                raise
            shutil.rmtree(partial, ignore_errors=True)
    except RemoteRefused:
        shutil.rmtree(partial, ignore_errors=True)
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass
        raise


def _fetch_image(fs, path: str, url: str, store: ImageStore, key: str, timeout: float) -> str:
    """One stored image into the store, streamed and capped at MAX_IMAGE_BYTES: "ok" or "mismatch"."""
    deadline = time.monotonic() + timeout
    dest = store.path(key)
    f, _, total, _ = _open_body(fs, path, 0, None, timeout)
    with f:
        pieces = _capped_pieces(f, total, MAX_IMAGE_BYTES, deadline, url, "an image")
        first = next(pieces, b"")          # a declared size over the cap is refused before anything is written
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".pull-{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
        try:
            h = hashlib.sha256(first)
            with open(tmp, "wb") as out:
                out.write(first)
                for data in pieces:
                    h.update(data)
                    out.write(data)
            if h.hexdigest() != key:
                return "mismatch"
            os.replace(tmp, dest)
            return "ok"
        finally:
            tmp.unlink(missing_ok=True)


STALLS = 3      # images in a row that ran out of time: the store is taken as not answering


def _pull_images(fs, root: str, store_url: str, entry: dict, home: Home, m: Manifest, res: PullResult, progress,
                 watch) -> None:
    store = ImageStore(home.images)
    keys = _image_keys(m)
    why = {k: "not an image key (64 hex digits)" for k in keys if not SHA256_RE.match(k)}
    bad = list(why)
    keys = [k for k in keys if k not in why]
    res.images_wanted = len(keys) + len(bad)
    todo = [k for k in keys if store.check(k) is not None]
    res.images_present = len(keys) - len(todo)
    left = list(todo)
    if entry.get("images") and todo:
        left, stalls = [], 0
        if progress:
            progress.start(len(todo), 0)
        for i, k in enumerate(todo):
            rel = f"images/{k[:2]}/{k[2:4]}/{k}.jpg"
            url = f"{store_url.rstrip('/')}/{rel}"
            timeout = pull_timeout()
            watch.begin(f"{rel} from {url}", timeout)
            try:
                status = _fetch_image(fs, _join(root, rel), url, store, k, timeout)
                stalls = 0
            except FileNotFoundError:
                status, why[k] = "missing", f"not in the store ({url})"
            except RemoteRefused as exc:
                status, why[k] = "refused", str(exc)
            except TimeoutError:
                stalls += 1
                status, why[k] = "timeout", f"{url}: not complete within its deadline of {timeout:.0f} s"
            except Exception as exc:
                status, why[k] = "failed", str(_fail(url, exc))
            finally:
                watch.end()
            if status == "ok":
                res.images_fetched += 1
            else:
                left.append(k)
                if status == "mismatch":
                    res.image_mismatches.append(k)
            if progress:
                progress.advance(status)
            if stalls >= STALLS:
                left += todo[i + 1:]
                for k2 in todo[i + 1:]:
                    why[k2] = f"not tried: {STALLS} images in a row from {store_url} ran out of time"
                break
        if progress:
            progress.stop()
    if left:                    # not pushed with the manifest: from their original URLs, as materialize does
        from artdata.harvest.client import ClientConfig, trusted_host
        from artdata.datasets.materialize import materialize
        # the host the user pulls from is one they named (even a loopback one); any other host in the records'
        # URLs is taken as content, which the HTTP client keeps off private and link-local addresses
        client = ClientConfig(trusted_hosts=(trusted_host(store_url),)) if _is_http(fs) else ClientConfig()
        r = materialize(home, m.ref, client=client)
        res.images_from_urls = r.counts.get("fetched", 0)
        res.image_mismatches += r.mismatches
        left = [k for k in left if store.check(k) is not None]
    res.images_missing = [f"{k}: {why.get(k, 'not in the store, and not fetched from its URL')}" for k in left + bad]
