#!/usr/bin/python3
"""
standin.py - local stand-ins for the Checkout Page API, its S3 data host and
the public image host.

Python 3 standard library only.  Importable (the pytest fixtures in
tests/integration/conftest.py use it) and runnable as a CLI (tests/try.sh and
the benchmark use it).  All servers are threaded HTTP/1.1 keep-alive servers
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

    # the whole account (SPEC 6): pages, events, products, public images
    images = ImageHost().start()                 # start it before add_image
    store = Store()
    ex = make_store(data, images, store, pages=250)   # -> Expect
    api = ApiServer(key="k", data=data, store=store, images=images).start()
    ...  cpfs (discovery on: no ids=) ...
    api.list_calls(), api.discovery_calls()
    images.log.count(id=fid, method="GET"); images.auth_seen() == []

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
    req.id          the file id the path names, or None (API: the file,
                    product or event id, see ApiServer)
    req.kind        API only: "download", "checkout-pages", "events",
                    "product", "ticket-groups", "ticket-types", else None
    req.range       the Range header value or None
    req.status      status sent (None if the connection died before)
    req.bytes_sent  body bytes written
    req.fault       name of the injected fault, or None
    req.client_port peer port (one value per TCP connection)
    req.conn_time   time.time() when the server accepted that connection
    req.done        True once the handler finished with it

    log.all()                        -> list copy
    log.count(**flt) / log.find(**flt)
        filters: method=, path=, id=, kind=, status=, header="name"
        (present), pred=callable(req)
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

ImageHost (public image host, purpose "image")
----------------------------------------------
    ImageHost(port=0, verbose=False, seed=0)      a DataHost subclass
    .start() / .stop() / .url
    .put(data, id=None, name="image.jpg", content_type="image/jpeg",
         last_modified=None) -> id
    .url_for(id) -> "http://127.0.0.1:PORT/images/<id>/<name>" (name
        URL-quoted; raises if the host is not started)
    .get / .delete / .has, .inject / .set_fault_rate / .clear_faults (the
        same fault kinds as DataHost), .log (req.id = the file id),
        .auth_seen() -> requests that carried Authorization (must be [])

  Behaviour: exactly DataHost's Range/416/ETag/Last-Modified/If-Match(412)
  answers, but no signature and no query needed.  HEAD is answered like
  GET without a body (200/206/416).  A request with an Authorization
  header is answered normally (and shows in auth_seen()).  The path must
  be /images/<id>/<name> with the object's own name, else 404 NoSuchKey.

Store (the account: pages, events, products, tickets)
-----------------------------------------------------
    store = Store(seed=None)    seed: fixed salt for the ids it invents
    Thread-safe: every method takes store.lock (an RLock) and the API
    serialises its answers under it, so a test may change the store while
    cpfs walks it.  Objects passed in are deep-copied; the dicts returned
    are the stored ones (change them only under store.lock, or with
    update_page).  Insertion order is list order.

    store.add_image(images_host, data, name="image.jpg", width=None,
                    height=None, content_type="image/jpeg", id=None,
                    last_modified=None) -> IMAGE
        puts the bytes on the (started) ImageHost; IMAGE is
        {"fileId","url","name","size","width","height"} (width/height
        default to the PNG header's, else 1920x1080)
    store.add_page(name=None, slug=None, images=(), product_ids=(),
                   extra=None, event=False, id=None, product_form=None)
        -> page dict {"id","sellerId","name","slug","status","type",
           "title","description","currency","createdAt","images":[IMAGE],
           "fields":[..],"products":[..],"settings":{..}} (+ "startsAt",
           "venue" for events).  id: a fresh ObjectId; name None:
           "Checkout page N"/"Event N"; slug None: from the name.
           product_form: "products" -> "products":[{"id":pid,"quantity":1}],
           "fields" -> "fields":[..,{"type":"product","productId":pid}],
           "both"; None alternates "products"/"fields".  extra: members
           merged in last (e.g. {"theme":{"logo":IMAGE}}, {"name": None}).
           event=True puts it in the events list.
    store.add_product(name=None, media=(), file_ids=(), variant_images=(),
                      extra=None, id=None)
        -> {"id","sellerId","name",..,"media":[IMAGE],"fileIds":[id..],
            "variants":[{"id","name","options":[{"id","name","image"}]}]}
           one "Colour" option per variant image; none: one "Size" option
           with "image": null.  file_ids are DataHost ids (private files).
    store.add_ticket_group(event_id, name=None, id=None) -> {"id",
        "eventId","name","sortOrder"}            (KeyError: not an event)
    store.add_ticket_type(event_id, group_id, name=None, image=None,
                          id=None) -> {"id","groupId","name","price",
                          "currency","quantity","image":IMAGE|null}
    store.remove_page(id) -> bool     (pages or events, with their tickets)
    store.remove_product(id) -> bool
    store.update_page(id, **members) -> page
    store.pages / .events / .products  dicts id -> object
    store.groups[event_id] / store.types[(event_id, group_id)]
    store.images                       fileId -> IMAGE of every add_image
    store.list_hook = None | callable(kind, query) -> (status, obj) | None
        consulted first (after auth and rate limit) by every list call;
        kind "checkout-pages" or "events", query the dict of the query
        string; a tuple is answered as JSON (obj any JSON value or bytes),
        None falls through to the store.  E.g. a cursor that never moves:
          store.list_hook = lambda kind, q: (200, {"has_more": True,
              "total": 1, "data": [page]}) if kind == "checkout-pages"
              else None
    display_name(obj) -> its name, else slug, else id (non-empty strings)

ApiServer (Checkout Page API stand-in)
--------------------------------------
    ApiServer(key, data=None, data_base=None, bucket="files",
              expires_in=300, rate=None, port=0, ids=None, store=None,
              images=None)
      data       a DataHost: its objects are the known ids, URLs point at it
      data_base  external data host base URL instead (url = base/<id>?...),
                 known ids = `ids` (a set you may mutate)
      rate       (N, W): at most N requests per sliding W seconds per key,
                 else 429 with Retry-After
      store      the account the discovery calls answer from (.store; an
                 empty Store when None: every list is empty)
      images     the ImageHost: its ids are images too (see /download)
    .start() / .stop() / .url
    .expires_for[id] = N      per-id expiresIn override
    .issued                   list of (id, url) handed out
    .download_body(id, expires_in=None) -> the dict a 200 would carry
    .list_calls()      GETs to the two list endpoints (any answer)
    .discovery_calls() GETs to any of the five discovery endpoints

  Every endpoint: no/wrong "Authorization: Bearer <key>" -> 401; then the
  rate limit (one budget for all calls) -> 429; unknown path or a method
  other than GET -> 404.  Error bodies have the documented shape
  {"status":"error","type":"error","message":..,"errors":[{"param",
  "message","value"}]}.

  GET /v1/files/{id}/download  (req.kind "download", req.id the file id)
    id not an ObjectId -> 400; an image id (store.add_image, or on
    `images`) -> 400 "File is not in the files bucket ..."; unknown id ->
    404; else 200 {"data":{"url":..., "expiresIn":N}}.
  GET /v1/checkout-pages/ and GET /v1/events/   (trailing "/" optional;
    req.kind "checkout-pages" / "events")
    list_hook first; limit (default 20) must be an integer 1-100, else
    400; starting_after must be the id of an item of that list (not an
    ObjectId, unknown or removed -> 400); answers 200 {"has_more":bool,
    "total":N,"data":[page..]} with the items after starting_after in
    insertion order.
  GET /v1/products/{id}  (req.id the product id)  -> {"data":PRODUCT}
  GET /v1/events/{id}/ticket-groups  (req.id the event id) -> {"data":[..]}
  GET /v1/events/{id}/ticket-groups/{gid}/ticket-types  (req.id the event
    id) -> {"data":[ticket type..]}
    An id that is not an ObjectId -> 400; unknown product, event (a
    checkout page is not an event) or group -> 404.

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
  Faults are picked by req.id, so api.inject(pid, status=500) hits the
  calls for product (or event) pid; a global fault (id None) hits every
  call, discovery included - narrow it with
  when=lambda r: r.kind == "download" (or r.path.startswith(...)).

make_store (a deterministic sample account)
-------------------------------------------
    make_store(data, images, store, pages=250, events=12, products=40,
               seed=0, private_per_product=1, image_size=(2000, 40000),
               decoys=False) -> Expect
      data: the DataHost (private files), images: the started ImageHost.
      Ids, names and bytes depend only on `seed` (a second call on the
      same store needs another seed).  The shape:
      - products first: each has 1-3 "media" images (the first one named
        "product-image.jpg", so names repeat across products),
        `private_per_product` private files in "fileIds" (on `data`,
        filename "download-JJ-K.pdf", application/pdf) and one "Colour"
        variant option image;
      - pages: 1-3 "images" each (about 5% reuse an earlier page's
        image), about half refer to 1-2 products - odd pages through
        "products":[{"id"}], even pages through {"type":"product",
        "productId"} fields; every product is referred to at least once
        when there are enough pages.  Unknown members: every 10th page
        (i % 10 == 3) has "theme":{"logo":IMAGE}, i % 25 == 7 has
        "sections":[{"blocks":[..,{"type":"image","image":IMAGE}]}],
        i % 30 == 11 has "upsell":{"productId":pid} (a reference too).
        decoys=True adds {"decoy":{"fileId":"not-an-object-id","url":5,
        "fileIds":["nope",12]}} to i % 40 == 5 (not files).
        Names "Checkout page NNN", except: page 4 has name "" (display
        name = its slug "page-004"), page 9 has name null and slug ""
        (display name = its id), page 14 is "Sale 50% / today", page 19
        reuses page 0's name.
      - events "Event EE" with 1-2 images, every 4th (e % 4 == 1) refers
        to a product, 1-2 ticket groups with 1-2 ticket types each, every
        ticket type with an image.
      Image bytes start with a JPEG magic, sizes uniform in image_size.

    Expect (what a complete discovery walk finds):
      .files     fileId -> bytes, every discoverable file
      .images    set of image ids (public, read from their url)
      .private   set of private ids (fileIds; read through /download)
      .names     fileId -> name known from the JSON (images only)
      .filenames private fileId -> filename the data host knows
      .meta      image fileId -> {"width","height","url","size"}
      .by_page   owner id -> (display name, set of fileIds) for every
                 page, event and product that refers to at least one
                 file: a page's own object (not its products' files), an
                 event's object plus its ticket types' images, a
                 product's media, fileIds and variant images.  Display
                 names are raw (apply the by-name rule yourself).
      .pages / .events / .products   ids in creation order
      .unreachable  products no page refers to (their files are absent
                 from .files and .by_page)

    sample_store(data, images, store, files): the --sample account.
    make_png(width, height, seed=0) -> bytes of a real RGB PNG.
    png_size(data) -> (width, height) or None.

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
    object_id(seed_text) -> deterministic 24-hex id (a 2020-2024 creation
                             time in its first 4 bytes, like MongoDB's)
    is_object_id(s)
    manifest_line(id, size=None, name=None, type=None, created_at=None,
                  purpose="files", location=None) -> JSON line (upload shape)

CLI
===
    python3 tests/standin/standin.py [--sample | --files-dir DIR]
        [--data-base URL] [--key KEY] [--api-port N] [--data-port N]
        [--image-port N] [--expires N] [--rate N/WINDOW]
        [--manifest-out PATH] [--port-file PATH]
        [--store-pages N [--store-events N] [--store-products N]
         [--store-private N] [--store-seed N] [--expect-out PATH]]
        [--verbose]

Prints the API URL on stdout and runs until SIGTERM/SIGINT.  --port-file
gets "api_port data_port image_port\\n" once all listen (data_port 0 with
--data-base).  The key defaults to $CHECKOUTPAGE_API_KEY, else "test-key".

--sample (the default without --files-dir) serves the three sample files
(README.txt, orders.csv, blob.bin) as the private "fileIds" of a "Digital
download" product, plus nine small real PNGs on the image host: pages
"Summer sale" (2 images, the download product through "products") and
"Workshop" (1 image, a theme logo, the "T-shirt" product through a
productId field), event "Meetup" (1 image; ticket group "General" with
ticket type "Standard" and its image), products "Digital download" (cover
image + the 3 files) and "T-shirt" (1 media image, 1 variant image).
--manifest-out lists only the private files, as before.  --store-pages N
adds a make_store() account (events/products/private/seed from the other
--store-* options; needs the local data host); --expect-out writes its
Expect as JSON ({"files": {id: {"size","sha256","purpose","name"}},
"by_page": {owner: [name, [ids]]}, "pages", "events", "products"}).
"""

