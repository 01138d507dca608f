"""Helpers shared by test_faults.py and test_stress.py (stdlib only).

Nothing here edits the stand-in servers' source: extra server behaviour
is added by wrapping an instance's ``handle`` method.
"""

import contextlib
import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

MiB = 1 << 20
BLOCK = MiB
PROBE_RANGE = "bytes=0-%d" % (BLOCK - 1)

_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


def stats(m):
    """The daemon's counters (user.cpfs.stats on the mount root)."""
    raw = os.getxattr(m.mnt, "user.cpfs.stats").decode()
    out = {}
    for line in raw.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = int(v)
    return out


DELAY_PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                           "bench", "delayproxy.py")


@contextlib.contextmanager
def delay_proxy(servers, tmp_path, delay_ms, window_kib):
    """The data host behind tests/bench/delayproxy.py (@delay_ms each way,
    @window_kib per connection): the API hands out URLs through it while
    the block runs.  Yields the proxy's port."""
    pf = tmp_path / "proxy.port"
    port = int(servers.data.url.rsplit(":", 1)[1].split("/")[0])
    p = subprocess.Popen([sys.executable, DELAY_PROXY,
                          "--target-port", str(port),
                          "--delay-ms", str(delay_ms),
                          "--window-kib", str(window_kib),
                          "--port-file", str(pf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        for _ in range(200):
            if pf.exists() and pf.read_text().strip():
                break
            if p.poll() is not None:
                pytest.fail("delayproxy exited: %s" % p.stderr.read())
            time.sleep(0.05)
        proxy = int(pf.read_text().split()[0])
        servers.api.data_base = "http://127.0.0.1:%d/%s" % (
            proxy, servers.data.bucket)
        yield proxy
    finally:
        servers.api.data_base = None
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def bytes_sent(reqs, want, timeout=5.0):
    """The body bytes the stand-in wrote for @reqs, once they reach @want
    or @timeout passes: it counts a chunk after its write returns, so a
    client may hold the bytes a moment before they are counted."""
    end = time.time() + timeout
    while True:
        n = sum(r.bytes_sent for r in reqs)
        if n == want or time.time() >= end:
            return n
        time.sleep(0.01)


def errno_of(fn, *a, **kw):
    """0 if fn(*a) succeeds, else the errno of the OSError it raised."""
    try:
        fn(*a, **kw)
    except OSError as e:
        return e.errno
    return 0


def errname(n):
    return errno.errorcode.get(n, str(n)) if n else "success"


def rng_of(req):
    """(start, end or None) of a request's Range header, or None."""
    m = _RANGE_RE.fullmatch((req.range or "").strip())
    if not m:
        return None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


def asked_again(gets, req):
    """True when every byte of @req's range was asked for again after it,
    by 206 answers in @gets: in one range or in several (each read
    waiting on a refused part resumes its own block)."""
    lo, hi = rng_of(req)
    spans = sorted(rng_of(r) for r in gets
                   if r.status == 206 and r.time > req.time and rng_of(r))
    for a, b in spans:
        if a > lo:
            break
        if b is None or b >= hi:
            return True
        lo = max(lo, b + 1)
    return False


def rstart(req):
    r = rng_of(req)
    return r[0] if r else None


def not_probe(req):
    """True for range GETs other than the open-time probe of block 0."""
    r = rng_of(req)
    return r is not None and r[0] != 0


def starts_at(offset):
    return lambda req: rstart(req) == offset


def starts_in(lo, hi):
    """Range start in [lo, hi)."""
    def pred(req):
        s = rstart(req)
        return s is not None and lo <= s < hi
    return pred


def pread_direct(path, size, off):
    """One O_DIRECT pread: the daemon sees exactly this read (no kernel
    page cache, no readahead)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        return os.pread(fd, size, off)
    finally:
        os.close(fd)


def read_direct_all(path, chunk=MiB):
    out = bytearray()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        off = 0
        while True:
            b = os.pread(fd, chunk, off)
            if not b:
                break
            out += b
            off += len(b)
    finally:
        os.close(fd)
    return bytes(out)


class Timed:
    """with Timed() as t: ...; t.elapsed"""

    def __enter__(self):
        self.t0 = time.monotonic()
        self.elapsed = None
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        return False


class Bg(threading.Thread):
    """Runs fn(*a) in a daemon thread; .result / .error / .elapsed."""

    def __init__(self, fn, *a):
        super().__init__(daemon=True)
        self.fn, self.a = fn, a
        self.result = self.error = self.elapsed = None
        self.t0 = None

    def run(self):
        self.t0 = time.monotonic()
        try:
            self.result = self.fn(*self.a)
        except BaseException as e:  # noqa: B902 - reported by the test
            self.error = e
        finally:
            self.elapsed = time.monotonic() - self.t0


def new_log_lines(m, since):
    """Non-empty log lines written after byte offset `since`."""
    return [ln for ln in m.log()[since:].splitlines() if ln.strip()]


def ignore_if_match(data):
    """Make a DataHost ignore If-Match (a server that lets a changed
    object through with its new ETag instead of answering 412)."""
    orig = data.handle

    def handle(h):
        h.req.headers.pop("if-match", None)
        return orig(h)
    data.handle = handle


def wait_exit(proc, timeout):
    """Waits for a process; returns (rc, seconds) or (None, timeout)."""
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout)
    except Exception:
        return None, timeout
    return rc, time.monotonic() - t0


def signal_ends_blocked_read(m, th, sig=signal.SIGTERM):
    """Sends @sig to the daemon of mount @m while @th (a Bg) waits on it:
    the daemon exits 0 within 5 s and @th ends with an OSError."""
    m.proc.send_signal(sig)
    rc, dt = wait_exit(m.proc, 10)
    assert rc == 0, (rc, m.log()[-2000:])
    assert dt < 5, "exit took %.1f s" % dt
    th.join(10)
    assert not th.is_alive(), "reader still blocked after exit"
    assert isinstance(th.error, OSError), th.result


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
