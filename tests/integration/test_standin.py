"""Self-tests of the stand-in servers (no cpfs involved)."""

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from conftest import MiB, ROOT, standin


def get(url, headers=None, method="GET", conn=None):
    u = urllib.parse.urlsplit(url)
    c = conn or http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    path = u.path + ("?" + u.query if u.query else "")
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    return r, body


def download(servers, oid, key=None):
    r, body = get(servers.api_url + "/v1/files/%s/download" % oid,
                  {"Authorization": "Bearer " + (key or servers.key)})
    return r, body


def presigned(servers, oid):
    r, body = download(servers, oid)
    assert r.status == 200, body
    return json.loads(body)["data"]["url"]


def test_api_ok_and_errors(servers):
    oid = servers.files["five"]
    r, body = download(servers, oid)
    assert r.status == 200
    d = json.loads(body)["data"]
    assert d["expiresIn"] == 300
    assert d["url"].startswith(servers.data.url + "/files/" + oid + "?")
    assert "X-Signature=" in d["url"] and "X-Expires=" in d["url"]

    r, body = get(servers.api_url + "/v1/files/%s/download" % oid)
    assert r.status == 401
    e = json.loads(body)
    assert e["status"] == "error" and e["type"] == "error"
    assert isinstance(e["errors"], list)
    r, _ = download(servers, oid, key="nope")
    assert r.status == 401
    r, _ = download(servers, "foo")
    assert r.status == 400
    r, body = download(servers, "0" * 24)
    assert r.status == 404 and json.loads(body)["message"] == "Not Found"
    assert servers.api.log.count(id=oid) == 3
    assert servers.api.log.count(status=401) == 2


def test_data_ranges(servers):
    oid = servers.files["five"]
    src = servers.content[oid]
    url = presigned(servers, oid)
    c = http.client.HTTPConnection("127.0.0.1", servers.data.port)
    r, body = get(url, {"Range": "bytes=10-19"}, conn=c)
    assert r.status == 206 and body == src[10:20]
    assert r.getheader("Content-Range") == "bytes 10-19/%d" % len(src)
    assert r.getheader("ETag") == '"%s"' % hashlib.md5(src).hexdigest()
    assert r.getheader("Accept-Ranges") == "bytes"
    assert r.getheader("Last-Modified") == standin.http_date(
        standin.DEFAULT_LAST_MODIFIED)
    r, body = get(url, {"Range": "bytes=%d-" % (len(src) - 5)}, conn=c)
    assert r.status == 206 and body == src[-5:]
    r, body = get(url, {"Range": "bytes=-7"}, conn=c)
    assert r.status == 206 and body == src[-7:]
    r, body = get(url, {"Range": "bytes=0-99999999"}, conn=c)
    assert r.status == 206 and body == src
    r, body = get(url, {"Range": "bytes=%d-" % len(src)}, conn=c)
    assert r.status == 416
    assert r.getheader("Content-Range") == "bytes */%d" % len(src)
    r, body = get(url, conn=c)
    assert r.status == 200 and body == src
    r, body = get(url, {"If-Match": '"abc"'}, conn=c)
    assert r.status == 412
    r, body = get(url, {"If-Match": r.getheader("ETag") or "x",
                        "Range": "bytes=0-0"}, conn=c)
    # keep-alive: one connection for all of the above
    ports = {q.client_port for q in servers.data.log.all()}
    assert len(ports) == 1
    r, _ = get(url, method="HEAD", conn=c)
    assert r.status == 403

    e = presigned(servers, servers.files["empty"])
    r, body = get(e, {"Range": "bytes=0-0"})
    assert r.status == 416 and r.getheader("Content-Range") == "bytes */0"
    r, body = get(e)
    assert r.status == 200 and body == b""


