"""Mounted tests of cpfs's core contract (SPEC §2-§5)."""

import errno
import os
import random
import signal
import stat
import subprocess
import threading
import time

import pytest

from conftest import (MiB, STANDARD_SIZES, block_coverage, mounted,
                      read_file, sha256, standin)


def errno_of(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.errno
    return 0


def errname(n):
    return errno.errorcode.get(n, str(n)) if n else "success"


# ------------------------------------------------------------ reading

@pytest.mark.parametrize("name", list(STANDARD_SIZES))
def test_whole_read(servers, cpfs, name):
    m = cpfs()
    oid = servers.files[name]
    src = servers.content[oid]
    st = os.stat(m.path(oid))
    assert st.st_size == len(src)
    got = read_file(m.path(oid))
    assert len(got) == len(src)
    assert sha256(got) == sha256(src)
    # a second read (cache or not) gives the same bytes
    assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(src)


def test_text_cat(servers, cpfs):
    m = cpfs()
    oid = servers.files["text"]
    r = subprocess.run(["cat", m.path(oid)], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == servers.content[oid]


def test_random_preads(servers, cpfs):
    m = cpfs()
    oid = servers.files["five"]
    src = servers.content[oid]
    size = len(src)
    rng = random.Random(7)
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        cases = [(0, 1), (size - 1, 1), (size - 10, 100), (size, 10),
                 (size + 12345, 4096), (MiB - 3, 6), (2 * MiB - 1, MiB + 2),
                 (0, size + 100)]
        cases += [(rng.randrange(size + 2 * MiB), rng.choice(
            [1, 17, 4096, 65536, MiB, MiB + 7, 3 * MiB])) for _ in range(60)]
        for off, n in cases:
            got = os.pread(fd, n, off)
            assert got == src[off:off + n], (off, n, len(got))
    finally:
        os.close(fd)


def test_empty_object(servers, cpfs):
    m = cpfs()
    oid = servers.files["empty"]
    assert os.stat(m.path(oid)).st_size == 0
    assert read_file(m.path(oid)) == b""
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        assert os.pread(fd, 10, 0) == b""
        assert os.pread(fd, 10, 100) == b""
    finally:
        os.close(fd)


def test_server_ignores_range(servers, cpfs):
    servers.data.set_fault_rate("ignore_range", 1.0)
    big = standin.make_bytes(12 * MiB, seed=99)
    oid = servers.add(big)
    m = cpfs(manifest=None)
    assert sha256(read_file(m.path(oid))) == sha256(big)
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        for off in (11 * MiB + 5, 3 * MiB - 1, 7 * MiB):
            assert os.pread(fd, 5000, off) == big[off:off + 5000]
    finally:
        os.close(fd)
    assert all(r.status == 200 for r in servers.data.log.find(method="GET"))


def test_concurrent_readers_fetch_each_block_once(servers, cpfs):
    size = 16 * MiB
    big = standin.make_bytes(size, seed=5)
    oid = servers.add(big)
    m = cpfs("cache_size=256M", manifest=None)
    results = [None, None]
    start = threading.Barrier(2)

    def reader(i):
        start.wait()
        results[i] = read_file(m.path(oid), bufsize=MiB if i else 64 * 1024)

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert results[0] == big and results[1] == big
    servers.data.log.quiet(0.3)
    reqs = servers.data.log.find(method="GET", id=oid)
    cov = block_coverage(reqs, size)
    twice = {b: c for b, c in cov.items() if c > 1}
    assert not twice, "blocks fetched more than once: %r\n%r" % (twice, reqs)
    assert servers.api_calls(oid) == 1


# ---------------------------------------------------------- attributes

def test_attributes(servers, cpfs):
    m = cpfs()
    st = os.stat(m.mnt)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o555
    oid = servers.files["mib_plus"]
    st = os.stat(m.path(oid))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_size == MiB + 1
    assert st.st_blksize == MiB
    assert int(st.st_mtime) == standin.DEFAULT_LAST_MODIFIED
    assert st.st_nlink >= 1


def test_mtime_from_manifest_without_network(servers, cpfs):
    oid = servers.files["five"]
    created = 1650000000
    line = servers.manifest_json(oid, created_at=created)
    m = cpfs(manifest=[line])
    st = os.stat(m.path(oid))
    assert st.st_size == 5 * MiB
    assert int(st.st_mtime) == created
    assert servers.api_calls() == 0 and len(servers.data.log) == 0


def test_last_modified_is_mtime(servers, cpfs):
    oid = servers.add(b"abc" * 1000, last_modified=1234567890)
    m = cpfs(manifest=None)
    st = os.stat(m.path(oid))
    assert int(st.st_mtime) == 1234567890 and st.st_size == 3000


# ------------------------------------------------------------ names

BAD_NAMES = ["foo", "a" * 23, "b" * 25, "z" * 24, "0123456789abcdef0123456g",
             ".hidden", "by-name", "desktop.ini", " " + "a" * 23,
             "65a1b2c3d4e5f60718293a4b.txt"]


def test_non_objectid_names_enoent_without_requests(servers, cpfs):
    m = cpfs()
    for name in BAD_NAMES:
        assert errno_of(os.stat, m.path(name)) == errno.ENOENT, name
        assert errno_of(os.open, m.path(name), os.O_RDONLY) == \
            errno.ENOENT, name
    assert servers.api_calls() == 0, servers.api.log.all()
    assert len(servers.data.log) == 0


def test_readdir_manifest(servers, cpfs):
    f = servers.files
    unknown = "ab" * 12  # listed though the API does not know it
    lines = ["# cpfs manifest", "", f["one"], "   ", "#" + f["mib"],
             ("json", f["five"]), f["text"],
             unknown, "", "# end"]
    m = cpfs(manifest=lines)
    listed = os.listdir(m.mnt)
    want = [f["one"], f["five"], f["text"], unknown]
    assert sorted(listed) == sorted(want)
    assert len(listed) == len(set(listed))
    assert servers.api_calls() == 0
    # looking up an id not in the manifest adds it to the listing
    extra = f["mib_minus"]
    assert os.stat(m.path(extra)).st_size == MiB - 1
    assert sorted(os.listdir(m.mnt)) == sorted(want + [extra])
    # a failed lookup does not
    assert errno_of(os.stat, m.path("cd" * 12)) == errno.ENOENT
    assert "cd" * 12 not in os.listdir(m.mnt)


# ------------------------------------------------------------ errors

def test_api_404_enoent(servers, cpfs):
    m = cpfs()
    missing = "0123456789abcdef01234567"
    assert errno_of(os.stat, m.path(missing)) == errno.ENOENT
    assert errno_of(os.open, m.path(missing), os.O_RDONLY) == errno.ENOENT
    assert servers.api_calls(missing) == 1, "a 404 is remembered briefly"


def test_api_400_enoent(servers, cpfs):
    oid = servers.add(b"x")
    servers.api.inject(oid, status=400, json=standin.api_error(
        "Bad Request"), times=None)
    m = cpfs(manifest=None)
    assert errno_of(os.stat, m.path(oid)) == errno.ENOENT


@pytest.mark.parametrize("status", [401, 403])
def test_api_401_403_eacces(servers, cpfs, status):
    oid = servers.add(b"secret")
    servers.api.inject(oid, status=status, json=standin.api_error(
        "Forbidden" if status == 403 else "Unauthorized"), times=None)
    m = cpfs(manifest=None)
    e = errno_of(os.stat, m.path(oid))
    assert e == errno.EACCES, errname(e)
    e = errno_of(read_file, m.path(oid))
    assert e == errno.EACCES, errname(e)


def test_wrong_key_eacces_with_no_check(servers, cpfs):
    m = cpfs("no_check", key="cpk_wrong_key_0000", manifest=None)
    oid = servers.files["one"]
    e = errno_of(os.stat, m.path(oid))
    assert e == errno.EACCES, errname(e)
    assert servers.api.log.count(status=401) >= 1
    assert len(servers.data.log) == 0


def test_wrong_key_refused_before_mount(servers, run_cpfs, tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = run_cpfs(["-f", "-o", "cache_dir=%s" % tmp_path, servers.api_url,
                  str(mnt)], key="cpk_wrong_key_0001", mnt=mnt)
    assert r.returncode != 0
    assert r.stderr.strip(), "no message"
    assert "cpk_wrong_key_0001" not in r.stderr + r.stdout
    assert servers.api.log.count(status=401) >= 1


# ------------------------------------------------------ API economy

def test_one_api_call_while_url_valid(servers, cpfs):
    m = cpfs()
    oid = servers.files["five"]
    src = servers.content[oid]
    for _ in range(3):
        assert read_file(m.path(oid)) == src
        for _ in range(10):
            os.stat(m.path(oid))
    fd = os.open(m.path(oid), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    assert os.pread(fd, 100, 3 * MiB + 5) == src[3 * MiB + 5:3 * MiB + 105]
    os.close(fd)
    assert servers.api_calls(oid) == 1
    assert servers.api_calls() == 1


@pytest.mark.slow
def test_url_renewed_when_expired_mid_read(servers, cpfs):
    size = 8 * MiB
    big = standin.make_bytes(size, seed=11)
    oid = servers.add(big)
    servers.api.expires_for[oid] = 2
    m = cpfs(manifest=None)
    fd = os.open(m.path(oid), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        assert os.pread(fd, 4096, 0) == big[:4096]
        servers.data.log.quiet(0.3)
        assert servers.api_calls(oid) == 1
        time.sleep(3.2)
        off = 6 * MiB + 100
        assert os.pread(fd, 4096, off) == big[off:off + 4096]
        assert servers.api_calls(oid) == 2, servers.api.log.all()
    finally:
        os.close(fd)
    assert sha256(read_file(m.path(oid))) == sha256(big)


def test_data_host_never_sees_authorization(servers, cpfs):
    m = cpfs()
    for name in ("one", "five", "text"):
        read_file(m.path(servers.files[name]))
    assert servers.data.log.count(method="GET") > 0
    assert servers.data.auth_seen() == []
    for r in servers.api.log.all():
        assert r.headers.get("authorization") == "Bearer " + servers.key


# ------------------------------------------------------------ writes

def test_writes_refused(servers, cpfs):
    m = cpfs()
    oid = servers.files["one"]
    p = m.path(oid)
    os.stat(p)
    new_id = "fe" * 12
    ops = {
        "open O_WRONLY": lambda: os.open(p, os.O_WRONLY),
        "open O_RDWR": lambda: os.open(p, os.O_RDWR),
        "open O_TRUNC": lambda: os.open(p, os.O_RDONLY | os.O_TRUNC),
        "open O_CREAT existing": lambda: os.open(
            p, os.O_WRONLY | os.O_CREAT, 0o644),
        "open O_CREAT new": lambda: os.open(
            m.path(new_id), os.O_WRONLY | os.O_CREAT, 0o644),
        "creat name": lambda: os.open(
            m.path("newfile"), os.O_WRONLY | os.O_CREAT, 0o644),
        "mkdir": lambda: os.mkdir(m.path("d")),
        "rmdir": lambda: os.rmdir(m.path("d")),
        "unlink": lambda: os.unlink(p),
        "rename": lambda: os.rename(p, m.path("x")),
        "truncate": lambda: os.truncate(p, 0),
        "chmod": lambda: os.chmod(p, 0o644),
        "chown": lambda: os.chown(p, 1, 1),
        "utime": lambda: os.utime(p, (1, 1)),
        "setxattr": lambda: os.setxattr(p, "user.x", b"1"),
        "removexattr": lambda: os.removexattr(p, "user.x"),
        "symlink": lambda: os.symlink("x", m.path("l")),
        "link": lambda: os.link(p, m.path("l2")),
        "mknod": lambda: os.mkfifo(m.path("fifo")),
    }
    bad = {}
    for name, fn in ops.items():
        e = errno_of(fn)
        # rmdir of a missing name may say ENOENT first; every other op EROFS
        ok = {errno.EROFS} | ({errno.ENOENT} if name == "rmdir" else set())
        if e not in ok:
            bad[name] = errname(e)
    assert not bad, "not EROFS: %r" % bad
    assert read_file(p) == servers.content[oid]
    assert all(r.method == "GET" for r in servers.data.log.all())


# --------------------------------------------------- command line

def _no_mount_run(run_cpfs, tmp_path, args, **kw):
    mnt = kw.pop("mnt", None)
    if mnt is None:
        mnt = tmp_path / "mp"
        mnt.mkdir(exist_ok=True)
    r = run_cpfs(list(args(mnt)), mnt=mnt, **kw)
    assert not mounted(str(mnt))
    return r


def _one_line(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, "want one line on stderr, got %r" % r.stderr
    return lines[0]


def test_no_key(servers, run_cpfs, tmp_path):
    r = _no_mount_run(run_cpfs, tmp_path, lambda mnt: [
        "-f", servers.api_url, str(mnt)], key=None)
    assert r.returncode != 0
    assert "CHECKOUTPAGE_API_KEY" in r.stderr
    assert "api_key_file" in r.stderr
    assert servers.api_calls() == 0


@pytest.mark.parametrize("opt", ["bogus_option", "cache_size=abc",
                                 "cache_size=", "cache_size=12Q",
                                 "timeout=-1", "api_rate=zero"])
def test_bad_options(servers, run_cpfs, tmp_path, opt):
    r = _no_mount_run(run_cpfs, tmp_path, lambda mnt: [
        "-f", "-o", opt, servers.api_url, str(mnt)])
    assert r.returncode != 0
    _one_line(r)
    assert servers.key not in r.stderr + r.stdout


def test_unknown_flag(servers, run_cpfs, tmp_path):
    r = _no_mount_run(run_cpfs, tmp_path, lambda mnt: [
        "-f", "--no-such-flag", servers.api_url, str(mnt)])
    assert r.returncode != 0
    _one_line(r)


@pytest.mark.parametrize("url", ["http://192.0.2.1", "http://example.com",
                                 "http://127.0.0.1.nip.io", "ftp://127.0.0.1",
                                 "file:///etc/passwd", "not a url"])
def test_bad_api_url(servers, run_cpfs, tmp_path, url):
    # Run in a network namespace (loopback down): nothing can leave this
    # machine even if cpfs tried to connect.
    r = _no_mount_run(run_cpfs, tmp_path, lambda mnt: [
        "-f", "-o", "no_check", url, str(mnt)], netns=True)
    assert r.returncode != 0
    _one_line(r)


def test_missing_mountpoint(servers, run_cpfs, tmp_path):
    mnt = tmp_path / "does-not-exist"
    r = run_cpfs(["-f", servers.api_url, str(mnt)], mnt=mnt)
    assert r.returncode != 0
    _one_line(r)


def test_no_mountpoint_argument(servers, run_cpfs):
    r = run_cpfs(["-f"])
    assert r.returncode != 0
    assert r.stderr.strip()


def test_nonempty_mountpoint(servers, run_cpfs, tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    (mnt / "file").write_text("x")
    r = run_cpfs(["-f", servers.api_url, str(mnt)], mnt=mnt)
    assert r.returncode != 0
    _one_line(r)
    assert (mnt / "file").read_text() == "x"


def test_mountpoint_is_a_file(servers, run_cpfs, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    r = run_cpfs(["-f", servers.api_url, str(f)])
    assert r.returncode != 0
    _one_line(r)


def test_help_and_version(servers, run_cpfs):
    for flag in ("-h", "--help", "-V", "--version"):
        r = run_cpfs([flag])
        assert r.returncode == 0, (flag, r.stderr)
        assert (r.stdout + r.stderr).strip()


# ------------------------------------------------------------ lifecycle

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(servers, cpfs, sig):
    m = cpfs()
    oid = servers.files["mib"]
    assert read_file(m.path(oid)) == servers.content[oid]
    m.proc.send_signal(sig)
    rc = m.wait(10)
    assert rc == 0, m.log()
    assert not mounted(m.mnt)


def test_fusermount_unmount_exit_zero(servers, cpfs):
    m = cpfs()
    os.listdir(m.mnt)
    assert m.unmount() == 0
    assert not mounted(m.mnt)


def test_debug_log_never_leaks(servers, cpfs):
    m = cpfs(debug=True)
    for name in ("one", "five", "text"):
        oid = servers.files[name]
        assert read_file(m.path(oid)) == servers.content[oid]
    errno_of(os.stat, m.path("0" * 24))
    assert m.unmount() == 0
    log = m.log()
    assert log.strip(), "-d produced no log at all"
    m.check_log_clean()
    assert servers.key not in " ".join(m.argv)


def test_api_key_file(servers, cpfs, tmp_path):
    kf = tmp_path / "key"
    kf.write_text(servers.key + "\n")
    os.chmod(kf, 0o600)
    m = cpfs("api_key_file=%s" % kf, key=None)
    oid = servers.files["one"]
    assert read_file(m.path(oid)) == servers.content[oid]


def test_data_403_renews_url_once(servers, cpfs):
    oid = servers.files["five"]
    src = servers.content[oid]
    m = cpfs()
    servers.data.inject("expired", oid)
    assert read_file(m.path(oid)) == src
    assert servers.api_calls(oid) == 2, servers.api.log.all()
    assert servers.data.log.count(id=oid, status=403) == 1


def test_concurrent_lookups_share_one_api_call(servers, cpfs):
    oid = servers.add(standin.make_bytes(3 * MiB, seed=3))
    servers.api.inject(oid, delay=0.5)
    m = cpfs(manifest=None)
    sizes = []
    barrier = threading.Barrier(8)

    def look():
        barrier.wait()
        fd = os.open(m.path(oid), os.O_RDONLY)
        sizes.append(os.fstat(fd).st_size)
        os.close(fd)

    ts = [threading.Thread(target=look) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sizes == [3 * MiB] * 8
    assert servers.api_calls(oid) == 1
