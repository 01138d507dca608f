"""
A large object through the mount: every access pattern returns exact bytes,
and the daemon's memory stays bounded by cache_size (issues 2 and 3).
"""

import hashlib
import os
import random

import pytest

from conftest import MiB, sha256


def _object(servers, size, seed):
    rng = random.Random(seed)
    data = rng.randbytes(size)
    return servers.add(data), data


def _vmhwm_kib(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _drop_kernel_pages(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_cat_64mib_sha256_and_bounded_rss(servers, cpfs):
    """cat of a 64 MiB object matches its sha256 while the daemon's peak RSS
    stays under cache_size + 32 MiB (here 16M + 32M)."""
    oid, data = _object(servers, 64 * MiB, 1)
    m = cpfs("cache_size=16M")
    h = hashlib.sha256()
    with open(m.path(oid), "rb", buffering=0) as fh:
        while True:
            chunk = fh.read(128 * 1024)
            if not chunk:
                break
            h.update(chunk)
    assert h.hexdigest() == sha256(data)
    if os.environ.get("CPFS_SANITIZER"):
        pytest.skip("peak RSS is meaningless under a sanitizer")
    hwm = _vmhwm_kib(m.proc.pid)
    print("cat 64 MiB, cache_size=16M: VmHWM %d KiB" % hwm)
    assert hwm < (16 + 32) * 1024, "VmHWM %d KiB" % hwm


def test_large_object_sequential_backwards_random(servers, cpfs):
    """A 40 MiB object read forwards, backwards (1 MiB steps from the end,
    unaligned), and at random offsets: sha256 of each pass equals the
    source, and no block is fetched twice in the forward pass."""
    size = 40 * MiB + 12345
    oid, data = _object(servers, size, 2)
    m = cpfs("cache_size=32M")
    path = m.path(oid)

    fd = os.open(path, os.O_RDONLY)
    try:
        h = hashlib.sha256()
        off = 0
        while off < size:
            chunk = os.pread(fd, 256 * 1024, off)
            assert chunk, off
            h.update(chunk)
            off += len(chunk)
        assert h.hexdigest() == sha256(data)
        forward_gets = servers.data_gets(oid)
        assert forward_gets <= size // MiB + 2, forward_gets

        _drop_kernel_pages(path)
        pieces = []
        end = size
        step = MiB + 333
        while end > 0:
            start = max(0, end - step)
            pieces.append(os.pread(fd, end - start, start))
            assert pieces[-1] == data[start:end], start
            end = start
        assert sha256(b"".join(reversed(pieces))) == sha256(data)

        _drop_kernel_pages(path)
        rng = random.Random(3)
        for _ in range(300):
            o = rng.randrange(size + MiB)
            n = rng.choice([1, 4096, 65536, MiB, 3 * MiB + 7])
            assert os.pread(fd, n, o) == data[o:o + n], (o, n)
    finally:
        os.close(fd)
