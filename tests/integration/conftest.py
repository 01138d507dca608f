"""
Fixtures for the mounted cpfs tests (pytest, Python 3 stdlib only).

Run from the project root:  /usr/bin/python3 -m pytest tests/integration -x -q
The binary is build/src/cpfs unless CPFS_BIN says otherwise.  The tests need
root (or fusermount3 rights) and /dev/fuse.  Stand-in servers live in
tests/standin/standin.py (its docstring documents their fault injection).

Fixtures
========

servers  (function scope) -> Servers
    A fresh DataHost + ApiServer pair on 127.0.0.1 with a fresh random key
    and a standard set of objects:

        servers.files   name -> id, names: "empty" (0 B), "one" (1 B),
                        "mib_minus" (1 MiB-1), "mib" (1 MiB),
                        "mib_plus" (1 MiB+1), "five" (5 MiB),
                        "text" (small text/plain with a filename)
        servers.content id -> bytes (what a read must return)
        servers.key, servers.api_url, servers.api (ApiServer),
        servers.data (DataHost)
        servers.add(data, name=None, **meta) -> id   new object
        servers.replace(id, data)                    new bytes + new ETag
        servers.images (ImageHost: public images), servers.store (Store:
        the account discovery walks; empty unless a test fills it)
        servers.clear_logs()                         every request log
        servers.api_calls(id=None) -> int            download-URL calls
        servers.all_api_calls() / discovery_calls()  every API call /
                                                     discovery's only
        servers.image_gets(id=None) -> int           image-host GETs
        servers.data_gets(id=None) -> int            data-host GETs
        servers.recorder(**kw) -> started standin.Recorder (stopped at end)
        servers.write_manifest(path, lines) -> path
            lines: str (written as is), dict (JSON line) or ("json", id)
            (a full upload-shaped JSON line with the real size).
        servers.allow_data_auth = True   skip the teardown check that the
                                         data host never saw Authorization

    Teardown asserts that no request to the data host or the image host
    carried an Authorization header, then stops the servers.

cpfs  (function scope) -> factory  mount(...) -> Mount
        m = cpfs()                       # default manifest, wait for mount
        m = cpfs("cache_size=8M", debug=True)
        m = cpfs(manifest=["# c", "", oid, {"id": oid2, "size": 3}])
        m = cpfs(manifest=None)          # no ids= option
        m = cpfs(key="wrong", options=["no_check"])
        m = cpfs(env={"X": "1"}, api_url="http://localhost:%d" % port)
    Arguments: *options (strings joined into -o), options= (list),
    manifest= (default: bare ids of servers.files; None: no ids=, and
    -o no_discover unless discover=True; list of lines; or a path),
    discover= (True: leave discovery to cpfs's default), debug= (adds
    -d), key= (None: no
    CHECKOUTPAGE_API_KEY in env), env= (extra env), api_url=,
    args= (extra argv before the URL), clear_logs= (default True: clear
    both request logs once mounted so the start-up key check is not
    counted), cache_dir= (default a fresh tmp dir; pass one to share it
    across mounts), mountpoint=.
    Command: CPFS_BIN -f [-d] -o cache_dir=..,ids=..,<opts> API_URL MNT,
    stdout+stderr captured to a log file.  Waits (10 s) for
    os.path.ismount, failing with the captured log.

    Mount: .mnt, .proc, .log_path, .log() -> str, .path(id_or_name),
           .unmount() -> exit code (fusermount3 -u, wait 10 s),
           .check_log_clean(), .expect_rc (default 0), .check_log (True)
    Watchdog: after $CPFS_TEST_TIMEOUT s (default 180) every mount of the
    test is killed and lazily unmounted so a hang becomes a failure.
    Teardown (always): fusermount3 -u (then -uz), wait 10 s (then kill),
    assert exit code == m.expect_rc, and when m.check_log: the log holds
    neither the key nor an X-Signature/X-Expires query nor any signature
    the API handed out.

run_cpfs  -> function(args, key=<servers.key or None>, env=None,
                      timeout=20, mnt=None, netns=False)
                      -> subprocess.CompletedProcess (text)
    netns=True runs it under `unshare -n` (no network at all).
    Runs cpfs expecting it to exit by itself (bad options etc.); if it
    mounted something anyway the mount is removed and the test fails.

Helpers (import from conftest): MiB, CPFS_BIN, sha256(bytes),
    read_file(path) -> bytes, assert_log_clean(text, key, issued_urls),
    mounted(path) -> bool, block_coverage(reqs, total) -> {block: count}.
"""

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "standin"))

