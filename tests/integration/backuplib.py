"""
backuplib.py - helpers for test_backup.py (issue 5: backup-grade cpfs).

    stats(mnt) -> {name: int}          user.cpfs.stats of the mount root
    xattrs(path) -> {name: bytes}      every listed attribute and its value
    tree(root) -> {relpath: bytes}     regular files below root
    du_bytes(root) -> (apparent, allocated) byte totals of a directory tree
    daemon_pids(mnt) -> [pid]          cpfs processes serving mountpoint mnt
    BootMount(...)                     `mount -t fuse.cpfs` / fstab mounts
                                       run through mount.fuse3, with cleanup
    ro_tmpfs(path) / umount_quiet(path) read-only tmpfs for cache_dir tests
    as_user(uid, gid, fn) -> result     run fn in a forked child under uid/gid
"""

import os
import pickle
import subprocess
import time

from conftest import CPFS_BIN, mounted


def stats(mnt):
    raw = os.getxattr(mnt, "user.cpfs.stats")
    out = {}
    for line in raw.decode().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = int(v.strip())
    return out


def xattrs(path):
    return {n: os.getxattr(path, n) for n in os.listxattr(path)}


def tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def du_bytes(root):
    apparent = allocated = 0
    for d, dirs, files in os.walk(root):
        for f in files + dirs:
            try:
                st = os.lstat(os.path.join(d, f))
            except FileNotFoundError:
                continue
            if not os.path.isdir(os.path.join(d, f)):
                apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def daemon_pids(mnt):
    """cpfs processes (by /proc/<pid>/exe) whose argv names mountpoint."""
    real = os.path.realpath(CPFS_BIN)
    mnt = os.path.realpath(mnt)
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % p)
            with open("/proc/%s/cmdline" % p, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if exe.replace(" (deleted)", "") != real:
            continue
        if any(os.fsdecode(a).rstrip("/") == mnt for a in argv):
            pids.append(int(p))
    return pids


def wait_gone(pids, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        alive = [p for p in pids if os.path.exists("/proc/%d" % p)
                 and not _zombie(p)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# mount(8) runs its helpers without PATH, so mount.fuse3's `/bin/sh -c
# 'cpfs' ...` searches /bin/sh's default PATH only; an installed cpfs lives
# there.  The tests put a symlink to CPFS_BIN first in that PATH for their
# duration (see system_cpfs()).
SH_DEFAULT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                   "/usr/bin", "/sbin", "/bin"]
SYSTEM_LINK = "/usr/local/sbin/cpfs"


def system_cpfs():
    """Makes `cpfs` in /bin/sh's default PATH resolve to CPFS_BIN.
    Returns (cleanup, None) or (None, reason to skip)."""
    real = os.path.realpath(CPFS_BIN)
    for d in SH_DEFAULT_PATH:
        p = os.path.join(d, "cpfs")
        if os.path.lexists(p):
            if os.path.realpath(p) == real:
                return (lambda: None), None
            return None, "%s is another cpfs (%s)" % (p, os.path.realpath(p))
    try:
        os.makedirs(os.path.dirname(SYSTEM_LINK), exist_ok=True)
        os.symlink(real, SYSTEM_LINK)
    except OSError as e:
        return None, "cannot create %s: %s" % (SYSTEM_LINK, e)

    def cleanup():
        try:
            if os.path.realpath(SYSTEM_LINK) == real:
                os.unlink(SYSTEM_LINK)
        except OSError:
            pass
    return cleanup, None


class BootMount:
    """A cpfs started the boot way: mount(8) -> mount.fuse3 -> `cpfs` from
    PATH, which daemonizes.  .bindir holds the `cpfs` symlink; .env is the
    environment to run mount(8) with.  .cleanup() unmounts and makes sure
    the daemon is gone (returns a problem string or None)."""

    def __init__(self, tmp, mnt):
        self.mnt = str(mnt)
        self.bindir = os.path.join(str(tmp), "bootbin")
        os.makedirs(self.bindir, exist_ok=True)
        link = os.path.join(self.bindir, "cpfs")
        if not os.path.lexists(link):
            os.symlink(os.path.realpath(CPFS_BIN), link)
        self.env = {k: v for k, v in os.environ.items()
                    if k != "CHECKOUTPAGE_API_KEY"}
        self.env["PATH"] = self.bindir + ":" + os.environ.get(
            "PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        self.pids = []

    def run(self, argv, timeout=30):
        r = subprocess.run(argv, env=self.env, capture_output=True,
                           text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if mounted(self.mnt):
            self.pids = daemon_pids(self.mnt)
        return r

    def cleanup(self):
        problem = None
        if not self.pids and mounted(self.mnt):
            self.pids = daemon_pids(self.mnt)
        if mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt],
                               capture_output=True, text=True)
            if r.returncode != 0:
                problem = "fusermount3 -u failed: %s" % r.stderr.strip()
                subprocess.run(["fusermount3", "-uz", self.mnt],
                               capture_output=True)
        if not wait_gone(self.pids):
            problem = problem or "daemon %r still running after unmount" % (
                self.pids,)
            for p in self.pids:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
        if mounted(self.mnt):
            problem = problem or "%s still mounted" % self.mnt
        return problem


def ro_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                    str(path)], check=True, capture_output=True)


def umount_quiet(path):
    if mounted(str(path)):
        r = subprocess.run(["umount", str(path)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def as_user(uid, gid, fn, *args):
    """Runs fn(*args) in a forked child with the given uid/gid (no
    supplementary groups); returns its result, or the OSError it raised."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                res = ("ok", fn(*args))
            except OSError as e:
                res = ("err", e.errno)
            with os.fdopen(wfd, "wb") as fh:
                pickle.dump(res, fh)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    kind, val = pickle.loads(data)
    if kind == "err":
        return OSError(val, os.strerror(val))
    return val
