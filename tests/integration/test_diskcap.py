"""
Mounted tests of the disk cache shared by several mounts (issue 11, item
4) and of persisted state that heals (damaged blocks and records are
ignored, then rewritten).

The cap: every mount sharing one disk_cache directory keeps the files
under it (blocks and temporary files being written) within
disk_cache_size.  A sampler walks the directory while two cpfs processes
read different files at once, two ways:

  - holding the ledger's flock (DIR/.cpfs-usage), as the mounts do for
    every change to the directory: a consistent view, which must never
    exceed the cap (plus the 40-byte ledger);
  - without the lock: a walk can count a file twice when it is renamed
    while the walk is in its directory, so the slack allowed is one block
    file (1 MiB of data + its header and ETag, DC_SLACK).

Every byte read is sha256-checked against the stand-in's objects.
"""

import fcntl
import os
import shutil
import threading
import time

from conftest import MiB, read_file, sha256, standin
import backuplib as bl

CAP = 4 * MiB
DC_SLACK = MiB + 4096  # one block file: 1 MiB of data, header and ETag
LEDGER = ".cpfs-usage"


def quiet(servers, period=0.3):
    servers.api.log.quiet(period=period, timeout=10)
    servers.data.log.quiet(period=period, timeout=10)


def tree_bytes(root):
    """Apparent bytes of the files under root (the ledger included)."""
    total = 0
    for d, _dirs, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except FileNotFoundError:
                pass
    return total