import argparse
import copy
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
import zlib
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 256 * 1024
OBJECT_ID_RE = re.compile(r"^[0-9a-fA-F]{24}$")
DEFAULT_LAST_MODIFIED = 1700000000  # 2023-11-14T22:13:20Z


# ---------------------------------------------------------------- helpers

def is_object_id(s):
    return bool(OBJECT_ID_RE.match(s or ""))


def object_id(seed_text):
    """A deterministic 24-hex id derived from `seed_text`, shaped like a
    real ObjectId: its first 4 bytes are a creation time (in 2020-2024),
    as MongoDB writes them."""
    h = hashlib.sha1(str(seed_text).encode()).hexdigest()
    created = 1577836800 + int(h[:8], 16) % (5 * 365 * 86400)
    return "%08x%s" % (created, h[8:24])


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
                 "id", "kind", "range", "status", "bytes_sent", "fault",
                 "client_port", "conn_time", "done")

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
        self.kind = None
        self.status = None
        self.bytes_sent = 0
        self.fault = None
        self.client_port = handler.client_address[1]
        self.conn_time = handler.server.accepted_at(handler.request)
        self.done = False

    def __repr__(self):
        return ("<Req %s %s id=%s kind=%s range=%s status=%s sent=%d "
                "fault=%s>" % (self.method, self.path, self.id, self.kind,
                               self.range, self.status, self.bytes_sent,
                               self.fault))


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
               pred=None, kind=None):
        if method is not None and r.method != method:
            return False
        if kind is not None and r.kind != kind:
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
        self.conns = {}  # socket -> when it was accepted
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        # Runs in the accepting thread, right after accept().
        with self.conns_lock:
            self.conns[request] = time.time()
        super().process_request(request, client_address)

    def accepted_at(self, request):
        with self.conns_lock:
            return self.conns.get(request)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.pop(request, None)
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
    # S3 with a presigned URL: a request that also carries Authorization is
    # refused, and the signature covers GET only.  ImageHost (public
    # objects) answers both normally.
    reject_auth = True
    allow_head = False

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
    def _lookup(self, req):
        return self.get(req.id) if req.id else None

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

        if self.reject_auth and "authorization" in req.headers:
            return h._send_simple(400, xml, s3_error(
                "InvalidArgument", "Only one auth mechanism allowed; only "
                "the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be "
                "specified", req.path))
        if req.method == "HEAD" and not self.allow_head:
            return h._send_simple(403, {}, b"")
        if req.method not in ("GET", "HEAD"):
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

        obj = self._lookup(req)
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
        if req.method == "HEAD":
            return

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


