"""
Connections opened ahead of need (issue 13, item 4): while the first
transfer of a cold sequential read waits for its answer (which names the
ETag every later transfer must carry), cpfs opens the connections its
window will be spread over, with no request on them.  The window's
transfers then cost one round trip, not two.

What the data host saw is the witness: request counts, bytes, when the
requests arrived and when the connections they came on were accepted.
The delay proxy sets floors no busy machine can lower, and each timing
assertion sits well short of one: a connection cpfs opens only once the
first answer is back reaches the data host 3 x DELAY after that answer
left at the earliest (the line: 2.5 x DELAY; opened ahead, they arrive
near the first GET); a window sent only after the first transfer's
8 MiB arrives 4 x DELAY after it at the earliest (the line: 4 x DELAY;
sent on the answer's headers, 2 x DELAY).  What the margins do not
absorb is a daemon that stops for a second: that is a bug to see.
"""

import http.client
import http.server
import os
import re
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import MiB, read_file, sha256
from faultlib import bytes_sent, delay_proxy, stats

DELAY = 0.1  # seconds each way: a 200 ms round trip


def gets(servers, oid):
    return servers.data.log.find(method="GET", id=oid)


@pytest.fixture
def far(servers, tmp_path):
    """The data host behind tests/bench/delayproxy.py, DELAY each way
    (a new connection pays a round trip before its first byte)."""
    with delay_proxy(servers, tmp_path, int(DELAY * 1000), 4096) as port:
        yield port


def test_window_finds_its_connections_open(servers, cpfs, far):
    """A cold cat of a file listed with its size, 200 ms away.  The first
    GET goes alone; the window's GETs, sent when its answer came back, go
    out on connections opened while that answer was on its way: the data
    host accepted them before the answer could have reached cpfs and a
    new connection come back (the first GET's arrival, t0, + 3 x DELAY;
    opened ahead they arrive near t0).  Nothing is fetched twice and no
    request fails."""
    size = 24 * MiB + 777
    data = os.urandom(size)
    oid = servers.add(data)
    m = cpfs(manifest=[("json", oid)], debug=True)
    assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(data)
    # The first transfer carries 8 blocks; the other 17 go out while the
    # window grows, in parts of up to 4 blocks: 5 transfers, and one more.
    opened = re.findall(r"opened (\d+) connections ahead of need", m.log())
    assert opened, m.log()[-2000:]
    g = sorted(gets(servers, oid), key=lambda r: r.time)
    assert all(r.status == 206 for r in g), g
    assert bytes_sent(g, size) == size, g
    assert servers.api_calls(oid) == 1
    st = stats(m)
    assert st["data_errors"] == 0 and st["retries"] == 0, st
    # The first GET carried the start of the window alone; the next wave
    # came on connections the data host accepted before a fresh one could
    # have reached it (t0 + 3 x DELAY)...
    assert len(g) >= 4, g
    t0 = g[0].time
    timeline = [(round(r.time - t0, 3), round(r.conn_time - t0, 3), r.range)
                for r in g]
    wave = [r for r in g[1:] if r.conn_time - t0 < 2.5 * DELAY]
    assert len(wave) >= 3, timeline
    assert len({r.client_port for r in wave}) >= 3, timeline
    # ...and went out when the first answer came back, not after its
    # 8 MiB (at the proxy's 4 MiB per round trip, >= t0 + 4 x DELAY).
    assert sorted(r.time - t0 for r in wave)[2] < 4 * DELAY, timeline


def test_small_file_opens_none_ahead(servers, cpfs, far):
    """A file that the first transfer carries to its end (it carries up
    to 8 blocks) needs no other connection: none is opened ahead.  (The
    kernel may send a later block's read first: then the first transfer
    runs from that block to the end, and block 0 comes in a second GET.)
    Every byte is fetched once."""
    size = 3 * MiB + 5
    data = os.urandom(size)
    oid = servers.add(data)
    m = cpfs(manifest=[("json", oid)], debug=True)
    assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(data)
    g = gets(servers, oid)
    assert len(g) <= 2 and bytes_sent(g, size) == size, g
    assert "ahead of need" not in m.log()


