"""
Metadata at scale (issue 13): what a listing costs in FUSE requests, read
from cpfs's own counters (user.cpfs.stats, fuse_* by kind), and that the
answers are the manifest's.

- `ls -l` of a 2 000-entry manifest: readdirplus batches and a handful of
  GETXATTR requests in all (security.* and system.* answer "not
  supported", which ls remembers per device), no LOOKUP or GETATTR per
  file, the manifest's sizes;
- `find -printf`: the same sizes, no request per file;
- a stat of every listed file afterwards costs nothing (long-lived
  attributes from readdirplus);
- user.* attributes still work, the other namespaces are EOPNOTSUPP, and
  cp -a, rsync -aAX and tar --xattrs copy the mount without a complaint.
"""

import errno
import os
import random
import subprocess
import time

from backuplib import stats
from conftest import sha256

ENTRIES = 2000
ENV = dict(os.environ, LC_ALL="C")


def manifest_records(n, seed=13):
    r = random.Random(seed)
    recs = []
    for i in range(n):
        oid = "%08x%016x" % (1600000000 + i, r.getrandbits(64))
        recs.append({"id": oid, "size": r.choice((0, 1, 4096,
                                                  r.randrange(1 << 34))),
                     "name": "f%d.bin" % i,
                     "createdAt": "2021-01-01T00:00:00.000Z"})
    return recs


class Counter:
    """FUSE requests by kind between two points, less the requests that
    reading the counters costs (measured, not assumed)."""

    def __init__(self, mnt):
        self.mnt = mnt
        a = stats(mnt)
        b = stats(mnt)
        self.own = {k: b[k] - a[k] for k in b if k.startswith("fuse_")}
        self.last = b

    def take(self):
        now = stats(self.mnt)
        d = {k[5:]: now[k] - self.last[k] - self.own[k] for k in now
             if k.startswith("fuse_")}
        d["api_calls"] = now["api_calls"] - self.last["api_calls"]
        d["data_requests"] = now["data_requests"] - \
            self.last["data_requests"]
        self.last = stats(self.mnt)
        return d


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3\n")


def big_mount(servers, cpfs):
    recs = manifest_records(ENTRIES)
    m = cpfs(manifest=recs)
    return m, {r["id"]: r["size"] for r in recs}


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, (argv, p.stderr)
    return p


def test_ls_l_costs_no_request_per_file(servers, cpfs):
    m, sizes = big_mount(servers, cpfs)
    drop_caches()
    c = Counter(m.mnt)
    for attempt in ("cold", "warm"):
        out = run(["ls", "-l", m.mnt]).stdout.splitlines()
        d = c.take()
        print(attempt, "ls -l", d)
        got = {}
        for line in out[1:]:
            f = line.split()
            got[f[-1]] = int(f[4])
        assert got == sizes, attempt
        assert d["readdirplus"] >= 1 and d["readdir"] == 0, d
        assert d["readdir_entries"] >= ENTRIES, d
        # ls asks security.selinux and system.posix_acl_access of the
        # first file only: both "not supported" on this device.
        assert d["getxattr"] <= 4, d
        assert d["lookup"] == 0 and d["getattr"] <= 1, d
        assert d["api_calls"] == 0 and d["data_requests"] == 0, d


def test_find_printf_sizes_and_stat_cost_nothing(servers, cpfs):
    m, sizes = big_mount(servers, cpfs)
    drop_caches()
    c = Counter(m.mnt)
    out = run(["find", m.mnt, "-type", "f", "-printf", "%f %s\n"]).stdout
    d = c.take()
    print("find", d)
    got = {}
    for line in out.splitlines():
        name, size = line.split()
        got[name] = int(size)
    assert got == sizes
    assert d["readdirplus"] >= 1 and d["readdir_entries"] >= ENTRIES, d
    assert d["lookup"] == 0 and d["getattr"] <= 1, d
    assert d["getxattr"] == 0, d
    # A backup tool's scan after the listing: every attribute is cached.
    for oid, size in sizes.items():
        st = os.lstat(os.path.join(m.mnt, oid))
        assert st.st_size == size
    d = c.take()
    assert d["lookup"] == 0 and d["getattr"] == 0, d
    assert d["api_calls"] == 0 and d["data_requests"] == 0, d
    # Evicted inodes come back as FORGETs, answered (counted) by cpfs.
    drop_caches()
    deadline = time.time() + 10
    while time.time() < deadline:
        if c.take()["forget"] >= ENTRIES:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the kernel's FORGETs were not counted")


def test_only_user_xattrs_exist(servers, cpfs):
    oid = servers.files["text"]
    m = cpfs(manifest=[("json", oid)])
    p = m.path(oid)
    for name in ("security.selinux", "system.posix_acl_access",
                 "system.posix_acl_default", "trusted.x", "security.ima"):
        try:
            os.getxattr(p, name)
            raise AssertionError("%s answered" % name)
        except OSError as e:
            assert e.errno == errno.EOPNOTSUPP, (name, e)
    try:
        os.getxattr(m.mnt, "system.posix_acl_default")
        raise AssertionError("the root answered an ACL")
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP
    # the user namespace is untouched
    try:
        os.getxattr(p, "user.nope")
        raise AssertionError("user.nope answered")
    except OSError as e:
        assert e.errno == errno.ENODATA
    assert os.getxattr(p, "user.checkoutpage.name") == \
        servers.manifest_json(oid)["name"].encode()
    r = run(["getfattr", "-d", p])
    assert "user.checkoutpage.name=" in r.stdout
    assert "user.checkoutpage.content_type=" in r.stdout
    assert b"api_calls=" in os.getxattr(m.mnt, "user.cpfs.stats")
    assert os.listxattr(m.mnt) == ["user.cpfs.stats"]


def test_copy_tools_keep_working(servers, cpfs, tmp_path):
    m = cpfs(manifest=[("json", oid) for oid in servers.files.values()])
    named = servers.files["text"]
    want = {oid: sha256(servers.content[oid])
            for oid in servers.files.values()}
    name = os.getxattr(m.path(named), "user.checkoutpage.name")
    assert name

    def check(dest, tool):
        got = {n: sha256(open(os.path.join(dest, n), "rb").read())
               for n in os.listdir(dest)}
        assert got == want, tool
        assert os.getxattr(os.path.join(dest, named),
                           "user.checkoutpage.name") == name, tool

    a = tmp_path / "cp"
    r = run(["cp", "-a", m.mnt + "/.", str(a)])
    assert r.stderr == ""
    check(a, "cp -a")
    b = tmp_path / "rsync"
    r = run(["rsync", "-aAX", m.mnt + "/", str(b) + "/"])
    assert r.stderr == ""
    check(b, "rsync -aAX")
    c = tmp_path / "tar"
    c.mkdir()
    tarball = str(tmp_path / "t.tar")
    r = run(["tar", "--xattrs", "--acls", "-cf", tarball, "-C", m.mnt,
             "."])
    assert r.stderr == ""
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-xf", tarball,
         "-C", str(c)])
    check(c, "tar --xattrs")