# ------------------------------------------------------------- image host

class ImageHost(DataHost):
    """Public S3-like host of the account's images (purpose "image").

    Same Range/ETag/If-Match/fault behaviour as DataHost, but no signature:
    an object is at /images/<id>/<name> for anyone.  HEAD is answered (200
    or 206, headers only).  A request carrying Authorization is answered
    normally and recorded (auth_seen() must stay [] for cpfs).
    """

    name = "images"
    reject_auth = False
    allow_head = True

    def __init__(self, port=0, verbose=False, seed=0):
        super().__init__(bucket="images", port=port, check_signature=False,
                         seed=seed, verbose=verbose)

    def put(self, data, id=None, name="image.jpg", content_type="image/jpeg",
            last_modified=None):
        return super().put(data, id=id, content_type=content_type,
                           filename=name, last_modified=last_modified)

    def url_for(self, id):
        obj = self.get(id)
        if obj is None:
            raise KeyError(id)
        if not self.port:
            raise RuntimeError("start() the ImageHost before url_for()")
        return "%s/images/%s/%s" % (self.url, id,
                                    urllib.parse.quote(obj.filename or ""))

    def _path_id(self, path):
        parts = path.split("/")
        if len(parts) == 4 and parts[0] == "" and parts[1] == self.bucket:
            return parts[2] or None
        return None

    def _lookup(self, req):
        # The key is "<id>/<name>": a wrong name is another (missing) key.
        obj = self.get(req.id) if req.id else None
        if obj is None:
            return None
        name = urllib.parse.unquote(req.path.rsplit("/", 1)[1])
        return obj if name == (obj.filename or "") else None


