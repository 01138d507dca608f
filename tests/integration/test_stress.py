"""Stress: many readers over many files through injected faults, every
byte checked; and 200 opens at once against an API enforcing 100/min.

The stress test prints one summary line (bytes read, faults injected,
retries from user.cpfs.stats, time) even under -q.
"""

import os
import random
import threading
import time

import pytest

from conftest import MiB, block_coverage, read_file, sha256, standin
from faultlib import Bg, stats

SEED = 20240604
READERS = 8
FILES = 16
READ_PHASE = 25.0      # seconds of reading
TIME_LIMIT = 60.0      # whole test body


def _expire_quickly(data, life_left, counter):
    """Wrap a DataHost so a URL is refused (403 "Request has expired")
    once fewer than `life_left` seconds of its X-Expires remain: with
    expiresIn=E the daemon keeps a URL for E-30 s (its lease margin), so
    expiresIn = 30 + L + 1 makes each URL die about 1 s before the
    daemon would drop it - some reads meet a dead URL every few
    seconds."""
    orig = data.handle
    lock = threading.Lock()

    def handle(h):
        q = h.req.query
        exp = q.get("X-Expires", "")
        if h.req.method == "GET" and exp.isdigit() and \
                time.time() > int(exp) - life_left:
            h.req.id = data._path_id(h.req.path)
            h.req.fault = "url_expired"
            with lock:
                counter[0] += 1
            return h._send_simple(403, {"Content-Type": "application/xml"},
                                  standin.s3_error(
                                      "AccessDenied", "Request has expired",
                                      h.req.path))
        return orig(h)
    data.handle = handle


