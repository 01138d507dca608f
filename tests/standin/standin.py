#!/usr/bin/python3
"""
standin.py - local stand-ins for the Checkout Page API and its S3 data host.

Python 3 standard library only.  Importable (the pytest fixtures in
tests/integration/conftest.py use it) and runnable as a CLI (tests/try.sh and
the benchmark use it).  Both servers are threaded HTTP/1.1 keep-alive servers
bound to 127.0.0.1 that never talk to anything else.

Overview
========

    from standin import DataHost, ApiServer, Recorder, make_bytes

    data = DataHost().start()                    # S3-like object store
    oid = data.put(make_bytes(5 << 20, seed=1))  # returns a fresh 24-hex id
    api = ApiServer(key="k", data=data).start()  # /v1/files/<id>/download
    ...  cpfs http://127.0.0.1:<api.port> MNT  ...
    api.log.count(id=oid)                        # API calls for that id
    data.log.count(id=oid, method="GET")         # data requests for it
    api.stop(); data.stop()

Request logs (RequestLog, attribute ``.log`` of every server)
-------------------------------------------------------------
Every request is recorded as a ``Req`` (thread-safe; appended as soon as
the request headers are read, then updated in place: status, bytes_sent,
done):

    req.time        time.time() when the request line was read
    req.method      "GET", "HEAD", ...
    req.path        path WITHOUT the query string
    req.query       dict of query parameters (last value wins)
    req.headers     dict, lower-case header name -> value
    req.id          the file id the path names, or None
    req.range       the Range header value or None
    req.status      status sent (None if the connection died before)
    req.bytes_sent  body bytes written
    req.fault       name of the injected fault, or None
    req.client_port peer port (one value per TCP connection)
    req.done        True once the handler finished with it

    log.all()                        -> list copy
    log.count(**flt) / log.find(**flt)
        filters: method=, path=, id=, status=, header="name" (present),
        pred=callable(req)
    log.clear()
    log.wait_for(n, timeout=5, **flt) -> bool  (count >= n)
    log.quiet(period=0.3, timeout=5)  wait until no request arrived for
                                      `period` seconds

DataHost (S3 stand-in)
----------------------
    DataHost(secret=None, bucket="files", port=0, check_signature=True,
             seed=0)
    .start() / .stop() / .url (base URL "http://127.0.0.1:PORT")
    .put(data, id=None, content_type="application/octet-stream",
         filename=None, last_modified=None) -> id
        (replacing an object changes its ETag; last_modified is a unix
        time, default 1700000000 for the first version, now for later ones)
    .get(id) -> Obj (.data .etag .last_modified .content_type .filename)
    .delete(id)
    .sign(id, expires) -> hex signature
    .presign(id, expires_in=300, base=None) -> URL
        "{base}/{bucket}/{id}?X-Expires=<unix>&X-Signature=<hmac hex>"
    .auth_seen() -> list of requests that carried Authorization (must be [])

  Behaviour: GET only (HEAD -> 403, others -> 405).  Bad/missing signature
  or X-Expires in the past -> 403 AccessDenied XML.  Authorization header
  -> 400 InvalidArgument (and recorded).  Range "bytes=a-b", "bytes=a-",
  "bytes=-n" -> 206 + Content-Range; unsatisfiable -> 416 "bytes */TOTAL"
  (an empty object answers 416 to every range).  Malformed or multi-range
  Range headers are ignored (200, whole object).  If-Match mismatch -> 412.
  Sends ETag ("md5hex"), Last-Modified, Content-Type, Accept-Ranges,
  Content-Disposition when a filename is set.  Unknown id -> 404 NoSuchKey.

  Fault injection:
    data.inject(kind, id=None, times=1, when=None, **params)
        queue a fault for requests on `id` (or any id when None); `times`
        is how many requests it hits (None = forever); `when` is an optional
        predicate on the Req (e.g. lambda r: r.range and not
        r.range.startswith("bytes=0-")) that must hold for it to apply.
        Per-id entries are tried before global ones, in FIFO order.
    data.set_fault_rate(kind, p, id=None, **params)
        random fault with probability p per request (seeded RNG).
    data.clear_faults()

  kinds and their params:
    "ignore_range"        200 with the whole object, Range ignored
    "slowdown"            503 SlowDown XML
    "expired"             403 AccessDenied "Request has expired"
    "status"              status=, body=b"", headers={} (any answer)
    "delay"               seconds= sleep, then answer normally
    "reset"               after=K body bytes, then RST (SO_LINGER 0)
    "stall"               after=K body bytes, stall seconds=S, then
                          then="continue" (default) | "close" | "reset"
    "bad_content_range"   value="bytes 1-2/3" or shift=N (default 1):
                          Content-Range lies, body is the real range
    "long_body"           extra=N (default 4096): Content-Length and body
                          are N bytes longer than the range
    "range_416"           416 "bytes */TOTAL" though the range is valid
    "many_headers"        count=N (default 5000) extra headers
    "giant_header"        size=N (default 1 MiB) one huge header
    "redirect"            location= (default: the same path+query on
                          this host), status=302

ApiServer (Checkout Page API stand-in)
--------------------------------------
    ApiServer(key, data=None, data_base=None, bucket="files",
              expires_in=300, rate=None, port=0, ids=None)
      data       a DataHost: its objects are the known ids, URLs point at it
      data_base  external data host base URL instead (url = base/<id>?...),
                 known ids = `ids` (a set you may mutate)
      rate       (N, W): at most N requests per sliding W seconds per key,
                 else 429 with Retry-After
    .start() / .stop() / .url
    .expires_for[id] = N      per-id expiresIn override
    .issued                   list of (id, url) handed out
    .download_body(id, expires_in=None) -> the dict a 200 would carry

  Answers: no/wrong "Authorization: Bearer <key>" -> 401; id not an
  ObjectId -> 400; unknown id -> 404; else 200
  {"data":{"url":..., "expiresIn":N}}.  Error bodies have the documented
  shape {"status":"error","type":"error","message":..,"errors":[..]}.

  Fault injection:
    api.inject(id=None, status=None, body=None, json=None, headers=None,
               delay=0, times=1, expires_in=None, url=None, reset=False,
               when=None)
      status None = the normal answer (after `delay`), possibly with
      `expires_in` / `url` overridden.  Otherwise `body` (bytes/str) or
      `json` (any JSON value) with `headers`.  reset=True drops the
      connection with an RST instead of answering.  Examples:
        api.inject(oid, status=429, headers={"Retry-After": "2"})
        api.inject(oid, status=503, times=3)              # then OK
        api.inject(oid, status=200, body=b"{not json")
        api.inject(oid, status=200, body=b" " * (10 << 20))
        api.inject(oid, status=200, json={"data": {"url": 5}})
        api.inject(oid, expires_in=0)
        api.inject(oid, url="file:///etc/passwd")
        api.inject(oid, status=302,
                   headers={"Location": rec.url + "/v1/files/%s/download" % oid})
        api.inject(oid, delay=40)                          # stall
        api.inject(oid, status=403, times=None)            # always 403
    api.clear_faults()

Recorder (any other host)
-------------------------
    Recorder(status=200, body=b"", headers=None).start()
    records every request in .log and answers the canned response; set
    .status/.body/.headers at will, or .responder = callable(handler, req)
    -> (status, headers, body).  Used as a redirect target to prove that
    the API key never follows a redirect to another host.

Helpers
-------
    make_bytes(n, seed=0) -> deterministic pseudo-random bytes
    object_id(seed_text) -> deterministic 24-hex id
    is_object_id(s)
    manifest_line(id, size=None, name=None, type=None, created_at=None,
                  purpose="files", location=None) -> JSON line (upload shape)

CLI
===
    python3 tests/standin/standin.py [--sample | --files-dir DIR]
        [--data-base URL] [--key KEY] [--api-port N] [--data-port N]
        [--expires N] [--rate N/WINDOW] [--manifest-out PATH]
        [--port-file PATH] [--verbose]

Prints the API URL on stdout and runs until SIGTERM/SIGINT.  --port-file
gets "api_port data_port\\n" once both listen (data_port 0 with
--data-base).  The key defaults to $CHECKOUTPAGE_API_KEY, else "test-key".
"""