import standin  # noqa: E402

MiB = 1 << 20
CPFS_BIN = os.environ.get("CPFS_BIN", str(ROOT / "build" / "src" / "cpfs"))

STANDARD_SIZES = {
    "empty": 0,
    "one": 1,
    "mib_minus": MiB - 1,
    "mib": MiB,
    "mib_plus": MiB + 1,
    "five": 5 * MiB,
}
TEXT_SAMPLE = ("Hello from the cpfs stand-in.\n" * 40).encode()

_BYTES_CACHE = {}


def standard_bytes(name):
    if name not in _BYTES_CACHE:
        seed = sum(map(ord, name))
        _BYTES_CACHE[name] = standin.make_bytes(STANDARD_SIZES[name], seed)
    return _BYTES_CACHE[name]


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def read_file(path, bufsize=128 * 1024):
    out = bytearray()
    with open(path, "rb", buffering=0) as fh:
        while True:
            chunk = fh.read(bufsize)
            if not chunk:
                break
            out += chunk
    return bytes(out)


def mounted(path):
    try:
        with open("/proc/self/mountinfo") as fh:
            text = fh.read()
    except OSError:
        return os.path.ismount(path)
    path = os.path.realpath(path)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4].replace("\\040", " ") == path:
            return True
    return False


_QUERY_RE = re.compile(r"X-(Signature|Expires)", re.I)


def assert_log_clean(text, key, issued_urls=()):
    """The daemon's log must not hold the key or a presigned URL query."""
    assert key not in text, "API key leaked into the cpfs log"
    m = _QUERY_RE.search(text)
    assert m is None, "presigned query leaked into the log: %r" % (
        text[max(0, m.start() - 80):m.end() + 80])
    for url in issued_urls:
        q = url.split("?", 1)[1] if "?" in url else ""
        for part in q.split("&"):
            val = part.split("=", 1)[-1]
            if len(val) >= 16:
                assert val not in text, "signature leaked into the log"