def test_stress_many_readers_with_faults(servers, cpfs, capsys):
    rng = random.Random(SEED)
    content = {}
    for i in range(FILES):
        size = rng.choice([rng.randrange(1, 200000),
                           rng.randrange(MiB, 7 * MiB),
                           rng.randrange(3 * MiB, 9 * MiB)])
        data = standin.make_bytes(size, seed=SEED + i)
        content[servers.add(data)] = data
    ids = sorted(content)
    total = sum(len(d) for d in content.values())

    # URLs: the daemon keeps each for 4 s; the data host refuses it after 3
    expired = [0]
    servers.api.expires_in = 34
    _expire_quickly(servers.data, 31, expired)
    d = servers.data
    d.set_fault_rate("slowdown", 0.05)
    d.set_fault_rate("reset", 0.007, after=1)
    d.set_fault_rate("reset", 0.007, after=150000)
    d.set_fault_rate("reset", 0.006, after=700000)
    d.set_fault_rate("stall", 0.006, after=20000, seconds=0.8)
    d.set_fault_rate("stall", 0.004, after=300000, seconds=4)

    m = cpfs("timeout=2", "cache_size=16M", "api_rate=600", manifest=None)
    t0 = time.monotonic()
    stop_at = t0 + READ_PHASE
    counts = {"bytes": 0, "seq": 0, "rand": 0, "direct": 0}
    errors = []
    lock = threading.Lock()

    def check(oid, off, got, n, how):
        want = content[oid][off:off + n]
        if got != want:
            errors.append("%s %s off=%d n=%d: got %d bytes, %s" % (
                how, oid, off, n, len(got),
                "short" if want.startswith(got) else "WRONG BYTES"))

    def reader(k):
        r = random.Random(SEED * 31 + k)
        while time.monotonic() < stop_at and not errors:
            oid = r.choice(ids)
            src = content[oid]
            size = len(src)
            mode = r.random()
            try:
                if mode < 0.35:
                    got = read_file(m.path(oid), bufsize=r.choice(
                        [4096, 65536, 131072, MiB]))
                    check(oid, 0, got, size + 1, "seq")
                    n, key = len(got), "seq"
                else:
                    flags = os.O_RDONLY
                    key = "rand"
                    if mode > 0.8:
                        flags |= os.O_DIRECT
                        key = "direct"
                    fd = os.open(m.path(oid), flags)
                    n = 0
                    try:
                        for _ in range(r.randrange(5, 30)):
                            off = r.randrange(size + 1024)
                            want = r.choice([1, 100, 4096, 65536, 300000,
                                             MiB + 17])
                            got = os.pread(fd, want, off)
                            check(oid, off, got, want, key)
                            n += len(got)
                    finally:
                        os.close(fd)
            except OSError as e:
                errors.append("%s on %s: %s" % (
                    "seq" if mode < 0.35 else "pread", oid, e))
                return
            with lock:
                counts["bytes"] += n
                counts[key] += 1

    ths = [threading.Thread(target=reader, args=(k,), daemon=True)
           for k in range(READERS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(max(1.0, t0 + TIME_LIMIT - time.monotonic()))
    elapsed = time.monotonic() - t0
    hung = [t for t in ths if t.is_alive()]
    st = stats(m)
    faults = {}
    for r in servers.data.log.all():
        if r.fault:
            faults[r.fault] = faults.get(r.fault, 0) + 1
    nfaults = sum(faults.values())
    line = ("cpfs stress: %d readers, %d files (%.1f MiB), %.1f MiB read "
            "in %d whole-file reads + %d pread runs (%d O_DIRECT), every "
            "byte checked; %d faults injected (%s); daemon: retries=%d "
            "url_renewals=%d data_errors=%d data_requests=%d api_calls=%d; "
            "%.1f s" % (
                READERS, FILES, total / MiB, counts["bytes"] / MiB,
                counts["seq"], counts["rand"] + counts["direct"],
                counts["direct"], nfaults,
                ", ".join("%s=%d" % kv for kv in sorted(faults.items())),
                st["retries"], st["url_renewals"], st["data_errors"],
                st["data_requests"], st["api_calls"], elapsed))
    with capsys.disabled():
        print("\n" + line, flush=True)
    assert not hung, "%d readers hung; log tail:\n%s" % (
        len(hung), m.log()[-3000:])
    if errors:
        bad = errors[0].split()[1]
        with capsys.disabled():
            for r in servers.data.log.find(id=bad):
                print(r, r.query.get("X-Expires"))
    assert not errors, "\n".join(errors[:10]) + "\nlog tail:\n" + \
        m.log()[-3000:]
    assert elapsed < TIME_LIMIT
    assert counts["bytes"] > 50 * MiB
    assert faults.get("slowdown", 0) > 0 and faults.get("reset", 0) > 0
    assert faults.get("stall", 0) > 0 and faults.get("url_expired", 0) > 0
    assert st["retries"] > 0 and st["url_renewals"] > 0
    assert servers.data.auth_seen() == []


@pytest.mark.slow
def test_200_opens_at_once_never_429(servers, cpfs):
    """The API allows 100 calls per 60 s: 200 distinct files opened at
    once queue in cpfs's limiter (default api_rate=100) and all succeed,
    with no 429 - about 60 s by design."""
    n = 200
    servers.api.rate = (100, 60.0)
    content = {}
    for i in range(n):
        data = standin.make_bytes(1000 + i, seed=7000 + i)
        content[servers.add(data)] = data
    # no_check: exactly 200 API calls, two windows (with the start-up
    # check it would be 201 calls and a third window at ~121 s)
    m = cpfs("no_check", manifest=None)

    def open_read(oid):
        with open(m.path(oid), "rb") as fh:
            return fh.read()

    t0 = time.monotonic()
    ths = {oid: Bg(open_read, oid) for oid in content}
    for th in ths.values():
        th.start()
    for th in ths.values():
        th.join(max(1.0, t0 + 150 - time.monotonic()))
    elapsed = time.monotonic() - t0
    bad = {oid: (th.error, th.is_alive()) for oid, th in ths.items()
           if th.error is not None or th.is_alive()}
    assert not bad, "%d of %d failed, e.g. %r; log tail:\n%s" % (
        len(bad), n, list(bad.items())[:3], m.log()[-2000:])
    for oid, th in ths.items():
        assert sha256(th.result) == sha256(content[oid]), oid
    reqs = servers.api.log.all()
    assert servers.api.log.count(status=429) == 0
    assert stats(m)["api_429"] == 0
    assert sorted(r.id for r in reqs) == sorted(content), \
        "want one API call per file"
    # no 60 s window held more than 100 calls
    times = sorted(r.time for r in reqs)
    assert all(b - a >= 59.0 for a, b in zip(times, times[100:]))
    assert 55 <= elapsed < 110, elapsed


def _io_threads(pid):
    """Threads of process @pid named cpfs-io (the fetch engine's)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as fh:
                n += fh.read().strip() == "cpfs-io"
        except OSError:
            pass
    return n


def _read_in_parallel(m, oids, files):
    """Reads every file of @oids in a thread of its own at once; the
    errors (wrong bytes, OSError), none when all came back right."""
    errs = []

    def reader(i):
        try:
            if sha256(read_file(m.path(oids[i]))) != sha256(files[i]):
                errs.append("wrong bytes in %s" % oids[i])
        except OSError as e:
            errs.append("%s: %s" % (oids[i], e))

    ths = [threading.Thread(target=reader, args=(i,))
           for i in range(len(oids))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return errs


def _blocks_fetched_twice(servers, oids, size):
    """Per file, the blocks the data host sent more than once (with the
    ranges asked), once the requests have settled."""
    servers.data.log.quiet(0.3)
    twice = {}
    for o in oids:
        reqs = servers.data.log.find(method="GET", id=o)
        t = {b: c for b, c in block_coverage(reqs, size).items() if c > 1}
        if t:
            twice[o] = (t, [r.range for r in reqs])
    return twice


def test_parallel_streams_over_several_io_threads(servers, cpfs):
    """The engine runs one I/O thread per online CPU, up to 4, and parts
    go to them in turn: 4 parallel sequential readers get every byte
    right, no block of a file is transferred twice, and the daemon
    has the I/O threads it says it has (fetch.h)."""
    size = 12 * MiB
    files = [os.urandom(size) for _ in range(4)]
    oids = [servers.add(d, name="par%d" % i) for i, d in enumerate(files)]
    m = cpfs("cache_size=64M", manifest=[("json", o) for o in oids])
    want = min(os.cpu_count() or 1, 4)
    assert _io_threads(m.proc.pid) == want
    assert not _read_in_parallel(m, oids, files)
    twice = _blocks_fetched_twice(servers, oids, size)
    assert not twice, twice
    assert _io_threads(m.proc.pid) == want
    assert m.unmount() == 0


def test_parallel_streams_in_small_cache_fetch_each_block_once(servers, cpfs):
    """4 parallel sequential readers of 12 MiB files through a 32M cache,
    smaller than the 48 MiB they read: every byte right and still no
    block transferred twice.  The kernel reads 1 MiB from 512 KiB on, so
    every read ends inside a block: a block goes for reuse once all of its
    bytes were read (not when a read ends at its end), a read evicts
    neither a block half read nor another reader's unread window while
    anything else may go.  (Failed on main about every other run.)"""
    size = 12 * MiB
    files = [os.urandom(size) for _ in range(4)]
    oids = [servers.add(d, name="small%d" % i) for i, d in enumerate(files)]
    m = cpfs("cache_size=32M", manifest=[("json", o) for o in oids])
    assert not _read_in_parallel(m, oids, files)
    twice = _blocks_fetched_twice(servers, oids, size)
    assert not twice, twice
    assert m.unmount() == 0