def test_data_signature_and_auth(servers):
    oid = servers.files["one"]
    url = presigned(servers, oid)
    r, body = get(url.replace("X-Signature=", "X-Signature=00"))
    assert r.status == 403 and b"AccessDenied" in body
    expired = servers.data.presign(oid, expires_in=-10)
    r, body = get(expired)
    assert r.status == 403 and b"Request has expired" in body
    other = servers.data.presign(servers.files["five"])
    r, _ = get(url.split("?")[0] + "?" + other.split("?")[1])
    assert r.status == 403
    servers.allow_data_auth = True
    r, body = get(url, {"Authorization": "Bearer x"})
    assert r.status == 400
    assert len(servers.data.auth_seen()) == 1
    rec = servers.data.log.all()[-1]
    assert rec.path == "/files/" + oid and "X-Signature" not in rec.path


def test_api_faults(servers):
    oid = servers.files["one"]
    api = servers.api
    api.inject(oid, status=503, times=2)
    assert download(servers, oid)[0].status == 503
    assert download(servers, oid)[0].status == 503
    assert download(servers, oid)[0].status == 200
    api.inject(oid, status=429, headers={"Retry-After": "3"})
    r, _ = download(servers, oid)
    assert r.status == 429 and r.getheader("Retry-After") == "3"
    api.inject(oid, status=200, body=b"{not json")
    assert download(servers, oid)[1] == b"{not json"
    api.inject(oid, expires_in=-5)
    assert json.loads(download(servers, oid)[1])["data"]["expiresIn"] == -5
    api.inject(oid, url="file:///etc/passwd")
    assert json.loads(download(servers, oid)[1])["data"]["url"] == \
        "file:///etc/passwd"
    api.inject(status=200, body=b" " * (10 * MiB))
    assert len(download(servers, oid)[1]) == 10 * MiB
    api.inject(oid, delay=0.5)
    t = time.time()
    assert download(servers, oid)[0].status == 200
    assert time.time() - t >= 0.5
    rec = servers.recorder(status=404, body=b"{}")
    api.inject(oid, status=302, headers={"Location": rec.url + "/x"})
    r, _ = download(servers, oid)
    assert r.status == 302 and r.getheader("Location") == rec.url + "/x"
    get(rec.url + "/x", {"Authorization": "Bearer z"})
    assert rec.log.count(header="authorization") == 1
    api.inject(oid, reset=True)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        download(servers, oid)


def test_api_rate_limit(servers):
    servers.api.rate = (3, 1.0)
    oid = servers.files["one"]
    st = [download(servers, oid)[0] for _ in range(4)]
    assert [r.status for r in st] == [200, 200, 200, 429]
    assert int(st[3].getheader("Retry-After")) >= 1
    time.sleep(1.05)
    assert download(servers, oid)[0].status == 200


def test_data_faults(servers):
    oid = servers.files["five"]
    src = servers.content[oid]
    url = presigned(servers, oid)
    d = servers.data

    d.inject("ignore_range", oid)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 200 and body == src
    d.inject("slowdown", oid)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 503 and b"SlowDown" in body
    d.inject("bad_content_range", oid)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.getheader("Content-Range") == "bytes 1-10/%d" % len(src)
    d.inject("long_body", oid, extra=100)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 206 and len(body) == 110 and body[:10] == src[:10]
    d.inject("range_416", oid)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 416
    d.inject("many_headers", oid, count=3000)
    old = http.client._MAXHEADERS
    http.client._MAXHEADERS = 10000
    try:
        r, body = get(url, {"Range": "bytes=0-9"})
    finally:
        http.client._MAXHEADERS = old
    assert r.status == 206 and len(r.getheaders()) > 3000
    d.inject("redirect", oid, location="http://127.0.0.1:1/x")
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 302
    d.inject("expired", oid)
    assert get(url)[0].status == 403

    # reset after K bytes: the client sees a short body / error
    d.inject("reset", oid, after=100000)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    u = urllib.parse.urlsplit(url)
    c.request("GET", u.path + "?" + u.query)
    resp = c.getresponse()
    with pytest.raises((ConnectionError, http.client.IncompleteRead)):
        resp.read()
    time.sleep(0.1)
    assert d.log.find(pred=lambda q: q.fault == "reset")[0].bytes_sent \
        == 100000

    # stall then continue
    d.inject("stall", oid, after=10, seconds=0.5)
    t = time.time()
    r, body = get(url, {"Range": "bytes=0-99"})
    assert body == src[:100] and time.time() - t >= 0.5

    # when= predicate and probability faults
    d.inject("slowdown", oid, times=None,
             when=lambda q: q.range == "bytes=5-5")
    assert get(url, {"Range": "bytes=5-5"})[0].status == 503
    assert get(url, {"Range": "bytes=6-6"})[0].status == 206
    assert get(url, {"Range": "bytes=5-5"})[0].status == 503
    d.clear_faults()
    d.set_fault_rate("slowdown", 0.5)
    codes = [get(url, {"Range": "bytes=0-0"})[0].status for _ in range(40)]
    assert 5 < codes.count(503) < 35
    d.clear_faults()


