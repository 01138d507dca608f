"""
What a cold stat and a cold first read cost on the wire, and a sequential
read behind added latency (issue 13, items 4 and 5).  Request counts and
ranges as the stand-in servers saw them, every byte checked; no timing
(the machine is shared), so these hold however busy it is.
"""

import os

import pytest

from conftest import MiB, read_file, sha256
from faultlib import bytes_sent, delay_proxy, rng_of

PROBE = 4096  # what a size probe asks for (reader.c PROBE_BYTES)


def gets(servers, oid):
    return servers.data.log.find(method="GET", id=oid)


def test_cold_stat_of_unknown_id_is_one_call_one_small_get(servers, cpfs):
    """An id listed without its size: stat asks the API once and the data
    host for its first 4 KiB (the Content-Range gives the size), not a
    whole block.  The read after it needs no second probe and names the
    object the probe learnt (If-Match)."""
    data = os.urandom(3 * MiB + 5)
    oid = servers.add(data, name="unknown")
    m = cpfs(manifest=[oid])
    assert servers.api_calls(oid) == 0 and servers.data_gets(oid) == 0
    assert os.stat(m.path(oid)).st_size == len(data)
    assert servers.api_calls(oid) == 1
    probe = gets(servers, oid)
    assert len(probe) == 1, probe
    assert rng_of(probe[0]) == (0, PROBE - 1), probe
    assert probe[0].bytes_sent <= PROBE, probe
    assert sha256(read_file(m.path(oid))) == sha256(data)
    assert servers.api_calls(oid) == 1
    later = gets(servers, oid)[1:]
    assert later, "the read made no request"
    assert all(rng_of(r)[0] != 0 or rng_of(r)[1] != PROBE - 1
               for r in later), later
    assert all("if-match" in r.headers for r in later), later


def test_cold_stat_without_manifest_is_one_call_one_small_get(servers, cpfs):
    """The same for an id the mount was never told of."""
    data = os.urandom(MiB + 17)
    oid = servers.add(data)
    m = cpfs(manifest=None)
    servers.clear_logs()
    assert os.stat(m.path(oid)).st_size == len(data)
    assert servers.api_calls(oid) == 1
    probe = gets(servers, oid)
    assert len(probe) == 1 and rng_of(probe[0]) == (0, PROBE - 1), probe


def test_tiny_unknown_file_comes_whole_with_its_probe(servers, cpfs):
    """A file no larger than the probe: stat, then reading it, is one API
    call and one data request in all."""
    data = os.urandom(3000)
    oid = servers.add(data)
    m = cpfs(manifest=[oid])
    assert os.stat(m.path(oid)).st_size == len(data)
    assert read_file(m.path(oid)) == data
    assert servers.api_calls(oid) == 1
    assert servers.data_gets(oid) == 1, gets(servers, oid)


def test_empty_unknown_file(servers, cpfs):
    """An empty object answers the probe 416: size 0, nothing to read."""
    oid = servers.add(b"")
    m = cpfs(manifest=[oid])
    assert os.stat(m.path(oid)).st_size == 0
    assert read_file(m.path(oid)) == b""
    assert servers.api_calls(oid) == 1
    assert servers.data_gets(oid) == 1, gets(servers, oid)


def test_cold_first_bytes_of_known_size_one_call_one_get(servers, cpfs):
    """A file listed with its size: open + the first 4 KiB is one API
    call and one data request, of what the kernel asked for (its first
    readahead), not a whole 1 MiB block; then a sequential read of the
    rest gets every byte right, with no second probe."""
    data = os.urandom(8 * MiB)
    oid = servers.add(data)
    m = cpfs(manifest=[("json", oid)])
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 0) == data[:4096]
        assert servers.api_calls(oid) == 1
        first = gets(servers, oid)
        assert len(first) == 1, first
        lo, hi = rng_of(first[0])
        assert lo == 0 and hi < MiB - 1, first
        assert bytes_sent(first, hi + 1) == hi + 1, first
        got = bytearray()
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            got += b
    finally:
        os.close(fd)
    assert sha256(bytes(got)) == sha256(data)
    assert servers.api_calls(oid) == 1
    assert all("if-match" in r.headers for r in gets(servers, oid)[1:])


@pytest.fixture
def delayed(servers, tmp_path):
    """The data host behind tests/bench/delayproxy.py: +5 ms each way and
    a 1 MiB window per connection, so one connection carries at most
    100 MiB/s and a reader needs several in flight."""
    with delay_proxy(servers, tmp_path, 5, 1024) as port:
        yield port


def test_sequential_read_through_a_delay(servers, cpfs, delayed):
    """A cat through added latency with the default cache: the window
    spreads over several transfers and connections, every byte is right,
    and no byte is fetched twice."""
    size = 40 * MiB + 12345
    data = os.urandom(size)
    oid = servers.add(data)
    m = cpfs(manifest=[("json", oid)])
    assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(data)
    g = gets(servers, oid)
    assert all(r.status == 206 for r in g), g
    assert bytes_sent(g, size) == size, g
    assert servers.api_calls(oid) == 1
    # The window went out as several transfers over several connections.
    assert len(g) >= 4, g
    assert len({r.client_port for r in g}) >= 2, g
