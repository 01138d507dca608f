"""tests/bench/randfloor.c, the floor that run.py's floor-rand and
floor-rand-dio systems mount: it must return the right bytes with exactly
one range GET per FUSE read on one kept connection, or its figures would
not be a floor of anything.  Built with cc here as run.py builds it.
"""

import os
import random
import shutil
import subprocess
import time

import pytest

from conftest import mounted

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "bench", "randfloor.c")
BLOCK = 4096
SIZE = (1 << 20) + 100  # not a whole number of pages: a short last read


@pytest.fixture
def floor_bin(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("no cc")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, check=True,
                           text=True).stdout.split()
    exe = str(tmp_path / "randfloor")
    subprocess.run(["cc", "-O2", "-o", exe, SOURCE] + flags, check=True)
    return exe


def mount_floor(floor_bin, tmp_path, url, size, direct):
    mnt = tmp_path / ("mnt-d" if direct else "mnt")
    mnt.mkdir()
    p = subprocess.Popen([floor_bin] + (["-d"] if direct else []) +
                         [url, str(size), str(mnt)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.time() + 10
    while not mounted(str(mnt)):
        assert p.poll() is None, p.stderr.read()
        assert time.time() < end, "randfloor did not mount"
        time.sleep(0.02)
    return p, mnt


def unmount(p, mnt):
    subprocess.run(["fusermount3", "-u", str(mnt)])
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@pytest.mark.parametrize("direct", [False, True], ids=["cache", "dio"])
def test_floor_one_exact_get_per_read_and_reconnects(servers, tmp_path,
                                                    floor_bin, direct):
    data = random.Random(13).randbytes(SIZE)
    oid = servers.add(data)
    url = servers.data.presign(oid)
    p, mnt = mount_floor(floor_bin, tmp_path, url, SIZE, direct)
    try:
        path = os.path.join(str(mnt), oid)
        assert os.stat(path).st_size == SIZE
        servers.clear_logs()
        # Blocks 3 apart, never block 0: the kernel takes none of these
        # reads for a sequential one, so it asks for no readahead.
        offs = random.Random(5).sample(range(1, SIZE // BLOCK - 2, 3), 20)
        fd = os.open(path, os.O_RDONLY)
        try:
            for i, blk in enumerate(offs):
                off = blk * BLOCK
                assert os.pread(fd, BLOCK, off) == data[off:off + BLOCK]
                if i == 9:
                    # The server closes the kept connection after the
                    # next answer; the read after it must reconnect.
                    # (Through the page cache the kernel would ask a
                    # second time by itself; with -d only randfloor's
                    # own retry saves the read: checked, it fails
                    # without.)
                    servers.data.inject("stall", id=oid, after=BLOCK,
                                        seconds=0, then="close")
            last = SIZE - 100
            got_tail = os.pread(fd, BLOCK, last - last % BLOCK)
            assert got_tail == data[last - last % BLOCK:]
            assert os.pread(fd, BLOCK, SIZE) == b""
        finally:
            os.close(fd)
        gets = servers.data.log.find(method="GET", id=oid)
        # One exact 4 KiB GET per read (the page cache asks for no more on
        # a random read), plus the short tail; none past the end.
        want = ["bytes=%d-%d" % (b * BLOCK, b * BLOCK + BLOCK - 1)
                for b in offs]
        want.append("bytes=%d-%d" % (last - last % BLOCK, SIZE - 1))
        assert [g.range for g in gets] == want
        ports = [g.client_port for g in gets]
        # Kept connection: the first 11 on one, then a new one after the
        # server's close.
        assert len(set(ports[:11])) == 1
        assert len(set(ports[11:])) == 1 and ports[11] != ports[0]
        assert all(g.status == 206 for g in gets)
    finally:
        unmount(p, mnt)
    assert p.returncode == 0