# ------------------------------------------------------------ the account

def display_name(obj):
    """The by-page/ folder name of a page, event or product (SPEC 6.2):
    its name, else its slug, else its id (empty or non-string = absent)."""
    for key in ("name", "slug", "id"):
        v = obj.get(key)
        if isinstance(v, str) and v:
            return v
    return ""


def _slugify(text):
    return re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")


def png_size(data):
    """(width, height) of PNG bytes, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


class Store:
    """The account's pages, events, products and tickets; thread-safe.

    Every method takes `self.lock` (an RLock); the API serialises its
    answers under it, so a test may mutate the store while cpfs walks it.
    Objects handed in (images, extra) are deep-copied; the dicts returned
    are the stored ones: change them only under `store.lock`.
    """

    LIST_KINDS = ("checkout-pages", "events")

    def __init__(self, seed=None):
        self.lock = threading.RLock()
        self.pages = {}      # id -> page, insertion order = list order
        self.events = {}     # id -> event page
        self.products = {}   # id -> product
        self.groups = {}     # event id -> {group id -> group}
        self.types = {}      # (event id, group id) -> {type id -> type}
        self.images = {}     # fileId -> IMAGE dict (all add_image calls)
        self.list_hook = None
        self._salt = (secrets.token_hex(6) if seed is None else str(seed))
        self._seq = 0
        self._forms = 0
        self.seller_id = object_id("seller/" + self._salt)

    def new_id(self, kind="obj"):
        with self.lock:
            self._seq += 1
            return object_id("store/%s/%s/%d" % (self._salt, kind, self._seq))

    # -- building
    def add_image(self, images_host, data, name="image.jpg", width=None,
                  height=None, content_type="image/jpeg", id=None,
                  last_modified=None):
        """Puts `data` on the ImageHost (started) and returns the IMAGE
        dict.  width/height default to the PNG header's, else 1920x1080."""
        dims = png_size(data) or (1920, 1080)
        fid = images_host.put(data, id=id, name=name,
                              content_type=content_type,
                              last_modified=last_modified)
        img = {"fileId": fid, "url": images_host.url_for(fid), "name": name,
               "size": len(data),
               "width": dims[0] if width is None else width,
               "height": dims[1] if height is None else height}
        with self.lock:
            self.images[fid] = img
        return dict(img)

    def add_page(self, name=None, slug=None, images=(), product_ids=(),
                 extra=None, event=False, id=None, product_form=None):
        """A checkout page (event=True: an event page).  name None = an
        automatic "Checkout page N" / "Event N"; slug None = from the name
        (else "page-N").  product_form: "products" (a
        "products":[{"id","quantity"}] array), "fields" (a
        {"type":"product","productId"} field), "both"; None alternates
        "products" and "fields" page by page.  `extra` members are merged
        in last (e.g. {"name": None} for a page without a name)."""
        with self.lock:
            table = self.events if event else self.pages
            n = len(table) + 1
            pid = id or self.new_id("event" if event else "page")
            if name is None:
                name = ("Event %d" if event else "Checkout page %d") % n
            if slug is None:
                slug = _slugify(name) or "page-%d" % n
            if product_form is None:
                self._forms += 1
                product_form = "products" if self._forms % 2 else "fields"
            page = {
                "id": pid,
                "sellerId": self.seller_id,
                "name": name,
                "slug": slug,
                "status": "active",
                "type": "event" if event else "checkout",
                "title": name,
                "description": "Stand-in page %d" % n,
                "currency": "EUR",
                "createdAt": iso_date(DEFAULT_LAST_MODIFIED + n * 3600),
                "images": copy.deepcopy(list(images)),
                "fields": [{"type": "email", "name": "email",
                            "label": "Email", "required": True}],
                "products": [],
                "settings": {"collectAddress": False, "locale": "en"},
            }
            if product_form in ("products", "both"):
                page["products"] = [{"id": p, "quantity": 1}
                                    for p in product_ids]
            if product_form in ("fields", "both"):
                page["fields"] += [{"type": "product", "label": "Product",
                                    "productId": p} for p in product_ids]
            if event:
                page["startsAt"] = iso_date(DEFAULT_LAST_MODIFIED
                                            + 86400 * (30 + n))
                page["venue"] = {"name": "Hall %d" % n, "city": "Utrecht"}
            page.update(copy.deepcopy(extra or {}))
            table[pid] = page
            if event:
                self.groups.setdefault(pid, {})
            return page

    def add_product(self, name=None, media=(), file_ids=(),
                    variant_images=(), extra=None, id=None):
        """A product.  Each variant image is the image of one option of a
        "Colour" variant; without any, one "Size" option with "image":
        null."""
        with self.lock:
            pid = id or self.new_id("product")
            if name is None:
                name = "Product %d" % (len(self.products) + 1)
            if variant_images:
                options = [{"id": self.new_id("option"),
                            "name": "Option %d" % (k + 1),
                            "image": copy.deepcopy(img)}
                           for k, img in enumerate(variant_images)]
                variants = [{"id": self.new_id("variant"), "name": "Colour",
                             "options": options}]
            else:
                variants = [{"id": self.new_id("variant"), "name": "Size",
                             "options": [{"id": self.new_id("option"),
                                          "name": "One size",
                                          "image": None}]}]
            prod = {
                "id": pid,
                "sellerId": self.seller_id,
                "name": name,
                "description": "Stand-in product",
                "price": 1900,
                "currency": "EUR",
                "type": "digital" if file_ids else "physical",
                "media": copy.deepcopy(list(media)),
                "fileIds": list(file_ids),
                "variants": variants,
                "createdAt": iso_date(DEFAULT_LAST_MODIFIED),
            }
            prod.update(copy.deepcopy(extra or {}))
            self.products[pid] = prod
            return prod

    def add_ticket_group(self, event_id, name=None, id=None):
        with self.lock:
            if event_id not in self.events:
                raise KeyError("no event %s" % event_id)
            groups = self.groups.setdefault(event_id, {})
            gid = id or self.new_id("group")
            group = {"id": gid, "eventId": event_id,
                     "name": name or "Group %d" % (len(groups) + 1),
                     "sortOrder": len(groups)}
            groups[gid] = group
            self.types[(event_id, gid)] = {}
            return group

    def add_ticket_type(self, event_id, group_id, name=None, image=None,
                        id=None):
        with self.lock:
            types = self.types.get((event_id, group_id))
            if types is None:
                raise KeyError("no ticket group %s/%s" % (event_id, group_id))
            tid = id or self.new_id("ticket")
            tt = {"id": tid, "groupId": group_id,
                  "name": name or "Ticket %d" % (len(types) + 1),
                  "price": 2500, "currency": "EUR", "quantity": 100,
                  "image": copy.deepcopy(image)}
            types[tid] = tt
            return tt

    # -- mutating
    def remove_page(self, id):
        """Removes a page or event (and its ticket groups); False if
        unknown."""
        with self.lock:
            if self.pages.pop(id, None) is not None:
                return True
            if self.events.pop(id, None) is None:
                return False
            for gid in self.groups.pop(id, {}):
                self.types.pop((id, gid), None)
            return True

    def remove_product(self, id):
        with self.lock:
            return self.products.pop(id, None) is not None

    def update_page(self, id, **members):
        """Sets members of a page or event (deep-copied)."""
        with self.lock:
            page = self.pages.get(id) or self.events[id]
            page.update(copy.deepcopy(members))
            return page

    # -- answers of the API (JSON bytes, serialised under the lock)
    def list_answer(self, kind, limit, starting_after=None):
        """(status, body) of a validated list call; 400 for an unknown
        cursor."""
        with self.lock:
            table = self.pages if kind == "checkout-pages" else self.events
            ids = list(table)
            start = 0
            if starting_after is not None:
                if starting_after not in table:
                    return 400, json.dumps(api_error(
                        "Bad Request", "starting_after", starting_after,
                        "starting_after must be the id of an object in "
                        "this list")).encode()
                start = ids.index(starting_after) + 1
            chunk = ids[start:start + limit]
            return 200, json.dumps({
                "has_more": start + limit < len(ids),
                "total": len(ids),
                "data": [table[i] for i in chunk]}).encode()

    def product_answer(self, pid):
        with self.lock:
            p = self.products.get(pid)
            return None if p is None else json.dumps({"data": p}).encode()

    def groups_answer(self, event_id):
        with self.lock:
            if event_id not in self.events:
                return None
            return json.dumps({"data": list(
                self.groups.get(event_id, {}).values())}).encode()

    def types_answer(self, event_id, group_id):
        with self.lock:
            if event_id not in self.events:
                return None
            types = self.types.get((event_id, group_id))
            if types is None:
                return None
            return json.dumps({"data": list(types.values())}).encode()

    def is_image(self, fid):
        with self.lock:
            return fid in self.images


