#!/usr/bin/python3
"""
meta.py - metadata benchmark: `ls -l` and `find -printf '%s\\n'` over a
large manifest, cpfs against a tmpfs holding the same names and sizes and
against floorfs, a FUSE daemon that does nothing but list them.

    sudo /usr/bin/python3 tests/bench/meta.py                    # 100 000
    sudo /usr/bin/python3 tests/bench/meta.py --entries 1000000 --runs 1

What it does (as root; everything on 127.0.0.1, removed on exit):
  - writes a JSON manifest of N upload-shaped records, every size known
    (so no data request is needed at all), and a tmpfs with the same N
    names as sparse files of the same sizes;
  - starts the API stand-in (tests/standin/standin.py; cpfs's start-up
    key check is its only API call);
  - per cold run: mounts cpfs with a fresh cache_dir, drops the kernel's
    caches, times `ls -l MNT >/dev/null` (cold, then warm again on the
    same mount), remounts, drops caches, times `find MNT -printf '%s\\n'`
    (cold, then warm); the tmpfs gets the same, after dropping caches;
  - reads cpfs's counters (user.cpfs.stats on the mount root) around each
    listing: the FUSE requests it cost by kind, and API calls and data
    requests (both must be 0);
  - the floor (unless --no-floor): tests/bench/floorfs.c, built here with
    cc, a one-thread FUSE daemon that answers READDIRPLUS for the same
    names and sizes from a table in memory and does nothing else; it gets
    the same cold and warm listings, so "cpfs × floor" is what cpfs's own
    work adds and "floor × tmpfs" what the kernel's side of FUSE costs;
  - with --names, also `ls -l MNT/by-name` (cold, then warm) on a mount
    with -o names: the same names as symlinks, cpfs only;
  - checks that find printed the manifest's sizes, in any order, and that
    ls -l printed one line per entry;
  - memory: the daemon's VmRSS after the cold listing, minus that of a
    mount of an empty manifest after the same listing, per entry.

Medians of --runs cold runs (default 3).  Timings go to stdout with the
exact command line; --json writes them all.
"""

import argparse
import json
import os
import random
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STANDIN = os.path.join(ROOT, "tests", "standin", "standin.py")
FLOORFS_C = os.path.join(ROOT, "tests", "bench", "floorfs.c")
sys.path.insert(0, os.path.dirname(STANDIN))

import standin  # noqa: E402
from run import build_floor, drop_caches, is_mounted  # noqa: E402

PY = "/usr/bin/python3"
ENV = dict(os.environ, LC_ALL="C")
LS = ["ls", "-l"]
FIND_ARGS = ["-printf", "%s\\n"]


def log(msg):
    print(msg, flush=True)


def make_ids(n, seed):
    """n distinct ObjectId-shaped ids (24 hex digits)."""
    r = random.Random(seed)
    out, seen = [], set()
    t0 = 1600000000
    while len(out) < n:
        oid = "%08x%016x" % (t0 + len(out), r.getrandbits(64))
        if oid not in seen:
            seen.add(oid)
            out.append(oid)
    return out


def make_sizes(n, seed):
    r = random.Random(seed + 1)
    return [r.choice((0, 1, 4096, r.randrange(1 << 30))) for _ in range(n)]


def write_manifest(path, ids, sizes):
    with open(path, "w") as fh:
        fh.write("# cpfs metadata benchmark: %d entries\n" % len(ids))
        for i, (oid, size) in enumerate(zip(ids, sizes)):
            fh.write(standin.manifest_line(
                oid, size=size, name="file-%07d.bin" % i,
                created_at=1600000000 + i) + "\n")


def fill_tmpfs(path, ids, sizes):
    for oid, size in zip(ids, sizes):
        fd = os.open(os.path.join(path, oid), os.O_CREAT | os.O_WRONLY, 0o444)
        if size:
            os.ftruncate(fd, size)
        os.close(fd)


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stats(mnt):
    raw = os.getxattr(mnt, "user.cpfs.stats").decode()
    return {k: int(v) for k, v in
            (line.split("=", 1) for line in raw.splitlines() if "=" in line)}