def test_replace_changes_etag(servers):
    oid = servers.files["one"]
    url = presigned(servers, oid)
    r1, _ = get(url)
    servers.replace(oid, b"xyz")
    r2, body = get(url)
    assert body == b"xyz" and r1.getheader("ETag") != r2.getheader("ETag")
    r3, _ = get(url, {"If-Match": r1.getheader("ETag")})
    assert r3.status == 412


def test_data_throughput(servers):
    big = b"\x5a" * (200 * MiB)
    oid = servers.add(big)
    url = presigned(servers, oid)
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection(("127.0.0.1", servers.data.port))
    s.sendall(("GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n"
               % (u.path, u.query)).encode())
    t = time.time()
    n = 0
    buf = bytearray(1 << 20)
    while n < len(big):
        k = s.recv_into(buf)
        if not k:
            break
        n += k
    dt = time.time() - t
    s.close()
    assert n >= len(big)
    rate = len(big) / dt / 1e6
    print("data host: %.0f MB/s" % rate)
    assert rate > 300


def test_cli(tmp_path):
    pf = tmp_path / "ports"
    mf = tmp_path / "ids"
    p = subprocess.Popen([sys.executable, str(ROOT / "tests/standin/standin.py"),
                          "--sample", "--key", "k1", "--port-file", str(pf),
                          "--manifest-out", str(mf), "--expires", "60"],
                         stdout=subprocess.PIPE, text=True)
    try:
        url = p.stdout.readline().strip()
        api_port, data_port = map(int, pf.read_text().split())
        assert url == "http://127.0.0.1:%d" % api_port
        lines = mf.read_text().splitlines()
        assert lines[0].startswith("#")
        entries = [json.loads(x) for x in lines[1:]]
        assert len(entries) == 3
        for e in entries:
            assert set(e) == {"id", "location", "name", "purpose", "type",
                              "size", "width", "height", "createdAt"}
            assert standin.is_object_id(e["id"])
            r, body = get(url + "/v1/files/%s/download" % e["id"],
                          {"Authorization": "Bearer k1"})
            d = json.loads(body)["data"]
            assert d["expiresIn"] == 60
            assert d["url"].startswith("http://127.0.0.1:%d/" % data_port)
            r, body = get(d["url"])
            assert r.status == 200 and len(body) == e["size"]
    finally:
        p.terminate()
        assert p.wait(5) == 0


def test_cli_data_base(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    oid = "65a000000000000000000001"
    (d / oid).write_bytes(b"hello")
    (d / "notanid.txt").write_bytes(b"x")
    pf = tmp_path / "ports"
    p = subprocess.Popen([sys.executable, str(ROOT / "tests/standin/standin.py"),
                          "--files-dir", str(d), "--key", "k2",
                          "--data-base", "http://127.0.0.1:8080/",
                          "--port-file", str(pf)],
                         stdout=subprocess.PIPE, text=True)
    try:
        url = p.stdout.readline().strip()
        assert pf.read_text().split()[1] == "0"
        r, body = get(url + "/v1/files/%s/download" % oid,
                      {"Authorization": "Bearer k2"})
        u = json.loads(body)["data"]["url"]
        assert u.startswith("http://127.0.0.1:8080/%s?X-Expires=" % oid)
        r, body = get(url + "/v1/files/%s/download" % ("1" * 24),
                      {"Authorization": "Bearer k2"})
        assert r.status == 404
    finally:
        p.send_signal(2)
        assert p.wait(5) == 0