# ----------------------------------------------------------------- the API

_ROUTES = [
    (re.compile(r"/v1/files/([^/]*)/download"), "download"),
    (re.compile(r"/v1/checkout-pages/?"), "checkout-pages"),
    (re.compile(r"/v1/events/?"), "events"),
    (re.compile(r"/v1/products/([^/]*)/?"), "product"),
    (re.compile(r"/v1/events/([^/]*)/ticket-groups/?"), "ticket-groups"),
    (re.compile(r"/v1/events/([^/]*)/ticket-groups/([^/]*)/ticket-types/?"),
     "ticket-types"),
]
LIST_KINDS = ("checkout-pages", "events")
DISCOVERY_KINDS = LIST_KINDS + ("product", "ticket-groups", "ticket-types")


class ApiServer(_Base):
    name = "api"

    def __init__(self, key, data=None, data_base=None, bucket="files",
                 expires_in=300, rate=None, port=0, ids=None, verbose=False,
                 seed=0, store=None, images=None):
        super().__init__(port, verbose)
        self.key = key
        self.store = store if store is not None else Store()
        self.images = images
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
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        h._send_simple(status, hdrs, body)

    def list_calls(self):
        """GETs to the two list endpoints (whatever their answer)."""
        return self.log.count(method="GET",
                              pred=lambda r: r.kind in LIST_KINDS)

    def discovery_calls(self):
        """GETs to any of the five discovery endpoints."""
        return self.log.count(method="GET",
                              pred=lambda r: r.kind in DISCOVERY_KINDS)

    def is_image(self, id):
        if self.store.is_image(id):
            return True
        return self.images is not None and self.images.has(id)

    @staticmethod
    def _route(req):
        """Sets req.kind and req.id (file, product or event id); returns
        the path's unquoted arguments, or None for an unknown path."""
        for rx, kind in _ROUTES:
            m = rx.fullmatch(req.path)
            if m:
                args = [urllib.parse.unquote(g) for g in m.groups()]
                req.kind = kind
                req.id = args[0] if args else None
                return args
        return None

    def handle(self, h):
        req = h.req
        args = self._route(req)

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
        if args is None or req.method != "GET":
            return self._json(h, 404, api_error("Not Found"))
        hdrs = p["headers"] if p else {}
        if req.kind in LIST_KINDS:
            return self._list(h, req, hdrs)
        for name, v in zip(("id", "groupId"), args):
            if req.kind != "download" and not is_object_id(v):
                return self._json(h, 400, api_error(
                    "Bad Request", name, v, "%s must be a valid ObjectId"
                    % name))
        if req.kind == "product":
            body = self.store.product_answer(args[0])
        elif req.kind == "ticket-groups":
            body = self.store.groups_answer(args[0])
        elif req.kind == "ticket-types":
            body = self.store.types_answer(args[0], args[1])
        else:
            return self._download(h, req, p, hdrs)
        if body is None:
            return self._json(h, 404, api_error(
                "Not Found", "id", args[-1], "Not found"))
        return self._json(h, 200, body, hdrs)

    def _list(self, h, req, hdrs):
        hook = self.store.list_hook
        if hook is not None:
            got = hook(req.kind, dict(req.query))
            if got is not None:
                return self._json(h, got[0], got[1], hdrs)
        limit = req.query.get("limit", "20")
        if not re.fullmatch(r"[0-9]{1,3}", limit) or \
                not 1 <= int(limit) <= 100:
            return self._json(h, 400, api_error(
                "Bad Request", "limit", limit,
                "limit must be an integer between 1 and 100"))
        after = req.query.get("starting_after")
        if after is not None and not is_object_id(after):
            return self._json(h, 400, api_error(
                "Bad Request", "starting_after", after,
                "starting_after must be a valid ObjectId"))
        status, body = self.store.list_answer(req.kind, int(limit), after)
        return self._json(h, status, body, hdrs if status == 200 else None)

    def _download(self, h, req, p, hdrs):
        if not is_object_id(req.id):
            return self._json(h, 400, api_error(
                "Bad Request", "fileId", req.id,
                "fileId must be a valid ObjectId"))
        if self.is_image(req.id):
            return self._json(h, 400, api_error(
                "Bad Request", "fileId", req.id,
                "File is not in the files bucket (purpose \"image\" files "
                "are public at their url)"))
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
        return self._json(h, 200, body, hdrs)