def block_coverage(reqs, total, block=MiB):
    """How often each block was fully transferred by the given data-host
    requests (206 by its range, 200 as the whole object).  Partial
    coverage (e.g. a 1 MiB + 128 KiB cold-start read) does not count."""
    cov = {}
    for r in reqs:
        if r.status == 200:
            a, b = 0, total - 1
        elif r.status == 206 and r.range:
            rng = standin.parse_range(r.range, total)
            if not isinstance(rng, tuple):
                continue
            a, b = rng
        else:
            continue
        first = (a + block - 1) // block
        last_end = b + 1
        for blk in range(first, (total + block - 1) // block):
            bs, be = blk * block, min((blk + 1) * block, total)
            if bs >= a and be <= last_end:
                cov[blk] = cov.get(blk, 0) + 1
    return cov


class Servers:
    def __init__(self, tmp):
        self.tmp = tmp
        self.key = "cpk_test_" + secrets.token_hex(16)
        self.data = standin.DataHost().start()
        self.images = standin.ImageHost().start()
        self.store = standin.Store()
        self.api = standin.ApiServer(self.key, data=self.data,
                                     store=self.store,
                                     images=self.images).start()
        self.api_url = self.api.url
        self.files = {}
        self.content = {}
        self.allow_data_auth = False
        self._recorders = []
        for name in STANDARD_SIZES:
            self.add(standard_bytes(name), name=name)
        self.add(TEXT_SAMPLE, name="text", content_type="text/plain",
                 filename="hello.txt")

    def add(self, data, name=None, id=None, **meta):
        oid = self.data.put(data, id=id, **meta)
        self.content[oid] = bytes(data)
        if name:
            self.files[name] = oid
        return oid

    def replace(self, oid, data, **meta):
        self.data.put(data, id=oid, **meta)
        self.content[oid] = bytes(data)

    def clear_logs(self):
        self.api.log.clear()
        self.data.log.clear()
        self.images.log.clear()

    def api_calls(self, id=None):
        """Download-URL calls (discovery's calls are not counted)."""
        if id:
            return self.api.log.count(id=id, kind="download")
        return self.api.log.count(kind="download")

    def all_api_calls(self):
        """Every API call, discovery's included."""
        return len(self.api.log)

    def discovery_calls(self):
        return self.api.discovery_calls()

    def image_gets(self, id=None):
        return self.images.log.count(method="GET", id=id)

    def data_gets(self, id=None):
        return self.data.log.count(method="GET", id=id)

    def recorder(self, **kw):
        r = standin.Recorder(**kw).start()
        self._recorders.append(r)
        return r

    def manifest_json(self, oid, **kw):
        d = json.loads(standin.manifest_line(
            oid, size=len(self.content.get(oid, b"")), **kw))
        return d

    def write_manifest(self, path, lines):
        with open(path, "w") as fh:
            for ln in lines:
                if isinstance(ln, dict):
                    ln = json.dumps(ln)
                elif isinstance(ln, tuple) and ln[0] == "json":
                    ln = json.dumps(self.manifest_json(ln[1]))
                fh.write(ln + "\n")
        return path

    def stop(self):
        for r in self._recorders:
            r.stop()
        self.api.stop()
        self.data.stop()
        self.images.stop()


@pytest.fixture
def servers(tmp_path):
    s = Servers(tmp_path)
    try:
        yield s
        if not s.allow_data_auth:
            seen = s.data.auth_seen() + s.images.auth_seen()
            assert not seen, "data host got Authorization: %r" % seen
    finally:
        s.stop()


class Mount:
    def __init__(self, mnt, proc, log_path, key, servers):
        self.mnt = str(mnt)
        self.proc = proc
        self.log_path = str(log_path)
        self.key = key
        self.servers = servers
        self.expect_rc = 0
        self.check_log = True
        self._rc = None

    def path(self, name):
        return os.path.join(self.mnt, name)

    def log(self):
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait(self, timeout=10):
        try:
            self._rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._rc = "killed after %ss" % timeout
        return self._rc

    def unmount(self):
        """Unmount and wait; returns the exit code of cpfs."""
        if mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt],
                               capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt],
                               capture_output=True)
        if self._rc is None:
            self.wait()
        return self._rc

    def check_log_clean(self):
        issued = [u for _, u in self.servers.api.issued] if self.servers \
            else ()
        if self.key:
            assert_log_clean(self.log(), self.key, issued)


