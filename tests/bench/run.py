#!/usr/bin/python3
"""cpfs benchmark: cpfs against curl, httpfs2, httpdirfs and rclone, cold, on loopback
and optionally behind added latency.

    sudo tests/bench/run.py [--rtt MS] [--runs N] [--quick] [--json OUT]
                            [--systems a,b] [--workloads seq,rand,par]
                            [--cpfs PATH] [--timeout S] [--keep]

Needs root (tmpfs, drop_caches, FUSE mounts) and the Debian packages nginx,
curl, fuse3, httpfs2, httpdirfs, rclone.  Python 3 stdlib only.  Everything listens
on 127.0.0.1 and everything it made is removed on any exit.

See tests/bench/README.md for what it measures and the caveats.
"""

import argparse
import collections
import fcntl
import hashlib
import json
import mmap
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STANDIN = os.path.join(ROOT, "tests", "standin", "standin.py")
PROXY = os.path.join(HERE, "delayproxy.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MiB = 1 << 20
BLOCK = 4096
TOOLS = {"nginx": "nginx", "curl": "curl", "fusermount3": "fuse3",
         "httpdirfs": "httpdirfs", "rclone": "rclone", "httpfs2": "httpfs2"}
GiB = 1 << 30


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ====================================================================
# Worker: runs one workload in its own process, prints one JSON line.
# The parent kills it when it outlives the timeout.
# ====================================================================

class Progress:
    """Bytes done so far, written to a file twice a second so that a run
    that times out still tells how far it got."""

    def __init__(self, path):
        self.path = path
        self.n = 0
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.stop = threading.Event()
        if path:
            threading.Thread(target=self._loop, daemon=True).start()

    def add(self, n):
        with self.lock:
            self.n += n

    def _loop(self):
        while not self.stop.wait(0.5):
            with open(self.path + ".tmp", "w") as fh:
                fh.write("%d %.3f\n" % (self.n, time.perf_counter() - self.t0))
            os.replace(self.path + ".tmp", self.path)


def busy_ticks():
    """(busy, total) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(v)


def add_cpu(res, b0, b1):
    """CPU the whole machine spent while the timed reads ran (every
    process: server, daemon, reader, kernel), in core-seconds and as a
    share of all cores."""
    hz = os.sysconf("SC_CLK_TCK")
    res["cpu_s"] = (b1[0] - b0[0]) / float(hz)
    res["busy_pct"] = 100.0 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1])


def touched(n):
    """A buffer of @n bytes whose pages are already faulted in, so the
    timed reads do not pay for page faults."""
    return bytearray(b"\x01") * n


def read_into(fd, buf, prog):
    """Reads @fd to EOF into @buf, 1 MiB per read(2) like cat does
    (cat uses 128 KiB; FUSE reads are at most 1 MiB anyway).  Bytes past
    the end of @buf are counted, not kept.  Returns the byte count."""
    mv = memoryview(buf)
    size = len(buf)
    scratch = bytearray(MiB)
    n = 0
    while True:
        if n < size:
            k = os.readv(fd, [mv[n:min(size, n + MiB)]])
        else:
            k = os.readv(fd, [scratch])
        if k == 0:
            return n
        n += k
        prog.add(k)


def big_pipe(fd):
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, MiB)
    except (OSError, AttributeError):
        pass


class HwmWatch:
    """Peak RSS of a child: the last VmHWM seen in /proc/PID/status,
    polled every 10 ms until it exits.  (ru_maxrss of wait4 would count
    this process's buffers: exec records the old mm's high-water mark.)"""

    def __init__(self, pid):
        self.pid, self.kib = pid, 0
        self.done = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        path = "/proc/%d/status" % self.pid
        while not self.done.wait(0.01):
            try:
                with open(path) as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            self.kib = max(self.kib, int(line.split()[1]))
            except (OSError, ValueError):
                return


def spawn_curl(args, pipe_out=False, pipe_err=False):
    """Starts curl with posix_spawn.  Returns (pid, stdout read fd or
    None, stderr read fd or None)."""
    acts, mine, theirs = [], [None, None], []
    for i, want in enumerate((pipe_out, pipe_err)):
        if want:
            r, w = os.pipe()
            acts.append((os.POSIX_SPAWN_DUP2, w, i + 1))
            acts.append((os.POSIX_SPAWN_CLOSE, r))
            mine[i] = r
            theirs.append(w)
            if i == 0:
                big_pipe(r)
        else:
            acts.append((os.POSIX_SPAWN_OPEN, i + 1, "/dev/null", os.O_WRONLY,
                         0))
    acts.append((os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0))
    try:
        pid = os.posix_spawnp("curl", ["curl"] + args, os.environ,
                              file_actions=acts)
    finally:
        for w in theirs:
            os.close(w)
    WATCH[pid] = HwmWatch(pid)
    return pid, mine[0], mine[1]


WATCH = {}


def reap(pid):
    """(exit code, peak RSS KiB) of curl @pid."""
    w = WATCH.pop(pid)
    while True:  # let the watcher see the exiting process once more
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done:
            break
        time.sleep(0.002)
    w.done.set()
    return os.waitstatus_to_exitcode(status), w.kib


def _curl_stream(url, buf, prog):
    """curl -s URL into a pipe read into memory.  Returns (bytes, maxrss
    KiB, curl's exit status)."""
    pid, out, _ = spawn_curl(["-s", "--fail", url], pipe_out=True)
    try:
        n = read_into(out, buf, prog)
    finally:
        os.close(out)
        rc, rss = reap(pid)
    return n, rss, rc


def _file_stream(path, buf, prog):
    fd = os.open(path, os.O_RDONLY)
    try:
        n = read_into(fd, buf, prog)
    finally:
        os.close(fd)
    return n, 0, 0


def w_stream(spec, prog):
    """Sequential (one target) or parallel (several) whole-object reads:
    timed read(2)s into memory, then sha256 of what was read, untimed."""
    targets = spec["targets"]
    fn = _curl_stream if spec["via"] == "curl" else _file_stream
    bufs = [touched(sz) for sz in spec["sizes"]]
    out = [None] * len(targets)
    errs = []

    def one(i):
        try:
            out[i] = fn(targets[i], bufs[i], prog)
        except BaseException as e:  # noqa: B902
            errs.append("%s: %s" % (os.path.basename(targets[i]), e))

    ths = [threading.Thread(target=one, args=(i,)) for i in range(len(targets))]
    b0 = busy_ticks()
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    secs = time.perf_counter() - t0
    res = {"secs": secs, "bytes": sum(o[0] for o in out if o)}
    add_cpu(res, b0, busy_ticks())
    res["mibs"] = res["bytes"] / MiB / secs
    res["rss_kib"] = sum(o[1] for o in out if o)
    for i, o in enumerate(out):
        if o is None:
            continue
        n, _, rc = o
        if rc:
            errs.append("curl exit %d" % rc)
        sha = hashlib.sha256(memoryview(bufs[i])[:n]).hexdigest()
        if n != spec["sizes"][i] or sha != spec["sha"][i]:
            errs.append("%s: wrong bytes (%d bytes read, sha256 %s…)" % (
                spec["names"][i], n, sha[:12]))
    res["ok"] = not errs
    if errs:
        res["error"] = "; ".join(errs)
    return res


def rand_offsets(size, n, seed):
    r = random.Random(seed)
    return [r.randrange(size // BLOCK) * BLOCK for _ in range(n)]


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def w_rand(spec, prog):
    offs = rand_offsets(spec["size"], spec["n"], spec["seed"])
    with open(spec["source"], "rb") as fh:
        expect = [os.pread(fh.fileno(), BLOCK, o) for o in offs]
    lat = []
    if spec["via"] == "curl":
        # One curl process, one connection, the requests one by one.
        cfg = spec["curl_config"]
        with open(cfg, "w") as fh:
            for i, o in enumerate(offs):
                fh.write('%surl = "%s"\nrange = "%d-%d"\nsilent\n'
                         'write-out = "%%{stderr}%%{time_total} %%{http_code} '
                         '%%{num_connects}\\n"\n' % (
                             "next\n" if i else "", spec["target"], o,
                             o + BLOCK - 1))
        b0 = busy_ticks()
        t0 = time.perf_counter()
        pid, out, err = spawn_curl(["-K", cfg], pipe_out=True, pipe_err=True)
        with open(out, "rb") as fo, open(err, "rb") as fe:
            errbuf = []
            et = threading.Thread(target=lambda: errbuf.append(fe.read()))
            et.start()
            body = fo.read()
            et.join()
        rc, maxrss = reap(pid)
        secs = time.perf_counter() - t0
        b1 = busy_ticks()
        codes, conns = [], 0
        for line in errbuf[0].decode(errors="replace").splitlines():
            f = line.split()
            if len(f) == 3:
                lat.append(float(f[0]))
                codes.append(f[1])
                conns += int(f[2])
        got = [body[i * BLOCK:(i + 1) * BLOCK] for i in range(len(offs))]
        res = {"rss_kib": maxrss, "connections": conns}
        errs = []
        if rc:
            errs.append("curl exit %d" % rc)
        if len(body) != BLOCK * len(offs) or len(lat) != len(offs):
            errs.append("got %d bytes, %d transfers" % (len(body), len(lat)))
        if any(c != "206" for c in codes):
            errs.append("status other than 206")
    else:
        fd = os.open(spec["target"], os.O_RDONLY)
        got = []
        pc = time.perf_counter
        try:
            b0 = busy_ticks()
            t0 = pc()
            for o in offs:
                a = pc()
                got.append(os.pread(fd, BLOCK, o))
                lat.append(pc() - a)
                prog.add(BLOCK)
            secs = pc() - t0
            b1 = busy_ticks()
        finally:
            os.close(fd)
        res, errs = {"rss_kib": 0}, []
    wrong = sum(1 for g, e in zip(got, expect) if g != e)
    if wrong:
        errs.append("%d of %d reads returned wrong bytes" % (wrong, len(offs)))
    add_cpu(res, b0, b1)
    res.update(secs=secs, ops=len(offs) / secs, bytes=len(offs) * BLOCK,
               p50_ms=pct(lat, 50) * 1e3 if lat else None,
               p99_ms=pct(lat, 99) * 1e3 if lat else None,
               ok=not errs)
    if errs:
        res["error"] = "; ".join(errs)
    return res


def curl_timed(args):
    """Runs one curl with -w "\n%{time_total}" added: (what it wrote
    before that line, its time_total in seconds, its exit status)."""
    pid, out, _ = spawn_curl(args + ["-w", "\n%{time_total}"],
                             pipe_out=True)
    with open(out, "rb") as fo:
        body = fo.read()
    rc, _ = reap(pid)
    got, _, t = body.rpartition(b"\n")
    return got, float(t or 0), rc


def w_first(spec, prog):
    """Cold first byte: open + the first 4 KiB of an object never read
    (its size known to cpfs from the manifest), one request's latency.
    curl: one `curl -r 0-4095` on a new connection, its time_total."""
    with open(spec["source"], "rb") as fh:
        expect = fh.read(BLOCK)
    errs = []
    if spec["via"] == "curl":
        got, secs, rc = curl_timed(["-s", "--fail", "-r", "0-%d" % (BLOCK - 1),
                                    spec["target"]])
        if rc:
            errs.append("curl exit %d" % rc)
    else:
        t0 = time.perf_counter()
        fd = os.open(spec["target"], os.O_RDONLY)
        try:
            got = os.pread(fd, BLOCK, 0)
            secs = time.perf_counter() - t0
        finally:
            os.close(fd)
    prog.add(len(got))
    if got != expect:
        errs.append("wrong bytes (%d read)" % len(got))
    res = {"secs": secs, "ms": secs * 1e3, "bytes": len(got),
           "ok": not errs}
    if errs:
        res["error"] = "; ".join(errs)
    return res


def w_stat(spec, prog):
    """Cold stat of an id whose size is unknown (cpfs: a bare id in its
    manifest): what it costs to learn the size.  curl: one
    `curl -r 0-0` on a new connection (its Content-Range has the size),
    its time_total."""
    errs = []
    if spec["via"] == "curl":
        head, secs, rc = curl_timed(["-s", "--fail", "-r", "0-0", "-D", "-",
                                     "-o", "/dev/null", spec["target"]])
        size = -1
        for line in head.decode("latin-1").splitlines():
            if line.lower().startswith("content-range:"):
                size = int(line.rsplit("/", 1)[1])
        if rc:
            errs.append("curl exit %d" % rc)
    else:
        t0 = time.perf_counter()
        size = os.stat(spec["target"]).st_size
        secs = time.perf_counter() - t0
    if size != spec["size"]:
        errs.append("wrong size %d, expected %d" % (size, spec["size"]))
    res = {"secs": secs, "ms": secs * 1e3, "ok": not errs}
    if errs:
        res["error"] = "; ".join(errs)
    return res


def w_curlraw(spec, prog):
    """curl -o /dev/null: the limit, bytes not hashed (sizes checked)."""
    b0 = busy_ticks()
    t0 = time.perf_counter()
    ps = [spawn_curl(["-s", "--fail", "-o", "/dev/null", "-w",
                      "%{size_download}", u], pipe_out=True)
          for u in spec["targets"]]
    outs, rss, errs = [], 0, []
    for pid, out, _ in ps:
        with open(out, "rb") as fo:
            outs.append(fo.read())
        rc, maxrss = reap(pid)
        rss += maxrss
        if rc:
            errs.append("curl exit %d" % rc)
    secs = time.perf_counter() - t0
    b1 = busy_ticks()
    n = sum(int(o or 0) for o in outs)
    if n != sum(spec["sizes"]):
        errs.append("%d bytes, expected %d" % (n, sum(spec["sizes"])))
    res = {"secs": secs, "bytes": n, "mibs": n / MiB / secs, "rss_kib": rss,
           "ok": not errs}
    add_cpu(res, b0, b1)
    if errs:
        res["error"] = "; ".join(errs)
    return res


def worker_main(spec_json):
    spec = json.loads(spec_json)
    prog = Progress(spec.get("progress"))
    try:
        fn = {"stream": w_stream, "rand": w_rand, "curlraw": w_curlraw,
              "first": w_first, "stat": w_stat}[
            spec["kind"]]
        res = fn(spec, prog)
    except BaseException as e:  # noqa: B902 - reported, not raised
        res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    prog.stop.set()
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# ====================================================================
# Parent: environment, servers, systems, table.
# ====================================================================

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening after %ds" % (port, timeout))


def wait_file(path, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            raise RuntimeError("exited with %s" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("%s not written after %ds" % (path, timeout))


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split()
            if len(f) > 4 and f[4].replace("\\040", " ") == path:
                return True
    return False


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def warm_up(spec):
    """Reads every object of a worker spec once, untimed, into cpfs's
    memory (cpfs-ram).  O_DIRECT, so that cpfs sees the reads as they are,
    and none ends on a 1 MiB boundary before EOF: cpfs lets blocks read in
    order to their end go to the kernel's page cache (their memory is
    reused first), and this is to keep them all."""
    paths = [spec["target"]] if "target" in spec else spec["targets"]
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, MiB)
        try:
            pos = 0
            while True:
                n = MiB - 4096
                if (pos + n) % MiB == 0:
                    n -= 4096
                k = os.preadv(fd, [memoryview(buf)[:n]], pos)
                if k <= 0:
                    break
                pos += k
            # The last read ended on a boundary (EOF): read into that
            # block once more, so the next object does not reuse it.
            if pos > 8192:
                os.preadv(fd, [memoryview(buf)[:4096]], pos - 8192)
        finally:
            buf.close()
            os.close(fd)


def cpfs_stats(mnt):
    """cpfs's own counters, from user.cpfs.stats."""
    stats = os.getxattr(mnt, "user.cpfs.stats").decode()
    return {k: int(v) for k, v in (f.split("=", 1) for f in stats.split())
            if v.lstrip("-").isdigit()}


def data_requests(mnt):
    """cpfs's own count of data-host requests."""
    return cpfs_stats(mnt)["data_requests"]


def fresh_memory_speed(size=256 * MiB):
    """MiB/s of the first write to memory the kernel has just handed out,
    and of a second write to the same pages.  On a VM whose freed pages go
    back to the host (free page reporting), the first is far slower: every
    new page cache page a mount fills costs that, a pre-touched buffer not."""
    drop_caches()
    time.sleep(3)  # past the guest's free-page-reporting delay (2 s)
    chunk = b"\x01" * MiB
    out = []
    with mmap.mmap(-1, size) as m:
        for _ in range(2):
            m.seek(0)
            t0 = time.perf_counter()
            for _ in range(size // MiB):
                m.write(chunk)
            out.append(size / MiB / (time.perf_counter() - t0))
    return out


def build_floor(source, exe):
    """Builds one of the floor daemons (floorfs.c, randfloor.c: one file
    each, with floor.h beside it) into @exe with cc and libfuse3."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, check=True,
                           text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", exe, source] + flags, check=True)


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def kill_proc(p, grace=5):
    if p is None or p.poll() is not None:
        return
    try:
        p.terminate()
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    except OSError:
        pass


def unmount(path):
    # No isdir(): a mount whose daemon died fails stat with ENOTCONN.
    if is_mounted(path):
        subprocess.run(["fusermount3", "-uz", path], stderr=subprocess.DEVNULL)
        if is_mounted(path):
            subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL)


def make_object(path, size, seed):
    """Deterministic, incompressible content: a seeded Mersenne Twister,
    one 1 MiB draw per MiB (about 400 MiB/s)."""
    r = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(MiB, left)
            b = r.randbytes(n)
            fh.write(b)
            h.update(b)
            left -= n
    os.chmod(path, 0o644)
    return h.hexdigest()


def object_id(name):
    return hashlib.sha256(("cpfs-bench/" + name).encode()).hexdigest()[:24]


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 2;
user root;
pid {t}/nginx.pid;
error_log {t}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    # One line per data request: what each run made the host send.
    log_format cpb '$body_bytes_sent';
    access_log {t}/access.log cpb;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path {t}/ngx-body;
    proxy_temp_path {t}/ngx-proxy;
    fastcgi_temp_path {t}/ngx-fastcgi;
    uwsgi_temp_path {t}/ngx-uwsgi;
    scgi_temp_path {t}/ngx-scgi;
    default_type application/octet-stream;
    # Like S3, say Accept-Ranges on 206 answers too (nginx only does on
    # 200): httpdirfs's range check wants it there.  Keyed on the request's
    # Range header: add_header runs before the range filter sets 206.
    map $http_range $cpb_accept_ranges {{ "" ""; default bytes; }}
    add_header Accept-Ranges $cpb_accept_ranges;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ autoindex on; }}
    }}
}}
"""


class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = []      # long-lived servers, killed in reverse order
        self.mounts = set()  # mount points that may be mounted
        self.cur = []        # the running daemons
        self.cur_worker = None
        self.cur_wl = None
        self.tmp = None
        self.tmpfs = None
        self.results = []
        self.rows = []

    # ------------------------------------------------------------ setup
    def setup(self):
        a = self.a
        self.tmp = tempfile.mkdtemp(prefix="cpfs-bench.")
        os.chmod(self.tmp, 0o755)
        self.logs = os.path.join(self.tmp, "logs")
        os.mkdir(self.logs)
        if a.quick:
            sizes = {"seq": 128, "rand": 64, "par": 32}
        else:
            sizes = {"seq": 512, "rand": 256, "par": 64}
        sizes = {k: v * MiB for k, v in sizes.items()}
        objs = [("seq", sizes["seq"]), ("rand", sizes["rand"])]
        objs += [("par%d" % i, sizes["par"]) for i in range(a.par)]
        total = sum(s for _, s in objs)
        self.tmpfs = os.path.join(self.tmp, "data")
        os.mkdir(self.tmpfs)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%dm,mode=0755" % (total // MiB + 64),
                        "cpfs-bench", self.tmpfs], check=True)
        t0 = time.time()
        self.obj = {}
        for name, size in objs:
            oid = object_id(name)
            path = os.path.join(self.tmpfs, oid)
            sha = make_object(path, size, "cpfs-bench/" + name)
            self.obj[name] = {"id": oid, "size": size, "sha": sha,
                              "path": path}
        log("made %d objects, %d MiB, in %.1fs" % (
            len(objs), total // MiB, time.time() - t0))

        # nginx
        self.access_log = os.path.join(self.tmp, "access.log")
        self.nginx_port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as fh:
            fh.write(NGINX_CONF.format(t=self.tmp, port=self.nginx_port,
                                       root=self.tmpfs))
        self.spawn("nginx", ["nginx", "-c", conf, "-p", self.tmp + "/",
                             "-e", os.path.join(self.tmp, "nginx-error.log")])
        wait_port(self.nginx_port, self.procs[-1])
        data_port = self.nginx_port

        # delay proxy
        if a.rtt:
            pf = os.path.join(self.tmp, "proxy.port")
            self.spawn("delayproxy", [
                PY, PROXY, "--target-port", str(self.nginx_port),
                "--delay-ms", "%g" % (a.rtt / 2.0),
                "--window-kib", str(a.window_kib), "--port-file", pf])
            wait_file(pf, self.procs[-1])
            with open(pf) as fh:
                data_port = int(fh.read().split()[0])
        self.data_base = "http://127.0.0.1:%d" % data_port

        # API stand-in
        self.key = "bench-" + secrets.token_hex(12)
        pf = os.path.join(self.tmp, "api.port")
        self.manifest = os.path.join(self.tmp, "ids.manifest")
        self.spawn("standin", [
            PY, STANDIN, "--files-dir", self.tmpfs, "--data-base",
            self.data_base, "--key", self.key, "--port-file", pf,
            "--manifest-out", self.manifest])
        wait_file(pf, self.procs[-1])
        with open(pf) as fh:
            self.api_port = int(fh.read().split()[0])
        self.api_url = "http://127.0.0.1:%d" % self.api_port
        wait_file(self.manifest, self.procs[-1])
        # The stat workload's: the ids alone, so no size is known.
        self.manifest_nosize = os.path.join(self.tmp, "ids-nosize.manifest")
        with open(self.manifest_nosize, "w") as fh:
            for o in self.obj.values():
                fh.write(o["id"] + "\n")

        # The URL curl fetches is one the API hands out, as for cpfs.
        self.url = {}
        for name, o in self.obj.items():
            req = urllib.request.Request(
                "%s/v1/files/%s/download" % (self.api_url, o["id"]),
                headers={"Authorization": "Bearer " + self.key})
            with urllib.request.urlopen(req, timeout=10) as r:
                self.url[name] = json.load(r)["data"]["url"]
        assert self.url["seq"].startswith(self.data_base + "/"), self.url

    def spawn(self, name, argv, env=None):
        lf = open(os.path.join(self.logs, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        lf.close()
        p.name = name
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in [self.cur_worker] + self.cur:
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        for m in list(self.mounts):
            unmount(m)
        for p in [self.cur_worker] + self.cur:
            kill_proc(p, 2)
        for p in reversed(self.procs):
            kill_proc(p)
        self.procs = []
        if self.tmpfs and is_mounted(self.tmpfs):
            subprocess.run(["umount", self.tmpfs], stderr=subprocess.DEVNULL)
            if is_mounted(self.tmpfs):
                subprocess.run(["umount", "-l", self.tmpfs],
                               stderr=subprocess.DEVNULL)
        if self.tmp and not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            log("kept %s (logs in %s)" % (self.tmp, self.logs))

    # ---------------------------------------------------------- systems
    def systems(self):
        a = self.a
        base = self.data_base + "/"
        cpfs = a.cpfs

        def cpfs_cmd(cache, binary=None):
            def f(mnt, cdir):
                ids = self.manifest_nosize if self.cur_wl == "stat" else \
                    self.manifest
                return [binary or cpfs, "-f", "-o",
                        "ids=%s,cache_size=%s,cache_dir=%s" % (
                            ids, cache, cdir),
                        self.api_url, mnt]
            f.cpfs = True
            return f

        def httpfs2_cmd(mnt, cdir, name):
            # It mounts one URL as one file, named as the URL's last
            # segment, in the mount point.
            return ["httpfs2", "-f", "-c", os.path.join(cdir, "log"),
                    base + self.obj[name]["id"], mnt]
        httpfs2_cmd.per_object = True

        def floor_cmd(direct):
            def f(mnt, cdir, name):
                return [self.randfloor()] + (["-d"] if direct else []) + [
                    base + self.obj[name]["id"], str(self.obj[name]["size"]),
                    mnt]
            f.per_object = True
            return f

        def rclone_cmd(extra):
            def f(mnt, cdir):
                cfg = os.path.join(cdir, "rclone.conf")
                open(cfg, "w").close()
                return ["rclone", "mount", ":http:", mnt, "--http-url", base,
                        "--config", cfg, "--cache-dir", cdir] + extra
            return f

        return [
            ("curl", None, "curl -s -o /dev/null URL, one per object (the "
             "limit; sizes checked); random: one curl, one connection, "
             "range GETs one by one, bytes checked"),
            ("cpfs", cpfs_cmd("64M"), "cache_size=64M"),
            ("cpfs-256M", cpfs_cmd("256M"), "cache_size=256M"),
            ("cpfs-old", cpfs_cmd("64M", a.cpfs_old),
             "cache_size=64M, the binary given by --cpfs-old (an A/B in "
             "one invocation)"),
            ("cpfs-ram", cpfs_cmd("1G"), "the ceiling of the kernel side: "
             "cache_size=1G, objects read once untimed, page cache dropped, "
             "then the timed run is served from cpfs's memory with no "
             "network (0 data requests, checked)"),
            ("httpfs2", httpfs2_cmd, "one `httpfs2 -f URL` per object at its "
             "nginx URL (one blocking range request per read; default "
             "mount options)"),
            ("floor-rand", floor_cmd(False), "tests/bench/randfloor.c "
             "(rand only; only when named in --systems): one thread, one "
             "kept connection, a pre-formatted range GET per FUSE read, the "
             "body received into the reply buffer; page cache as httpfs2"),
            ("floor-rand-dio", floor_cmd(True), "randfloor -d: the same "
             "with direct_io (no page cache; rand only, only when named)"),
            ("httpdirfs", lambda m, c: ["httpdirfs", "-f", base, m],
             "defaults (no cache)"),
            ("httpdirfs-tuned", lambda m, c: [
                "httpdirfs", "-f", "--cache", "--cache-location", c,
                "--dl-seg-size", "8", "--max-conns", "16", base, m],
             "--cache --dl-seg-size 8 --max-conns 16"),
            ("rclone", rclone_cmd([]), "defaults (vfs-cache-mode off)"),
            ("rclone-tuned", rclone_cmd([
                "--read-only", "--vfs-cache-mode", "full",
                "--vfs-read-chunk-size", "32M", "--buffer-size", "32M",
                "--vfs-read-ahead", "256M", "--no-modtime",
                "--max-read-ahead", "1M"]),
             "--read-only --vfs-cache-mode full --vfs-read-chunk-size 32M "
             "--buffer-size 32M --vfs-read-ahead 256M --no-modtime "
             "--max-read-ahead 1M"),
        ]

    def randfloor(self):
        """tests/bench/randfloor.c, built with cc on first use."""
        exe = os.path.join(self.tmp, "randfloor")
        if not os.path.exists(exe):
            build_floor(os.path.join(HERE, "randfloor.c"), exe)
        return exe

    # -------------------------------------------------------- workloads
    def spec(self, wl, via, root, where=None):
        """Worker spec for workload @wl reading through @via: 'curl',
        'curlraw' or 'file' (then @root is the directory, or @where maps
        each object's name to its path)."""
        o = self.obj
        if where is None:
            where = {n: os.path.join(root or "", o[n]["id"]) for n in o}
        if wl == "first":
            r = o["rand"]
            return {"kind": "first", "via": via, "source": r["path"],
                    "target": self.url["rand"] if via == "curl" else
                    where["rand"]}
        if wl == "stat":
            r = o["rand"]
            return {"kind": "stat", "via": via, "size": r["size"],
                    "target": self.url["rand"] if via == "curl" else
                    where["rand"]}
        if wl == "rand":
            r = o["rand"]
            s = {"kind": "rand", "via": via, "size": r["size"],
                 "n": self.a.ops, "seed": 20240601, "source": r["path"],
                 "curl_config": os.path.join(self.tmp, "rand.curl")}
            s["target"] = self.url["rand"] if via == "curl" else \
                where["rand"]
            return s
        names = ["seq"] if wl == "seq" else \
            ["par%d" % i for i in range(self.a.par)]
        s = {"kind": "curlraw" if via == "curlraw" else "stream",
             "via": via, "names": names,
             "sizes": [o[n]["size"] for n in names],
             "sha": [o[n]["sha"] for n in names]}
        if via in ("curl", "curlraw"):
            s["targets"] = [self.url[n] for n in names]
        else:
            s["targets"] = [where[n] for n in names]
        return s

    def run_worker(self, spec, timeout):
        prog = os.path.join(self.tmp, "progress")
        if os.path.exists(prog):
            os.unlink(prog)
        spec = dict(spec, progress=prog)
        t0 = time.time()
        p = subprocess.Popen([PY, os.path.abspath(__file__), "--_worker",
                              json.dumps(spec)], stdout=subprocess.PIPE,
                             start_new_session=True)
        self.cur_worker = p
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            done = "0 0"
            try:
                with open(prog) as fh:
                    done = fh.read()
            except OSError:
                pass
            n, secs = done.split()[:2]
            n, secs = int(n), float(secs)
            rate = n / secs if secs else 0.0
            if spec["kind"] == "rand":
                msg = "timeout after %ds (%d preads done, %.1f ops/s)" % (
                    timeout, n // BLOCK, rate / BLOCK)
            else:
                msg = "timeout after %ds (%.0f MiB read, %.1f MiB/s)" % (
                    timeout, n / MiB, rate / MiB)
            return {"ok": False, "timeout": True, "error": msg,
                    "partial_bytes": n, "partial_secs": secs}, p
        finally:
            self.cur_worker = None if p.poll() is not None else p
        try:
            res = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"ok": False, "error": "worker died (exit %s) after %.1fs"
                   % (p.returncode, time.time() - t0)}
        return res, None

    def finish_worker(self, p):
        """A timed-out worker: kill it once its daemon is gone."""
        if p is None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            log("worker %d did not die" % p.pid)
        self.cur_worker = None

    def one_run(self, sysname, cmdf, wl, run):
        a = self.a
        drop_caches()
        if cmdf is None:  # curl, curl-pipe or local
            via = {"local": "file", "curl-pipe": "curl"}.get(sysname)
            if sysname == "curl":
                via = "curl" if wl in ("rand", "first", "stat") else \
                    "curlraw"
            mark = self.data_mark()
            res, stuck = self.run_worker(
                self.spec(wl, via, self.tmpfs), a.timeout)
            self.finish_worker(stuck)
            if via != "file":
                res.update(self.data_since(mark))
            if res.get("rss_kib"):
                res["rss_mib"] = res["rss_kib"] / 1024.0
            return res
        self.cur_wl = wl
        d = os.path.join(self.tmp, "run-%s-%s-%d" % (sysname, wl, run))
        cdir = os.path.join(d, "cache")
        os.makedirs(cdir)
        env = dict(os.environ, CHECKOUTPAGE_API_KEY=self.key, HOME=cdir,
                   XDG_CACHE_HOME=cdir, XDG_CONFIG_HOME=cdir)
        # (argv, mount point) of each daemon, and where each object is.
        if getattr(cmdf, "per_object", False):
            daemons, where = [], {}
            for name in self.objects_of(wl):
                mnt = os.path.join(d, "mnt-" + name)
                daemons.append((cmdf(mnt, cdir, name), mnt))
                where[name] = os.path.join(mnt, self.obj[name]["id"])
        else:
            mnt = os.path.join(d, "mnt")
            daemons = [(cmdf(mnt, cdir), mnt)]
            where = {n: os.path.join(mnt, self.obj[n]["id"])
                     for n in self.objects_of(wl)}
        stuck, res = None, None
        try:
            for i, (argv, mnt) in enumerate(daemons):
                os.makedirs(mnt)
                self.mounts.add(mnt)
                err = self.start_daemon(argv, mnt, env, "%s-%s-%d%s.log" % (
                    sysname, wl, run, "-%d" % i if i else ""))
                if err:
                    return err
            spec = self.spec(wl, "file", None, where)
            if sysname == "cpfs-ram":
                warm_up(spec)
                drop_caches()
                before = data_requests(daemons[0][1])
            counted = getattr(cmdf, "cpfs", False) and wl in ("first",
                                                                "stat")
            if counted:
                before = cpfs_stats(daemons[0][1])
            mark = self.data_mark()
            res, stuck = self.run_worker(spec, a.timeout)
            if counted and res.get("ok"):
                # What the one cold operation cost, as cpfs counts it.
                after = cpfs_stats(daemons[0][1])
                res["api_calls"] = after["api_calls"] - before["api_calls"]
            if sysname == "cpfs-ram" and res.get("ok"):
                fetched = data_requests(daemons[0][1]) - before
                if fetched:
                    res["ok"] = False
                    res["error"] = "%d data requests in the timed run" % (
                        fetched)
            hwm = [vm_hwm_kib(p.pid) for p in self.cur]
            if None not in hwm:
                res["rss_mib"] = sum(hwm) / 1024.0
            dead = [p for p in self.cur if p.poll() is not None]
            if dead and res.get("ok"):
                res["ok"] = False
                res["error"] = "daemon exited %s during run" % (
                    dead[0].returncode)
            return res
        finally:
            for p in self.cur:
                if stuck is not None:  # let the stuck reads fail, then reap
                    p.kill()
            for _, mnt in daemons:
                unmount(mnt)
            for p in self.cur:
                kill_proc(p, 10)
            self.finish_worker(stuck)
            self.cur = []
            for _, mnt in daemons:
                self.mounts.discard(mnt)
            if res is not None:  # after the daemons: their last requests
                res.update(self.data_since(mark))
            shutil.rmtree(d, ignore_errors=True)

    def objects_of(self, wl):
        if wl in ("seq", "rand"):
            return [wl]
        if wl in ("first", "stat"):
            return ["rand"]
        return ["par%d" % i for i in range(self.a.par)]

    def start_daemon(self, argv, mnt, env, logname):
        """Starts one daemon and waits for its mount.  None, or the
        result of a run that could not start."""
        lf = open(os.path.join(self.logs, logname), "wb")
        try:
            p = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
        except OSError as e:
            return {"ok": False, "error": "cannot start: %s" % e,
                    "fatal": True}
        finally:
            lf.close()
        self.cur.append(p)
        end = time.time() + 20
        while not is_mounted(mnt):
            if p.poll() is not None:
                return {"ok": False, "mountfail": True,
                        "error": "exited %s before mounting (see %s)" % (
                            p.returncode, lf.name)}
            if time.time() > end:
                return {"ok": False, "mountfail": True,
                        "error": "not mounted after 20s"}
            time.sleep(0.02)
        return None

    def data_mark(self):
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def data_since(self, mark):
        """Bytes the data host sent and requests it answered since @mark
        (nginx's access log: one line per request, logged when it ends)."""
        last = None
        for _ in range(20):  # until nginx has logged the last ones
            n = self.data_mark()
            if n == last:
                break
            last = n
            time.sleep(0.05)
        with open(self.access_log, "rb") as fh:
            fh.seek(mark)
            lines = fh.read().split()
        return {"host_bytes": sum(int(x) for x in lines if x.isdigit()),
                "host_requests": len(lines)}

    # -------------------------------------------------------------- all
    def run(self):
        a = self.a
        wls = a.workloads
        sysl = [("local", None, "the same reader on the tmpfs source "
                 "objects (the reader's own ceiling)")] + self.systems()
        if a.curl_pipe:
            sysl.insert(2, ("curl-pipe", None,
                            "curl -s URL into a pipe read into memory like "
                            "the mounts, sha256 checked"))
        if a.systems:
            keep = set(a.systems) | {"curl"}
            sysl = [s for s in sysl if s[0] in keep]
        if not a.cpfs_old:
            sysl = [s for s in sysl if s[0] != "cpfs-old"]
        # The floors are opt-in, so a default run measures what it did.
        sysl = [s for s in sysl if not s[0].startswith("floor-") or
                (a.systems and s[0] in a.systems)]
        if any(s[0].startswith("floor-") for s in sysl):
            self.randfloor()  # built before any timed run
        if not (a.cpfs and os.access(a.cpfs, os.X_OK)):
            log("cpfs binary %s not found: cpfs rows will FAIL" % a.cpfs)
        self.sysdesc = {n: d for n, _, d in sysl}
        # Rounds: run k of every system, then run k+1 of every system, so
        # that a slow spell of this shared machine hits all of them alike
        # instead of the few that happened to run during it.
        cells = [(sysname, cmdf, wl) for wl in wls
                 for sysname, cmdf, _ in sysl
                 if not (sysname == "curl-pipe" and wl in ("rand",
                                                           "first",
                                                           "stat"))
                 and not (sysname in ("cpfs-ram", "local") and
                          wl in ("first", "stat"))
                 and not (sysname.startswith("floor-") and wl != "rand")]
        runs = {(n, wl): [] for n, _, wl in cells}
        given_up = set()
        follows = collections.Counter()  # (cell before, cell) pairs run
        last = None
        for run in range(a.runs):
            order, last = self.round_order(cells, run, follows, last)
            for sysname, cmdf, wl in order:
                if (sysname, wl) in given_up:
                    continue
                if sysname.startswith("cpfs") and not (
                        a.cpfs and os.access(a.cpfs, os.X_OK)):
                    res = {"ok": False, "fatal": True,
                           "error": "no cpfs binary at %s" % a.cpfs}
                else:
                    res = self.one_run(sysname, cmdf, wl, run)
                res["run"] = run
                runs[(sysname, wl)].append(res)
                log("%-16s %-4s run %d: %s" % (sysname, wl, run, brief(res)))
                if not res.get("ok") and (
                        res.get("timeout") or res.get("fatal") or
                        res.get("mountfail")):
                    given_up.add((sysname, wl))  # the rest would do the same
        for sysname, _, _ in sysl:  # the table: one system after another
            for wl in wls:
                if (sysname, wl) in runs:
                    self.results.append({"system": sysname, "workload": wl,
                                         "runs": runs[(sysname, wl)]})
        self.summarize()

    @staticmethod
    def round_order(cells, run, follows, last):
        """The order of round @run, and its last cell.  What a run costs
        here depends on what the run before it left behind (memory freed
        recently is cheap to take again, see fresh_memory_speed), so no
        cell may keep following the same one: of 64 seeded shuffles, the
        one whose successions (@last into its first, then each into the
        next) have happened least so far in @follows, which is updated.
        Seeded, so an invocation can be repeated."""
        def key(c):
            return (c[0], c[2])
        best = None
        for cand in range(64):
            order = list(cells)
            random.Random(run * 64 + cand).shuffle(order)
            keys = [last] + [key(c) for c in order]
            pairs = list(zip(keys, keys[1:]))
            score = sum(follows[p] for p in pairs)
            if best is None or score < best[0]:
                best = (score, order, pairs)
        follows.update(best[2])
        return best[1], key(best[1][-1])

    def summarize(self):
        curl = {}
        for r in self.results:
            s = summarize_runs(r["runs"], r["workload"])
            s.update(system=r["system"], workload=r["workload"])
            if r["system"] == "curl" and s["status"] == "OK":
                curl[r["workload"]] = s["value"]
            self.rows.append(s)
        for s in self.rows:
            c = curl.get(s["workload"])
            s["ratio"] = (s["value"] / c) if (c and s["value"] is not None
                                              and s["status"] == "OK") else None


def brief(res):
    if not res.get("ok"):
        return "FAIL " + res.get("error", "")
    extra = ""
    if res.get("host_requests") is not None and "ms" in res:
        extra = " host %.1f KiB in %d requests" % (
            res["host_bytes"] / 1024.0, res["host_requests"])
    elif res.get("host_requests") is not None:
        extra = " host %.1f MiB in %d requests" % (
            res["host_bytes"] / MiB, res["host_requests"])
    if res.get("api_calls") is not None:
        extra += " api %d" % res["api_calls"]
    if res.get("cpu_s") is not None and res.get("bytes"):
        extra += " cpu %.2f core-s/GiB" % (res["cpu_s"] * GiB / res["bytes"])
    if "ms" in res:
        return "%.2f ms%s" % (res["ms"], extra)
    if "ops" in res:
        return "%.0f ops/s p50 %.3f ms p99 %.3f ms rss %s%s" % (
            res["ops"], res["p50_ms"], res["p99_ms"], fmt_rss(res), extra)
    return "%.1f MiB/s (%.2fs) rss %s%s" % (res["mibs"], res["secs"],
                                           fmt_rss(res), extra)


def fmt_rss(res):
    v = res.get("rss_mib")
    return "-" if v is None else "%.0f MiB" % v


def summarize_runs(runs, wl):
    ok = [r for r in runs if r.get("ok")]
    bad = [r for r in runs if not r.get("ok")]
    key = {"rand": "ops", "first": "ms", "stat": "ms"}.get(wl, "mibs")
    s = {"runs_ok": len(ok), "runs": len(runs), "value": None,
         "unit": {"rand": "ops/s", "first": "ms", "stat": "ms"}.get(
             wl, "MiB/s"), "api_calls": None,
         "p50_ms": None,
         "p99_ms": None, "rss_mib": None, "cpu_s": None, "busy_pct": None,
         "cpu_per_gib": None, "host_mib": None, "host_requests": None}
    wrong = [r for r in bad if "wrong" in r.get("error", "")]
    if wrong:
        s["status"] = "FAIL"
        s["note"] = wrong[0]["error"]
    elif bad and any(r.get("timeout") for r in bad):
        s["status"] = "TIMEOUT"
        s["note"] = [r for r in bad if r.get("timeout")][0]["error"]
    elif bad:
        s["status"] = "FAIL"
        s["note"] = bad[0].get("error", "")
    else:
        s["status"] = "OK"
        s["note"] = ""
    if ok:
        s["value"] = statistics.median(r[key] for r in ok)
        if wl == "rand":
            s["p50_ms"] = statistics.median(r["p50_ms"] for r in ok)
            s["p99_ms"] = statistics.median(r["p99_ms"] for r in ok)
        rss = [r["rss_mib"] for r in ok if r.get("rss_mib") is not None]
        if rss:
            s["rss_mib"] = statistics.median(rss)
        cpu = [r for r in ok if r.get("cpu_s") is not None]
        if cpu:
            s["cpu_s"] = statistics.median(r["cpu_s"] for r in cpu)
            s["busy_pct"] = statistics.median(r["busy_pct"] for r in cpu)
            # What a GiB delivered to the reader costs the machine.
            per = [r["cpu_s"] * GiB / r["bytes"] for r in cpu
                   if r.get("bytes")]
            if per:
                s["cpu_per_gib"] = statistics.median(per)
        host = [r for r in ok if r.get("host_requests") is not None]
        if host:
            s["host_mib"] = statistics.median(r["host_bytes"]
                                              for r in host) / MiB
            s["host_requests"] = statistics.median(r["host_requests"]
                                                   for r in host)
        api = [r["api_calls"] for r in ok if r.get("api_calls") is not None]
        if api:
            s["api_calls"] = statistics.median(api)
    return s


WL_NAME = {"seq": "sequential cat", "rand": "random 4 KiB pread",
           "par": "parallel cats",
           "first": "cold open + first 4 KiB (ms; × curl: of its time)",
           "stat": "cold stat, size unknown (ms; × curl: of its time)"}


def table(rows, par):
    out = ["| system | workload | median | × curl | p50 / p99 ms | "
           "peak RSS MiB | CPU core-s/GiB (core-s, busy) | "
           "data host MiB (requests) | status |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for s in rows:
        wl = WL_NAME[s["workload"]]
        if s["workload"] == "par":
            wl = "%d %s" % (par, wl)
        if s["value"] is None:
            val = "—"
        elif s["unit"] == "ms":
            val = "%.2f ms" % s["value"]
        else:
            val = "%.0f %s" % (s["value"], s["unit"])
        if s["status"] != "OK":
            val = s["status"] if s["value"] is None else \
                "%s (%s)" % (s["status"], val)
        ratio = "%.2f" % s["ratio"] if s["ratio"] is not None else "—"
        lat = "%.3f / %.3f" % (s["p50_ms"], s["p99_ms"]) \
            if s["p50_ms"] is not None else ""
        rss = "%.0f" % s["rss_mib"] if s["rss_mib"] is not None else "—"
        cpu = ""
        if s.get("cpu_per_gib") is not None:
            cpu = "%.2f (%.2f, %.0f %%)" % (s["cpu_per_gib"], s["cpu_s"],
                                             s["busy_pct"])
        host = ""
        if s.get("host_requests") is not None and s["unit"] == "ms":
            # One cold operation: KiB, and the API calls cpfs made.
            host = "%.1f KiB (%d)" % (s["host_mib"] * 1024,
                                      s["host_requests"])
            if s.get("api_calls") is not None:
                host += ", %d API" % s["api_calls"]
        elif s.get("host_requests") is not None:
            host = "%.1f (%d)" % (s["host_mib"], s["host_requests"])
        st = s["status"]
        if s["status"] != "OK":
            st += ": " + s["note"][:70]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s["system"], wl, val, ratio, lat, rss, cpu, host, st))
    return "\n".join(out)


def hash_speed():
    b = random.Random(1).randbytes(MiB)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    for _ in range(256):
        h.update(b)
    return 256 / (time.perf_counter() - t0)


def check_tools():
    missing = sorted({pkg for tool, pkg in TOOLS.items()
                      if shutil.which(tool) is None})
    if missing:
        log("installing " + " ".join(missing))
        subprocess.run(["apt-get", "install", "-y", "-q"] + missing,
                       stdout=subprocess.DEVNULL)
        missing = [pkg for tool, pkg in TOOLS.items()
                   if shutil.which(tool) is None]
        if missing:
            sys.exit("missing tools; apt-get install " + " ".join(missing))


def versions():
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None
    return {"nginx": first(["nginx", "-v"]),
            "curl": first(["curl", "--version"]),
            "httpdirfs": first(["httpdirfs", "--version"]),
            "httpfs2": first(["httpfs2", "--version"]),
            "rclone": first(["rclone", "version"]),
            "kernel": os.uname().release, "cpus": os.cpu_count()}


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--_worker":
        return worker_main(sys.argv[2])
    ap = argparse.ArgumentParser(
        description="cpfs benchmark (see tests/bench/README.md)")
    ap.add_argument("--rtt", type=float, default=0,
                    help="added round trip in ms on every connection to the "
                    "data host (half each way); 0 = plain loopback")
    ap.add_argument("--window-kib", type=int, default=4096,
                    help="per-connection window of the delay proxy "
                    "(default 4096: one stream <= window/RTT)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="smaller objects: 128 MiB, 64 MiB, 4 x 32 MiB")
    ap.add_argument("--json", default="/tmp/cpfs-bench.json",
                    help="where to write the results (default %(default)s)")
    ap.add_argument("--cpfs", default=os.path.join(ROOT, "build", "src",
                                                   "cpfs"))
    ap.add_argument("--cpfs-old", metavar="PATH",
                    help="a second cpfs binary, run as the cpfs-old system")
    ap.add_argument("--systems", type=lambda s: s.split(","),
                    help="only these (curl always runs): local,curl,curl-pipe,"
                    "cpfs,cpfs-256M,cpfs-old,cpfs-ram,httpfs2,httpdirfs,"
                    "httpdirfs-tuned,rclone,rclone-tuned; opt-in floors "
                    "for rand: floor-rand,floor-rand-dio")
    ap.add_argument("--workloads", type=lambda s: s.split(","),
                    default=["seq", "rand", "par", "first", "stat"])
    ap.add_argument("--ops", type=int,
                    help="random preads per run (default 2000; 200 with "
                    "--rtt, where each costs a round trip)")
    ap.add_argument("--par", type=int, default=4, help="parallel cats")
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds per run before it is a TIMEOUT")
    ap.add_argument("--no-curl-pipe", dest="curl_pipe", action="store_false",
                    help="skip the curl-pipe rows")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (logs) after the run")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (tmpfs, drop_caches, mounts)")
    for w in a.workloads:
        if w not in WL_NAME:
            sys.exit("unknown workload %s" % w)
    a.cpfs = os.path.abspath(a.cpfs) if a.cpfs else None
    a.cpfs_old = os.path.abspath(a.cpfs_old) if a.cpfs_old else None
    if a.ops is None:
        a.ops = 200 if a.rtt else 2000
    check_tools()

    b = Bench(a)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    hs = hash_speed()
    log("sha256 alone: %.0f MiB/s on one core" % hs)
    fresh = fresh_memory_speed()
    log("fresh memory: first write %.0f MiB/s, rewrite %.0f MiB/s" % (
        fresh[0], fresh[1]))
    t0 = time.time()
    try:
        b.setup()
        b.run()
    finally:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        except ValueError:
            pass
        b.cleanup()
    mode = "loopback" if not a.rtt else \
        "+%g ms RTT (%g ms each way, delay proxy, %d KiB window)" % (
            a.rtt, a.rtt / 2.0, a.window_kib)
    hdr = ("cpfs benchmark: %s; %s; %d random preads; medians of %d cold "
           "runs; sha256 alone %.0f MiB/s (not timed)" % (
               mode, "quick sizes" if a.quick else "full sizes", a.ops,
               a.runs, hs))
    hdr += ("; fresh memory: first write %.0f MiB/s, rewrite %.0f MiB/s" %
            (fresh[0], fresh[1]))
    print(hdr)
    print()
    print(table(b.rows, a.par))
    print()
    for n, d in b.sysdesc.items():
        print("- %s: %s" % (n, d))
    doc = {"command": " ".join(sys.argv), "mode": mode, "rtt_ms": a.rtt,
           "window_kib": a.window_kib if a.rtt else None, "runs": a.runs,
           "quick": a.quick, "sha256_mibs": hs,
           "fresh_memory_mibs": {"first": fresh[0], "rewrite": fresh[1]}, "seconds": time.time() - t0,
           "versions": versions(), "systems": b.sysdesc,
           "objects": {k: {kk: vv for kk, vv in v.items() if kk != "path"}
                       for k, v in getattr(b, "obj", {}).items()},
           "summary": b.rows, "results": b.results}
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=1)
        log("wrote " + a.json)
    bad = [s for s in b.rows if s["system"].startswith("cpfs") and
           s["status"] == "FAIL" and "wrong" in s.get("note", "")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