# ------------------------------------------------------- sample accounts

def make_png(width, height, seed=0):
    """A small real RGB PNG (a gradient tinted by `seed`)."""
    rng = random.Random(seed)
    tint = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        for x in range(width):
            rows += bytes(((tint[0] + 4 * x) & 255, (tint[1] + 4 * y) & 255,
                           (tint[2] + 2 * (x + y)) & 255))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xffffffff))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                         0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))


class Expect:
    """What a complete discovery walk of a make_store() account finds."""

    def __init__(self):
        self.files = {}     # fileId -> bytes (images and private files)
        self.images = set()
        self.private = set()
        self.names = {}     # fileId -> name known from the JSON (images)
        self.filenames = {}  # private fileId -> filename on the data host
        self.meta = {}      # image fileId -> dict(width, height, url, size)
        self.by_page = {}   # owner id -> (display name, set of fileIds)
        self.pages = []
        self.events = []
        self.products = []
        self.unreachable = set()  # product ids no page refers to

    def __repr__(self):
        return ("<Expect %d files (%d images, %d private), %d owners>"
                % (len(self.files), len(self.images), len(self.private),
                   len(self.by_page)))


_IMAGE_DIMS = [(1920, 1080), (1200, 800), (800, 800), (640, 480)]


def make_store(data, images, store, pages=250, events=12, products=40,
               seed=0, private_per_product=1, image_size=(2000, 40000),
               decoys=False):
    """Fills `store` with a deterministic account; returns an Expect.

    data: the DataHost (private files), images: the started ImageHost.
    Ids, names and bytes depend only on `seed` (two calls on one store
    need different seeds).  See the module docstring for its shape.
    """
    rng = random.Random("make_store/%s" % seed)
    ex = Expect()
    lo, hi = image_size
    counter = [0]

    def oid(kind, n):
        return object_id("make_store/%s/%s/%s" % (seed, kind, n))

    def new_image(name, owner):
        counter[0] += 1
        k = counter[0]
        size = rng.randint(lo, hi)
        body = b"\xff\xd8\xff\xe0" + make_bytes(
            max(0, size - 4), seed="make_store/%s/img/%d" % (seed, k))
        w, hgt = rng.choice(_IMAGE_DIMS)
        img = store.add_image(images, body, name=name, width=w, height=hgt,
                              id=oid("image", k))
        fid = img["fileId"]
        ex.files[fid] = body
        ex.images.add(fid)
        ex.names[fid] = name
        ex.meta[fid] = {"width": w, "height": hgt, "url": img["url"],
                        "size": len(body)}
        owner.add(fid)
        return img

    owned = {}  # owner id -> set of fileIds, filled as we go

    # products first, so pages can refer to them
    for j in range(products):
        pid = oid("product", j)
        mine = owned[pid] = set()
        media = [new_image("product-image.jpg" if k == 0
                           else "product-%02d-%d.jpg" % (j, k), mine)
                 for k in range(rng.randint(1, 3))]
        file_ids = []
        for k in range(private_per_product):
            fid = oid("private", "%d/%d" % (j, k))
            body = make_bytes(rng.randint(lo, hi),
                              seed="make_store/%s/priv/%d/%d" % (seed, j, k))
            fname = "download-%02d-%d.pdf" % (j, k)
            data.put(body, id=fid, content_type="application/pdf",
                     filename=fname)
            ex.files[fid] = body
            ex.private.add(fid)
            ex.filenames[fid] = fname
            mine.add(fid)
            file_ids.append(fid)
        variant = [new_image("variant-%02d.jpg" % j, mine)]
        p = store.add_product(name="Product %02d" % j, media=media,
                              file_ids=file_ids, variant_images=variant,
                              id=pid)
        ex.products.append(pid)
        ex.by_page[pid] = (display_name(p), mine)

    unused = list(ex.products)   # each product referred to once first
    referred = set()

    def pick_products(k):
        out = []
        while unused and len(out) < k:
            out.append(unused.pop(0))
        while len(out) < k and ex.products:
            c = rng.choice(ex.products)
            if c not in out:
                out.append(c)
        referred.update(out)
        return out

    all_page_images = []
    for i in range(pages):
        pid = oid("page", i)
        mine = owned[pid] = set()
        imgs = []
        for k in range(rng.randint(1, 3)):
            if k == 0 and all_page_images and rng.random() < 0.05:
                img = rng.choice(all_page_images)   # shared with a page
                mine.add(img["fileId"])
            else:
                img = new_image("page-%03d-%d.jpg" % (i, k), mine)
            imgs.append(img)
        all_page_images.extend(imgs)
        refs = pick_products(rng.randint(1, 2)) if rng.random() < 0.5 else []
        extra = {}
        if i % 10 == 3:
            extra["theme"] = {"logo": new_image("logo-%03d.jpg" % i, mine),
                              "colors": {"primary": "#123456"}}
        if i % 25 == 7:
            extra["sections"] = [{"type": "gallery", "blocks": [
                {"type": "text", "text": "Hello"},
                {"type": "image", "image": new_image(
                    "section-%03d.jpg" % i, mine)}]}]
        if i % 30 == 11 and ex.products:
            up = pick_products(1)[0]
            extra["upsell"] = {"title": "Also buy", "productId": up}
        if decoys and i % 40 == 5:
            extra["decoy"] = {"fileId": "not-an-object-id", "url": 5,
                              "fileIds": ["nope", 12]}
        name, slug = "Checkout page %03d" % i, None
        if i == 4:
            name = ""                 # display name = slug
        elif i == 9:
            name, slug = None, ""     # display name = id
        elif i == 14:
            name = "Sale 50% / today"
        elif i == 19 and pages > 1:
            name = "Checkout page 000"   # same name as page 0
        if name is None:
            extra["name"] = None
        p = store.add_page(name=name if name is not None else "",
                           slug=slug if slug is not None else
                           "page-%03d" % i, images=imgs, product_ids=refs,
                           extra=extra, id=pid,
                           product_form="products" if i % 2 else "fields")
        ex.pages.append(pid)
        ex.by_page[pid] = (display_name(p), mine)

    for e in range(events):
        eid = oid("event", e)
        mine = owned[eid] = set()
        imgs = [new_image("event-%02d-%d.jpg" % (e, k), mine)
                for k in range(rng.randint(1, 2))]
        refs = pick_products(1) if e % 4 == 1 else []
        p = store.add_page(name="Event %02d" % e, images=imgs,
                           product_ids=refs, event=True, id=eid,
                           product_form="both" if e % 8 == 1 else "fields")
        for g in range(rng.randint(1, 2)):
            grp = store.add_ticket_group(eid, name="Group %d" % (g + 1),
                                         id=oid("group", "%d/%d" % (e, g)))
            for t in range(rng.randint(1, 2)):
                img = new_image("ticket-%02d-%d-%d.jpg" % (e, g, t), mine)
                store.add_ticket_type(eid, grp["id"],
                                      name="Ticket %d" % (t + 1), image=img,
                                      id=oid("ticket", "%d/%d/%d" % (e, g, t)))
        ex.events.append(eid)
        ex.by_page[eid] = (display_name(p), mine)

    # Files only a product nobody refers to holds cannot be discovered.
    ex.unreachable = set(ex.products) - referred
    reachable = set()
    for owner, (_, fids) in ex.by_page.items():
        if owner not in ex.unreachable:
            reachable |= fids
    for pid in ex.unreachable:
        del ex.by_page[pid]
    for fid in list(ex.files):
        if fid not in reachable:
            del ex.files[fid]
            ex.images.discard(fid)
            ex.private.discard(fid)
            ex.names.pop(fid, None)
            ex.filenames.pop(fid, None)
            ex.meta.pop(fid, None)
    ex.by_page = {k: v for k, v in ex.by_page.items() if v[1]}
    return ex


