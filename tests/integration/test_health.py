"""Code health (issue 12): a small cache under many readers, part waits,
the data host's 404, shorter 206 answers, and an object replaced before
a handle served a byte (issue 11 item 3).

Readers that must be separate processes (as `sha256sum`s run by a shell
would be) are started with subprocess; every byte they read is checked
against the stand-in's content by its SHA-256.
"""

import errno
import os
import re
import subprocess
import time

import pytest

from conftest import MiB, read_file, sha256, standin
from faultlib import (Timed, errname, errno_of, not_probe, pread_direct,
                      rng_of, stats)

SIX = 6 * MiB


def _sha256sums(paths, timeout):
    """Runs one `sha256sum` process per path, all at once; returns
    ({path: hex digest}, seconds) or fails the test when they are not
    all done within @timeout seconds (they are killed then)."""
    t0 = time.monotonic()
    procs = [subprocess.Popen(["sha256sum", p], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for p in paths]
    out = {}
    errors = []
    # A path read by several readers must give the same digest each time.
    for p, proc in zip(paths, procs):
        left = max(0.1, timeout - (time.monotonic() - t0))
        try:
            so, se = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            hung = sum(1 for q in procs if q.poll() is None)
            for q in procs:
                q.kill()
            for q in procs:
                q.communicate()
            pytest.fail("%d of %d readers not done within %ss" % (
                hung, len(procs), timeout))
        if proc.returncode != 0:
            errors.append((p, se.strip()))
        else:
            digest = so.split()[0]
            if out.setdefault(p, digest) != digest:
                errors.append((p, "digests differ"))
    assert not errors, errors
    return out, time.monotonic() - t0


@pytest.mark.parametrize("readers,files,cache", [
    (32, 32, "4M"), (16, 16, "8M"), (128, 32, "4M")],
    ids=["32_readers_4M", "16_readers_8M", "128_readers_32_files_4M"])
def test_small_cache_many_parallel_readers(servers, cpfs, readers, files,
                                           cache):
    """The documented minimum cache must serve any number of readers
    (more than FUSE's worker threads in the last case): a read never
    holds a cache slot while it waits for another one, and an open
    holds none while it asks the API for a URL."""
    want = {}
    for i in range(files):
        data = standin.make_bytes(SIX, seed=1200 + i)
        want[servers.add(data)] = sha256(data)
    ids = sorted(want)
    m = cpfs("cache_size=" + cache, manifest=None)
    paths = [m.path(ids[i % files]) for i in range(readers)]
    got, secs = _sha256sums(paths, timeout=60)
    for p in paths:
        assert got[p] == want[os.path.basename(p)], p
    print("\n%d readers of %d files x 6 MiB, cache_size=%s: %.1f s" % (
        readers, files, cache, secs))


def _random_handle(path, size, src):
    """An O_DIRECT handle switched to random mode (two seeks with little
    read between them): its reads then go direct, into a buffer of their
    own, not through cache blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    for off in (0, size * 3 // 4, size * 3 // 8):
        assert os.pread(fd, 4096, off) == src[off:off + 4096]
    return fd


def test_direct_read_past_deadline_gives_up_and_frees(servers, cpfs):
    """A direct read whose transfer outlives the read's deadline fails
    with EIO in time; the engine, finishing later, frees the wait and
    the buffer it wrote into (no leak: the ASan run checks it at exit),
    and the mount goes on serving."""
    size = 64 * MiB
    src = standin.make_bytes(size, seed=1250)
    oid = servers.add(src)
    m = cpfs("deadline=2", manifest=None)
    fd = _random_handle(m.path(oid), size, src)
    try:
        servers.data.inject("stall", oid, when=not_probe, after=1000,
                            seconds=5)
        with Timed() as t:
            e = errno_of(os.pread, fd, 8192, 36 * MiB)
        assert e == errno.EIO, errname(e)
        assert 2 <= t.elapsed < 6, t.elapsed
        assert servers.data.log.count(id=oid, pred=lambda r:
                                      r.fault == "stall") == 1
        # the stalled transfer ends by itself and hands the wait back
        servers.data.log.quiet(0.5, timeout=15)
        off = 40 * MiB + 12345
        assert os.pread(fd, 8192, off) == src[off:off + 8192]
    finally:
        os.close(fd)
    assert sha256(read_file(m.path(oid))) == sha256(src)


# ============================================ the data host's 404 / 410

NOSUCHKEY = standin.s3_error("NoSuchKey", "The specified key does not "
                             "exist.", "/")
XML = {"Content-Type": "application/xml"}


def _probe(req):
    """The size probe of an id whose size is unknown: its first 4 KiB."""
    return req.range == "bytes=0-4095"


@pytest.mark.parametrize("status", [404, 410])
def test_data_404_asks_the_api_once_then_eio(servers, cpfs, status):
    """The API hands out URLs, the data host has nothing behind them: a
    fresh URL is asked for once, then the read fails with EIO (not
    ENOENT: the API never said the file is gone), in bounded time."""
    size = 3 * MiB + 12345
    src = standin.make_bytes(size, seed=1260)
    oid = servers.add(src)
    m = cpfs(manifest=None)
    os.stat(m.path(oid))
    servers.clear_logs()
    servers.data.inject("status", oid, times=None, when=not_probe,
                        status=status, headers=XML, body=NOSUCHKEY)
    fd = os.open(m.path(oid), os.O_RDONLY | os.O_DIRECT)
    try:
        with Timed() as t:
            e = errno_of(os.pread, fd, 4096, 3 * MiB)
    finally:
        os.close(fd)
    assert e == errno.EIO, errname(e)
    assert t.elapsed < 5, t.elapsed
    gets = servers.data.log.find(method="GET", id=oid, pred=not_probe)
    assert len(gets) == 2, gets
    assert servers.api_calls(oid) == 1
    servers.data.clear_faults()
    with open(m.path(oid), "rb") as fh:
        assert fh.read() == src


def test_data_404_then_fresh_url_serves(servers, cpfs):
    """One 404 on the size probe: the fresh URL the API hands out works,
    and the open succeeds."""
    src = standin.make_bytes(2 * MiB, seed=1261)
    oid = servers.add(src)
    m = cpfs(manifest=None)
    servers.data.inject("status", oid, when=_probe, status=404,
                        headers=XML, body=NOSUCHKEY)
    assert sha256(read_file(m.path(oid))) == sha256(src)
    assert servers.api_calls(oid) == 2
    assert servers.data.log.count(id=oid, status=404) == 1


def test_data_404_and_api_404_is_enoent(servers, cpfs):
    """The object disappears between the API's answer and the probe: the
    data host's 404 alone is no proof, the API's 404 to a fresh URL is,
    so stat() says ENOENT."""
    src = standin.make_bytes(MiB, seed=1262)
    oid = servers.add(src)
    m = cpfs(manifest=None)

    def delete_now(req):
        servers.data.delete(oid)
        return True

    servers.data.inject("status", oid, when=delete_now, status=404,
                        headers=XML, body=NOSUCHKEY)
    with Timed() as t:
        e = errno_of(os.stat, m.path(oid))
    assert e == errno.ENOENT, errname(e)
    assert t.elapsed < 5
    assert servers.api_calls(oid) == 2
    assert servers.data_gets(oid) == 1


# ================================================= a shorter 206 answer

def _short_206(servers, oid, limit, when=None, past=0, content_length=None):
    """Wraps the DataHost (its instance's handle, not its source): range
    GETs on @oid for which @when holds answer 206 with at most @limit
    bytes from where they asked, and a Content-Range that says so; or,
    with @past, @past bytes more than asked; with @content_length, a
    Content-Length that lies.  Returns the list of (asked start,
    answered end, asked end) it served."""
    data = servers.data
    orig = data.handle
    served = []

    def handle(h):
        req = h.req
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", req.range or "")
        obj = data.get(oid)
        if req.method != "GET" or data._path_id(req.path) != oid or \
                not m or obj is None or (when and not when(req)):
            return orig(h)
        total = len(obj.data)
        a, b = int(m.group(1)), min(int(m.group(2)), total - 1)
        e = b + past if past else min(b, a + limit - 1)
        if e == b and content_length is None:
            return orig(h)
        req.id = oid
        req.fault = "short_206"
        served.append((a, e, b))
        body = obj.data[a:e + 1]
        headers = {"Content-Range": "bytes %d-%d/%d" % (a, e, total),
                   "ETag": obj.etag,
                   "Last-Modified": standin.http_date(obj.last_modified),
                   "Content-Type": obj.content_type}
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        return h._send_simple(206, headers, body)

    data.handle = handle
    return served


def test_short_206_sequential_read_takes_the_bytes(servers, cpfs):
    """Every range GET is answered with at most 300 000 bytes: the daemon
    keeps them and asks for the rest from the next byte, with no retry
    spent and no wait; the file reads whole and right."""
    size = 6 * MiB + 4321
    src = standin.make_bytes(size, seed=1270)
    oid = servers.add(src)
    served = _short_206(servers, oid, 300000)
    m = cpfs(manifest=None)
    with Timed() as t:
        got = read_file(m.path(oid))
    assert sha256(got) == sha256(src)
    assert t.elapsed < 10, t.elapsed
    assert len(served) >= size // MiB
    starts = {rng_of(r)[0] for r in servers.data.log.find(
        method="GET", id=oid)}
    for _, e, b in served:
        assert e + 1 in starts, "the rest after %d was not asked for" % e
    st = stats(m)
    assert st["retries"] == 0, st
    assert st["data_errors"] == 0, st


def test_short_206_probe_and_direct_reads(servers, cpfs):
    """The size probe answered short (100 000 bytes at a time), then the
    reads of a handle in random mode (direct, into a buffer of their
    own): stat is right, the bytes are right, no retry spent."""
    size = 64 * MiB + 777
    src = standin.make_bytes(size, seed=1271)
    oid = servers.add(src)
    served = _short_206(servers, oid, 100000, when=lambda r: not _probe(r))
    probed = _short_206(servers, oid, 1000, when=_probe)
    m = cpfs(manifest=None)
    assert os.stat(m.path(oid)).st_size == size
    assert probed and probed[0][:2] == (0, 999)
    fd = _random_handle(m.path(oid), size, src)
    try:
        del served[:]
        for off in (5 * MiB - 100, 30 * MiB + 5, size - 300000):
            assert os.pread(fd, 300000, off) == src[off:off + 300000], off
    finally:
        os.close(fd)
    assert len(served) >= 6, served
    assert stats(m)["retries"] == 0


@pytest.mark.parametrize("how", ["ends_past", "length_lies"])
def test_206_running_past_the_request_refused(servers, cpfs, how):
    """A 206 whose Content-Range ends after what was asked, or whose
    Content-Length does not match its Content-Range, stays refused:
    EIO, not retried, nothing cached."""
    size = 64 * MiB
    src = standin.make_bytes(size, seed=1272)
    oid = servers.add(src)
    m = cpfs(manifest=None)
    fd = _random_handle(m.path(oid), size, src)
    # the first reads' prefetch must be over before the server lies
    servers.data.log.quiet(0.5)
    try:
        if how == "ends_past":
            _short_206(servers, oid, 0, past=2000)
        else:
            _short_206(servers, oid, 1000, content_length=999)
        servers.clear_logs()
        off = 40 * MiB + 100
        with Timed() as t:
            e = errno_of(os.pread, fd, 4096, off)
        assert e == errno.EIO, errname(e)
        assert t.elapsed < 5
        gets = servers.data.log.count(method="GET", id=oid)
        # A lying Content-Length leaves a byte on a kept-alive
        # connection; libcurl itself may send the request once more on
        # a fresh one.  cpfs never retries a refused answer.
        assert gets == 1 or (how == "length_lies" and gets == 2), gets
        assert stats(m)["retries"] == 0
        servers.data.handle = type(servers.data).handle.__get__(
            servers.data)
        assert os.pread(fd, 4096, off) == src[off:off + 4096]
    finally:
        os.close(fd)


# ============== an object replaced before a handle served a byte (#11.3)

def _replaced_between_mounts(servers, cpfs, tmp_path, new_size=None,
                             seed=1280):
    """Reads a file in one mount (its ETag is persisted in cache_dir),
    replaces the object, and mounts again with the same cache_dir.
    Returns (mount, id, new bytes)."""
    size = 3 * MiB + 4321
    old = standin.make_bytes(size, seed=seed)
    oid = servers.add(old)
    cache_dir = tmp_path / "persist"
    cache_dir.mkdir()
    m = cpfs(cache_dir=str(cache_dir), manifest=None)
    assert sha256(read_file(m.path(oid))) == sha256(old)
    assert m.unmount() == 0
    new = standin.make_bytes(new_size or size, seed=seed + 1)
    servers.replace(oid, new)
    m = cpfs(cache_dir=str(cache_dir), manifest=None)
    return m, oid, new, cache_dir


@pytest.mark.parametrize("how", ["412", "new_etag"])
def test_replaced_object_served_on_first_open_after_remount(
        servers, cpfs, tmp_path, how):
    """The persisted ETag is the old object's: the first read of the
    first open after the remount meets a 412 (or, from a server that
    ignores If-Match, the new ETag).  That handle has served nothing, so
    it probes again and serves the new object instead of failing; the
    new ETag is persisted, so the next mount reads without a 412."""
    if how == "new_etag":
        from faultlib import ignore_if_match
        ignore_if_match(servers.data)
    m, oid, new, cache_dir = _replaced_between_mounts(servers, cpfs,
                                                      tmp_path)
    new_etag = servers.data.get(oid).etag
    assert sha256(read_file(m.path(oid))) == sha256(new)
    gets = servers.data.log.find(method="GET", id=oid)
    if how == "412":
        assert any(r.status == 412 for r in gets), gets
    # the probe that learnt the new object asked without If-Match
    assert any("if-match" not in r.headers for r in gets), gets
    assert servers.api_calls(oid) == 1
    assert m.unmount() == 0
    m = cpfs(cache_dir=str(cache_dir), manifest=None)
    assert sha256(read_file(m.path(oid))) == sha256(new)
    gets = servers.data.log.find(method="GET", id=oid)
    assert gets and all(r.status == 206 for r in gets), gets
    if how == "412":  # (the other server drops If-Match before its log)
        assert all(r.headers.get("if-match") == new_etag for r in gets), \
            gets


def test_replaced_object_larger_served_on_first_open(servers, cpfs,
                                                     tmp_path):
    """A larger object: the kernel was told the old size and would stop
    there, so cpfs drops the kernel's attributes when the first read
    switches; the same open reads the new object whole and stat shows
    its size.  It is persisted: the next mount reads it without a 412."""
    new_size = 5 * MiB + 99
    m, oid, new, cache_dir = _replaced_between_mounts(
        servers, cpfs, tmp_path, new_size=new_size, seed=1282)
    assert sha256(read_file(m.path(oid))) == sha256(new)
    assert os.stat(m.path(oid)).st_size == new_size
    assert m.unmount() == 0
    m = cpfs(cache_dir=str(cache_dir), manifest=None)
    assert os.stat(m.path(oid)).st_size == new_size
    assert sha256(read_file(m.path(oid))) == sha256(new)
    assert servers.data.log.count(id=oid, status=412) == 0


def test_replaced_object_smaller_eio_once(servers, cpfs, tmp_path):
    """A smaller object: the kernel would take the new size only from
    the first short read in flight, and could show zeros between the
    true end and that one - so that open's read fails (EIO), never wrong
    bytes.  The new object is learnt and persisted by it: the next open
    reads it whole, and so does the next mount, without a 412."""
    new_size = 2 * MiB + 99
    m, oid, new, cache_dir = _replaced_between_mounts(
        servers, cpfs, tmp_path, new_size=new_size, seed=1290)
    assert errno_of(read_file, m.path(oid)) == errno.EIO
    assert sha256(read_file(m.path(oid))) == sha256(new)
    assert os.stat(m.path(oid)).st_size == new_size
    assert m.unmount() == 0
    m = cpfs(cache_dir=str(cache_dir), manifest=None)
    assert sha256(read_file(m.path(oid))) == sha256(new)
    assert servers.data.log.count(id=oid, status=412) == 0


def test_replaced_object_after_bytes_were_served_still_eio(servers, cpfs):
    """Bytes of the old object went to the kernel (an earlier handle
    read them and they may sit in its page cache): a new handle must not
    switch to the new object, or a program could read a mix; EIO."""
    size = 16 * MiB
    old = standin.make_bytes(size, seed=1286)
    oid = servers.add(old)
    # A small cache keeps the first handle's prefetch window (4 blocks)
    # short of 12 MiB: the read there must ask the data host.
    m = cpfs("cache_size=8M", manifest=None)
    with open(m.path(oid), "rb") as fh:
        assert fh.read(MiB) == old[:MiB]
    servers.data.log.quiet(0.5)
    servers.replace(oid, standin.make_bytes(size, seed=1287))
    fd = os.open(m.path(oid), os.O_RDONLY | os.O_DIRECT)
    try:
        e = errno_of(os.pread, fd, 4096, 12 * MiB)
    finally:
        os.close(fd)
    assert e == errno.EIO, errname(e)
