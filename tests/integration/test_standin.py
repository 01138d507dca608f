"""Self-tests of the stand-in servers (no cpfs involved)."""

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.parse
import zlib

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
        api_port, data_port, image_port = map(int, pf.read_text().split())
        assert url == "http://127.0.0.1:%d" % api_port
        assert image_port > 0
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

        # the sample account: 2 pages, 1 event, 2 products, 9 PNGs
        w = Walk(url, "k1")
        assert len(w.pages) == 2 and len(w.events) == 1
        assert len(w.products) == 2
        assert w.private == {e["id"] for e in entries}
        assert len(w.images) == 9
        names = {n for n, _ in w.by_owner.values()}
        assert names == {"Summer sale", "Workshop", "Meetup",
                         "Digital download", "T-shirt"}
        c = http.client.HTTPConnection("127.0.0.1", image_port, timeout=10)
        for fid, img in w.images.items():
            assert img["url"].startswith("http://127.0.0.1:%d/images/%s/"
                                         % (image_port, fid))
            r, body = get(img["url"], conn=c)
            assert r.status == 200 and len(body) == img["size"]
            assert body[:8] == b"\x89PNG\r\n\x1a\n"
            assert standin.png_size(body) == (img["width"], img["height"])
            r, _ = get(url + "/v1/files/%s/download" % fid,
                       {"Authorization": "Bearer k1"})
            assert r.status == 400
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
        ports = pf.read_text().split()
        assert len(ports) == 3 and ports[1] == "0" and int(ports[2]) > 0
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


# ------------------------------------------------- the account (SPEC 6)

