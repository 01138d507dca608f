"""Mounted tests of issue 5: backup-grade cpfs.

Persistent metadata (zero API calls on a remounted `ls -l`), tar / rsync /
cp -r of the whole mount, the on-disk data cache, extended attributes and
live counters, by-name/, and boot mounts (mount -t fuse.cpfs, fstab through
mount.fuse3, uid/gid/umask, the start-up key check).

Request counts are those the stand-in servers saw.  Tools used: tar, rsync,
getfattr (attr), cp, ls, mount, umount (util-linux), mount.fuse3,
fusermount3.  Helpers live in backuplib.py.

Boot mounts: mount(8) runs mount.fuse3 without PATH, so mount.fuse3's
`/bin/sh -c 'cpfs' ...` only finds a cpfs in /bin/sh's default PATH.  The
mount(8) tests therefore put a symlink /usr/local/sbin/cpfs -> CPFS_BIN in
place for their duration (removed afterwards; skipped if another cpfs is
installed there); test_mount_fuse3_helper_from_path calls mount.fuse3
directly with a temporary PATH instead.
"""

import errno
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import MiB, mounted, read_file, sha256, standin
import backuplib as bl

N_FILES = 50


def quiet(servers, period=0.3):
    servers.api.log.quiet(period=period, timeout=10)
    servers.data.log.quiet(period=period, timeout=10)


def add_files(servers, n, seed=0, sizes=None):
    """n small objects with distinct sizes and Last-Modified times."""
    ids = []
    for i in range(n):
        size = sizes[i] if sizes else 100 + 37 * i + (i % 3) * 4096
        ids.append(servers.add(standin.make_bytes(size, seed * 1000 + i),
                               last_modified=1600000000 + 3600 * i + seed))
    return ids