def sample_store(data, images, store, files):
    """The --sample account: `files` ([(id, bytes, name, type)], put on
    `data` already) become the fileIds of a "Digital download" product;
    nine small real PNGs over 2 pages, 1 event (with a ticket type image)
    and 2 products.  The ids are fixed (object_id("sample/..."))."""
    def png(name, w, h, seed):
        return store.add_image(images, make_png(w, h, seed), name=name,
                               content_type="image/png",
                               id=object_id("sample/image/" + name))

    dl = store.add_product(
        name="Digital download", id=object_id("sample/product/download"),
        media=[png("download-cover.png", 64, 48, 1)],
        file_ids=[f[0] for f in files])
    shirt = store.add_product(
        name="T-shirt", id=object_id("sample/product/shirt"),
        media=[png("shirt-front.png", 48, 64, 2)],
        variant_images=[png("shirt-red.png", 32, 32, 3)])
    store.add_page(name="Summer sale", id=object_id("sample/page/sale"),
                   images=[png("sale-banner.png", 96, 32, 4),
                           png("sale-photo.png", 64, 64, 5)],
                   product_ids=[dl["id"]], product_form="products")
    store.add_page(name="Workshop", id=object_id("sample/page/workshop"),
                   images=[png("workshop.png", 80, 40, 6)],
                   product_ids=[shirt["id"]], product_form="fields",
                   extra={"theme": {"logo": png("logo.png", 32, 32, 7)}})
    ev = store.add_page(name="Meetup", id=object_id("sample/event/meetup"),
                        images=[png("meetup.png", 64, 40, 8)], event=True)
    grp = store.add_ticket_group(ev["id"], name="General",
                                 id=object_id("sample/group/general"))
    store.add_ticket_type(ev["id"], grp["id"], name="Standard",
                          image=png("ticket.png", 40, 40, 9),
                          id=object_id("sample/ticket/standard"))


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