def delta(before, after):
    d = {k: after[k] - before.get(k, 0) for k in after
         if k.startswith("fuse_") or k in ("api_calls", "data_requests")}
    # The read of the counters themselves: Python's os.getxattr asks
    # with a 128-byte buffer first, then again with a big one.
    d["fuse_getxattr"] -= 2
    return d


def proc_cpu_s(pid):
    """User + system CPU seconds of process @pid so far."""
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv, daemon=None):
    """Wall seconds of @argv, and where the CPU went: the lister's user
    and system time (the kernel's work for it runs in its context) and
    the daemon's CPU over the same span."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    d0 = proc_cpu_s(daemon) if daemon else 0.0
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=ENV)
    el = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (
            " ".join(argv), p.returncode, p.stderr.decode()[-500:]))
    return el, {"user_s": r1.ru_utime - r0.ru_utime,
                "sys_s": r1.ru_stime - r0.ru_stime,
                "daemon_s": (proc_cpu_s(daemon) - d0) if daemon else 0.0}


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="cpfs-meta-")
        self.procs = []
        self.mounts = []
        self.results = {"command": " ".join([PY] + sys.argv),
                        "entries": a.entries, "runs": a.runs}

    # ------------------------------------------------------------ setup
    def setup(self):
        a = self.a
        t = time.perf_counter()
        self.ids = make_ids(a.entries, a.seed)
        self.sizes = make_sizes(a.entries, a.seed)
        self.manifest = os.path.join(self.tmp, "ids.manifest")
        write_manifest(self.manifest, self.ids, self.sizes)
        self.empty = os.path.join(self.tmp, "empty.manifest")
        with open(self.empty, "w") as fh:
            fh.write("# no entries\n")
        if not a.no_floor:
            self.build_floor()
        if not a.no_tmpfs:
            self.tmpfs = os.path.join(self.tmp, "tmpfs")
            os.mkdir(self.tmpfs)
            subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "nr_inodes=0", "tmpfs", self.tmpfs],
                           check=True)
            self.mounts.append(self.tmpfs)
            fill_tmpfs(self.tmpfs, self.ids, self.sizes)
        log("setup: %d entries in %.1f s" % (a.entries,
                                              time.perf_counter() - t))
        self.key = "meta-" + secrets.token_hex(12)
        pf = os.path.join(self.tmp, "api.port")
        lf = open(os.path.join(self.tmp, "standin.log"), "ab")
        p = subprocess.Popen([PY, STANDIN, "--sample", "--key", self.key,
                              "--port-file", pf], stdout=lf,
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True)
        lf.close()
        self.procs.append(p)
        end = time.time() + 15
        while not (os.path.exists(pf) and os.path.getsize(pf)):
            if p.poll() is not None or time.time() > end:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.05)
        with open(pf) as fh:
            self.api_url = "http://127.0.0.1:%s" % fh.read().split()[0]

    # ------------------------------------------------------------ floor
    def build_floor(self):
        """Build floorfs and write its list of names and sizes."""
        self.floorfs = os.path.join(self.tmp, "floorfs")
        build_floor(FLOORFS_C, self.floorfs)
        self.floor_list = os.path.join(self.tmp, "floor.list")
        with open(self.floor_list, "w") as fh:
            for oid, size in zip(self.ids, self.sizes):
                fh.write("%s %d\n" % (oid, size))

    def floor_run(self, kind):
        mnt = tempfile.mkdtemp(prefix="floor-", dir=self.tmp)
        p = subprocess.Popen([self.floorfs, self.floor_list, mnt],
                             stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        end = time.time() + 60
        while not is_mounted(mnt):
            if p.poll() is not None or time.time() > end:
                raise RuntimeError("floorfs did not mount")
            time.sleep(0.01)
        self.mounts.append(mnt)
        drop_caches()
        cold, cold_cpu = timed(self.listing(kind, mnt), p.pid)
        warm, warm_cpu = timed(self.listing(kind, mnt), p.pid)
        if kind == "find":
            self.check_output(kind, mnt)
        self.unmount(mnt, p)
        return {"cold_s": cold, "warm_s": warm, "cold_cpu": cold_cpu,
                "warm_cpu": warm_cpu}

    # ------------------------------------------------------------- cpfs
    def mount(self, manifest, names=False):
        mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.tmp)
        cdir = tempfile.mkdtemp(prefix="cache-", dir=self.tmp)
        argv = [self.a.cpfs, "-f", "-o", "ids=%s,cache_dir=%s%s" % (
            manifest, cdir, ",names" if names else ""), self.api_url, mnt]
        lf = open(os.path.join(self.tmp, "cpfs.log"), "ab")
        env = dict(os.environ, CHECKOUTPAGE_API_KEY=self.key)
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        lf.close()
        self.procs.append(p)
        end = time.time() + 120
        while not is_mounted(mnt):
            if p.poll() is not None or time.time() > end:
                raise RuntimeError("cpfs did not mount (see %s/cpfs.log)" %
                                   self.tmp)
            time.sleep(0.01)
        self.mounts.append(mnt)
        self.last_mount_s = time.perf_counter() - t
        self.cmd = argv
        return mnt, p

    def unmount(self, mnt, p):
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", mnt])
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.returncode != 0:
            raise RuntimeError("%s exited with %d" % (
                os.path.basename(p.args[0]), p.returncode))
        self.mounts.remove(mnt)
        self.procs.remove(p)

    def listing(self, kind, mnt):
        """The listing command of @kind on @mnt (argv)."""
        if kind == "ls":
            return LS + [mnt]
        if kind == "byname":
            return LS + [os.path.join(mnt, "by-name")]
        return ["find", mnt] + FIND_ARGS

    def check_output(self, kind, mnt):
        """The listing prints what the manifest says."""
        p = subprocess.run(self.listing(kind, mnt), capture_output=True,
                           env=ENV, check=True)
        lines = p.stdout.decode().splitlines()
        if kind == "find":
            got = sorted(int(x) for x in lines[1:])  # [0] is the root
            if got != sorted(self.sizes):
                raise RuntimeError("find on %s printed other sizes" % mnt)
        elif len(lines) != len(self.ids) + 1:  # "total N" first
            raise RuntimeError("ls -l on %s printed %d lines" % (
                mnt, len(lines)))

    def cpfs_run(self, kind, manifest):
        mnt, p = self.mount(manifest, names=kind == "byname")
        mount_s = self.last_mount_s
        drop_caches()
        s0 = stats(mnt)
        cold, cold_cpu = timed(self.listing(kind, mnt), p.pid)
        s1 = stats(mnt)
        rss = vm_rss_kib(p.pid)
        warm, warm_cpu = timed(self.listing(kind, mnt), p.pid)
        s2 = stats(mnt)
        if manifest == self.manifest and kind == "find":
            self.check_output(kind, mnt)
        self.unmount(mnt, p)
        return {"cold_s": cold, "warm_s": warm, "rss_kib": rss,
                "cold_cpu": cold_cpu, "warm_cpu": warm_cpu,
                "mount_s": mount_s, "cold_requests": delta(s0, s1),
                "warm_requests": delta(s1, s2)}

    def tmpfs_run(self, kind):
        drop_caches()
        cold, cold_cpu = timed(self.listing(kind, self.tmpfs))
        warm, warm_cpu = timed(self.listing(kind, self.tmpfs))
        return {"cold_s": cold, "warm_s": warm, "cold_cpu": cold_cpu,
                "warm_cpu": warm_cpu}

    # -------------------------------------------------------------- run
    def run(self):
        a = self.a
        res = self.results
        kinds = ["ls", "find"] + (["byname"] if a.names else [])
        runs = {("cpfs", k): [] for k in kinds}
        runs.update({("tmpfs", k): [] for k in kinds})
        runs.update({("floor", k): [] for k in kinds})
        empty = {}
        for k in kinds:
            empty[k] = self.cpfs_run(k, self.empty)
        for i in range(a.runs):
            for k in kinds:
                runs[("cpfs", k)].append(self.cpfs_run(k, self.manifest))
                if k == "byname":  # cpfs's own view: nothing to compare
                    pass
                elif not a.no_tmpfs:
                    runs[("tmpfs", k)].append(self.tmpfs_run(k))
                if not a.no_floor and k != "byname":
                    runs[("floor", k)].append(self.floor_run(k))
                line = "run %d %-4s" % (i + 1, k)
                for sysname in ("cpfs", "tmpfs", "floor"):
                    if runs[(sysname, k)]:
                        last = runs[(sysname, k)][-1]
                        line += " %s cold %.3f s warm %.3f s;" % (
                            sysname, last["cold_s"], last["warm_s"])
                log(line.rstrip(";"))
        if not a.no_tmpfs:
            for k in ("ls", "find"):
                self.check_output(k, self.tmpfs)
        # the output check of the last cpfs run is in cpfs_run (find);
        # ls -l's line count on a fresh mount:
        mnt, p = self.mount(self.manifest)
        self.check_output("ls", mnt)
        self.unmount(mnt, p)
        if a.names:
            mnt, p = self.mount(self.manifest, names=True)
            self.check_output("byname", mnt)
            self.unmount(mnt, p)

        res["cpfs_command"] = " ".join(self.cmd)
        res["ls_command"] = " ".join(LS) + " MNT >/dev/null"
        res["find_command"] = "find MNT -printf '%s\\n' >/dev/null"
        res["env"] = "LC_ALL=C"
        res["kernel"] = os.uname().release
        res["runs_detail"] = {"%s_%s" % key: v for key, v in runs.items()}
        res["empty"] = empty
        log("")
        log("command: %s" % res["command"])
        log("cpfs:    %s" % res["cpfs_command"])
        log("listing: LC_ALL=C %s; LC_ALL=C %s" % (res["ls_command"],
                                                  res["find_command"]))
        log("%d entries, medians of %d cold runs (remount + drop_caches "
            "each), kernel %s" % (a.entries, a.runs, res["kernel"]))
        log("")
        log("| listing | cpfs cold | cpfs warm | tmpfs cold | tmpfs warm "
            "| cold × tmpfs | floor cold | floor × tmpfs | cpfs × floor "
            "| FUSE requests (cold) |")
        log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        summary = {}
        for k in kinds:
            c = runs[("cpfs", k)]
            t = runs[("tmpfs", k)]
            f = runs[("floor", k)]
            med = {"cpfs_cold_s": statistics.median(x["cold_s"] for x in c),
                   "cpfs_warm_s": statistics.median(x["warm_s"] for x in c)}
            if t:
                med["tmpfs_cold_s"] = statistics.median(x["cold_s"] for x in t)
                med["tmpfs_warm_s"] = statistics.median(x["warm_s"] for x in t)
            if f:
                med["floor_cold_s"] = statistics.median(x["cold_s"] for x in f)
                med["floor_warm_s"] = statistics.median(x["warm_s"] for x in f)
            reqs = c[-1]["cold_requests"]
            med["cold_requests"] = reqs
            med["warm_requests"] = c[-1]["warm_requests"]
            rss = statistics.median(x["rss_kib"] for x in c)
            med["rss_kib"] = rss
            med["rss_empty_kib"] = empty[k]["rss_kib"]
            med["rss_bytes_per_file"] = (rss - empty[k]["rss_kib"]) * \
                1024.0 / a.entries
            med["mount_s"] = statistics.median(x["mount_s"] for x in c)
            for sysname, rr in (("cpfs", c), ("tmpfs", t), ("floor", f)):
                for temp in ("cold", "warm"):
                    for part in ("user_s", "sys_s", "daemon_s"):
                        if rr:
                            med["%s_%s_%s" % (sysname, temp, part)] = \
                                statistics.median(x[temp + "_cpu"][part]
                                                  for x in rr)
            summary[k] = med
            shown = ", ".join("%s %d" % (n[5:], v) for n, v in
                              sorted(reqs.items())
                              if v and n.startswith("fuse_"))
            log("| %s | %.3f s | %.3f s | %s | %s | %s | %s | %s | %s | %s |" % (
                {"ls": "ls -l", "find": "find -printf '%s'",
                 "byname": "ls -l by-name/"}[k],
                med["cpfs_cold_s"], med["cpfs_warm_s"],
                "%.3f s" % med["tmpfs_cold_s"] if t else "—",
                "%.3f s" % med["tmpfs_warm_s"] if t else "—",
                "%.2f" % (med["cpfs_cold_s"] / med["tmpfs_cold_s"])
                if t else "—",
                "%.3f s" % med["floor_cold_s"] if f else "—",
                "%.2f" % (med["floor_cold_s"] / med["tmpfs_cold_s"])
                if f and t else "—",
                "%.2f" % (med["cpfs_cold_s"] / med["floor_cold_s"])
                if f else "—", shown))
        log("")
        log("CPU seconds, medians (the lister's user / system time, where "
            "the kernel builds dentries and inodes; the daemon's CPU):")
        for k in kinds:
            m = summary[k]
            for sysname in ("cpfs", "tmpfs", "floor"):
                if "%s_cold_user_s" % sysname not in m:
                    continue
                log("%-4s %-5s cold %.2f / %.2f, daemon %.3f; warm %.2f / "
                    "%.2f, daemon %.3f" % tuple(
                        [k, sysname] + [m["%s_%s_%s" % (sysname, temp, part)]
                                        for temp in ("cold", "warm")
                                        for part in ("user_s", "sys_s",
                                                     "daemon_s")]))
        log("")
        for k in kinds:
            m = summary[k]
            wr = ", ".join("%s %d" % (n[5:], v) for n, v in
                           sorted(m["warm_requests"].items())
                           if v and n.startswith("fuse_"))
            log("%-4s: warm requests: %s; API calls %d, data requests %d; "
                "daemon VmRSS %.1f MiB (empty manifest %.1f MiB) -> %.0f "
                "B per entry; mount took %.2f s" % (
                    k, wr or "none", m["cold_requests"]["api_calls"],
                    m["cold_requests"]["data_requests"], m["rss_kib"] / 1024,
                    m["rss_empty_kib"] / 1024, m["rss_bytes_per_file"],
                    m["mount_s"]))
            if m["cold_requests"]["api_calls"] or \
                    m["cold_requests"]["data_requests"]:
                raise RuntimeError("a listing went to the network")
        res["summary"] = summary
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(res, fh, indent=1)

    def cleanup(self):
        for m in list(reversed(self.mounts)):
            if m == getattr(self, "tmpfs", None):
                subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
            else:
                subprocess.run(["fusermount3", "-uz", m],
                               stderr=subprocess.DEVNULL)
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    p.kill()
        if self.a.keep:
            log("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--cpfs", default=os.path.join(ROOT, "build", "src",
                                                   "cpfs"))
    ap.add_argument("--no-tmpfs", action="store_true",
                    help="skip the tmpfs comparison (memory runs)")
    ap.add_argument("--names", action="store_true",
                    help="also time ls -l of by-name/ (-o names), cpfs only")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip floorfs (tests/bench/floorfs.c)")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (tmpfs, drop_caches, mounts)")
    b = Bench(a)
    try:
        b.setup()
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