def walk_json(obj, files, refs, depth=0):
    """The generic walk cpfs must do: fileId objects, fileIds arrays,
    productId members and the ids in "products" arrays, at any depth."""
    assert depth < 64
    if isinstance(obj, dict):
        fid = obj.get("fileId")
        if isinstance(fid, str) and standin.is_object_id(fid):
            files[fid] = obj
        ids = obj.get("fileIds")
        if isinstance(ids, list):
            for x in ids:
                if isinstance(x, str) and standin.is_object_id(x):
                    files.setdefault(x, None)
        pid = obj.get("productId")
        if isinstance(pid, str) and standin.is_object_id(pid):
            refs.add(pid)
        prods = obj.get("products")
        if isinstance(prods, list):
            for it in prods:
                if isinstance(it, dict) and standin.is_object_id(
                        it.get("id") if isinstance(it.get("id"), str)
                        else ""):
                    refs.add(it["id"])
        for v in obj.values():
            walk_json(v, files, refs, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            walk_json(v, files, refs, depth + 1)


class Walk:
    """A complete discovery walk over HTTP (one keep-alive connection)."""

    def __init__(self, api_url, key, limit=100):
        u = urllib.parse.urlsplit(api_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port,
                                               timeout=10)
        self.key = key
        self.pages = self.list("/v1/checkout-pages/", limit)
        self.events = self.list("/v1/events/", limit)
        self.by_owner = {}   # owner id -> (display name, set of fileIds)
        self.files = {}      # fileId -> IMAGE dict or None (private)
        refs = set()
        for page in self.pages + self.events:
            f = {}
            walk_json(page, f, refs)
            if page in self.events:
                for g in self.call("/v1/events/%s/ticket-groups"
                                   % page["id"])["data"]:
                    tt = self.call("/v1/events/%s/ticket-groups/%s/"
                                   "ticket-types" % (page["id"], g["id"]))
                    walk_json(tt["data"], f, refs)
            self.add(page, f)
        self.products = {}
        for pid in sorted(refs):
            prod = self.call("/v1/products/%s" % pid)["data"]
            self.products[pid] = prod
            f = {}
            walk_json(prod, f, set())
            self.add(prod, f)
        self.images = {k: v for k, v in self.files.items() if v is not None}
        self.private = {k for k, v in self.files.items() if v is None}

    def add(self, owner, f):
        self.by_owner[owner["id"]] = (standin.display_name(owner), set(f))
        for k, v in f.items():
            if v is not None or k not in self.files:
                self.files[k] = v

    def call(self, path):
        r, body = get(path, {"Authorization": "Bearer " + self.key},
                      conn=self.conn)
        assert r.status == 200, (path, r.status, body)
        return json.loads(body)

    def list(self, path, limit):
        out, after, seen = [], None, 0
        while True:
            q = "?limit=%d" % limit + (
                "&starting_after=" + after if after else "")
            d = self.call(path + q)
            out += d["data"]
            seen += 1
            assert d["total"] >= len(out)
            if not d["has_more"]:
                assert d["total"] == len(out)
                return out
            after = d["data"][-1]["id"]
            assert seen < 1000


@pytest.fixture
def account():
    a = types.SimpleNamespace()
    a.key = "k-" + hashlib.sha1(str(time.time()).encode()).hexdigest()[:8]
    a.data = standin.DataHost().start()
    a.images = standin.ImageHost().start()
    a.store = standin.Store()
    a.api = standin.ApiServer(a.key, data=a.data, store=a.store,
                              images=a.images).start()
    a.url = a.api.url
    try:
        yield a
        assert a.images.auth_seen() == [] or getattr(a, "allow_auth", False)
    finally:
        a.api.stop()
        a.images.stop()
        a.data.stop()


def api_get(a, path, key=None, conn=None):
    r, body = get(a.url + path, {"Authorization": "Bearer " + (key or a.key)},
                  conn=conn)
    return r, json.loads(body)


def assert_error_body(e):
    assert e["status"] == "error" and e["type"] == "error"
    assert isinstance(e["message"], str)
    assert isinstance(e["errors"], list) and e["errors"]
    assert set(e["errors"][0]) >= {"param", "message", "value"}


def test_empty_store_lists(servers):
    for path in ("/v1/checkout-pages/", "/v1/events/", "/v1/checkout-pages",
                 "/v1/events?limit=100"):
        r, body = get(servers.api_url + path,
                      {"Authorization": "Bearer " + servers.key})
        assert r.status == 200, path
        assert json.loads(body) == {"has_more": False, "total": 0,
                                    "data": []}
    assert servers.api.list_calls() == 4
    assert servers.api.discovery_calls() == 4
    assert servers.api.log.count(kind="events") == 2


def test_list_pagination(account):
    a = account
    pages = [a.store.add_page() for _ in range(250)]
    ids = [p["id"] for p in pages]
    evs = [a.store.add_page(event=True)["id"] for _ in range(3)]

    w = Walk(a.url, a.key)
    assert [p["id"] for p in w.pages] == ids
    assert [p["id"] for p in w.events] == evs
    assert a.api.list_calls() == 4   # 3 x checkout-pages + 1 x events
    lists = a.api.log.find(kind="checkout-pages")
    assert [q.query.get("starting_after") for q in lists] == \
        [None, ids[99], ids[199]]
    assert all(q.path == "/v1/checkout-pages/" and q.query["limit"] == "100"
               for q in lists)

    r, d = api_get(a, "/v1/checkout-pages/")
    assert r.status == 200 and len(d["data"]) == 20 and d["has_more"]
    assert d["total"] == 250
    r, d = api_get(a, "/v1/checkout-pages/?limit=50&starting_after="
                   + ids[219])
    assert [p["id"] for p in d["data"]] == ids[220:]
    assert not d["has_more"]
    r, d = api_get(a, "/v1/checkout-pages/?limit=1&starting_after="
                   + ids[-1])
    assert r.status == 200 and d["data"] == [] and not d["has_more"]

    for bad in ("101", "0", "-1", "abc", "", "1.5", "1000"):
        r, e = api_get(a, "/v1/checkout-pages/?limit=" + bad)
        assert r.status == 400, bad
        assert_error_body(e)
        assert e["errors"][0]["param"] == "limit"
    for bad in ("0" * 24, "zz", evs[0]):
        r, e = api_get(a, "/v1/checkout-pages/?starting_after=" + bad)
        assert r.status == 400, bad
        assert_error_body(e)
        assert e["errors"][0]["param"] == "starting_after"
    a.store.remove_page(ids[5])
    r, e = api_get(a, "/v1/checkout-pages/?starting_after=" + ids[5])
    assert r.status == 400
    r, d = api_get(a, "/v1/checkout-pages/?limit=10")
    assert d["total"] == 249 and ids[5] not in [p["id"] for p in d["data"]]

    # auth and the shared rate budget apply to list calls too
    r, e = get(a.url + "/v1/events/")
    assert r.status == 401
    assert_error_body(json.loads(e))
    r, _ = api_get(a, "/v1/events/", key="wrong")
    assert r.status == 401
    a.api.rate = (2, 1.0)
    codes = [api_get(a, "/v1/events/")[0].status for _ in range(3)]
    assert codes == [200, 200, 429]
    r, _ = api_get(a, "/v1/checkout-pages/")
    assert r.status == 429 and int(r.getheader("Retry-After")) >= 1
    r, _ = api_get(a, "/v1/files/%s/download" % ("0" * 24))
    assert r.status == 429


def test_list_hook_and_faults(account):
    a = account
    page = a.store.add_page(name="Loop")
    seen = []

    def hook(kind, q):
        seen.append((kind, q))
        if kind == "checkout-pages":
            return 200, {"has_more": True, "total": 1, "data": [page]}
        return None

    a.store.list_hook = hook
    for _ in range(3):
        r, d = api_get(a, "/v1/checkout-pages/?limit=100&starting_after="
                       + page["id"])
        assert r.status == 200 and d["has_more"] and \
            d["data"][0]["id"] == page["id"]
    r, d = api_get(a, "/v1/events/?limit=100")
    assert r.status == 200 and d["total"] == 0
    assert seen[0] == ("checkout-pages", {"limit": "100",
                                          "starting_after": page["id"]})
    assert seen[-1] == ("events", {"limit": "100"})
    a.store.list_hook = lambda kind, q: (500, b"oops")
    r, body = get(a.url + "/v1/events/", {"Authorization": "Bearer " + a.key})
    assert r.status == 500 and body == b"oops"
    a.store.list_hook = None

    # faults by path or by kind, and by product id
    a.api.inject(status=503, when=lambda q: q.path.startswith("/v1/events"))
    assert api_get(a, "/v1/checkout-pages/")[0].status == 200
    r, _ = get(a.url + "/v1/events/", {"Authorization": "Bearer " + a.key})
    assert r.status == 503
    prod = a.store.add_product(name="P")
    a.api.inject(prod["id"], status=429, headers={"Retry-After": "1"})
    r, _ = get(a.url + "/v1/products/" + prod["id"],
               {"Authorization": "Bearer " + a.key})
    assert r.status == 429
    assert api_get(a, "/v1/products/" + prod["id"])[0].status == 200
    assert a.api.log.count(id=prod["id"], kind="product") == 2


def test_products_and_tickets(account):
    a = account
    img = a.store.add_image(a.images, standin.make_png(8, 4), name="x.png",
                            content_type="image/png")
    assert (img["width"], img["height"]) == (8, 4)
    priv = a.data.put(b"secret", filename="s.txt")
    prod = a.store.add_product(name="Prod", media=[img], file_ids=[priv],
                               variant_images=[img])
    page = a.store.add_page(name="Pg", product_ids=[prod["id"]],
                            product_form="fields")
    page2 = a.store.add_page(product_ids=[prod["id"]],
                             product_form="products")
    assert {"type": "product", "label": "Product",
            "productId": prod["id"]} in page["fields"]
    assert page2["products"] == [{"id": prod["id"], "quantity": 1}]
    ev = a.store.add_page(name="Ev", event=True)
    g1 = a.store.add_ticket_group(ev["id"], name="G1")
    g2 = a.store.add_ticket_group(ev["id"])
    t1 = a.store.add_ticket_type(ev["id"], g1["id"], image=img)
    a.store.add_ticket_type(ev["id"], g1["id"])
    with pytest.raises(KeyError):
        a.store.add_ticket_group(page["id"])

    r, d = api_get(a, "/v1/products/" + prod["id"])
    assert r.status == 200
    assert d["data"]["media"] == [img] and d["data"]["fileIds"] == [priv]
    assert d["data"]["variants"][0]["options"][0]["image"] == img
    r, e = api_get(a, "/v1/products/" + "1" * 24)
    assert r.status == 404
    assert_error_body(e)
    assert api_get(a, "/v1/products/nope")[0].status == 400
    assert api_get(a, "/v1/products/" + page["id"])[0].status == 404

    r, d = api_get(a, "/v1/events/%s/ticket-groups" % ev["id"])
    assert r.status == 200
    assert [g["id"] for g in d["data"]] == [g1["id"], g2["id"]]
    r, d = api_get(a, "/v1/events/%s/ticket-groups/%s/ticket-types"
                   % (ev["id"], g1["id"]))
    assert r.status == 200 and len(d["data"]) == 2
    assert d["data"][0]["id"] == t1["id"] and d["data"][0]["image"] == img
    assert d["data"][1]["image"] is None
    r, d = api_get(a, "/v1/events/%s/ticket-groups/%s/ticket-types"
                   % (ev["id"], g2["id"]))
    assert r.status == 200 and d["data"] == []
    for path, st in [
            ("/v1/events/%s/ticket-groups" % page["id"], 404),
            ("/v1/events/%s/ticket-groups" % ("2" * 24), 404),
            ("/v1/events/x/ticket-groups", 400),
            ("/v1/events/%s/ticket-groups/%s/ticket-types"
             % (ev["id"], "3" * 24), 404),
            ("/v1/events/%s/ticket-groups/%s/ticket-types"
             % (page["id"], g1["id"]), 404),
            ("/v1/events/%s/ticket-groups/y/ticket-types" % ev["id"], 400),
            ("/v1/events/%s" % ev["id"], 404),
            ("/v1/pages/", 404)]:
        r, e = api_get(a, path)
        assert r.status == st, path
        assert_error_body(e)
    assert a.api.list_calls() == 0
    # 4 product + 9 ticket calls above (the last two paths are no endpoint)
    assert a.api.discovery_calls() == 4 + 9
    assert a.api.log.count(kind="ticket-types", id=ev["id"]) == 4

    # /download: the private file works, an image is refused with 400
    r, d = api_get(a, "/v1/files/%s/download" % priv)
    assert r.status == 200
    r, body = get(d["data"]["url"])
    assert body == b"secret"
    r, e = api_get(a, "/v1/files/%s/download" % img["fileId"])
    assert r.status == 400
    assert_error_body(e)
    assert "files bucket" in e["errors"][0]["message"]
    assert e["errors"][0]["value"] == img["fileId"]
    # an image put on the host directly (not through the store): also 400
    other = a.images.put(b"zz", name="z.jpg")
    assert api_get(a, "/v1/files/%s/download" % other)[0].status == 400
    assert a.api.log.count(kind="download") == 3


def test_image_host(account):
    a = account
    src = standin.make_bytes(30000, seed=7)
    img = a.store.add_image(a.images, src, name="photo 1.jpg", width=10,
                            height=20)
    fid, url = img["fileId"], img["url"]
    assert img == {"fileId": fid, "url": url, "name": "photo 1.jpg",
                   "size": 30000, "width": 10, "height": 20}
    assert url == "%s/images/%s/photo%%201.jpg" % (a.images.url, fid)
    assert a.images.url_for(fid) == url
    c = http.client.HTTPConnection("127.0.0.1", a.images.port, timeout=10)
    r, body = get(url, {"Range": "bytes=100-199"}, conn=c)
    assert r.status == 206 and body == src[100:200]
    assert r.getheader("Content-Range") == "bytes 100-199/30000"
    assert r.getheader("ETag") == '"%s"' % hashlib.md5(src).hexdigest()
    assert r.getheader("Last-Modified") == standin.http_date(
        standin.DEFAULT_LAST_MODIFIED)
    assert r.getheader("Content-Type") == "image/jpeg"
    etag = r.getheader("ETag")
    r, body = get(url, {"Range": "bytes=-10"}, conn=c)
    assert r.status == 206 and body == src[-10:]
    r, body = get(url, {"Range": "bytes=30000-"}, conn=c)
    assert r.status == 416
    assert r.getheader("Content-Range") == "bytes */30000"
    r, body = get(url, conn=c)
    assert r.status == 200 and body == src
    r, _ = get(url, {"If-Match": '"nope"', "Range": "bytes=0-0"}, conn=c)
    assert r.status == 412
    r, body = get(url, {"If-Match": etag, "Range": "bytes=0-0"}, conn=c)
    assert r.status == 206 and body == src[:1]
    r, body = get(url, method="HEAD", conn=c)
    assert r.status == 200 and body == b""
    assert r.getheader("Content-Length") == "30000"
    r, body = get(url, {"Range": "bytes=0-9"}, method="HEAD", conn=c)
    assert r.status == 206 and body == b""
    # one connection, no signature anywhere
    assert len({q.client_port for q in a.images.log.all()}) == 1
    assert all(q.query == {} and q.id == fid for q in a.images.log.all())
    assert a.images.log.count(id=fid, method="GET") == 6
    assert a.images.log.count(id=fid, method="HEAD") == 2

    # wrong name or unknown id: 404; the data host's URL scheme is not it
    for bad in ("%s/images/%s/other.jpg" % (a.images.url, fid),
                "%s/images/%s" % (a.images.url, fid),
                "%s/images/%s/x.jpg" % (a.images.url, "4" * 24)):
        r, body = get(bad)
        assert r.status == 404 and b"NoSuchKey" in body, bad

    # faults, as on the data host
    a.images.inject("slowdown", fid)
    assert get(url, {"Range": "bytes=0-9"})[0].status == 503
    a.images.inject("ignore_range", fid)
    r, body = get(url, {"Range": "bytes=0-9"})
    assert r.status == 200 and body == src
    a.images.inject("range_416")
    assert get(url, {"Range": "bytes=0-9"})[0].status == 416

    # Authorization is answered normally, and recorded
    a.allow_auth = True
    r, body = get(url, {"Authorization": "Bearer leak", "Range": "bytes=0-3"})
    assert r.status == 206 and body == src[:4]
    assert len(a.images.auth_seen()) == 1

    # replacing the bytes changes the ETag
    a.images.put(b"new", id=fid, name="photo 1.jpg")
    r, body = get(url, {"If-Match": etag})
    assert r.status == 412


def test_make_png():
    png = standin.make_png(17, 9, seed=3)
    assert standin.png_size(png) == (17, 9)
    pos, chunks = 8, []
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        tag, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        crc = int.from_bytes(png[pos + 8 + n:pos + 12 + n], "big")
        assert zlib.crc32(tag + body) == crc
        chunks.append((tag, body))
        pos += 12 + n
    assert [t for t, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert len(zlib.decompress(chunks[1][1])) == 9 * (1 + 17 * 3)
    try:
        out = subprocess.run(["file", "-b", "-"], input=png,
                             capture_output=True).stdout
    except FileNotFoundError:
        return
    assert out.startswith(b"PNG image data, 17 x 9")


def test_make_store_expect(account):
    a = account
    t = time.time()
    ex = standin.make_store(a.data, a.images, a.store, seed=5, decoys=True)
    built = time.time() - t
    assert len(ex.pages) == 250 and len(ex.events) == 12
    assert len(ex.products) == 40 and not ex.unreachable
    assert len(ex.private) == 40
    assert ex.images | ex.private == set(ex.files)
    assert not ex.images & ex.private

    w = Walk(a.url, a.key)
    assert a.api.list_calls() == 3 + 1
    # every expected file, nothing else, each with its owner(s)
    assert set(w.files) == set(ex.files)
    assert set(w.images) == ex.images and w.private == ex.private
    owners = {k: v for k, v in w.by_owner.items() if v[1]}
    assert owners == ex.by_page
    assert set(w.products) == set(ex.products)
    for fid, img in w.images.items():
        assert ex.meta[fid] == {k: img[k] for k in
                                ("width", "height", "url", "size")}
        assert ex.names[fid] == img["name"]
    assert set(ex.names) == ex.images
    # both reference forms, nesting, shared images and tricky names occur
    forms = {"products": 0, "fields": 0}
    for p in w.pages:
        if p["products"]:
            forms["products"] += 1
        if any("productId" in f for f in p["fields"]):
            forms["fields"] += 1
    assert forms["products"] > 20 and forms["fields"] > 20
    assert sum("theme" in p for p in w.pages) == 25
    assert sum("sections" in p for p in w.pages) == 10
    assert sum("upsell" in p for p in w.pages) == 8
    shared = [f for f in ex.images
              if sum(f in s for _, s in ex.by_page.values()) > 1]
    assert shared
    assert ex.by_page[ex.pages[4]][0] == "page-004"
    assert ex.by_page[ex.pages[9]][0] == ex.pages[9]
    assert ex.by_page[ex.pages[14]][0] == "Sale 50% / today"
    assert ex.by_page[ex.pages[19]][0] == ex.by_page[ex.pages[0]][0]
    # a page's set excludes its products' files; an event's includes its
    # ticket images
    for pid, prod in w.products.items():
        own = {m["fileId"] for m in prod["media"]} | set(prod["fileIds"])
        assert own <= ex.by_page[pid][1]
    ticketed = 0
    for e in w.events:
        assert {i["fileId"] for i in e["images"]} < ex.by_page[e["id"]][1]
        ticketed += 1
    assert ticketed == 12

    # the bytes: every image from its public URL, every private file
    # through /download and the data host
    c = http.client.HTTPConnection("127.0.0.1", a.images.port, timeout=10)
    for fid, img in w.images.items():
        r, body = get(img["url"], conn=c)
        assert r.status == 200 and body == ex.files[fid]
        assert len(body) == img["size"]
        assert 2000 <= len(body) <= 40000
    for fid in w.private:
        r, d = api_get(a, "/v1/files/%s/download" % fid)
        r, body = get(d["data"]["url"])
        assert body == ex.files[fid]
        assert a.data.get(fid).filename == ex.filenames[fid]
    assert a.images.auth_seen() == [] and a.data.auth_seen() == []

    # deterministic: the same seed gives the same ids, names and bytes
    d2 = standin.DataHost()
    i2 = standin.ImageHost().start()
    try:
        ex2 = standin.make_store(d2, i2, standin.Store(), seed=5,
                                 decoys=True)
    finally:
        i2.stop()
    assert ex2.files == ex.files and ex2.pages == ex.pages
    assert {k: v[1] for k, v in ex2.by_page.items()} == \
        {k: v[1] for k, v in ex.by_page.items()}
    print("make_store: %.2f s, %r" % (built, ex))


def test_make_store_small_and_mutation(account):
    a = account
    ex = standin.make_store(a.data, a.images, a.store, pages=3, events=1,
                            products=10, seed=1, private_per_product=2,
                            image_size=(100, 200))
    # with 3 pages most products are unreachable: not expected
    assert ex.unreachable and len(ex.unreachable) < 10
    w = Walk(a.url, a.key, limit=2)
    assert set(w.files) == set(ex.files)
    assert {k: v for k, v in w.by_owner.items() if v[1]} == ex.by_page
    for pid in ex.unreachable:
        assert pid not in w.products

    # the store changes under a running API
    a.store.remove_page(ex.events[0])
    img = a.store.add_image(a.images, b"x" * 10, name="late.jpg")
    late = a.store.add_page(name="Late", images=[img])
    a.store.update_page(ex.pages[0], name="Renamed")
    w = Walk(a.url, a.key)
    assert [p["id"] for p in w.events] == []
    assert w.by_owner[late["id"]] == ("Late", {img["fileId"]})
    assert w.by_owner[ex.pages[0]][0] == "Renamed"
    r, _ = api_get(a, "/v1/events/%s/ticket-groups" % ex.events[0])
    assert r.status == 404


def test_cli_store(tmp_path):
    pf = tmp_path / "ports"
    eo = tmp_path / "expect.json"
    p = subprocess.Popen([sys.executable, str(ROOT / "tests/standin/standin.py"),
                          "--files-dir", str(tmp_path), "--key", "k3",
                          "--port-file", str(pf), "--store-pages", "30",
                          "--store-events", "2", "--store-products", "5",
                          "--expect-out", str(eo)],
                         stdout=subprocess.PIPE, text=True)
    try:
        url = p.stdout.readline().strip()
        api_port, data_port, image_port = map(int, pf.read_text().split())
        assert data_port > 0 and image_port > 0
        ex = json.loads(eo.read_text())
        w = Walk(url, "k3")
        assert len(w.pages) == 30 and len(w.events) == 2
        assert set(w.files) == set(ex["files"])
        assert {k: [v[0], sorted(v[1])] for k, v in w.by_owner.items()
                if v[1]} == ex["by_page"]
        for fid, img in list(w.images.items())[:5]:
            r, body = get(img["url"])
            assert hashlib.sha256(body).hexdigest() == \
                ex["files"][fid]["sha256"]
    finally:
        p.terminate()
        assert p.wait(5) == 0