def _start_cpfs(argv, env, log_path):
    logf = open(log_path, "wb")
    try:
        return subprocess.Popen(argv, env=env, stdout=logf,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        logf.close()


def _base_env(key, extra=None):
    env = {k: v for k, v in os.environ.items()
           if k != "CHECKOUTPAGE_API_KEY"}
    if key is not None:
        env["CHECKOUTPAGE_API_KEY"] = key
    env.update(extra or {})
    return env


_DEFAULT = object()


WATCHDOG = float(os.environ.get("CPFS_TEST_TIMEOUT", "180"))


@pytest.fixture
def cpfs(servers, tmp_path):
    mounts = []
    counter = [0]
    fired = []

    def watchdog():
        # A hung daemon must fail the test, not hang the run: kill it and
        # lazily unmount, so blocked system calls return ENOTCONN.
        fired.append(True)
        for m in mounts:
            if m.proc.poll() is None:
                m.proc.kill()
            subprocess.run(["fusermount3", "-uz", m.mnt],
                           capture_output=True)

    dog = threading.Timer(WATCHDOG, watchdog)
    dog.daemon = True
    dog.start()

    def mount(*opts, options=(), manifest=_DEFAULT, debug=False,
              key=_DEFAULT, env=None, api_url=None, args=(),
              clear_logs=True, cache_dir=None, mountpoint=None,
              wait=True, discover=False):
        counter[0] += 1
        n = counter[0]
        mnt = Path(mountpoint) if mountpoint else tmp_path / ("mnt%d" % n)
        mnt.mkdir(exist_ok=True)
        if cache_dir is None:
            cache_dir = tmp_path / ("cache%d" % n)
            cache_dir.mkdir(exist_ok=True)
        o = ["cache_dir=%s" % cache_dir]
        if manifest is _DEFAULT:
            manifest = [servers.files[k] for k in STANDARD_SIZES] + [
                servers.files["text"]]
        if isinstance(manifest, (list, tuple)):
            manifest = servers.write_manifest(
                str(tmp_path / ("ids%d.txt" % n)), manifest)
        if manifest:
            o.append("ids=%s" % manifest)
        elif not discover:
            # Tests from before discovery: no ids= meant an empty root.
            o.append("no_discover")
        o += list(opts) + list(options)
        k = servers.key if key is _DEFAULT else key
        argv = [CPFS_BIN, "-f"] + (["-d"] if debug else []) + [
            "-o", ",".join(o)] + list(args) + [
            api_url or servers.api_url, str(mnt)]
        log_path = tmp_path / ("cpfs%d.log" % n)
        proc = _start_cpfs(argv, _base_env(k, env), log_path)
        m = Mount(mnt, proc, log_path, k, servers)
        m.argv = argv
        mounts.append(m)
        if not wait:
            return m
        end = time.time() + 10
        while not mounted(str(mnt)):
            if proc.poll() is not None:
                m.check_log = False
                m.expect_rc = proc.returncode
                pytest.fail("cpfs exited %s before mounting; log:\n%s"
                            % (proc.returncode, m.log()))
            if time.time() > end:
                pytest.fail("cpfs did not mount within 10 s; log:\n%s"
                            % m.log())
            time.sleep(0.05)
        if clear_logs:
            servers.clear_logs()
        return m

    yield mount

    dog.cancel()
    problems = []
    if fired:
        problems.append("watchdog: test ran over %ss; cpfs killed" % WATCHDOG)
    for m in mounts:
        rc = m.unmount()
        if mounted(m.mnt):
            problems.append("%s still mounted" % m.mnt)
        if rc != m.expect_rc:
            problems.append("cpfs exit code %r (wanted %r); log tail:\n%s"
                            % (rc, m.expect_rc, m.log()[-3000:]))
        if m.check_log:
            try:
                m.check_log_clean()
            except AssertionError as e:
                problems.append(str(e))
    assert not problems, "\n".join(problems)


@pytest.fixture
def run_cpfs(servers, tmp_path):
    def run(args, key=_DEFAULT, env=None, timeout=20, mnt=None,
            netns=False):
        k = servers.key if key is _DEFAULT else key
        pre = ["unshare", "-n"] if netns else []
        try:
            r = subprocess.run(pre + [CPFS_BIN] + list(args),
                               env=_base_env(k, env), capture_output=True,
                               text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if mnt and mounted(str(mnt)):
                subprocess.run(["fusermount3", "-uz", str(mnt)])
            pytest.fail("cpfs %r did not exit within %ss" % (args, timeout))
        if mnt and mounted(str(mnt)):
            subprocess.run(["fusermount3", "-uz", str(mnt)])
            pytest.fail("cpfs %r mounted %s though it should fail"
                        % (args, mnt))
        return r
    return run


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes several seconds")