class Sampler:
    """Samples a directory's size until stopped; keeps the maxima."""

    def __init__(self, root):
        self.root = str(root)
        self.max_locked = self.max_unlocked = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _locked(self):
        fd = os.open(os.path.join(self.root, LEDGER), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return tree_bytes(self.root)
        finally:
            os.close(fd)

    def _run(self):
        while not self._stop.is_set():
            self.max_unlocked = max(self.max_unlocked,
                                    tree_bytes(self.root))
            self.max_locked = max(self.max_locked, self._locked())
            self.samples += 1
            time.sleep(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def drop_page_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def reader(mount, ids, servers, errors, rounds=2):
    """Reads every file of ids, rounds times (page cache dropped between),
    checking each against the stand-in's bytes."""
    try:
        for r in range(rounds):
            for oid in (ids if r % 2 == 0 else list(reversed(ids))):
                got = read_file(mount.path(oid))
                if sha256(got) != sha256(servers.content[oid]):
                    errors.append("%s: wrong bytes (round %d)" % (oid, r))
                drop_page_cache(mount.path(oid))
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append("%s: %r" % (mount.mnt, e))


def add_objects(servers, n, size, seed):
    return [servers.add(standin.make_bytes(size, seed + i)) for i in range(n)]


def test_two_mounts_share_one_cap(servers, cpfs, tmp_path):
    dc = tmp_path / "dc"
    opts = ("disk_cache=%s" % dc, "disk_cache_size=4M", "cache_size=8M")
    ids_a = add_objects(servers, 4, 3 * MiB + 12345, 100)
    ids_b = add_objects(servers, 4, 3 * MiB - 777, 200)
    total = sum(len(servers.content[i]) for i in ids_a + ids_b)
    assert total >= 6 * CAP
    a = cpfs(*opts, manifest=ids_a)
    b = cpfs(*opts, manifest=ids_b)
    errors = []
    with Sampler(dc) as s:
        ts = [threading.Thread(target=reader, args=(m, ids, servers, errors))
              for m, ids in ((a, ids_a), (b, ids_b))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        quiet(servers)
    assert not errors, errors
    stats_a, stats_b = bl.stats(a.mnt), bl.stats(b.mnt)
    after = tree_bytes(dc)
    print("two mounts read %d bytes (2 rounds) through a %d-byte disk "
          "cache: %d samples, max %d locked, %d unlocked, %d at the end; "
          "disk hits %d + %d" % (
              total, CAP, s.samples, s.max_locked, s.max_unlocked, after,
              stats_a["disk_hits"], stats_b["disk_hits"]))
    assert s.samples >= 20, "the sampler hardly ran"
    assert s.max_locked <= CAP + 40, \
        "the disk cache held %d bytes (cap %d)" % (s.max_locked, CAP)
    assert s.max_unlocked <= CAP + 40 + DC_SLACK
    assert after <= CAP + 40
    assert after >= 2 * MiB, "the disk cache kept (almost) nothing"
    assert a.unmount() == 0 and b.unmount() == 0
    assert tree_bytes(dc) <= CAP + 40


def test_killed_mount_leaves_the_cap_whole(servers, cpfs, tmp_path):
    """One mount is killed (SIGKILL) while it reads; the other keeps the
    cap, and the next mount's start recounts the directory and removes
    the dead mount's temporary files."""
    dc = tmp_path / "dc"
    opts = ("disk_cache=%s" % dc, "disk_cache_size=4M", "cache_size=8M")
    ids_a = add_objects(servers, 2, 6 * MiB, 300)
    ids_b = add_objects(servers, 3, 3 * MiB, 400)
    for oid in ids_a:  # slow enough that the kill finds a mid-read
        servers.data.inject("delay", id=oid, times=None, seconds=0.15)
    a = cpfs(*opts, manifest=ids_a)
    b = cpfs(*opts, manifest=ids_b)
    a.expect_rc = -9
    a.check_log = False

    def doomed():
        try:
            for oid in ids_a:
                read_file(a.path(oid))
        except OSError:
            pass  # the mount died under the reader

    t = threading.Thread(target=doomed, daemon=True)
    errors = []
    with Sampler(dc) as s:
        t.start()
        end = time.time() + 5  # until a has stored a block or two
        while time.time() < end and not (
                os.path.isdir(dc / ids_a[0]) and tree_bytes(dc) > MiB):
            time.sleep(0.01)
        time.sleep(0.1)
        a.proc.kill()
        stored_by_a = len(block_files(dc, ids_a[0]))
        reader(b, ids_b, servers, errors)
    t.join(10)
    assert not errors, errors
    print("a mount killed mid-read (%d blocks stored): max %d locked, %d "
          "unlocked (cap %d)" % (stored_by_a, s.max_locked, s.max_unlocked,
                                 CAP))
    assert stored_by_a >= 1
    assert s.max_locked <= CAP + 40
    assert s.max_unlocked <= CAP + 40 + DC_SLACK
    assert b.unmount() == 0

    # A new mount recounts: no temp file of a dead writer survives, and
    # the ledger matches the disk.
    c = cpfs(*opts, manifest=ids_b)
    temps = [f for _d, _s, fs in os.walk(dc) for f in fs
             if f.startswith(".tmp")]
    assert temps == [], temps
    for oid in ids_b:
        assert sha256(read_file(c.path(oid))) == sha256(servers.content[oid])
    assert tree_bytes(dc) <= CAP + 40
    assert c.unmount() == 0


def block_files(dc, oid):
    out = []
    for d, _dirs, files in os.walk(os.path.join(dc, oid)):
        out += [os.path.join(d, f) for f in files if not f.startswith(".")]
    return sorted(out, key=lambda p: int(os.path.basename(p)))


def test_damaged_blocks_are_refetched_and_rewritten(servers, cpfs, tmp_path):
    oid = servers.add(standin.make_bytes(5 * MiB, 77))
    cache, dc = tmp_path / "c", tmp_path / "dc"
    cache.mkdir()
    opts = ("disk_cache=%s" % dc, "disk_cache_size=64M")
    m1 = cpfs(*opts, manifest=[oid], cache_dir=cache)
    assert read_file(m1.path(oid)) == servers.content[oid]
    quiet(servers)
    assert m1.unmount() == 0

    blocks = block_files(dc, oid)
    assert len(blocks) == 5, blocks
    with open(blocks[0], "r+b") as fh:          # a flipped byte
        fh.seek(40 + 60 + 1000)
        c = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([c[0] ^ 0x40]))
    os.truncate(blocks[1], 100)                 # truncated
    with open(blocks[2], "wb") as fh:           # someone else's bytes
        fh.write(os.urandom(MiB + 100))
    os.unlink(blocks[3])                        # a directory in its place
    os.makedirs(os.path.join(blocks[3], "junk"))
    with open(os.path.join(dc, ".cpfs-usage"), "wb") as fh:
        fh.write(b"not a ledger")               # and a damaged ledger

    m2 = cpfs(*opts, manifest=[oid], cache_dir=cache)
    assert sha256(read_file(m2.path(oid))) == sha256(servers.content[oid])
    quiet(servers)
    assert servers.data_gets(oid) >= 1
    assert m2.unmount() == 0

    # Healed: the next mount reads everything from the disk.
    m3 = cpfs(*opts, manifest=[oid], cache_dir=cache)
    assert sha256(read_file(m3.path(oid))) == sha256(servers.content[oid])
    quiet(servers)
    assert (servers.api_calls(), servers.data_gets()) == (0, 0)


def test_foreign_meta_record_heals(servers, cpfs, tmp_path):
    """A directory, or a file of someone else's, where a metadata record
    belongs: ignored (one API call), then rewritten (none the next
    time)."""
    ids = add_objects(servers, 3, 1000, 500)
    cache = tmp_path / "c"
    cache.mkdir()
    m1 = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        os.stat(m1.path(oid))
    assert m1.unmount() == 0
    meta = cache / "meta"
    os.unlink(meta / ids[0])
    os.makedirs(meta / ids[0] / "x")
    (meta / ids[1]).write_bytes(os.urandom(5000))   # over the record size
    m2 = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        assert os.stat(m2.path(oid)).st_size == 1000
    quiet(servers)
    assert servers.api_calls(ids[0]) == 1 and servers.api_calls(ids[1]) == 1
    assert servers.api_calls(ids[2]) == 0
    assert m2.unmount() == 0
    m3 = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        assert os.stat(m3.path(oid)).st_size == 1000
    quiet(servers)
    assert servers.api_calls() == 0
    shutil.rmtree(meta)
