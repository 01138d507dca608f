"""
What reads cost on the wire: requests counted on the stand-in servers
(issue 13).  Figures of speed live in tests/bench; these are counts, which
do not depend on how busy the machine is.
"""

import errno
import os
import threading

import pytest

from conftest import MiB, read_file, sha256
from faultlib import errno_of


def test_cold_open_of_known_size_costs_one_call_one_get(servers, cpfs):
    """A file listed with its size (manifest): open + read is one API call
    and one data request, no separate probe before the data."""
    oid = servers.add(os.urandom(200 * 1024), name="small")
    m = cpfs(manifest=[("json", oid)])
    assert servers.api_calls() == 0 and servers.data_gets() == 0
    assert os.stat(m.path(oid)).st_size == 200 * 1024
    assert servers.api_calls() == 0 and servers.data_gets() == 0
    assert read_file(m.path(oid)) == servers.content[oid]
    assert servers.api_calls(oid) == 1
    assert servers.data_gets(oid) == 1, servers.data.log.all()


def test_cold_random_read_of_known_size_costs_one_get(servers, cpfs):
    """No probe of the first block before a read elsewhere: the read's
    own request is the only one."""
    data = os.urandom(5 * MiB)
    oid = servers.add(data, name="five")
    m = cpfs(manifest=[("json", oid)])
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 3 * MiB + 8192) == \
            data[3 * MiB + 8192:3 * MiB + 12288]
    finally:
        os.close(fd)
    assert servers.api_calls(oid) == 1
    gets = servers.data.log.find(method="GET", id=oid)
    assert len(gets) >= 1
    # The first request is the read's, not a probe of the first block.
    assert not gets[0].range.startswith("bytes=0-"), gets


def test_cold_open_learns_the_etag_from_the_first_read(servers, cpfs):
    """The ETag the first read's answer carries is kept: later transfers
    ask for that object (If-Match), and it is persisted."""
    data = os.urandom(3 * MiB + 5)
    oid = servers.add(data, name="three")
    m = cpfs("cache_size=8M", manifest=[("json", oid)])
    assert read_file(m.path(oid)) == data
    gets = servers.data.log.find(method="GET", id=oid)
    assert gets
    # Every request after the first one names the object it wants.
    assert all("if-match" in r.headers for r in gets[1:]), gets
    etag = os.getxattr(m.path(oid), "user.checkoutpage.etag")
    assert etag


@pytest.mark.parametrize("new_kib", [63, 65], ids=["smaller", "larger"])
def test_cold_open_of_known_size_replaced_before_reading(servers, cpfs,
                                                         new_kib):
    """The size the kernel was told is checked by the first read, which
    never serves a byte of another object under the old size: a larger
    object is read whole by this open (from its first byte; the kernel
    is told the new size), a smaller one is EIO."""
    oid = servers.add(os.urandom(64 * 1024), name="small")
    m = cpfs(manifest=[("json", oid)])
    st = os.stat(m.path(oid))
    new = os.urandom(new_kib * 1024)
    servers.replace(oid, new)
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        if new_kib < 64:
            assert errno_of(os.read, fd, st.st_size) == errno.EIO
        else:
            assert os.read(fd, st.st_size) == new[:st.st_size]
            assert os.read(fd, 1 << 20) == new[st.st_size:]
            assert os.read(fd, 1 << 20) == b""
            assert os.fstat(fd).st_size == len(new)
    finally:
        os.close(fd)
    # The next open sees the new object.
    assert sha256(read_file(m.path(oid))) == sha256(new)


def test_concurrent_first_reads_of_known_size(servers, cpfs):
    """Reads that arrive while the first one is learning the object wait
    for it and then read as usual (the kernel sends a cat's readahead
    concurrently); every byte checked, over several cold mounts."""
    data = os.urandom(24 * MiB)
    oid = servers.add(data, name="big")
    for _ in range(4):
        m = cpfs("cache_size=16M", manifest=[("json", oid)])
        fd = os.open(m.path(oid), os.O_RDONLY | os.O_DIRECT)
        errs = []
        start = threading.Barrier(8)

        def reader(i):
            try:
                start.wait()
                for off in range(i * MiB, len(data), 8 * MiB):
                    if os.pread(fd, MiB, off) != data[off:off + MiB]:
                        errs.append("wrong bytes at %d" % off)
            except OSError as e:
                errs.append(str(e))

        ths = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        os.close(fd)
        assert not errs, errs
        assert servers.api_calls(oid) >= 1
        m.unmount()