import argparse
import email.utils
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 256 * 1024
OBJECT_ID_RE = re.compile(r"^[0-9a-fA-F]{24}$")
DEFAULT_LAST_MODIFIED = 1700000000  # 2023-11-14T22:13:20Z


# ---------------------------------------------------------------- helpers

def is_object_id(s):
    return bool(OBJECT_ID_RE.match(s or ""))


def object_id(seed_text):
    """A deterministic 24-hex id derived from `seed_text`."""
    return hashlib.sha1(str(seed_text).encode()).hexdigest()[:24]


def make_bytes(n, seed=0):
    """Deterministic pseudo-random bytes (fast: random.randbytes)."""
    return random.Random(seed).randbytes(n)


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def iso_date(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def manifest_line(oid, size=None, name=None, type=None, created_at=None,
                  purpose="files", location=None, width=None, height=None):
    """One manifest line in the upload endpoint's answer shape."""
    obj = {
        "id": oid,
        "location": location or "https://files.invalid/files/%s" % oid,
        "name": name or oid,
        "purpose": purpose,
        "type": type or "application/octet-stream",
        "size": size,
        "width": width,
        "height": height,
        "createdAt": created_at if isinstance(created_at, str)
        else iso_date(created_at if created_at is not None else 1600000000),
    }
    return json.dumps(obj)


def s3_error(code, message, resource=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><Resource>%s</Resource>'
            '<RequestId>%s</RequestId><HostId>%s</HostId></Error>'
            % (code, message, resource, secrets.token_hex(8).upper(),
               secrets.token_urlsafe(24))).encode()


def api_error(message, param=None, value=None, msg=None):
    return {
        "status": "error",
        "type": "error",
        "message": message,
        "errors": [{"param": param or "", "message": msg or message,
                    "value": value}],
    }


class Req:
    """One recorded request; see the module docstring."""

    __slots__ = ("time", "method", "path", "query", "headers", "raw_headers",
                 "id", "range", "status", "bytes_sent", "fault",
                 "client_port", "done")

    def __init__(self, handler):
        self.time = time.time()
        self.method = handler.command
        u = urllib.parse.urlsplit(handler.path)
        self.path = u.path
        self.query = dict(urllib.parse.parse_qsl(u.query,
                                                 keep_blank_values=True))
        self.raw_headers = list(handler.headers.items())
        self.headers = {k.lower(): v for k, v in self.raw_headers}
        self.range = self.headers.get("range")
        self.id = None
        self.status = None
        self.bytes_sent = 0
        self.fault = None
        self.client_port = handler.client_address[1]
        self.done = False

    def __repr__(self):
        return ("<Req %s %s id=%s range=%s status=%s sent=%d fault=%s>"
                % (self.method, self.path, self.id, self.range, self.status,
                   self.bytes_sent, self.fault))


class RequestLog:
    """Thread-safe list of Req."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._reqs = []
        self.last_time = 0.0

    def add(self, req):
        with self._cond:
            self._reqs.append(req)
            self.last_time = time.time()
            self._cond.notify_all()

    def all(self):
        with self._lock:
            return list(self._reqs)

    def clear(self):
        with self._lock:
            self._reqs.clear()

    @staticmethod
    def _match(r, method=None, path=None, id=None, status=None, header=None,
               pred=None):
        if method is not None and r.method != method:
            return False
        if path is not None and r.path != path:
            return False
        if id is not None and r.id != id:
            return False
        if status is not None and r.status != status:
            return False
        if header is not None and header.lower() not in r.headers:
            return False
        if pred is not None and not pred(r):
            return False
        return True

    def find(self, **flt):
        return [r for r in self.all() if self._match(r, **flt)]

    def count(self, **flt):
        return len(self.find(**flt))

    def wait_for(self, n, timeout=5.0, **flt):
        end = time.time() + timeout
        with self._cond:
            while True:
                if sum(1 for r in self._reqs if self._match(r, **flt)) >= n:
                    return True
                left = end - time.time()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def quiet(self, period=0.3, timeout=5.0):
        """Wait until no request was logged for `period` seconds."""
        end = time.time() + timeout
        while time.time() < end:
            with self._lock:
                last = self.last_time
            idle = time.time() - last
            if idle >= period:
                return True
            time.sleep(min(period - idle, 0.05) + 0.01)
        return False

    def __len__(self):
        with self._lock:
            return len(self._reqs)


class _Fault:
    __slots__ = ("kind", "id", "times", "when", "params", "prob")

    def __init__(self, kind, id, times, when, params, prob=None):
        self.kind = kind
        self.id = id
        self.times = times
        self.when = when
        self.params = params
        self.prob = prob


class _FaultTable:
    """Per-id and global fault queues plus random faults; thread-safe."""

    def __init__(self, seed=0):
        self._lock = threading.Lock()
        self._queue = []
        self._rates = []
        self._rng = random.Random(seed)

    def add(self, kind, id, times, when, params):
        with self._lock:
            self._queue.append(_Fault(kind, id, times, when, params))

    def add_rate(self, kind, p, id, params):
        with self._lock:
            self._rates.append(_Fault(kind, id, None, None, params, prob=p))

    def clear(self):
        with self._lock:
            self._queue.clear()
            self._rates.clear()

    def pick(self, req):
        with self._lock:
            for want_id in (True, False):
                for f in self._queue:
                    if (f.id is not None) != want_id:
                        continue
                    if f.id is not None and f.id != req.id:
                        continue
                    if f.when is not None and not f.when(req):
                        continue
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._queue.remove(f)
                    return f
            for f in self._rates:
                if f.id is not None and f.id != req.id:
                    continue
                if self._rng.random() < f.prob:
                    return f
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    block_on_close = False

    def __init__(self, addr, handler, owner):
        self.owner = owner
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Broken pipes and resets are what the fault tests are about.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def close_all(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Abort(Exception):
    """Raised by a handler after it killed its own connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections
    server_version = "standin/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        if getattr(self.server.owner, "verbose", False):
            sys.stderr.write("%s %s\n" % (self.server.owner.name,
                                          fmt % args))

    # -- helpers shared by all servers
    def _begin(self):
        # Logged at once (then updated in place) so that a client that
        # got the answer always finds its request in the log.
        self.req = Req(self)
        self.server.owner.log.add(self.req)

    def _finish(self):
        if self.req is not None:
            self.req.done = True
        self.req = None

    def send_response(self, code, message=None):
        if getattr(self, "req", None) is not None:
            self.req.status = code
        super().send_response(code, message)

    def _send_simple(self, status, headers, body):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        have_len = False
        for k, v in (headers.items() if isinstance(headers, dict)
                     else headers):
            if k.lower() == "content-length":
                have_len = True
            self.send_header(k, v)
        if not have_len:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self._write(body)

    def _write(self, body, limit=None):
        mv = memoryview(body)
        n = len(mv) if limit is None else min(limit, len(mv))
        off = 0
        while off < n:
            chunk = mv[off:min(off + CHUNK, n)]
            self.wfile.write(chunk)
            off += len(chunk)
            self.req.bytes_sent += len(chunk)

    def _reset(self):
        """Drop the connection with an RST."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            fd = sock.detach()
            os.close(fd)
        except OSError:
            pass
        raise _Abort()

    def _stall(self, seconds):
        self.server.owner.stopping.wait(seconds)

    def _dispatch(self):
        self._begin()
        try:
            self.server.owner.handle(self)
        except _Abort:
            pass
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            self._finish()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch
    do_PATCH = do_OPTIONS = _dispatch


class _Base:
    name = "server"

    def __init__(self, port=0, verbose=False):
        self.log = RequestLog()
        self.port = port
        self.verbose = verbose
        self.stopping = threading.Event()
        self.httpd = None
        self.thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.httpd = _Server(("127.0.0.1", self.port), _Handler, self)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.close_all()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self.start() if self.httpd is None else self

    def __exit__(self, *exc):
        self.stop()


# -------------------------------------------------------------- data host

class Obj:
    __slots__ = ("data", "etag", "last_modified", "content_type", "filename")

    def __init__(self, data, content_type, filename, last_modified):
        self.data = bytes(data)
        self.etag = '"%s"' % hashlib.md5(self.data).hexdigest()
        self.last_modified = int(last_modified)
        self.content_type = content_type
        self.filename = filename


def parse_range(value, total):
    """Returns None (ignore the header), "416", or (start, end) inclusive."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value or "")
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    a, b = m.group(1), m.group(2)
    if a == "":
        n = int(b)
        if n == 0 or total == 0:
            return "416"
        return (max(0, total - n), total - 1)
    start = int(a)
    end = int(b) if b != "" else total - 1
    if b != "" and end < start:
        return None  # syntactically invalid: ignore (RFC 9110)
    if start >= total:
        return "416"
    return (start, min(end, total - 1))


class DataHost(_Base):
    name = "data"

    def __init__(self, secret=None, bucket="files", port=0,
                 check_signature=True, seed=0, verbose=False):
        super().__init__(port, verbose)
        self.secret = secret or secrets.token_bytes(32)
        if isinstance(self.secret, str):
            self.secret = self.secret.encode()
        self.bucket = bucket
        self.check_signature = check_signature
        self.objects = {}
        self._olock = threading.Lock()
        self.faults = _FaultTable(seed)
        self._idseq = 0

    # -- objects
    def put(self, data, id=None, content_type="application/octet-stream",
            filename=None, last_modified=None):
        with self._olock:
            if id is None:
                self._idseq += 1
                id = object_id("%s/%d/%s" % (self.bucket, self._idseq,
                                             secrets.token_hex(4)))
            if last_modified is None:
                last_modified = (int(time.time()) if id in self.objects
                                 else DEFAULT_LAST_MODIFIED)
            self.objects[id] = Obj(data, content_type, filename,
                                   last_modified)
        return id

    def get(self, id):
        with self._olock:
            return self.objects.get(id)

    def delete(self, id):
        with self._olock:
            self.objects.pop(id, None)

    def has(self, id):
        with self._olock:
            return id in self.objects

    # -- signing
    def sign(self, id, expires):
        return hmac.new(self.secret, ("%s:%d" % (id, expires)).encode(),
                        hashlib.sha256).hexdigest()

    def presign(self, id, expires_in=300, base=None):
        expires = int(time.time() + expires_in)
        if base is None:
            base = "%s/%s" % (self.url, self.bucket)
        return "%s/%s?X-Expires=%d&X-Signature=%s" % (
            base.rstrip("/"), id, expires, self.sign(id, expires))

    def auth_seen(self):
        return self.log.find(header="authorization")

    # -- faults
    def inject(self, kind, id=None, times=1, when=None, **params):
        self.faults.add(kind, id, times, when, params)

    def set_fault_rate(self, kind, p, id=None, **params):
        self.faults.add_rate(kind, p, id, params)

    def clear_faults(self):
        self.faults.clear()

    # -- serving
    def _path_id(self, path):
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == self.bucket:
            return parts[1]
        if len(parts) == 1:
            return parts[0]
        return None

    def handle(self, h):
        req = h.req
        req.id = self._path_id(req.path)
        xml = {"Content-Type": "application/xml"}

        if "authorization" in req.headers:
            return h._send_simple(400, xml, s3_error(
                "InvalidArgument", "Only one auth mechanism allowed; only "
                "the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be "
                "specified", req.path))
        if req.method == "HEAD":
            return h._send_simple(403, {}, b"")
        if req.method != "GET":
            return h._send_simple(405, xml, s3_error(
                "MethodNotAllowed", "The specified method is not allowed "
                "against this resource.", req.path))

        fault = self.faults.pick(req)
        if fault is not None:
            req.fault = fault.kind
        kind = fault.kind if fault else None
        p = fault.params if fault else {}

        if kind == "delay":
            h._stall(p.get("seconds", 1.0))
        elif kind == "slowdown":
            return h._send_simple(503, xml, s3_error(
                "SlowDown", "Please reduce your request rate.", req.path))
        elif kind == "expired":
            return h._send_simple(403, xml, s3_error(
                "AccessDenied", "Request has expired", req.path))
        elif kind == "status":
            return h._send_simple(p.get("status", 500), p.get("headers", {}),
                                  p.get("body", b""))
        elif kind == "redirect":
            loc = p.get("location") or (self.url + h.path)
            return h._send_simple(p.get("status", 302), {"Location": loc},
                                  b"")

        if self.check_signature:
            exp = req.query.get("X-Expires", "")
            sig = req.query.get("X-Signature", "")
            if not exp.isdigit() or req.id is None or not hmac.compare_digest(
                    sig, self.sign(req.id, int(exp))):
                return h._send_simple(403, xml, s3_error(
                    "AccessDenied", "Signature does not match", req.path))
            if int(exp) < time.time():
                return h._send_simple(403, xml, s3_error(
                    "AccessDenied", "Request has expired", req.path))

        obj = self.get(req.id) if req.id else None
        if obj is None:
            return h._send_simple(404, xml, s3_error(
                "NoSuchKey", "The specified key does not exist.", req.path))

        im = req.headers.get("if-match")
        if im is not None and im.strip() != "*" and obj.etag not in [
                t.strip() for t in im.split(",")]:
            return h._send_simple(412, xml, s3_error(
                "PreconditionFailed", "At least one of the pre-conditions "
                "you specified did not hold", req.path))

        total = len(obj.data)
        rng = None
        if req.range is not None and kind != "ignore_range":
            rng = parse_range(req.range, total)
        common = [("Last-Modified", http_date(obj.last_modified)),
                  ("ETag", obj.etag),
                  ("Accept-Ranges", "bytes"),
                  ("Content-Type", obj.content_type)]
        if obj.filename:
            common.append(("Content-Disposition",
                           'attachment; filename="%s"' % obj.filename))
        if kind == "many_headers":
            common += [("X-Amz-Meta-Junk-%d" % i, "v%d" % i)
                       for i in range(p.get("count", 5000))]
        elif kind == "giant_header":
            common.append(("X-Amz-Meta-Giant", "g" * p.get("size", 1 << 20)))

        if rng == "416" or (kind == "range_416" and rng is not None):
            return h._send_simple(416, [
                kv for kv in common if kv[0] != "Content-Type"] + [
                ("Content-Range", "bytes */%d" % total),
                ("Content-Type", "application/xml")],
                s3_error("InvalidRange", "The requested range is not "
                         "satisfiable", req.path))
        if rng is None:
            status, start, end = 200, 0, total - 1
        else:
            status, (start, end) = 206, rng
        length = end - start + 1 if total else 0
        body = memoryview(obj.data)[start:start + length]

        extra = b""
        if kind == "long_body":
            n = p.get("extra", 4096)
            extra = (obj.data[start + length:start + length + n]
                     + b"\xee" * n)[:n]
        h.send_response(status)
        for k, v in common:
            h.send_header(k, v)
        if status == 206:
            cr = "bytes %d-%d/%d" % (start, end, total)
            if kind == "bad_content_range":
                if "value" in p:
                    cr = p["value"]
                else:
                    s = p.get("shift", 1)
                    cr = "bytes %d-%d/%d" % (start + s, end + s, total)
            h.send_header("Content-Range", cr)
        h.send_header("Content-Length", str(length + len(extra)))
        h.end_headers()

        if kind == "reset":
            h._write(body, limit=p.get("after", 0))
            h._reset()
        if kind == "stall":
            after = p.get("after", 0)
            h._write(body, limit=after)
            h._stall(p.get("seconds", 60))
            then = p.get("then", "continue")
            if then == "reset":
                h._reset()
            if then == "close":
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                raise _Abort()
            body = body[after:]
        h._write(body)
        if extra:
            h._write(extra)


# ----------------------------------------------------------------- the API

class ApiServer(_Base):
    name = "api"

    def __init__(self, key, data=None, data_base=None, bucket="files",
                 expires_in=300, rate=None, port=0, ids=None, verbose=False,
                 seed=0):
        super().__init__(port, verbose)
        self.key = key
        self.data = data
        self.data_base = data_base.rstrip("/") if data_base else None
        self.bucket = bucket
        self.expires_in = expires_in
        self.expires_for = {}
        self.rate = rate
        self.ids = set(ids or ())
        self.secret = data.secret if data else secrets.token_bytes(32)
        self.issued = []
        self.faults = _FaultTable(seed)
        self._rl_lock = threading.Lock()
        self._rl = {}

    def inject(self, id=None, status=None, body=None, json=None,
               headers=None, delay=0, times=1, expires_in=None, url=None,
               reset=False, when=None):
        self.faults.add("api", id, times, when, dict(
            status=status, body=body, json=json, headers=headers or {},
            delay=delay, expires_in=expires_in, url=url, reset=reset))

    def clear_faults(self):
        self.faults.clear()

    def known(self, id):
        if self.data is not None:
            return self.data.has(id)
        return id in self.ids or id.lower() in self.ids

    def sign_url(self, id, expires_in):
        if self.data is not None and self.data_base is None:
            return self.data.presign(id, expires_in)
        expires = int(time.time() + expires_in)
        sig = hmac.new(self.secret, ("%s:%d" % (id, expires)).encode(),
                       hashlib.sha256).hexdigest()
        return "%s/%s?X-Expires=%d&X-Signature=%s" % (
            self.data_base, id, expires, sig)

    def download_body(self, id, expires_in=None):
        if expires_in is None:
            expires_in = self.expires_for.get(id, self.expires_in)
        # The URL itself stays valid for a sane time even when the
        # advertised expiresIn is absurd (0, negative, 1e12).
        life = expires_in if 1 <= expires_in <= 7 * 86400 else 300
        url = self.sign_url(id, life)
        return {"data": {"url": url, "expiresIn": expires_in}}

    def _rate_ok(self, key):
        if not self.rate:
            return True, 0
        n, window = self.rate
        now = time.time()
        with self._rl_lock:
            q = self._rl.setdefault(key, deque())
            while q and q[0] <= now - window:
                q.popleft()
            if len(q) >= n:
                return False, max(1, int(q[0] + window - now + 0.999))
            q.append(now)
            return True, 0

    def _json(self, h, status, obj, headers=None):
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        h._send_simple(status, hdrs, json.dumps(obj).encode())

    def handle(self, h):
        req = h.req
        m = re.fullmatch(r"/v1/files/([^/]*)/download", req.path)
        if m:
            req.id = urllib.parse.unquote(m.group(1))

        fault = self.faults.pick(req)
        p = fault.params if fault else None
        if fault:
            req.fault = "api"
            if p["delay"]:
                h._stall(p["delay"])
            if p["reset"]:
                h._reset()
            if p["status"] is not None:
                body = p["body"]
                if p["json"] is not None:
                    body = json.dumps(p["json"]).encode()
                    hdrs = {"Content-Type": "application/json"}
                else:
                    hdrs = {}
                hdrs.update(p["headers"])
                return h._send_simple(p["status"], hdrs, body or b"")

        auth = req.headers.get("authorization")
        if auth is None:
            return self._json(h, 401, api_error(
                "Unauthorized", "Authorization", None,
                "Missing API key"))
        if auth != "Bearer " + self.key:
            return self._json(h, 401, api_error(
                "Unauthorized", "Authorization", None, "Invalid API key"))
        ok, retry = self._rate_ok(auth)
        if not ok:
            return self._json(h, 429, api_error("Too Many Requests"),
                              {"Retry-After": str(retry)})
        if not m or req.method != "GET":
            return self._json(h, 404, api_error("Not Found"))
        if not is_object_id(req.id):
            return self._json(h, 400, api_error(
                "Bad Request", "fileId", req.id,
                "fileId must be a valid ObjectId"))
        if not self.known(req.id):
            return self._json(h, 404, api_error(
                "Not Found", "fileId", req.id, "File not found"))
        exp = self.expires_for.get(req.id, self.expires_in)
        if p and p["expires_in"] is not None:
            exp = p["expires_in"]
        body = self.download_body(req.id, exp)
        if p and p["url"] is not None:
            body["data"]["url"] = p["url"]
        self.issued.append((req.id, body["data"]["url"]))
        hdrs = p["headers"] if p else {}
        return self._json(h, 200, body, hdrs)


# ---------------------------------------------------------------- recorder

class Recorder(_Base):
    name = "recorder"

    def __init__(self, status=200, body=b"", headers=None, port=0,
                 verbose=False):
        super().__init__(port, verbose)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.responder = None

    def handle(self, h):
        if self.responder:
            status, headers, body = self.responder(h, h.req)
        else:
            status, headers, body = self.status, self.headers, self.body
        h._send_simple(status, headers, body)


# -------------------------------------------------------------------- CLI

SAMPLE_README = """\
cpfs sample file
================

This text lives on the local stand-in data host.  You are reading it
through cpfs: the kernel asked cpfs for the bytes, cpfs asked the
stand-in API for a presigned URL, then fetched them with a range request.
"""


def sample_files():
    """[(id, bytes, name, content type)] - deterministic."""
    rows = ["id,name,amount,currency"]
    for i in range(1, 201):
        rows.append("%d,customer-%03d,%d.%02d,EUR" % (i, i, i * 7 % 500,
                                                       i % 100))
    csv = ("\n".join(rows) + "\n").encode()
    return [
        (object_id("sample/readme"), SAMPLE_README.encode(), "README.txt",
         "text/plain"),
        (object_id("sample/orders.csv"), csv, "orders.csv", "text/csv"),
        (object_id("sample/blob.bin"), make_bytes(5 << 20, seed=42),
         "blob.bin", "application/octet-stream"),
    ]


def _main(argv=None):
    ap = argparse.ArgumentParser(description="Checkout Page API stand-in")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--sample", action="store_true")
    src.add_argument("--files-dir")
    ap.add_argument("--data-base")
    ap.add_argument("--key", default=os.environ.get("CHECKOUTPAGE_API_KEY",
                                                    "test-key"))
    ap.add_argument("--api-port", type=int, default=0)
    ap.add_argument("--data-port", type=int, default=0)
    ap.add_argument("--expires", type=int, default=300)
    ap.add_argument("--rate")
    ap.add_argument("--manifest-out")
    ap.add_argument("--port-file")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)

    rate = None
    if a.rate:
        m = re.fullmatch(r"(\d+)/(\d+(?:\.\d+)?)", a.rate)
        if not m:
            ap.error("--rate wants N/WINDOW, e.g. 100/60")
        rate = (int(m.group(1)), float(m.group(2)))

    files = []  # (id, bytes or None, name, type, size)
    if a.files_dir:
        for name in sorted(os.listdir(a.files_dir)):
            path = os.path.join(a.files_dir, name)
            if is_object_id(name) and os.path.isfile(path):
                files.append((name, path, name, "application/octet-stream",
                              os.path.getsize(path)))
    elif a.sample or not a.files_dir:
        files = [(i, d, n, t, len(d)) for i, d, n, t in sample_files()]

    data = None
    if a.data_base:
        api = ApiServer(a.key, data_base=a.data_base, expires_in=a.expires,
                        rate=rate, port=a.api_port, verbose=a.verbose,
                        ids={f[0] for f in files})
    else:
        data = DataHost(port=a.data_port, verbose=a.verbose)
        for oid, d, name, ctype, _ in files:
            if isinstance(d, str):
                with open(d, "rb") as fh:
                    d = fh.read()
            data.put(d, id=oid, content_type=ctype, filename=name)
        data.start()
        api = ApiServer(a.key, data=data, expires_in=a.expires, rate=rate,
                        port=a.api_port, verbose=a.verbose)
    api.start()

    if a.manifest_out:
        with open(a.manifest_out, "w") as fh:
            fh.write("# cpfs ids manifest written by standin.py\n")
            for oid, _, name, ctype, size in files:
                fh.write(manifest_line(oid, size=size, name=name, type=ctype)
                         + "\n")
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d %d\n" % (api.port, data.port if data else 0))
        os.replace(tmp, a.port_file)
    print(api.url, flush=True)

    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    while not done.wait(1):
        pass
    api.stop()
    if data:
        data.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
