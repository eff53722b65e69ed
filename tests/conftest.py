import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artdata.mirror import Faults, Mirror
from artdata.paths import Home

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def jpeg_bytes(w=320, h=240, color=(200, 40, 40), quality=90, noise=True) -> bytes:
    arr = np.zeros((h, w, 3), np.uint8) + np.array(color, np.uint8)
    if noise:
        arr = np.clip(arr.astype(np.int16) + np.random.default_rng(0).integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def mirror():
    m = Mirror(faults=Faults.none()).start()
    yield m
    m.stop()


def shared_path(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available (../shared/data beside the checkout)")
    return p


def debian_tool(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` with apt first when it is missing
    (the test setup of the browser and Redis tests; needs root, as on CI's machines)."""
    import shutil
    import subprocess
    exe = shutil.which(binary)
    if exe is None:
        if os.geteuid() != 0:
            pytest.fail(f"this test needs Debian's {package}: apt-get install {package} (as root)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True, env=env,
                       timeout=900, capture_output=True)
        exe = shutil.which(binary)
    assert exe, f"{package} did not install"
    return exe


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(parent_pid(int(d)), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def still_running(pids: list[int], wait: float = 10.0) -> list[int]:
    """Those of `pids` still alive after waiting up to `wait` seconds for them to go."""
    import time
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def assert_polite(m, role: str, rate: float) -> None:
    """The mirror's host `role` saw at most `rate` requests in any second, give or take one, and at most 3 x `rate`
    in any 3 s. The one: the mirror stamps a request when its connection's thread wakes, which on a busy 2-core
    machine can be tens of milliseconds after the request came, so a request sent on time may be counted in the
    next second's company (seen in CI: 31 at --rate 30). The 3 s bound keeps the check sharp: a client over its rate
    by even one a second sends more than that (the client keeps 1.05 s windows: 87 at most in 3 s at --rate 30)."""
    one, three = m.max_rate(role, 1.0), m.max_rate(role, 3.0)
    assert one <= rate + 1 and three <= 3 * rate, (
        f"the {role} host saw {one} requests in a second and {three} in 3 s, at a rate of {rate}")


def sigkill_when_held(cmd: list[str], home: Home, hold, records: int) -> tuple[Path, list[int], dict]:
    """Start the crawl `cmd`, wait until its journal holds `records` records and `hold` (a Mirror.hold) holds an
    answer back, then SIGKILL it: (the journal, the processes below it at the kill, the environment it ran
    with, for the same command again). The process is reaped whatever happens."""
    import signal
    import subprocess
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        journal = journal_with(home, records)
        hold.wait_held()
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return journal, tree, env


def journal_with(home: Home, n: int, pattern: str = "*/journal.jsonl", timeout: float = 90):
    """The harvest's journal once it holds `n` records (fails the test after `timeout` s)."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(home.harvest.glob(pattern)) if home.harvest.exists() else []
        if found and sum(1 for _ in open(found[0], "rb")) >= n:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"the harvest did not record {n} ids within {timeout:g}s")


# ---------------------------------------------------------------- no packet leaves the machine
# Every test runs with this guard: a Python socket that tries to connect anywhere but the loopback range is
# stopped before the connect and recorded, and the test fails at teardown (a client that swallowed the error
# into a failed record still fails the test). Tests that check a refusal add addresses to `forbidden`: a
# connection attempted there fails the test too, even on loopback.
import ipaddress as _ipaddress
import socket as _socket


class ConnectGuard:
    def __init__(self):
        self.forbidden: set[str] = set()
        self.violations: list[str] = []
        self.attempts: list[str] = []

    def check(self, address) -> None:
        if not isinstance(address, tuple) or not address:
            return                          # AF_UNIX and friends
        host = str(address[0]).split("%", 1)[0]
        if host == "localhost":
            host = "127.0.0.1"
        self.attempts.append(f"{host}:{address[1] if len(address) > 1 else ''}")
        try:
            ip = _ipaddress.ip_address(host)
        except ValueError:
            self.violations.append(f"connect to an unresolved name {host!r}")
            raise OSError(f"test guard: connect to {host!r} refused") from None
        mapped = getattr(ip, "ipv4_mapped", None) or ip
        if host in self.forbidden or not mapped.is_loopback:
            self.violations.append(f"connect to {host}:{address[1]}")
            raise OSError(f"test guard: connect to {host} refused (nothing may leave the machine)")


@pytest.fixture(autouse=True)
def connect_guard(monkeypatch):
    guard = ConnectGuard()
    real_connect, real_connect_ex = _socket.socket.connect, _socket.socket.connect_ex

    def connect(self, address):
        if self.family in (_socket.AF_INET, _socket.AF_INET6):
            guard.check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (_socket.AF_INET, _socket.AF_INET6):
            guard.check(address)
        return real_connect_ex(self, address)
    monkeypatch.setattr(_socket.socket, "connect", connect)
    monkeypatch.setattr(_socket.socket, "connect_ex", connect_ex)
    yield guard
    assert not guard.violations, f"connections attempted where none may go: {guard.violations}"
