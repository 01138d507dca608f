"""The FUSE worker loop (src/loop.c): one worker, the reader-role holder,
reads /dev/fuse and serves what it reads itself; a request that waits
hands the role to a spare first (cp_loop_blocking()), and a watcher
takes the role from a holder stuck on one request in a wait nobody
announced.  The workers are threads named cpfs-fuse-N."""

import fcntl
import os
import random
import re
import time

from conftest import MiB, mounted, read_file, standin
from faultlib import Bg, Timed, pread_direct, rng_of

GRACE = 2.0  # seconds another request may take while one is stuck


def fuse_threads(pid):
    """{tid: CPU nanoseconds} of the daemon's cpfs-fuse-N threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as fh:
                name = fh.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as fh:
                ns = int(fh.read().split()[0])
        except OSError:
            continue
        if re.fullmatch(r"cpfs-fuse-\d+", name):
            out[tid] = ns
    return out


def loop_counters(m):
    """(hand-offs, take-overs) from the debug log line at exit."""
    assert m.unmount() == 0, m.log()[-2000:]
    found = re.findall(r"FUSE workers: (\d+) started, (\d+) hand-offs, "
                       r"(\d+) taken over", m.log())
    assert found, m.log()[-2000:]
    return int(found[-1][1]), int(found[-1][2])


def add_file(servers, size, seed):
    data = standin.make_bytes(size, seed=seed)
    return servers.add(data), data


def test_cached_reads_served_by_one_worker(servers, cpfs):
    """Reads that wait for nothing stay on one thread: libfuse's loop
    alternates them between two workers."""
    oid, src = add_file(servers, 8 * MiB, 31)
    m = cpfs("cache_size=64M", manifest=None)
    assert read_file(m.path(oid)) == src  # every block now cached
    gets = len(servers.data.log.find(method="GET", id=oid))
    fd = os.open(m.path(oid), os.O_RDONLY | os.O_DIRECT)
    rng = random.Random(3)
    one_thread = 0
    try:
        for batch in range(4):
            before = fuse_threads(m.proc.pid)
            for _ in range(300):
                off = rng.randrange(0, len(src) - 4096) & ~4095
                assert os.pread(fd, 4096, off) == src[off:off + 4096]
            after = fuse_threads(m.proc.pid)
            spent = {t: after[t] - before.get(t, 0) for t in after}
            total = sum(spent.values())
            assert total > 0, (before, after)
            if max(spent.values()) >= 0.9 * total:
                one_thread += 1
    finally:
        os.close(fd)
    assert len(servers.data.log.find(method="GET", id=oid)) == gets
    # A take-over (a request held up 50 ms on a busy machine) may move
    # a batch; alternation moves every one.
    assert one_thread >= 2, one_thread


def test_random_read_stall_hands_off_at_once(servers, cpfs):
    """A kept connection's answer that does not come within the grace
    hands the role on (conn.c's hook): cached reads of another file and
    readdir answer while it waits, and no take-over was needed."""
    a, src_a = add_file(servers, 64 * MiB, 32)
    b, src_b = add_file(servers, 2 * MiB, 33)
    m = cpfs("cache_size=64M", "timeout=30", manifest=None, debug=True)
    assert read_file(m.path(b)) == src_b
    fd = os.open(m.path(a), os.O_RDONLY | os.O_DIRECT)
    try:
        for off in (40 * MiB, 10 * MiB, 60 * MiB):  # random mode
            assert os.pread(fd, 4096, off) == src_a[off:off + 4096]
        off = 25 * MiB + 8192
        servers.data.inject("stall", a, seconds=4,
                            when=lambda r: (rng_of(r) or (-1,))[0] == off)
        th = Bg(os.pread, fd, 4096, off)
        th.start()
        assert servers.data.log.wait_for(
            1, timeout=10, id=a, pred=lambda r: r.fault == "stall")
        with Timed() as t:
            assert pread_direct(m.path(b), 4096, MiB) == \
                src_b[MiB:MiB + 4096]
            assert b in os.listdir(m.mnt)
            os.stat(m.path(b))
        assert t.elapsed < GRACE, t.elapsed
        assert th.is_alive(), "the stalled read ended first - no stall?"
        th.join(30)
        assert th.error is None, th.error
        assert th.result == src_a[off:off + 4096]
    finally:
        os.close(fd)
    handoffs, takeovers = loop_counters(m)
    assert handoffs >= 1 and takeovers == 0, (handoffs, takeovers)


def test_api_stall_hands_off(servers, cpfs):
    """A stat waiting on a stalled API call (api.c's hook) holds nothing
    else up."""
    a, _ = add_file(servers, MiB, 34)
    b, src_b = add_file(servers, MiB, 35)
    m = cpfs(manifest=None, debug=True)
    assert read_file(m.path(b)) == src_b
    servers.api.inject(a, delay=4)
    th = Bg(os.stat, m.path(a))
    th.start()
    assert servers.api.log.wait_for(1, timeout=10, id=a)
    with Timed() as t:
        assert pread_direct(m.path(b), 4096, 0) == src_b[:4096]
        assert b in os.listdir(m.mnt)
    assert t.elapsed < GRACE, t.elapsed
    assert th.is_alive(), "the API call ended first - no stall?"
    th.join(30)
    assert th.error is None, th.error
    handoffs, takeovers = loop_counters(m)
    assert handoffs >= 1 and takeovers == 0, (handoffs, takeovers)


def test_unannounced_wait_taken_over(servers, cpfs, tmp_path):
    """A wait without a hook: the disk cache ledger's flock, held here,
    stops a read of a block that was prefetched into memory and is saved
    to the disk cache by the read that uses it (reader.c save_block).
    The read called no hook before, so it still holds the reader role:
    the watcher takes it over and other requests go on; the stuck read
    ends once the lock is dropped."""
    dc = tmp_path / "dc"
    dc.mkdir()
    a, src_a = add_file(servers, 8 * MiB, 36)
    b, src_b = add_file(servers, 2 * MiB, 37)
    m = cpfs("disk_cache=%s" % dc, "cache_size=64M", "timeout=30",
             "deadline=60", manifest=None, debug=True)
    assert read_file(m.path(b)) == src_b
    fd = os.open(m.path(a), os.O_RDONLY | os.O_DIRECT)
    try:
        for off in range(0, MiB, 128 * 1024):  # a sequential start
            assert os.pread(fd, 128 * 1024, off) == \
                src_a[off:off + 128 * 1024]
        far = 3 * MiB  # prefetched, in memory, not yet saved
        assert servers.data.log.wait_for(
            1, timeout=10, id=a,
            pred=lambda r: rng_of(r) and rng_of(r)[0] <= far and
            (rng_of(r)[1] or 1 << 62) >= far + 4095)
        time.sleep(0.5)
        gets = len(servers.data.log.find(method="GET", id=a))
        with open(dc / ".cpfs-usage", "a+b") as ledger:
            fcntl.flock(ledger, fcntl.LOCK_EX)
            try:
                th = Bg(os.pread, fd, 4096, far)
                th.start()
                th.join(0.5)
                assert th.is_alive(), "read did not wait for the ledger"
                other = Bg(lambda: (pread_direct(m.path(b), 4096, MiB),
                                    os.listdir(m.mnt)))
                other.start()
                other.join(GRACE)
                assert not other.is_alive(), "held up behind the stuck read"
                assert other.error is None, other.error
                assert other.result[0] == src_b[MiB:MiB + 4096]
                assert b in other.result[1]
                assert th.is_alive()
            finally:
                fcntl.flock(ledger, fcntl.LOCK_UN)
        th.join(30)
        assert th.error is None, th.error
        assert th.result == src_a[far:far + 4096]
        # served from memory: no GET was needed
        assert len(servers.data.log.find(method="GET", id=a)) == gets
    finally:
        os.close(fd)
    assert mounted(m.mnt)
    handoffs, takeovers = loop_counters(m)
    assert takeovers >= 1, (handoffs, takeovers)
