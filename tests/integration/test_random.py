"""Random reads, fetched on the FUSE worker's own thread over kept-alive
connections (fetch.c cp_fetch_run, conn.c): one range GET of exactly the
bytes asked per read, the same checks as every transfer, and answers that
conn.c does not frame handed to curl."""

import errno
import os

import pytest

from conftest import MiB, standin
from faultlib import (Bg, Timed, errname, errno_of, rng_of,
                      signal_ends_blocked_read, stats)

SIZE = 64 * MiB + 777


def add_file(servers, seed=5):
    data = standin.make_bytes(SIZE, seed=seed)
    return servers.add(data), data


def open_random(m, oid, src):
    """An O_DIRECT fd (the daemon sees every read as asked) switched to
    random mode: three small reads further apart than a sequential
    reader's slack (8 MiB), whose blocks are then cached."""
    fd = os.open(m.path(oid), os.O_RDONLY | os.O_DIRECT)
    for off in (40 * MiB, 10 * MiB, 60 * MiB):
        assert os.pread(fd, 4096, off) == src[off:off + 4096]
    return fd


def gets_at(servers, oid, off, n=4096):
    """The GETs of ranges that start in [off, off + n)."""
    servers.data.log.quiet(0.1)  # a request is logged once answered
    return servers.data.log.find(
        method="GET", id=oid,
        pred=lambda r: off <= (rng_of(r) or (-1,))[0] < off + n)


def test_random_reads_one_exact_get_each(servers, cpfs):
    oid, src = add_file(servers)
    m = cpfs()
    fd = open_random(m, oid, src)
    try:
        # Away from the blocks that open_random() cached.
        offs = [20 * MiB + (i * 2654435761) % (19 * MiB)
                for i in range(1, 41)]
        seen = []
        for i, off in enumerate(offs):
            n = 4096 if i % 2 else 5000
            assert os.pread(fd, n, off) == src[off:off + n], off
            gets = gets_at(servers, oid, off)
            assert len(gets) == 1, gets
            assert rng_of(gets[0]) == (off, off + n - 1)
            assert gets[0].status == 206
            seen.append(gets[0])
        # conn.c builds the request from what it kept of the URL: the
        # same lines as the first time, the signed query whole.
        etag = seen[0].headers.get("if-match")
        assert etag, seen[0].raw_headers
        for r in seen:
            assert [k.lower() for k, _ in r.raw_headers] == [
                "host", "range", "accept", "if-match"], r.raw_headers
            assert r.headers["host"] == seen[0].headers["host"]
            assert r.headers["if-match"] == etag
            assert r.query == seen[0].query and r.query
        # ... over one kept-alive connection.
        assert len({r.client_port for r in seen}) == 1, seen
        # The last read of the object ends short at its end.
        assert os.pread(fd, 4096, SIZE - 100) == src[SIZE - 100:]
    finally:
        os.close(fd)


# (fault, its parameters, what the read must give: "bytes" the right
# ones, or an errno; how many GETs the data host sees for the range; and
# whether the handle reads on: not once the object changed)
FAULTS = [
    ("expired", {}, "bytes", 2, True),         # URL renewed, asked again
    ("status", {"status": 500}, "bytes", 2, True),  # transient: retried
    ("slowdown", {}, "bytes", 2, True),
    ("reset", {"after": 100}, "bytes", 2, True),  # resumed after 100 bytes
    ("ignore_range", {}, "bytes", 1, True),    # a 200: skipped to our bytes
    ("status", {"status": 412}, errno.EIO, 1, False),  # object changed
    ("bad_content_range", {}, errno.EIO, 1, True),  # refused, not retried
    ("long_body", {}, errno.EIO, 1, True),
    # A head larger than any transfer takes (CP_CONN_HEAD_MAX): refused
    # as curl's transfers refuse it, in one request.
    ("giant_header", {"size": 64 * 1024}, errno.EIO, 1, True),
    # A head that fits but holds more headers than the engine takes:
    # refused as with curl.
    ("many_headers", {"count": 150}, errno.EIO, 1, True),
]


@pytest.mark.parametrize("kind,params,want,ngets,reads_on", FAULTS,
                         ids=[f[0] + str(f[1].get("status", ""))
                              for f in FAULTS])
def test_random_read_faults(servers, cpfs, kind, params, want, ngets,
                            reads_on):
    oid, src = add_file(servers)
    m = cpfs()
    fd = open_random(m, oid, src)
    try:
        off = 30 * MiB + 4096 * 7
        servers.data.inject(kind, oid, times=1,
                            when=lambda r: (rng_of(r) or (None,))[0] == off,
                            **params)
        if want == "bytes":
            assert os.pread(fd, 4096, off) == src[off:off + 4096]
        else:
            e = errno_of(os.pread, fd, 4096, off)
            assert e == want, errname(e)
        got = gets_at(servers, oid, off)
        assert len(got) == ngets, got
        if not reads_on:
            return
        # The connection still serves the next random read.
        off2 = 50 * MiB + 12345
        assert os.pread(fd, 4096, off2) == src[off2:off2 + 4096]
        assert len(gets_at(servers, oid, off2)) == 1
    finally:
        os.close(fd)


def test_random_read_stalled_mid_body_times_out_and_resumes(servers, cpfs):
    """A kept connection's answer that stops mid-body (the data host
    sends 100 bytes, then nothing for 30 s) ends by the mount's timeout,
    not by the server: the read resumes at byte 100 on another
    connection and returns the right bytes."""
    oid, src = add_file(servers)
    m = cpfs("timeout=2")
    fd = open_random(m, oid, src)
    try:
        off = 30 * MiB + 4096 * 3
        servers.data.inject("stall", oid, times=1, after=100, seconds=30,
                            when=lambda r: (rng_of(r) or (None,))[0] == off)
        with Timed() as t:
            assert os.pread(fd, 4096, off) == src[off:off + 4096]
        assert 1.5 <= t.elapsed < 20, t.elapsed
        got = gets_at(servers, oid, off, n=4096)
        assert [rng_of(r) for r in got] == [
            (off, off + 4095), (off + 100, off + 4095)], got
        assert stats(m)["retries"] >= 1
        off2 = 50 * MiB + 999
        assert os.pread(fd, 4096, off2) == src[off2:off2 + 4096]
        assert len(gets_at(servers, oid, off2)) == 1
    finally:
        os.close(fd)


def test_sigterm_while_random_read_waits_exits_promptly(servers, cpfs):
    """A worker waiting on a kept connection for an answer that does not
    come looks at shutdown while it waits: SIGTERM ends the daemon in
    well under its timeout (30 s), and the read fails."""
    oid, src = add_file(servers)
    m = cpfs("timeout=30")
    fd = open_random(m, oid, src)
    off = 30 * MiB + 4096 * 5
    servers.data.inject("stall", oid, times=None, after=0, seconds=60,
                        when=lambda r: (rng_of(r) or (None,))[0] == off)
    th = Bg(os.pread, fd, 4096, off)
    th.start()
    try:
        assert servers.data.log.wait_for(
            1, timeout=10, id=oid, pred=lambda r: r.fault == "stall")
        signal_ends_blocked_read(m, th)
    finally:
        try:
            os.close(fd)
        except OSError:  # the mount is gone: ENOTCONN
            pass