def _expect_json(ex):
    return {
        "files": {fid: {"size": len(b),
                        "sha256": hashlib.sha256(b).hexdigest(),
                        "purpose": "image" if fid in ex.images else "file",
                        "name": ex.names.get(fid) or ex.filenames.get(fid)}
                  for fid, b in sorted(ex.files.items())},
        "by_page": {k: [n, sorted(v)] for k, (n, v) in ex.by_page.items()},
        "pages": ex.pages, "events": ex.events, "products": ex.products,
    }


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
    ap.add_argument("--image-port", type=int, default=0)
    ap.add_argument("--expires", type=int, default=300)
    ap.add_argument("--rate")
    ap.add_argument("--manifest-out")
    ap.add_argument("--port-file")
    ap.add_argument("--store-pages", type=int)
    ap.add_argument("--store-events", type=int, default=12)
    ap.add_argument("--store-products", type=int, default=40)
    ap.add_argument("--store-private", type=int, default=1)
    ap.add_argument("--store-seed", type=int, default=0)
    ap.add_argument("--expect-out")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)

    rate = None
    if a.rate:
        m = re.fullmatch(r"(\d+)/(\d+(?:\.\d+)?)", a.rate)
        if not m:
            ap.error("--rate wants N/WINDOW, e.g. 100/60")
        rate = (int(m.group(1)), float(m.group(2)))
    if a.store_pages is not None and a.data_base:
        ap.error("--store-pages needs the local data host (no --data-base)")
    if a.expect_out and a.store_pages is None:
        ap.error("--expect-out needs --store-pages")

    sample = a.sample or not a.files_dir
    files = []  # (id, bytes or None, name, type, size)
    if a.files_dir:
        for name in sorted(os.listdir(a.files_dir)):
            path = os.path.join(a.files_dir, name)
            if is_object_id(name) and os.path.isfile(path):
                files.append((name, path, name, "application/octet-stream",
                              os.path.getsize(path)))
    else:
        files = [(i, d, n, t, len(d)) for i, d, n, t in sample_files()]

    images = ImageHost(port=a.image_port, verbose=a.verbose).start()
    store = Store(seed="cli")
    data = None
    if a.data_base:
        api = ApiServer(a.key, data_base=a.data_base, expires_in=a.expires,
                        rate=rate, port=a.api_port, verbose=a.verbose,
                        ids={f[0] for f in files}, store=store,
                        images=images)
    else:
        data = DataHost(port=a.data_port, verbose=a.verbose)
        for oid, d, name, ctype, _ in files:
            if isinstance(d, str):
                with open(d, "rb") as fh:
                    d = fh.read()
            data.put(d, id=oid, content_type=ctype, filename=name)
        data.start()
        api = ApiServer(a.key, data=data, expires_in=a.expires, rate=rate,
                        port=a.api_port, verbose=a.verbose, store=store,
                        images=images)
    if sample:
        sample_store(data, images, store, [f[:4] for f in files])
    if a.store_pages is not None:
        ex = make_store(data, images, store, pages=a.store_pages,
                        events=a.store_events, products=a.store_products,
                        seed=a.store_seed, private_per_product=a.store_private)
        if a.expect_out:
            with open(a.expect_out + ".tmp", "w") as fh:
                json.dump(_expect_json(ex), fh, indent=1)
            os.replace(a.expect_out + ".tmp", a.expect_out)
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
            fh.write("%d %d %d\n" % (api.port, data.port if data else 0,
                                      images.port))
        os.replace(tmp, a.port_file)
    print(api.url, flush=True)

    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    while not done.wait(1):
        pass
    api.stop()
    images.stop()
    if data:
        data.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