def ls_l(mnt):
    """`ls -l` of the mount: {name: (size, mtime)}."""
    r = subprocess.run(["ls", "-l", "--time-style=+%s", mnt],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 7:  # mode links owner group size time name
            out[f[6]] = (int(f[4]), int(f[5]))
    return out


# ------------------------------------------------- 1. persistent metadata

def test_manifest_load_reads_only_the_records_there_are(servers, cpfs,
                                                        tmp_path):
    """Loading a manifest looks on the disk only for the ids that have a
    record (one listing of the directory tells which): a manifest of
    many ids never seen costs no lookup each.  The records there are
    still serve stat without a call."""
    ids = add_files(servers, 5)
    cache = tmp_path / "meta-cache"
    cache.mkdir()
    m1 = cpfs(manifest=None, cache_dir=cache)
    sizes = {oid: os.stat(m1.path(oid)).st_size for oid in ids}
    assert m1.unmount() == 0
    unseen = ["%024x" % (0x64b000000000000000000000 + i) for i in range(300)]
    m2 = cpfs(manifest=unseen[:150] + ids + unseen[150:], cache_dir=cache)
    s = bl.stats(m2.mnt)
    assert (s["meta_reads"], s["meta_hits"]) == (5, 5), s
    for oid in ids:
        assert os.stat(m2.path(oid)).st_size == sizes[oid]
    quiet(servers)
    assert bl.stats(m2.mnt)["api_calls"] == 1  # the start-up key check


def test_remount_ls_l_makes_no_calls(servers, cpfs, tmp_path):
    ids = add_files(servers, N_FILES)
    cache = tmp_path / "meta-cache"
    cache.mkdir()
    # First mount: no manifest, so each size must come from a probe.
    m1 = cpfs(manifest=None, cache_dir=cache)
    first = {}
    for oid in ids:
        st = os.stat(m1.path(oid))
        first[oid] = (st.st_size, int(st.st_mtime))
        assert st.st_size == len(servers.content[oid])
        assert int(st.st_mtime) == servers.data.get(oid).last_modified
    quiet(servers)
    probes = servers.api_calls()
    assert probes >= N_FILES, "first mount: %d API calls for %d unknown " \
        "files (sizes must come from probes)" % (probes, N_FILES)
    assert m1.unmount() == 0
    assert len(os.listdir(cache / "meta")) >= N_FILES

    # Remount, same cache_dir, manifest of bare ids: ls -l costs nothing.
    m2 = cpfs(manifest=ids, cache_dir=cache)
    listing = ls_l(m2.mnt)
    for oid in ids:
        st = os.stat(m2.path(oid))
        assert (st.st_size, int(st.st_mtime)) == first[oid], oid
        assert listing.get(oid) == first[oid], oid
    quiet(servers)
    api, data = servers.api_calls(), servers.data_gets()
    print("remount ls -l of %d files: %d API calls, %d data requests"
          % (N_FILES, api, data))
    assert (api, data) == (0, 0), \
        "remounted ls -l of %d known files made %d API calls and %d data " \
        "requests (want 0, 0)" % (N_FILES, api, data)
    s = bl.stats(m2.mnt)
    assert s["api_calls"] == 1  # the start-up key check, nothing else
    assert s.get("meta_hits", 0) >= N_FILES

    # The URL is still fetched lazily: a read costs a call and gets bytes.
    oid = ids[7]
    assert read_file(m2.path(oid)) == servers.content[oid]
    assert servers.api_calls(oid) == 1


def test_corrupt_meta_records_are_ignored(servers, cpfs, tmp_path):
    ids = add_files(servers, 6, seed=1)
    cache = tmp_path / "meta-cache"
    cache.mkdir()
    m1 = cpfs(manifest=None, cache_dir=cache)
    want = {}
    for oid in ids:
        st = os.stat(m1.path(oid))
        want[oid] = (st.st_size, int(st.st_mtime))
    assert m1.unmount() == 0

    meta = cache / "meta"
    garbage, truncated, emptied = ids[0], ids[1], ids[2]
    rec = (meta / garbage).read_bytes()
    # same length, flipped bytes in the size line: the checksum must catch it
    bad = rec.replace(b"size=", b"size=9")
    assert bad != rec
    (meta / garbage).write_bytes(bad[:len(rec)])
    (meta / truncated).write_bytes(rec[:len(rec) // 2])
    (meta / emptied).write_bytes(b"")
    # a garbage file that is not an id and a stray temp file do no harm
    (meta / "not-an-id").write_bytes(os.urandom(300))

    m2 = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        st = os.stat(m2.path(oid))
        assert (st.st_size, int(st.st_mtime)) == want[oid], oid
    quiet(servers)
    for oid in ids:
        want_calls = 1 if oid in (garbage, truncated, emptied) else 0
        assert servers.api_calls(oid) == want_calls, \
            "id %s: %d API calls on remount (want %d)" % (
                oid, servers.api_calls(oid), want_calls)
    assert m2.unmount() == 0

    # The ignored records were rebuilt: a third mount costs nothing.
    m3 = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        st = os.stat(m3.path(oid))
        assert (st.st_size, int(st.st_mtime)) == want[oid], oid
    quiet(servers)
    assert servers.api_calls() == 0 and servers.data_gets() == 0


def test_two_mounts_share_cache_dir(servers, cpfs, tmp_path):
    ids = add_files(servers, 12, seed=3)
    cache = tmp_path / "shared"
    cache.mkdir()
    a = cpfs(manifest=None, cache_dir=cache)
    b = cpfs(manifest=None, cache_dir=cache)
    # both mounts probe every file at the same time, racing on the records
    errors = []

    def walk(m):
        try:
            for oid in ids:
                assert os.stat(m.path(oid)).st_size == \
                    len(servers.content[oid])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=walk, args=(m,)) for m in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert a.unmount() == 0 and b.unmount() == 0
    assert not [f for f in os.listdir(cache / "meta") if f not in ids], \
        "temporary files left in the meta directory"
    c = cpfs(manifest=ids, cache_dir=cache)
    for oid in ids:
        st = os.stat(c.path(oid))
        assert st.st_size == len(servers.content[oid])
        assert int(st.st_mtime) == servers.data.get(oid).last_modified
    quiet(servers)
    assert servers.api_calls() == 0 and servers.data_gets() == 0


@pytest.mark.parametrize("kind", ["under_a_file", "ro_tmpfs"])
def test_unwritable_cache_dir_warns_once(servers, cpfs, tmp_path, kind):
    if kind == "under_a_file":
        blocker = tmp_path / "plainfile"
        blocker.write_bytes(b"x")
        cache = blocker / "cache"
    else:
        cache = tmp_path / "rofs"
        bl.ro_tmpfs(cache)
    try:
        ids = add_files(servers, 4, seed=2)
        m = cpfs(manifest=None, cache_dir=cache)
        for oid in ids:
            assert os.stat(m.path(oid)).st_size == len(servers.content[oid])
            assert read_file(m.path(oid)) == servers.content[oid]
        assert m.unmount() == 0
        log = m.log()
        lines = [ln for ln in log.splitlines() if str(cache) in ln]
        assert len(lines) == 1, "want exactly one warning naming %s, " \
            "log:\n%s" % (cache, log)
        assert "Traceback" not in log
        if kind == "ro_tmpfs":
            assert os.listdir(cache) == []
    finally:
        if kind == "ro_tmpfs":
            bl.umount_quiet(cache)


# ------------------------------------------------- 2. tar / rsync / cp -r

@pytest.fixture
def tree_mount(servers, cpfs):
    extra = servers.add(standin.make_bytes(3 * MiB + 12345, 77),
                        last_modified=1650000000)
    ids = [servers.files[k] for k in ("empty", "one", "mib_minus", "mib",
                                      "mib_plus", "five", "text")] + [extra]
    m = cpfs(manifest=ids)
    return m, ids


def _check_copy(servers, dst, ids, check_mtime=False):
    got = bl.tree(dst)
    assert sorted(got) == sorted(ids), "copied names differ from the ids"
    for oid in ids:
        want = servers.content[oid]
        assert len(got[oid]) == len(want), oid
        assert sha256(got[oid]) == sha256(want), "bytes differ for %s" % oid
        if check_mtime:
            assert int(os.stat(os.path.join(dst, oid)).st_mtime) == \
                servers.data.get(oid).last_modified, oid


def test_tar_of_mount(servers, tree_mount, tmp_path):
    m, ids = tree_mount
    dst = tmp_path / "untar"
    dst.mkdir()
    tar = subprocess.run(["tar", "-cf", "-", "-C", m.mnt, "."],
                         capture_output=True, timeout=60)
    assert tar.returncode == 0, tar.stderr
    x = subprocess.run(["tar", "-xf", "-", "-C", str(dst)], input=tar.stdout,
                       capture_output=True, timeout=60)
    assert x.returncode == 0, x.stderr
    _check_copy(servers, dst, ids, check_mtime=True)


def test_rsync_of_mount(servers, tree_mount, tmp_path):
    m, ids = tree_mount
    dst = tmp_path / "rsynced"
    r = subprocess.run(["rsync", "-a", m.mnt + "/", str(dst) + "/"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    _check_copy(servers, dst, ids, check_mtime=True)
    # a second rsync -a finds nothing to do and reads no data
    servers.clear_logs()
    r = subprocess.run(["rsync", "-a", "--itemize-changes",
                        m.mnt + "/", str(dst) + "/"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [ln for ln in r.stdout.splitlines()
            if not ln.startswith(".d")] == [], r.stdout
    quiet(servers)
    assert servers.data_gets() == 0


def test_cp_r_of_mount(servers, tree_mount, tmp_path):
    m, ids = tree_mount
    dst = tmp_path / "copied"
    r = subprocess.run(["cp", "-r", m.mnt, str(dst)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    _check_copy(servers, dst, ids)


# ------------------------------------------------- 3. disk cache

def _cp(src, dst):
    r = subprocess.run(["cp", src, dst], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    with open(dst, "rb") as fh:
        return fh.read()


def drop_page_cache(path):
    """Evicts one file's pages from the kernel page cache (like
    `echo 3 > /proc/sys/vm/drop_caches`, without disturbing anything else
    on the machine)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_disk_cache_second_cp_makes_no_requests(servers, cpfs, tmp_path):
    oid = servers.files["five"]
    src = servers.content[oid]
    cache, dc = tmp_path / "c", tmp_path / "dc"
    cache.mkdir()
    opts = ("disk_cache=%s" % dc, "disk_cache_size=64M")
    m1 = cpfs(*opts, cache_dir=cache)
    assert _cp(m1.path(oid), str(tmp_path / "copy1")) == src
    quiet(servers)
    assert servers.data_gets(oid) >= 1
    assert servers.api_calls(oid) == 1

    # Same mount, kernel page cache dropped: memory or disk, not network.
    drop_page_cache(m1.path(oid))
    servers.clear_logs()
    before = bl.stats(m1.mnt)
    assert _cp(m1.path(oid), str(tmp_path / "copy2")) == src
    quiet(servers)
    assert servers.data_gets() == 0
    after = bl.stats(m1.mnt)
    served = sum(after[k] - before[k] for k in ("cache_hits", "disk_hits"))
    assert served >= 5, "the second cp did not reach the daemon " \
        "(page cache not dropped?): %r -> %r" % (before, after)
    assert m1.unmount() == 0

    # Remount with the same cache_dir and disk cache: nothing fetched.
    m2 = cpfs(*opts, cache_dir=cache)
    before = bl.stats(m2.mnt)
    got = _cp(m2.path(oid), str(tmp_path / "copy3"))
    quiet(servers)
    api, data = servers.api_calls(), servers.data_gets()
    print("second cp through the disk cache: %d data requests, %d API "
          "calls" % (data, api))
    assert got == src
    assert (data, api) == (0, 0), "second cp of a 5 MiB file after remount" \
        " made %d data requests and %d API calls (want 0, 0)" % (data, api)
    after = bl.stats(m2.mnt)
    assert after["disk_hits"] - before["disk_hits"] >= 5
    assert after["data_requests"] == before["data_requests"]


def _replace_same_size(servers, oid, seed):
    old = servers.content[oid]
    new = standin.make_bytes(len(old), seed)
    assert new != old
    servers.replace(oid, new)
    return old, new


def test_disk_cache_replaced_object_cleared_meta(servers, cpfs, tmp_path):
    oid = servers.files["five"]
    cache, dc = tmp_path / "c", tmp_path / "dc"
    cache.mkdir()
    opts = ("disk_cache=%s" % dc,)
    m1 = cpfs(*opts, cache_dir=cache)
    assert read_file(m1.path(oid)) == servers.content[oid]
    assert m1.unmount() == 0

    old_etag = servers.data.get(oid).etag
    old, new = _replace_same_size(servers, oid, 4242)
    assert servers.data.get(oid).etag != old_etag
    shutil.rmtree(cache / "meta")
    m2 = cpfs(*opts, cache_dir=cache)
    got = read_file(m2.path(oid))
    assert got != old, "disk cache served the old object's bytes"
    assert sha256(got) == sha256(new)
    assert servers.data_gets(oid) >= 1
    assert os.getxattr(m2.path(oid), "user.checkoutpage.etag").decode() == \
        servers.data.get(oid).etag


def test_disk_cache_replaced_object_never_mixes(servers, cpfs, tmp_path):
    """Only the start of the file is on disk, the metadata (old ETag) is
    kept, then the object is replaced by one of the same size.  A whole
    read must give all-old, all-new or EIO; never a mix."""
    oid = servers.add(standin.make_bytes(8 * MiB, 99))
    cache, dc = tmp_path / "c", tmp_path / "dc"
    cache.mkdir()
    opts = ("disk_cache=%s" % dc,)
    m1 = cpfs(*opts, manifest=[oid], cache_dir=cache)
    with open(m1.path(oid), "rb", buffering=0) as fh:
        assert fh.read(64 * 1024) == servers.content[oid][:64 * 1024]
    quiet(servers)
    assert m1.unmount() == 0

    old, new = _replace_same_size(servers, oid, 4343)
    m2 = cpfs(*opts, manifest=[oid], cache_dir=cache)
    got = read_whole_or_eio(m2.path(oid))
    assert_not_mixed(got, old, new, "first read after the replacement")
    # After the change was seen, a fresh open gives the new object (no
    # drop_caches here: a user's retried `cp` does not drop them either).
    got = read_whole_or_eio(m2.path(oid))
    assert_not_mixed(got, old, new, "a fresh open after the change")
    assert got == new, "a fresh open after the change was seen gave " \
        "%s" % describe(got, old, new)


def test_replaced_while_mounted_never_mixes(servers, cpfs):
    """One mount, no disk cache: the start of a file is read, the object
    is replaced (same size), the file is read again (new opens).  Every
    whole read gives all-old, all-new or EIO; never a mix."""
    oid = servers.add(standin.make_bytes(6 * MiB, 123))
    m = cpfs(manifest=[oid])
    with open(m.path(oid), "rb", buffering=0) as fh:
        assert fh.read(64 * 1024) == servers.content[oid][:64 * 1024]
    quiet(servers)
    old, new = _replace_same_size(servers, oid, 321)
    outcomes = []
    for attempt in range(3):
        got = read_whole_or_eio(m.path(oid))
        outcomes.append(describe(got, old, new))
        assert_not_mixed(got, old, new, "read %d (outcomes so far %r)"
                         % (attempt + 1, outcomes))


def read_whole_or_eio(path):
    try:
        return read_file(path)
    except OSError as e:
        assert e.errno == errno.EIO, e
        return None


def describe(got, old, new):
    if got is None:
        return "EIO"
    if got == new:
        return "new"
    if got == old:
        return "old"
    n_old = next((i for i in range(len(got)) if got[i] != old[i]), len(got))
    return "mixed: %d bytes of the old object, then %s (%d bytes read)" % (
        n_old, "the new one" if got[n_old:] == new[n_old:len(got)]
        else "other bytes", len(got))


def assert_not_mixed(got, old, new, what):
    d = describe(got, old, new)
    assert not d.startswith("mixed"), "%s returned %s" % (what, d)


def test_disk_cache_cap(servers, cpfs, tmp_path):
    cap = 4 * MiB
    dc = tmp_path / "dc"
    ids = [servers.files[k] for k in ("five", "mib", "mib_plus",
                                      "mib_minus")]
    ids.append(servers.add(standin.make_bytes(3 * MiB, 5)))
    total = sum(len(servers.content[i]) for i in ids)
    assert total > 2 * cap
    m = cpfs("disk_cache=%s" % dc, "disk_cache_size=4M", manifest=ids)
    for oid in ids:
        assert read_file(m.path(oid)) == servers.content[oid]
    quiet(servers)
    apparent, allocated = bl.du_bytes(dc)
    print("disk cache after reading %d bytes: %d apparent, %d allocated "
          "(cap %d)" % (total, apparent, allocated, cap))
    assert apparent <= cap + 64 * 1024
    assert allocated <= cap + 512 * 1024
    assert apparent >= MiB, "the disk cache kept (almost) nothing"
    assert m.unmount() == 0
    # still within the cap after the daemon is gone
    assert bl.du_bytes(dc)[0] <= cap + 64 * 1024


# ------------------------------------------------- 4. xattrs and counters

def test_xattrs_from_manifest_json(servers, cpfs):
    oid = servers.add(b"%PDF-1.4 fake\n" * 100, content_type="application/pdf")
    line = standin.manifest_line(oid, size=len(servers.content[oid]),
                                 name="Quarterly report.pdf",
                                 type="application/pdf",
                                 created_at="2024-01-15T10:20:30.000Z")
    m = cpfs(manifest=[line])
    p = m.path(oid)
    x = bl.xattrs(p)
    assert x.get("user.checkoutpage.name") == b"Quarterly report.pdf", x
    assert x.get("user.checkoutpage.content_type") == b"application/pdf", x
    assert x.get("user.checkoutpage.created_at") == b"2024-01-15T10:20:30Z", x
    quiet(servers)
    assert servers.api_calls() == 0, "xattrs from the manifest cost a call"
    assert read_file(p) == servers.content[oid]
    assert os.getxattr(p, "user.checkoutpage.etag").decode() == \
        servers.data.get(oid).etag
    # getfattr -d lists them
    r = subprocess.run(["getfattr", "-d", p], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'user.checkoutpage.name="Quarterly report.pdf"' in r.stdout
    assert "user.checkoutpage.etag=" in r.stdout
    # read-only
    with pytest.raises(OSError) as ei:
        os.setxattr(p, "user.checkoutpage.name", b"x")
    assert ei.value.errno == errno.EROFS
    with pytest.raises(OSError) as ei:
        os.getxattr(p, "user.nope")
    assert ei.value.errno == errno.ENODATA


def test_xattrs_from_data_host_survive_remount(servers, cpfs, tmp_path):
    oid = servers.files["text"]  # Content-Disposition: hello.txt
    cache = tmp_path / "c"
    cache.mkdir()
    m1 = cpfs(manifest=[oid], cache_dir=cache)
    assert read_file(m1.path(oid)) == servers.content[oid]
    x = bl.xattrs(m1.path(oid))
    assert x.get("user.checkoutpage.name") == b"hello.txt", x
    assert x.get("user.checkoutpage.content_type", b"").startswith(
        b"text/plain"), x
    assert x.get("user.checkoutpage.etag") == \
        servers.data.get(oid).etag.encode()
    assert m1.unmount() == 0
    record = (cache / "meta" / oid).read_text()
    m2 = cpfs(manifest=[oid], cache_dir=cache, debug=True)
    assert bl.xattrs(m2.path(oid)) == x
    quiet(servers)
    # Which call, when, and what the second daemon did: a failure here
    # must say where the call came from (seen once, not reproduced).
    why = (record, servers.api.log.all(), servers.data.log.all(),
           m2.log()[-3000:])
    assert servers.api_calls() == 0 and servers.data_gets() == 0, why


def test_stats_xattr_matches_servers(servers, cpfs):
    m = cpfs(clear_logs=False)  # count the start-up key check too
    assert "user.cpfs.stats" in os.listxattr(m.mnt)
    for k in ("one", "mib_plus", "text"):
        oid = servers.files[k]
        assert read_file(m.path(oid)) == servers.content[oid]
    missing = "0123456789abcdef01234567"
    assert not os.path.exists(m.path(missing))
    quiet(servers)
    s = bl.stats(m.mnt)
    for name in ("api_calls", "api_429", "retries", "url_renewals",
                 "data_requests", "bytes_fetched", "cache_hits",
                 "cache_misses", "disk_hits", "disk_misses", "meta_hits"):
        assert name in s, "user.cpfs.stats lacks %s: %r" % (name, s)
    assert s["api_calls"] == servers.api_calls(), (s, servers.api_calls())
    assert s["data_requests"] == servers.data_gets(), \
        (s, servers.data_gets())
    sent = sum(r.bytes_sent for r in servers.data.log.all())
    assert s["bytes_fetched"] == sent
    assert s["api_429"] == 0 and s["retries"] == 0

    # SIGUSR1 writes the same counters to the log
    m.proc.send_signal(10)
    end = time.time() + 5
    while "api_calls=%d" % s["api_calls"] not in m.log():
        assert time.time() < end, "SIGUSR1 dumped no counters:\n" + m.log()
        time.sleep(0.05)


# ------------------------------------------------- 5. by-name/

def _expected_names(pairs):
    """The documented rule, written independently: pairs (id, raw name)."""
    def safe(n):
        s = "".join("_" if (ord(c) < 0x20 or c == "\x7f" or c == "/")
                    else c for c in n)
        return "_" if s in ("", ".", "..") else s
    by = {}
    for oid, raw in pairs:
        by.setdefault(safe(raw), []).append(oid)
    out = {}
    for name, oids in by.items():
        oids.sort()
        out[name] = oids[0]
        for o in oids[1:]:
            out["%s~%s" % (name, o)] = o
    return out


def test_by_name_links(servers, cpfs):
    raw = ["report.pdf", "report.pdf", "report.pdf", "a/b", "..", ".",
           "tab\there", "line\nbreak", "bell\x07", "ünïcode ☃.txt",
           "plain.bin", "-dash"]
    ids = sorted(standin.object_id("byname-%d" % i) for i in range(len(raw)))
    # give the duplicates ids out of order, so "smallest" matters
    order = [2, 0, 1] + list(range(3, len(raw)))
    pairs = []
    for i, name in enumerate(raw):
        oid = ids[order[i]]
        servers.add(standin.make_bytes(1000 + i, 300 + i), id=oid)
        pairs.append((oid, name))
    lines = []
    for o, n in pairs:
        d = json.loads(standin.manifest_line(o, size=len(servers.content[o])))
        d["name"] = n  # (manifest_line would turn "" into the id)
        lines.append(json.dumps(d))
    text = servers.files["text"]  # name only from Content-Disposition
    m = cpfs("names", manifest=lines + [text])
    bn = m.path("by-name")
    assert stat.S_ISDIR(os.stat(bn).st_mode)
    want = _expected_names(pairs)
    got = sorted(os.listdir(bn))
    assert got == sorted(want), "by-name/ listing:\n%r\nwant:\n%r" % (
        got, sorted(want))
    for name, oid in want.items():
        p = os.path.join(bn, name)
        assert os.path.islink(p), name
        assert os.readlink(p) == "../" + oid, name
        assert read_file(p) == servers.content[oid], name
    # the data host's name appears once the file has been probed
    assert read_file(m.path(text)) == servers.content[text]
    assert os.readlink(os.path.join(bn, "hello.txt")) == "../" + text
    assert read_file(os.path.join(bn, "hello.txt")) == servers.content[text]
    # lookups of names that do not exist: ENOENT, no request
    servers.clear_logs()
    assert not os.path.lexists(os.path.join(bn, "no such name"))
    assert not os.path.lexists(os.path.join(bn, "report.pdf~" + "0" * 24))
    quiet(servers)
    assert servers.api_calls() == 0 and servers.data_gets() == 0


def test_by_name_ls_l_builds_once_reads_each_link_once(servers, cpfs):
    """`ls -l by-name/` of 600 links: the view is built and sorted once,
    not once per READDIRPLUS batch, and kept while no name changes (the
    second pass builds nothing); a link's target never changes under its
    number, so the kernel keeps what it read (FUSE_CAP_CACHE_SYMLINKS):
    the second pass sends no READLINK.  Both show every target right."""
    from faultlib import stats
    n = 600
    lines, want = [], {}
    for i in range(n):
        oid = servers.add(standin.make_bytes(70 + i, 10 + i % 50))
        name = "doc-%03d.txt" % i
        lines.append(standin.manifest_line(oid, size=10 + i % 50, name=name))
        want[name] = "../" + oid
    m = cpfs("names", manifest=lines)
    bn = m.path("by-name")
    seen = []
    for _ in range(2):
        before = stats(m)
        out = subprocess.run(["ls", "-l", bn], capture_output=True,
                             text=True, check=True,
                             env=dict(os.environ, LC_ALL="C")).stdout
        after = stats(m)
        seen.append(tuple(after[k] - before[k] for k in (
            "fuse_readlink", "view_builds", "fuse_readdirplus")))
        got = {}
        for line in out.splitlines()[1:]:  # "total N" first
            f = line.split()
            assert f[-2] == "->", line
            got[f[-3]] = f[-1]
        assert got == want
    assert [s[:2] for s in seen] == [(n, 1), (0, 0)], \
        "READLINKs and builds per listing: %r" % seen
    assert all(s[2] >= 2 for s in seen), seen  # several batches each


def test_by_name_lookups_search_one_build(servers, cpfs):
    """Paths under by-name/ looked up one by one (no listing first) cost a
    binary search each in one build of the view, not a build each; a file
    that becomes known with a new name shows up at once (the view is
    rebuilt when a name changes)."""
    from faultlib import stats
    lines, want = [], {}
    for i in range(300):
        oid = servers.add(standin.make_bytes(90 + i, 20))
        lines.append(standin.manifest_line(oid, size=20, name="n%03d" % i))
        want["n%03d" % i] = "../" + oid
    m = cpfs("names", manifest=lines)
    bn = m.path("by-name")
    before = stats(m)
    for name in sorted(want)[::3]:
        assert os.readlink(os.path.join(bn, name)) == want[name]
    after = stats(m)
    assert after["fuse_lookup"] - before["fuse_lookup"] >= 100
    assert after["view_builds"] - before["view_builds"] == 1
    assert not os.path.lexists(os.path.join(bn, "hello.txt"))
    text = servers.files["text"]  # its name comes with its first read
    assert read_file(m.path(text)) == servers.content[text]
    assert os.readlink(os.path.join(bn, "hello.txt")) == "../" + text
    assert stats(m)["view_builds"] - after["view_builds"] == 1


def test_by_name_concurrent_lookups_listings_and_changes(servers, cpfs):
    """Lookups and listings of by-name/ from several threads while other
    files become known (each change makes the next request rebuild the
    view): every answer right, nothing lost (also run under TSan)."""
    lines, want = [], {}
    for i in range(400):
        oid = servers.add(standin.make_bytes(400 + i, 16))
        lines.append(standin.manifest_line(oid, size=16, name="c%03d" % i))
        want["c%03d" % i] = "../" + oid
    extra = [servers.add(standin.make_bytes(900 + i, 32)) for i in range(30)]
    m = cpfs("names", manifest=lines)
    bn = m.path("by-name")
    errors = []

    def lookups(k):
        names = sorted(want)
        try:
            for j in range(300):
                name = names[(k * 131 + j * 7) % len(names)]
                got = os.readlink(os.path.join(bn, name))
                if got != want[name]:
                    errors.append((name, got))
        except OSError as e:
            errors.append(("lookup", e))

    def listings():
        try:
            for _ in range(15):
                got = set(os.listdir(bn))
                if not set(want) <= got:
                    errors.append(("listing lost", len(set(want) - got)))
        except OSError as e:
            errors.append(("listing", e))

    def changes():
        try:
            for oid in extra:  # each becomes listed: the view changes
                if read_file(m.path(oid)) != servers.content[oid]:
                    errors.append(("read", oid))
        except OSError as e:
            errors.append(("read", e))

    threads = [threading.Thread(target=lookups, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=listings) for _ in range(2)]
    threads.append(threading.Thread(target=changes))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert set(os.listdir(bn)) >= set(want)


def test_by_name_empty_name(servers, cpfs):
    """man cpfs: a name that is . or .. becomes "_"; an empty name is no
    name at all (no link)."""
    a = servers.add(b"empty-name", id="a" * 24)
    b = servers.add(b"dot-name", id="b" * 24)
    lines = []
    for oid, name in ((a, ""), (b, ".")):
        d = json.loads(standin.manifest_line(oid, size=len(
            servers.content[oid])))
        d["name"] = name
        lines.append(json.dumps(d))
    m = cpfs("names", manifest=lines)
    bn = m.path("by-name")
    assert sorted(os.listdir(bn)) == ["_"]
    assert read_file(os.path.join(bn, "_")) == b"dot-name"


# ------------------------------------------------- 6. boot mounts

def _key_file(tmp_path, key):
    p = tmp_path / "key"
    p.write_text(key + "\n")
    os.chmod(p, 0o600)
    return p


def _fuse_type(mnt):
    with open("/proc/self/mounts") as fh:
        for line in fh:
            f = line.split()
            if f[1] == os.path.realpath(mnt):
                return f[2], f[3]
    return None, None


@pytest.fixture(scope="module")
def installed_cpfs():
    """`cpfs` where mount(8)'s helpers find it (it runs them without PATH,
    so mount.fuse3 can only find an installed cpfs): a symlink to CPFS_BIN
    in /usr/local/sbin for the duration of this module."""
    cleanup, reason = bl.system_cpfs()
    if cleanup is None:
        pytest.skip(reason)
    yield
    cleanup()


def test_mount_fuse3_helper_from_path(servers, tmp_path):
    """mount.fuse3 itself, as mount(8) calls it, finds cpfs on PATH."""
    mnt = tmp_path / "helper"
    mnt.mkdir()
    oid = servers.files["mib_plus"]
    manifest = servers.write_manifest(str(tmp_path / "ids"), [oid])
    key = _key_file(tmp_path, servers.key)
    bm = bl.BootMount(tmp_path, mnt)
    try:
        r = bm.run(["mount.fuse3", servers.api_url, str(mnt), "-t",
                    "fuse.cpfs", "-o",
                    "rw,nodev,nosuid,api_key_file=%s,ids=%s,cache_dir=%s,"
                    "_netdev" % (key, manifest, tmp_path / "c")])
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(str(mnt))
        assert _fuse_type(mnt)[0] == "fuse.cpfs"
        assert read_file(os.path.join(mnt, oid)) == servers.content[oid]
    finally:
        problem = bm.cleanup()
    assert problem is None, problem


def test_mount_t_fuse_cpfs(servers, tmp_path, installed_cpfs):
    mnt = tmp_path / "boot"
    mnt.mkdir()
    cache = tmp_path / "bc"
    ids = [servers.files["mib"], servers.files["text"]]
    manifest = servers.write_manifest(str(tmp_path / "ids"), ids)
    key = _key_file(tmp_path, servers.key)
    bm = bl.BootMount(tmp_path, mnt)
    try:
        r = bm.run(["mount", "-t", "fuse.cpfs", "-o",
                    "api_key_file=%s,ids=%s,cache_dir=%s" % (key, manifest,
                                                             cache),
                    servers.api_url, str(mnt)])
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(str(mnt))
        assert _fuse_type(mnt)[0] == "fuse.cpfs"
        assert len(bm.pids) == 1, "cpfs daemon not found: %r" % bm.pids
        assert sorted(os.listdir(mnt)) == sorted(ids)
        for oid in ids:
            assert read_file(os.path.join(mnt, oid)) == servers.content[oid]
        assert servers.api_calls() == 1 + len(ids)  # key check + 1 per file
    finally:
        problem = bm.cleanup()
    assert problem is None, problem


def test_fstab_mount(servers, tmp_path, installed_cpfs):
    mnt = tmp_path / "fstabmnt"
    mnt.mkdir()
    ids = [servers.files["five"], servers.files["empty"]]
    manifest = servers.write_manifest(str(tmp_path / "ids"), ids)
    key = _key_file(tmp_path, servers.key)
    opts = ",".join([
        "api_key_file=%s" % key, "ids=%s" % manifest,
        "cache_dir=%s" % (tmp_path / "fc"), "allow_other", "_netdev",
        "nofail", "noauto", "x-systemd.automount",
        "x-systemd.mount-timeout=30", "x-systemd.requires=network-online.target",
        "dev", "suid", "exec", "rw", "relatime", "noatime", "nodiratime"])
    fstab = tmp_path / "fstab"
    fstab.write_text("# test fstab\n%s %s fuse.cpfs %s 0 0\n"
                     % (servers.api_url, mnt, opts))
    bm = bl.BootMount(tmp_path, mnt)
    try:
        r = bm.run(["mount", "-T", str(fstab), str(mnt)])
        print("fstab mount: rc=%d %s" % (r.returncode, r.stderr.strip()))
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(str(mnt)), "fstab mount returned 0 but nothing mounted"
        fstype, mopts = _fuse_type(mnt)
        assert fstype == "fuse.cpfs"
        assert "allow_other" in mopts
        assert sorted(os.listdir(mnt)) == sorted(ids)
        for oid in ids:
            assert read_file(os.path.join(mnt, oid)) == servers.content[oid]
        # still read-only despite "rw"
        with pytest.raises(OSError) as ei:
            open(os.path.join(mnt, ids[0]), "wb")
        assert ei.value.errno in (errno.EROFS, errno.EACCES)
    finally:
        problem = bm.cleanup()
    assert problem is None, problem


@pytest.fixture
def shared_mnt():
    """A mountpoint other users can reach (tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="cpfs-perm-", dir="/tmp")
    os.chmod(d, 0o755)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    yield mnt
    if mounted(mnt):
        subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def test_uid_gid_umask_permissions(servers, cpfs, shared_mnt):
    owner, group, other = 4321, 8765, 65534
    m = cpfs("allow_other", "default_permissions", "uid=%d" % owner,
             "gid=%d" % group, "umask=027", mountpoint=shared_mnt)
    oid = servers.files["text"]
    root = os.stat(m.mnt)
    assert (root.st_uid, root.st_gid) == (owner, group)
    assert stat.S_IMODE(root.st_mode) == 0o550
    st = os.stat(m.path(oid))
    assert (st.st_uid, st.st_gid) == (owner, group)
    assert stat.S_IMODE(st.st_mode) == 0o440
    # the owner reads; another user is refused by the kernel (0440)
    assert bl.as_user(owner, group, _read, m.path(oid)) == \
        servers.content[oid]
    res = bl.as_user(other, other, os.listdir, m.mnt)
    assert isinstance(res, OSError) and res.errno == errno.EACCES, res
    res = bl.as_user(other, group, _read, m.path(oid))  # group member: r--
    assert res == servers.content[oid], res


def test_umask_022_lets_others_read(servers, cpfs, shared_mnt):
    m = cpfs("allow_other", "umask=022", mountpoint=shared_mnt)
    oid = servers.files["one"]
    assert stat.S_IMODE(os.stat(m.path(oid)).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(m.mnt).st_mode) == 0o555
    assert bl.as_user(65534, 65534, _read, m.path(oid)) == \
        servers.content[oid]


def test_wrong_key_fails_before_mounting(servers, run_cpfs, tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = run_cpfs(["-f", "-o", "cache_dir=%s" % (tmp_path / "c"),
                  servers.api_url, str(mnt)], key="cpk_wrong_key", mnt=mnt)
    assert r.returncode != 0
    assert "invalid API key" in r.stderr, r.stderr
    assert "cpk_wrong_key" not in r.stderr + r.stdout
    assert not mounted(str(mnt))
    assert servers.api_calls() == 1
    # man cpfs, EXIT STATUS 1: "One line on standard error says which."
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, "want one line on stderr, got:\n" + r.stderr


def test_wrong_key_via_mount_t(servers, tmp_path, installed_cpfs):
    mnt = tmp_path / "m"
    mnt.mkdir()
    key = _key_file(tmp_path, "cpk_wrong_key")
    bm = bl.BootMount(tmp_path, mnt)
    try:
        r = bm.run(["mount", "-t", "fuse.cpfs", "-o",
                    "api_key_file=%s,cache_dir=%s" % (key, tmp_path / "c"),
                    servers.api_url, str(mnt)])
        assert r.returncode != 0
        assert "invalid API key" in r.stderr, r.stderr
        assert not mounted(str(mnt))
    finally:
        problem = bm.cleanup()
    assert problem is None, problem


def test_no_check_skips_key_check(servers, cpfs):
    m = cpfs("no_check", clear_logs=False)
    time.sleep(0.3)
    assert servers.api_calls() == 0, "no_check still made an API call"
    oid = servers.files["one"]
    assert read_file(m.path(oid)) == servers.content[oid]
    assert servers.api_calls() == 1


def test_no_check_wrong_key_mounts(servers, cpfs):
    m = cpfs("no_check", key="cpk_wrong_key", clear_logs=False)
    time.sleep(0.3)
    assert servers.api_calls() == 0
    with pytest.raises(OSError) as ei:
        read_file(m.path(servers.files["one"]))
    assert ei.value.errno == errno.EACCES


def test_key_check_is_one_call(servers, cpfs):
    cpfs(clear_logs=False)
    quiet(servers)
    assert servers.api_calls() == 1
    assert servers.data_gets() == 0