def test_no_request_wasted_on_loopback(servers, cpfs):
    """Without added latency, two cold cats one after the other (the
    second finds curl's connections idle, so it opens none ahead): every
    byte once, each file one API call, no failed or repeated request."""
    files = []
    for n in (40 * MiB + 5, 17 * MiB):
        data = os.urandom(n)
        files.append((servers.add(data), data))
    m = cpfs(manifest=[("json", oid) for oid, _ in files])
    for oid, data in files:
        assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(data)
        g = gets(servers, oid)
        assert all(r.status == 206 for r in g), g
        assert bytes_sent(g, len(data)) == len(data), g
        assert servers.api_calls(oid) == 1
    st = stats(m)
    assert st["data_errors"] == 0 and st["retries"] == 0, st
    assert st["data_requests"] == sum(len(gets(servers, o)) for o, _ in files)


def cpfs_sockets_to(pid, port):
    """Sockets process @pid holds to 127.0.0.1:@port, in any state but
    TIME-WAIT (no process owns those)."""
    out = subprocess.run(["ss", "-Htanp", "dport = :%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if "pid=%d," % pid in ln]


def test_unused_connections_are_closed_when_the_mount_goes_quiet(
        servers, cpfs):
    """A program reads the first MiB of a cold 24 MiB file and stops:
    of the connections opened ahead for its window (6), at most as many
    as the read's transfers are taken.  Nobody asks for a connection
    again, yet within PRECONN_TTL (5 s) and a second the others are
    closed: what stays are the connections curl keeps, one per transfer
    at most (before, they stayed open until the next cold read or the
    unmount)."""
    size = 24 * MiB + 777
    data = os.urandom(size)
    oid = servers.add(data)
    port = int(servers.data.url.rsplit(":", 1)[1].split("/")[0])
    m = cpfs(manifest=[("json", oid)], debug=True)
    with open(m.path(oid), "rb") as fh:
        assert fh.read(MiB) == data[:MiB]
    opened = re.findall(r"opened (\d+) connections ahead of need", m.log())
    assert opened, m.log()[-2000:]
    time.sleep(7.5)
    held = cpfs_sockets_to(m.proc.pid, port)
    g = gets(servers, oid)
    assert len(g) < sum(map(int, opened)), (g, opened)
    assert len(held) <= len(g), (held, g)


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: "GET http://host:port/path" passed on,
    the answer streamed back."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        up = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        hdrs = {k: v for k, v in self.headers.items()
                if not k.lower().startswith("proxy-")}
        up.request("GET", u.path + ("?" + u.query if u.query else ""),
                   headers=hdrs)
        r = up.getresponse()
        body = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "connection",
                                 "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        up.close()

    def log_message(self, *a):
        pass


def test_no_connection_opened_ahead_past_a_proxy(servers, cpfs):
    """With a proxy in the environment curl connects to the proxy only:
    cpfs opens no connection of its own to the data host (before, the
    window's connections went there directly, bypassing the proxy)."""
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    t = threading.Thread(target=proxy.serve_forever, daemon=True)
    t.start()
    try:
        size = 24 * MiB + 777
        data = os.urandom(size)
        oid = servers.add(data)
        port = int(servers.data.url.rsplit(":", 1)[1].split("/")[0])
        m = cpfs(manifest=[("json", oid)], debug=True,
                 env={"http_proxy": "http://127.0.0.1:%d" %
                      proxy.server_address[1]})
        with open(m.path(oid), "rb") as fh:
            assert fh.read(MiB) == data[:MiB]
            assert cpfs_sockets_to(m.proc.pid, port) == []
        assert gets(servers, oid), "nothing went through the proxy"
        assert "ahead of need" not in m.log()
        assert sha256(read_file(m.path(oid), bufsize=MiB)) == sha256(data)
    finally:
        proxy.shutdown()
        proxy.server_close()
